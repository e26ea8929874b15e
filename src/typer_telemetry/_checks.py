"""The checks that the schema's fields and the author's settings are made of.

`_schema.py` names every allowed field and gives each one of these checks;
this module holds the checks alone, so that a recorded run (which validates
one invocation before it touches disk) and a new `Telemetry` (which checks
the author's settings) load a small module instead of the schema's tables.

Hot path: standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._recording import Observation

OUTCOMES = ("success", "error", "usage_error", "aborted")
# The built-in event every command invocation is, and the properties it carries.
COMMAND_EVENT = "command"
COMMAND_PROPERTIES = frozenset({"command", "flags"})
# The same as `_runner.RUNNERS`, kept here so that checking a record never loads `_runner`.
RUNNERS = ("terminal", "script", "agent")

MAX_COMMAND_DEPTH = 8
MAX_FLAGS = 32
MAX_COUNT = 2**53  # exact in JSON numbers everywhere
MAX_DURATION_MS = 7 * 24 * 3600 * 1000.0

# Character classes, checked with sets rather than regular expressions: the
# checks run on every recorded run, and compiling patterns would cost more
# than the whole check.
_DIGITS = frozenset("0123456789")
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_ALPHANUMERIC = _LETTERS | _DIGITS
_LOWER_HEX = frozenset("0123456789abcdef")


class SchemaError(ValueError):
    """A value is outside the allowlist; it is dropped, never stored or sent."""


def _token(
    first: frozenset[str], rest: frozenset[str], max_length: int
) -> Callable[[object], bool]:
    """A check for a non-empty string: one of `first`, then any of `rest`."""
    allowed = first | rest

    def check(value: object) -> bool:
        return (
            isinstance(value, str)
            and 0 < len(value) <= max_length
            and value[0] in first
            and allowed.issuperset(value)
        )

    return check


_is_command_name = _token(_ALPHANUMERIC, frozenset("_.:-"), 64)
_is_class_name = _token(_LETTERS | {"_"}, _ALPHANUMERIC | {"_"}, 100)
_is_flag_name = _token(_ALPHANUMERIC, frozenset("_-"), 63)
is_tool_name = _token(_ALPHANUMERIC, frozenset("_.-"), 64)
is_version = _token(_ALPHANUMERIC, frozenset("_.+!-"), 64)
is_platform_token = _token(_ALPHANUMERIC, frozenset("_.+-"), 64)


def is_uuid4(value: object) -> bool:
    """A lower-case random (version 4) UUID: 8-4-4-4-12 hex digits."""
    return (
        isinstance(value, str)
        and len(value) == 36
        and all(value[index] == "-" for index in (8, 13, 18, 23))
        and _LOWER_HEX.issuperset(value.replace("-", ""))
        and value[14] == "4"
        and value[19] in "89ab"
    )


_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_day(value: object) -> bool:
    """A UTC day the schema allows (YYYY-MM-DD, a real date, years 2000 to 9999)."""
    if not (
        isinstance(value, str)
        and len(value) == 10
        and value[4] == value[7] == "-"
        and _DIGITS.issuperset(value[:4] + value[5:7] + value[8:])
    ):
        return False
    year, month, day = (int(part) for part in value.split("-"))
    if not (2000 <= year <= 9999 and 1 <= month <= 12):
        return False
    # A real calendar day: a "2026-02-31" from an edited file would make the
    # date arithmetic of pruning and of the back ends raise.
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 1 <= day <= _DAYS_IN_MONTH[month - 1] + (month == 2 and leap)


def is_command_path(value: object) -> bool:
    """A command path is zero to eight command names separated by single spaces."""
    if not isinstance(value, str):
        return False
    if value == "":
        return True
    names = value.split(" ")
    return len(names) <= MAX_COMMAND_DEPTH and all(_is_command_name(name) for name in names)


def is_outcome(value: object) -> bool:
    return value in OUTCOMES


def is_error_class(value: object) -> bool:
    return value == "" or _is_class_name(value)


def is_flag(value: object) -> bool:
    if not isinstance(value, str) or not value.startswith("-"):
        return False
    return _is_flag_name(value[2:] if value.startswith("--") else value[1:])


def is_flag_list(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) <= MAX_FLAGS
        and all(is_flag(flag) for flag in value)
        and value == sorted(set(value))
    )


def is_duration(value: object) -> bool:
    """A sum of durations in milliseconds: finite, at least 0."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= MAX_DURATION_MS * MAX_COUNT
    )


def check_observation(observation: Observation) -> None:
    """Check one event before it is written to the journal; SchemaError if it is outside the schema."""
    check_event(
        observation.day,
        observation.event,
        dict(observation.properties),
        observation.outcome,
        observation.error_class,
        observation.duration_ms,
    )


def check_event(
    day: object,
    event: object,
    properties: Mapping[str, object],
    outcome: object,
    error_class: object,
    duration_ms: object,
) -> None:
    """Check one event's fields (an observation's, or a journal line's); SchemaError if outside."""
    if not is_day(day):
        raise SchemaError("day is outside the schema")
    if outcome not in OUTCOMES:
        raise SchemaError("outcome is outside the schema")
    # A success never has an error class; a command's failure always has one
    # (the hook knows what ended it); the tool's own event may fail without one.
    if not is_error_class(error_class) or (outcome == "success" and error_class != ""):
        raise SchemaError("error class is outside the schema")
    if event == COMMAND_EVENT and outcome != "success" and error_class == "":
        raise SchemaError("a command's failure lacks its error class")
    if duration_ms is not None and not (
        is_duration(duration_ms) and duration_ms <= MAX_DURATION_MS  # type: ignore[operator]
    ):
        raise SchemaError("duration is outside the schema")
    if not isinstance(event, str):
        raise SchemaError("event name is outside the schema")
    check_properties(event, properties)


def check_properties(event: str, properties: Mapping[str, object]) -> None:
    """The properties an event may carry: the command's, or its declared fields, and the signals."""
    if event == COMMAND_EVENT:
        if not is_command_path(properties.get("command")):
            raise SchemaError("command path is outside the schema")
        flags = properties.get("flags")
        if not isinstance(flags, (list, tuple)) or not is_flag_list(list(flags)):
            raise SchemaError("flags are outside the schema")
        own = COMMAND_PROPERTIES
    else:
        from ._events import is_event_name, is_field_name, is_property_value

        if not is_event_name(event):
            raise SchemaError("event name is outside the schema")
        own = frozenset(
            name
            for name, value in properties.items()
            if name not in SIGNAL_PROPERTIES and is_field_name(name) and is_property_value(value)
        )
    for name, value in properties.items():
        if name in own:
            continue
        check = SIGNAL_PROPERTIES.get(name)
        if check is None:
            raise SchemaError(f"property {name!r} is outside the schema")
        if not check(value):
            raise SchemaError(f"property {name!r} is outside its limits")


# -- the author's settings ----------------------------------------------------

# The name the telemetry group is mounted under: one word, as a command name.
is_command_word = _is_command_name


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# What an endpoint may be made of: printable ASCII without spaces (a host in
# another script is written in its ASCII "xn--" form, other characters
# percent-encoded). Host names are labels of letters, digits, "-" and "_";
# user names and passwords are RFC 3986 userinfo. Stricter than httpx, so
# that an endpoint accepted here is never refused when a day is sent.
MAX_ENDPOINT_LENGTH = 2048
_URL_CHARACTERS = frozenset(chr(code) for code in range(0x21, 0x7F))
_HOST_LABEL = _ALPHANUMERIC | frozenset("-_")
_USERINFO = _ALPHANUMERIC | frozenset("-._~!$&'()*+,;=:%")


def _host_problem(host: str, *, bracketed: bool) -> str | None:
    """Why `host` (lower-cased, without brackets) is no host to send to, else None."""
    if bracketed:
        import ipaddress  # only for an address: a heavy import for the hot path

        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "is not a valid IPv6 address"
        return None
    if host and all(char in _DIGITS or char == "." for char in host):
        import ipaddress

        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return "is not a valid IPv4 address"
        return None
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if len(host) > 253 or not all(
        0 < len(label) <= 63
        and all(char in _HOST_LABEL for char in label)
        and label[0] != "-"
        and label[-1] != "-"
        for label in labels
    ):
        return "is not a valid host name (letters, digits, '-' and '_' between dots)"
    return None


def check_endpoint(url: object) -> str:
    """Refuse anything but a well-formed https URL, or plain http to this machine.

    Plain http is for local collectors and tests. Raises TypeError for a
    value that is not a string, ValueError naming what is wrong otherwise.
    """
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        raise TypeError(
            f"endpoint must be a URL string such as 'https://t.example.com/v1' or None,"
            f" not {type(url).__name__} {url!r}"
        )
    if not url or len(url) > MAX_ENDPOINT_LENGTH:
        raise ValueError(
            f"refusing endpoint {url!r}: use an https URL of 1 to {MAX_ENDPOINT_LENGTH} characters"
        )
    wrong = next((char for char in url if char not in _URL_CHARACTERS), None)
    if wrong is not None:
        raise ValueError(
            f"refusing endpoint {url!r}: character {wrong!r} at position {url.index(wrong)}"
            " (an endpoint is printable ASCII without spaces: percent-encode the rest,"
            " write a host in another script in its 'xn--' form)"
        )
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port that is no number from 0 to 65535
    except ValueError as error:
        raise ValueError(f"refusing endpoint {url!r}: {error}") from None
    if port == 0:
        raise ValueError(f"refusing endpoint {url!r}: port 0 cannot be connected to")
    userinfo, _, hostport = parts.netloc.rpartition("@")
    host = parts.hostname or ""
    if not all(char in _USERINFO for char in userinfo):
        raise ValueError(
            f"refusing endpoint {url!r}: its user name or password has a character"
            " that must be percent-encoded"
        )
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"refusing endpoint {url!r}: use https (plain http only to localhost)")
    problem = _host_problem(host, bracketed=hostport.startswith("["))
    if problem is not None:
        raise ValueError(f"refusing endpoint {url!r}: its host {host!r} {problem}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
        raise ValueError(f"refusing endpoint {url!r}: use https (plain http only to localhost)")
    return url


# -- the built-in signals' properties (see docs/signals.md) ----------------------


def is_runner(value: object) -> bool:
    return value in RUNNERS


def is_agent(value: object) -> bool:
    from ._runner import AGENTS

    return value in AGENTS


def is_project_id(value: object) -> bool:
    """32 lower-case hex digits: the first half of a salted SHA-256."""
    return isinstance(value, str) and len(value) == 32 and all(char in _LOWER_HEX for char in value)


def is_sample_rate(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value) and 0 < value <= 1


SIGNAL_PROPERTIES: dict[str, Callable[[object], bool]] = {
    "runner": is_runner,
    "agent": is_agent,
    "project_id": is_project_id,
    "sample_rate": is_sample_rate,
}
