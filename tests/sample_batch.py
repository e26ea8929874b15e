"""One realistic completed day, shared by the back-end tests: two commands and an event of the tool's own."""

from __future__ import annotations

from typer_telemetry._records import Batch, Envelope, Record

DAY = "2026-11-23"
INSTALL_ID = "3f2b8c1e-9a4d-4e6f-8b2a-7c5d1e0f9a3b"
ENVELOPE = Envelope(
    {
        "schema_version": 2,
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
MIGRATIONS = Record.from_json(
    {
        "day": DAY,
        "event": "command",
        "properties": {"command": "db migrate", "flags": ["--dry-run", "--force"]},
        "outcome": "success",
        "error_class": "",
        "count": 3,
        "duration_ms_sum": 1234.5,
        "duration_ms_min": 12.0,
        "duration_ms_max": 1100.25,
        "duration_ms_buckets": [0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
    }
)
ROOT_FAILURE = Record.from_json(
    {
        "day": DAY,
        "event": "command",
        "properties": {"command": "", "flags": []},
        "outcome": "error",
        "error_class": "ValueError",
        "count": 1,
        "duration_ms_sum": 4.5,
        "duration_ms_min": 4.5,
        "duration_ms_max": 4.5,
        "duration_ms_buckets": [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    }
)
# An event of the tool's own, timed twice out of three occurrences.
INGESTS = Record.from_json(
    {
        "day": DAY,
        "event": "ingest_completed",
        "properties": {"demo": False, "driver": "postgres", "table_count": "100-1000"},
        "outcome": "success",
        "error_class": "",
        "count": 3,
        "duration_ms_sum": 1700.0,
        "duration_ms_min": 700.0,
        "duration_ms_max": 1000.0,
        "duration_ms_buckets": [0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0],
    }
)


def batch(*records: Record, idempotency_key: str = "acme-deploy/2026-11-23/3f2b8c1e") -> Batch:
    return Batch(DAY, ENVELOPE, records, idempotency_key)
