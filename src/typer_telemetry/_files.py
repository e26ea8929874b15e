"""Changing files of ours safely: atomic replacement, and locks that die with the process.

A file is replaced by writing a new temporary file in the same checked
folder and renaming it over the old one, so a reader sees the old or the new
content, never a mix, and a killed writer leaves only a temporary behind.
Locks are POSIX `flock`s, which the OS releases when the process dies; where
they are missing (Windows) locking raises `LockUnavailable` and telemetry
stays off for the run (fail closed). Where the files are is `_paths.py`'s.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ._paths import (
    O_CLOEXEC,
    O_NOFOLLOW,
    O_NONBLOCK,
    OPENS_FOLDERS,
    PRIVATE_FILE_MODE,
    checked_file,
    open_folder,
    open_in_folder,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def write_private_file(path: Path, data: bytes) -> None:
    """Replace `path` atomically with `data`, mode 0600, durable once this returns.

    The temporary file is made new (O_EXCL) inside the checked folder and
    renamed there: no existing file, a planted one included, is ever opened
    for writing.
    """
    if not OPENS_FOLDERS:  # pragma: no cover - Windows
        _write_by_path(path, data)
        return
    folder = open_folder(path.parent)
    try:
        temporary = f".{path.name}.{os.getpid()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_NOFOLLOW | O_CLOEXEC
        try:
            descriptor = os.open(temporary, flags, PRIVATE_FILE_MODE, dir_fd=folder)
        except FileExistsError:  # left by a killed process that had our pid
            os.unlink(temporary, dir_fd=folder)
            descriptor = os.open(temporary, flags, PRIVATE_FILE_MODE, dir_fd=folder)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=folder)
            raise
    finally:
        os.close(folder)


def _write_by_path(path: Path, data: bytes) -> None:  # pragma: no cover - Windows
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | O_NOFOLLOW
    descriptor = os.open(temporary, flags, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def is_leftover_temporary(name: str, of: str) -> bool:
    """Whether `name` is a temporary file `write_private_file` makes for the file `of`."""
    prefix = f".{of}."
    return name.startswith(prefix) and name.endswith(".tmp") and len(name) > len(prefix) + 4


def remove_leftover_temporaries(path: Path) -> None:
    """Delete the temporary files that `write_private_file` left for `path` when killed.

    Call it only under the lock that every writer of `path` holds: then no
    writer alive owns one of them. Nothing is deleted in a folder that is
    not ours alone (`UnsafeFile`).
    """
    if not OPENS_FOLDERS:  # pragma: no cover - Windows
        for leftover in path.parent.glob(f".{path.name}.*.tmp"):
            leftover.unlink(missing_ok=True)
        return
    try:
        folder = open_folder(path.parent)
    except FileNotFoundError:
        return
    try:
        for entry in os.scandir(folder):
            if is_leftover_temporary(entry.name, path.name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.name, dir_fd=folder)
    finally:
        os.close(folder)


class LockUnavailable(OSError):
    """The lock is held elsewhere (or locks do not exist here)."""


def try_lock(descriptor: int, *, shared: bool) -> bool:
    """Take the lock without waiting; False when another process holds it."""
    if fcntl is None:  # pragma: no cover - Windows
        raise LockUnavailable("file locks are not available on this platform")
    operation = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    try:
        fcntl.flock(descriptor, operation)
    except BlockingIOError:
        return False
    return True


# Threads whose lock waits give up at once: sending threads, once the interpreter exits.
_abandoned: set[int] = set()


def abandon_lock_waits(threads: Iterable[int]) -> None:
    """Make the lock waits of these threads (by ident) give up from now on (see `_exiting`)."""
    _abandoned.update(threads)


def wait_lock(descriptor: int, *, shared: bool, timeout: float) -> None:
    """Take the lock, waiting at most `timeout` seconds (a stuck holder must not hang us)."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not try_lock(descriptor, shared=shared):
        if time.monotonic() >= deadline:
            raise LockUnavailable("the lock is held by another process")
        if _abandoned and _thread.get_ident() in _abandoned:
            raise LockUnavailable("the tool is exiting")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def open_lock_file(path: Path) -> int:
    """Open (create 0600 if missing) a lock file of ours, in a folder of ours alone.

    No lock file is created in a folder another user owns or others may
    write to, and a lock file that is not a regular file of ours is refused.
    """
    flags = os.O_RDWR | os.O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK
    descriptor = open_in_folder(path, flags)
    checked_file(path, descriptor)
    return descriptor


@contextmanager
def locked_file(path: Path, *, timeout: float) -> Iterator[int]:
    """Hold an exclusive lock on `path` (created 0600 if missing) for the block."""
    descriptor = open_lock_file(path)
    try:
        wait_lock(descriptor, shared=False, timeout=timeout)
        yield descriptor
    finally:
        os.close(descriptor)


@contextmanager
def try_locked_file(path: Path) -> Iterator[bool]:
    """Try once for an exclusive lock on `path`; yields whether it was taken."""
    descriptor = open_lock_file(path)
    try:
        yield try_lock(descriptor, shared=False)
    finally:
        os.close(descriptor)
