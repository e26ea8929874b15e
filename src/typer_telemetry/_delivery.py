"""How completed days leave the machine: batches, idempotency keys, deletion requests.

Loaded only when something is about to be sent (see `_sender.py` for when).

At most one process per machine and tool sends at a time: the sender holds
an exclusive `flock` on `send.lock`, which the OS releases if the process
dies mid-send. Records leave the store only after the receiver accepted them;
a batch that was accepted but not yet removed when the process died is sent
again, with the same idempotency key, so the receiver can drop the copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import platform
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ._checks import is_uuid4
from ._files import (
    LockUnavailable,
    ensure_private_dir,
    locked_file,
    read_small_file,
    remove_leftover_temporaries,
    try_locked_file,
    write_private_file,
)
from ._schema import (
    SCHEMA_VERSION,
    validate_envelope,
    validate_rollup_record,
)
from ._version import __version__
from .backends.base import Backend, Batch, DeliveryError

if TYPE_CHECKING:
    from ._telemetry import Telemetry

SEND_LOCK_NAME = "send.lock"
DELETIONS_NAME = "deletions.json"
# Every install id a batch was ever sent (or attempted) under, until the receiver
# accepted its deletion: what `telemetry reset` asks the receiver to delete.
SENT_IDS_NAME = "sent-ids.json"
# When the receiver last asked, by Retry-After, to be left alone until: {"not_before": <epoch s>}.
NOT_BEFORE_NAME = "not-before.json"
# The longest wait honoured (as in backends/_http.py); a stored time further
# ahead than this means the clock went back since, and is forgotten.
MAX_WAIT_SECONDS = 24 * 3600
REQUEST_TIMEOUT_SECONDS = 10.0
# Both lists hold install ids until the receiver accepted their deletion; an id
# is added only by a reset (or by sending under a new id), so they stay short.
MAX_PENDING_DELETIONS = 64
MAX_SENT_IDS = 64
LOCK_TIMEOUT_SECONDS = 2.0


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


def build_envelope(tool: str, tool_version: str, install_id: str) -> dict[str, object]:
    return validate_envelope(
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
    install_id: str, day: str, records: Sequence[Mapping[str, object]], folded_through: int
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
        [install_id, day, list(records), folded_through],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(content.encode()).hexdigest()[:32]


# -- pending deletion requests --------------------------------------------------


def _read_install_ids(path: Path) -> list[str]:
    """The install ids listed in one of our JSON files; [] if missing or unreadable.

    Only install ids ever leave in a deletion request: the file may have been edited.
    """
    try:
        values = json.loads(read_small_file(path, 64 * 1024))
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(values, list):
        return []
    return [value for value in values if is_uuid4(value)]


def read_deletions(store_dir: Path) -> list[str]:
    return _read_install_ids(store_dir / DELETIONS_NAME)[:MAX_PENDING_DELETIONS]


def write_deletions(store_dir: Path, install_ids: Sequence[str]) -> None:
    path = store_dir / DELETIONS_NAME
    if not install_ids:
        path.unlink(missing_ok=True)
        return
    ensure_private_dir(store_dir)
    unique = list(dict.fromkeys(install_ids))[-MAX_PENDING_DELETIONS:]
    write_private_file(path, json.dumps(unique).encode())


# -- the ledger of install ids data was sent under ----------------------------------


def read_sent_ids(store_dir: Path) -> list[str]:
    """The install ids a batch was sent (or attempted) under; [] if none, or unreadable."""
    return _read_install_ids(store_dir / SENT_IDS_NAME)[-MAX_SENT_IDS:]


def write_sent_ids(store_dir: Path, install_ids: Sequence[str]) -> None:
    """Write the ledger; an empty one stays as `[]`: it says this version kept the ledger."""
    ensure_private_dir(store_dir)
    unique = list(dict.fromkeys(install_ids))[-MAX_SENT_IDS:]
    write_private_file(store_dir / SENT_IDS_NAME, json.dumps(unique).encode())


def _sent_before_the_ledger(store_dir: Path) -> bool:
    """Whether a version without the ledger may have sent from this store folder.

    Every sender takes `send.lock`, and this version writes the ledger the
    first time it does; a lock file without a ledger is an earlier version's.
    Checked before the lock is taken (taking it creates the file).
    """
    return (store_dir / SEND_LOCK_NAME).exists() and not (store_dir / SENT_IDS_NAME).exists()


def _ensure_ledger(store_dir: Path, earlier: bool, current_id: str | None) -> None:
    """Under the send lock: start the ledger if it is missing (so the lock file never looks
    like an earlier version's again); with `earlier`, holding the id that version used."""
    if not (store_dir / SENT_IDS_NAME).exists():
        write_sent_ids(store_dir, [current_id] if earlier and current_id is not None else [])


def queue_deletions_of_sent_ids(store_dir: Path, retired_id: str | None) -> list[str]:
    """Queue a deletion request for every install id data was sent under (`telemetry reset`).

    The ids come from the ledger, so an id whose config was set aside as
    unreadable is included, and an id nothing was ever sent under is not: a
    reset of a tool that never sent makes no request and no connection. An
    install upgraded from a version without the ledger (see
    `_sent_before_the_ledger`) queues `retired_id`, the id the reset replaced,
    which that version may have sent under. Returns every pending deletion.
    """
    if not store_dir.is_dir():
        return []
    earlier = _sent_before_the_ledger(store_dir)
    with locked_file(_send_lock(store_dir), timeout=LOCK_TIMEOUT_SECONDS):
        _remove_leftovers(store_dir)
        _ensure_ledger(store_dir, earlier, retired_id)
        pending = [*read_deletions(store_dir), *read_sent_ids(store_dir)]
        if pending:
            write_deletions(store_dir, pending)
        return read_deletions(store_dir)


def _forget_sent_id(store_dir: Path, install_id: str) -> None:
    """The receiver accepted the deletion of `install_id`: nothing is left to ask for."""
    sent = read_sent_ids(store_dir)
    if install_id in sent:
        write_sent_ids(store_dir, [value for value in sent if value != install_id])


# -- the receiver's Retry-After ------------------------------------------------------


def read_not_before(store_dir: Path) -> float | None:
    """The stored time (seconds since the epoch) before which nothing is sent, if any."""
    try:
        document = json.loads(read_small_file(store_dir / NOT_BEFORE_NAME, 4096))
    except (OSError, ValueError):
        return None
    value = document.get("not_before") if isinstance(document, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def write_not_before(store_dir: Path, when: float | None) -> None:
    path = store_dir / NOT_BEFORE_NAME
    if when is None:
        path.unlink(missing_ok=True)
        return
    ensure_private_dir(store_dir)
    write_private_file(path, json.dumps({"not_before": when}).encode())


def waiting_until(store_dir: Path, now: float, *, forget: bool = False) -> float | None:
    """The time the receiver asked to wait for, while it is still ahead of `now`.

    A stored time that has passed does not count; nor does one further ahead
    than any receiver may ask (MAX_WAIT_SECONDS): the clock went back since.
    With `forget` (only under the send lock) such a time is deleted.
    """
    not_before = read_not_before(store_dir)
    if not_before is None:
        return None
    if math.isfinite(now) and now < not_before <= now + MAX_WAIT_SECONDS:
        return not_before
    if forget:
        write_not_before(store_dir, None)
    return None


def _note_retry_after(store_dir: Path, error: DeliveryError, now: float) -> None:
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, (int, float)) and retry_after > 0 and math.isfinite(now):
        with contextlib.suppress(OSError):
            write_not_before(store_dir, now + min(float(retry_after), MAX_WAIT_SECONDS))


def _send_lock(store_dir: Path) -> Path:
    ensure_private_dir(store_dir)
    return store_dir / SEND_LOCK_NAME


def _remove_leftovers(store_dir: Path) -> None:
    """Delete what writers of the files kept under the send lock left when killed mid-write."""
    for name in (DELETIONS_NAME, NOT_BEFORE_NAME, SENT_IDS_NAME):
        with contextlib.suppress(OSError):
            remove_leftover_temporaries(store_dir / name)


# -- sending --------------------------------------------------------------------


def send_deletions(
    store_dir: Path, backend: Backend, *, timeout: float, tool: str, keep_data: bool = False
) -> SendReport:
    """Send the pending deletion requests, and nothing else; those accepted are forgotten.

    Made even while telemetry is off: a deletion only asks the receiver to
    forget. With `keep_data` (the debug back end, which only prints) the
    requests stay pending. Never raises: whatever fails is the report's error.
    """
    deadline = time.monotonic() + timeout
    try:
        earlier = _sent_before_the_ledger(store_dir)
        # Waits (within the timeout) for a sender at work, this process's own
        # long-running trigger included: it may be sending these very requests.
        with locked_file(_send_lock(store_dir), timeout=min(timeout, LOCK_TIMEOUT_SECONDS)):
            _remove_leftovers(store_dir)
            _ensure_ledger(store_dir, earlier, None)
            if keep_data:
                for install_id in read_deletions(store_dir):
                    backend.request_deletion(install_id, timeout=_remaining(deadline))
                return SendReport(skipped="debug: the requests were printed, not sent")
            return _send_deletions_locked(store_dir, backend, deadline, tool=tool)
    except LockUnavailable:
        return SendReport(skipped="another process is sending")
    except Exception as error:  # the store folder, a back end's own failure
        return SendReport(error=describe(error))


def _send_deletions_locked(
    store_dir: Path, backend: Backend, deadline: float, *, tool: str, now: float | None = None
) -> SendReport:
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
            _forget_sent_id(store_dir, install_id)
    except Exception as error:  # any back end's failure, custom ones included, is "not sent"
        if now is not None and isinstance(error, DeliveryError):
            _note_retry_after(store_dir, error, now)
        return SendReport(deletions_sent=tuple(sent), error=describe(error))
    return SendReport(deletions_sent=tuple(sent))


def send_pending(
    telemetry: Telemetry, backend: Backend, *, timeout: float, keep_data: bool
) -> SendReport:
    """Send pending deletion requests, then every completed day, oldest first.

    Stops at the first failure: what was not accepted stays pending. With
    `keep_data` (the debug back end, which only prints) nothing is removed.
    Sends nothing while the receiver's last Retry-After (on a 429 or 503)
    has not passed by `telemetry.clock`.
    """
    deadline = time.monotonic() + timeout
    store = telemetry.store
    try:
        earlier = _sent_before_the_ledger(store.directory)
        lock = _send_lock(store.directory)
    except OSError as error:
        return SendReport(error=f"cannot use the store folder: {error}")
    with try_locked_file(lock) as taken:
        if not taken:
            return SendReport(skipped="another process is sending")
        _remove_leftovers(store.directory)
        try:
            _ensure_ledger(store.directory, earlier, telemetry.install_id())
        except OSError as error:
            return SendReport(error=f"cannot write {SENT_IDS_NAME}: {error}")
        now = telemetry.clock()
        not_before = waiting_until(store.directory, now, forget=True)
        if not_before is not None:
            return SendReport(
                skipped=f"the receiver asked for nothing before {utc_time(not_before)}"
            )
        deletions = (
            SendReport()
            if keep_data
            else _send_deletions_locked(
                store.directory, backend, deadline, tool=telemetry.name, now=now
            )
        )
        if deletions.error is not None:
            return deletions
        install_id = telemetry.install_id()
        if install_id is None:
            return deletions
        today = telemetry.today()
        days_sent: list[str] = []
        sent_ids = read_sent_ids(store.directory)

        def send_day(day: str, key: str, records: list[dict[str, object]], noted: bool) -> bool:
            """Send one day's batch; False if the store stayed locked."""
            batch = Batch(
                day=day,
                envelope=build_envelope(telemetry.name, telemetry.version, install_id),
                # Checked once more on the way out: nothing outside the schema leaves.
                records=[validate_rollup_record(record) for record in records],
                idempotency_key=key,
            )
            if not keep_data and install_id not in sent_ids:
                # Before the first batch of an id leaves, so that a reset can
                # always ask for its deletion (a failure here sends nothing).
                sent_ids.append(install_id)
                write_sent_ids(store.directory, sent_ids)
            if not (keep_data or noted) and not store.note_in_flight(
                day, key, records, today=today
            ):
                return False
            backend.send(batch, timeout=_remaining(deadline))
            if keep_data:
                return True
            if not store.remove_sent(records, today=today):
                return False
            if day not in days_sent:  # a day's late records may follow its batch in flight
                days_sent.append(day)
            return True

        locked = "store locked"
        try:
            # A batch noted in flight by a sender that never saw it accepted goes
            # out again first, exactly as it was (see Rollup.in_flight); records
            # of its day that arrived since follow in a batch of their own.
            in_flight = None if keep_data else store.in_flight()
            if in_flight is not None and not send_day(*in_flight, noted=True):
                return deletions._replace(days_sent=tuple(days_sent), error=locked)
            folded_through, completed = store.completed_days(today=today)
            for day, records in completed.items():
                key = idempotency_key(install_id, day, records, folded_through)
                if not send_day(day, key, records, noted=False):
                    return deletions._replace(days_sent=tuple(days_sent), error=locked)
        except Exception as error:  # any back end's failure, custom ones included: stays pending
            if isinstance(error, DeliveryError):
                _note_retry_after(store.directory, error, now)
            return deletions._replace(days_sent=tuple(days_sent), error=describe(error))
        return deletions._replace(days_sent=tuple(days_sent))


def utc_time(timestamp: float) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
    except (OverflowError, ValueError, OSError):  # a clock beyond the platform's dates
        return f"{timestamp!r} seconds since the epoch"


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("out of time for sending")
    return min(remaining, REQUEST_TIMEOUT_SECONDS)
