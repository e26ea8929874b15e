"""Group commit on SQLite and PostgreSQL: concurrent ingests written together, exactly as one by one.

The database is held (SQLite's writer lock, or PostgreSQL's advisory locks on
the installs) while the ingests queue up, so the groups are known: the first
caller's batch alone, then every other batch in one transaction. Each group's
size is seen by wrapping the store's real group writer.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from tests.collector.batches import batch, command_record, install_id, yesterday
from tests.collector.conftest import stored_batches, stored_rows
from tests.hardening.conftest import Reliability
from typer_telemetry.collector.rows import IngestOutcome, RateLimit
from typer_telemetry.collector.store import Store, open_store
from typer_telemetry.collector.validation import ValidBatch, check_batch

WAIT_SECONDS = 30.0


def kind(database: str) -> str:
    return "SQLite" if database.startswith("sqlite") else "PostgreSQL"


def valid(document: dict[str, Any]) -> ValidBatch:
    return check_batch(document, header_key=None, schemas={}, now=time.time())


def until(condition: Callable[[], bool]) -> None:
    """Wait for a condition on the stores' queues (threads queue up within milliseconds)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "the ingests did not queue up"
        time.sleep(0.001)


class Spied:
    """A store whose group writer is the real one, its groups' sizes noted as they start."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.group = store._group  # type: ignore[attr-defined]
        self.sizes: list[int] = []
        write = self.group._write

        def noted(group: Sequence[Any]) -> None:
            self.sizes.append(len(group))
            write(group)

        self.group._write = noted

    def placed(self) -> int:
        """Batches in a group being written, or written, or queued for the next one."""
        return sum(self.sizes) + len(self.group._queue)


@contextmanager
def database_held(database: str, installs: Sequence[str]) -> Iterator[None]:
    """Writers of these installs wait until the block ends (SQLite: every writer)."""
    if database.startswith("sqlite:///"):
        blocker = sqlite3.connect(database.removeprefix("sqlite:///"), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            blocker.execute("COMMIT")
            blocker.close()
        return
    import psycopg

    with psycopg.connect(database, autocommit=True) as connection:
        for install in installs:
            connection.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (install,))
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock_all()")


def ingested_in_two_groups(
    database: str, batches: Sequence[ValidBatch], limit: RateLimit
) -> tuple[list[IngestOutcome | BaseException], list[int]]:
    """The first batch's group alone, then all the others queued into one group."""
    store = Spied(open_store(database))
    installs = sorted({each.envelope.install_id for each in batches})
    try:
        with ThreadPoolExecutor(len(batches)) as pool:
            futures: list[Future[IngestOutcome]] = []
            with database_held(database, installs):
                futures.append(
                    pool.submit(store.store.ingest, batches[0], now=time.time(), limit=limit)
                )
                until(lambda: store.sizes == [1])
                for each in batches[1:]:
                    futures.append(
                        pool.submit(store.store.ingest, each, now=time.time(), limit=limit)
                    )
                until(lambda: store.placed() == len(batches))
            results: list[IngestOutcome | BaseException] = []
            for future in futures:
                error = future.exception()
                results.append(error if error is not None else future.result())
        return results, store.sizes
    finally:
        store.store.close()


def test_a_duplicate_within_one_group_is_stored_once_and_the_rate_counts_the_group(
    database: str, reliability: Reliability
) -> None:
    first, busy = install_id(), install_id()
    records = [command_record(yesterday()), command_record(yesterday(), "ls")]
    twice = valid(batch(busy, records))
    batches = [
        valid(batch(first, records)),
        twice,
        twice,
        *(valid(batch(busy, records)) for _ in range(3)),
    ]
    results, sizes = ingested_in_two_groups(database, batches, RateLimit(batches=3))
    assert sizes == [1, 5]
    statuses = [result.status for result in results]  # type: ignore[union-attr]
    assert statuses[0] == "stored"
    # The busy install's five: one key twice (stored once), then over 3 an hour.
    assert statuses[1:] == ["stored", "duplicate", "stored", "stored", "rate_limited"]
    assert stored_batches(database) == 4
    assert len(stored_rows(database)) == 8
    reliability.record(
        "Collector",
        f"one batch twice, and an install over its rate, within one group commit on"
        f" {kind(database)}",
        5,
        "the batch stored once, both copies acknowledged; the batch over the rate refused (429)",
    )


def test_a_batch_that_fails_in_a_group_fails_alone_and_leaves_no_trace(
    database: str, reliability: Reliability
) -> None:
    records = [command_record(yesterday())]
    broken = valid(batch(install_id(), records))
    # The database refuses its row (no records where they are NOT NULL).
    unwritable = dataclasses.replace(broken, records_json=None)  # type: ignore[arg-type]
    batches = [valid(batch(install_id(), records)) for _ in range(2)]
    batches[1:1] = [valid(batch(install_id(), records)), unwritable]
    results, sizes = ingested_in_two_groups(database, batches, RateLimit())
    assert sizes == [1, 3]
    assert [type(result).__name__ for result in results] == [
        "IngestOutcome",
        "IngestOutcome",
        "IntegrityError" if kind(database) == "SQLite" else "NotNullViolation",
        "IngestOutcome",
    ]
    assert {result.status for result in results if isinstance(result, IngestOutcome)} == {"stored"}
    assert stored_batches(database) == 3
    assert len(stored_rows(database)) == 3
    # Rolled back to its savepoint: sent again whole, it is stored, not taken for a duplicate.
    store = open_store(database)
    try:
        assert store.ingest(broken, now=time.time(), limit=RateLimit()).status == "stored"
    finally:
        store.close()
    reliability.record(
        "Collector",
        f"one batch of a group commit on {kind(database)} fails while being written",
        4,
        "that batch alone answered 503 and nothing of it kept; the group's others stored",
    )


def test_group_commits_of_two_replicas_on_one_database_keep_exact_counts(
    database: str, reliability: Reliability
) -> None:
    limit = RateLimit(batches=5)
    records = [command_record(yesterday())]
    busy = install_id()
    quiet = [valid(batch(install_id(), records)) for _ in range(8)]
    hurried = [valid(batch(busy, records)) for _ in range(10)]
    # Every batch to both replicas.
    sent = [(replica, each) for each in quiet + hurried for replica in (0, 1)]
    stores = [Spied(open_store(database)) for _ in range(2)]
    installs = sorted({each.envelope.install_id for each in quiet + hurried})
    try:
        with ThreadPoolExecutor(len(sent)) as pool:
            with database_held(database, installs):
                futures = [
                    pool.submit(stores[replica].store.ingest, each, now=time.time(), limit=limit)
                    for replica, each in sent
                ]
                until(lambda: sum(store.placed() for store in stores) == len(sent))
            outcomes = [future.result() for future in futures]
    finally:
        for store in stores:
            store.store.close()
    assert max(size for store in stores for size in store.sizes) > 1
    by_key: dict[str, Counter[str]] = {}
    for (_, each), outcome in zip(sent, outcomes, strict=True):
        by_key.setdefault(each.idempotency_key, Counter())[outcome.status] += 1
    for each in quiet:
        assert by_key[each.idempotency_key] == Counter({"stored": 1, "duplicate": 1})
    hurried_outcomes = [by_key[each.idempotency_key] for each in hurried]
    assert hurried_outcomes.count(Counter({"stored": 1, "duplicate": 1})) == 5
    assert hurried_outcomes.count(Counter({"rate_limited": 2})) == 5
    assert stored_batches(database) == 13
    assert len(stored_rows(database)) == 13
    reliability.record(
        "Collector",
        f"36 batches to two replicas at once, each replica committing in groups, on one"
        f" {kind(database)} database",
        36,
        "each batch stored once, the install over its rate held to it across the replicas",
    )
