"""Deterministic example data for the report: two tools, commands and an event, a week, sampled and not.

Used by the report's tests and by tools/collector_screenshot.py (the docs' screenshot).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from typer_telemetry._schema import DURATION_BUCKET_BOUNDS_MS
from typer_telemetry.collector.store import ReportRow

PropertyValue = str | bool | float | tuple[str, ...]
INSTALL_PREFIX = "5b1d7c2e-0f4a-4c3b-9e8d-"


def buckets_for(durations: list[float]) -> tuple[int, ...]:
    counts = [0] * (len(DURATION_BUCKET_BOUNDS_MS) + 1)
    for duration in durations:
        index = next(
            (n for n, bound in enumerate(DURATION_BUCKET_BOUNDS_MS) if duration <= bound),
            len(DURATION_BUCKET_BOUNDS_MS),
        )
        counts[index] += 1
    return tuple(counts)


def row(
    *,
    day: str = "2026-11-23",
    tool: str = "acme-deploy",
    tool_version: str = "2.4.1",
    install_id: str = INSTALL_PREFIX + "000000000001",
    python_version: str = "3.12.4",
    os: str = "Linux",
    arch: str = "x86_64",
    event: str = "command",
    properties: dict[str, PropertyValue] | None = None,
    outcome: str = "success",
    error_class: str = "",
    durations: list[float] | None = None,
    count: int | None = None,
) -> ReportRow:
    """One stored row; `durations` gives the timed events (count defaults to their number)."""
    timed = durations if durations is not None else [100.0]
    if properties is None:
        properties = {"command": "deploy", "flags": ()}
    return ReportRow(
        day=day,
        tool=tool,
        tool_version=tool_version,
        install_id=install_id,
        python_version=python_version,
        os=os,
        os_release="6.1.0",
        arch=arch,
        event=event,
        properties=tuple(sorted(properties.items())),
        outcome=outcome,
        error_class=error_class,
        count=len(timed) if count is None else count,
        duration_ms_sum=float(sum(timed)),
        duration_ms_min=float(min(timed)) if timed else 0.0,
        duration_ms_max=float(max(timed)) if timed else 0.0,
        duration_ms_buckets=buckets_for(timed),
    )


@dataclass
class FakeStore:
    """The Store's report side over a list of rows (the interface, with its filters)."""

    rows: list[ReportRow] = field(default_factory=list)
    asked: list[tuple[str | None, str | None, str | None]] = field(default_factory=list)

    def report_rows(
        self, *, tool: str | None = None, since: str | None = None, until: str | None = None
    ) -> Iterator[ReportRow]:
        self.asked.append((tool, since, until))
        for found in self.rows:
            if tool is not None and found.tool != tool:
                continue
            if since is not None and found.day < since:
                continue
            if until is not None and found.day > until:
                continue
            yield found


COMMANDS = (
    ("deploy", ("--force", "--region"), 0.10, "error", "TimeoutError", 900.0),
    ("db migrate", ("--dry-run",), 0.05, "error", "OperationalError", 300.0),
    ("status", (), 0.03, "aborted", "", 40.0),
    ("config set", ("--global",), 0.06, "usage_error", "", 15.0),
)


def example_rows(days: int = 7) -> list[ReportRow]:
    """A week of two tools: four commands, a custom event, runners, versions, OSes; the same every time."""
    rng = random.Random(20261123)
    start = date(2026, 11, 17)
    rows: list[ReportRow] = []
    installs = [f"{INSTALL_PREFIX}{n:012d}" for n in range(1, 25)]
    platforms = [("Linux", "x86_64"), ("Darwin", "arm64"), ("Windows", "AMD64")]
    runners = [("terminal", ""), ("script", ""), ("agent", "claude-code"), ("agent", "cursor")]
    for offset in range(days):
        day = (start + timedelta(days=offset)).isoformat()
        for install_number, install in enumerate(installs[: 12 + offset]):
            os_name, arch = platforms[install_number % 3]
            version = "2.4.1" if install_number % 4 else "2.3.0"
            python = ("3.12.4", "3.11.9", "3.13.0")[install_number % 3]
            runner, agent = runners[(install_number + offset) % 4]
            signals: dict[str, PropertyValue] = {"runner": runner}
            if agent:
                signals["agent"] = agent
            for command, flags, failure, failed_as, error_class, typical in COMMANDS:
                uses = rng.randint(0, 4)
                if not uses:
                    continue
                failed = sum(1 for _ in range(uses) if rng.random() < failure)
                for outcome, number in (("success", uses - failed), (failed_as, failed)):
                    if not number:
                        continue
                    durations = [round(typical * rng.uniform(0.3, 2.5), 1) for _ in range(number)]
                    rows.append(
                        row(
                            day=day,
                            install_id=install,
                            tool_version=version,
                            python_version=python,
                            os=os_name,
                            arch=arch,
                            properties={
                                "command": command,
                                "flags": flags[: rng.randint(0, len(flags))],
                                **signals,
                            },
                            outcome=outcome,
                            error_class=error_class if outcome != "success" else "",
                            durations=durations,
                        )
                    )
            if install_number % 3 == 0:
                ingest = [round(rng.uniform(500, 4000), 1) for _ in range(rng.randint(1, 3))]
                rows.append(
                    row(
                        day=day,
                        install_id=install,
                        tool_version=version,
                        python_version=python,
                        os=os_name,
                        arch=arch,
                        event="ingest_completed",
                        properties={
                            "driver": ("postgres", "sqlite", "mysql")[rng.randint(0, 2)],
                            "table_count": ("1-10", "10-100", "100-1000")[rng.randint(0, 2)],
                            "demo": rng.random() < 0.2,
                        },
                        durations=ingest,
                    )
                )
        # A second tool that samples a quarter of its processes.
        for install in installs[:5]:
            uses = rng.randint(1, 3)
            rows.append(
                row(
                    day=day,
                    tool="acme-lint",
                    tool_version="0.9.0",
                    install_id=install,
                    properties={"command": "check", "flags": ("--fix",), "sample_rate": 0.25},
                    durations=[round(rng.uniform(20, 200), 1) for _ in range(uses)],
                )
            )
    return rows
