"""Recording: whether an observation may be kept, and one appended journal line if so.

Every event the tool records (a command the hook timed, an event of the
author's own) arrives here as an `Observation`. The recorder decides (an
opt-out in the environment first, before any file is looked at; then the
whole consent table with the stored choice), claims the install id and shows
the first-run notice on the first recording run, applies the sampling
decision and the built-in signals the author turned on, checks the
observation against the schema, and appends it to the journal: one `open`,
one shared `flock` and one `write` of about a hundred bytes. Once the journal
has grown past `FOLD_AT_BYTES` the store folds it (`_store.py`, loaded only
then: about one run in 150).

Nothing is appended in a store folder, or to a journal, that another user
owns or others may write to: both are checked with `fstat` on the opened
descriptors, which costs no extra open.

Hot path: standard library only.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ._checks import COMMAND_EVENT
from ._paths import (
    DROPPED_NAME,
    JOURNAL_NAME,
    O_CLOEXEC,
    O_DIRECTORY,
    O_NOFOLLOW,
    O_NONBLOCK,
    PRIVATE_FILE_MODE,
    UnsafeFile,
    check_private,
    ensure_private_dir,
    open_folder,
)

if TYPE_CHECKING:
    from ._config import Config
    from ._paths import Paths
    from ._records import Properties
    from ._settings import Settings

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locks, so nothing is recorded
    fcntl = None  # type: ignore[assignment]

# Limits, documented in TELEMETRY.md and docs/design.md.
FOLD_AT_BYTES = 16 * 1024
MAX_JOURNAL_BYTES = 1024 * 1024
FULL_JOURNAL_WAIT_SECONDS = 0.5
MAX_DROPPED_BYTES = 64 * 1024  # about 2,500 drops counted while folding stays stuck


class Observation:
    """One event as it happened: its day, name, properties, ending and duration.

    `properties` are (name, value) pairs sorted by name; `duration_ms` is
    None for an event recorded without a duration.
    """

    __slots__ = ("day", "duration_ms", "error_class", "event", "outcome", "properties")

    def __init__(
        self,
        day: str,
        event: str,
        properties: Properties,
        outcome: str,
        error_class: str,
        duration_ms: float | None,
    ) -> None:
        self.day = day
        self.event = event
        self.properties = properties
        self.outcome = outcome
        self.error_class = error_class
        self.duration_ms = duration_ms

    @classmethod
    def of_command(
        cls,
        day: str,
        command: str,
        outcome: str,
        error_class: str,
        flags: tuple[str, ...],
        duration_ms: float,
    ) -> Observation:
        """A command invocation: the built-in event with its command path and flags."""
        return cls(
            day,
            COMMAND_EVENT,
            (("command", command), ("flags", flags)),
            outcome,
            error_class,
            duration_ms,
        )

    def replace(
        self, properties: Properties, error_class: str, duration_ms: float | None
    ) -> Observation:
        """The same event with other properties, error class and duration (see `_fit`)."""
        return Observation(self.day, self.event, properties, self.outcome, error_class, duration_ms)

    def with_properties(self, extra: Properties) -> Observation:
        """The observation with more properties (the built-in signals), still sorted by name."""
        if not extra:
            return self
        properties = tuple(sorted(self.properties + extra, key=_property_name))
        return Observation(
            self.day, self.event, properties, self.outcome, self.error_class, self.duration_ms
        )

    def __repr__(self) -> str:
        duration = "None" if self.duration_ms is None else f"{self.duration_ms:.3f}"
        return (
            f"Observation(day={self.day!r}, event={self.event!r}, properties={self.properties!r},"
            f" outcome={self.outcome!r}, error_class={self.error_class!r}, duration_ms={duration})"
        )

    def journal_line(self) -> bytes:
        # Every string was checked against the schema's character classes
        # (no quotes, backslashes or control characters), so plain quoting
        # is valid JSON and the hot path needs no json import. The leading
        # newline frames the record: a torn earlier write (full disk) can
        # spoil only itself, never the record after it.
        properties = ",".join(f'"{name}":{_json_value(value)}' for name, value in self.properties)
        duration = "null" if self.duration_ms is None else repr(round(self.duration_ms, 3))
        return (
            f'\n{{"day":"{self.day}","event":"{self.event}","properties":{{{properties}}},'
            f'"outcome":"{self.outcome}","error_class":"{self.error_class}",'
            f'"duration_ms":{duration}}}'
        ).encode("ascii")


def _property_name(pair: tuple[str, object]) -> str:
    return pair[0]


def _json_value(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ",".join(f'"{item}"' for item in value) + "]"
    return repr(value)  # the sample rate: a finite float


# -- the recorder ---------------------------------------------------------------


def record_command(
    settings: Settings,
    command: str,
    outcome: str,
    error_class: str,
    flags: tuple[str, ...],
    duration_ms: float,
) -> None:
    """Record one invocation of a command (what the hook calls as an invocation ends)."""
    record(
        settings,
        Observation.of_command(settings.today(), command, outcome, error_class, flags, duration_ms),
    )


def record(settings: Settings, observation: Observation) -> None:
    """Keep `observation` if consent allows, in the journal of the user running the tool.

    Never raises for anything the environment or the files do: what was not
    recorded is explained under `<NAME>_TELEMETRY_DEBUG` (and counted as
    dropped where the schema or the store had no room for it).
    """
    allowed = _allowed(settings)
    if allowed is None:
        return
    paths, config = allowed
    if config.install_id is None or not config.notice_shown:
        from ._config import claim_identity, decision_for

        config = claim_identity(settings, paths)
        if not decision_for(settings, config, paths).enabled:
            return
    if settings.sample_rate < 1.0 and not sampled_in(settings.sample_rate):
        settings.debug(f"not recording: this process is sampled out (rate {settings.sample_rate})")
        return
    if settings.signals or settings.sample_rate < 1.0:
        from ._signals import signal_properties

        observation = observation.with_properties(signal_properties(settings, config, paths))
    from ._checks import SchemaError, check_observation

    try:
        check_observation(observation)
    except SchemaError:
        from ._fit import fit_observation

        fitted = fit_observation(observation)
        if fitted is None:
            count_dropped(
                paths.store_dir,
                observation.day,
                settings.debug,
                "the event cannot be recorded within the schema (see TELEMETRY.md)",
            )
            return
        observation = observation.replace(*fitted)
        settings.debug("the event was made to fit the schema (see TELEMETRY.md)")
    append(paths.store_dir, observation, settings.debug)
    settings.debug(f"recorded {observation}")


def record_drop(settings: Settings, reason: str) -> None:
    """Count, for today, an event that could not be recorded (the tool gave a value its
    declaration does not allow), if consent allows recording at all: `status` shows it."""
    allowed = _allowed(settings)
    if allowed is None or allowed[1].install_id is None:
        return  # nothing was ever recorded here: a drop alone does not start recording
    count_dropped(allowed[0].store_dir, settings.today(), settings.debug, reason)


def _allowed(settings: Settings) -> tuple[Paths, Config] | None:
    """This user's folders and config, if consent allows recording now; else None.

    An opt-out in the environment decides before any file is looked at.
    Why nothing is recorded is explained under `<NAME>_TELEMETRY_DEBUG`.
    """
    from ._consent import decided_by_environment

    by_environment = decided_by_environment(settings.env_prefix, os.environ)
    if by_environment is not None and not by_environment.enabled:
        settings.debug(f"not recording: {by_environment.reason}")
        return None
    from ._config import decision_for, read_config

    paths = settings.paths()  # this invocation's user: resolved once, used throughout
    config = read_config(paths.config_file)
    decision = decision_for(settings, config, paths)
    if not decision.enabled:
        settings.debug(f"not recording: {decision.reason}")
        return None
    return paths, config


# The sampling decision of this process: made once, on its first recorded event,
# and kept for every later one (a process is recorded whole, or not at all).
_sampled: dict[float, bool] = {}


def sampled_in(rate: float) -> bool:
    """Whether this process records at sample `rate` (sticky: the same answer all its life)."""
    decided = _sampled.get(rate)
    if decided is None:
        import random

        decided = _sampled[rate] = random.random() < rate
    return decided


# -- the journal ------------------------------------------------------------------


def append(directory: Path, observation: Observation, debug: Callable[[str], None]) -> None:
    """Add one event to the journal; fold the journal when it has grown."""
    line = observation.journal_line()
    today = observation.day
    try:
        size = append_line(directory, line)
    except UnsafeFile as unsafe:
        debug(f"not recording: {unsafe.describe('data')}")
        return
    if size is None:
        # The journal is full (other processes outran folding) or kept
        # moving: fold it, waiting briefly for a fold under way, and try once more.
        from ._store import RollupStore

        if RollupStore(directory, debug).fold(today=today, wait=FULL_JOURNAL_WAIT_SECONDS):
            size = append_line(directory, line)
        if size is None:
            count_dropped(
                directory, observation.day, debug, "the journal is full and cannot be folded now"
            )
            return
    if size >= FOLD_AT_BYTES:
        from ._store import RollupStore

        RollupStore(directory, debug).fold(today=today)


def count_dropped(directory: Path, day: str, debug: Callable[[str], None], reason: str) -> None:
    """Count an event that found no room (or no form in the schema), so that `status` shows it."""
    marker = f'\n{{"dropped":"{day}"}}'.encode("ascii")
    try:
        counted = append_line(directory, marker, DROPPED_NAME, MAX_DROPPED_BYTES) is not None
    except OSError as error:
        debug(f"{reason}; event dropped ({error})")
        return
    debug(
        f"{reason}; event dropped"
        + (" (counted)" if counted else " (too many to count until folding resumes)")
    )


def _open(directory: Path, name: str) -> int:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK
    if not O_DIRECTORY:  # pragma: no cover - no O_DIRECTORY (Windows)
        ensure_private_dir(directory)
        return os.open(directory / name, flags, PRIVATE_FILE_MODE)
    # Opened through the folder's own descriptor, taken without following a
    # link and checked to be ours alone: a symlink planted in place of the
    # store folder, or a folder others may write to, is never written in.
    try:
        folder = open_folder(directory)
    except FileNotFoundError:
        ensure_private_dir(directory)
        folder = open_folder(directory)
    try:
        return os.open(name, flags, PRIVATE_FILE_MODE, dir_fd=folder)
    finally:
        os.close(folder)


def append_line(
    directory: Path, line: bytes, name: str = JOURNAL_NAME, limit: int = MAX_JOURNAL_BYTES
) -> int | None:
    """Append under a shared lock on the live journal; its new size, or None when it has no room.

    A folder takes the exclusive lock only after renaming the journal away,
    so a refused lock or a changed inode both mean: this file is no longer
    the live journal; reopen. A journal that keeps moving has no room either.
    """
    if fcntl is None:  # pragma: no cover - Windows
        raise OSError(errno.ENOTSUP, "file locks are not available on this platform")
    path = directory / name
    for _attempt in range(8):
        descriptor = _open(directory, name)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            opened = os.fstat(descriptor)
            if not stat.S_ISREG(opened.st_mode):
                raise OSError(f"{path} is not a regular file")
            check_private(path, opened)
            try:
                live = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if (opened.st_ino, opened.st_dev) != (live.st_ino, live.st_dev):
                continue
            if opened.st_size + len(line) > limit:
                return None
            written = os.write(descriptor, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, "short write to the telemetry journal")
            return opened.st_size + written
        finally:
            os.close(descriptor)
    return None
