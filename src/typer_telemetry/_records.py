"""The records that are stored and sent: a rollup record, the envelope, one day's batch.

Typed, slotted and immutable, checked against the schema when made from
JSON (a file, a journal line, an edited store) and turned back into JSON
only where they leave the library: the rollup file, `status --json` and the
back ends' request bodies. The back ends get these classes, never a dict,
and need not check them again.

Loaded only when records are folded, read or sent, never on a short run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._checks import COMMAND_EVENT, SchemaError
from ._schema import (
    DURATION_BUCKET_COUNT,
    ENVELOPE_FIELD_NAMES,
    check_envelope,
    check_record,
)

if TYPE_CHECKING:
    # A property's value: a string (a command path, a choice, a bucket label,
    # a built-in signal's name), a flag, the option names given, or the sample rate.
    PropertyValue = str | bool | float | tuple[str, ...]
    Properties = tuple[tuple[str, PropertyValue], ...]
    # What a record is counted under: (day, event, properties, outcome, error class).
    Key = tuple[str, str, Properties, str, str]
    # A JSON document as it is written to a file or sent: never a record held in memory.
    JSONDocument = dict[str, Any]


class Record:
    """The rollup of one day's events that share an event, properties, outcome and error class.

    `duration_ms_buckets` counts the events that were timed (every command
    is); the sum, minimum and maximum are theirs, all 0 when none was.
    """

    __slots__ = (
        "count",
        "day",
        "duration_ms_buckets",
        "duration_ms_max",
        "duration_ms_min",
        "duration_ms_sum",
        "error_class",
        "event",
        "outcome",
        "properties",
    )

    day: str
    event: str
    properties: Properties
    outcome: str
    error_class: str
    count: int
    duration_ms_sum: float
    duration_ms_min: float
    duration_ms_max: float
    duration_ms_buckets: tuple[int, ...]

    def __init__(
        self,
        day: str,
        event: str,
        properties: Properties,
        outcome: str,
        error_class: str,
        *,
        count: int,
        duration_ms_sum: float,
        duration_ms_min: float,
        duration_ms_max: float,
        duration_ms_buckets: tuple[int, ...],
    ) -> None:
        values = {
            "day": day,
            "event": event,
            "properties": properties,
            "outcome": outcome,
            "error_class": error_class,
            "count": count,
            "duration_ms_sum": duration_ms_sum,
            "duration_ms_min": duration_ms_min,
            "duration_ms_max": duration_ms_max,
            "duration_ms_buckets": duration_ms_buckets,
        }
        for attribute, value in values.items():
            object.__setattr__(self, attribute, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("records are immutable")

    @property
    def key(self) -> Key:
        return (self.day, self.event, self.properties, self.outcome, self.error_class)

    @property
    def timed(self) -> int:
        """How many of the events were timed."""
        return sum(self.duration_ms_buckets)

    def property(self, name: str, default: PropertyValue | None = None) -> PropertyValue | None:
        for found, value in self.properties:
            if found == name:
                return value
        return default

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Record({self.to_json()!r})"

    def to_json(self) -> JSONDocument:
        """The record as stored, shown by `status --json` and sent: the schema's field order."""
        return {
            "day": self.day,
            "event": self.event,
            "properties": {
                name: list(value) if isinstance(value, tuple) else value
                for name, value in self.properties
            },
            "outcome": self.outcome,
            "error_class": self.error_class,
            "count": self.count,
            "duration_ms_sum": self.duration_ms_sum,
            "duration_ms_min": self.duration_ms_min,
            "duration_ms_max": self.duration_ms_max,
            "duration_ms_buckets": list(self.duration_ms_buckets),
        }

    @classmethod
    def from_json(cls, values: object) -> Record:
        """The record a JSON object describes, checked against the schema (SchemaError if not).

        A record of schema version 1 (a command record with `command` and
        `flags` at the top, no `event`) is read as the `command` event it was.
        """
        if not isinstance(values, dict):
            raise SchemaError("a rollup record is not an object")
        if "event" not in values and "command" in values:
            values = upgrade_version_1(values)
        check_record(values)
        return cls(
            values["day"],
            values["event"],
            properties_from_json(values["properties"]),
            values["outcome"],
            values["error_class"],
            count=values["count"],
            duration_ms_sum=float(values["duration_ms_sum"]),
            duration_ms_min=float(values["duration_ms_min"]),
            duration_ms_max=float(values["duration_ms_max"]),
            duration_ms_buckets=tuple(values["duration_ms_buckets"]),
        )


def properties_from_json(values: Mapping[str, object]) -> Properties:
    """Properties as the records hold them: sorted by name, lists as tuples."""
    pairs: list[tuple[str, PropertyValue]] = []
    for name, value in values.items():
        if isinstance(value, list):
            pairs.append((name, tuple(str(item) for item in value)))
        elif isinstance(value, (str, bool, float)):
            pairs.append((name, value))
        else:
            raise SchemaError(f"property {name!r} has a value of no allowed type")
    return tuple(sorted(pairs, key=_name_of))


def _name_of(pair: tuple[str, object]) -> str:
    return pair[0]


def upgrade_version_1(values: Mapping[str, Any]) -> dict[str, Any]:
    """A record of schema version 1 (commands only) as the `command` event of version 2."""
    upgraded = dict(values)
    command, flags = upgraded.pop("command", None), upgraded.pop("flags", None)
    upgraded["event"] = COMMAND_EVENT
    upgraded["properties"] = {"command": command, "flags": flags}
    return upgraded


class Envelope:
    """What every batch carries besides its records: the schema, the tool, the platform, the id."""

    __slots__ = ENVELOPE_FIELD_NAMES

    schema_version: int
    tool: str
    tool_version: str
    library_version: str
    python_version: str
    os: str
    os_release: str
    arch: str
    install_id: str

    def __init__(self, values: Mapping[str, object]) -> None:
        """Checked against the schema: SchemaError for anything outside it."""
        check_envelope(values)
        for name in ENVELOPE_FIELD_NAMES:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("an envelope is immutable")

    def to_json(self) -> JSONDocument:
        return {name: getattr(self, name) for name in ENVELOPE_FIELD_NAMES}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Envelope) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(tuple(self.to_json().items()))

    def __repr__(self) -> str:
        return f"Envelope({self.to_json()!r})"


class Batch:
    """The records of one completed UTC day, with the envelope they travel in.

    `idempotency_key` is the same every time the same batch is sent again
    (see docs/design.md): a receiver drops a batch whose key it has stored.
    """

    __slots__ = ("day", "envelope", "idempotency_key", "records")

    day: str
    envelope: Envelope
    records: tuple[Record, ...]
    idempotency_key: str

    def __init__(
        self, day: str, envelope: Envelope, records: Iterable[Record], idempotency_key: str
    ) -> None:
        object.__setattr__(self, "day", day)
        object.__setattr__(self, "envelope", envelope)
        object.__setattr__(self, "records", tuple(records))
        object.__setattr__(self, "idempotency_key", idempotency_key)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a batch is immutable")

    def __repr__(self) -> str:
        return (
            f"Batch(day={self.day!r}, records={len(self.records)},"
            f" idempotency_key={self.idempotency_key!r})"
        )

    def to_json(self) -> JSONDocument:
        """The batch as the library's HTTP format carries it (docs/backends.md), without its header."""
        return {
            "idempotency_key": self.idempotency_key,
            "day": self.day,
            "envelope": self.envelope.to_json(),
            "records": [record.to_json() for record in self.records],
        }


def empty_buckets() -> tuple[int, ...]:
    return (0,) * DURATION_BUCKET_COUNT
