"""The values the collector's stores take and give: one stored row, an ingest's outcome, the rate.

Kept apart from `store.py` (which re-exports them) so that the SQLite and
PostgreSQL stores can build them without importing the module that opens them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

PropertyValue = str | bool | float | tuple[str, ...]
# The version of the stores' tables; a row in `collector_meta` says which one a database has.
STORE_SCHEMA_VERSION = 2


class NewerStore(ValueError):
    """The database's tables were made by a newer collector: this one refuses to write them."""


def check_store_version(found: object) -> None:
    if found is not None and str(found).isdigit() and int(str(found)) > STORE_SCHEMA_VERSION:
        raise NewerStore(
            f"the database's tables are of version {found}, made by a newer collector"
            f" (this one knows version {STORE_SCHEMA_VERSION}): upgrade typer-telemetry"
        )


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One stored rollup record with the envelope it came in: what a report aggregates."""

    day: str  # YYYY-MM-DD
    tool: str
    tool_version: str
    install_id: str  # for distinct-install counts only; never printed by the report
    python_version: str
    os: str
    os_release: str
    arch: str
    event: str  # "command" or a declared event name
    properties: tuple[tuple[str, PropertyValue], ...]  # sorted pairs, as Record.properties
    outcome: str
    error_class: str
    count: int
    duration_ms_sum: float
    duration_ms_min: float
    duration_ms_max: float
    duration_ms_buckets: tuple[int, ...]  # 16 counts, bounds in _schema.DURATION_BUCKET_BOUNDS_MS


@dataclass(frozen=True, slots=True)
class RateLimit:
    """How many batches one install id may have stored within a sliding window.

    A client sends about one batch per completed day (a few more after a
    long absence), so 60 an hour only ever stops a runaway or hostile sender.
    """

    batches: int = 60
    window_seconds: float = 3600.0


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What storing a batch came to: stored, a duplicate of a stored key, or over the rate."""

    status: Literal["stored", "duplicate", "rate_limited"]
    rows: int = 0
    retry_after: int = 0


# One encoder for every record (`json.dumps` with options builds a new one per call).
_PROPERTIES_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def properties_text(properties: tuple[tuple[str, PropertyValue], ...]) -> str:
    """A record's properties as the stores keep them: a JSON object, keys sorted."""
    return _PROPERTIES_ENCODER.encode(
        {name: list(value) if isinstance(value, tuple) else value for name, value in properties}
    )


def retry_after(oldest: float, now: float, limit: RateLimit) -> int:
    """Whole seconds until the oldest batch in the window leaves it (at least 1)."""
    return max(1, int(oldest + limit.window_seconds - now + 0.999))
