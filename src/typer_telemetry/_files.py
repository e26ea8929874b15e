"""Files we own: the per-user folders, private atomic files, and process-bound locks.

Folders are created 0700 and files 0600, never through a planted symlink.
Locks are POSIX `flock`s, which the OS releases when the process dies; where
they are missing (Windows) locking raises `LockUnavailable` and telemetry
stays off for the run (fail closed).
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CONFIG_FILE_NAME = "telemetry.toml"
STORE_DIR_NAME = "telemetry"

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

# Flags that only POSIX has (0 elsewhere): never follow a planted symlink,
# never hand a descriptor to a child process, never wait on a planted pipe.
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class Paths:
    """The tool's telemetry config file and rollup store folder."""

    __slots__ = ("config_dir", "state_dir")

    def __init__(self, config_dir: Path, state_dir: Path) -> None:
        self.config_dir = config_dir
        self.state_dir = state_dir

    @classmethod
    def for_tool(cls, tool_name: str) -> Paths:
        xdg = _xdg_folders(tool_name)
        if xdg is not None:
            return cls(*xdg)
        import platformdirs  # every case the shortcut does not settle

        try:
            return cls(
                config_dir=Path(platformdirs.user_config_dir(tool_name, appauthor=False)),
                state_dir=Path(platformdirs.user_state_dir(tool_name, appauthor=False)),
            )
        except RuntimeError:
            # No home at all (newer platformdirs raise): relative paths, as older
            # ones return, which ensure_private_dir refuses to create.
            return cls(Path("~/.config", tool_name), Path("~/.local/state", tool_name))

    @property
    def config_file(self) -> Path:
        return self.config_dir / CONFIG_FILE_NAME

    @property
    def store_dir(self) -> Path:
        return self.state_dir / STORE_DIR_NAME


def _xdg_folders(tool_name: str) -> tuple[Path, Path] | None:
    """platformdirs' answer for the plain Linux case, without importing it (~3 ms).

    An absolute XDG_CONFIG_HOME / XDG_STATE_HOME is used as is; otherwise the
    folder under an absolute HOME. Anything else (another OS, no usable HOME)
    returns None and platformdirs decides. A test pins the two to agree.
    """
    if not sys.platform.startswith("linux"):
        return None
    home = os.environ.get("HOME", "")
    folders = []
    for variable, default in (("XDG_CONFIG_HOME", ".config"), ("XDG_STATE_HOME", ".local/state")):
        base = os.environ.get(variable, "")
        if not os.path.isabs(base):
            if not os.path.isabs(home):
                return None
            base = os.path.join(home, default)
        folders.append(Path(os.path.join(base, tool_name)))
    return folders[0], folders[1]


def ensure_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) readable by the user alone.

    A symlink in place of the folder is refused rather than followed, so that
    a planted link cannot redirect writes elsewhere.
    """
    if not path.is_absolute():
        # No home could be found (no HOME, no passwd entry): a relative "~/..."
        # would land in whatever folder the tool runs in.
        raise FileNotFoundError(f"{path} is not an absolute path")
    # The tool's state folder is ours as much as the store folder in it.
    owned = (path, path.parent) if path.name == STORE_DIR_NAME else (path,)
    if any(folder.is_symlink() for folder in owned):
        raise NotADirectoryError(f"{path} is reached through a symlink")
    home = os.environ.get("HOME")
    missing: list[Path] = []
    current = path
    while not current.exists() and not current.is_symlink():
        if home and str(current) == os.path.normpath(home):
            # A guest does not create the user's home (HOME=/nonexistent means "none").
            raise FileNotFoundError(f"the home folder {home} does not exist")
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, PRIVATE_DIR_MODE)
    if path.is_symlink() or not path.is_dir():
        raise NotADirectoryError(f"{path} is not a plain folder")
    if path.stat().st_mode & 0o077:
        os.chmod(path, PRIVATE_DIR_MODE)


def write_private_file(path: Path, data: bytes) -> None:
    """Replace `path` atomically with `data`, mode 0600, durable once this returns."""
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


def remove_leftover_temporaries(path: Path) -> None:
    """Delete the temporary files that `write_private_file` left for `path` when killed.

    Call it only under the lock that every writer of `path` holds: then no
    writer alive owns one of them.
    """
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        leftover.unlink(missing_ok=True)


def read_small_file(path: Path, limit: int) -> bytes:
    """Read a file we own without following a planted symlink; refuse anything huge.

    Only a regular file is read: opening a named pipe in its place would wait
    forever for a writer (hence O_NONBLOCK), and a folder cannot be read.
    """
    flags = os.O_RDONLY | O_NOFOLLOW | O_NONBLOCK
    descriptor = os.open(path, flags)
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(f"{path} is not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit} bytes")
    return data


try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


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
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | O_NOFOLLOW, PRIVATE_FILE_MODE)
    try:
        wait_lock(descriptor, shared=False, timeout=timeout)
        yield descriptor
    finally:
        os.close(descriptor)


@contextmanager
def try_locked_file(path: Path) -> Iterator[bool]:
    """Try once for an exclusive lock on `path`; yields whether it was taken."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | O_NOFOLLOW, PRIVATE_FILE_MODE)
    try:
        yield try_lock(descriptor, shared=False)
    finally:
        os.close(descriptor)
