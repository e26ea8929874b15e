"""A database the collector's first version made (a row per record) is brought to version 2 on start.

Version 1 kept each record in a `records` table with its batch's envelope;
version 2 keeps a batch as one row with its records as one JSON array. On
start, the collector moves every batch over in one transaction: nothing is
lost, the reports are the same, and a second start changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from tests.collector.batches import batch, install_id
from typer_telemetry._records import properties_from_json
from typer_telemetry.collector.rows import RateLimit, ReportRow
from typer_telemetry.collector.store import open_store
from typer_telemetry.collector.validation import check_batch

VERSION_1_TABLES = """
CREATE TABLE IF NOT EXISTS collector_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    idempotency_key TEXT PRIMARY KEY,
    install_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    day TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_by_install ON batches (install_id, received_at);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    day TEXT NOT NULL,
    tool TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    install_id TEXT NOT NULL,
    python_version TEXT NOT NULL,
    os TEXT NOT NULL,
    os_release TEXT NOT NULL,
    arch TEXT NOT NULL,
    event TEXT NOT NULL,
    properties TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error_class TEXT NOT NULL,
    count INTEGER NOT NULL,
    duration_ms_sum REAL NOT NULL,
    duration_ms_min REAL NOT NULL,
    duration_ms_max REAL NOT NULL,
    duration_ms_buckets TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_tool_day ON records (tool, day);
CREATE INDEX IF NOT EXISTS records_by_install ON records (install_id);
CREATE TABLE IF NOT EXISTS tool_schemas (tool TEXT PRIMARY KEY, document TEXT NOT NULL);
"""
# How version 1 made them on PostgreSQL.
VERSION_1_POSTGRES = (
    VERSION_1_TABLES.replace("id INTEGER PRIMARY KEY", "id BIGSERIAL PRIMARY KEY")
    .replace("received_at REAL", "received_at DOUBLE PRECISION")
    .replace("REAL NOT NULL", "DOUBLE PRECISION NOT NULL")
    .replace("count INTEGER", "count BIGINT")
)
ENVELOPE = ("inventory", "0.3.0", "3.12.4", "Linux", "6.1.0", "x86_64")


def record(
    event: str, properties: dict[str, Any], count: int, outcome: str = "success"
) -> dict[str, Any]:
    buckets = [0] * 16
    buckets[4] = count
    return {
        "event": event,
        "properties": properties,
        "outcome": outcome,
        "error_class": "" if outcome == "success" else "ValueError",
        "count": count,
        "duration_ms_sum": 75.5 * count,
        "duration_ms_min": 60.0,
        "duration_ms_max": 90.25,
        "duration_ms_buckets": buckets,
    }


def version_1_database(database: str) -> list[tuple[str, str, str, list[dict[str, Any]]]]:
    """Version 1's tables with three batches (one of them without records); the batches made."""
    first, second = install_id(), install_id()
    batches = [
        ("key-1", first, "2026-11-30", [
            record("command", {"command": "db migrate", "flags": ["--force"]}, 3),
            record("ingest_completed", {"format": "csv", "dry_run": True}, 1, "error"),
        ]),
        ("key-2", first, "2026-12-01", []),
        ("key-3", second, "2026-12-01", [record("command", {"command": "", "flags": []}, 2)]),
    ]  # fmt: skip
    postgres = database.startswith("postgresql://")
    mark = "%s" if postgres else "?"
    statements: list[tuple[str, tuple[object, ...]]] = [
        (statement, ())
        for statement in (VERSION_1_POSTGRES if postgres else VERSION_1_TABLES).split(";")
        if statement.strip()
    ]
    statements.append(
        (f"INSERT INTO collector_meta (name, value) VALUES ('schema_version', {mark})", ("1",))
    )
    for number, (key, install, day, records) in enumerate(batches):
        statements.append((
            "INSERT INTO batches (idempotency_key, install_id, tool, day, received_at)"
            f" VALUES ({', '.join([mark] * 5)})",
            (key, install, "inventory", day, 1_700_000_000.0 + number),
        ))  # fmt: skip
        for values in records:
            statements.append((
                "INSERT INTO records (idempotency_key, day, tool, tool_version, install_id,"
                " python_version, os, os_release, arch, event, properties, outcome, error_class,"
                " count, duration_ms_sum, duration_ms_min, duration_ms_max, duration_ms_buckets)"
                f" VALUES ({', '.join([mark] * 18)})",
                (key, day, ENVELOPE[0], ENVELOPE[1], install, *ENVELOPE[2:], values["event"],
                 json.dumps(values["properties"], sort_keys=True, separators=(",", ":")),
                 values["outcome"], values["error_class"], values["count"],
                 values["duration_ms_sum"], values["duration_ms_min"], values["duration_ms_max"],
                 json.dumps(values["duration_ms_buckets"], separators=(",", ":"))),
            ))  # fmt: skip
    if postgres:
        import psycopg

        with psycopg.connect(database) as connection:
            for statement, parameters in statements:
                connection.execute(statement.encode(), parameters)
    else:
        with sqlite3.connect(database.removeprefix("sqlite:///")) as connection:
            for statement, parameters in statements:
                connection.execute(statement, parameters)
        connection.close()
    return batches


def expected_rows(batches: list[tuple[str, str, str, list[dict[str, Any]]]]) -> list[ReportRow]:
    return [
        ReportRow(
            day=day, tool=ENVELOPE[0], tool_version=ENVELOPE[1], install_id=install,
            python_version=ENVELOPE[2], os=ENVELOPE[3], os_release=ENVELOPE[4], arch=ENVELOPE[5],
            event=values["event"], properties=properties_from_json(values["properties"]),
            outcome=values["outcome"], error_class=values["error_class"], count=values["count"],
            duration_ms_sum=values["duration_ms_sum"], duration_ms_min=values["duration_ms_min"],
            duration_ms_max=values["duration_ms_max"],
            duration_ms_buckets=tuple(values["duration_ms_buckets"]),
        )
        for _key, install, day, records in batches
        for values in records
    ]  # fmt: skip


def view_rows(database: str) -> list[tuple[object, ...]]:
    query = "SELECT idempotency_key, position, event, count FROM records ORDER BY 1, 2"
    if database.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(database) as connection:
            return [tuple(row) for row in connection.execute(query.encode())]
    with sqlite3.connect(database.removeprefix("sqlite:///")) as connection:
        rows = [tuple(row) for row in connection.execute(query)]
    connection.close()
    return rows


def test_a_version_1_database_is_brought_to_version_2_with_every_batch_and_record(
    database: str,
) -> None:
    batches = version_1_database(database)
    for start in range(2):  # the second start finds version 2 and changes nothing
        store = open_store(database)
        try:
            assert list(store.report_rows()) == expected_rows(batches), f"start {start + 1}"
            assert list(store.report_rows(since="2026-12-01")) == expected_rows(batches[1:])
        finally:
            store.close()
    assert view_rows(database) == [
        ("key-1", 0, "command", 3),
        ("key-1", 1, "ingest_completed", 1),
        ("key-3", 0, "command", 2),
    ]
    store = open_store(database)
    try:
        # Its batches still count: the same key is a duplicate, deletion finds every row.
        again = check_batch(
            batch(batches[0][1], [], key="key-1"), header_key=None, schemas={}, now=time.time()
        )
        assert store.ingest(again, now=time.time(), limit=RateLimit()).status == "duplicate"
        assert store.forget(batches[0][1]) == 2
        assert list(store.report_rows()) == expected_rows(batches[2:])
    finally:
        store.close()
