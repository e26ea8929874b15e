"""The example tool, run as real processes, sends to collectors run as real processes.

examples/warehouse.py records a day of use (its clock pinned by
`WAREHOUSE_NOW` to a day before yesterday), then its long-running `sync`
sends that completed day to a collector started by the test. What the
collector stored is exactly what the tool showed as pending
(`telemetry status --json`), and `telemetry reset` (its deletion request)
removes it. On PostgreSQL two tools send at the same moment to two
collector replicas sharing one database.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.collector.conftest import Collector, Postgres, published_schema, sqlite_collector_with
from tests.conftest import Tool
from typer_telemetry._runner import AGENT_VARIABLES
from typer_telemetry.collector.store import ReportRow, open_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TODAY = int(datetime.now(timezone.utc).replace(hour=0, minute=0, second=0).timestamp()) // 86400
DAY_1 = (TODAY - 2) * 86_400 + 3_600  # the day before yesterday, 01:00 UTC
DAY_2 = DAY_1 + 86_400


@pytest.fixture(scope="module")
def warehouse_schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("schemas")
    return published_schema(folder, "warehouse:telemetry", cwd=EXAMPLES)


def warehouse(home: Path) -> Tool:
    (home / "project" / ".git").mkdir(parents=True)
    tool = Tool(script=EXAMPLES / "warehouse.py", home=home)
    tool.env = {"TERM": "dumb", **{name: "" for name, _value, _agent in AGENT_VARIABLES}}
    return tool


def a_day_of_use(tool: Tool) -> None:
    for args in (
        ("ingest", "postgres", "--tables", "412"),
        ("ingest", "postgres", "--tables", "500"),
        ("ingest", "oracle", "--tables", "3", "--demo"),
        ("check", "sqlite"),
        ("check", "mysql"),
        ("ingest", "sqlite", "--tables", "-1"),
    ):
        result = tool.run(*args, env={"WAREHOUSE_NOW": str(DAY_1)})
        assert result.returncode in (0, 1), result.stderr


def counted(records: list[dict[str, Any]]) -> Counter[str]:
    """The tool's pending records as (event, properties, outcome, error class) -> count."""
    counts: Counter[str] = Counter()
    for record in records:
        key = [record["event"], record["properties"], record["outcome"], record["error_class"]]
        counts[json.dumps(key, sort_keys=True)] += record["count"]
    return counts


def counted_rows(rows: list[ReportRow]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for row in rows:
        properties = {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in row.properties
        }
        key = [row.event, properties, row.outcome, row.error_class]
        counts[json.dumps(key, sort_keys=True)] += row.count
    return counts


def rows_of(database: str, install_id: str) -> list[ReportRow]:
    store = open_store(database)
    try:
        return [row for row in store.report_rows() if row.install_id == install_id]
    finally:
        store.close()


def sync_until_stored(tool: Tool, collector: Collector, install_id: str) -> list[ReportRow]:
    """Run `sync` on the next day until the tool has its day acknowledged (nothing pending)."""
    process = tool.popen(
        "sync", env={"WAREHOUSE_NOW": str(DAY_2), "WAREHOUSE_ENDPOINT": collector.url()}
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "syncing\n"
    deadline = time.monotonic() + 30
    # Polling the real condition: the tool's store has nothing left to send.
    while pending_of_day_1(tool) and time.monotonic() < deadline:
        time.sleep(0.1)
    _stdout, stderr = process.communicate(input="", timeout=30)
    assert process.returncode == 0, stderr
    rows = rows_of(collector.db, install_id)
    assert rows, f"nothing stored:\n{collector.log.read_text()}"
    return rows


def pending_of_day_1(tool: Tool) -> list[dict[str, object]]:
    day_1 = datetime.fromtimestamp(DAY_1, timezone.utc).date().isoformat()
    return [r for r in tool.pending(env={"WAREHOUSE_NOW": str(DAY_2)}) if r["day"] == day_1]


def pending(tool: Tool) -> tuple[str, list[dict[str, Any]]]:
    shown = tool.status(env={"WAREHOUSE_NOW": str(DAY_2)})
    envelope, records = shown["envelope"], shown["pending"]
    assert isinstance(envelope, dict)
    assert isinstance(records, list)
    assert records, "the day of use was recorded"
    return str(envelope["install_id"]), records


def invocations_by_subject(records: list[dict[str, Any]]) -> dict[str, int]:
    """The tool's pending counts per command path (commands) or event name (its own events)."""
    counts: Counter[str] = Counter()
    for record in records:
        properties = record["properties"]
        subject = properties["command"] if record["event"] == "command" else record["event"]
        counts[subject] += record["count"]
    return dict(counts)


def reported_invocations(database: str) -> dict[str, int]:
    """`typer-telemetry-collector report --json`'s invocations per command or event."""
    printed = subprocess.run(
        [sys.executable, "-m", "typer_telemetry.collector", "report", "--db", database, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert printed.returncode == 0, printed.stderr
    (tool,) = json.loads(printed.stdout)["tools"]
    return {
        (subject["command"] if "command" in subject else subject["event"]): subject["invocations"]
        for subject in tool["subjects"]
    }


@pytest.fixture
def sqlite_collector(tmp_path: Path, warehouse_schema: Path) -> Iterator[Collector]:
    running = sqlite_collector_with(tmp_path, warehouse_schema)
    yield running
    running.stop()


def test_a_day_of_the_example_tool_is_stored_with_its_exact_counts_and_reset_removes_it(
    tmp_path: Path, sqlite_collector: Collector
) -> None:
    tool = warehouse(tmp_path / "home")
    a_day_of_use(tool)
    install_id, records = pending(tool)
    rows = sync_until_stored(tool, sqlite_collector, install_id)
    assert counted_rows(rows) == counted(records)
    assert {row.tool for row in rows} == {"warehouse"}
    assert {row.day for row in rows} == {records[0]["day"]}
    assert pending_of_day_1(tool) == []  # acknowledged
    # The operator's view: `report --json`, a real process, counts what the tool recorded.
    assert reported_invocations(sqlite_collector.db) == invocations_by_subject(records)
    # The tool's reset asks the collector to forget the old install id: every row goes.
    reset = tool.run(
        "telemetry",
        "reset",
        env={"WAREHOUSE_NOW": str(DAY_2), "WAREHOUSE_ENDPOINT": sqlite_collector.url()},
    )
    assert reset.returncode == 0, reset.stderr
    assert rows_of(sqlite_collector.db, install_id) == []
    assert "deletion request carried out" in sqlite_collector.log.read_text()


def test_two_tools_sending_at_once_to_two_replicas_on_postgresql_are_both_stored_exactly(
    tmp_path: Path, postgres: Postgres, warehouse_schema: Path
) -> None:
    database = postgres.new_database()
    replicas = [
        Collector(database, tmp_path, ("--schema", str(warehouse_schema))) for _ in range(2)
    ]
    try:
        for replica in replicas:
            replica.start()
        tools = [warehouse(tmp_path / f"home{n}") for n in range(2)]
        for tool in tools:
            a_day_of_use(tool)
        shown = [pending(tool) for tool in tools]
        with ThreadPoolExecutor(2) as pool:
            stored = list(
                pool.map(lambda n: sync_until_stored(tools[n], replicas[n], shown[n][0]), range(2))
            )
        for (install_id, records), rows in zip(shown, stored, strict=True):
            assert counted_rows(rows) == counted(records)
            assert counted_rows(rows_of(database, install_id)) == counted(records)
        both = invocations_by_subject(shown[0][1] + shown[1][1])
        assert reported_invocations(database) == both
        reset = tools[0].run(
            "telemetry",
            "reset",
            env={"WAREHOUSE_NOW": str(DAY_2), "WAREHOUSE_ENDPOINT": replicas[1].url()},
        )
        assert reset.returncode == 0, reset.stderr
        assert rows_of(database, shown[0][0]) == []
        assert counted_rows(rows_of(database, shown[1][0])) == counted(shown[1][1])
    finally:
        for replica in replicas:
            replica.stop()
