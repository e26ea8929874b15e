"""The SQLite store: one file in WAL mode, for one machine (one or several collector processes).

A batch is one row of `batches`, its records one JSON array in it (checked
and written by validation.py); the `records` view shows them a row each.
A database of version 1 (a row per record) is brought to version 2 on start.

Every write is a `BEGIN IMMEDIATE` transaction: SQLite lets one writer in
at a time across processes (others wait up to the busy timeout), so the
duplicate check, the rate count and the insert see no other writer between them.
Concurrent ingests of one process share one such transaction (group.py).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .._records import properties_from_json
from .group import GroupCommit, Pending, decide_in_order, write_together
from .rows import (
    STORE_SCHEMA_VERSION,
    IngestOutcome,
    RateLimit,
    ReportRow,
    check_store_version,
    retry_after,
)

if TYPE_CHECKING:
    from .validation import ValidBatch

BUSY_TIMEOUT_SECONDS = 30.0

# Version 2: a batch is one row, its records one JSON array in it (ValidBatch.records_json);
# the `records` view shows them a row each, for SQL of one's own.
TABLES = """
CREATE TABLE IF NOT EXISTS collector_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    idempotency_key TEXT PRIMARY KEY,
    install_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    day TEXT NOT NULL,
    received_at REAL NOT NULL,
    tool_version TEXT NOT NULL,
    python_version TEXT NOT NULL,
    os TEXT NOT NULL,
    os_release TEXT NOT NULL,
    arch TEXT NOT NULL,
    record_count INTEGER NOT NULL,
    records TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_by_install ON batches (install_id, received_at);
CREATE INDEX IF NOT EXISTS batches_by_tool_day ON batches (tool, day);
CREATE TABLE IF NOT EXISTS tool_schemas (tool TEXT PRIMARY KEY, document TEXT NOT NULL);
"""

# The columns of `batches` a stored batch is written with, in `batch_row`'s order.
BATCH_COLUMNS = (
    "idempotency_key, install_id, tool, day, received_at, tool_version, python_version, os,"
    " os_release, arch, record_count, records"
)
# What a report reads of each batch, in `report_rows_of`'s order.
REPORT_COLUMNS = (
    "day, tool, tool_version, install_id, python_version, os, os_release, arch, records"
)
# Every record a row, with its batch's envelope: the columns of version 1's `records` table.
RECORDS_VIEW = """
CREATE VIEW IF NOT EXISTS records AS SELECT
    b.idempotency_key, r.key AS position, b.day, b.tool, b.tool_version,
    b.install_id, b.python_version, b.os, b.os_release, b.arch,
    json_extract(r.value, '$.event') AS event,
    json_extract(r.value, '$.properties') AS properties,
    json_extract(r.value, '$.outcome') AS outcome,
    json_extract(r.value, '$.error_class') AS error_class,
    json_extract(r.value, '$.count') AS count,
    json_extract(r.value, '$.duration_ms_sum') AS duration_ms_sum,
    json_extract(r.value, '$.duration_ms_min') AS duration_ms_min,
    json_extract(r.value, '$.duration_ms_max') AS duration_ms_max,
    json_extract(r.value, '$.duration_ms_buckets') AS duration_ms_buckets
FROM batches AS b, json_each(b.records) AS r
"""


def batch_row(batch: ValidBatch, now: float) -> tuple[object, ...]:
    """The batch as a row of `batches`, in BATCH_COLUMNS' order."""
    envelope = batch.envelope
    return (
        batch.idempotency_key,
        envelope.install_id,
        envelope.tool,
        batch.day,
        now,
        envelope.tool_version,
        envelope.python_version,
        envelope.os,
        envelope.os_release,
        envelope.arch,
        batch.record_count,
        batch.records_json,
    )


def report_rows_of(values: Sequence[object]) -> Iterator[ReportRow]:
    """The records of one stored batch (REPORT_COLUMNS' values), each with the batch's envelope."""
    day, tool, tool_version, install_id, python_version, os, os_release, arch = (
        str(value) for value in values[:8]
    )
    records = values[8]
    for record in json.loads(records if isinstance(records, str) else str(records)):
        yield ReportRow(
            day=day,
            tool=tool,
            tool_version=tool_version,
            install_id=install_id,
            python_version=python_version,
            os=os,
            os_release=os_release,
            arch=arch,
            event=str(record["event"]),
            properties=properties_from_json(record["properties"]),
            outcome=str(record["outcome"]),
            error_class=str(record["error_class"]),
            count=int(record["count"]),
            duration_ms_sum=float(record["duration_ms_sum"]),
            duration_ms_min=float(record["duration_ms_min"]),
            duration_ms_max=float(record["duration_ms_max"]),
            duration_ms_buckets=tuple(int(count) for count in record["duration_ms_buckets"]),
        )


_INSERT_BATCH = f"INSERT INTO batches ({BATCH_COLUMNS}) VALUES ({', '.join(['?'] * 12)})"


def _marks(values: Sequence[object]) -> str:
    """As many `?` as values, for `IN (...)`."""
    return ", ".join(["?"] * len(values))


def _migrate_from_version_1(connection: sqlite3.Connection) -> None:
    """Version 1's tables (a row per record, the envelope on each) as version 2's, in the transaction.

    Every batch keeps its key, install, day and time received; its records
    become its JSON array, in the order they were stored. The caller then
    makes what is missing (the indexes, the view) and the version row is set.
    """
    connection.execute("CREATE INDEX IF NOT EXISTS records_by_key ON records (idempotency_key, id)")
    connection.execute("DROP INDEX IF EXISTS batches_by_install")
    connection.execute("ALTER TABLE batches RENAME TO batches_version_1")
    connection.execute(TABLES.split(";")[1])  # the new `batches`
    connection.execute(
        f"INSERT INTO batches ({BATCH_COLUMNS})"
        " SELECT b.idempotency_key, b.install_id, b.tool, b.day, b.received_at,"
        " coalesce(r.tool_version, ''), coalesce(r.python_version, ''), coalesce(r.os, ''),"
        " coalesce(r.os_release, ''), coalesce(r.arch, ''),"
        " (SELECT count(*) FROM records WHERE idempotency_key = b.idempotency_key),"
        " '[' || coalesce((SELECT group_concat(record, ',') FROM (SELECT json_object("
        "'day', day, 'event', event, 'properties', json(properties), 'outcome', outcome,"
        " 'error_class', error_class, 'count', count, 'duration_ms_sum', duration_ms_sum,"
        " 'duration_ms_min', duration_ms_min, 'duration_ms_max', duration_ms_max,"
        " 'duration_ms_buckets', json(duration_ms_buckets)) AS record FROM records"
        " WHERE idempotency_key = b.idempotency_key ORDER BY id)), '') || ']'"
        " FROM batches_version_1 AS b LEFT JOIN records AS r ON r.id ="
        " (SELECT min(id) FROM records WHERE idempotency_key = b.idempotency_key)"
        " ORDER BY b.rowid"
    )
    connection.execute("DROP TABLE records")
    connection.execute("DROP TABLE batches_version_1")
    connection.execute(
        "UPDATE collector_meta SET value = ? WHERE name = 'schema_version'",
        (str(STORE_SCHEMA_VERSION),),
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
            connection.execute(TABLES.split(";")[0])  # collector_meta, to read the version
            found = connection.execute(
                "SELECT value FROM collector_meta WHERE name = 'schema_version'"
            ).fetchone()
            check_store_version(found[0] if found else None)
            if found is not None and found[0] == "1":
                _migrate_from_version_1(connection)
            for statement in TABLES.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(RECORDS_VIEW)
            connection.execute(
                "INSERT OR IGNORE INTO collector_meta (name, value) VALUES ('schema_version', ?)",
                (str(STORE_SCHEMA_VERSION),),
            )
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

    def ingest_many(
        self, batches: Sequence[ValidBatch], *, now: float, limit: RateLimit
    ) -> list[IngestOutcome | Exception]:
        """A group already gathered (the app's writer): one transaction, now."""
        return write_together(self._write_group, batches, now, limit)

    def _write_group(self, group: Sequence[Pending]) -> None:
        """One `BEGIN IMMEDIATE` transaction for the group, in a few statements whatever its size.

        The writer lock is held from the start, so the keys already stored
        and the installs' batches in the window are read once, each batch is
        decided in order as if stored one by one (group.decide_in_order), and
        the stored are inserted together. Should the insert fail (a value
        the database refuses), the group is written again batch by batch,
        each in its own savepoint, so that the bad batch fails alone.
        """
        connection = self._connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
            self._write_together(connection, group)
            connection.execute("COMMIT")
            return
        except Exception as error:
            self._roll_back(connection)
            if isinstance(error, sqlite3.OperationalError):
                raise  # the database (locked, full, unreadable), not a batch: the group fails
        except BaseException:
            self._roll_back(connection)
            raise
        for pending in group:
            pending.outcome = pending.error = None
        try:
            connection.execute("BEGIN IMMEDIATE")
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
            self._roll_back(connection)
            raise

    @staticmethod
    def _roll_back(connection: sqlite3.Connection) -> None:
        if connection.in_transaction:
            connection.execute("ROLLBACK")

    @staticmethod
    def _write_together(connection: sqlite3.Connection, group: Sequence[Pending]) -> None:
        keys = [pending.batch.idempotency_key for pending in group]
        seen = {
            str(key)
            for (key,) in connection.execute(
                f"SELECT idempotency_key FROM batches WHERE idempotency_key IN ({_marks(keys)})",
                keys,
            )
        }
        installs = sorted({pending.batch.envelope.install_id for pending in group})
        cutoff = min(pending.now - pending.limit.window_seconds for pending in group)
        received: dict[str, list[float]] = {install: [] for install in installs}
        for install, at in connection.execute(
            "SELECT install_id, received_at FROM batches"
            f" WHERE install_id IN ({_marks(installs)}) AND received_at > ?",
            [*installs, cutoff],
        ):
            received[str(install)].append(float(at))
        stored = decide_in_order(group, seen, received)
        connection.executemany(
            _INSERT_BATCH, [batch_row(pending.batch, pending.now) for pending in stored]
        )
        for pending in stored:
            pending.outcome = IngestOutcome("stored", rows=pending.batch.record_count)

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
        connection.execute(_INSERT_BATCH, batch_row(batch, now))
        return IngestOutcome("stored", rows=batch.record_count)

    def forget(self, install_id: str) -> int:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            (removed,) = connection.execute(
                "SELECT coalesce(sum(record_count), 0) FROM batches WHERE install_id = ?",
                (install_id,),
            ).fetchone()
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
            f"SELECT {REPORT_COLUMNS} FROM batches{where} ORDER BY day, tool, rowid", parameters
        )
        for values in cursor:
            yield from report_rows_of(values)

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()
