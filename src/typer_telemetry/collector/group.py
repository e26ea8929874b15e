"""Group commit: concurrent ingests of one process written by one writer, in one transaction.

A commit is the dearest part of storing a batch (PostgreSQL waits for its
WAL to reach the disk; SQLite takes the one writer lock of the file), and
under load many requests wait for it at once. So each `Store.ingest` call
joins a queue; the first caller to find no writer at work becomes the writer,
takes what is queued (up to `MAX_GROUP` batches), stores them in one
transaction (each batch in its own savepoint, so one bad batch fails alone)
and commits once. Every caller is answered only after the commit that holds
its batch: nothing is acknowledged before it is on disk. When a group is
done, the writer hands the pen to the first caller still queued, so no caller
writes other callers' groups for long.

The duplicate check and the rate count run inside the group's transaction,
batch after batch, so a duplicate within one group is seen as such and the
rate counts the group's earlier batches; across processes and replicas the
database's own guarantees (the writer lock, advisory locks, the primary key)
hold as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .rows import IngestOutcome, RateLimit, retry_after

if TYPE_CHECKING:
    from .validation import ValidBatch

# Batches written in one transaction at most: bounds one commit's size and its callers' wait.
MAX_GROUP = 64


@dataclass(eq=False)
class Pending:
    """One caller's batch in the queue, and what storing it came to (an outcome or an error)."""

    batch: ValidBatch
    now: float
    limit: RateLimit
    outcome: IngestOutcome | None = None
    error: BaseException | None = None
    lead: bool = False  # handed the pen: this caller writes the next group
    done: threading.Event = field(default_factory=threading.Event)

    def result(self) -> IngestOutcome:
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome


def decide_in_order(
    group: Sequence[Pending], seen: set[str], received: dict[str, list[float]]
) -> list[Pending]:
    """Each batch of a group decided in order, as if stored one by one; the ones to store.

    `seen` holds the keys already stored, `received` the times the group's
    installs had batches stored within the window (both read in the group's
    transaction, under the database's lock). A duplicate, or a batch over its
    install's rate, gets its outcome here; the batches returned are to be
    written, and count for the ones after them.
    """
    stored: list[Pending] = []
    for pending in group:
        batch, now, limit = pending.batch, pending.now, pending.limit
        if batch.idempotency_key in seen:
            pending.outcome = IngestOutcome("duplicate")
            continue
        times = received.setdefault(batch.envelope.install_id, [])
        window = [at for at in times if at > now - limit.window_seconds]
        if len(window) >= limit.batches:
            pending.outcome = IngestOutcome(
                "rate_limited", retry_after=retry_after(min(window), now, limit)
            )
            continue
        seen.add(batch.idempotency_key)
        times.append(now)
        stored.append(pending)
    return stored


def write_together(
    write: Callable[[Sequence[Pending]], None],
    batches: Sequence[ValidBatch],
    now: float,
    limit: RateLimit,
) -> list[IngestOutcome | Exception]:
    """A group given whole (`Store.ingest_many`), written by `write` in one transaction now.

    Each batch's outcome, or the error that failed it alone; an error of the
    transaction itself is raised (no batch of the group is stored).
    """
    group = [Pending(batch, now, limit) for batch in batches]
    write(group)
    results: list[IngestOutcome | Exception] = []
    for pending in group:
        if isinstance(pending.error, Exception):
            results.append(pending.error)
        else:
            results.append(pending.result())
    return results


class GroupCommit:
    """Gathers concurrent `ingest` calls; `write(group)` stores them in one transaction.

    `write` sets each `Pending`'s outcome, or its error for a batch that
    failed alone; if `write` itself raises (the transaction or its commit
    failed), every batch of the group gets that error and none is acknowledged.
    """

    def __init__(
        self, write: Callable[[Sequence[Pending]], None], max_group: int = MAX_GROUP
    ) -> None:
        self._write = write
        self._max_group = max_group
        self._lock = threading.Lock()
        self._queue: list[Pending] = []
        self._writing = False

    def ingest(self, batch: ValidBatch, now: float, limit: RateLimit) -> IngestOutcome:
        mine = Pending(batch, now, limit)
        with self._lock:
            self._queue.append(mine)
            lead = not self._writing
            self._writing = True
        if not lead:
            mine.done.wait()
            if not mine.lead:
                return mine.result()
        # This caller writes the next group (its own batch is in it: the queue is in order).
        with self._lock:
            group = self._queue[: self._max_group]
            del self._queue[: self._max_group]
        try:
            self._write(group)
        except BaseException as error:
            for pending in group:
                pending.outcome, pending.error = None, error
        finally:
            with self._lock:
                if self._queue:
                    self._queue[0].lead = True
                    self._queue[0].done.set()
                else:
                    self._writing = False
            for pending in group:
                if pending is not mine:
                    pending.done.set()
        return mine.result()
