"""The SQLite store: one file in WAL mode, for one machine (one or several collector processes).

Every write is a `BEGIN IMMEDIATE` transaction: SQLite lets one writer in
at a time across processes (others wait up to the busy timeout), so the
duplicate check, the rate count and the insert see no other writer between them.
Concurrent ingests of one process share one such transaction (group.py).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .group import GroupCommit, Pending
from .rows import (
    STORE_SCHEMA_VERSION,
    IngestOutcome,
    RateLimit,
    ReportRow,
    buckets_from_text,
    buckets_text,
    check_store_version,
    properties_from_text,
    properties_text,
    retry_after,
)

if TYPE_CHECKING:
    from .validation import ValidBatch

BUSY_TIMEOUT_SECONDS = 30.0

TABLES = """
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

ROW_COLUMNS = (
    "day, tool, tool_version, install_id, python_version, os, os_release, arch, event,"
    " properties, outcome, error_class, count, duration_ms_sum, duration_ms_min,"
    " duration_ms_max, duration_ms_buckets"
)


def record_rows(batch: ValidBatch) -> list[tuple[object, ...]]:
    """The batch's records as rows of `records` (its key first, then ROW_COLUMNS' order)."""
    envelope = batch.envelope
    return [
        (
            batch.idempotency_key,
            record.day,
            envelope.tool,
            envelope.tool_version,
            envelope.install_id,
            envelope.python_version,
            envelope.os,
            envelope.os_release,
            envelope.arch,
            record.event,
            properties_text(record.properties),
            record.outcome,
            record.error_class,
            record.count,
            record.duration_ms_sum,
            record.duration_ms_min,
            record.duration_ms_max,
            buckets_text(record.duration_ms_buckets),
        )
        for record in batch.records
    ]


def report_row(values: tuple[object, ...] | sqlite3.Row) -> ReportRow:
    (day, tool, tool_version, install_id, python_version, os, os_release, arch, event) = (
        str(value) for value in tuple(values)[:9]
    )
    properties, outcome, error_class, count, total, minimum, maximum, buckets = tuple(values)[9:]
    return ReportRow(
        day=day,
        tool=tool,
        tool_version=tool_version,
        install_id=install_id,
        python_version=python_version,
        os=os,
        os_release=os_release,
        arch=arch,
        event=event,
        properties=properties_from_text(str(properties)),
        outcome=str(outcome),
        error_class=str(error_class),
        count=int(count),
        duration_ms_sum=float(total),
        duration_ms_min=float(minimum),
        duration_ms_max=float(maximum),
        duration_ms_buckets=buckets_from_text(str(buckets)),
    )


def report_filter(
    tool: str | None, since: str | None, until: str | None, placeholder: str
) -> tuple[str, list[str]]:
    """The WHERE clause (possibly empty) and its parameters for report_rows."""
    conditions, parameters = [], []
    for condition, value in (("tool = ", tool), ("day >= ", since), ("day <= ", until)):
        if value is not None:
            conditions.append(condition + placeholder)
            parameters.append(value)
    where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
    return where, parameters


class SQLiteStore:
    """The `Store` on one SQLite file; a connection per thread, closed by `close()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._group = GroupCommit(self._write_group)
        connection = self._connection()
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in TABLES.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(
                "INSERT OR IGNORE INTO collector_meta (name, value) VALUES ('schema_version', ?)",
                (str(STORE_SCHEMA_VERSION),),
            )
            found = connection.execute(
                "SELECT value FROM collector_meta WHERE name = 'schema_version'"
            ).fetchone()
            check_store_version(found[0])
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,  # transactions are begun explicitly
                check_same_thread=False,
            )
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def ingest(self, batch: ValidBatch, *, now: float, limit: RateLimit) -> IngestOutcome:
        """Stored with the other batches being ingested at the time, in one transaction (group.py)."""
        return self._group.ingest(batch, now, limit)

    def _write_group(self, group: Sequence[Pending]) -> None:
        """One `BEGIN IMMEDIATE` transaction for the group, each batch in its own savepoint."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            for pending in group:
                connection.execute("SAVEPOINT batch")
                try:
                    pending.outcome = self._ingest(
                        connection, pending.batch, pending.now, pending.limit
                    )
                except Exception as error:  # this batch alone: the others are kept
                    connection.execute("ROLLBACK TO batch")
                    pending.error = error
                connection.execute("RELEASE batch")
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def _ingest(
        self, connection: sqlite3.Connection, batch: ValidBatch, now: float, limit: RateLimit
    ) -> IngestOutcome:
        seen = connection.execute(
            "SELECT 1 FROM batches WHERE idempotency_key = ?", (batch.idempotency_key,)
        ).fetchone()
        if seen is not None:
            return IngestOutcome("duplicate")
        install_id = batch.envelope.install_id
        count, oldest = connection.execute(
            "SELECT count(*), min(received_at) FROM batches"
            " WHERE install_id = ? AND received_at > ?",
            (install_id, now - limit.window_seconds),
        ).fetchone()
        if count >= limit.batches:
            return IngestOutcome("rate_limited", retry_after=retry_after(oldest, now, limit))
        connection.execute(
            "INSERT INTO batches (idempotency_key, install_id, tool, day, received_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (batch.idempotency_key, install_id, batch.envelope.tool, batch.day, now),
        )
        rows = record_rows(batch)
        connection.executemany(
            f"INSERT INTO records (idempotency_key, {ROW_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        return IngestOutcome("stored", rows=len(rows))

    def forget(self, install_id: str) -> int:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            removed = connection.execute(
                "DELETE FROM records WHERE install_id = ?", (install_id,)
            ).rowcount
            connection.execute("DELETE FROM batches WHERE install_id = ?", (install_id,))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return int(removed)

    def register_schema(self, tool: str, document: str) -> None:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(
                "INSERT INTO tool_schemas (tool, document) VALUES (?, ?)"
                " ON CONFLICT (tool) DO UPDATE SET document = excluded.document",
                (tool, document),
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def registered_schemas(self) -> list[str]:
        rows = self._connection().execute("SELECT document FROM tool_schemas ORDER BY tool")
        return [str(row[0]) for row in rows]

    def report_rows(
        self, *, tool: str | None = None, since: str | None = None, until: str | None = None
    ) -> Iterator[ReportRow]:
        where, parameters = report_filter(tool, since, until, "?")
        cursor = self._connection().execute(
            f"SELECT {ROW_COLUMNS} FROM records{where} ORDER BY day, tool, id", parameters
        )
        for values in cursor:
            yield report_row(values)

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()
