"""The per-user telemetry config file: the stored choice, the install id, notice shown.

A TOML file the user may read and edit. Reading is on the hot path, so the
lines this library writes (`key = true`, `key = "text"`) are read by a tiny
parser; anything else falls back to the full TOML parser. An unreadable or
corrupt file reads as "unreadable", which the consent table treats as off.
A config folder or file another user owns, or others may write to, is not
read at all (it may hold a planted install id or choice): it reads as
"unsafe", which turns telemetry off, and is never written.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._checks import is_uuid4
from ._paths import UnsafeFile, ensure_private_dir, read_small_file, unsafe_reason

if TYPE_CHECKING:
    from ._consent import Decision, StoredChoice
    from ._paths import Paths
    from ._settings import Settings

MAX_CONFIG_BYTES = 64 * 1024
LOCK_TIMEOUT_SECONDS = 1.0

_KEY_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class ConfigUnwritable(OSError):
    """The config file cannot be written; telemetry stays off for this run."""


class DisableIncomplete(ConfigUnwritable):
    """`disable` did not do all of its work; each attribute says what was left, and why.

    `data_problem`: why pending data was not deleted (None: it was).
    `choice_problem`: why the choice "off" was not stored (None: it was).
    """

    def __init__(self, data_problem: str | None, choice_problem: str | None) -> None:
        self.data_problem = data_problem
        self.choice_problem = choice_problem
        super().__init__("; ".join(filter(None, (data_problem, choice_problem))))


class Config:
    """What the config file says, already checked.

    A plain class: a NamedTuple or dataclass costs a noticeable fraction of a
    millisecond to define, on every run of the tool.
    """

    __slots__ = ("choice", "extra", "install_id", "notice_shown", "project_salt", "unsafe")

    def __init__(
        self,
        choice: StoredChoice = "unset",
        install_id: str | None = None,
        notice_shown: bool = False,
        extra: tuple[tuple[str, Any], ...] = (),
        unsafe: str | None = None,
        project_salt: str | None = None,
    ) -> None:
        self.choice: StoredChoice = choice
        self.install_id = install_id
        self.notice_shown = notice_shown
        self.extra = extra
        # The random salt of project ids (the `project` signal): never sent.
        self.project_salt = project_salt
        # Why the config folder or file must not be used (see `read_config`), else None.
        self.unsafe = unsafe

    def _fields(self) -> tuple[object, ...]:
        return (
            self.choice,
            self.install_id,
            self.notice_shown,
            self.extra,
            self.unsafe,
            self.project_salt,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Config(choice={self.choice!r}, install_id={self.install_id!r})"

    def replace(
        self,
        *,
        choice: StoredChoice | None = None,
        install_id: str | None = None,
        notice_shown: bool | None = None,
        project_salt: str | None = None,
    ) -> Config:
        return Config(
            self.choice if choice is None else choice,
            self.install_id if install_id is None else install_id,
            self.notice_shown if notice_shown is None else notice_shown,
            self.extra,
            self.unsafe,
            self.project_salt if project_salt is None else project_salt,
        )


def _parse_simple_line(line: str) -> tuple[str, Any] | None:
    """`key = true|false|"text"` with an optional trailing comment, else None."""
    key, equals, rest = line.partition("=")
    key, rest = key.strip(), rest.strip()
    if not equals or not key or key[0] in "-0123456789" or not set(key) <= _KEY_CHARACTERS:
        return None
    value: Any
    if rest.startswith('"'):
        closing = rest.find('"', 1)
        if closing < 0:
            return None
        value, tail = rest[1:closing], rest[closing + 1 :].strip()
        if "\\" in value or any(ord(char) < 32 for char in value):
            return None
    else:
        word, _, comment = rest.partition("#")
        word = word.strip()
        if word not in ("true", "false"):
            return None
        value, tail = word == "true", ("#" + comment) if comment else ""
    return (key, value) if not tail or tail.startswith("#") else None


def _parse_simple(text: str) -> dict[str, Any] | None:
    values: dict[str, Any] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        parsed = _parse_simple_line(line)
        if parsed is None or parsed[0] in values:
            return None
        values[parsed[0]] = parsed[1]
    return values


def _parse(data: bytes) -> dict[str, Any]:
    text = data.decode("utf-8")
    simple = _parse_simple(text)
    if simple is not None:
        return simple
    # Only hand-edited files get here; the TOML parser is loaded for them alone.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    parsed: dict[str, Any] = tomllib.loads(text)
    return parsed


def parse_config(data: bytes) -> Config:
    """Check the file's values; a wrong-typed choice reads as unreadable (fail closed)."""
    try:
        values = _parse(data)
    except (UnicodeDecodeError, ValueError, RecursionError):  # deep nesting in an edited file
        return Config(choice="unreadable")
    enabled = values.pop("enabled", None)
    install_id = values.pop("install_id", None)
    notice_shown = values.pop("notice_shown", False)
    project_salt = values.pop("project_salt", None)
    choice: StoredChoice
    if enabled is None:
        choice = "unset"
    elif isinstance(enabled, bool):
        choice = "enabled" if enabled else "disabled"
    else:
        choice = "unreadable"
    return Config(
        choice=choice,
        install_id=install_id if is_uuid4(install_id) else None,
        notice_shown=notice_shown is True,
        extra=tuple(values.items()),
        project_salt=project_salt if project_salt is not None and _is_salt(project_salt) else None,
    )


def read_config(path: Path) -> Config:
    """Read the config; a missing file is an empty config, an unreadable one fails closed.

    A folder or file that is not ours alone is not read: its install id and
    "notice shown" might be planted, so none of it is used (`Config.unsafe`).
    """
    try:
        data = read_small_file(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        return Config()
    except UnsafeFile as unsafe:
        return Config(choice="unreadable", unsafe=unsafe.describe("config"))
    except (OSError, ValueError):
        return Config(choice="unreadable")
    return parse_config(data)


def render_config(config: Config, tool_name: str, command: str | None = None) -> bytes:
    """The file's text; `command` is the tool's telemetry group (`mytool privacy`), if any."""
    import tomli_w  # only when the file is written, never on the hot path

    values: dict[str, Any] = dict(config.extra)
    if config.choice in ("enabled", "disabled"):
        values["enabled"] = config.choice == "enabled"
    if config.install_id is not None:
        values["install_id"] = config.install_id
    values["notice_shown"] = config.notice_shown
    if config.project_salt is not None:
        values["project_salt"] = config.project_salt
    how = (
        f"# Change them with `{command} enable|disable|reset`.\n"
        if command
        else "# Set `enabled = false` to turn it off for this user (true to turn it on).\n"
    )
    header = f"# Telemetry settings of {tool_name}.\n{how}"
    return (header + tomli_w.dumps(values)).encode("utf-8")


def update_config(
    paths: Paths,
    tool_name: str,
    change: Callable[[Config], Config],
    *,
    command: str | None = None,
) -> Config:
    """Read, change and write the config under a lock, so concurrent runs agree.

    An unreadable file is set aside (renamed) before it is replaced, so that a
    user's hand edits are never silently destroyed. A folder or file that is
    not ours alone is left exactly as it is: ConfigUnwritable says why.
    """
    from ._files import locked_file, remove_leftover_temporaries, write_private_file

    try:
        ensure_private_dir(paths.config_dir)
        with locked_file(paths.config_dir / ".telemetry.lock", timeout=LOCK_TIMEOUT_SECONDS):
            # Only a holder of this lock writes the file: a temporary file
            # now is what a writer killed mid-write left behind.
            remove_leftover_temporaries(paths.config_file)
            current = read_config(paths.config_file)
            if current.unsafe is not None:
                raise ConfigUnwritable(current.unsafe)
            if current.choice == "unreadable":
                _set_aside(paths.config_file)
                current = Config()
            updated = change(current)
            if updated != current or not paths.config_file.exists():
                write_private_file(paths.config_file, render_config(updated, tool_name, command))
            return updated
    except ConfigUnwritable:
        raise
    except UnsafeFile as unsafe:
        raise ConfigUnwritable(unsafe.describe("config")) from unsafe
    except OSError as error:
        raise ConfigUnwritable(str(error)) from error


def _set_aside(path: Path) -> None:
    import time

    with contextlib.suppress(FileNotFoundError):
        path.rename(path.with_name(f"{path.name}.unreadable-{time.time_ns()}"))


def mint_install_id() -> str:
    """A fresh random identifier: nothing about the machine or the user goes into it."""
    import uuid  # once per machine: not worth its import on every run

    return str(uuid.uuid4())


def _is_salt(value: object) -> bool:
    from ._identity import is_salt  # only for a config that holds a salt

    return is_salt(value)


def with_project_salt(config: Config) -> Config:
    """The config with a project salt, minted if missing (the `project` signal's first use)."""
    if config.project_salt is not None:
        return config
    from ._identity import mint_salt

    return config.replace(project_salt=mint_salt())


def with_identity(config: Config) -> Config:
    """The config with an install id (minted if missing) and the notice marked shown."""
    return config.replace(install_id=config.install_id or mint_install_id(), notice_shown=True)


def decision_for(settings: Settings, config: Config, paths: Paths) -> Decision:
    """Whether telemetry is on for this process, and which row of the consent table decided.

    Files that another user owns or others may write to (the config folder
    or file, the data folder or its journal) turn it off, and the decision's
    reason names the path (see `_paths.UnsafeFile`).
    """
    import os

    from ._consent import decide
    from ._paths import JOURNAL_NAME

    unsafe = config.unsafe or unsafe_reason(paths.store_dir, "data", (JOURNAL_NAME,))
    return decide(settings.env_prefix, os.environ, config.choice, settings.consent, unsafe)


def current_decision(settings: Settings) -> Decision:
    """The consent decision in force now, from this user's config as it is on disk."""
    paths = settings.paths()
    return decision_for(settings, read_config(paths.config_file), paths)


def claim_identity(settings: Settings, paths: Paths) -> Config:
    """Mint the install id, show the notice if no run has, and mark it shown.

    Raises ConfigUnwritable when the folder or lock cannot be made: then the
    run records nothing (fail closed), rather than print the notice forever.
    The notice is printed under the config lock (one process of many
    simultaneous first runs prints it) and before the file says "shown": a
    run killed between the two shows it again next time, so the user is told
    at least once before anything is recorded.
    """

    def change(current: Config) -> Config:
        if not current.notice_shown:
            from ._notice import show_notice

            show_notice(settings.name, settings.env_prefix, settings.opt_out_command())
        return with_identity(current)

    return update_config(paths, settings.name, change, command=settings.group_command())
