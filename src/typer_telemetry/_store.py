"""The per-day rollup store: an append-only journal folded into a rollup file.

Layout of the store folder (0700, files 0600):

    journal.log        one line per invocation, appended by every process
    segment-<n>.log    journals set aside for folding (n grows by one each time)
    rollup.json        the folded per-day rollup, replaced atomically
    compact.lock       held while folding, so one process folds at a time

Why this shape (see docs/design.md): an invocation costs one `open`, one
shared `flock` and one `write` of about a hundred bytes (`_recording.py`, the
only part a short run loads). Folding happens when the journal passes
`COMPACT_AT_BYTES`, and whenever pending data is read or sent. It renames the
journal to the next segment, waits for writers still holding a shared lock on
it, folds it, writes the rollup with the number of the last folded segment
(`folded_through`), and only then deletes the segment. A process killed at
any step leaves either an unfolded segment (folded next time) or a folded one
whose number says so (deleted next time): nothing is lost or counted twice.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ._checks import MAX_COUNT, SchemaError, is_day
from ._files import (
    LockUnavailable,
    is_leftover_temporary,
    open_lock_file,
    remove_leftover_temporaries,
    try_lock,
    wait_lock,
    write_private_file,
)
from ._paths import (
    DROPPED_NAME,
    FOLD_LOCK_NAME,
    JOURNAL_NAME,
    O_CLOEXEC,
    O_NOFOLLOW,
    O_NONBLOCK,
    ROLLUP_NAME,
    UnsafeFile,
    check_private,
    ensure_private_dir,
    open_folder,
    read_small_file,
)
from ._records import Record, properties_from_json, upgrade_version_1
from ._schema import DURATION_BUCKET_COUNT, bucket_index

if TYPE_CHECKING:
    from ._records import JSONDocument, Key

_SEGMENT = r"segment-(\d{1,18})\.log\Z"

ROLLUP_FORMAT = "typer-telemetry-rollup"
ROLLUP_VERSION = 2
# Files of version 1 (command records only) are read and rewritten as version 2.
READABLE_ROLLUP_VERSIONS = (1, 2)

# Limits, documented in TELEMETRY.md and docs/design.md.
MAX_PENDING_DAYS = 30
MAX_KEYS_PER_DAY = 256
# The largest rollup record the schema allows, as written: 8 command names
# and 32 flags of the longest names, or 16 declared fields of the longest
# names and values, with every signal, counts near MAX_COUNT (about 3.5 KB;
# a test checks it).
MAX_RECORD_BYTES = 3_700
# A rollup at the limits must always be readable back: refused as too large,
# it would be set aside whole. Days are kept from 30 before today to 30 after
# it (see `Rollup.prune`), each with at most MAX_KEYS_PER_DAY records, plus a
# day's batch noted in flight. About 59 MB at worst; a realistic full store
# (30 days of 256 records of short names) is about 2 MB.
MAX_ROLLUP_BYTES = (2 * MAX_PENDING_DAYS + 2) * MAX_KEYS_PER_DAY * MAX_RECORD_BYTES
SEGMENT_LOCK_TIMEOUT_SECONDS = 0.5
LOCK_WAIT_SECONDS = 2.0
MAX_SEGMENT_NUMBER = 10**18 - 1  # segment names hold at most 18 digits

# A journal is at most 1 MiB (the recorder's limit), a little more under
# concurrent appends; a segment larger than this is not ours to read whole.
MAX_SEGMENT_BYTES = 2 * 1024 * 1024

if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")


class _Aggregate:
    """The running statistics of one key: events counted, and the durations of those timed."""

    __slots__ = ("buckets", "count", "maximum", "minimum", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.minimum = math.inf
        self.maximum = 0.0
        self.buckets = [0] * DURATION_BUCKET_COUNT

    def add_one(self, duration_ms: float | None) -> None:
        self.count += 1
        if duration_ms is None:
            return
        self.total += duration_ms
        self.minimum = min(self.minimum, duration_ms)
        self.maximum = max(self.maximum, duration_ms)
        self.buckets[bucket_index(duration_ms)] += 1

    def add_record(self, record: Record) -> None:
        self.count += record.count
        if record.timed:
            self.total += record.duration_ms_sum
            self.minimum = min(self.minimum, record.duration_ms_min)
            self.maximum = max(self.maximum, record.duration_ms_max)
            self.buckets = [
                mine + theirs
                for mine, theirs in zip(self.buckets, record.duration_ms_buckets, strict=True)
            ]

    def subtract(self, record: Record) -> None:
        """Take a sent record's events out (fewer than this holds)."""
        self.count -= record.count
        self.total = max(0.0, self.total - record.duration_ms_sum)
        self.buckets = [
            max(0, mine - theirs)
            for mine, theirs in zip(self.buckets, record.duration_ms_buckets, strict=True)
        ]
        # Minimum and maximum cannot be taken apart; the remainder keeps the wider range.

    def record(self, key: Key) -> Record:
        timed = sum(self.buckets) > 0
        return Record(
            *key,
            count=self.count,
            duration_ms_sum=round(self.total, 3) if timed else 0.0,
            duration_ms_min=round(self.minimum, 3) if timed else 0.0,
            duration_ms_max=round(self.maximum, 3) if timed else 0.0,
            duration_ms_buckets=tuple(self.buckets),
        )


class InFlight:
    """A batch noted before it was sent, not yet seen accepted: sent again exactly as it was."""

    __slots__ = ("day", "idempotency_key", "records")

    def __init__(self, day: str, idempotency_key: str, records: Sequence[Record]) -> None:
        self.day = day
        self.idempotency_key = idempotency_key
        self.records = tuple(records)

    def to_json(self) -> JSONDocument:
        return {
            "day": self.day,
            "idempotency_key": self.idempotency_key,
            "records": [record.to_json() for record in self.records],
        }


class Rollup:
    """The folded state: aggregates per key, events dropped per day, segments folded."""

    def __init__(self, folded_through: int = 0) -> None:
        # The number of the last journal segment folded in (see docs/design.md).
        self.folded_through = folded_through
        # Change keys only through `_slot`, `_forget` and `prune`, which keep
        # `_keys_per_day` in step: the per-day limit is then checked in constant
        # time, and folding a full store stays linear in its records.
        self.aggregates: dict[Key, _Aggregate] = {}
        self._keys_per_day: dict[str, int] = {}
        self.dropped: dict[str, int] = {}
        # The batch being sent, still counted in `aggregates`. Noted before it
        # leaves, so that a batch whose answer was lost goes out again exactly
        # as it was, under its key, even if more of that day arrived since:
        # merged into a new batch under a new key, a receiver that did store
        # the first one would count it twice.
        self.in_flight: InFlight | None = None

    def _slot(self, key: Key) -> _Aggregate | None:
        aggregate = self.aggregates.get(key)
        if aggregate is not None:
            return aggregate
        day = key[0]
        keys = self._keys_per_day.get(day, 0)
        if keys >= MAX_KEYS_PER_DAY:
            return None
        self._keys_per_day[day] = keys + 1
        aggregate = self.aggregates[key] = _Aggregate()
        return aggregate

    def _forget(self, key: Key) -> None:
        del self.aggregates[key]
        day = key[0]
        left = self._keys_per_day[day] - 1
        if left:
            self._keys_per_day[day] = left
        else:
            del self._keys_per_day[day]

    def add_event(self, event: JournalEvent) -> None:
        slot = self._slot(event.key)
        if slot is None:
            self.dropped[event.key[0]] = self.dropped.get(event.key[0], 0) + 1
            return
        slot.add_one(event.duration_ms)

    def add_drop(self, day: str) -> None:
        self.dropped[day] = self.dropped.get(day, 0) + 1

    def add_line(self, line: bytes) -> bool:
        """Fold one journal line (an event, or a counted drop); False if outside the schema."""
        entry = parse_journal_line(line)
        if entry is None:
            return False
        if isinstance(entry, str):
            self.add_drop(entry)
        else:
            self.add_event(entry)
        return True

    def add_record(self, record: Record) -> None:
        slot = self._slot(record.key)
        if slot is None:
            self.dropped[record.day] = self.dropped.get(record.day, 0) + record.count
            return
        slot.add_record(record)

    def subtract(self, record: Record) -> None:
        """Take a sent record out; whatever arrived for the same key since stays pending."""
        aggregate = self.aggregates.get(record.key)
        if aggregate is None:
            return
        if aggregate.count <= record.count:
            self._forget(record.key)
            return
        aggregate.subtract(record)

    def prune(self, today: str) -> bool:
        """Forget days outside the kept window around `today`; True if any were.

        Days more than MAX_PENDING_DAYS before today are deleted (the
        documented retention). Days more than MAX_PENDING_DAYS after today
        were recorded under a clock set far ahead: kept, a day dated 2100
        would wait, visible and unsent, until 2100. They are deleted as well
        and counted as dropped under today. With an unusable clock (before
        2000, past 9999) nothing is pruned: a machine whose clock fell back to
        1970 keeps its data until the clock is right again.
        """
        window = _kept_window(today)
        if window is None:
            return False
        oldest_day, newest_day = window
        old_keys = [key for key in self.aggregates if key[0] < oldest_day]
        future_keys = [key for key in self.aggregates if key[0] > newest_day]
        old_days = [day for day in self.dropped if day < oldest_day or day > newest_day]
        future_count = sum(self.aggregates[key].count for key in future_keys)
        future_count += sum(self.dropped[day] for day in old_days if day > newest_day)
        for key in old_keys + future_keys:
            self._forget(key)
        for day in old_days:
            del self.dropped[day]
        if future_count:
            self.dropped[today] = self.dropped.get(today, 0) + future_count
        return bool(old_keys or future_keys or old_days)

    def records(self) -> list[Record]:
        """The rollup records, sorted by day, then event, properties, outcome, error class."""
        return [self.aggregates[key].record(key) for key in sorted(self.aggregates, key=_sort_key)]


def _sort_key(key: Key) -> tuple[object, ...]:
    # Property values mix strings, flags, lists and numbers: compare their text.
    day, event, properties, outcome, error_class = key
    return (day, event, repr(properties), outcome, error_class)


class JournalEvent:
    """One event as a journal line holds it: what it is counted under, and its duration."""

    __slots__ = ("duration_ms", "key")

    def __init__(self, key: Key, duration_ms: float | None) -> None:
        self.key = key
        self.duration_ms = duration_ms


_HEADER_START = b'{"format":"typer-telemetry-rollup","version":2,'
_HEADER_END = b',"records":['
_RECORD_START = b'{"day":"'


class _Unusable(Exception):
    """The rollup file cannot be used: unreadable, foreign, or outside the schema."""


# What a rollup file that is not ours, or not of a version we read, makes parsing raise.
_UNUSABLE = (ValueError, KeyError, TypeError, AttributeError, RecursionError)


def _rollup_from(data: bytes) -> Rollup:
    """The rollup a file holds, every record checked; raises one of _UNUSABLE if it is unusable."""
    import json

    document = json.loads(data)
    if (
        not isinstance(document, dict)
        or document.get("format") != ROLLUP_FORMAT
        or document.get("version") not in READABLE_ROLLUP_VERSIONS
    ):
        raise SchemaError("not a rollup file of a version this library reads")
    # `merged_through` is what version 1 files call it.
    folded_through = document.get("folded_through", document.get("merged_through"))
    if not isinstance(folded_through, int) or not 0 <= folded_through < MAX_SEGMENT_NUMBER:
        raise SchemaError("bad segment number")
    rollup = Rollup(folded_through=folded_through)
    for record in document["records"]:
        rollup.add_record(Record.from_json(record))
    for day, count in dict(document.get("dropped", {})).items():
        # Only schema days and plausible counts: the file may have been edited.
        if is_day(day) and isinstance(count, int) and 0 < count <= MAX_COUNT:
            rollup.dropped[day] = count
    rollup.in_flight = _parse_in_flight(document.get("in_flight"))
    return rollup


def _split_rollup(data: bytes) -> tuple[bytes, dict[str, bytes]] | None:
    """The header and each day's record lines of a rollup file as `_write_rollup` lays it out.

    That layout is one JSON document: a first line with every field but the
    records, one record per line sorted by day (then key), and `]}` on the
    last line. A day's lines come back as one piece (joined by ",\\n", as
    written). Where a day ends is found by bisection, and its lines are
    checked by counting, not one by one, so that a fold can copy the days it
    does not change at little cost. None for anything else (an older
    layout, an edited file): it is then parsed whole.
    """
    newline = data.find(b"\n")
    header = data[:newline]
    if (
        newline < 0
        or not header.startswith(_HEADER_START)
        or not header.endswith(_HEADER_END)
        or not data.endswith(b"\n]}")
    ):
        return None
    last_newline = len(data) - 3
    by_day: dict[str, bytes] = {}
    position = newline
    previous = ""
    while position < last_newline:
        if data[position + 1 : position + 9] != _RECORD_START:
            return None
        marker = data[position : position + 21]  # \n{"day":"YYYY-MM-DD",
        day = marker[9:19].decode("ascii", "replace")
        if marker[19:21] != b'",' or not is_day(day) or day <= previous:
            return None
        end = _end_of_day(data, position, last_newline, marker)
        # Every line of the piece is one of this day's; each ends with "},",
        # but the file's last line, with "}".
        newlines = data.count(b"\n", position, end)
        if (
            data.count(marker, position, end) != newlines
            or data.count(b"},\n", position, end) != newlines - 1
            or data[end - 1 : end] != (b"}" if end == last_newline else b",")
        ):
            return None
        by_day[day] = data[position + 1 : end if end == last_newline else end - 1]
        previous = day
        position = end
    return header, by_day


def _end_of_day(data: bytes, low: int, high: int, marker: bytes) -> int:
    """The newline after the last line starting with `marker`, from the line after `low` on.

    Lines are sorted by day: the lines of one day run from `low` to the
    first line of another, found by halving the bytes between.
    """
    width = len(marker)
    while True:
        middle = data.find(b"\n", max((low + high) // 2, low + 1), high)
        if middle == -1:
            middle = data.rfind(b"\n", low + 1, high)
            if middle == -1:
                return high
        if data[middle : middle + width] == marker:
            low = middle
        else:
            high = middle


def parse_journal_line(line: bytes) -> JournalEvent | str | None:
    """A journal line's event, or the day of a counted drop; None if outside the schema.

    Lines of version 1 (a command invocation with `command` and `flags` at
    the top, written before events existed) are read as `command` events.
    """
    day = _parse_dropped(line)
    if day is not None:
        return day
    import json

    try:
        values = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(values, dict):
        return None
    if "event" not in values and "command" in values:
        values = upgrade_version_1(values)
    if set(values) != _JOURNAL_FIELDS:
        return None
    from ._checks import check_event

    try:
        properties = values["properties"]
        if not isinstance(properties, dict):
            return None
        day, event, outcome, error_class = (
            values["day"],
            values["event"],
            values["outcome"],
            values["error_class"],
        )
        duration_ms = values["duration_ms"]
        check_event(day, event, properties, outcome, error_class, duration_ms)
        key: Key = (day, event, properties_from_json(properties), outcome, error_class)
    except (SchemaError, TypeError):
        return None
    return JournalEvent(key, None if duration_ms is None else float(duration_ms))


_JOURNAL_FIELDS = frozenset({"day", "event", "properties", "outcome", "error_class", "duration_ms"})


def _parse_dropped(line: bytes) -> str | None:
    """The day of a `{"dropped":"<day>"}` line (an event counted as dropped), else None."""
    prefix = b'{"dropped":"'
    if not line.startswith(prefix) or len(line) != len(prefix) + 12 or not line.endswith(b'"}'):
        return None
    day = line[len(prefix) : -2].decode("ascii", "replace")
    return day if is_day(day) else None


class RollupStore:
    """The rollup store in one folder; every method is safe across processes."""

    def __init__(self, directory: Path, debug: Callable[[str], None]) -> None:
        self.directory = directory
        self._debug = debug

    @property
    def journal_path(self) -> Path:
        return self.directory / JOURNAL_NAME

    @property
    def rollup_path(self) -> Path:
        return self.directory / ROLLUP_NAME

    # -- folding ------------------------------------------------------------

    def fold(self, *, today: str, wait: float = 0.0) -> bool:
        """Fold the journal into the rollup, waiting at most `wait` seconds for a fold under way.

        False when no fold happened (another process held the lock all along,
        or the folder cannot be made). Only the days the journal changes are
        parsed (see `_split_rollup`).
        """
        try:
            ensure_private_dir(self.directory)
        except OSError as error:
            self._debug(f"cannot create the store folder: {error}")
            return False
        return self._with_lock(lambda: self._fold_changed_days(today), wait) is not None

    def _fold_changed_days(self, today: str) -> bool:
        """Under the lock: fold, parsing and checking only the days the segments or pruning change.

        The other days' lines are written back byte for byte. A fold then
        costs about what the journal holds, not what the store holds: at the
        limits (30 days of 256 records) a full parse takes several times
        longer than the fold itself. Every reader that uses records (status,
        sending) parses the whole file and checks every record.
        """
        try:
            rollup, kept = self._load_split()
        except _Unusable as unusable:
            rollup, kept = self._set_aside(unusable), {}
        rollup, folded = self._fold_segments(rollup, kept, today)
        pruned = rollup.prune(today)
        if folded or pruned:
            self._write_rollup(rollup, kept)
        self._remove_all(folded)
        return True  # a fold happened (`fold` tells it from a lock it never got)

    def _update(self, today: str, change: Callable[[Rollup], bool]) -> Rollup:
        """Under the lock: the whole rollup (every day parsed and checked), folded and
        pruned, with `change` applied (True if it changed anything); written if changed."""
        try:
            rollup = self._load_whole()
        except _Unusable as unusable:
            rollup = self._set_aside(unusable)
        rollup, folded = self._fold_segments(rollup, {}, today)
        pruned = rollup.prune(today)
        changed = change(rollup)
        if folded or pruned or changed:
            self._write_rollup(rollup)
        self._remove_all(folded)
        return rollup

    def _segments(self) -> list[tuple[int, Path]]:
        found = []
        for entry in os.scandir(self.directory):
            match = re.match(_SEGMENT, entry.name)
            if match:
                found.append((int(match.group(1)), Path(entry.path)))
        return sorted(found)

    def _fold_segments(
        self, rollup: Rollup, kept: dict[str, bytes], today: str
    ) -> tuple[Rollup, list[Path]]:
        """Move the journal aside as a segment and add every unfolded segment to `rollup`.

        Returns the rollup (a fresh one if a kept day turned out unusable and
        the file was set aside) and the segments folded, to delete once the
        rollup is written. Days of `kept` that the segments or pruning touch
        are parsed into the rollup first.
        """
        # Only a process holding this lock writes the rollup: any temporary
        # file now is what a killed writer left behind.
        remove_leftover_temporaries(self.rollup_path)
        segments = self._segments()
        for number, path in segments:
            if number <= rollup.folded_through:  # folded before a crash; now just garbage
                self._remove(path)
        segments = [(number, path) for number, path in segments if number > rollup.folded_through]
        next_number = max([rollup.folded_through, *(number for number, _ in segments)]) + 1
        for name in (JOURNAL_NAME, DROPPED_NAME):
            try:
                found = os.stat(self.directory / name, follow_symlinks=False)
            except FileNotFoundError:
                continue
            # Only a regular file of ours is folded; anything else in its place
            # (a folder, a pipe, a link) is left alone and appending to it fails.
            if stat.S_ISREG(found.st_mode) and found.st_size > 0:
                check_private(self.directory / name, found)  # not moved, not folded
                target = self.directory / f"segment-{next_number}.log"
                os.rename(self.directory / name, target)
                segments.append((next_number, target))
                next_number += 1

        folded: list[Path] = []
        entries: list[JournalEvent | str] = []  # events, and days of counted drops
        folded_through = rollup.folded_through
        for number, path in segments:
            lines = self._read_segment(path)
            if lines is None:
                break  # a writer is stuck on it; keep order, fold it next time
            for line in lines:
                entry = parse_journal_line(line)
                if entry is not None:
                    entries.append(entry)
                elif line.strip():
                    self._debug("a journal line outside the schema was dropped")
            folded.append(path)
            folded_through = number

        if kept:
            touched = {entry.key[0] for entry in entries if isinstance(entry, JournalEvent)}
            window = _kept_window(today)
            if window is not None:  # days that pruning drops, or counts as dropped
                touched.update(day for day in kept if not window[0] <= day <= window[1])
            rollup = self._parse_kept_days(rollup, kept, touched)
        for entry in entries:
            if isinstance(entry, str):
                rollup.add_drop(entry)
            else:
                rollup.add_event(entry)
        rollup.folded_through = max(rollup.folded_through, folded_through)
        return rollup, folded

    def _remove_all(self, paths: Iterable[Path]) -> None:
        for path in paths:
            self._remove(path)

    def _parse_kept_days(
        self, rollup: Rollup, kept: dict[str, bytes], days: Iterable[str]
    ) -> Rollup:
        """Move `days` from `kept` into `rollup`, checked; an unusable record sets the file aside."""
        import json

        try:
            for day in sorted(set(days) & set(kept)):
                for record in json.loads(b"[" + kept.pop(day) + b"]"):
                    rollup.add_record(Record.from_json(record))
        except _UNUSABLE as error:
            kept.clear()
            return self._set_aside(error)
        return rollup

    def _remove(self, path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as error:  # a folder someone made under a segment's name
            self._debug(f"cannot remove {path.name}: {error}")

    def _read_segment(self, path: Path) -> list[bytes] | None:
        """The segment's lines; None while a writer holds it; [] if it is no file of ours."""
        try:
            descriptor = os.open(path, os.O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        except OSError as error:  # a planted link, or a folder we may not read
            self._debug(f"{path.name} cannot be read ({error}); skipped")
            return []
        try:
            found = os.fstat(descriptor)
            if not stat.S_ISREG(found.st_mode):
                self._debug(f"{path.name} is not a regular file; skipped")
                return []
            check_private(path, found)  # another user's segment stops folding
            try:
                wait_lock(descriptor, shared=False, timeout=SEGMENT_LOCK_TIMEOUT_SECONDS)
            except LockUnavailable:
                self._debug(f"{path.name} is still held by a writer; folding it later")
                return None
            chunks = []
            size = 0
            while size <= MAX_SEGMENT_BYTES and (chunk := os.read(descriptor, 1 << 16)):
                chunks.append(chunk)
                size += len(chunk)
            if size > MAX_SEGMENT_BYTES:
                self._debug(f"{path.name} is larger than a journal can be; its rest was dropped")
        finally:
            os.close(descriptor)
        return b"".join(chunks).split(b"\n")

    def _read_rollup(self) -> bytes | None:
        """The rollup file's bytes; None if there is none; _Unusable if it cannot be read."""
        try:
            return read_small_file(self.rollup_path, MAX_ROLLUP_BYTES)
        except FileNotFoundError:
            return None
        except UnsafeFile:
            raise  # not ours to read, set aside or replace
        except (OSError, ValueError) as error:
            raise _Unusable(f"cannot read it ({error})") from error

    def _load_whole(self) -> Rollup:
        """The rollup file with every record parsed and checked; _Unusable if it is unusable."""
        data = self._read_rollup()
        if data is None:
            return Rollup()
        try:
            return _rollup_from(data)
        except _UNUSABLE as error:
            raise _Unusable(str(error)) from error

    def _load_split(self) -> tuple[Rollup, dict[str, bytes]]:
        """The rollup to fold into, its days' record lines left unparsed (see `_split_rollup`)."""
        data = self._read_rollup()
        if data is None:
            return Rollup(), {}
        split = _split_rollup(data)
        try:
            if split is None:
                return _rollup_from(data), {}
            header, kept = split
            return _rollup_from(header + b"]}"), kept
        except _UNUSABLE as error:
            raise _Unusable(str(error)) from error

    def _readable(self) -> Rollup:
        """For readers: the rollup, or an empty one if it is unusable (left for a fold to set aside)."""
        try:
            return self._load_whole()
        except _Unusable as unusable:
            self._debug(f"the rollup file is unusable: {unusable}")
            return Rollup()

    def _set_aside(self, why: object) -> Rollup:
        """For folds: rename an unusable rollup file aside, and start from an empty rollup."""
        self._debug(f"the rollup file is unusable: {why}")
        import time

        aside = self.rollup_path.with_name(f"{ROLLUP_NAME}.unusable-{time.time_ns()}")
        try:
            os.rename(self.rollup_path, aside)
            self._debug(f"set it aside as {aside.name}")
        except OSError as error:
            self._debug(f"cannot set it aside: {error}")
        return Rollup()

    def _write_rollup(self, rollup: Rollup, kept: dict[str, bytes] | None = None) -> None:
        """Write the rollup, and the unparsed days' lines in `kept`, as `_split_rollup` reads it."""
        import json

        header: JSONDocument = {
            "format": ROLLUP_FORMAT,
            "version": ROLLUP_VERSION,
            "folded_through": rollup.folded_through,
            "dropped": dict(sorted(rollup.dropped.items())),
        }
        if rollup.in_flight is not None:
            header["in_flight"] = rollup.in_flight.to_json()
        encode = json.JSONEncoder(separators=(",", ":")).encode
        by_day: dict[str, list[bytes]] = {day: [lines] for day, lines in (kept or {}).items()}
        for record in rollup.records():
            by_day.setdefault(record.day, []).append(encode(record.to_json()).encode("utf-8"))
        lines = [line for day in sorted(by_day) for line in by_day[day]]
        head = encode(header).encode("utf-8")[:-1] + b',"records":['
        body = b"\n" + b",\n".join(lines) if lines else b""
        write_private_file(self.rollup_path, head + body + b"\n]}")

    # -- reading and deleting -----------------------------------------------

    def snapshot(self) -> Rollup:
        """Everything pending, folded in memory, without writing anything."""
        if not self.directory.is_dir():
            return Rollup()
        rollup = self._readable()
        paths = [path for number, path in self._segments() if number > rollup.folded_through]
        paths += [self.journal_path, self.directory / DROPPED_NAME]
        for path in paths:
            for line in _read_lines(path):
                rollup.add_line(line)
        return rollup

    def pending(self, *, today: str) -> list[Record]:
        """The rollup records waiting to be sent, exactly as they would be sent."""
        return self.pending_rollup(today=today).records()

    def pending_rollup(self, *, today: str) -> Rollup:
        """Everything pending (records and drops) as it would be sent, from one read of the store."""
        if self.directory.is_dir():
            try:
                self.fold(today=today)
            except OSError as error:  # what can be read is still shown
                self._debug(f"cannot fold the journal now: {error}")
        rollup = self.snapshot()
        rollup.prune(today)
        return rollup

    def _with_lock(self, action: Callable[[], T], timeout: float = LOCK_WAIT_SECONDS) -> T | None:
        """Run `action` holding the folding lock; None if a stuck process holds it."""
        ensure_private_dir(self.directory)
        descriptor = open_lock_file(self.directory / FOLD_LOCK_NAME)
        try:
            try:
                if timeout <= 0:
                    if not try_lock(descriptor, shared=False):
                        return None
                else:
                    wait_lock(descriptor, shared=False, timeout=timeout)
            except LockUnavailable:
                self._debug("the store is locked by another process; trying later")
                return None
            return action()
        finally:
            os.close(descriptor)

    def completed_days(self, *, today: str) -> tuple[int, dict[str, list[Record]]]:
        """The folded records of every day before `today`, by day, oldest first.

        Also the number of the last segment folded into them: records that
        reach a day after a batch of it was sent come through a later segment,
        so (day, records, that number) never repeats for different data.
        None at all while the clock is unusable (see `Rollup.prune`): which
        days are completed is then unknown.
        """
        rollup = self._with_lock(lambda: self._update(today, _unchanged))
        by_day: dict[str, list[Record]] = {}
        if rollup is None or not is_day(today):
            return 0, by_day
        for record in rollup.records():
            if record.day < today:
                by_day.setdefault(record.day, []).append(record)
        return rollup.folded_through, by_day

    def remove_sent(self, records: Sequence[Record], *, today: str) -> bool:
        """Take out records a receiver accepted (and the batch in flight); False if locked."""

        def remove(rollup: Rollup) -> bool:
            for record in records:
                rollup.subtract(record)
            rollup.in_flight = None  # accepted: taken out in the same write
            return True

        return self._with_lock(lambda: self._update(today, remove)) is not None

    def in_flight(self) -> InFlight | None:
        """The batch a sender noted before sending it and has not seen accepted, if any."""
        if not self.directory.is_dir():
            return None
        return self._readable().in_flight

    def note_in_flight(self, batch: InFlight, *, today: str) -> bool:
        """Note a batch before sending it (under the send lock); False if the store is locked."""

        def note(rollup: Rollup) -> bool:
            rollup.in_flight = batch
            return True

        return self._with_lock(lambda: self._update(today, note)) is not None

    def dropped(self) -> dict[str, int]:
        return dict(sorted(self.snapshot().dropped.items()))

    def clear(self) -> str | None:
        """Delete every file that holds usage data, now (disable and reset): off is off.

        Temporaries included: a writer killed mid-write leaves one (such as
        `.rollup.json.<pid>.tmp`) that holds every pending record. Kept: the
        pending deletion requests (the user's own wish), the receiver's
        Retry-After, the lock files and anything else that holds no usage
        data. A folder another user owns or others may write to is left as it
        is. Returns why some data could not be deleted, or None.
        """
        try:
            folder = open_folder(self.directory)
        except UnsafeFile as unsafe:
            return unsafe.describe("data")
        except OSError:
            return None  # missing, or a planted link: what it points to is not ours to delete
        problems: list[str] = []
        try:
            with contextlib.ExitStack() as stack:
                try:
                    descriptor = open_lock_file(self.directory / FOLD_LOCK_NAME)
                    stack.callback(os.close, descriptor)
                    wait_lock(descriptor, shared=False, timeout=2.0)
                except OSError:  # LockUnavailable included
                    self._debug("the store lock is stuck or unusable; deleting anyway")
                for name in _names_in(folder, problems):
                    if not holds_usage_data(name):
                        continue
                    try:
                        os.unlink(name, dir_fd=folder)
                    except FileNotFoundError:
                        pass
                    except OSError as error:  # a folder under a data file's name, a read-only disk
                        self._debug(f"cannot remove {name}: {error}")
                        problems.append(f"{name} ({error.strerror or error})")
        finally:
            os.close(folder)
        if problems:
            return f"cannot delete {', '.join(problems)} in {self.directory}"
        return None


def _names_in(folder: int, problems: list[str]) -> list[str]:
    try:
        return [entry.name for entry in os.scandir(folder)]
    except OSError as error:
        problems.append(f"its files (cannot list them: {error.strerror or error})")
        return []


# The files of the store folder that hold usage data (folded, unfolded, or dropped counts).
_DATA_NAMES = (JOURNAL_NAME, ROLLUP_NAME, DROPPED_NAME)


def holds_usage_data(name: str) -> bool:
    """Whether a file of the store folder holds usage data, so that `clear` deletes it."""
    return (
        name in _DATA_NAMES
        or re.match(_SEGMENT, name) is not None
        or name.startswith(f"{ROLLUP_NAME}.unusable-")
        or any(is_leftover_temporary(name, data) for data in _DATA_NAMES)
    )


def _unchanged(rollup: Rollup) -> bool:
    return False


def _parse_in_flight(value: object) -> InFlight | None:
    """The noted batch of a rollup file; None if there is none or it is unusable."""
    if not isinstance(value, dict):
        return None
    day, key, records = value.get("day"), value.get("idempotency_key"), value.get("records")
    if not (isinstance(day, str) and isinstance(key, str) and isinstance(records, list)):
        return None
    if len(key) != 32 or not set(key) <= set("0123456789abcdef"):  # an idempotency_key
        return None
    try:
        checked = [Record.from_json(record) for record in records]
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if not checked or any(record.day != day for record in checked):
        return None
    return InFlight(day, key, checked)


def _read_lines(path: Path) -> Iterable[bytes]:
    try:
        return read_small_file(path, MAX_SEGMENT_BYTES).split(b"\n")
    except (OSError, ValueError):
        return ()


def _kept_window(today: str) -> tuple[str, str] | None:
    """The first and last day kept pending; None when `today` is no usable day."""
    import datetime

    if not is_day(today):  # a clock before 2000 or past 9999 (or beyond the platform's)
        return None
    current = datetime.date.fromisoformat(today)
    span = datetime.timedelta(days=MAX_PENDING_DAYS)
    oldest = current - span
    newest = current + span if current <= datetime.date.max - span else datetime.date.max
    return oldest.isoformat(), newest.isoformat()
