"""The allowlist: every field that may be recorded or sent, with its type and limits.

This module is the single definition of what typer-telemetry collects. Records
are validated against it before they touch disk, payloads before they leave
the machine, and TELEMETRY.md's field tables are generated from it (a test
fails when the two drift). Anything not named here is never stored or sent.

Hot path: standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

SCHEMA_VERSION = 1

OUTCOMES = ("success", "error", "usage_error", "aborted")

# Upper bounds (milliseconds) of the fixed duration buckets; a last, open bucket
# holds everything slower. Fixed bounds make rollups mergeable across processes
# and days, and map one to one onto an OTLP explicit-bucket histogram.
DURATION_BUCKET_BOUNDS_MS: tuple[int, ...] = (
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    30_000,
    60_000,
    300_000,
    1_800_000,
)
DURATION_BUCKET_COUNT = len(DURATION_BUCKET_BOUNDS_MS) + 1

MAX_COMMAND_DEPTH = 8
MAX_FLAGS = 32
MAX_COUNT = 2**53  # exact in JSON numbers everywhere
MAX_DURATION_MS = 7 * 24 * 3600 * 1000.0

# Character classes, checked with sets rather than regular expressions: the
# schema is consulted on every recorded run, and compiling patterns would
# cost more than the whole check.
_DIGITS = frozenset("0123456789")
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_ALPHANUMERIC = _LETTERS | _DIGITS
_LOWER_HEX = frozenset("0123456789abcdef")


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
            and all(char in allowed for char in value)
        )

    return check


_is_command_name = _token(_ALPHANUMERIC, frozenset("_.:-"), 64)
_is_class_name = _token(_LETTERS | {"_"}, _ALPHANUMERIC | {"_"}, 100)
_is_flag_name = _token(_ALPHANUMERIC, frozenset("_-"), 63)
_is_tool_name = _token(_ALPHANUMERIC, frozenset("_.-"), 64)
_is_version = _token(_ALPHANUMERIC, frozenset("_.+!-"), 64)
_is_platform_token = _token(_ALPHANUMERIC, frozenset("_.+-"), 64)


def _is_uuid4(value: object) -> bool:
    """A lower-case random (version 4) UUID: 8-4-4-4-12 hex digits."""
    return (
        isinstance(value, str)
        and len(value) == 36
        and all(value[index] == "-" for index in (8, 13, 18, 23))
        and all(char in _LOWER_HEX for char in value.replace("-", ""))
        and value[14] == "4"
        and value[19] in "89ab"
    )


class SchemaError(ValueError):
    """A value is outside the allowlist; it is dropped, never stored or sent."""


def _is_day(value: object) -> bool:
    if not (
        isinstance(value, str)
        and len(value) == 10
        and value[4] == value[7] == "-"
        and all(char in _DIGITS for char in value[:4] + value[5:7] + value[8:])
    ):
        return False
    year, month, day = (int(part) for part in value.split("-"))
    if not (2000 <= year <= 9999 and 1 <= month <= 12):
        return False
    # A real calendar day: a "2026-02-31" from an edited file would make the
    # date arithmetic of pruning and of the back ends raise.
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 1 <= day <= _DAYS_IN_MONTH[month - 1] + (month == 2 and leap)


_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_day(value: object) -> bool:
    """A UTC day the schema allows (YYYY-MM-DD, a real date, years 2000 to 9999)."""
    return _is_day(value)


def is_command_path(value: object) -> bool:
    """A command path is zero to eight command names separated by single spaces."""
    if not isinstance(value, str):
        return False
    if value == "":
        return True
    names = value.split(" ")
    return len(names) <= MAX_COMMAND_DEPTH and all(_is_command_name(name) for name in names)


def is_error_class(value: object) -> bool:
    return value == "" or _is_class_name(value)


def is_flag(value: object) -> bool:
    if not isinstance(value, str) or not value.startswith("-"):
        return False
    return _is_flag_name(value[2:] if value.startswith("--") else value[1:])


def _is_flag_list(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) <= MAX_FLAGS
        and all(is_flag(flag) for flag in value)
        and value == sorted(set(value))
    )


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_COUNT


def _is_duration(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= MAX_DURATION_MS * MAX_COUNT
    )


def _is_buckets(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == DURATION_BUCKET_COUNT
        and all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_COUNT for n in value
        )
    )


def _is_outcome(value: object) -> bool:
    return value in OUTCOMES


class Field:
    """One allowed field: its name, JSON type, meaning and limits."""

    __slots__ = ("check", "description", "limits", "name", "type")

    def __init__(
        self, name: str, type: str, description: str, limits: str, check: Callable[[object], bool]
    ) -> None:
        self.name = name
        self.type = type
        self.description = description
        self.limits = limits
        self.check = check


ROLLUP_FIELDS: tuple[Field, ...] = (
    Field(
        "day",
        "string",
        "The UTC day the invocations ended on.",
        "`YYYY-MM-DD`",
        _is_day,
    ),
    Field(
        "command",
        "string",
        "The command path without the program name, e.g. `db migrate`; "
        "empty for the tool's root command. Command names come from the tool's code, "
        "never from what was typed as an argument.",
        "0 to 8 names of `[A-Za-z0-9][A-Za-z0-9_.:-]*`, at most 64 characters each",
        is_command_path,
    ),
    Field(
        "outcome",
        "string",
        "How the invocation ended.",
        "one of " + ", ".join(f"`{outcome}`" for outcome in OUTCOMES),
        _is_outcome,
    ),
    Field(
        "error_class",
        "string",
        "The class name of the exception that ended the invocation (`ValueError`, "
        "`NoSuchOption`, `KeyboardInterrupt`), or `SIGTERM`; never its message or traceback. "
        "Empty on success.",
        "empty, or a Python identifier of at most 100 ASCII characters",
        is_error_class,
    ),
    Field(
        "flags",
        "list of strings",
        "The canonical long names of the options given on the command line, at every level "
        "of the command path (`--force`, even when typed as `-f`); names only, never values.",
        "sorted, unique, at most 32 names of the form `--name`",
        _is_flag_list,
    ),
    Field(
        "count",
        "integer",
        "How many invocations share this day, command, outcome, error class and flag set.",
        "1 to 2^53",
        _is_count,
    ),
    Field(
        "duration_ms_sum",
        "number",
        "Total wall time of those invocations, in milliseconds.",
        "finite, at least 0",
        _is_duration,
    ),
    Field(
        "duration_ms_min",
        "number",
        "The shortest of those invocations, in milliseconds.",
        "finite, at least 0",
        _is_duration,
    ),
    Field(
        "duration_ms_max",
        "number",
        "The longest of those invocations, in milliseconds.",
        "finite, at least 0",
        _is_duration,
    ),
    Field(
        "duration_ms_buckets",
        "list of integers",
        "How many invocations fell in each fixed duration bucket (upper bounds in ms: "
        + ", ".join(str(bound) for bound in DURATION_BUCKET_BOUNDS_MS)
        + ", then everything slower); enough to estimate the median and the 95th percentile.",
        f"exactly {DURATION_BUCKET_COUNT} counts",
        _is_buckets,
    ),
)

ENVELOPE_FIELDS: tuple[Field, ...] = (
    Field(
        "schema_version",
        "integer",
        "The version of this schema.",
        f"currently {SCHEMA_VERSION}",
        lambda value: value == SCHEMA_VERSION,
    ),
    Field(
        "tool",
        "string",
        "The tool's name as its author registered it.",
        "`[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 64 characters",
        _is_tool_name,
    ),
    Field(
        "tool_version",
        "string",
        "The tool's version.",
        "a version string of at most 64 characters",
        _is_version,
    ),
    Field(
        "library_version",
        "string",
        "The version of typer-telemetry.",
        "a version string",
        _is_version,
    ),
    Field(
        "python_version",
        "string",
        "The Python version, e.g. `3.12.4`.",
        "a version string",
        _is_version,
    ),
    Field(
        "os",
        "string",
        "The operating system family: `Linux`, `Darwin`, `Windows`.",
        "a single word",
        _is_platform_token,
    ),
    Field(
        "os_release",
        "string",
        "The operating system release, e.g. `6.1.0` (kernel or OS version, no host name).",
        "a version-like token of at most 64 characters",
        _is_platform_token,
    ),
    Field(
        "arch",
        "string",
        "The processor architecture, e.g. `x86_64`, `arm64`.",
        "a single word",
        _is_platform_token,
    ),
    Field(
        "install_id",
        "string",
        "A random identifier minted on this machine's first recording run; not derived from "
        "the machine, the user or the network. `telemetry reset` replaces it.",
        "a random (version 4) UUID",
        _is_uuid4,
    ),
)

ROLLUP_FIELD_NAMES = tuple(field.name for field in ROLLUP_FIELDS)
ENVELOPE_FIELD_NAMES = tuple(field.name for field in ENVELOPE_FIELDS)
_ROLLUP_BY_NAME = {field.name: field for field in ROLLUP_FIELDS}
_ENVELOPE_BY_NAME = {field.name: field for field in ENVELOPE_FIELDS}


def _validate(
    values: Mapping[str, object], fields: Mapping[str, Field], what: str
) -> dict[str, object]:
    extra = set(values) - set(fields)
    if extra:
        raise SchemaError(f"{what} has fields outside the schema: {sorted(extra)}")
    missing = set(fields) - set(values)
    if missing:
        raise SchemaError(f"{what} lacks fields: {sorted(missing)}")
    for name, field in fields.items():
        if not field.check(values[name]):
            raise SchemaError(f"{what} field {name!r} is outside its limits ({field.limits})")
    return {name: values[name] for name in fields}


def validate_rollup_record(values: Mapping[str, object]) -> dict[str, object]:
    """Return the record with its fields in schema order, or raise SchemaError."""
    record = _validate(values, _ROLLUP_BY_NAME, "rollup record")
    buckets = record["duration_ms_buckets"]
    assert isinstance(buckets, list)
    if sum(buckets) != record["count"]:
        raise SchemaError("rollup record buckets do not add up to its count")
    minimum, maximum = record["duration_ms_min"], record["duration_ms_max"]
    assert isinstance(minimum, (int, float))
    assert isinstance(maximum, (int, float))
    if minimum > maximum:
        raise SchemaError("rollup record minimum exceeds its maximum")
    if record["outcome"] == "success" and record["error_class"] != "":
        raise SchemaError("a successful rollup record carries an error class")
    return record


def validate_envelope(values: Mapping[str, object]) -> dict[str, object]:
    """Return the envelope with its fields in schema order, or raise SchemaError."""
    return _validate(values, _ENVELOPE_BY_NAME, "envelope")


def validate_observation(
    day: str, command: str, outcome: str, error_class: str, flags: Sequence[str], duration_ms: float
) -> None:
    """Check one invocation's fields before they are written to the journal."""
    if not _is_day(day):
        raise SchemaError("day is outside the schema")
    if not is_command_path(command):
        raise SchemaError("command path is outside the schema")
    if outcome not in OUTCOMES:
        raise SchemaError("outcome is outside the schema")
    if not is_error_class(error_class) or (outcome == "success") != (error_class == ""):
        raise SchemaError("error class is outside the schema")
    if not _is_flag_list(list(flags)):
        raise SchemaError("flags are outside the schema")
    if not (_is_duration(duration_ms) and duration_ms <= MAX_DURATION_MS):
        raise SchemaError("duration is outside the schema")


def bucket_index(duration_ms: float) -> int:
    """The index of the duration bucket that holds `duration_ms`."""
    for index, bound in enumerate(DURATION_BUCKET_BOUNDS_MS):
        if duration_ms <= bound:
            return index
    return len(DURATION_BUCKET_BOUNDS_MS)


def field_tables_markdown() -> str:
    """The Markdown tables that TELEMETRY.md embeds (generated, checked by a test)."""

    def table(fields: Sequence[Field]) -> list[str]:
        rows = ["| field | type | meaning | limits |", "|---|---|---|---|"]
        rows += [
            f"| `{field.name}` | {field.type} | {field.description} | {field.limits} |"
            for field in fields
        ]
        return rows

    lines = [
        f"Schema version {SCHEMA_VERSION}.",
        "",
        "### Each rollup record (one per day, command, outcome, error class and flag set)",
        "",
        *table(ROLLUP_FIELDS),
        "",
        "### The envelope sent with each batch of records",
        "",
        *table(ENVELOPE_FIELDS),
    ]
    return "\n".join(lines) + "\n"
