"""The PostgreSQL store: one database shared by several collector replicas.

Concurrent ingests of one process are stored in one transaction, one commit
(group.py), that first takes a transaction-scoped advisory lock on each of
its install ids (`pg_advisory_xact_lock`, in the order of the lock keys), so
two replicas storing batches of one install at once take turns: the
duplicate check and the rate count then see every batch committed before. The idempotency key is also the
primary key of `batches`, so a key is stored once whatever happens. Tables
are created on start under a session advisory lock (replicas starting
together do not race on `CREATE TABLE IF NOT EXISTS`).

Connections come from a small pool of plain psycopg 3 connections: Starlette
runs the store's calls in its thread pool, one connection per call at a time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import psycopg

from .group import GroupCommit, Pending, decide_in_order, write_together
from .rows import (
    STORE_SCHEMA_VERSION,
    IngestOutcome,
    RateLimit,
    ReportRow,
    check_store_version,
    retry_after,
)
from .sqlite import BATCH_COLUMNS, REPORT_COLUMNS, TABLES, batch_row, report_filter, report_rows_of

if TYPE_CHECKING:
    from .validation import ValidBatch

POOL_SIZE = 8
CONNECT_TIMEOUT_SECONDS = 10
# Any constant: the lock replicas take while creating the tables.
_TABLES_LOCK = 7_361_902_114
# Arrays sent binary (%b): in text, each quote of the records' JSON would be escaped one by one.
_INSERT_BATCHES = (
    f"INSERT INTO batches ({BATCH_COLUMNS}) SELECT * FROM unnest("
    "%b::text[], %b::text[], %b::text[], %b::text[], %b::double precision[], %b::text[],"
    " %b::text[], %b::text[], %b::text[], %b::text[], %b::integer[], %b::text[])"
    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key"
)

# SQLite's tables, in PostgreSQL's types (the same columns and indexes).
_POSTGRES_TABLES = TABLES.replace("received_at REAL", "received_at DOUBLE PRECISION")
# The same view as SQLite's (sqlite.RECORDS_VIEW): every record a row, with its batch's envelope.
_RECORDS_VIEW = """
CREATE OR REPLACE VIEW records AS SELECT
    b.idempotency_key, r.position - 1 AS position, b.day, b.tool, b.tool_version,
    b.install_id, b.python_version, b.os, b.os_release, b.arch,
    r.value ->> 'event' AS event,
    (r.value -> 'properties')::text AS properties,
    r.value ->> 'outcome' AS outcome,
    r.value ->> 'error_class' AS error_class,
    (r.value ->> 'count')::bigint AS count,
    (r.value ->> 'duration_ms_sum')::double precision AS duration_ms_sum,
    (r.value ->> 'duration_ms_min')::double precision AS duration_ms_min,
    (r.value ->> 'duration_ms_max')::double precision AS duration_ms_max,
    (r.value -> 'duration_ms_buckets')::text AS duration_ms_buckets
FROM batches AS b, jsonb_array_elements(b.records::jsonb) WITH ORDINALITY AS r (value, position)
"""
# Version 1 kept a row per record (see sqlite._migrate_from_version_1): its tables as version 2's.
_MIGRATE_FROM_VERSION_1 = (
    "CREATE INDEX IF NOT EXISTS records_by_key ON records (idempotency_key, id)",
    "DROP INDEX IF EXISTS batches_by_install",
    "ALTER TABLE batches RENAME TO batches_version_1",
    "ALTER TABLE batches_version_1 RENAME CONSTRAINT batches_pkey TO batches_version_1_pkey",
    _POSTGRES_TABLES.split(";")[1],
    f"INSERT INTO batches ({BATCH_COLUMNS})"
    " SELECT b.idempotency_key, b.install_id, b.tool, b.day, b.received_at,"
    " coalesce(r.tool_version, ''), coalesce(r.python_version, ''), coalesce(r.os, ''),"
    " coalesce(r.os_release, ''), coalesce(r.arch, ''), r.count,"
    " '[' || coalesce(r.records, '') || ']'"
    " FROM batches_version_1 AS b LEFT JOIN LATERAL (SELECT count(*) AS count,"
    + "".join(
        f" (array_agg({column} ORDER BY id))[1] AS {column},"
        for column in ("tool_version", "python_version", "os", "os_release", "arch")
    )
    + " string_agg(json_build_object('day', day, 'event', event, 'properties', properties::json,"
    " 'outcome', outcome, 'error_class', error_class, 'count', count,"
    " 'duration_ms_sum', duration_ms_sum, 'duration_ms_min', duration_ms_min,"
    " 'duration_ms_max', duration_ms_max, 'duration_ms_buckets', duration_ms_buckets::json"
    ")::text, ',' ORDER BY id) AS records"
    + " FROM records WHERE idempotency_key = b.idempotency_key) AS r ON true",
    "DROP TABLE records",
    "DROP TABLE batches_version_1",
)


class PostgresStore:
    """The `Store` on a PostgreSQL database (psycopg 3)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._idle: queue.LifoQueue[psycopg.Connection[tuple[object, ...]]] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(POOL_SIZE)
        self._closed = False
        self._group = GroupCommit(self._write_group)
        with self._borrowed() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_TABLES_LOCK,))
            connection.execute(_POSTGRES_TABLES.split(";")[0].encode())  # collector_meta
            found = connection.execute(
                "SELECT value FROM collector_meta WHERE name = 'schema_version'"
            ).fetchone()
            check_store_version(found[0] if found else None)
            if found is not None and found[0] == "1":
                for statement in _MIGRATE_FROM_VERSION_1:
                    connection.execute(statement.encode())
                connection.execute(
                    "UPDATE collector_meta SET value = %s WHERE name = 'schema_version'",
                    (str(STORE_SCHEMA_VERSION),),
                )
            for statement in _POSTGRES_TABLES.split(";"):
                if statement.strip():
                    connection.execute(statement.encode())
            connection.execute(_RECORDS_VIEW.encode())
            connection.execute(
                "INSERT INTO collector_meta (name, value) VALUES ('schema_version', %s)"
                " ON CONFLICT (name) DO NOTHING",
                (str(STORE_SCHEMA_VERSION),),
            )

    class _Borrowed:
        def __init__(self, store: PostgresStore) -> None:
            self.store = store
            self.connection: psycopg.Connection[tuple[object, ...]] | None = None

        def __enter__(self) -> psycopg.Connection[tuple[object, ...]]:
            self.store._slots.acquire()
            try:
                connection = self.store._idle.get_nowait()
                if connection.closed or connection.broken:
                    connection = self.store._connect()
            except queue.Empty:
                try:
                    connection = self.store._connect()
                except BaseException:
                    self.store._slots.release()
                    raise
            self.connection = connection
            return connection

        def __exit__(self, *exc_info: object) -> None:
            connection = self.connection
            assert connection is not None
            if exc_info[0] is not None or connection.broken or self.store._closed:
                connection.close()
            else:
                self.store._idle.put(connection)
            self.store._slots.release()

    def _borrowed(self) -> PostgresStore._Borrowed:
        return PostgresStore._Borrowed(self)

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)

    def ingest(self, batch: ValidBatch, *, now: float, limit: RateLimit) -> IngestOutcome:
        """Stored with the other batches being ingested at the time, in one transaction (group.py)."""
        return self._group.ingest(batch, now, limit)

    def ingest_many(
        self, batches: Sequence[ValidBatch], *, now: float, limit: RateLimit
    ) -> list[IngestOutcome | Exception]:
        """A group already gathered (the app's writer): one transaction, now."""
        return write_together(self._write_group, batches, now, limit)

    def _write_group(self, group: Sequence[Pending]) -> None:
        """One transaction, one commit for the group, in a few round trips whatever its size.

        The group's install ids are locked first, all of them, in the order
        of their lock keys: two replicas' groups then never wait on each
        other in a cycle (a deadlock would fail both groups). Under those
        locks no other writer adds or removes a batch of these installs, so
        the keys already stored and the installs' batches in the window are
        read once, and each batch is decided in order as if stored one by
        one. Should the group's writes fail (a value the database refuses),
        it is written again batch by batch, each in its own savepoint, so
        that the bad batch fails alone.
        """
        try:
            # Pipelined: BEGIN, the locks and the read go out together; then the insert,
            # whose keys are read back; then COMMIT: three waits on the network in all.
            with (
                self._borrowed() as connection,
                connection.pipeline(),
                connection.transaction(),
            ):
                self._lock_installs(connection, group)
                self._write_together(connection, group)
            return
        except Exception as error:
            if isinstance(error, psycopg.OperationalError):
                raise  # the database, not a batch: the whole group fails
        for pending in group:
            pending.outcome = pending.error = None
        with self._borrowed() as connection, connection.transaction():
            self._lock_installs(connection, group)
            for pending in group:
                try:
                    with connection.transaction():  # a savepoint
                        pending.outcome = self._ingest(
                            connection, pending.batch, pending.now, pending.limit
                        )
                except Exception as error:
                    if connection.broken or isinstance(error, psycopg.OperationalError):
                        raise
                    pending.error = error  # this batch alone: the others are kept

    @staticmethod
    def _lock_installs(
        connection: psycopg.Connection[tuple[object, ...]], group: Sequence[Pending]
    ) -> None:
        # The keys sorted in a fenced subquery (OFFSET 0), so the locks are taken in their order.
        connection.execute(
            "SELECT pg_advisory_xact_lock(key) FROM (SELECT DISTINCT hashtextextended(id, 0)"
            " AS key FROM unnest(%b::text[]) AS id ORDER BY key OFFSET 0) AS ordered",
            ([pending.batch.envelope.install_id for pending in group],),
        )

    @staticmethod
    def _write_together(
        connection: psycopg.Connection[tuple[object, ...]], group: Sequence[Pending]
    ) -> None:
        """Decide each batch in order (duplicate, over the rate, stored), then write the stored."""
        keys = {pending.batch.idempotency_key for pending in group}
        installs = {pending.batch.envelope.install_id for pending in group}
        cutoff = min(pending.now - pending.limit.window_seconds for pending in group)
        seen: set[str] = set()
        received: dict[str, list[float]] = {install: [] for install in installs}
        for key, install, at in connection.execute(
            "SELECT idempotency_key, install_id, received_at FROM batches"
            " WHERE idempotency_key = ANY(%b) OR (install_id = ANY(%b) AND received_at > %s)",
            (list(keys), list(installs), cutoff),
        ):
            if key in keys:
                seen.add(str(key))
            if install in received and float(at) > cutoff:  # type: ignore[arg-type]
                received[str(install)].append(float(at))  # type: ignore[arg-type]
        stored = decide_in_order(group, seen, received)
        if not stored:
            return
        # A key another install's batch holds (a custom sender's reuse) is a duplicate, as before.
        rows = [batch_row(pending.batch, pending.now) for pending in stored]
        inserted = {
            str(key)
            for (key,) in connection.execute(
                _INSERT_BATCHES,
                [list(column) for column in zip(*rows, strict=True)],
            )
        }
        for pending in stored:
            if pending.batch.idempotency_key in inserted:
                pending.outcome = IngestOutcome("stored", rows=pending.batch.record_count)
            else:
                pending.outcome = IngestOutcome("duplicate")

    def _ingest(
        self,
        connection: psycopg.Connection[tuple[object, ...]],
        batch: ValidBatch,
        now: float,
        limit: RateLimit,
    ) -> IngestOutcome:
        install_id = batch.envelope.install_id
        seen = connection.execute(
            "SELECT 1 FROM batches WHERE idempotency_key = %s", (batch.idempotency_key,)
        ).fetchone()
        if seen is not None:
            return IngestOutcome("duplicate")
        counted = connection.execute(
            "SELECT count(*), min(received_at) FROM batches"
            " WHERE install_id = %s AND received_at > %s",
            (install_id, now - limit.window_seconds),
        ).fetchone()
        assert counted is not None
        count, oldest = counted
        if int(count) >= limit.batches:  # type: ignore[call-overload]
            return IngestOutcome(
                "rate_limited",
                retry_after=retry_after(float(oldest), now, limit),  # type: ignore[arg-type]
            )
        inserted = connection.execute(
            f"INSERT INTO batches ({BATCH_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})"
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1",
            batch_row(batch, now),
        ).fetchone()
        if inserted is None:
            return IngestOutcome("duplicate")
        return IngestOutcome("stored", rows=batch.record_count)

    def forget(self, install_id: str) -> int:
        with self._borrowed() as connection, connection.transaction():
            connection.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (install_id,)
            )
            removed = connection.execute(
                "WITH gone AS (DELETE FROM batches WHERE install_id = %s RETURNING record_count)"
                " SELECT coalesce(sum(record_count), 0) FROM gone",
                (install_id,),
            ).fetchone()
        assert removed is not None
        return int(str(removed[0]))

    def register_schema(self, tool: str, document: str) -> None:
        with self._borrowed() as connection:
            connection.execute(
                "INSERT INTO tool_schemas (tool, document) VALUES (%s, %s)"
                " ON CONFLICT (tool) DO UPDATE SET document = excluded.document",
                (tool, document),
            )

    def registered_schemas(self) -> list[str]:
        with self._borrowed() as connection:
            rows = connection.execute("SELECT document FROM tool_schemas ORDER BY tool")
            return [str(row[0]) for row in rows]

    def report_rows(
        self, *, tool: str | None = None, since: str | None = None, until: str | None = None
    ) -> Iterator[ReportRow]:
        where, parameters = report_filter(tool, since, until, "%s")
        query = (
            f"SELECT {REPORT_COLUMNS} FROM batches{where}"
            " ORDER BY day, tool, received_at, idempotency_key"
        )
        # A server-side cursor: a million rows are read a few thousand at a time.
        with (
            self._borrowed() as connection,
            connection.transaction(),
            connection.cursor(name="report_rows") as cursor,
        ):
            cursor.itersize = 5000
            cursor.execute(query.encode(), parameters)
            for values in cursor:
                yield from report_rows_of(values)

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
