"""A store at its documented limits: folding and `telemetry status` stay linear and bounded.

The limits (TELEMETRY.md): 30 days kept, 256 distinct records per day. At
them, folding once read, checked and rewrote every record, and counting a
day's keys scanned them all for every new key: a fold took seconds inside a
short run, and `status` 25 s and a megabyte of text. Here the work is counted
(records parsed, lines printed), not timed: the timings are in the bench
("Store at the limits", docs/performance.md).
"""

from __future__ import annotations

import datetime
import json
import random
from pathlib import Path

import pytest

from tests.conftest import Tool, append_event, tool_script
from tests.hardening.conftest import cases
from typer_telemetry import _store
from typer_telemetry._recording import Observation
from typer_telemetry._records import Record
from typer_telemetry._store import (
    MAX_KEYS_PER_DAY,
    MAX_PENDING_DAYS,
    InFlight,
    Rollup,
    RollupStore,
)

NOON = datetime.datetime(2026, 3, 10, 12, tzinfo=datetime.timezone.utc)
TODAY = NOON.date().isoformat()
DAYS = [
    (NOON.date() - datetime.timedelta(days=back)).isoformat() for back in range(MAX_PENDING_DAYS)
]


def full_day(day: str, rng: random.Random) -> list[dict[str, object]]:
    """MAX_KEYS_PER_DAY distinct observations of one day (as a journal would hold them)."""
    return [
        {
            "day": day,
            "command": f"group{index // 16} command{index % 16}",
            "outcome": "success" if index % 3 else "usage_error",
            "error_class": "" if index % 3 else "FileNotFoundError",
            "flags": tuple(sorted({"--verbose", f"--option-{index % 7}"})),
            "duration_ms": rng.lognormvariate(4.5, 1.2),
        }
        for index in range(MAX_KEYS_PER_DAY)
    ]


def add_observation(rollup: Rollup, values: dict[str, object]) -> None:
    """Fold one command observation into a rollup, as folding its journal line does."""
    assert rollup.add_line(Observation.of_command(**values).journal_line())  # type: ignore[arg-type]


def command_of(key: tuple[object, ...]) -> object:
    """The command a rollup key counts (keys hold the event's properties as sorted pairs)."""
    return dict(key[2])["command"]  # type: ignore[call-overload]


def write_full_store(directory: Path) -> Rollup:
    """A rollup at the limits, written by the store's own writer: 30 days x 256 records."""
    rng = random.Random(30)
    rollup = Rollup(folded_through=1)
    for day in DAYS:
        for values in full_day(day, rng):
            add_observation(rollup, values)
    directory.mkdir(parents=True, exist_ok=True)
    RollupStore(directory, lambda message: None)._write_rollup(rollup)
    return rollup


def counts(records: list[Record]) -> dict[tuple[object, ...], int]:
    return {
        (
            record.day,
            record.property("command"),
            record.outcome,
            tuple(record.property("flags")),  # type: ignore[arg-type]
        ): record.count
        for record in records
    }


class CountingChecks:
    """How many rollup records folding parsed and checked (`Record.from_json`, counted)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        checks = self

        class CountedRecord(Record):
            __slots__ = ()

            @classmethod
            def from_json(cls, values: object) -> Record:
                checks.calls += 1
                return Record.from_json(values)

        monkeypatch.setattr(_store, "Record", CountedRecord)


def test_a_fold_into_a_full_store_parses_only_the_days_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reliability: object
) -> None:
    store = RollupStore(tmp_path / "store", lambda message: None)
    before = counts(write_full_store(store.directory).records())
    rng = random.Random(7)
    rounds = cases(3, 20)
    expected = dict(before)
    checks = CountingChecks(monkeypatch)
    for _ in range(rounds):
        # One journal's worth of invocations: known keys of today, and one new
        # key per round, which the full day counts as dropped.
        for values in [
            *rng.sample(full_day(TODAY, rng), 40),
            {**full_day(TODAY, rng)[0], "command": "new"},
        ]:
            append_event(store, Observation.of_command(**values))  # type: ignore[arg-type]
            key = (values["day"], values["command"], values["outcome"], tuple(values["flags"]))  # type: ignore[arg-type]
            if key in expected:
                expected[key] += 1
        checks.calls = 0
        assert store.fold(today=TODAY)
        # Only today's records were parsed and checked, not the other 29 days'.
        assert checks.calls <= MAX_KEYS_PER_DAY, checks.calls
    monkeypatch.undo()
    after = store.pending_rollup(today=TODAY)
    assert counts(after.records()) == expected  # every count exact, nothing counted twice
    assert after.dropped == {TODAY: rounds}  # the day was full: new keys counted as dropped
    reliability.record(  # type: ignore[attr-defined]
        area="Bounds",
        fault=f"folding into a store at its limits ({MAX_PENDING_DAYS} days x "
        f"{MAX_KEYS_PER_DAY} records)",
        cases=rounds,
        outcome="each fold parses and checks only the days its journal touches "
        f"(at most {MAX_KEYS_PER_DAY} records, not {len(before)}); every count exact; "
        "keys past the day's limit counted as dropped",
        lost="keys past the per-day limit (counted, as documented)",
    )


def test_a_store_in_the_older_one_line_layout_folds_and_reads_the_same(tmp_path: Path) -> None:
    store = RollupStore(tmp_path / "store", lambda message: None)
    rollup = write_full_store(store.directory)
    document = {
        "format": _store.ROLLUP_FORMAT,
        "version": _store.ROLLUP_VERSION,
        "folded_through": 1,
        "records": [record.to_json() for record in rollup.records()],
        "dropped": {DAYS[3]: 2},
    }
    store.rollup_path.write_bytes(json.dumps(document).encode())  # one line, as written before
    values = full_day(TODAY, random.Random(1))[5]
    append_event(store, Observation.of_command(**values))  # type: ignore[arg-type]
    assert store.fold(today=TODAY)
    after = store.pending_rollup(today=TODAY)
    expected = counts(rollup.records())
    key = (values["day"], values["command"], values["outcome"], tuple(values["flags"]))  # type: ignore[arg-type]
    expected[key] += 1
    assert counts(after.records()) == expected
    assert after.dropped == {DAYS[3]: 2}
    assert after.folded_through > 1


def test_a_fold_drops_expired_days_of_a_store_it_does_not_parse(tmp_path: Path) -> None:
    store = RollupStore(tmp_path / "store", lambda message: None)
    rollup = write_full_store(store.directory)
    later = (NOON.date() + datetime.timedelta(days=5)).isoformat()
    values = {**full_day(later, random.Random(2))[0]}
    append_event(store, Observation.of_command(**values))  # type: ignore[arg-type]
    assert store.fold(today=later)
    kept_days = {record.day for record in store.pending(today=later)}
    oldest = (NOON.date() + datetime.timedelta(days=5 - MAX_PENDING_DAYS)).isoformat()
    assert kept_days == {day for day in DAYS if day >= oldest} | {later}
    assert len(rollup.records()) > len(store.pending(today=later))


def test_status_on_a_full_store_answers_with_a_bounded_summary(
    home: Path, reliability: object
) -> None:
    tool = Tool(tool_script("status_tool"), home, env={"TOOL_NOW": str(NOON.timestamp())})
    write_full_store(tool.store_dir)
    total = MAX_PENDING_DAYS * MAX_KEYS_PER_DAY
    for columns in ("200", "80", "40"):
        result = tool.run("telemetry", "status", env={"COLUMNS": columns}, timeout=60)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        # Totals per day and the 20 busiest records, not 7,680 rows.
        assert len(lines) < 200, len(lines)
        assert f"{total} records" in result.stdout
        assert f"... and {total - 20} more records" in result.stdout
        assert "status-tool telemetry status --json" in result.stdout
        for day in DAYS:
            assert any(line.startswith(day) for line in lines), day
    status = tool.status()
    pending = status["pending"]
    details = status["pending_details"]
    assert isinstance(pending, list)
    assert isinstance(details, list)
    assert len(pending) == len(details) == total  # --json lists every record
    reliability.record(  # type: ignore[attr-defined]
        area="Bounds",
        fault=f"`telemetry status` on a store at its limits ({total} records), "
        "at 200, 80 and 40 columns and as --json",
        cases=4,
        outcome="text: totals per day and the 20 busiest records (under 200 lines), "
        "pointing to --json; --json lists all records with their estimates",
    )


class ScanCountingDict(dict):  # type: ignore[type-arg]
    """The rollup's aggregates, counting every scan over all of its keys."""

    scans = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        ScanCountingDict.scans += 1
        return super().__iter__()


def test_adding_a_record_never_scans_the_other_keys(reliability: object) -> None:
    rollup = Rollup()
    rollup.aggregates = ScanCountingDict()
    rng = random.Random(3)
    for day in DAYS:
        for values in full_day(day, rng):
            add_observation(rollup, values)
        add_observation(rollup, {**full_day(day, rng)[0], "command": "one-too-many"})
    assert ScanCountingDict.scans == 0  # the per-day limit is checked without a scan
    assert len(rollup.aggregates) == len(DAYS) * MAX_KEYS_PER_DAY
    assert rollup.dropped == dict.fromkeys(DAYS, 1)
    # Keys freed by a send or by pruning are free again for their day.
    first = rollup.records()[0]
    rollup.subtract(first)
    add_observation(rollup, {**full_day(first.day, rng)[0], "command": "fits-now"})
    assert ("fits-now" in {command_of(key) for key in rollup.aggregates}) is True
    rollup.prune((NOON.date() + datetime.timedelta(days=MAX_PENDING_DAYS)).isoformat())
    add_observation(rollup, {**full_day(DAYS[1], rng)[0], "command": "fits-too"})  # pruned day
    assert "fits-too" in {command_of(key) for key in rollup.aggregates}
    reliability.record(  # type: ignore[attr-defined]
        area="Bounds",
        fault=f"adding records to a rollup at its limits ({len(DAYS)} days x "
        f"{MAX_KEYS_PER_DAY} keys, one more key per day)",
        cases=len(DAYS),
        outcome="the per-day limit is checked from a per-day count (no scan of the keys); "
        "the key past the limit is counted as dropped; keys freed by a send or pruning are reused",
        lost="the keys past the per-day limit (counted, as documented)",
    )


def test_the_largest_record_the_schema_allows_fits_the_size_the_store_allows_for() -> None:
    from typer_telemetry._checks import MAX_COUNT, MAX_FLAGS
    from typer_telemetry._runner import AGENTS
    from typer_telemetry._schema import DURATION_BUCKET_COUNT

    share = MAX_COUNT // DURATION_BUCKET_COUNT
    record = Record.from_json(
        {
            "day": "2026-03-10",
            "event": "command",
            "properties": {
                "command": " ".join(f"{index}" + "c" * 63 for index in range(8)),
                "flags": [f"--{index:02d}" + "f" * 61 for index in range(MAX_FLAGS)],
                # Every signal, at its longest.
                "agent": max(AGENTS, key=len),
                "project_id": "f" * 32,
                "runner": "terminal",
                "sample_rate": 2.2250738585072014e-308,  # the longest repr
            },
            "outcome": "usage_error",
            "error_class": "E" * 100,
            "count": share * DURATION_BUCKET_COUNT,
            "duration_ms_sum": 5.447554109267351e24,  # longest reprs under the limit
            "duration_ms_min": 1.2345678901234567e20,
            "duration_ms_max": 5.447554109267351e24,
            "duration_ms_buckets": [share] * DURATION_BUCKET_COUNT,
        }
    )
    written = json.dumps(record.to_json(), separators=(",", ":")).encode()
    assert len(written) <= _store.MAX_RECORD_BYTES, len(written)
    assert len(written) > _store.MAX_RECORD_BYTES * 0.9  # the bound is tight, not a guess


def test_a_full_store_of_long_names_is_read_back_whole(tmp_path: Path, reliability: object) -> None:
    """Longer names than a toy tool's: the full store passes the old 4 MiB read limit."""
    store = RollupStore(tmp_path / "store", lambda message: None)
    rng = random.Random(5)
    rollup = Rollup(folded_through=1)
    flags = tuple(sorted(f"--a-rather-long-option-name-number-{index}" for index in range(8)))
    for day in DAYS:
        for values in full_day(day, rng):
            command = f"{values['command']} with-a-long-subcommand-name"
            add_observation(rollup, {**values, "command": command, "flags": flags})
    store.directory.mkdir(parents=True)
    store._write_rollup(rollup)
    size = store.rollup_path.stat().st_size
    assert size > 4 * 1024 * 1024  # what the store once refused to read, and set aside
    assert len(store.pending(today=TODAY)) == len(DAYS) * MAX_KEYS_PER_DAY
    assert not list(store.directory.glob("rollup.json.unusable-*"))
    reliability.record(  # type: ignore[attr-defined]
        area="Bounds",
        fault=f"a store at its limits with long command and flag names ({size // 2**20} MiB)",
        cases=1,
        outcome="read back whole: the read limit is derived from the limits and the largest "
        "record the schema allows (about 59 MB), so no store within the limits is set aside",
    )


def test_a_fold_keeps_the_batch_noted_in_flight_and_the_drops(tmp_path: Path) -> None:
    store = RollupStore(tmp_path / "store", lambda message: None)
    write_full_store(store.directory)
    yesterday = DAYS[1]
    batch = [record for record in store.pending(today=TODAY) if record.day == yesterday]
    assert store.note_in_flight(InFlight(yesterday, "a" * 32, batch), today=TODAY)
    values = {**full_day(TODAY, random.Random(4))[0], "command": "one-too-many"}
    append_event(store, Observation.of_command(**values))  # type: ignore[arg-type]
    assert store.fold(today=TODAY)  # a fold that parses today only
    in_flight = store.in_flight()
    assert in_flight is not None
    assert (in_flight.day, in_flight.idempotency_key, in_flight.records) == (
        yesterday,
        "a" * 32,
        tuple(batch),
    )
    assert store.pending_rollup(today=TODAY).dropped == {TODAY: 1}


def test_an_edited_record_in_a_day_no_fold_touches_is_caught_by_the_next_full_read(
    tool: Tool, reliability: object
) -> None:
    """The store's own layout, one record of an old day made invalid by hand."""
    write_full_store(tool.store_dir)
    rollup = tool.store_dir / "rollup.json"
    lines = rollup.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"count":1,', b'"count":-1,')  # the oldest day's first record
    rollup.write_bytes(b"\n".join(lines))
    env = {"TOOL_NOW": str(NOON.timestamp())}
    store = RollupStore(tool.store_dir, lambda message: None)
    append_event(store, Observation.of_command(**full_day(TODAY, random.Random(6))[0]))  # type: ignore[arg-type]
    assert store.fold(today=TODAY)  # copies the old day unparsed
    assert b'"count":-1,' in rollup.read_bytes()
    result = tool.run("hello", "x", env=env)
    assert (result.returncode, result.stdout) == (0, "Hello, x!\n")
    status = tool.status(env)
    assert status["pending"] == []  # nothing outside the schema is shown as pending
    assert store.completed_days(today=TODAY) == (0, {})  # sending sets the file aside
    assert list(tool.store_dir.glob("rollup.json.unusable-*"))
    reliability.record(  # type: ignore[attr-defined]
        area="Bounds",
        fault="rollup.json in the store's own layout with an invalid record in a day "
        "that folds do not parse",
        cases=1,
        outcome="folds copy that day unread; status shows nothing pending; the next send "
        "reads the whole file, refuses it and sets it aside as rollup.json.unusable-*",
        lost="the pending records of that file, and those folded into it until the send "
        "(kept aside, as for any unusable rollup)",
    )


def test_an_event_arriving_at_a_full_journal_is_kept_once_folding_makes_room(
    tmp_path: Path, reliability: object
) -> None:
    """At MAX_JOURNAL_BYTES the recorder folds and appends again: a drop only if it cannot."""
    from typer_telemetry import _recording

    store = RollupStore(tmp_path / "store", lambda message: None)
    values = full_day(TODAY, random.Random(8))[0]
    observation = Observation.of_command(**values)  # type: ignore[arg-type]
    append_event(store, observation)  # makes the folder and the journal as a run does
    line = observation.journal_line()
    lines = (_recording.MAX_JOURNAL_BYTES - store.journal_path.stat().st_size) // len(line)
    with open(store.journal_path, "ab") as journal:
        journal.write(line * lines)  # the journal now holds no room for one more line
    assert store.journal_path.stat().st_size + len(line) > _recording.MAX_JOURNAL_BYTES
    append_event(store, observation)
    after = store.pending_rollup(today=TODAY)
    assert after.dropped == {}
    assert counts(after.records()) == {
        (TODAY, values["command"], values["outcome"], values["flags"]): lines + 2
    }
    reliability.record(  # type: ignore[attr-defined]
        area="Bounds",
        fault=f"an event arriving at a full journal ({_recording.MAX_JOURNAL_BYTES} bytes) "
        "that folding can empty",
        cases=1,
        outcome="the recorder folds, then appends the event; every count exact, no drop counted",
    )
