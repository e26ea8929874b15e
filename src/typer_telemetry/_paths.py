"""Where the tool's files are, and opening them only when they are the user's alone.

The per-user folders (platformdirs' config and state folders for the tool)
and the name of every file the library keeps in them. Folders are created
0700 and files 0600, never through a planted symlink. A folder or file
another user owns, or that others may write to, is refused (`UnsafeFile`):
checked with `fstat` on what was opened (the folder opened with
O_DIRECTORY|O_NOFOLLOW, the file through it with O_NOFOLLOW), nothing is read
from it, written into it or changed about it. Writing files and locking them
is `_files.py`'s.

Hot path: standard library only (platformdirs only where the Linux shortcut
does not settle the folders).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from pathlib import Path

from ._consent import SANDBOX_VARIABLE

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

# Where folders can be opened and files opened through them (POSIX); elsewhere
# the helpers fall back to paths, and ownership is not checked (no uids).
OPENS_FOLDERS = bool(O_DIRECTORY) and os.open in os.supports_dir_fd
_FOLDER_FLAGS = os.O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
_geteuid = getattr(os, "geteuid", None)
# Mode bits that let users other than the owner change a folder or file.
WRITABLE_BY_OTHERS = 0o022

# The files of the store folder (see docs/design.md for what each holds).
JOURNAL_NAME = "journal.log"
DROPPED_NAME = "dropped.log"
ROLLUP_NAME = "rollup.json"
FOLD_LOCK_NAME = "compact.lock"
SEND_LOCK_NAME = "send.lock"
DELETIONS_NAME = "deletions.json"
SENT_IDS_NAME = "sent-ids.json"
NOT_BEFORE_NAME = "not-before.json"


class UnsafeFile(PermissionError):
    """A folder or file of ours that another user owns or that others may write to.

    Such a file may hold a planted install id or choice, or hand what we
    write to someone else: it is neither trusted nor written, and telemetry
    stays off while it is there. `describe` names it for the user, with the
    fix where there is a simple one.
    """

    def __init__(self, path: Path | str, *, folder: bool, problem: str, fix: str = "") -> None:
        self.path = str(path)
        self.folder = folder
        self.problem = problem
        self.fix = fix
        super().__init__(self.describe())

    def describe(self, role: str = "") -> str:
        """`the config folder /x is owned by another user (uid 65534)`, with `role` "config"."""
        noun = "folder" if self.folder else "file"
        return f"the {role + ' ' if role else ''}{noun} {self.path} {self.problem}{self.fix}"


def _quoted(path: str) -> str:
    """The path as a shell word, for the `chmod` a message suggests."""
    if path and all(char.isalnum() or char in "/._-+@%:," for char in path):
        return path
    return "'" + path.replace("'", "'\\''") + "'"


def check_private(path: Path | str, found: os.stat_result) -> None:
    """Refuse what another user owns or others may write to (`found` is an fstat of it).

    Only the owner and the write bits count: a folder of ours that others
    may merely read is tightened by `ensure_private_dir`, not refused.
    """
    if _geteuid is None:  # pragma: no cover - no uids (Windows)
        return
    folder = stat.S_ISDIR(found.st_mode)
    if found.st_uid != _geteuid():
        raise UnsafeFile(
            path, folder=folder, problem=f"is owned by another user (uid {found.st_uid})"
        )
    if found.st_mode & WRITABLE_BY_OTHERS and not (
        found.st_mode & 0o002 == 0 and _is_own_private_group(found.st_gid)
    ):
        private = "700" if folder else "600"
        raise UnsafeFile(
            path,
            folder=folder,
            problem=f"is writable by other users (mode {stat.S_IMODE(found.st_mode):04o})",
            fix=f"; `chmod {private} {_quoted(str(path))}` fixes it",
        )


def _is_own_private_group(gid: int) -> bool:
    """Whether `gid` is the user's private group: named after the user, with no other member.

    Where each user has a group of their own (the default of Debian, Ubuntu
    and Fedora), the umask is 002 and folders a tool makes itself are group
    writable; that group holds only the user, so group write is no one else's.
    """
    import grp  # only for a group-writable file: rare, so not on every run
    import pwd

    try:
        user = pwd.getpwuid(_geteuid()).pw_name  # type: ignore[misc]
        group = grp.getgrgid(gid)
    except (KeyError, OSError):
        return False
    return group.gr_name == user and set(group.gr_mem) <= {user}


def open_folder(path: Path | str) -> int:
    """Open a folder of ours without following a link; refuse it if it is not ours alone.

    The descriptor (close it) lets files be opened inside exactly the folder
    that was checked, whatever is renamed in its place meanwhile.
    """
    descriptor = os.open(path, _FOLDER_FLAGS)
    try:
        check_private(path, os.fstat(descriptor))
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def unsafe_reason(folder: Path, role: str, names: tuple[str, ...] = ()) -> str | None:
    """Why `folder` or one of the named files in it must not be used; None if nothing is wrong.

    For the consent decision: what is missing, or no plain folder, is no
    reason here (its own error shows where it is used). The files are
    checked again on their descriptor each time they are opened.
    """
    if not OPENS_FOLDERS:  # pragma: no cover - Windows
        return None
    try:
        descriptor = open_folder(folder)
    except UnsafeFile as unsafe:
        return unsafe.describe(role)
    except OSError:
        return None
    try:
        for name in names:
            try:
                found = os.stat(name, dir_fd=descriptor, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(found.st_mode):
                check_private(folder / name, found)
    except UnsafeFile as unsafe:
        return unsafe.describe(role)
    finally:
        os.close(descriptor)
    return None


class Paths:
    """The tool's telemetry config file and rollup store folder."""

    __slots__ = ("config_dir", "state_dir")

    def __init__(self, config_dir: Path, state_dir: Path) -> None:
        self.config_dir = config_dir
        self.state_dir = state_dir

    @classmethod
    def for_tool(cls, tool_name: str) -> Paths:
        """The tool's folders: in a test session's sandbox if one is set, else the user's own.

        Under `TYPER_TELEMETRY_SANDBOX=<folder>` every tool's files are
        `<folder>/config/<name>` and `<folder>/state/<name>`, so that even
        `telemetry enable` or `reset` run from a test never touch the real
        home. The folder checks are the usual ones: a relative folder is
        refused where it would be created, one that is not the user's alone
        where it is opened.
        """
        sandbox = os.environ.get(SANDBOX_VARIABLE, "").strip()
        if sandbox:
            return cls(Path(sandbox, "config", tool_name), Path(sandbox, "state", tool_name))
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
    a planted link cannot redirect writes elsewhere. A folder another user
    owns or others may write to is refused (`UnsafeFile`) and left exactly
    as it is; one of ours that others may only read is tightened to 0700.
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
    if not OPENS_FOLDERS:  # pragma: no cover - Windows
        if path.is_symlink() or not path.is_dir():
            raise NotADirectoryError(f"{path} is not a plain folder")
        if path.stat().st_mode & 0o077:
            os.chmod(path, PRIVATE_DIR_MODE)
        return
    try:
        descriptor = open_folder(path)
    except (NotADirectoryError, FileNotFoundError) as error:
        raise NotADirectoryError(f"{path} is not a plain folder") from error
    except UnsafeFile:
        raise
    except OSError as error:
        if error.errno == errno.ELOOP:  # a link that appeared after the check above
            raise NotADirectoryError(f"{path} is reached through a symlink") from error
        raise
    try:
        if os.fstat(descriptor).st_mode & 0o077:
            os.fchmod(descriptor, PRIVATE_DIR_MODE)
    finally:
        os.close(descriptor)


def open_in_folder(path: Path, flags: int, mode: int = PRIVATE_FILE_MODE) -> int:
    """Open `path` inside its folder, once the folder was found to be ours alone."""
    if not OPENS_FOLDERS:  # pragma: no cover - Windows
        return os.open(path, flags, mode)
    folder = open_folder(path.parent)
    try:
        return os.open(path.name, flags, mode, dir_fd=folder)
    finally:
        os.close(folder)


def checked_file(path: Path, descriptor: int) -> os.stat_result:
    """The fstat of an opened file, which must be a regular file of ours alone (else closed)."""
    try:
        found = os.fstat(descriptor)
        if not stat.S_ISREG(found.st_mode):
            raise OSError(f"{path} is not a regular file")
        check_private(path, found)
    except BaseException:
        os.close(descriptor)
        raise
    return found


def read_small_file(path: Path, limit: int) -> bytes:
    """Read a file of ours without following a planted symlink; refuse anything huge.

    Only a regular file is read: opening a named pipe in its place would wait
    forever for a writer (hence O_NONBLOCK), and a folder cannot be read.
    The folder and the file must be ours alone (`UnsafeFile` otherwise).
    """
    descriptor = open_in_folder(path, os.O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
    checked_file(path, descriptor)
    with os.fdopen(descriptor, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit} bytes")
    return data
