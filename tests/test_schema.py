"""The schema is the allowlist, and TELEMETRY.md's tables are generated from it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT
from typer_telemetry._checks import SchemaError, validate_observation
from typer_telemetry._schema import (
    ENVELOPE_FIELDS,
    ROLLUP_FIELDS,
    field_tables_markdown,
    validate_envelope,
    validate_rollup_record,
)


def test_telemetry_md_tables_match_the_schema() -> None:
    text = (ROOT / "TELEMETRY.md").read_text(encoding="utf-8")
    assert field_tables_markdown() in text
    check = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "generate_telemetry_md.py"), "--check"],
        capture_output=True,
    )
    assert check.returncode == 0, "TELEMETRY.md is out of date: run `nox -s docs`"


def test_every_field_is_documented_in_telemetry_md() -> None:
    text = (ROOT / "TELEMETRY.md").read_text(encoding="utf-8")
    for field in (*ROLLUP_FIELDS, *ENVELOPE_FIELDS):
        assert f"| `{field.name}` |" in text


def good_record() -> dict[str, object]:
    return {
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


def test_a_good_record_passes() -> None:
    assert validate_rollup_record(good_record()) == good_record()


BAD_VALUES = [
    ("day", "2026-13-40"),
    ("day", "yesterday"),
    ("command", "db migrate /home/alice"),
    ("command", "db  migrate"),
    ("command", 'say "hi"'),
    ("command", " ".join(["x"] * 9)),
    ("outcome", "crashed"),
    ("error_class", "ValueError: secret message"),
    ("error_class", "Näive"),
    ("flags", ["--target=/etc/passwd"]),
    ("flags", ["--b", "--a"]),
    ("flags", ["--a", "--a"]),
    ("flags", "--force"),
    ("count", 0),
    ("count", True),
    ("duration_ms_sum", float("nan")),
    ("duration_ms_min", -1),
    ("duration_ms_buckets", [3] + [0] * 15),
    ("duration_ms_buckets", [1, 1]),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_values_outside_the_allowlist_are_refused(field: str, value: object) -> None:
    record = good_record()
    record[field] = value
    with pytest.raises(SchemaError):
        validate_rollup_record(record)


# What one invocation is made of: checked on the hot path by `validate_observation`.
OBSERVED = ("day", "command", "outcome", "error_class", "flags")


@pytest.mark.parametrize(
    ("field", "value"), [(field, value) for field, value in BAD_VALUES if field in OBSERVED]
)
def test_the_check_before_recording_refuses_what_the_schema_refuses(
    field: str, value: object
) -> None:
    observed = {name: good_record()[name] for name in OBSERVED}
    validate_observation(**observed, duration_ms=12.5)  # type: ignore[arg-type]
    observed[field] = value
    with pytest.raises(SchemaError):
        validate_observation(**observed, duration_ms=12.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("duration_ms", [float("nan"), -1.0, float("inf"), True])
def test_the_check_before_recording_refuses_impossible_durations(duration_ms: float) -> None:
    with pytest.raises(SchemaError):
        validate_observation("2026-11-24", "x", "success", "", (), duration_ms)


def test_fields_outside_the_allowlist_are_refused() -> None:
    record = good_record()
    record["hostname"] = "alice-laptop"
    with pytest.raises(SchemaError, match="outside the schema"):
        validate_rollup_record(record)


def test_a_success_never_carries_an_error_class() -> None:
    with pytest.raises(SchemaError):
        validate_observation("2026-11-24", "x", "success", "ValueError", (), 1.0)
    with pytest.raises(SchemaError):
        validate_observation("2026-11-24", "x", "error", "", (), 1.0)


def test_the_envelope_is_checked_too() -> None:
    envelope = {
        "schema_version": 1,
        "tool": "mytool",
        "tool_version": "1.4.0",
        "library_version": "0.1.0",
        "python_version": "3.12.4",
        "os": "Linux",
        "os_release": "6.1.0",
        "arch": "x86_64",
        "install_id": "5f0c3a43-7f1e-4c1e-9a43-2f4c6b1f8e0d",
    }
    assert validate_envelope(envelope) == envelope
    with pytest.raises(SchemaError):
        validate_envelope({**envelope, "os_release": "6.1.0 (alice@laptop)"})
    with pytest.raises(SchemaError):  # only the leading version: suffixes tell machines apart
        validate_envelope({**envelope, "os_release": "6.1.0-18-amd64"})
    with pytest.raises(SchemaError):
        validate_envelope({**envelope, "install_id": "not-a-uuid"})
