"""A posted batch, checked: what of it may be stored, or why it is refused.

The same checks the client runs before it writes a record (`Record.from_json`,
`Envelope`, the schema's field checks) decide here, plus the tool's own
published contract (`python -m typer_telemetry schema mod:attr --json`) when
the collector was given it. What is outside is handled in one of two ways
(docs/collector.md, "What is checked"):

- **dropped**, the rest kept: fields the format does not name (at the top,
  in the envelope, in a record, in its properties), signals the tool's
  contract does not turn on, events the tool's contract does not declare, a declared field's value the contract does not
  list, records of days outside the window (older than 400 days, or after
  tomorrow UTC);
- **refused** (`Refused`, answered 400): what is not the format at all, a
  field of the wrong JSON type, a value outside the schema's limits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .._checks import COMMAND_EVENT, COMMAND_PROPERTIES, SIGNAL_PROPERTIES, SchemaError, is_day
from .._events import is_field_name, is_property_value
from .._records import Batch, Envelope, Record, upgrade_version_1
from .._schema import ENVELOPE_FIELD_NAMES, ROLLUP_FIELD_NAMES, SCHEMA_VERSION

BATCH_FORMAT = "typer-telemetry-batch"
DELETION_FORMAT = "typer-telemetry-deletion"
SCHEMA_FORMAT = "typer-telemetry-schema"
BATCH_VERSIONS = (1, 2)
DELETION_VERSIONS = (1,)
# The days a batch's records may be of, against the collector's clock (UTC).
OLDEST_DAY = timedelta(days=400)
NEWEST_DAY = timedelta(days=1)
MAX_IDEMPOTENCY_KEY = 128
# Printable ASCII without spaces (the library's keys are hex digits; a custom sender's may differ).
_KEY_CHARACTERS = frozenset(chr(code) for code in range(0x21, 0x7F))


class Refused(ValueError):
    """The request is not the format, or a value in it is of the wrong type or outside its limits."""


@dataclass(frozen=True, slots=True)
class ValidBatch:
    """A batch as it may be stored: the checked envelope and the records kept."""

    idempotency_key: str
    day: str
    envelope: Envelope
    records: tuple[Record, ...]
    dropped: int  # records left out (unknown event, day outside the window)

    def batch(self) -> Batch:
        """As the library's own `Batch` (what a forwarder sends on)."""
        return Batch(self.day, self.envelope, self.records, self.idempotency_key)


@dataclass(frozen=True, slots=True)
class ToolSchema:
    """The part of one tool's published contract the collector checks: its events' fields."""

    tool: str
    # event name -> field name -> the values it may take
    events: Mapping[str, Mapping[str, frozenset[str | bool]]]
    # The built-in signals' properties the tool adds to every record (its `added_properties`).
    signals: frozenset[str] = frozenset(SIGNAL_PROPERTIES)

    @classmethod
    def from_json(cls, document: object) -> ToolSchema:
        """Read `telemetry schema --json`'s document; ValueError naming what is wrong."""
        if not isinstance(document, dict) or document.get("format") != SCHEMA_FORMAT:
            raise ValueError(f"not a tool's telemetry schema (format {SCHEMA_FORMAT!r})")
        tool, events = document.get("tool"), document.get("events")
        if not isinstance(tool, str) or not isinstance(events, dict):
            raise ValueError("the schema lacks its tool's name or its events")
        checked: dict[str, dict[str, frozenset[str | bool]]] = {}
        for name, event in events.items():
            fields = event.get("fields") if isinstance(event, dict) else None
            if not isinstance(fields, dict):
                raise ValueError(f"event {name!r} has no fields object")
            checked[name] = {}
            for field, spec in fields.items():
                values = spec.get("values") if isinstance(spec, dict) else None
                if not isinstance(values, list) or not all(
                    isinstance(value, (str, bool)) for value in values
                ):
                    raise ValueError(f"field {field!r} of event {name!r} lists no values")
                checked[name][field] = frozenset(values)
        added = document.get("added_properties", dict.fromkeys(SIGNAL_PROPERTIES))
        if not isinstance(added, dict):
            raise ValueError("the schema's added_properties is not an object")
        return cls(tool, checked, frozenset(added) & frozenset(SIGNAL_PROPERTIES))

    @classmethod
    def load(cls, path: Path) -> ToolSchema:
        return cls.read(path)[0]

    @classmethod
    def read(cls, path: Path) -> tuple[ToolSchema, str]:
        """The schema in the file at `path`, and the file's text (to register it in a store)."""
        try:
            text = path.read_text(encoding="utf-8")
            return cls.from_json(json.loads(text)), text
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from None


def schemas_by_tool(schemas: Iterable[ToolSchema]) -> dict[str, ToolSchema]:
    found: dict[str, ToolSchema] = {}
    for schema in schemas:
        if schema.tool in found:
            raise ValueError(f"two schemas for tool {schema.tool!r}: give one per tool")
        found[schema.tool] = schema
    return found


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Refused(f"{what} is not a JSON object")
    return value


def day_window(now: float) -> tuple[str, str]:
    """The oldest and newest day a record may be of, at `now` (epoch seconds)."""
    today = datetime.fromtimestamp(now, timezone.utc).date()
    return (today - OLDEST_DAY).isoformat(), (today + NEWEST_DAY).isoformat()


def check_batch(
    document: object,
    *,
    header_key: str | None,
    schemas: Mapping[str, ToolSchema],
    now: float,
) -> ValidBatch:
    """The storable part of a posted batch document, or `Refused`."""
    body, version = _format_and_version(document, "the batch", BATCH_FORMAT, BATCH_VERSIONS)
    key = body.get("idempotency_key")
    if not (
        isinstance(key, str)
        and 0 < len(key) <= MAX_IDEMPOTENCY_KEY
        and _KEY_CHARACTERS.issuperset(key)
    ):
        raise Refused("idempotency_key is not 1 to 128 printable ASCII characters")
    if header_key is not None and header_key != key:
        raise Refused("the Idempotency-Key header differs from the body's idempotency_key")
    day = body.get("day")
    if not is_day(day):
        raise Refused("day is not a YYYY-MM-DD day")
    assert isinstance(day, str)
    envelope = _envelope(_object(body.get("envelope"), "the envelope"), version)
    records = body.get("records")
    if not isinstance(records, list):
        raise Refused("records is not a list")
    oldest, newest = day_window(now)
    schema = schemas.get(envelope.tool)
    kept: list[Record] = []
    for values in records:
        record = _record(_object(values, "a record"), schema)
        if record is not None and oldest <= record.day <= newest and record.day == day:
            kept.append(record)
    if not oldest <= day <= newest:
        kept = []
    return ValidBatch(key, day, envelope, tuple(kept), len(records) - len(kept))


def _envelope(values: dict[str, Any], version: int) -> Envelope:
    known = {name: values[name] for name in ENVELOPE_FIELD_NAMES if name in values}
    if version == 1 and known.get("schema_version") == 1:
        known["schema_version"] = SCHEMA_VERSION  # read as version 2 (docs/backends.md)
    try:
        return Envelope(known)
    except SchemaError as error:
        raise Refused(str(error)) from None


def _record(values: dict[str, Any], schema: ToolSchema | None) -> Record | None:
    """The record as it may be stored, None to drop it, or `Refused`."""
    if "event" not in values and "command" in values:
        values = upgrade_version_1(values)
    known = {name: values[name] for name in ROLLUP_FIELD_NAMES if name in values}
    event = known.get("event")
    if not isinstance(event, str):
        raise Refused("a record's event is not a string")
    properties = _object(known.get("properties"), "a record's properties")
    if event == COMMAND_EVENT:
        own: dict[str, Any] = {
            name: value for name, value in properties.items() if name in COMMAND_PROPERTIES
        }
    elif schema is not None:
        fields = schema.events.get(event)
        if fields is None:
            return None  # an event the tool's contract does not declare
        own = {}
        for name, value in properties.items():
            if name not in fields:
                continue
            if not isinstance(value, (str, bool)):
                raise Refused(f"field {name!r} of event {event!r} is not a string or boolean")
            if value in fields[name]:
                own[name] = value
    else:
        own = {}
        for name, value in properties.items():
            if name in SIGNAL_PROPERTIES or not is_field_name(name):
                continue
            if not isinstance(value, (str, bool)):
                raise Refused(f"property {name!r} of event {event!r} is not a string or boolean")
            if is_property_value(value):
                own[name] = value
    allowed = SIGNAL_PROPERTIES if schema is None else schema.signals
    signals = {name: value for name, value in properties.items() if name in allowed}
    known["properties"] = {**own, **signals}
    try:
        return Record.from_json(known)
    except SchemaError as error:
        raise Refused(str(error)) from None


def _format_and_version(
    document: object, what: str, format_name: str, versions: tuple[int, ...]
) -> tuple[dict[str, Any], int]:
    """The document as an object, and its version, once its format and version are ones we read."""
    body = _object(document, what)
    if body.get("format") != format_name:
        raise Refused(f"format is not {format_name!r}")
    version = body.get("version")
    if type(version) is not int or version not in versions:
        raise Refused(f"version is not one of {list(versions)}")
    return body, version


def check_deletion(document: object) -> str:
    """The install id a deletion request names, or `Refused`."""
    body, _version = _format_and_version(
        document, "the deletion request", DELETION_FORMAT, DELETION_VERSIONS
    )
    install_id = body.get("install_id")
    from .._checks import is_uuid4

    if not is_uuid4(install_id):
        raise Refused("install_id is not a random (version 4) UUID")
    assert isinstance(install_id, str)
    return install_id
