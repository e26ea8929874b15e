"""How completed days leave the machine: batches, idempotency keys, deletion requests.

Loaded only when something is about to be sent (see `_sender.py` for when).

At most one process per machine and tool sends at a time: the sender holds
an exclusive `flock` on `send.lock`, which the OS releases if the process
dies mid-send. Records leave the store only after the receiver accepted them;
a batch that was accepted but not yet removed when the process died is sent
again, with the same idempotency key, so the receiver can drop the copy.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ._files import (
    ensure_private_dir,
    locked_file,
    read_small_file,
    try_locked_file,
    write_private_file,
)
from ._schema import SCHEMA_VERSION, SchemaError, validate_envelope, validate_rollup_record
from ._version import __version__
from .backends.base import Backend, Batch, DeliveryError

if TYPE_CHECKING:
    from ._telemetry import Telemetry

SEND_LOCK_NAME = "send.lock"
DELETIONS_NAME = "deletions.json"
REQUEST_TIMEOUT_SECONDS = 10.0
MAX_PENDING_DELETIONS = 16
LOCK_TIMEOUT_SECONDS = 2.0


class SendReport(NamedTuple):
    """What one attempt to send achieved."""

    days_sent: tuple[str, ...] = ()
    deletions_sent: tuple[str, ...] = ()
    error: str | None = None
    skipped: str | None = None


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
            "os_release": _platform_token(platform.release() or "unknown"),
            "arch": _platform_token(platform.machine() or "unknown"),
            "install_id": install_id,
        }
    )


def idempotency_key(install_id: str, day: str, records: Sequence[Mapping[str, object]]) -> str:
    """The same install, day and content always give the same key."""
    content = json.dumps([install_id, day, list(records)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(content.encode()).hexdigest()[:32]


# -- pending deletion requests --------------------------------------------------


def read_deletions(store_dir: Path) -> list[str]:
    try:
        values = json.loads(read_small_file(store_dir / DELETIONS_NAME, 64 * 1024))
    except (OSError, ValueError):
        return []
    if not isinstance(values, list):
        return []
    return [value for value in values if isinstance(value, str)][:MAX_PENDING_DELETIONS]


def write_deletions(store_dir: Path, install_ids: Sequence[str]) -> None:
    path = store_dir / DELETIONS_NAME
    if not install_ids:
        path.unlink(missing_ok=True)
        return
    ensure_private_dir(store_dir)
    unique = list(dict.fromkeys(install_ids))[-MAX_PENDING_DELETIONS:]
    write_private_file(path, json.dumps(unique).encode())


def add_pending_deletion(store_dir: Path, install_id: str) -> None:
    """Remember to ask the receiver to delete `install_id`'s data (done by the next send)."""
    with locked_file(_send_lock(store_dir), timeout=LOCK_TIMEOUT_SECONDS):
        write_deletions(store_dir, [*read_deletions(store_dir), install_id])


def _send_lock(store_dir: Path) -> Path:
    ensure_private_dir(store_dir)
    return store_dir / SEND_LOCK_NAME


# -- sending --------------------------------------------------------------------


def send_deletions(store_dir: Path, backend: Backend, *, timeout: float) -> SendReport:
    """Send the pending deletion requests; those accepted are forgotten."""
    deadline = time.monotonic() + timeout
    with try_locked_file(_send_lock(store_dir)) as taken:
        if not taken:
            return SendReport(skipped="another process is sending")
        return _send_deletions_locked(store_dir, backend, deadline)


def _send_deletions_locked(store_dir: Path, backend: Backend, deadline: float) -> SendReport:
    pending = read_deletions(store_dir)
    sent: list[str] = []
    try:
        for install_id in pending:
            backend.request_deletion(install_id, timeout=_remaining(deadline))
            sent.append(install_id)
            write_deletions(store_dir, pending[len(sent) :])
    except (DeliveryError, TimeoutError) as error:
        return SendReport(deletions_sent=tuple(sent), error=str(error))
    return SendReport(deletions_sent=tuple(sent))


def send_pending(
    telemetry: Telemetry, backend: Backend, *, timeout: float, keep_data: bool
) -> SendReport:
    """Send pending deletion requests, then every completed day, oldest first.

    Stops at the first failure: what was not accepted stays pending. With
    `keep_data` (the debug back end, which only prints) nothing is removed.
    """
    deadline = time.monotonic() + timeout
    store = telemetry.store
    try:
        lock = _send_lock(store.directory)
    except OSError as error:
        return SendReport(error=f"cannot use the store folder: {error}")
    with try_locked_file(lock) as taken:
        if not taken:
            return SendReport(skipped="another process is sending")
        deletions = (
            SendReport()
            if keep_data
            else _send_deletions_locked(store.directory, backend, deadline)
        )
        if deletions.error is not None:
            return deletions
        install_id = telemetry.install_id()
        if install_id is None:
            return deletions
        today = telemetry.today()
        days_sent: list[str] = []
        try:
            for day, records in store.completed_days(today=today).items():
                batch = Batch(
                    day=day,
                    envelope=build_envelope(telemetry.name, telemetry.version, install_id),
                    # Checked once more on the way out: nothing outside the schema leaves.
                    records=[validate_rollup_record(record) for record in records],
                    idempotency_key=idempotency_key(install_id, day, records),
                )
                backend.send(batch, timeout=_remaining(deadline))
                if keep_data:
                    continue
                if not store.remove_sent(records, today=today):
                    return deletions._replace(days_sent=tuple(days_sent), error="store locked")
                days_sent.append(day)
        except (DeliveryError, TimeoutError, SchemaError) as error:
            return deletions._replace(days_sent=tuple(days_sent), error=str(error))
        return deletions._replace(days_sent=tuple(days_sent))


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("out of time for sending")
    return min(remaining, REQUEST_TIMEOUT_SECONDS)
