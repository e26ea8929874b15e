"""Forward the batches the collector accepted to PostHog, from a bounded queue on disk.

The collector stores a batch first and answers the client; forwarding is a
copy that must not slow ingest nor depend on PostHog being up. So an
accepted batch goes into a queue of its own (a SQLite file, WAL) and a
background thread sends the oldest one with the library's own
`PostHogBackend`, deleting it only once PostHog accepted it.

Guarantees (docs/collector.md "Forwarding to PostHog"):
- At least once: a batch leaves the queue only after a 2xx; a crash or
  kill -9 between the send and the delete sends it again, and PostHog drops
  the copy because each event's uuid derives from the batch's idempotency
  key. A batch already queued (same key) is not queued twice.
- Bounded: at most `max_batches` wait. When the queue is full the NEW batch
  is refused (`enqueue` returns False, `refused` counts it): the queued ones
  are older and were promised first, and the refused batch is still in the
  collector's own store, so only PostHog's copy of it is missing.
- Polite: after a failure it waits, doubling from `BACKOFF_START_SECONDS` up
  to `BACKOFF_MAX_SECONDS`, and at least as long as PostHog's `Retry-After`
  says; a batch PostHog keeps refusing stays at the head and is retried
  that way.
- Never in the way: `enqueue` never raises (a queue that cannot be written
  refuses the batch, counted, said on stderr) and nothing ends the thread.
- Prompt to stop: every wait is on an Event that `stop()` sets.
- A queue row that is not a valid batch any more (the file edited or
  damaged) is dropped and counted in `unreadable`, never sent.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._checks import SchemaError
from .._records import Batch, Envelope, Record
from ..backends.base import DeliveryError
from ..backends.posthog import PostHogBackend

BACKOFF_START_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 300.0
SEND_TIMEOUT_SECONDS = 30.0
# How long the thread sleeps with an empty queue before it looks again (another
# process may share the queue file); `enqueue` in this process wakes it at once.
IDLE_POLL_SECONDS = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    batch TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
)
"""


class Forwarder:
    """A persistent, bounded queue of batches for PostHog and the thread that empties it."""

    def __init__(
        self,
        queue_path: Path,
        *,
        host: str,
        api_key: str,
        max_batches: int = 10_000,
        backoff_start: float = BACKOFF_START_SECONDS,
        backoff_max: float = BACKOFF_MAX_SECONDS,
        send_timeout: float = SEND_TIMEOUT_SECONDS,
    ) -> None:
        if max_batches < 1:
            raise ValueError("max_batches must be at least 1")
        self.queue_path = Path(queue_path)
        self.backend = PostHogBackend(api_key, host=host)
        self.max_batches = max_batches
        self.backoff_start = backoff_start
        self.backoff_max = backoff_max
        self.send_timeout = send_timeout
        self.refused = 0  # batches refused because the queue was full
        self.unreadable = 0  # queue rows dropped because they were no batch
        self.sent = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        # Notified after every send attempt: what `wait_until_empty` waits on.
        self._progress = threading.Condition()
        self._thread: threading.Thread | None = None
        self.queue_path.parent.mkdir(parents=True, exist_ok=True)
        with self._connection() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection of this call alone: the app's threads and the sender never share one."""
        connection = sqlite3.connect(self.queue_path, timeout=30.0, isolation_level=None)
        try:
            connection.execute("PRAGMA busy_timeout=30000")
            yield connection
        finally:
            connection.close()

    def enqueue(self, batch: Batch) -> bool:
        """Queue an accepted batch; False when it was not queued (refused, counted), never raises.

        Refused when the queue is full, or when the queue file cannot be
        written (disk full, read-only, damaged: said on stderr): the batch is
        stored by the collector already, so the caller's answer to the
        client must not depend on this. The count and the insert are one
        write transaction, so the bound holds for several processes sharing
        the file. A batch whose key is already queued is acknowledged (True)
        and not queued again.
        """
        document = json.dumps(batch.to_json(), sort_keys=True)
        try:
            queued = self._insert(batch.idempotency_key, document)
        except (sqlite3.Error, OSError) as error:
            self._note(f"{batch.idempotency_key} not queued, the queue cannot be written: {error}")
            queued = False
        if not queued:
            self.refused += 1
            return False
        self._wake.set()
        return True

    def _insert(self, key: str, document: str) -> bool:
        with self._connection() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                known = connection.execute(
                    "SELECT 1 FROM queue WHERE idempotency_key = ?", (key,)
                ).fetchone()
                if known is None:
                    (queued,) = connection.execute("SELECT COUNT(*) FROM queue").fetchone()
                    if queued >= self.max_batches:
                        connection.execute("ROLLBACK")
                        return False
                    connection.execute(
                        "INSERT INTO queue (idempotency_key, batch) VALUES (?, ?)", (key, document)
                    )
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return True

    def pending(self) -> int:
        """How many batches wait to be accepted by PostHog."""
        with self._connection() as connection:
            (count,) = connection.execute("SELECT COUNT(*) FROM queue").fetchone()
        return int(count)

    def wait_until_empty(self, timeout: float) -> bool:
        """Wait (at most `timeout` seconds) until no batch is queued: a drain before shutdown.

        True if the queue is empty. Woken by this process's sender after each
        attempt; another process emptying the shared queue is seen at the next
        attempt or at the end of the timeout.
        """
        deadline = time.monotonic() + timeout
        with self._progress:
            while self.pending():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._progress.wait(left)
        return True

    def start(self) -> None:
        """Send queued batches from a background (daemon) thread until `stop()`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="typer-telemetry-forwarder", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread: at once when it waits, after the request in flight when it sends.

        A send in flight ends by `send_timeout` at the latest; the batch then
        stays queued (or is resent after a restart) unless PostHog accepted it.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        """Send the head of the queue until stopped; nothing that fails ends the thread."""
        backoff = self.backoff_start
        while not self._stop.is_set():
            try:
                sent = self._send_head()
            except Exception as error:  # the queue file, or a back end that broke its contract
                self._note(f"{type(error).__name__}: {error}")
                sent = False
            self._notify()
            if sent is None:
                self._wake.wait(IDLE_POLL_SECONDS)
                self._wake.clear()
            elif sent is True:
                backoff = self.backoff_start
            else:
                # Retry-After is a floor: a "0" does not make it hammer PostHog.
                wait = backoff if sent is False else max(sent, backoff)
                backoff = min(backoff * 2, self.backoff_max)
                self._stop.wait(wait)

    def _send_head(self) -> bool | float | None:
        """Send the oldest batch: True if accepted (and deleted), None if none is queued.

        False if it failed (back off), or the seconds PostHog's Retry-After asked for.
        """
        head = self._head()
        if head is None:
            return None
        row_id, batch = head
        try:
            self.backend.send(batch, timeout=self.send_timeout)
        except DeliveryError as error:
            self._note(f"PostHog did not accept {batch.idempotency_key}: {error}")
            self._count_attempt(row_id)
            return False if error.retry_after is None else max(error.retry_after, 0.0)
        self._delete(row_id)
        self.sent += 1
        self.last_error = None
        return True

    def _notify(self) -> None:
        with self._progress:
            self._progress.notify_all()

    def _head(self) -> tuple[int, Batch] | None:
        """The oldest queued batch that reads as one; rows that do not are dropped."""
        with self._connection() as connection:
            while True:
                found = connection.execute(
                    "SELECT id, batch FROM queue ORDER BY id LIMIT 1"
                ).fetchone()
                if found is None:
                    return None
                row_id, document = found
                try:
                    return row_id, _batch_from_json(document)
                except (SchemaError, ValueError, TypeError, KeyError) as error:
                    self.unreadable += 1
                    self._note(f"dropped queue row {row_id}, not a batch: {error}")
                    connection.execute("DELETE FROM queue WHERE id = ?", (row_id,))

    def _delete(self, row_id: int) -> None:
        with self._connection() as connection:
            connection.execute("DELETE FROM queue WHERE id = ?", (row_id,))

    def _count_attempt(self, row_id: int) -> None:
        try:
            with self._connection() as connection:
                connection.execute(
                    "UPDATE queue SET attempts = attempts + 1 WHERE id = ?", (row_id,)
                )
        except sqlite3.Error:
            pass  # only a statistic

    def _note(self, message: str) -> None:
        """Keep the last problem for the operator (and say it on stderr): never raise."""
        self.last_error = message
        print(f"typer-telemetry collector: forwarding: {message}", file=sys.stderr)


def _batch_from_json(document: str) -> Batch:
    values = json.loads(document)
    if not isinstance(values, dict) or not isinstance(values.get("records"), list):
        raise ValueError("no batch object")
    day, key = values["day"], values["idempotency_key"]
    if not isinstance(day, str) or not isinstance(key, str):
        raise ValueError("the batch's day or key is no string")
    envelope = values["envelope"]
    if not isinstance(envelope, dict):
        raise ValueError("the envelope is no object")
    return Batch(day, Envelope(envelope), [Record.from_json(r) for r in values["records"]], key)
