"""Advisory file locks tied to the process: the OS releases them when it dies.

POSIX `flock` only; where it is missing (Windows) locking raises
`LockUnavailable` and telemetry stays off for the run (fail closed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ._paths import PRIVATE_FILE_MODE

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class LockUnavailable(OSError):
    """The lock is held elsewhere (or locks do not exist here)."""


def _flock(descriptor: int, operation: int) -> None:
    if fcntl is None:  # pragma: no cover - Windows
        raise LockUnavailable("file locks are not available on this platform")
    fcntl.flock(descriptor, operation)


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


def wait_lock(descriptor: int, *, shared: bool, timeout: float) -> None:
    """Take the lock, waiting at most `timeout` seconds (a stuck holder must not hang us)."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not try_lock(descriptor, shared=shared):
        if time.monotonic() >= deadline:
            raise LockUnavailable("the lock is held by another process")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


@contextmanager
def locked_file(path: Path, *, timeout: float) -> Iterator[int]:
    """Hold an exclusive lock on `path` (created 0600 if missing) for the block."""
    descriptor = os.open(
        path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE_MODE
    )
    try:
        wait_lock(descriptor, shared=False, timeout=timeout)
        yield descriptor
    finally:
        os.close(descriptor)


@contextmanager
def try_locked_file(path: Path) -> Iterator[bool]:
    """Try once for an exclusive lock on `path`; yields whether it was taken."""
    descriptor = os.open(
        path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE_MODE
    )
    try:
        yield try_lock(descriptor, shared=False)
    finally:
        os.close(descriptor)


def unlock(descriptor: int) -> None:
    if fcntl is not None:
        _flock(descriptor, fcntl.LOCK_UN)
