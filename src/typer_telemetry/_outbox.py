"""The outbox: what must reach the receiver besides the records, kept across runs.

Three small files in the store folder, written only under the send lock:

    deletions.json    install ids whose deletion the receiver has not yet accepted
    sent-ids.json     every install id a batch was ever sent (or attempted) under
    not-before.json   when the receiver last asked (Retry-After) to be left alone until

`telemetry reset` queues a deletion for every id of the ledger (none if
nothing was ever sent); the send loop (`_delivery.py`) sends them first and
forgets each id once its deletion was accepted.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Sequence
from pathlib import Path

from ._checks import is_uuid4
from ._files import locked_file, remove_leftover_temporaries, write_private_file
from ._paths import (
    DELETIONS_NAME,
    NOT_BEFORE_NAME,
    SEND_LOCK_NAME,
    SENT_IDS_NAME,
    ensure_private_dir,
    read_small_file,
)

# The longest wait honoured (as in backends/_http.py); a stored time further
# ahead than this means the clock went back since, and is forgotten.
MAX_WAIT_SECONDS = 24 * 3600
# Both lists hold install ids until the receiver accepted their deletion; an id
# is added only by a reset (or by sending under a new id), so they stay short.
MAX_PENDING_DELETIONS = 64
MAX_SENT_IDS = 64
LOCK_TIMEOUT_SECONDS = 2.0


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


def sent_before_the_ledger(store_dir: Path) -> bool:
    """Whether a version without the ledger may have sent from this store folder.

    Every sender takes `send.lock`, and this version writes the ledger the
    first time it does; a lock file without a ledger is an earlier version's.
    Checked before the lock is taken (taking it creates the file).
    """
    return (store_dir / SEND_LOCK_NAME).exists() and not (store_dir / SENT_IDS_NAME).exists()


def ensure_ledger(store_dir: Path, earlier: bool, current_id: str | None) -> None:
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
    earlier = sent_before_the_ledger(store_dir)
    with locked_file(send_lock(store_dir), timeout=LOCK_TIMEOUT_SECONDS):
        remove_leftovers(store_dir)
        ensure_ledger(store_dir, earlier, retired_id)
        pending = [*read_deletions(store_dir), *read_sent_ids(store_dir)]
        if pending:
            write_deletions(store_dir, pending)
        return read_deletions(store_dir)


def forget_sent_id(store_dir: Path, install_id: str) -> None:
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


def waiting_until(store_dir: Path, now: float) -> float | None:
    """The time the receiver asked to wait for, while it is still ahead of `now`.

    A stored time that has passed does not count; nor does one further ahead
    than any receiver may ask (MAX_WAIT_SECONDS): the clock went back since.
    """
    not_before = read_not_before(store_dir)
    if not_before is None:
        return None
    if math.isfinite(now) and now < not_before <= now + MAX_WAIT_SECONDS:
        return not_before
    return None


def note_retry_after(store_dir: Path, retry_after: object, now: float) -> None:
    """Remember the receiver's Retry-After (seconds) as a time before which nothing is sent."""
    if isinstance(retry_after, (int, float)) and retry_after > 0 and math.isfinite(now):
        with contextlib.suppress(OSError):
            write_not_before(store_dir, now + min(float(retry_after), MAX_WAIT_SECONDS))


def send_lock(store_dir: Path) -> Path:
    ensure_private_dir(store_dir)
    return store_dir / SEND_LOCK_NAME


def remove_leftovers(store_dir: Path) -> None:
    """Delete what writers of the files kept under the send lock left when killed mid-write."""
    for name in (DELETIONS_NAME, NOT_BEFORE_NAME, SENT_IDS_NAME):
        with contextlib.suppress(OSError):
            remove_leftover_temporaries(store_dir / name)
