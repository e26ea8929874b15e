"""MockBackend: keeps what the real sender hands it, refuses when its handler says so, thread-safe."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.conftest import in_process_telemetry
from tests.sample_batch import DAY, ENVELOPE, INGESTS, MIGRATIONS, ROOT_FAILURE
from typer_telemetry import Telemetry
from typer_telemetry._records import Batch, Record
from typer_telemetry._store import RollupStore
from typer_telemetry.backends import Backend, DeliveryError, MockBackend

YESTERDAY_NOON = 1_780_000_000.0 - 86400  # any fixed instant: the test moves its clock a day on


def pending(telemetry: Telemetry) -> list[Record]:
    settings = telemetry.settings
    return RollupStore(settings.paths().store_dir, settings.debug).pending(today=settings.today())


def test_it_keeps_batches_and_deletions_and_flattens_records_by_event() -> None:
    backend = MockBackend()
    assert isinstance(backend, Backend)
    first = Batch(DAY, ENVELOPE, [MIGRATIONS, ROOT_FAILURE], "key-1")
    second = Batch("2026-11-24", ENVELOPE, [INGESTS], "key-2")
    backend.send(first, timeout=1)
    backend.send(second, timeout=1)
    backend.request_deletion("an-install-id", timeout=1)
    assert backend.batches == (first, second)
    assert backend.records() == [MIGRATIONS, ROOT_FAILURE, INGESTS]
    assert backend.records("ingest_completed") == [INGESTS]
    assert backend.records("command") == [MIGRATIONS, ROOT_FAILURE]
    assert backend.deletions == ("an-install-id",)
    assert len(backend) == 2
    backend.clear()
    assert (backend.batches, backend.deletions) == ((), ())


def test_a_refused_batch_is_not_kept_and_stays_pending_until_accepted(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    refusing = True

    def receiver(batch: Batch) -> None:
        if refusing:
            raise DeliveryError("the receiver is down")

    backend = MockBackend(receiver)
    telemetry = in_process_telemetry(monkeypatch, home, "mock-tool", None, now=YESTERDAY_NOON)
    telemetry.settings = telemetry.settings.replace(backend=backend)
    event = telemetry.event("job")
    event.record()
    event.record()
    telemetry.settings = telemetry.settings.replace(clock=lambda: YESTERDAY_NOON + 86400)

    report = telemetry.flush()
    assert report.error == "the receiver is down"
    assert backend.batches == ()
    assert [record.count for record in pending(telemetry)] == [2]

    refusing = False
    report = telemetry.flush()
    assert report.error is None
    assert len(report.days_sent) == 1
    ((record,),) = [batch.records for batch in backend.batches]
    assert (record.event, record.count) == ("job", 2)
    assert pending(telemetry) == []


def test_a_refused_deletion_is_not_kept() -> None:
    def refuse(install_id: str) -> None:
        raise DeliveryError("later")

    backend = MockBackend(deletion_handler=refuse)
    with pytest.raises(DeliveryError):
        backend.request_deletion("an-install-id", timeout=1)
    assert backend.deletions == ()


def test_sends_from_many_threads_are_all_kept() -> None:
    backend = MockBackend()
    batches = [Batch(DAY, ENVELOPE, [MIGRATIONS], f"key-{number}") for number in range(400)]
    start = threading.Barrier(8)

    def send(share: list[Batch]) -> None:
        start.wait()
        for batch in share:
            backend.send(batch, timeout=1)
            assert len(backend.records()) >= 1  # reading while others write

    threads = [threading.Thread(target=send, args=(batches[number::8],)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(batch.idempotency_key for batch in backend.batches) == sorted(
        batch.idempotency_key for batch in batches
    )


def test_a_tool_can_use_it_directly() -> None:
    backend = MockBackend()
    telemetry = Telemetry("mytool", version="1", backend=backend)
    assert telemetry.settings.backend is backend
    assert repr(backend) == "MockBackend(batches=0, deletions=0)"
