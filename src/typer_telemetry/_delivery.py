"""How completed days leave the machine: the send loop, batches and their idempotency keys.

Loaded only when something is about to be sent: a long-running invocation's
trigger (`_hook.Trigger`), `telemetry.flush()`, or `telemetry reset`.

At most one process per machine and tool sends at a time: the sender holds
an exclusive `flock` on `send.lock`, which the OS releases if the process
dies mid-send. Records leave the store only after the receiver accepted them;
a batch that was accepted but not yet removed when the process died is sent
again, with the same idempotency key, so the receiver can drop the copy.
What must reach the receiver besides records (deletion requests, the ledger
of ids sent under, its Retry-After) is the outbox's (`_outbox.py`).
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ._files import LockUnavailable, locked_file, try_locked_file
from ._outbox import (
    LOCK_TIMEOUT_SECONDS,
    ensure_ledger,
    forget_sent_id,
    note_retry_after,
    read_deletions,
    read_sent_ids,
    remove_leftovers,
    send_lock,
    sent_before_the_ledger,
    waiting_until,
    write_deletions,
    write_not_before,
    write_sent_ids,
)
from ._records import Batch, Envelope, Record
from ._schema import SCHEMA_VERSION, check_record
from ._store import InFlight, RollupStore
from ._version import __version__
from .backends.base import DeliveryError

if TYPE_CHECKING:
    from ._settings import Settings
    from .backends.base import Backend

REQUEST_TIMEOUT_SECONDS = 10.0


class SendReport(NamedTuple):
    """What one attempt to send achieved."""

    days_sent: tuple[str, ...] = ()
    deletions_sent: tuple[str, ...] = ()
    error: str | None = None
    skipped: str | None = None


def describe(error: BaseException) -> str:
    """What a failed send or deletion says in its report: a DeliveryError's own message,
    or any other exception's class and message (a custom back end's, a file system's)."""
    try:
        message = str(error)
    except Exception:  # a custom exception whose message itself fails
        message = "(its message cannot be shown)"
    if isinstance(error, (DeliveryError, TimeoutError)):
        return message
    return f"{type(error).__name__}: {message}"


# -- where data goes ----------------------------------------------------------------


def destination(settings: Settings) -> Backend | None:
    """Where data would go now: the endpoint variable, the author's back end, or endpoint.

    Under `<NAME>_TELEMETRY_DEBUG` payloads are printed instead of sent.
    """
    if settings.debugging():
        from .backends.debug import DebugBackend

        return DebugBackend(f"{settings.name} telemetry")
    override = settings.endpoint_override()
    if override or (settings.backend is None and settings.endpoint):
        from .backends.http import HTTPBackend

        try:
            return HTTPBackend(override or settings.endpoint or "")
        except ValueError as error:
            settings.debug(str(error))
            return None
    backend: Backend | None = settings.backend
    return backend


# -- what a batch carries ------------------------------------------------------------


def os_release_version(release: str) -> str:
    """The leading numeric version of an OS release: at most three numbers, else "unknown".

    `platform.release()` on Linux is the full kernel release, whose suffixes
    (`-18-amd64`, `-microsoft-standard-WSL2`, a custom build's own name) can
    tell machines apart; only the version numbers are sent (`6.1.0`).
    """
    found = re.search(r"[0-9]{1,9}(?:\.[0-9]{1,9}){0,2}", release)
    return found.group() if found else "unknown"


def _platform_token(value: str) -> str:
    """Fit a platform string into the schema's token pattern (no spaces, no host names)."""
    token = re.sub(r"[^A-Za-z0-9_.+-]", "_", value.strip())[:64]
    return token if token and token[0].isalnum() else f"v{token}"[:64]


def build_envelope(tool: str, tool_version: str, install_id: str) -> Envelope:
    return Envelope(
        {
            "schema_version": SCHEMA_VERSION,
            "tool": tool,
            "tool_version": tool_version,
            "library_version": __version__,
            "python_version": _platform_token(platform.python_version()),
            "os": _platform_token(platform.system() or "unknown"),
            "os_release": os_release_version(platform.release()),
            "arch": _platform_token(platform.machine() or "unknown"),
            "install_id": install_id,
        }
    )


def idempotency_key(
    install_id: str, day: str, records: Sequence[Record], folded_through: int
) -> str:
    """The batch's key, derived from the install id, the day, its records and the store's state.

    The same pending data always gives the same key, so a receiver drops a
    batch it already accepted when the answer was lost (a batch noted in
    flight goes out again under its noted key in any case). The content alone
    is not enough: when more of an already sent day arrives (the clock went
    back to it), its batch can hold exactly the counts of the first, and a
    receiver would drop it as a copy; those records came through a later
    segment, so `folded_through` (the store's last folded segment) tells the
    two apart.
    """
    content = json.dumps(
        [install_id, day, [record.to_json() for record in records], folded_through],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(content.encode()).hexdigest()[:32]


# -- sending ----------------------------------------------------------------------


def flush(settings: Settings, *, timeout: float) -> SendReport:
    """Send what is pending, if telemetry is on; never raises, whatever a back end does.

    Under `<NAME>_TELEMETRY_DEBUG` the batches are printed (`show_pending`)
    and nothing is sent or removed.
    """
    try:
        from ._config import current_decision

        decision = current_decision(settings)
        if not decision.enabled:
            report = SendReport(skipped=decision.reason)
        else:
            backend = destination(settings)
            if backend is None:
                report = SendReport(skipped="no endpoint or back end is configured")
            elif settings.debugging():
                report = show_pending(settings, backend)
            else:
                report = send_pending(settings, backend, timeout=timeout)
    except Exception as error:  # the library's own failure must never reach the tool
        report = SendReport(error=describe(error))
    settings.debug(f"send report: {report}")
    return report


def show_pending(settings: Settings, backend: Backend) -> SendReport:
    """Hand every completed day's batch to the debug back end, which prints it; remove nothing."""
    from ._config import read_config

    paths = settings.paths()
    install_id = read_config(paths.config_file).install_id
    if install_id is None:
        return SendReport(skipped="debug: nothing was recorded yet")
    store = RollupStore(paths.store_dir, settings.debug)
    folded_through, completed = store.completed_days(today=settings.today())
    envelope = build_envelope(settings.name, settings.version, install_id)
    for day, records in completed.items():
        key = idempotency_key(install_id, day, records, folded_through)
        backend.send(Batch(day, envelope, records, key), timeout=REQUEST_TIMEOUT_SECONDS)
    for install_id in read_deletions(paths.store_dir):
        backend.request_deletion(install_id, timeout=REQUEST_TIMEOUT_SECONDS)
    return SendReport(skipped="debug: the batches were printed, not sent")


def send_pending(settings: Settings, backend: Backend, *, timeout: float) -> SendReport:
    """Send pending deletion requests, then every completed day, oldest first.

    Stops at the first failure: what was not accepted stays pending. Sends
    nothing while the receiver's last Retry-After (on a 429 or 503) has not
    passed by the settings' clock.
    """
    from ._config import read_config

    deadline = time.monotonic() + timeout
    paths = settings.paths()
    store = RollupStore(paths.store_dir, settings.debug)
    directory = store.directory
    try:
        earlier = sent_before_the_ledger(directory)
        lock = send_lock(directory)
    except OSError as error:
        return SendReport(error=f"cannot use the store folder: {error}")
    with try_locked_file(lock) as taken:
        if not taken:
            return SendReport(skipped="another process is sending")
        remove_leftovers(directory)
        install_id = read_config(paths.config_file).install_id
        try:
            ensure_ledger(directory, earlier, install_id)
        except OSError as error:
            return SendReport(error=f"cannot write the ledger of sent ids: {error}")
        now = settings.clock()
        not_before = waiting_until(directory, now)
        if not_before is not None:
            return SendReport(
                skipped=f"the receiver asked for nothing before {utc_time(not_before)}"
            )
        write_not_before(directory, None)  # one that has passed, or a clock that went back
        deletions = _send_deletions_locked(directory, backend, deadline, settings.name, now)
        if deletions.error is not None or install_id is None:
            return deletions
        sender = _DaySender(settings, store, backend, install_id, deadline)
        locked = "store locked"
        try:
            # A batch noted in flight by a sender that never saw it accepted goes
            # out again first, exactly as it was (see `_store.InFlight`); records
            # of its day that arrived since follow in a batch of their own.
            in_flight = store.in_flight()
            if in_flight is not None and not sender.send(in_flight):
                return deletions._replace(days_sent=sender.days(), error=locked)
            folded_through, completed = store.completed_days(today=sender.today)
            for day, records in completed.items():
                key = idempotency_key(install_id, day, records, folded_through)
                if not sender.note_and_send(InFlight(day, key, records)):
                    return deletions._replace(days_sent=sender.days(), error=locked)
        except Exception as error:  # any back end's failure, custom ones included: stays pending
            if isinstance(error, DeliveryError):
                note_retry_after(directory, error.retry_after, now)
            return deletions._replace(days_sent=sender.days(), error=describe(error))
        return deletions._replace(days_sent=sender.days())


class _DaySender:
    """Sends one day's batch at a time under the send lock, and takes it out once accepted."""

    def __init__(
        self,
        settings: Settings,
        store: RollupStore,
        backend: Backend,
        install_id: str,
        deadline: float,
    ) -> None:
        self.store = store
        self.backend = backend
        self.install_id = install_id
        self.deadline = deadline
        self.today = settings.today()
        self.envelope = build_envelope(settings.name, settings.version, install_id)
        self.sent_ids = read_sent_ids(store.directory)
        self._days_sent: list[str] = []

    def days(self) -> tuple[str, ...]:
        return tuple(self._days_sent)

    def _enter_ledger(self) -> None:
        """Before the first batch of an id leaves, so that a reset can always ask for its
        deletion (a failure here sends nothing)."""
        if self.install_id not in self.sent_ids:
            self.sent_ids.append(self.install_id)
            write_sent_ids(self.store.directory, self.sent_ids)

    def note_and_send(self, batch: InFlight) -> bool:
        """Note a new batch in flight, then send it; False if the store stayed locked."""
        self._enter_ledger()
        if not self.store.note_in_flight(batch, today=self.today):
            return False
        return self.send(batch)

    def send(self, batch: InFlight) -> bool:
        """Send a batch noted in flight, and take it out once accepted; False if locked.

        A batch noted by a send whose answer never came goes out exactly as
        it was noted, under its key.
        """
        self._enter_ledger()
        for record in batch.records:
            # Checked once more on the way out: nothing outside the schema leaves.
            check_record(record.to_json())
        self.backend.send(
            Batch(batch.day, self.envelope, batch.records, batch.idempotency_key),
            timeout=_remaining(self.deadline),
        )
        if not self.store.remove_sent(batch.records, today=self.today):
            return False
        if batch.day not in self._days_sent:  # a day's late records may follow its batch in flight
            self._days_sent.append(batch.day)
        return True


def send_deletions(settings: Settings, backend: Backend, *, timeout: float) -> SendReport:
    """Send the pending deletion requests, and nothing else; those accepted are forgotten.

    Made even while telemetry is off: a deletion only asks the receiver to
    forget. Under `<NAME>_TELEMETRY_DEBUG` (the debug back end, which only
    prints) the requests are printed and stay pending. Never raises:
    whatever fails is the report's error.
    """
    deadline = time.monotonic() + timeout
    directory = settings.paths().store_dir
    try:
        if not directory.is_dir():
            return SendReport()
        earlier = sent_before_the_ledger(directory)
        # Waits (within the timeout) for a sender at work, this process's own
        # long-running trigger included: it may be sending these very requests.
        with locked_file(send_lock(directory), timeout=min(timeout, LOCK_TIMEOUT_SECONDS)):
            remove_leftovers(directory)
            ensure_ledger(directory, earlier, None)
            if settings.debugging():
                for install_id in read_deletions(directory):
                    backend.request_deletion(install_id, timeout=_remaining(deadline))
                return SendReport(skipped="debug: the requests were printed, not sent")
            return _send_deletions_locked(directory, backend, deadline, settings.name, None)
    except LockUnavailable:
        return SendReport(skipped="another process is sending")
    except Exception as error:  # the store folder, a back end's own failure
        return SendReport(error=describe(error))


def _send_deletions_locked(
    store_dir: Path, backend: Backend, deadline: float, tool: str, now: float | None
) -> SendReport:
    """Under the send lock: each pending deletion, oldest first, until one fails.

    `now` (the settings' clock) is given when a Retry-After should be noted.
    """
    pending = read_deletions(store_dir)
    sent: list[str] = []
    if not pending:
        return SendReport()
    try:
        adopt = getattr(backend, "adopt_tool_name", None)  # OTLP names the tool in deletions
        if callable(adopt):
            adopt(tool)
        for install_id in pending:
            backend.request_deletion(install_id, timeout=_remaining(deadline))
            sent.append(install_id)
            write_deletions(store_dir, pending[len(sent) :])
            forget_sent_id(store_dir, install_id)
    except Exception as error:  # any back end's failure, custom ones included, is "not sent"
        if now is not None and isinstance(error, DeliveryError):
            note_retry_after(store_dir, error.retry_after, now)
        return SendReport(deletions_sent=tuple(sent), error=describe(error))
    return SendReport(deletions_sent=tuple(sent))


def utc_time(timestamp: float) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
    except (OverflowError, ValueError, OSError):  # a clock beyond the platform's dates
        return f"{timestamp!r} seconds since the epoch"


def _remaining(deadline: float) -> float:
    """The time the next call of a back end has; raises once none is left, or the tool exits."""
    from . import _exiting

    if _exiting.exiting:
        raise DeliveryError("the tool exited first")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("out of time for sending")
    return min(remaining, REQUEST_TIMEOUT_SECONDS)
