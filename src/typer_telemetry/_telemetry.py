"""The Telemetry facade: the tool author's settings, and the wiring between the parts."""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from ._consent import Decision, decide, decided_by_environment, env_prefix, is_set
from ._hook import TELEMETRY_GROUP_NAME, instrumented_group_class, mountable_app
from ._sender import LONG_RUNNING_ATTRIBUTE, Trigger, sending_possible

# The modules for files, the config, the checks and the journal load when first
# needed: a run with telemetry switched off by the environment never loads them,
# and a recorded run never loads the schema's tables, the store or a back end.
if TYPE_CHECKING:
    from ._config import Config
    from ._consent import Policy
    from ._delivery import SendReport
    from ._files import Paths
    from ._store import RollupStore
    from .backends.base import Backend

if TYPE_CHECKING:  # type variables cost an import-time call each; only the checker needs them
    from typing import ParamSpec, TypeVar

    TyperApp = TypeVar("TyperApp", bound=typer.Typer)
    P = ParamSpec("P")
    R = TypeVar("R")


# What `utc_day` says for a clock the platform cannot turn into a date. It is
# no schema day, so nothing is recorded, pruned or sent until the clock is sane.
UNUSABLE_DAY = "0000-00-00"


def utc_day(timestamp: float) -> str:
    try:
        return time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    except (OverflowError, ValueError, OSError):
        return UNUSABLE_DAY


class Telemetry:
    """Anonymous usage telemetry for one Typer tool.

    >>> telemetry = Telemetry("mytool", version="1.4.0", endpoint="https://t.example.com/v1")
    >>> telemetry.instrument(app)  # doctest: +SKIP
    """

    def __init__(
        self,
        name: str,
        *,
        version: str,
        endpoint: str | None = None,
        consent: Policy = "opt-out",
        long_running_after: float = 2.0,
        backend: Backend | None = None,
    ) -> None:
        from ._checks import check_endpoint, is_tool_name, is_version

        if not is_tool_name(name):
            raise ValueError(
                f"tool name {name!r} must be 1 to 64 characters of letters, digits, '.', '_', '-'"
            )
        if not is_version(version):
            raise ValueError(
                f"version {version!r} must be a version string of at most 64 characters"
            )
        if consent not in ("opt-out", "opt-in"):
            raise ValueError("consent must be 'opt-out' or 'opt-in'")
        if not long_running_after > 0:
            raise ValueError("long_running_after must be a positive number of seconds")
        self.name = name
        self.version = version
        self.consent: Policy = consent
        self.long_running_after = float(long_running_after)
        self.env_prefix = env_prefix(name)
        # The name the `telemetry` group is mounted under; every message that
        # tells the user what to type says `user_command(...)`.
        self.group_name = TELEMETRY_GROUP_NAME
        if endpoint is not None:
            check_endpoint(endpoint)  # a wrong endpoint shows on the author's first run
        if backend is not None and not (
            callable(getattr(backend, "send", None))
            and callable(getattr(backend, "request_deletion", None))
        ):
            raise TypeError("backend must have send(batch, *, timeout) and request_deletion(...)")
        self._endpoint = endpoint
        self._backend = backend
        self._paths: Paths | None = None
        self._app: typer.Typer | None = None
        self._host: typer.Typer | None = None
        # Wall clock (seconds since the epoch) that decides the UTC day; tests may replace it.
        self.clock: Callable[[], float] = time.time

    # -- settings -----------------------------------------------------------

    @property
    def paths(self) -> Paths:
        if self._paths is None:
            from ._files import Paths

            self._paths = Paths.for_tool(self.name)
        return self._paths

    @property
    def endpoint(self) -> str | None:
        """The endpoint in force: `<NAME>_TELEMETRY_ENDPOINT` overrides the author's."""
        return os.environ.get(f"{self.env_prefix}_TELEMETRY_ENDPOINT") or self._endpoint

    def destination(self) -> Backend | None:
        """Where data would go now: the endpoint variable, the author's back end, or endpoint.

        Under `<NAME>_TELEMETRY_DEBUG` payloads are printed instead of sent.
        """
        if self.debugging:
            from .backends.debug import DebugBackend

            return DebugBackend(f"{self.name} telemetry")
        override = os.environ.get(f"{self.env_prefix}_TELEMETRY_ENDPOINT")
        if override or (self._backend is None and self._endpoint):
            from .backends.http import HTTPBackend

            try:
                return HTTPBackend(override or self._endpoint or "")
            except ValueError as error:
                self.debug(str(error))
                return None
        return self._backend

    def _has_destination(self) -> bool:
        return bool(
            self._backend is not None
            or self._endpoint
            or os.environ.get(f"{self.env_prefix}_TELEMETRY_ENDPOINT")
        )

    def user_command(self, subcommand: str) -> str:
        """What the user types for one of the group's commands: `mytool telemetry disable`."""
        return f"{self.name} {self.group_name} {subcommand}"

    @property
    def debugging(self) -> bool:
        return is_set(os.environ.get(f"{self.env_prefix}_TELEMETRY_DEBUG"))

    @property
    def store(self) -> RollupStore:
        from ._store import RollupStore

        return RollupStore(self.paths.store_dir, self.debug)

    def today(self) -> str:
        return utc_day(self.clock())

    def debug(self, message: str) -> None:
        """Explain a decision or a swallowed error on stderr, under `<NAME>_TELEMETRY_DEBUG`."""
        if self.debugging:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(f"[{self.name} telemetry] {message}\n")

    # -- wiring into the tool -----------------------------------------------

    @property
    def app(self) -> typer.Typer:
        """The ready-made `telemetry status|enable|disable|reset` Typer app."""
        if self._app is None:
            self._app = mountable_app(self)
        return self._app

    def instrument(self, app: TyperApp) -> TyperApp:
        """Mount `telemetry ...` on `app` and record every invocation of its commands."""
        if self._host is not None:
            raise RuntimeError("this Telemetry object already instruments an app")
        from typer.core import TyperGroup
        from typer.models import DefaultPlaceholder

        base = app.info.cls
        if isinstance(base, DefaultPlaceholder):
            base = base.value
        app.info.cls = instrumented_group_class(base or TyperGroup, self, self)
        app.add_typer(self.app, name=TELEMETRY_GROUP_NAME)
        self._host = app
        return app

    def single_command(self, argv: list[str]) -> Any | None:
        """The Click command Typer would build for a one-command app, else None.

        Mounting `telemetry` turns a one-command app into a group; for every
        command line but `telemetry ...` the hook runs the command exactly as
        Typer would have without the mount.
        """
        app = self._host
        if app is None or argv[:1] == [TELEMETRY_GROUP_NAME]:
            return None
        others = [group for group in app.registered_groups if group.typer_instance is not self._app]
        # The same test Typer's get_command makes (its placeholders are falsy).
        if (
            app.registered_callback
            or app.info.callback
            or others
            or len(app.registered_commands) != 1
        ):
            return None
        shadow = copy.copy(app)
        shadow.registered_groups = others
        return typer.main.get_command(shadow)

    def long_running(self, command: Callable[P, R]) -> Callable[P, R]:
        """Mark a command as long-running from its start: it sends pending days at once.

        Use it on commands that are known to take a while (a server, a sync,
        a build): pending completed days then go out in the background as
        soon as the command starts, instead of after `long_running_after`.
        """
        setattr(command, LONG_RUNNING_ATTRIBUTE, True)
        return command

    def start_trigger(self) -> Trigger | None:
        """Called by the hook as an invocation starts; cheap when nothing could be sent."""
        if not sending_possible(os.environ, self.env_prefix, self._has_destination()):
            return None
        return Trigger(self, self.long_running_after)

    # -- sending --------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> SendReport:
        """Send pending completed days now, waiting at most `timeout` seconds (servers, daemons)."""
        return self.send_now(timeout=timeout)

    def send_now(self, *, timeout: float) -> SendReport:
        from ._delivery import SendReport, send_pending

        decision = self.decide()
        if not decision.enabled:
            return SendReport(skipped=decision.reason)
        backend = self.destination()
        if backend is None:
            return SendReport(skipped="no endpoint or back end is configured")
        report = send_pending(self, backend, timeout=timeout, keep_data=self.debugging)
        self.debug(f"send report: {report}")
        return report

    def install_id(self) -> str | None:
        from ._config import read_config

        return read_config(self.paths.config_file).install_id

    # -- consent ------------------------------------------------------------

    def decide(self, config: Config | None = None) -> Decision:
        """Whether telemetry is on for this process, and which source decided."""
        if config is None:
            from ._config import read_config

            config = read_config(self.paths.config_file)
        return decide(self.env_prefix, os.environ, config.choice, self.consent)

    # -- recording (called by the hook) -------------------------------------

    def record_invocation(
        self,
        command: str,
        outcome: str,
        error_class: str,
        flags: tuple[str, ...],
        duration_ms: float,
    ) -> None:
        # An opt-out in the environment decides before any file is looked at.
        by_environment = decided_by_environment(self.env_prefix, os.environ)
        if by_environment is not None and not by_environment.enabled:
            self.debug(f"not recording: {by_environment.reason}")
            return
        from ._checks import validate_observation
        from ._config import read_config
        from ._journal import Observation, append

        config = read_config(self.paths.config_file)
        decision = self.decide(config)
        if not decision.enabled:
            self.debug(f"not recording: {decision.reason}")
            return
        if config.install_id is None or not config.notice_shown:
            config = self._claim_identity()
            decision = self.decide(config)
            if not decision.enabled:
                return
        day = self.today()
        validate_observation(day, command, outcome, error_class, flags, duration_ms)
        observation = Observation(day, command, outcome, error_class, flags, duration_ms)
        append(self.paths.store_dir, observation, today=day, debug=self.debug)
        self.debug(f"recorded {observation}")

    def _claim_identity(self) -> Config:
        """Mint the install id, show the notice if no run has, and mark it shown.

        Raises ConfigUnwritable when the folder or lock cannot be made: then
        the run records nothing (fail closed), rather than print the notice
        forever. The notice is printed under the config lock (one process of
        many simultaneous first runs prints it) and before the file says
        "shown": a run killed between the two shows it again next time, so
        the user is told at least once before anything is recorded.
        """
        from ._config import update_config, with_identity

        def change(current: Config) -> Config:
            if not current.notice_shown:
                from ._notice import show_notice

                show_notice(self.name, self.env_prefix, self.user_command("disable"))
            return with_identity(current)

        return update_config(self.paths, self.name, change)

    # -- the user's commands ------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Everything `telemetry status --json` shows, pending records included.

        Built by `_status.status_report` (see docs/configuration.md for each key).
        """
        from ._status import status_report

        return status_report(self)

    def enable(self) -> Decision:
        """Store the choice "on"; the returned decision says whether an override wins."""
        from ._config import update_config, with_identity

        config = update_config(
            self.paths,
            self.name,
            lambda current: with_identity(current).replace(choice="enabled"),
        )
        return self.decide(config)

    def disable(self) -> Decision:
        """Store the choice "off" and delete all pending data at once."""
        from ._config import update_config

        config = update_config(
            self.paths, self.name, lambda current: current.replace(choice="disabled")
        )
        self.store.clear()
        return self.decide(config)

    def reset(self) -> tuple[str | None, str]:
        """Delete local data and mint a new install id; returns (old id, new id).

        The request to delete what was sent under the old id is made by
        `request_deletions`, or left pending for a later long-running run.
        """
        from ._config import mint_install_id, update_config

        old_id: str | None = None

        def change(current: Config) -> Config:
            nonlocal old_id
            old_id = current.install_id
            return current.replace(install_id=mint_install_id())

        config = update_config(self.paths, self.name, change)
        self.store.clear()
        if old_id is not None and self._has_destination():
            from ._delivery import add_pending_deletion

            add_pending_deletion(self.store.directory, old_id)
        assert config.install_id is not None
        return old_id, config.install_id

    def request_deletions(self, *, timeout: float) -> SendReport:
        """Send pending deletion requests now (`telemetry reset` calls this with a short timeout).

        A deletion request is made even while telemetry is off: it only asks
        the receiver to forget an old install id.
        """
        from ._delivery import SendReport, send_deletions

        backend = self.destination()
        if backend is None:
            return SendReport(skipped="no endpoint or back end is configured")
        return send_deletions(self.store.directory, backend, timeout=timeout)

    def send_not_before(self) -> str | None:
        """Until when (UTC, ISO 8601) nothing is sent: the receiver's last Retry-After."""
        from ._delivery import utc_time, waiting_until

        try:
            not_before = waiting_until(self.store.directory, self.clock())
        except OSError:
            return None
        return None if not_before is None else utc_time(not_before)

    def pending_deletions(self) -> list[str]:
        from ._delivery import read_deletions

        return read_deletions(self.store.directory)


__all__ = ["Telemetry"]
