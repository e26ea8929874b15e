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
from collections.abc import Callable, Iterable, Mapping, Sequence

from ._checks import (
    COMMAND_EVENT,
    MAX_COUNT,
    OUTCOMES,
    SchemaError,
    check_properties,
    is_day,
    is_duration,
    is_error_class,
    is_outcome,
    is_platform_token,
    is_tool_name,
    is_uuid4,
    is_version,
)
from ._runner import RUNNERS

# 2: every record names its event and carries its values under `properties`
# (version 1 had only command records, with `command` and `flags` at the top).
SCHEMA_VERSION = 2

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
    if not isinstance(value, list) or len(value) != DURATION_BUCKET_COUNT:
        return False
    # The common case, plain ints, checked in C; anything else item by item.
    if set(map(type, value)) == {int}:
        return bool(min(value) >= 0 and max(value) <= MAX_COUNT)
    return all(
        isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_COUNT for n in value
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


def _is_event_name(value: object) -> bool:
    if value == COMMAND_EVENT:
        return True
    from ._events import is_event_name

    return bool(is_event_name(value))


def _is_properties(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(name, str) for name in value)


ROLLUP_FIELDS: tuple[Field, ...] = (
    Field(
        "day",
        "string",
        "The UTC day the events happened on (for a command, the day it ended).",
        "`YYYY-MM-DD`",
        is_day,
    ),
    Field(
        "event",
        "string",
        "`command` for an invocation of one of the tool's commands; otherwise the name of an "
        "event the tool declared itself (its own TELEMETRY.md lists them).",
        "`command`, or 1 to 64 characters of `[a-z][a-z0-9_]*`",
        _is_event_name,
    ),
    Field(
        "properties",
        "object",
        "What the events had in common besides their ending: for `command`, the command path "
        "and the options given; for the tool's own events, the values of their declared "
        "fields; and the built-in signals the tool turned on (see the next table).",
        "only the properties listed below, or the fields the event declares",
        _is_properties,
    ),
    Field(
        "outcome",
        "string",
        "How the events ended.",
        "one of " + ", ".join(f"`{outcome}`" for outcome in OUTCOMES),
        is_outcome,
    ),
    Field(
        "error_class",
        "string",
        "The class name of the exception that ended them (`ValueError`, "
        "`NoSuchOption`, `KeyboardInterrupt`), or `SIGTERM`; never its message or traceback. "
        "Empty on success, and for a failure of the tool's own event recorded without one.",
        "empty, or a Python identifier of at most 100 ASCII characters",
        is_error_class,
    ),
    Field(
        "count",
        "integer",
        "How many events share this day, event, properties, outcome and error class.",
        "1 to 2^53",
        _is_count,
    ),
    Field(
        "duration_ms_sum",
        "number",
        "Total duration of those events that were timed, in milliseconds (every command is; "
        "0 when none was).",
        "finite, at least 0",
        is_duration,
    ),
    Field(
        "duration_ms_min",
        "number",
        "The shortest of those timed, in milliseconds (0 when none was).",
        "finite, at least 0",
        is_duration,
    ),
    Field(
        "duration_ms_max",
        "number",
        "The longest of those timed, in milliseconds (0 when none was).",
        "finite, at least 0",
        is_duration,
    ),
    Field(
        "duration_ms_buckets",
        "list of integers",
        "How many timed events fell in each fixed duration bucket (upper bounds in ms: "
        + ", ".join(str(bound) for bound in DURATION_BUCKET_BOUNDS_MS)
        + ", then everything slower); enough to estimate the median and the 95th percentile. "
        "They add up to the number of timed events: `count` for commands.",
        f"exactly {DURATION_BUCKET_COUNT} counts",
        _is_buckets,
    ),
)


PROPERTY_FIELDS: tuple[Field, ...] = (
    Field(
        "command",
        "string",
        "`command` events: the command path without the program name, e.g. `db migrate`; "
        "empty for the tool's root command. Command names come from the tool's code, "
        "never from what was typed as an argument.",
        "0 to 8 names of `[A-Za-z0-9][A-Za-z0-9_.:-]*`, at most 64 characters each",
        lambda value: True,
    ),
    Field(
        "flags",
        "list of strings",
        "`command` events: the canonical long names of the options given on the command line, "
        "at every level of the command path (`--force`, even when typed as `-f`); names only, "
        "never values.",
        "sorted, unique, at most 32 names of the form `--name`",
        lambda value: True,
    ),
    Field(
        "runner",
        "string",
        "Only if the tool turned on the `runner` signal: who ran the tool, judged from this "
        "process alone (see docs/signals.md).",
        "one of " + ", ".join(f"`{runner}`" for runner in RUNNERS),
        lambda value: True,
    ),
    Field(
        "agent",
        "string",
        "Only with the `runner` signal, when `runner` is `agent`: the coding agent or MCP "
        "client that ran the tool, from a documented list (docs/signals.md).",
        "a name of the documented list, or `other`",
        lambda value: True,
    ),
    Field(
        "project_id",
        "string",
        "Only if the tool turned on the `project` signal: a salted hash of the project folder "
        "the tool ran in, telling projects apart without naming them. The salt is random, "
        "made on this machine and never sent; the folder's path is never sent.",
        "32 hex digits",
        lambda value: True,
    ),
    Field(
        "sample_rate",
        "number",
        "Only if the tool records a sample of its processes: the share of processes recorded, "
        "so that counts can be scaled back (count / sample_rate).",
        "above 0, at most 1",
        lambda value: True,
    ),
    Field(
        "(a declared field)",
        "string or boolean",
        "The tool's own events: each field the event declares, as one of its declared values "
        "(or `other`), a bucket label such as `10-100`, or true/false.",
        "only what the declaration allows (the tool's TELEMETRY.md lists it)",
        lambda value: True,
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


_NUMBER_NAMES = (
    "count",
    "duration_ms_sum",
    "duration_ms_min",
    "duration_ms_max",
    "duration_ms_buckets",
)
_CATEGORY_FIELDS = tuple(field for field in ROLLUP_FIELDS if field.name not in _NUMBER_NAMES)
_NUMBER_FIELDS = tuple(_ROLLUP_BY_NAME[name] for name in _NUMBER_NAMES)


def _check_names(values: Mapping[str, object], fields: Mapping[str, Field], what: str) -> None:
    extra = set(values) - set(fields)
    if extra:
        raise SchemaError(f"{what} has fields outside the schema: {sorted(extra)}")
    missing = set(fields) - set(values)
    if missing:
        raise SchemaError(f"{what} lacks fields: {sorted(missing)}")


def _check_fields(values: Mapping[str, object], fields: Iterable[Field], what: str) -> None:
    for field in fields:
        if not field.check(values[field.name]):
            raise SchemaError(f"{what} field {field.name!r} is outside its limits ({field.limits})")


def _check(values: Mapping[str, object], fields: Mapping[str, Field], what: str) -> None:
    _check_names(values, fields, what)
    _check_fields(values, fields.values(), what)


def check_record(values: Mapping[str, object]) -> None:
    """Raise SchemaError unless `values` is a rollup record (as stored and sent) of the schema."""
    _check_names(values, _ROLLUP_BY_NAME, "rollup record")
    check_record_categories(values)
    check_record_numbers(values, command=values["event"] == COMMAND_EVENT)


def check_record_categories(values: Mapping[str, object]) -> None:
    """The half of `check_record` that depends on no number: the day, event, properties and outcome.

    `values` has every field of a record. A check of many records may keep
    this half's verdict for records alike in these fields (the collector does).
    """
    _check_fields(values, _CATEGORY_FIELDS, "rollup record")
    properties = values["properties"]
    assert isinstance(properties, dict)
    check_properties(str(values["event"]), properties)
    if values["outcome"] == "success" and values["error_class"] != "":
        raise SchemaError("a successful rollup record carries an error class")
    failed = values["outcome"] != "success"
    if values["event"] == COMMAND_EVENT and failed and values["error_class"] == "":
        raise SchemaError("a failed command's record lacks its error class")


def check_record_numbers(values: Mapping[str, object], *, command: bool) -> None:
    """The other half: the count, the durations and the buckets, and how they agree.

    `command`: the record is of the `command` event, whose every event is timed.
    """
    _check_fields(values, _NUMBER_FIELDS, "rollup record")
    buckets = values["duration_ms_buckets"]
    count = values["count"]
    assert isinstance(buckets, list)
    assert isinstance(count, int)
    timed = sum(buckets)
    if command and timed != count:
        raise SchemaError("a command record's buckets do not add up to its count")
    if timed > count:
        raise SchemaError("a rollup record has more timed events than events")
    minimum, maximum = values["duration_ms_min"], values["duration_ms_max"]
    assert isinstance(minimum, (int, float))
    assert isinstance(maximum, (int, float))
    if minimum > maximum:
        raise SchemaError("rollup record minimum exceeds its maximum")
    if timed == 0 and (values["duration_ms_sum"] or minimum or maximum):
        raise SchemaError("a rollup record without timed events has durations")


def check_envelope(values: Mapping[str, object]) -> None:
    """Raise SchemaError unless `values` is an envelope of the schema."""
    _check(values, _ENVELOPE_BY_NAME, "envelope")


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
        "### Each rollup record (one per day, event, properties, outcome and error class)",
        "",
        *table(ROLLUP_FIELDS),
        "",
        "### The properties a record may carry",
        "",
        *table(PROPERTY_FIELDS),
        "",
        "### The envelope sent with each batch of records",
        "",
        *table(ENVELOPE_FIELDS),
    ]
    return "\n".join(lines) + "\n"
