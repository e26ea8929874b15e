"""Ingest on SQLite and on PostgreSQL, each with two collector replicas on one database.

Idempotency and the per-install rate are held by the database, so they
hold when concurrent clients reach both replicas at once; deletions remove
every row of one install and nothing else.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.collector.batches import (
    batch,
    command_record,
    deletion,
    encoded,
    event_record,
    install_id,
    yesterday,
)
from tests.collector.conftest import (
    Answer,
    Collector,
    Postgres,
    published_schema,
    stored_batches,
    stored_rows,
)
from tests.hardening.conftest import Reliability


def kind(database: str) -> str:
    return "SQLite" if database.startswith("sqlite") else "PostgreSQL"


def send(collector: Collector, document: dict[str, object], compress: bool = False) -> Answer:
    body, headers = encoded(document, compress=compress)
    return collector.post("/v1/batches", body, headers)


def test_a_batch_sent_many_times_to_both_replicas_at_once_is_stored_once(
    replicas: tuple[Collector, Collector], database: str, reliability: Reliability
) -> None:
    document = batch(install_id(), [command_record(yesterday()), command_record(yesterday(), "ls")])
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda n: send(replicas[n % 2], document, compress=n % 3 == 0), range(16))
        )
    assert {(answer.status, answer.body) for answer in answers} == {(200, b'{"accepted":true}')}
    assert len(stored_rows(database)) == 2
    assert stored_batches(database) == 1
    reliability.record(
        "Collector",
        f"one batch sent 16 times at once to two collector replicas on one {kind(database)}"
        " database",
        16,
        "every copy acknowledged, the batch stored once",
    )


def test_the_rate_per_install_holds_across_replicas_under_concurrent_clients(
    replicas: tuple[Collector, Collector], database: str, reliability: Reliability
) -> None:
    busy, quiet = install_id(), install_id()
    documents = [batch(busy, [command_record(yesterday())]) for _ in range(12)]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda n: send(replicas[n % 2], documents[n]), range(12)))
    statuses = Counter(answer.status for answer in answers)
    assert statuses == Counter({200: 5, 429: 7})
    for answer in answers:
        if answer.status == 429:
            assert 0 < int(answer.headers["retry-after"]) <= 3600
            assert answer.json() == {
                "accepted": False,
                "error": "over 5 batches in 3600 s for this install",
            }
    # A refused batch is not stored, and sent again later it is still refused: not a duplicate.
    refused = next(n for n, answer in enumerate(answers) if answer.status == 429)
    assert send(replicas[0], documents[refused]).status == 429
    # A batch already stored is still acknowledged (a duplicate is not counted against the rate).
    stored = next(n for n, answer in enumerate(answers) if answer.status == 200)
    assert send(replicas[1], documents[stored]).status == 200
    assert stored_batches(database) == 5
    # Another install is not held back by the first one's rate.
    assert send(replicas[1], batch(quiet, [command_record(yesterday())])).status == 200
    reliability.record(
        "Collector",
        f"12 batches of one install at once to two replicas on one {kind(database)} database,"
        " over its rate of 5 an hour",
        12,
        "exactly 5 stored, the rest answered 429 with Retry-After (the client keeps them)",
    )


def test_a_deletion_request_removes_every_row_of_that_install_and_no_other(
    replicas: tuple[Collector, Collector], database: str
) -> None:
    leaving, staying = install_id(), install_id()
    for n in range(2):
        assert (
            send(replicas[n], batch(leaving, [command_record(yesterday(), f"c{n}")])).status == 200
        )
    assert send(replicas[0], batch(staying, [command_record(yesterday())])).status == 200
    assert len(stored_rows(database)) == 3
    body, headers = deletion(leaving)
    answers = [replicas[0].post("/v1/deletions", body, headers) for _ in range(2)]
    assert [(answer.status, answer.json()) for answer in answers] == [(200, {"accepted": True})] * 2
    rows = stored_rows(database)
    assert len(rows) == 1
    assert staying in rows[0]
    assert leaving not in str(rows)
    # Logged without the id: a line saying how many records went.
    log = replicas[0].log.read_text()
    assert "deletion request carried out: 2 records removed" in log
    assert leaving not in log


def test_a_database_that_is_gone_is_answered_503_with_retry_after_never_acknowledged(
    tmp_path: Path, postgres: Postgres, reliability: Reliability
) -> None:
    import psycopg

    database = postgres.new_database()
    collector = Collector(database, tmp_path).start()
    try:
        document = batch(install_id(), [command_record(yesterday())])
        name = database.rsplit("/", 1)[1]
        with psycopg.connect(postgres.url(), autocommit=True) as connection:
            connection.execute(f"DROP DATABASE {name} WITH (FORCE)".encode())
        answer = send(collector, document)
        assert answer.status == 503
        assert answer.headers["retry-after"] == "60"
        assert answer.json() == {
            "accepted": False,
            "error": "the collector cannot store batches now",
        }
        body, headers = deletion(install_id())
        assert collector.post("/v1/deletions", body, headers).status == 503
    finally:
        collector.stop()
    assert "Traceback" not in collector.log.read_text()
    reliability.record(
        "Collector",
        "the collector's PostgreSQL database dropped while it runs",
        2,
        "batches and deletions answered 503 with Retry-After: 60, never acknowledged",
        lost="nothing (the client keeps the day and sends it again)",
    )


def test_a_schema_given_to_one_replica_holds_for_a_replica_started_without_it(
    database: str, tmp_path: Path
) -> None:
    schema = tmp_path / "inventory.json"
    printed = subprocess.run(
        [sys.executable, "-m", "typer_telemetry", "schema", "inventory.cli:telemetry", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    schema.write_text(printed.stdout)
    Collector(database, tmp_path, ("--schema", str(schema))).start().stop()
    bare = Collector(database, tmp_path).start()
    try:
        records = [
            command_record(yesterday()),
            event_record(yesterday(), {"file_format": "csv", "customer": "acme"}),
            event_record(yesterday(), {"file_format": "csv"}, event="undeclared_event"),
        ]
        assert send(bare, batch(install_id(), records)).status == 200
    finally:
        bare.stop()
    stored = [(row[10], json.loads(str(row[11]))) for row in stored_rows(database)]
    assert stored == [
        ("command", {"command": "db migrate", "flags": ["--force"]}),
        ("ingest_completed", {"file_format": "csv"}),
    ]


def test_a_schema_registered_while_a_replica_runs_is_used_by_it_without_a_restart(
    database: str, tmp_path: Path
) -> None:
    schema = published_schema(tmp_path, "inventory.cli:telemetry")
    running = Collector(database, tmp_path, ("--schema-reload", "0")).start()
    try:

        def undeclared_kept() -> bool:
            sent = batch(install_id(), [event_record(yesterday(), {}, event="undeclared_event")])
            assert send(running, sent).status == 200
            return any(row[0] == sent["idempotency_key"] for row in stored_rows(database))

        assert undeclared_kept(), "without a contract, the generic checks keep the event"
        Collector(database, tmp_path, ("--schema", str(schema))).start().stop()  # registers it
        deadline = time.monotonic() + 30
        while undeclared_kept():  # each batch has the contracts read again (--schema-reload 0)
            assert time.monotonic() < deadline, "the running replica never read the contract"
    finally:
        running.stop()
    assert "Traceback" not in running.log.read_text()
