"""Batches as the library's HTTP back end sends them, for days the collector accepts."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any


def yesterday() -> str:
    return (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()


def days_ago(days: int) -> str:
    return (datetime.now(timezone.utc).date() - timedelta(days=days)).isoformat()


def install_id() -> str:
    return str(uuid.uuid4())


def command_record(day: str, command: str = "db migrate", count: int = 2) -> dict[str, Any]:
    buckets = [0] * 16
    buckets[5] = count
    return {
        "day": day,
        "event": "command",
        "properties": {"command": command, "flags": ["--force"]},
        "outcome": "success",
        "error_class": "",
        "count": count,
        "duration_ms_sum": 300.0 * count,
        "duration_ms_min": 200.0,
        "duration_ms_max": 400.0,
        "duration_ms_buckets": buckets,
    }


def event_record(
    day: str, properties: dict[str, Any], event: str = "ingest_completed"
) -> dict[str, Any]:
    return {
        "day": day,
        "event": event,
        "properties": properties,
        "outcome": "success",
        "error_class": "",
        "count": 1,
        "duration_ms_sum": 0.0,
        "duration_ms_min": 0.0,
        "duration_ms_max": 0.0,
        "duration_ms_buckets": [0] * 16,
    }


def batch(
    install: str,
    records: list[dict[str, Any]],
    *,
    day: str | None = None,
    key: str | None = None,
    tool: str = "inventory",
) -> dict[str, Any]:
    return {
        "format": "typer-telemetry-batch",
        "version": 2,
        "idempotency_key": key or uuid.uuid4().hex,
        "day": day or yesterday(),
        "envelope": {
            "schema_version": 2,
            "tool": tool,
            "tool_version": "0.3.0",
            "library_version": "0.1.0",
            "python_version": "3.12.4",
            "os": "Linux",
            "os_release": "6.1.0",
            "arch": "x86_64",
            "install_id": install,
        },
        "records": records,
    }


def encoded(document: object, *, compress: bool = False) -> tuple[bytes, dict[str, str]]:
    """The body and headers the HTTP back end would send for `document`."""
    body = json.dumps(document).encode()
    headers = {"Content-Type": "application/json"}
    if isinstance(document, dict) and isinstance(document.get("idempotency_key"), str):
        headers["Idempotency-Key"] = document["idempotency_key"]
    if compress:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return body, headers


def deletion(install: str) -> tuple[bytes, dict[str, str]]:
    document = {"format": "typer-telemetry-deletion", "version": 1, "install_id": install}
    return json.dumps(document).encode(), {"Idempotency-Key": f"delete-{install}"}
