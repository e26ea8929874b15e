"""The salted project id: which project a command ran in, without saying where.

A tool author who opts in to the "project" signal learns how many distinct
projects use each command, and can tell one project's runs from another's,
without ever learning a path. The id is a keyed hash of the project's folder:
the key (the salt) is minted once per install, kept in the user's state folder
and never sent, so nobody who holds the id alone can test a guess such as
"/home/alice/src/acme" against it (see docs/signals.md).

When the signal is on this runs on every recorded invocation, so it stays on
the standard library, imports nothing heavy at module level and makes only a
few `lstat` calls per folder level (see `project_folder`).

Hot path: standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

SALT_LENGTH = 64  # hex characters: 32 random bytes
PROJECT_ID_LENGTH = 32  # hex characters: the first 128 bits of the digest

# The names whose presence in a folder makes it a project's root, checked in
# this order at each level (the order only matters for cost: the commonest
# first). Version-control checkouts, then the manifests of the common
# language ecosystems. A marker counts whatever its kind: `.git` is a folder
# in a clone and a file in a worktree or submodule; a symlink counts too.
PROJECT_MARKERS = (
    ".git",
    ".hg",
    ".jj",
    ".svn",
    ".bzr",
    "_darcs",
    ".fslckout",
    "_FOSSIL_",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "package.json",
    "deno.json",
    "Cargo.toml",
    "go.mod",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "Gemfile",
    "composer.json",
    "mix.exs",
)

# Separates the parts of the hashed message. Neither a salt (hex) nor a path
# (os.fsencode of a real path) can contain a NUL byte, so no two different
# (salt, folder) pairs hash the same message.
_SEPARATOR = b"\x00"
# Names what is hashed, so that this digest can never equal one the library
# computes from the same salt for another purpose.
_DOMAIN = b"typer-telemetry project id v1"

_LOWER_HEX = frozenset("0123456789abcdef")

# A hash object's constructor; its type differs by module, hence Any.
_sha256: Callable[[bytes], Any] | None = None


def _sha256_factory() -> Callable[[bytes], Any]:
    """The cheapest SHA-256 this interpreter has, loaded on first use.

    `import hashlib` loads OpenSSL's libcrypto through `_hashlib`: about 4-6 ms
    on a short run (python -X importtime, CPython 3.11; about 4.5 ms more for a
    whole `python -c` process). The built-in module, `_sha2` (CPython 3.12+) or
    `_sha256` (3.10-3.11), is a small extension loaded in about 0.3 ms and gives
    the same digest. Builds without it (some FIPS or embedded builds) fall
    back to hashlib.
    """
    global _sha256
    if _sha256 is None:
        try:
            from _sha2 import sha256 as fast  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            try:
                from _sha256 import sha256 as fast  # type: ignore[import-not-found, no-redef, unused-ignore]
            except ImportError:
                from hashlib import sha256 as fast  # type: ignore[assignment, unused-ignore]
        _sha256 = fast
    return _sha256


def mint_salt() -> str:
    """A new install's salt: 32 bytes from the operating system's CSPRNG, as hex.

    `os.urandom` is what `secrets` uses; calling it directly avoids importing
    `secrets` (and with it `random`, `base64` and `hmac`).
    """
    return os.urandom(SALT_LENGTH // 2).hex()


def is_salt(value: object) -> bool:
    """Whether `value` is a salt as `mint_salt` makes them (64 lower-case hex)."""
    return (
        isinstance(value, str)
        and len(value) == SALT_LENGTH
        and all(char in _LOWER_HEX for char in value)
    )


def is_project_id(value: object) -> bool:
    """Whether `value` is a project id as `project_id` makes them (32 lower-case hex)."""
    return (
        isinstance(value, str)
        and len(value) == PROJECT_ID_LENGTH
        and all(char in _LOWER_HEX for char in value)
    )


# A folder whose own size is above this (bytes, as `stat` reports a directory's
# size) is searched name by name instead of listed: listing costs time in
# proportion to its entries, and a few hundred entries cost more than one
# `lstat` per marker. On the common filesystems a directory's size grows with
# its entries (ext4: 4 KiB blocks; tmpfs, btrfs, xfs: with names and entries).
_LIST_AT_MOST = 16 * 1024

_MARKER_SET = frozenset(PROJECT_MARKERS)


def _has_marker(folder: str) -> bool | None:
    """Whether `folder` holds a project marker; None if it is not a folder here.

    One listing of a folder (a couple of system calls) is cheaper than an
    `lstat` per marker, about 10 us against 60-80 us (docs/signals.md); the
    name-by-name search is the fallback for big folders and for folders that
    can be searched but not read (permission x without r).
    """
    try:
        status = os.stat(folder)
    except (OSError, ValueError):
        return None
    if status.st_size <= _LIST_AT_MOST:
        try:
            return not _MARKER_SET.isdisjoint(os.listdir(folder))
        except (OSError, ValueError):
            pass
    for marker in PROJECT_MARKERS:
        try:
            os.lstat(os.path.join(folder, marker))
        except (OSError, ValueError):
            continue
        return True
    return False


def _absolute(start: str) -> str:
    """`start` made absolute, symlinks followed as far as the folders exist.

    `os.path.realpath` (not strict) resolves what exists and keeps the rest as
    written, and does not raise on a symlink loop or an unreadable folder. The
    one case it cannot handle is a relative `start` when the working folder
    has been deleted (`os.getcwd` fails): the shell's record of it, `PWD`, is
    used then if it is absolute, else the filesystem root.
    """
    try:
        return os.path.realpath(start)
    except (OSError, ValueError):
        pass
    if not os.path.isabs(start):
        base = os.environ.get("PWD", "")
        if not os.path.isabs(base):
            base = os.sep
        start = os.path.join(base, start)
    try:
        return os.path.realpath(start)
    except (OSError, ValueError):
        return os.path.normpath(start) if os.path.isabs(start) else os.sep


def project_folder(start: Path) -> Path:
    """The root of the project `start` is in: the nearest folder holding a marker.

    Looks at `start` itself, then each parent up to the filesystem root, for
    any of `PROJECT_MARKERS`; the first folder that holds one is the project.
    With none anywhere, `start` itself is the project. The result is absolute
    with symlinks followed, so a project reached through a symlink, through
    `..` or from any subfolder gives the same folder.

    Never raises. Each marker is tested with `lstat` (so a folder that can be
    searched but not listed still works, and a symlink loop named `.git`
    counts as present rather than failing); a folder that cannot be searched
    at all counts as holding no marker, and the walk goes on to its parent. A
    deleted working folder is resolved as `_absolute` describes; its deleted
    parts hold no markers, so an existing ancestor project is still found.
    """
    try:
        here = _absolute(os.fspath(start))
    except (OSError, ValueError, TypeError):
        return Path(os.sep)
    folder = here
    while True:
        if _has_marker(folder):  # None (gone or unreachable): look further up
            return Path(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            return Path(here)
        folder = parent


def project_id(salt: str, folder: Path) -> str:
    """The project's id: the first 32 hex characters of a salted SHA-256.

    The digest covers a fixed label, the salt and the folder's bytes as the
    filesystem spells them (`os.fsencode`, so a path that is not valid UTF-8
    still has exactly one id), NUL-separated:

        sha256(b"typer-telemetry project id v1" NUL salt NUL fsencode(folder))

    `folder` is taken as given: pass the result of `project_folder`, which is
    already absolute and resolved (resolving it again would cost a system
    call per path component on every run).

    Raises ValueError for a salt that `is_salt` refuses: an empty or guessable
    salt would make the id a plain hash of the path, which a dictionary of
    common paths reverses.
    """
    if not is_salt(salt):
        raise ValueError("not a salt minted by mint_salt()")
    message = _SEPARATOR.join((_DOMAIN, salt.encode("ascii"), os.fsencode(folder)))
    digest: str = _sha256_factory()(message).hexdigest()
    return digest[:PROJECT_ID_LENGTH]
