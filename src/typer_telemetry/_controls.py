"""What the user's commands change: enable, disable, reset, and the deletions a reset asks for.

The `telemetry` commands (`_cli.py`) and the facade's methods both call
these functions with the settings; they print nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from ._config import (
    Config,
    ConfigUnwritable,
    DisableIncomplete,
    current_decision,
    decision_for,
    mint_install_id,
    update_config,
    with_identity,
)
from ._store import RollupStore

if TYPE_CHECKING:
    from ._consent import Decision
    from ._delivery import SendReport
    from ._settings import Settings


def decision(settings: Settings) -> Decision:
    """Whether telemetry is on for this process, and which row of the consent table decided."""
    return current_decision(settings)


def enable(settings: Settings) -> Decision:
    """Store the choice "on"; the returned decision says whether an override wins."""
    paths = settings.paths()
    config = update_config(
        paths,
        settings.name,
        lambda current: with_identity(current).replace(choice="enabled"),
        command=settings.group_command(),
    )
    return decision_for(settings, config, paths)


def disable(settings: Settings) -> Decision:
    """Delete all pending data at once, then store the choice "off".

    The data goes first: a choice that cannot be stored (a read-only or
    foreign config folder, a full disk) must not keep pending data on the
    way out. Raises DisableIncomplete (a ConfigUnwritable) when either part
    failed, saying which and why; `decision()` then tells whether telemetry
    is off nonetheless.
    """
    paths = settings.paths()
    data_problem = RollupStore(paths.store_dir, settings.debug).clear()
    try:
        config = update_config(
            paths,
            settings.name,
            lambda current: current.replace(choice="disabled"),
            command=settings.group_command(),
        )
    except ConfigUnwritable as error:
        raise DisableIncomplete(data_problem, str(error)) from error
    if data_problem is not None:
        raise DisableIncomplete(data_problem, None)
    return decision_for(settings, config, paths)


class Reset(NamedTuple):
    """What `reset` did: the install id replaced (None if there was none), the new one,
    and every deletion request now pending (those this reset queued included)."""

    old_id: str | None
    new_id: str
    pending_deletions: tuple[str, ...]

    @property
    def ids(self) -> tuple[str | None, str]:
        return self.old_id, self.new_id


def reset(settings: Settings) -> Reset:
    """Delete local data and mint a new install id.

    A deletion is queued for every install id data was ever sent under (the
    ledger `sent-ids.json`: an id whose config was set aside as unreadable
    included), and for none if nothing was ever sent. The requests are made
    by `request_deletions`, or left pending for a later long-running run.
    Raises ConfigUnwritable only when the new id cannot be stored; a
    deletion that cannot be queued is explained under debug.
    """
    paths = settings.paths()
    old_id: str | None = None

    def change(current: Config) -> Config:
        nonlocal old_id
        old_id = current.install_id
        # A new salt too: the new id's project ids must not match the old id's.
        return Config(
            current.choice,
            mint_install_id(),
            current.notice_shown,
            current.extra,
            current.unsafe,
            project_salt=None,
        )

    config = update_config(paths, settings.name, change, command=settings.group_command())
    RollupStore(paths.store_dir, settings.debug).clear()
    queued: list[str] = []
    try:
        from ._outbox import queue_deletions_of_sent_ids

        queued = queue_deletions_of_sent_ids(paths.store_dir, old_id)
    except Exception as error:  # the local part is done; the queue is best effort
        settings.debug(f"could not queue the deletion requests: {error!r}")
    assert config.install_id is not None  # update_config kept the id `change` minted
    return Reset(old_id, config.install_id, tuple(queued))


def request_deletions(settings: Settings, *, timeout: float) -> SendReport:
    """Send pending deletion requests now (`telemetry reset` does, with a short timeout).

    A deletion request is made even while telemetry is off: it only asks
    the receiver to forget old install ids, and nothing else is sent.
    Never raises: what failed is the report's `error` (and a debug line).
    """
    from ._delivery import SendReport, describe, destination, send_deletions

    try:
        backend = destination(settings)
        if backend is None:
            report = SendReport(skipped="no endpoint or back end is configured")
        else:
            report = send_deletions(settings, backend, timeout=timeout)
    except Exception as error:
        report = SendReport(error=describe(error))
    settings.debug(f"deletion report: {report}")
    return report


def pending_deletions(settings: Settings) -> list[str]:
    """The install ids whose deletion the receiver has not yet accepted."""
    from ._outbox import read_deletions

    try:
        return read_deletions(settings.paths().store_dir)
    except Exception as error:  # status and reset must work whatever the folder holds
        settings.debug(f"cannot read pending deletions: {error!r}")
        return []


def send_not_before(settings: Settings) -> str | None:
    """Until when (UTC, ISO 8601) nothing is sent: the receiver's last Retry-After."""
    from ._delivery import utc_time
    from ._outbox import waiting_until

    try:
        not_before = waiting_until(settings.paths().store_dir, settings.clock())
    except OSError:
        return None
    return None if not_before is None else utc_time(not_before)
