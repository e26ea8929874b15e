"""A back end that keeps what it is sent, in memory: for the tool author's tests.

    backend = MockBackend()
    telemetry = Telemetry("mytool", version="1.0", backend=backend)
    ...
    (batch,) = backend.batches

It stands where a receiver would, as httpx's `MockTransport` stands where a
server would: the sender, its batching, idempotency keys and bookkeeping all
run for real, and only the network is left out. A `handler` lets a test play
a receiver that refuses (raise `DeliveryError`): the batch is then not kept,
and stays pending in the store exactly as after a real refusal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .base import Batch, DeliveryError, Record

__all__ = ["MockBackend"]


class MockBackend:
    """Keeps every accepted batch and every install id whose deletion was requested.

    Thread-safe: in a long-running run batches are sent from a background
    thread while the test reads them. `handler(batch)` is called before a
    batch is kept; it may raise `DeliveryError` (or anything else, as a
    custom back end might) to refuse it. `deletion_handler(install_id)`
    does the same for deletion requests.
    """

    __slots__ = ("_batches", "_deletions", "_lock", "deletion_handler", "handler")

    def __init__(
        self,
        handler: Callable[[Batch], object] | None = None,
        *,
        deletion_handler: Callable[[str], object] | None = None,
    ) -> None:
        self.handler = handler
        self.deletion_handler = deletion_handler
        # A condition, so that a test can wait for a send from another thread or process.
        self._lock = threading.Condition()
        self._batches: list[Batch] = []
        self._deletions: list[str] = []

    # -- the Backend protocol ---------------------------------------------------

    def send(self, batch: Batch, *, timeout: float) -> None:
        """Accept the batch (keep it) unless the handler refuses it."""
        if not isinstance(batch, Batch):
            raise DeliveryError(f"not a Batch: {type(batch).__name__}")
        if self.handler is not None:
            self.handler(batch)
        with self._lock:
            self._batches.append(batch)
            self._lock.notify_all()

    def request_deletion(self, install_id: str, *, timeout: float) -> None:
        """Accept the deletion request (keep the id) unless the deletion handler refuses it."""
        if self.deletion_handler is not None:
            self.deletion_handler(install_id)
        with self._lock:
            self._deletions.append(install_id)

    # -- what a test reads --------------------------------------------------------

    @property
    def batches(self) -> tuple[Batch, ...]:
        """Every accepted batch, in the order they arrived (a snapshot)."""
        with self._lock:
            return tuple(self._batches)

    @property
    def deletions(self) -> tuple[str, ...]:
        """Every install id whose deletion was requested and accepted, in order."""
        with self._lock:
            return tuple(self._deletions)

    def wait_for(self, count: int = 1, timeout: float = 30.0) -> tuple[Batch, ...]:
        """Wait until at least `count` batches were accepted (a send on another thread); all of them.

        Raises TimeoutError after `timeout` seconds: the send never came.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._batches) >= count, timeout):
                raise TimeoutError(
                    f"{len(self._batches)} of {count} batches arrived within {timeout} s"
                )
            return tuple(self._batches)

    def records(self, event: str | None = None) -> list[Record]:
        """The records of every accepted batch, flattened; only `event`'s if given."""
        return [
            record
            for batch in self.batches
            for record in batch.records
            if event is None or record.event == event
        ]

    def clear(self) -> None:
        """Forget what was kept (the back end stays in use)."""
        with self._lock:
            self._batches.clear()
            self._deletions.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._batches)

    def __repr__(self) -> str:
        with self._lock:
            return f"MockBackend(batches={len(self._batches)}, deletions={len(self._deletions)})"
