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

from .._checks import (
    COMMAND_EVENT,
    COMMAND_PROPERTIES,
    MAX_COUNT,
    MAX_DURATION_MS,
    SIGNAL_PROPERTIES,
    SchemaError,
    is_day,
)
from .._events import is_field_name, is_property_value
from .._records import Batch, Envelope, Record, upgrade_version_1
from .._schema import (
    DURATION_BUCKET_COUNT,
    ENVELOPE_FIELD_NAMES,
    ROLLUP_FIELD_NAMES,
    SCHEMA_VERSION,
    check_record_numbers,
)
from .rows import properties_text

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
    """A batch as it may be stored: the checked envelope and the records kept.

    The records are kept as the stores keep them, one JSON array (compact,
    each record's fields in TELEMETRY.md's order, its properties sorted):
    written as the check goes, so storing a batch encodes nothing again.
    """

    idempotency_key: str
    day: str
    envelope: Envelope
    records_json: str
    record_count: int
    dropped: int  # records left out (unknown event, day outside the window)

    @property
    def records(self) -> tuple[Record, ...]:
        """The records kept, as the library's `Record`s (read back from `records_json`)."""
        return tuple(Record.from_json(values) for values in json.loads(self.records_json))

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
    return BatchChecker(schemas).check(document, header_key=header_key, now=now)


# The record's fields, for a record that has them all and nothing else.
_RECORD_NAMES = frozenset(ROLLUP_FIELD_NAMES)
_TEXT_ENCODER = json.JSONEncoder(separators=(",", ":"))
# Verdicts kept per schema at most, and the longest record half kept (characters): at
# most about 20 MB, whatever is sent; beyond, verdicts are forgotten and found again.
MAX_VERDICTS = 10_000
MAX_VERDICT_KEY = 2048
_UNSEEN = object()
# A verdict: the record's non-number half as stored (from `"event"` to `"error_class"`),
# or None: the record is dropped (an event the tool's contract does not declare).
Verdict = str | None


class BatchChecker:
    """`check_batch` for a running collector: the same verdicts, found once for records alike.

    Records repeat: the same few commands, outcomes and options come from
    every install. The checks of a record's day, event, properties, outcome
    and error class (`check_record_categories`, the tool's contract) depend
    on nothing else, so their verdict is kept, per schema, under the event,
    outcome, error class and properties exactly as they came (their `repr`,
    which tells `true` from `1` and `1.0` as JSON does; the day is the
    batch's), and a record alike is then only checked for its numbers
    (`check_record_numbers`, quicker still for plain ones). A record
    seen for the first time, or one that is not plainly the format (a field
    missing or extra, version 1, another day), takes the whole check. The
    verdicts are the same either way; the tests hold the two paths to each
    other.

    `schemas` is read at every batch: a schema added to it later is used.
    """

    def __init__(self, schemas: Mapping[str, ToolSchema]) -> None:
        self.schemas = schemas
        self._verdicts: dict[int, tuple[ToolSchema | None, dict[str, Verdict]]] = {}

    def check(self, document: object, *, header_key: str | None, now: float) -> ValidBatch:
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
        schema = self.schemas.get(envelope.tool)
        verdicts = self._verdicts_of(schema)
        opening = '{"day":"' + day + '",'  # a checked day: digits and dashes
        texts: list[str] = []
        for values in records:
            text = self._record_text(values, day, opening, schema, verdicts)
            if text is not None:
                texts.append(text)
        oldest, newest = day_window(now)
        if not oldest <= day <= newest:
            texts = []
        return ValidBatch(
            key, day, envelope, "[" + ",".join(texts) + "]", len(texts), len(records) - len(texts)
        )

    def _verdicts_of(self, schema: ToolSchema | None) -> dict[str, Verdict]:
        kept = self._verdicts.get(id(schema))
        if kept is None or kept[0] is not schema:
            kept = (schema, {})
            self._verdicts[id(schema)] = kept
        return kept[1]

    @staticmethod
    def _record_text(
        values: object,
        day: str,
        opening: str,
        schema: ToolSchema | None,
        verdicts: dict[str, Verdict],
    ) -> str | None:
        """The record as stored (JSON text), None to drop it, or `Refused`."""
        alike: str | None = None
        if type(values) is dict and values.keys() == _RECORD_NAMES and values["day"] == day:
            properties = values["properties"]
            if type(properties) is dict:
                try:
                    # repr tells JSON's values apart as JSON does (`True` is not `1`, nor `1.0`).
                    alike = repr(
                        (values["event"], values["outcome"], values["error_class"], properties)
                    )
                except (RecursionError, ValueError):  # too deep, or an int past repr's digits
                    alike = None  # the whole check says what is wrong
        if alike is not None:
            assert isinstance(values, dict)
            verdict = verdicts.get(alike, _UNSEEN)
            if verdict is None:
                return None
            if isinstance(verdict, str):
                command = values["event"] == COMMAND_EVENT
                text = _plain_record_text(values, command, opening, verdict)
                if text is not None:
                    return text
                try:
                    check_record_numbers(values, command=command)
                except SchemaError as error:
                    raise Refused(str(error)) from None
                return opening + verdict + _numbers_text(values)
        record = _record(_object(values, "a record"), schema)
        if alike is not None and len(alike) <= MAX_VERDICT_KEY:
            if len(verdicts) >= MAX_VERDICTS:
                verdicts.clear()
            verdicts[alike] = None if record is None else _categories_text(record)
        if record is None or record.day != day:
            return None
        return opening + _categories_text(record) + _numbers_text(record.to_json())


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


def _categories_text(record: Record) -> str:
    """A checked record's fields from its event to its error class, as stored (JSON members)."""
    return (
        '"event":'
        + _TEXT_ENCODER.encode(record.event)
        + ',"properties":'
        + properties_text(record.properties)
        + ',"outcome":'
        + _TEXT_ENCODER.encode(record.outcome)
        + ',"error_class":'
        + _TEXT_ENCODER.encode(record.error_class)
        + ","
    )


def _numbers_text(values: Mapping[str, Any]) -> str:
    """A checked record's count, durations and buckets, as stored (the last JSON members)."""
    return _numbers_members(
        int(values["count"]),
        float(values["duration_ms_sum"]),
        float(values["duration_ms_min"]),
        float(values["duration_ms_max"]),
        "[" + ",".join(map(str, values["duration_ms_buckets"])) + "]",
    )


def _numbers_members(
    count: int, total: float, minimum: float, maximum: float, buckets_text: str
) -> str:
    """The count, durations (floats) and buckets (JSON text) as the record's last JSON members."""
    return (
        f'"count":{count},"duration_ms_sum":{total!r},"duration_ms_min":{minimum!r},'
        f'"duration_ms_max":{maximum!r},"duration_ms_buckets":{buckets_text}}}'
    )


# The largest duration a record may carry (is_duration's bound), and the
# buckets' texts already written (the same few come again and again).
_MAX_DURATION_SUM = MAX_DURATION_MS * MAX_COUNT
_BUCKETS_TEXTS: dict[tuple[int, ...], str] = {}


def _plain_record_text(
    values: Mapping[str, Any], command: bool, opening: str, categories: str
) -> str | None:
    """The record as stored, when its numbers are plain and pass `check_record_numbers`; else None.

    Plain: an int count, float durations, a list of ints; for those types
    this is `check_record_numbers` restated (NaN fails every comparison, an
    infinity the upper bounds), and a None hands the record to it (other
    types it allows, such as int durations, or a refusal it words). The
    tests hold the two to each other.
    """
    count, total = values["count"], values["duration_ms_sum"]
    minimum, maximum = values["duration_ms_min"], values["duration_ms_max"]
    buckets = values["duration_ms_buckets"]
    if not (
        type(count) is int
        and type(total) is float
        and type(minimum) is float
        and type(maximum) is float
        and type(buckets) is list
        and len(buckets) == DURATION_BUCKET_COUNT
        and 1 <= count <= MAX_COUNT
        and 0.0 <= total <= _MAX_DURATION_SUM
        and 0.0 <= minimum <= maximum <= _MAX_DURATION_SUM
        and set(map(type, buckets)) == {int}
    ):
        return None
    key = tuple(buckets)  # ints only, so equal keys are equal buckets
    buckets_text = _BUCKETS_TEXTS.get(key)
    if buckets_text is None:
        if min(buckets) < 0:
            return None
        if len(_BUCKETS_TEXTS) >= MAX_VERDICTS:
            _BUCKETS_TEXTS.clear()
        buckets_text = _BUCKETS_TEXTS[key] = str(buckets).replace(" ", "")
    timed = sum(buckets)  # each at most the count, itself at most MAX_COUNT
    if timed > count or (command and timed != count):
        return None
    if timed == 0 and (total or minimum or maximum):
        return None
    return opening + categories + _numbers_members(count, total, minimum, maximum, buckets_text)


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
