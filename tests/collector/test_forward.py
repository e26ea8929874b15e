"""Forwarding accepted batches to PostHog: a real local capture endpoint, a real queue file, real processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collector.forward_receiver import Answer, PostHogReceiver
from tests.hardening.conftest import Reliability
from tests.receiver import Receiver
from tests.sample_batch import DAY, ENVELOPE, INGESTS, MIGRATIONS, ROOT_FAILURE
from tests.test_backend_posthog import BODY_KEYS, EVENT_KEYS
from typer_telemetry._records import Batch
from typer_telemetry.backends.posthog import PostHogBackend, event_uuid
from typer_telemetry.collector.forward import Forwarder

API_KEY = "phc_0123456789abcdefghijklmnopqrstuvwxyzABCDE"
ROOT = Path(__file__).resolve().parents[2]


def batch(number: int = 0) -> Batch:
    return Batch(
        DAY, ENVELOPE, [MIGRATIONS, ROOT_FAILURE, INGESTS], f"acme-deploy/{DAY}/key{number:04d}"
    )


@pytest.fixture
def posthog() -> Iterator[PostHogReceiver]:
    with PostHogReceiver() as receiver:
        yield receiver


@pytest.fixture
def forwarders() -> Iterator[list[Forwarder]]:
    """Forwarders a test made, all stopped at its end."""
    made: list[Forwarder] = []
    yield made
    for forwarder in made:
        forwarder.stop(timeout=10)


def forwarder(
    made: list[Forwarder], queue: Path, posthog: PostHogReceiver, **options: float
) -> Forwarder:
    options = {"backoff_start": 0.01, "backoff_max": 0.05, "send_timeout": 5.0, **options}
    made.append(
        Forwarder(
            queue,
            host=posthog.url,
            api_key=API_KEY,
            max_batches=int(options.pop("max_batches", 10_000)),
            **options,
        )
    )
    return made[-1]


def uuids(request_body: dict[str, object]) -> list[str]:
    events = request_body["batch"]
    assert isinstance(events, list)
    return [event["uuid"] for event in events]


def record_row(test: str, fault: str, cases: int, outcome: str, lost: str = "nothing") -> None:
    """A docs/reliability.md row, written only when the test reached this line (it passed)."""
    Reliability(test).record("Collector forwarding", fault, cases, outcome, lost)


def test_a_queued_batch_reaches_posthog_exactly_as_the_posthog_backend_sends_it(
    tmp_path: Path, posthog: PostHogReceiver, forwarders: list[Forwarder]
) -> None:
    sent = batch()
    queue = forwarder(forwarders, tmp_path / "queue.sqlite", posthog)
    assert queue.enqueue(sent) is True
    assert queue.pending() == 1
    queue.start()
    forwarded = posthog.wait_for(1)[0]
    assert queue.wait_until_empty(timeout=30)

    # What the library's own back end sends for the same batch, to a second receiver.
    with Receiver() as direct:
        PostHogBackend(API_KEY, host=direct.url()).send(sent, timeout=5)
        expected = direct.wait_for(1)[0].json()
    body = forwarded.json()
    assert forwarded.path == "/batch/"
    assert set(body) == BODY_KEYS
    assert all(set(event) == EVENT_KEYS for event in body["batch"])
    assert body["api_key"] == API_KEY
    assert body["batch"] == expected["batch"]
    # PostHog deduplicates a resend by these uuids: they come from the idempotency key.
    assert uuids(body) == [event_uuid(sent.idempotency_key, n) for n in range(3)]
    assert queue.sent == 1


def test_a_failing_posthog_gets_the_same_batch_again_until_it_accepts_it(
    tmp_path: Path,
    posthog: PostHogReceiver,
    forwarders: list[Forwarder],
    request: pytest.FixtureRequest,
) -> None:
    posthog.script(Answer(500), Answer(503), Answer(502))
    queue = forwarder(forwarders, tmp_path / "queue.sqlite", posthog)
    queue.enqueue(batch(1))
    queue.enqueue(batch(2))
    queue.start()
    assert queue.wait_until_empty(timeout=30)

    requests = posthog.wait_for(5)
    assert [r.answer.status for r in requests] == [500, 503, 502, 200, 200]
    first_uuids = uuids(requests[0].json())
    # Four tries of the first batch, all the same events; then the second batch.
    assert all(uuids(r.json()) == first_uuids for r in requests[:4])
    assert uuids(requests[4].json()) == [event_uuid(batch(2).idempotency_key, n) for n in range(3)]
    with sqlite3.connect(tmp_path / "queue.sqlite") as connection:
        assert connection.execute("SELECT COUNT(*) FROM queue").fetchone() == (0,)
    record_row(
        request.node.nodeid,
        "PostHog answers 500/503/502, then recovers",
        3,
        "the batch is retried with exponential backoff (bounded) and the same event uuids; "
        "deleted from the queue only once accepted; later batches follow in order",
    )


def test_posthogs_retry_after_is_honoured_before_the_next_try(
    tmp_path: Path, posthog: PostHogReceiver, forwarders: list[Forwarder]
) -> None:
    posthog.script(Answer(429, retry_after="1"))
    queue = forwarder(forwarders, tmp_path / "queue.sqlite", posthog)
    queue.enqueue(batch())
    queue.start()
    assert queue.wait_until_empty(timeout=30)
    first, second = posthog.wait_for(2)[:2]
    assert (first.answer.status, second.answer.status) == (429, 200)
    # The backoff alone would have retried after 0.01 s.
    assert second.arrived - first.arrived >= 0.9


def test_stop_returns_at_once_during_a_long_retry_after_and_keeps_the_batch(
    tmp_path: Path, posthog: PostHogReceiver, forwarders: list[Forwarder]
) -> None:
    posthog.script(Answer(503, retry_after="3600"))
    queue = forwarder(forwarders, tmp_path / "queue.sqlite", posthog)
    queue.enqueue(batch())
    queue.start()
    posthog.wait_for(1)
    with queue._progress:  # the failed attempt is counted: the thread is in its wait
        queue._progress.wait_for(lambda: queue.last_error is not None, timeout=30)
    started = time.monotonic()
    queue.stop(timeout=10)
    assert time.monotonic() - started < 2
    assert queue._thread is None
    assert queue.pending() == 1


def test_a_full_queue_refuses_the_new_batch_and_keeps_the_older_ones(
    tmp_path: Path,
    posthog: PostHogReceiver,
    forwarders: list[Forwarder],
    request: pytest.FixtureRequest,
) -> None:
    queue = forwarder(forwarders, tmp_path / "queue.sqlite", posthog, max_batches=2)
    assert queue.enqueue(batch(1)) is True
    assert queue.enqueue(batch(2)) is True
    assert queue.enqueue(batch(3)) is False
    # A batch already queued is acknowledged, not queued twice, and not refused.
    assert queue.enqueue(batch(1)) is True
    assert (queue.pending(), queue.refused) == (2, 1)

    queue.start()
    assert queue.wait_until_empty(timeout=30)
    keys = [batch(n).idempotency_key for n in (1, 2)]
    assert [uuids(r.json())[0] for r in posthog.wait_for(2)] == [event_uuid(k, 0) for k in keys]
    assert len(posthog.requests) == 2
    # With room again, new batches are queued.
    assert queue.enqueue(batch(4)) is True
    record_row(
        request.node.nodeid,
        "the forwarding queue is full (max_batches)",
        1,
        "the new batch is refused for PostHog (enqueue returns False, counted in `refused`); "
        "queued batches are kept and sent",
        lost="PostHog's copy of the refused batch (the collector's store keeps it)",
    )


def test_batches_queued_before_a_restart_are_sent_by_the_next_forwarder(
    tmp_path: Path, posthog: PostHogReceiver, forwarders: list[Forwarder]
) -> None:
    path = tmp_path / "queue.sqlite"
    before = forwarder(forwarders, path, posthog)
    for number in (1, 2, 3):
        before.enqueue(batch(number))
    del before  # never started: the process "stopped" with three batches queued

    after = forwarder(forwarders, path, posthog)
    assert after.pending() == 3
    after.start()
    assert after.wait_until_empty(timeout=30)
    keys = [batch(n).idempotency_key for n in (1, 2, 3)]
    assert [uuids(r.json())[0] for r in posthog.wait_for(3)] == [event_uuid(k, 0) for k in keys]


CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.collector.test_forward import batch, API_KEY
from typer_telemetry.collector.forward import Forwarder
queue = Forwarder(Path({path!r}), host={host!r}, api_key=API_KEY, send_timeout=600)
queue.enqueue(batch(7))
queue.start()
sys.stdin.read()
"""


def test_a_forwarder_killed_mid_send_resends_the_batch_with_the_same_event_uuids(
    tmp_path: Path,
    posthog: PostHogReceiver,
    forwarders: list[Forwarder],
    request: pytest.FixtureRequest,
) -> None:
    path = tmp_path / "queue.sqlite"
    posthog.hang_all = True  # PostHog reads the request and never answers
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), path=str(path), host=posthog.url)],
        stdin=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        first = posthog.wait_for(1)[0]
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    posthog.hang_all = False

    after = forwarder(forwarders, path, posthog)
    assert after.pending() == 1
    after.start()
    assert after.wait_until_empty(timeout=30)
    resent = posthog.wait_for(2)[1]
    assert uuids(resent.json()) == uuids(first.json())
    assert uuids(first.json()) == [event_uuid(batch(7).idempotency_key, n) for n in range(3)]
    record_row(
        request.node.nodeid,
        "the collector is killed (SIGKILL) while forwarding a batch",
        1,
        "the batch stays queued and is sent again after the restart with the same event "
        "uuids, so PostHog keeps one copy",
    )


def test_a_queue_row_that_is_no_batch_is_dropped_and_the_rest_still_sent(
    tmp_path: Path,
    posthog: PostHogReceiver,
    forwarders: list[Forwarder],
    request: pytest.FixtureRequest,
) -> None:
    path = tmp_path / "queue.sqlite"
    queue = forwarder(forwarders, path, posthog)
    queue.enqueue(batch(1))
    hostile = json.loads(json.dumps(batch(2).to_json()))
    hostile["envelope"]["install_id"] = "<script>"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO queue (idempotency_key, batch) VALUES (?, ?), (?, ?)",
            ("bad-1", "{not json", "bad-2", json.dumps(hostile)),
        )
    queue.enqueue(batch(3))
    queue.start()
    assert queue.wait_until_empty(timeout=30)
    sent = [uuids(r.json())[0] for r in posthog.wait_for(2)]
    assert sent == [event_uuid(batch(n).idempotency_key, 0) for n in (1, 3)]
    assert len(posthog.requests) == 2
    assert queue.unreadable == 2
    record_row(
        request.node.nodeid,
        "the forwarding queue file holds rows that are no valid batch (edited, damaged)",
        2,
        "each such row is dropped and counted, never sent; the valid batches are sent in order",
        lost="the unreadable rows",
    )


def test_a_queue_that_cannot_be_written_refuses_the_batch_without_raising_and_recovers(
    tmp_path: Path,
    posthog: PostHogReceiver,
    forwarders: list[Forwarder],
    request: pytest.FixtureRequest,
    capfd: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "queue.sqlite"
    queue = forwarder(forwarders, path, posthog)
    # The queue file is gone and a folder stands in its place: nothing can open it.
    for leftover in tmp_path.glob("queue.sqlite*"):
        leftover.unlink()
    path.mkdir()
    queue.start()
    with queue._progress:  # the sender fails to read the queue, says so, and keeps running
        queue._progress.wait_for(lambda: queue.last_error is not None, timeout=30)
    assert queue._thread is not None
    assert queue._thread.is_alive()
    assert queue.enqueue(batch(1)) is False
    assert queue.refused == 1
    assert "not queued, the queue cannot be written" in capfd.readouterr().err

    path.rmdir()
    fresh = forwarder(forwarders, path, posthog)  # the operator fixed the disk and restarted
    assert fresh.enqueue(batch(2)) is True
    queue.stop(timeout=10)
    fresh.start()
    assert fresh.wait_until_empty(timeout=30)
    assert uuids(posthog.wait_for(1)[0].json())[0] == event_uuid(batch(2).idempotency_key, 0)
    record_row(
        request.node.nodeid,
        "the forwarding queue file cannot be opened or written (gone, a folder in its place)",
        1,
        "enqueue refuses the batch without raising (counted, said on stderr); the sending "
        "thread keeps running and backs off",
        lost="PostHog's copy of the refused batch (the collector's store keeps it)",
    )


def test_serve_with_two_workers_forwards_every_stored_batch_to_posthog_through_one_queue(
    tmp_path: Path, posthog: PostHogReceiver
) -> None:
    from tests.collector.batches import batch as wire_batch
    from tests.collector.batches import command_record, event_record, install_id, yesterday
    from tests.collector.conftest import Collector

    queue = tmp_path / "queue.sqlite"
    collector = Collector(
        f"sqlite:///{tmp_path / 'telemetry.sqlite'}",
        tmp_path,
        ("--workers", "2", "--forward-posthog", posthog.url, "--posthog-key", API_KEY,
         "--forward-queue", str(queue)),
    ).start()  # fmt: skip
    expected: set[str] = set()
    try:
        for number in range(8):
            records = [command_record(yesterday(), count=1 + number), event_record(yesterday(), {})]
            sent = wire_batch(install_id(), records)
            body = json.dumps(sent).encode()
            headers = {"Content-Type": "application/json"}
            assert collector.post("/v1/batches", body, headers).status == 200
            assert collector.post("/v1/batches", body, headers).status == 200  # a duplicate
            expected |= {event_uuid(sent["idempotency_key"], n) for n in range(2)}
        deadline = time.monotonic() + 60
        received: set[str] = set()
        while received != expected:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{len(received)} of {len(expected)} events reached PostHog"
            arrived = posthog.wait_for(len(posthog.requests) + 1, timeout=remaining)
            received = {uuid for request in arrived for uuid in uuids(request.json())}
            assert received <= expected, "an event PostHog should not have had"
    finally:
        collector.stop()
    with sqlite3.connect(queue) as connection:
        assert connection.execute("SELECT count(*) FROM queue").fetchone()[0] == 0
    connection.close()
    assert "Traceback" not in collector.log.read_text()
