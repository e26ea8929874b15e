"""One realistic completed day, shared by the back-end tests."""

from __future__ import annotations

from typer_telemetry._schema import validate_envelope, validate_rollup_record

DAY = "2026-11-23"
INSTALL_ID = "3f2b8c1e-9a4d-4e6f-8b2a-7c5d1e0f9a3b"
ENVELOPE = validate_envelope(
    {
        "schema_version": 1,
        "tool": "acme-deploy",
        "tool_version": "2.4.1",
        "library_version": "0.1.0",
        "python_version": "3.12.4",
        "os": "Linux",
        "os_release": "6.1.0",
        "arch": "x86_64",
        "install_id": INSTALL_ID,
    }
)
MIGRATIONS = validate_rollup_record(
    {
        "day": DAY,
        "command": "db migrate",
        "outcome": "success",
        "error_class": "",
        "flags": ["--dry-run", "--force"],
        "count": 3,
        "duration_ms_sum": 1234.5,
        "duration_ms_min": 12.0,
        "duration_ms_max": 1100.25,
        "duration_ms_buckets": [0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
    }
)
ROOT_FAILURE = validate_rollup_record(
    {
        "day": DAY,
        "command": "",
        "outcome": "error",
        "error_class": "ValueError",
        "flags": [],
        "count": 1,
        "duration_ms_sum": 4.5,
        "duration_ms_min": 4.5,
        "duration_ms_max": 4.5,
        "duration_ms_buckets": [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    }
)
