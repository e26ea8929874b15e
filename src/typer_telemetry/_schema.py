"""The allowlist: every field that may be recorded or sent, with its type and limits.

This module is the single definition of what typer-telemetry collects. Records
are validated against it before they touch disk, payloads before they leave
the machine, and TELEMETRY.md's field tables are generated from it (a test
fails when the two drift). Anything not named here is never stored or sent.
The checks each field names live in `_checks.py`, which a recorded run loads
without these tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from ._checks import (
    MAX_COUNT,
    OUTCOMES,
    SchemaError,
    is_command_path,
    is_day,
    is_duration,
    is_error_class,
    is_flag_list,
    is_outcome,
    is_platform_token,
    is_tool_name,
    is_uuid4,
    is_version,
)

SCHEMA_VERSION = 1

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


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_COUNT


def _is_buckets(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == DURATION_BUCKET_COUNT
        and all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_COUNT for n in value
        )
    )


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
        is_day,
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
        is_outcome,
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
        is_flag_list,
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
        is_duration,
    ),
    Field(
        "duration_ms_min",
        "number",
        "The shortest of those invocations, in milliseconds.",
        "finite, at least 0",
        is_duration,
    ),
    Field(
        "duration_ms_max",
        "number",
        "The longest of those invocations, in milliseconds.",
        "finite, at least 0",
        is_duration,
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


def _is_os_release(value: object) -> bool:
    return value == "unknown" or (
        isinstance(value, str)
        and re.fullmatch(r"[0-9]{1,9}(?:\.[0-9]{1,9}){0,2}", value) is not None
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
        is_tool_name,
    ),
    Field(
        "tool_version",
        "string",
        "The tool's version.",
        "a version string of at most 64 characters",
        is_version,
    ),
    Field(
        "library_version",
        "string",
        "The version of typer-telemetry.",
        "a version string",
        is_version,
    ),
    Field(
        "python_version",
        "string",
        "The Python version, e.g. `3.12.4`.",
        "a version string",
        is_version,
    ),
    Field(
        "os",
        "string",
        "The operating system family: `Linux`, `Darwin`, `Windows`.",
        "a single word",
        is_platform_token,
    ),
    Field(
        "os_release",
        "string",
        "The leading numeric version of the operating system release (the kernel's on Linux),"
        " e.g. `6.1.0` for `6.1.0-18-amd64`; any suffix after the numbers (a distribution's or"
        " a custom build's name) is never sent.",
        "at most three numbers separated by dots, or `unknown`",
        _is_os_release,
    ),
    Field(
        "arch",
        "string",
        "The processor architecture, e.g. `x86_64`, `arm64`.",
        "a single word",
        is_platform_token,
    ),
    Field(
        "install_id",
        "string",
        "A random identifier minted on this machine's first recording run; not derived from "
        "the machine, the user or the network. The tool's `telemetry reset` command replaces it.",
        "a random (version 4) UUID",
        is_uuid4,
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
