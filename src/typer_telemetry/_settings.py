"""The tool author's settings, checked once, as one immutable value handed down.

`Telemetry` builds a `Settings` from its arguments (`checked_settings`,
which refuses every mistake on the author's first run) and hands it to the
hook, the recorder, the sender and the `telemetry` commands. Nothing below
the facade changes it or calls back up: where the wiring learns something
new (the words under which the `telemetry` group is mounted), it hands down
a new value made with `replace`.

The methods read what the environment says *now* (the per-user folders, the
debug and endpoint variables, the clock): one process may run the tool under
several homes (CliRunner tests), each with its own folders.

Hot path: standard library only.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._consent import env_prefix, is_set

if TYPE_CHECKING:
    from ._consent import Policy
    from ._paths import Paths

# The word the `telemetry` group is mounted under unless the author names it.
DEFAULT_GROUP_NAME = "telemetry"
# What `today` says for a clock the platform cannot turn into a date. It is
# no schema day, so nothing is recorded, pruned or sent until the clock is sane.
UNUSABLE_DAY = "0000-00-00"
# The built-in signals an author may turn on (see docs/signals.md).
SIGNALS = ("runner", "project")


def utc_day(timestamp: float) -> str:
    try:
        return time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    except (OverflowError, ValueError, OSError):
        return UNUSABLE_DAY


class Settings:
    """What the author chose for one tool; immutable (`replace` makes a changed copy).

    `group_words` are the words between the tool's name and a command of the
    `telemetry` group (`telemetry`, `privacy`, `admin telemetry`), None when
    the tool offers the user no telemetry commands. `clock` gives the wall
    clock in seconds since the epoch (tests replace it); it decides the UTC day.
    """

    __slots__ = (
        "backend",
        "clock",
        "consent",
        "endpoint",
        "env_prefix",
        "group_words",
        "long_running_after",
        "mcp_agent",
        "name",
        "sample_rate",
        "signals",
        "version",
    )

    name: str
    version: str
    env_prefix: str
    consent: Policy
    endpoint: str | None
    backend: Any
    long_running_after: float
    group_words: str | None
    clock: Callable[[], float]
    signals: frozenset[str]
    sample_rate: float
    mcp_agent: str | None

    def __init__(
        self,
        name: str,
        version: str,
        *,
        consent: Policy = "opt-out",
        endpoint: str | None = None,
        backend: Any = None,
        long_running_after: float = 2.0,
        group_words: str | None = DEFAULT_GROUP_NAME,
        clock: Callable[[], float] = time.time,
        signals: frozenset[str] = frozenset(),
        sample_rate: float = 1.0,
        mcp_agent: str | None = None,
    ) -> None:
        values = {
            "name": name,
            "version": version,
            "env_prefix": env_prefix(name),
            "consent": consent,
            "endpoint": endpoint,
            "backend": backend,
            "long_running_after": long_running_after,
            "group_words": group_words,
            "clock": clock,
            "signals": signals,
            "sample_rate": sample_rate,
            # The agent an MCP client's `initialize` named (`Telemetry.set_mcp_client`).
            "mcp_agent": mcp_agent,
        }
        for attribute, value in values.items():
            object.__setattr__(self, attribute, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Settings are immutable: use replace({name}=...)")

    def replace(self, **changes: Any) -> Settings:
        """A copy with `changes` (keyword arguments of the constructor) applied."""
        values = {
            attribute: getattr(self, attribute)
            for attribute in self.__slots__
            if attribute != "env_prefix"
        }
        values.update(changes)
        name, version = values.pop("name"), values.pop("version")
        return Settings(name, version, **values)

    def __repr__(self) -> str:
        return f"Settings(name={self.name!r}, version={self.version!r})"

    # -- what the environment makes of them, now -----------------------------

    def paths(self) -> Paths:
        """The per-user folders as the environment says now."""
        from ._paths import Paths

        return Paths.for_tool(self.name)

    def debugging(self) -> bool:
        return is_set(os.environ.get(f"{self.env_prefix}_TELEMETRY_DEBUG"))

    def debug(self, message: str) -> None:
        """Explain a decision or a swallowed error on stderr, under `<NAME>_TELEMETRY_DEBUG`."""
        if self.debugging():
            try:  # noqa: SIM105 - contextlib is not worth its import on every run
                sys.stderr.write(f"[{self.name} telemetry] {message}\n")
            except (OSError, ValueError):
                pass

    def endpoint_override(self) -> str | None:
        """`<NAME>_TELEMETRY_ENDPOINT`, which wins over the author's endpoint and back end."""
        return os.environ.get(f"{self.env_prefix}_TELEMETRY_ENDPOINT") or None

    def endpoint_in_force(self) -> str | None:
        return self.endpoint_override() or self.endpoint

    def has_destination(self) -> bool:
        """Whether anything could be sent anywhere (cheap: no back end is built)."""
        return bool(self.backend is not None or self.endpoint or self.endpoint_override())

    def today(self) -> str:
        return utc_day(self.clock())

    def user_command(self, subcommand: str) -> str:
        """What the user types for one of the group's commands: `mytool telemetry disable`."""
        return f"{self.name} {self.group_words or DEFAULT_GROUP_NAME} {subcommand}"

    def opt_out_command(self) -> str | None:
        """`mytool telemetry disable`, or None when the tool offers no telemetry commands."""
        return None if self.group_words is None else self.user_command("disable")

    def group_command(self) -> str | None:
        """`mytool telemetry`, or None when the tool offers the user no telemetry commands."""
        return None if self.group_words is None else f"{self.name} {self.group_words}"


def _expect_type(
    argument: str, value: object, kind: type | tuple[type, ...], expected: str
) -> None:
    if not isinstance(value, kind):
        raise TypeError(f"{argument} must be {expected}, not {type(value).__name__} {value!r}")


def checked_settings(
    name: object,
    *,
    version: object,
    endpoint: object,
    consent: object,
    long_running_after: object,
    backend: object,
    signals: object,
    sample_rate: object,
) -> Settings:
    """The author's arguments to `Telemetry(...)`, each checked, as Settings.

    Every mistake names its argument and what it takes, when the object is
    made: on the author's first run, never on a user's machine.
    """
    from ._checks import check_endpoint, is_tool_name, is_version

    _expect_type("name", name, str, "a str")
    assert isinstance(name, str)
    if not is_tool_name(name):
        raise ValueError(
            f"tool name {name!r} must be 1 to 64 characters of letters, digits, '.', '_', '-'"
        )
    _expect_type("version", version, str, "a str such as '1.4.0'")
    assert isinstance(version, str)
    if not is_version(version):
        raise ValueError(f"version {version!r} must be a version string of at most 64 characters")
    _expect_type("consent", consent, str, "'opt-out' or 'opt-in'")
    if consent not in ("opt-out", "opt-in"):
        raise ValueError(f"consent must be 'opt-out' or 'opt-in', not {consent!r}")
    if isinstance(long_running_after, bool) or not isinstance(long_running_after, (int, float)):
        raise TypeError(
            "long_running_after must be a number of seconds (int or float), not"
            f" {type(long_running_after).__name__} {long_running_after!r}"
        )
    if not long_running_after > 0:  # NaN is not > 0 either
        raise ValueError(
            f"long_running_after must be a positive number of seconds, not {long_running_after!r}"
        )
    if endpoint is not None:
        check_endpoint(endpoint)  # a wrong endpoint shows on the author's first run
        assert isinstance(endpoint, str)
    if isinstance(backend, type):
        raise TypeError(
            f"backend must be a back end object, not the class {backend.__name__}:"
            f" pass {backend.__name__}(...)"
        )
    if backend is not None and not (
        callable(getattr(backend, "send", None))
        and callable(getattr(backend, "request_deletion", None))
    ):
        raise TypeError(
            "backend must be an object with send(batch, *, timeout) and"
            f" request_deletion(...) (see typer_telemetry.backends), not {backend!r}"
        )
    if isinstance(signals, str) or not isinstance(signals, (tuple, list, set, frozenset)):
        raise TypeError(
            f"signals must be a tuple of names from {SIGNALS}, such as ('runner',),"
            f" not {type(signals).__name__} {signals!r}"
        )
    unknown = [signal for signal in signals if signal not in SIGNALS]
    if unknown:
        raise ValueError(f"unknown signal {unknown[0]!r}: choose from {', '.join(SIGNALS)}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)):
        raise TypeError(
            f"sample_rate must be a number from 0 (exclusive) to 1, not"
            f" {type(sample_rate).__name__} {sample_rate!r}"
        )
    if not 0 < sample_rate <= 1:  # NaN fails too
        raise ValueError(f"sample_rate must be above 0 and at most 1, not {sample_rate!r}")
    return Settings(
        name,
        version,
        consent="opt-in" if consent == "opt-in" else "opt-out",
        endpoint=endpoint,
        backend=backend,
        long_running_after=float(long_running_after),
        signals=frozenset(signals),
        sample_rate=float(sample_rate),
    )
