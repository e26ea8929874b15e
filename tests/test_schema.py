"""The schema is the allowlist, and TELEMETRY.md's tables are generated from it."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT
from typer_telemetry._checks import SchemaError, check_observation
from typer_telemetry._recording import Observation
from typer_telemetry._records import Record
from typer_telemetry._schema import (
    ENVELOPE_FIELDS,
    ROLLUP_FIELDS,
    check_envelope,
    check_record,
    field_tables_markdown,
)
from typer_telemetry._store import JournalEvent, parse_journal_line


def test_telemetry_md_tables_match_the_schema() -> None:
    text = (ROOT / "TELEMETRY.md").read_text(encoding="utf-8")
    assert field_tables_markdown() in text
    check = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "generate_telemetry_md.py"), "--check"],
        capture_output=True,
    )
    assert check.returncode == 0, (
        "TELEMETRY.md is out of date: run `python tools/generate_telemetry_md.py`"
    )


def test_every_field_is_documented_in_telemetry_md() -> None:
    text = (ROOT / "TELEMETRY.md").read_text(encoding="utf-8")
    for field in (*ROLLUP_FIELDS, *ENVELOPE_FIELDS):
        assert f"| `{field.name}` |" in text


def good_record() -> dict[str, Any]:
    return {
        "day": "2026-11-24",
        "event": "command",
        "properties": {"command": "db migrate", "flags": ["--force", "--target"]},
        "outcome": "error",
        "error_class": "ValueError",
        "count": 2,
        "duration_ms_sum": 30.5,
        "duration_ms_min": 10.0,
        "duration_ms_max": 20.5,
        "duration_ms_buckets": [0, 1, 1] + [0] * 13,
    }


def test_a_good_record_passes_and_reads_back_as_itself() -> None:
    check_record(good_record())
    assert Record.from_json(good_record()).to_json() == good_record()


# (field, value): a dotted field names a property of the command event.
BAD_VALUES: list[tuple[str, object]] = [
    ("day", "2026-13-40"),
    ("day", "yesterday"),
    ("event", "Ingest Completed"),
    ("event", "typer_telemetry_status"),
    ("properties.command", "db migrate /home/alice"),
    ("properties.command", "db  migrate"),
    ("properties.command", 'say "hi"'),
    ("properties.command", " ".join(["x"] * 9)),
    ("outcome", "crashed"),
    ("error_class", "ValueError: secret message"),
    ("error_class", "Näive"),
    ("properties.flags", ["--target=/etc/passwd"]),
    ("properties.flags", ["--b", "--a"]),
    ("properties.flags", ["--a", "--a"]),
    ("properties.flags", "--force"),
    ("properties.hostname", "alice-laptop"),
    ("properties.runner", "alice-laptop"),
    ("count", 0),
    ("count", True),
    ("duration_ms_sum", float("nan")),
    ("duration_ms_min", -1),
    ("duration_ms_buckets", [3] + [0] * 15),
    ("duration_ms_buckets", [1, 1]),
]


def with_value(values: dict[str, Any], field: str, value: object) -> dict[str, Any]:
    changed = {**values, "properties": dict(values["properties"])}
    if field.startswith("properties."):
        changed["properties"][field.removeprefix("properties.")] = value
    else:
        changed[field] = value
    return changed


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_values_outside_the_allowlist_are_refused(field: str, value: object) -> None:
    record = with_value(good_record(), field, value)
    with pytest.raises(SchemaError):
        check_record(record)
    with pytest.raises(SchemaError):
        Record.from_json(record)


# What one invocation is made of: checked on the hot path by `check_observation`.
OBSERVED = ("day", "event", "properties.command", "properties.flags", "outcome", "error_class")
OBSERVED_PROPERTIES = ("properties.hostname", "properties.runner")


def observation_of(values: dict[str, Any], duration_ms: float | None = 12.5) -> Observation:
    properties = tuple(
        sorted(
            (name, tuple(value) if isinstance(value, list) else value)
            for name, value in values["properties"].items()
        )
    )
    return Observation(
        values["day"],
        values["event"],
        properties,
        values["outcome"],
        values["error_class"],
        duration_ms,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [(field, value) for field, value in BAD_VALUES if field in OBSERVED + OBSERVED_PROPERTIES],
)
def test_the_check_before_recording_refuses_what_the_schema_refuses(
    field: str, value: object
) -> None:
    check_observation(observation_of(good_record()))
    with pytest.raises(SchemaError):
        check_observation(observation_of(with_value(good_record(), field, value)))


@pytest.mark.parametrize("duration_ms", [float("nan"), -1.0, float("inf"), True])
def test_the_check_before_recording_refuses_impossible_durations(duration_ms: float) -> None:
    with pytest.raises(SchemaError):
        check_observation(Observation.of_command("2026-11-24", "x", "success", "", (), duration_ms))


def test_fields_outside_the_allowlist_are_refused() -> None:
    record = good_record()
    record["hostname"] = "alice-laptop"
    with pytest.raises(SchemaError, match="outside the schema"):
        check_record(record)


def test_a_success_never_carries_an_error_class() -> None:
    with pytest.raises(SchemaError):
        check_observation(
            Observation.of_command("2026-11-24", "x", "success", "ValueError", (), 1.0)
        )
    with pytest.raises(SchemaError):
        check_observation(Observation.of_command("2026-11-24", "x", "error", "", (), 1.0))
    with pytest.raises(SchemaError):
        check_record({**good_record(), "outcome": "success"})


def custom_record() -> dict[str, Any]:
    return {
        "day": "2026-11-24",
        "event": "ingest_completed",
        "properties": {"format": "csv", "resumed": False, "runner": "agent"},
        "outcome": "success",
        "error_class": "",
        "count": 3,
        "duration_ms_sum": 300.0,
        "duration_ms_min": 100.0,
        "duration_ms_max": 200.0,
        "duration_ms_buckets": [0] * 8 + [1, 1] + [0] * 6,
    }


def test_a_custom_event_record_may_count_untimed_events_but_never_invent_durations() -> None:
    record = Record.from_json(custom_record())
    assert (record.event, record.count, record.timed) == ("ingest_completed", 3, 2)
    assert record.properties == (("format", "csv"), ("resumed", False), ("runner", "agent"))
    untimed = {
        **custom_record(),
        "duration_ms_buckets": [0] * 16,
        "duration_ms_sum": 0,
        "duration_ms_min": 0,
        "duration_ms_max": 0,
    }
    check_record(untimed)
    with pytest.raises(SchemaError):  # durations without a timed event
        check_record({**untimed, "duration_ms_max": 5.0})
    with pytest.raises(SchemaError):  # more timed events than events
        check_record({**custom_record(), "count": 1})
    with pytest.raises(SchemaError):  # a command's every invocation is timed
        check_record({**good_record(), "count": 3})


@pytest.mark.parametrize(
    "value", ["/home/alice/data.csv", "", "x" * 65, 3, 1.5, None, ["csv"], {"a": "b"}]
)
def test_a_custom_event_property_with_a_value_of_no_allowed_form_is_refused(
    value: object,
) -> None:
    record = custom_record()
    record["properties"] = {**record["properties"], "format": value}
    with pytest.raises(SchemaError):
        Record.from_json(record)


def test_a_version_1_record_is_read_as_the_command_event_it_was() -> None:
    version_1 = {
        "day": "2026-11-24",
        "command": "db migrate",
        "outcome": "error",
        "error_class": "ValueError",
        "flags": ["--force", "--target"],
        "count": 2,
        "duration_ms_sum": 30.5,
        "duration_ms_min": 10.0,
        "duration_ms_max": 20.5,
        "duration_ms_buckets": [0, 1, 1] + [0] * 13,
    }
    record = Record.from_json(version_1)
    assert record.event == "command"
    assert record.property("command") == "db migrate"
    assert record.property("flags") == ("--force", "--target")
    assert record.to_json() == good_record()
    with pytest.raises(SchemaError):  # upgrading checks it like any other record
        Record.from_json({**version_1, "command": "db migrate /home/alice"})


def test_a_version_1_journal_line_is_read_as_a_command_event() -> None:
    line = (
        b'{"day":"2026-11-24","command":"db migrate","outcome":"error",'
        b'"error_class":"ValueError","flags":["--force"],"duration_ms":12.5}'
    )
    event = parse_journal_line(line)
    assert isinstance(event, JournalEvent)
    assert event.key == (
        "2026-11-24",
        "command",
        (("command", "db migrate"), ("flags", ("--force",))),
        "error",
        "ValueError",
    )
    assert event.duration_ms == 12.5
    assert parse_journal_line(line.replace(b"db migrate", b"db /etc")) is None


def test_a_version_2_journal_line_reads_back_as_the_observation_that_wrote_it() -> None:
    observation = Observation.of_command(
        "2026-11-24", "db migrate", "error", "ValueError", ("--force",), 12.5
    )
    event = parse_journal_line(observation.journal_line().strip())
    assert isinstance(event, JournalEvent)
    assert event.key == (
        "2026-11-24",
        "command",
        (("command", "db migrate"), ("flags", ("--force",))),
        "error",
        "ValueError",
    )
    assert event.duration_ms == 12.5
    untimed = Observation(
        "2026-11-24", "ingest_completed", (("format", "csv"),), "success", "", None
    )
    event = parse_journal_line(untimed.journal_line().strip())
    assert isinstance(event, JournalEvent)
    assert event.duration_ms is None


def test_the_envelope_is_checked_too() -> None:
    envelope = {
        "schema_version": 2,
        "tool": "mytool",
        "tool_version": "1.4.0",
        "library_version": "0.1.0",
        "python_version": "3.12.4",
        "os": "Linux",
        "os_release": "6.1.0",
        "arch": "x86_64",
        "install_id": "5f0c3a43-7f1e-4c1e-9a43-2f4c6b1f8e0d",
    }
    check_envelope(envelope)
    with pytest.raises(SchemaError):
        check_envelope({**envelope, "schema_version": 1})
    with pytest.raises(SchemaError):
        check_envelope({**envelope, "os_release": "6.1.0 (alice@laptop)"})
    with pytest.raises(SchemaError):  # only the leading version: suffixes tell machines apart
        check_envelope({**envelope, "os_release": "6.1.0-18-amd64"})
    with pytest.raises(SchemaError):
        check_envelope({**envelope, "install_id": "not-a-uuid"})
