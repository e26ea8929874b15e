"""The journal: where every recorded invocation goes, one appended line each.

An invocation costs one `open`, one shared `flock` and one `write` of about a
hundred bytes. Every process appends to the same `journal.log` in the store
folder; `_store.py` folds it into the per-day rollup once it passes
`COMPACT_AT_BYTES`, and loads only then (about one run in 150).

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

from ._files import (
    O_CLOEXEC,
    O_DIRECTORY,
    O_NOFOLLOW,
    O_NONBLOCK,
    PRIVATE_FILE_MODE,
    LockUnavailable,
    UnsafeFile,
    check_private,
    ensure_private_dir,
    open_folder,
    try_lock,
)

JOURNAL_NAME = "journal.log"
# Records dropped because the journal was full and could not be folded are
# counted here, one short line each, folded into `dropped` like a journal.
DROPPED_NAME = "dropped.log"

# Limits, documented in TELEMETRY.md and docs/design.md.
COMPACT_AT_BYTES = 16 * 1024
MAX_JOURNAL_BYTES = 1024 * 1024
FULL_JOURNAL_WAIT_SECONDS = 0.5
MAX_DROPPED_BYTES = 64 * 1024  # about 2,500 drops counted while folding stays stuck


class Observation:
    """One finished invocation, as the hook saw it."""

    __slots__ = ("command", "day", "duration_ms", "error_class", "flags", "outcome")

    def __init__(
        self,
        day: str,
        command: str,
        outcome: str,
        error_class: str,
        flags: tuple[str, ...],
        duration_ms: float,
    ) -> None:
        self.day = day
        self.command = command
        self.outcome = outcome
        self.error_class = error_class
        self.flags = flags
        self.duration_ms = duration_ms

    def __repr__(self) -> str:
        return (
            f"Observation(day={self.day!r}, command={self.command!r}, outcome={self.outcome!r}, "
            f"error_class={self.error_class!r}, flags={self.flags!r}, "
            f"duration_ms={self.duration_ms:.3f})"
        )

    def journal_line(self) -> bytes:
        # Every string was checked against the schema's character classes
        # (no quotes, backslashes or control characters), so plain quoting
        # is valid JSON and the hot path needs no json import. The leading
        # newline frames the record: a torn earlier write (full disk) can
        # spoil only itself, never the record after it.
        flags = ",".join(f'"{flag}"' for flag in self.flags)
        return (
            f'\n{{"day":"{self.day}","command":"{self.command}","outcome":"{self.outcome}",'
            f'"error_class":"{self.error_class}","flags":[{flags}],'
            f'"duration_ms":{round(self.duration_ms, 3)!r}}}'
        ).encode("ascii")


def append(
    directory: Path, observation: Observation, *, today: str, debug: Callable[[str], None]
) -> None:
    """Add one invocation to the journal; fold the journal when it has grown."""
    line = observation.journal_line()
    try:
        size = append_line(directory, line)
    except LockUnavailable:
        size = None  # a stuck process holds the journal: folding moves it aside
    except UnsafeFile as unsafe:
        debug(f"not recording: {unsafe.describe('data')}")
        return
    if size is None:
        # The journal is full: other processes outran folding. Fold it
        # (waiting briefly for a fold under way) and try once more.
        from ._store import RollupStore

        if RollupStore(directory, debug).fold(today=today, wait=FULL_JOURNAL_WAIT_SECONDS):
            size = append_line(directory, line)
        if size is None:
            _count_dropped(directory, observation.day, debug)
            return
    if size >= COMPACT_AT_BYTES:
        from ._store import RollupStore

        RollupStore(directory, debug).compact(today=today)


def _count_dropped(
    directory: Path,
    day: str,
    debug: Callable[[str], None],
    reason: str = "the journal is full and cannot be folded now",
) -> None:
    """Count a record that found no room (or no form in the schema), so that `status` shows it."""
    marker = f'\n{{"dropped":"{day}"}}'.encode("ascii")
    try:
        counted = append_line(directory, marker, DROPPED_NAME, MAX_DROPPED_BYTES) is not None
    except OSError as error:
        debug(f"{reason}; record dropped ({error})")
        return
    debug(
        f"{reason}; record dropped"
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
    """Append under a shared lock on the live journal; its new size, or None when full."""
    path = directory / name
    for _attempt in range(8):
        descriptor = _open(directory, name)
        try:
            # A folder takes the exclusive lock only after renaming the
            # journal away, so a refused lock or a changed inode both
            # mean: this file is no longer the live journal; reopen.
            if not try_lock(descriptor, shared=True):
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
    raise LockUnavailable("the journal kept moving while appending")
