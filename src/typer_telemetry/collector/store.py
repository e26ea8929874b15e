"""Stand-in: only the `ReportRow` the report reads (the collector's core defines the real store)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReportRow:
    day: str  # YYYY-MM-DD
    tool: str
    tool_version: str
    install_id: str  # for distinct-install counts only; never printed by the report
    python_version: str
    os: str
    os_release: str
    arch: str
    event: str  # "command" or a declared event name
    properties: tuple[tuple[str, str | bool | float | tuple[str, ...]], ...]  # sorted pairs
    outcome: str
    error_class: str
    count: int
    duration_ms_sum: float
    duration_ms_min: float
    duration_ms_max: float
    duration_ms_buckets: tuple[int, ...]  # 16 counts, bounds in _schema.DURATION_BUCKET_BOUNDS_MS
