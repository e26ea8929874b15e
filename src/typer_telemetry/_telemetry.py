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

        # Every mistake names its argument and what it takes, when the object
        # is made: on the author's first run, never on a user's machine.
        _expect_type("name", name, str, "a str")
        if not is_tool_name(name):
            raise ValueError(
                f"tool name {name!r} must be 1 to 64 characters of letters, digits, '.', '_', '-'"
            )
        _expect_type("version", version, str, "a str such as '1.4.0'")
        if not is_version(version):
            raise ValueError(
                f"version {version!r} must be a version string of at most 64 characters"
            )
        _expect_type("consent", consent, str, "'opt-out' or 'opt-in'")
        if consent not in ("opt-out", "opt-in"):
            raise ValueError(f"consent must be 'opt-out' or 'opt-in', not {consent!r}")
        if isinstance(long_running_after, bool) or not isinstance(long_running_after, (int, float)):
            raise TypeError(
                "long_running_after must be a number of seconds (int or float), not"
                f" {type(long_running_after).__name__} {long_running_after!r}"
            )
        if not long_running_after > 0:  # NaN is not > 0 either
            raise ValueError(
                f"long_running_after must be a positive number of seconds, not {long_running_after!r}"
            )
        if endpoint is not None:
            check_endpoint(endpoint)  # a wrong endpoint shows on the author's first run
        if isinstance(backend, type):
            raise TypeError(
                f"backend must be a back end object, not the class {backend.__name__}:"
                f" pass {backend.__name__}(...)"
            )
        if backend is not None and not (
            callable(getattr(backend, "send", None))
            and callable(getattr(backend, "request_deletion", None))
        ):
            raise TypeError(
                "backend must be an object with send(batch, *, timeout) and"
                f" request_deletion(...) (see typer_telemetry.backends), not {backend!r}"
            )
        self.name = name
        self.version = version
        self.consent: Policy = consent
        self.long_running_after = float(long_running_after)
        self.env_prefix = env_prefix(name)
        # The words between the tool's name and a command of the group
        # (`telemetry`, `privacy`, `admin telemetry`); every message that
        # tells the user what to type says `user_command(...)`.
        self._group_name: str | None = TELEMETRY_GROUP_NAME
        # The name `instrument` mounted the group under on the app, if it did.
        self._mounted_as: str | None = None
        # Command classes `instrument(app, mount=False)` wrapped, and what they wrap.
        self._command_bases: dict[type, type] = {}
        self._endpoint = endpoint
        self._backend = backend
        self._app: typer.Typer | None = None
        self._host: typer.Typer | None = None
        # Wall clock (seconds since the epoch) that decides the UTC day; tests may replace it.
        self.clock: Callable[[], float] = time.time

    # -- settings -----------------------------------------------------------

    @property
    def paths(self) -> Paths:
        """The per-user folders as the environment says now: one process may run
        the tool under several homes (CliRunner tests), each its own folders."""
        from ._files import Paths

        return Paths.for_tool(self.name)

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

    @property
    def group_name(self) -> str | None:
        """The words between the tool's name and a command of the group, None if not mounted.

        `telemetry` by default; the `group_name` given to `instrument`; or
        wherever the author mounted `telemetry.app` (`admin telemetry`),
        found when first needed, so that it may be mounted after
        `instrument(app, mount=False)`.
        """
        if self._group_name is None and self._host is not None and self._app is not None:
            path = _mount_path(self._host, self._app)
            if path is not None:
                self._group_name = " ".join(path)
        return self._group_name

    @group_name.setter
    def group_name(self, words: str | None) -> None:
        self._group_name = words

    def user_command(self, subcommand: str) -> str:
        """What the user types for one of the group's commands: `mytool telemetry disable`.

        Meaningful while `group_name` is not None (always, inside the group's own commands).
        """
        return f"{self.name} {self.group_name or TELEMETRY_GROUP_NAME} {subcommand}"

    def opt_out_command(self) -> str | None:
        """`mytool telemetry disable`, or None when the tool offers no telemetry commands."""
        return None if self.group_name is None else self.user_command("disable")

    def group_command(self) -> str | None:
        """`mytool telemetry`, or None when the tool offers the user no telemetry commands."""
        words = self.group_name
        return None if words is None else f"{self.name} {words}"

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
        """The ready-made `telemetry status|enable|disable|reset` Typer app.

        To mount it yourself (under another name, in a sub-app), mount it
        and call `instrument(app, mount=False)`, in either order; or mount it
        before `instrument(app)`, which then finds it and does not mount it again.
        """
        if self._app is None:
            self._app = mountable_app(self)
        return self._app

    def instrument(
        self,
        app: TyperApp,
        *,
        group_name: str | None = None,
        hidden: bool = False,
        mount: bool = True,
    ) -> TyperApp:
        """Record every invocation of `app`'s commands, and mount the `telemetry` group on it.

        `group_name` (default `telemetry`) is the name the group is mounted
        under; `hidden=True` leaves it out of `--help`; `mount=False`
        installs the hook alone (mount `telemetry.app` yourself, or not at
        all). A name the app already uses, or a root callback with a
        positional argument (which would take the group's name as its
        value), raises ValueError; so does a clash made by a command or
        callback registered after this call, on the first run.
        """
        _check_app(app)
        if group_name is not None:
            _check_group_name(group_name)
        _expect_type("hidden", hidden, bool, "True or False")
        _expect_type("mount", mount, bool, "True or False")
        if not mount and (group_name is not None or hidden):
            raise ValueError(
                "group_name= and hidden= apply to the group instrument() mounts: with"
                " mount=False, give them to your own add_typer(telemetry.app, name=..., hidden=...)"
            )
        owner = getattr(app, _INSTRUMENTED_BY, None)
        if owner is not None:
            raise ValueError(
                f"this app is already instrumented by Telemetry({owner.name!r}):"
                " one Telemetry object per app, made once"
            )
        if self._host is not None:
            raise ValueError(
                f"this Telemetry({self.name!r}) object already instruments an app:"
                " make one Telemetry object per app"
            )
        from typer.core import TyperGroup

        found = None if self._app is None else _mount_path(app, self._app)
        name = group_name or TELEMETRY_GROUP_NAME
        if found is not None:
            if (group_name is not None and group_name != found[-1]) or hidden:
                raise ValueError(
                    f"telemetry.app is already mounted on this app as {' '.join(found)!r}:"
                    " group_name= and hidden= apply only to the group instrument() mounts;"
                    " give them to your own add_typer(telemetry.app, ...) instead"
                )
        elif mount:
            clash = _clash(app, name, self._app, arguments=_root_arguments(app))
            if clash is not None:
                raise ValueError(_clash_message(self.name, name, clash))
        # Nothing is changed above this line: a refused app stays as it was.
        app.info.cls = instrumented_group_class(
            _given_class(app.info.cls) or TyperGroup, self, self
        )
        registered = app.registered_callback
        callback_class = None if registered is None else _given_class(registered.cls)
        if registered is not None and callback_class is not None:
            # Typer prefers a `cls=` given to `@app.callback(...)` (the `typer` CLI's own way).
            registered.cls = instrumented_group_class(callback_class, self, self)
        _wrap_later_callbacks(app, self)
        if found is not None:
            self.group_name = " ".join(found)
        elif mount:
            app.add_typer(self.app, name=name, hidden=hidden)
            self.group_name = self._mounted_as = name
        else:
            self.group_name = None  # found on first use if the author mounts telemetry.app
            # With no group mounted, Typer builds a one-command app without any
            # group class: the hook then sits on the command's class (in a
            # group, Click never calls a command's `main`).
            _wrap_commands(app, self)
        setattr(app, _INSTRUMENTED_BY, self)
        self._host = app
        return app

    def run(self, function: Callable[..., Any]) -> None:
        """`typer.run(main)`, instrumented: write `telemetry.run(main)` instead.

        The one command runs exactly as under `typer.run`; `telemetry ...`
        reaches the telemetry group.
        """
        if not callable(function) or isinstance(function, typer.Typer):
            raise TypeError(
                f"run() takes the function typer.run() would take, not {type(function).__name__};"
                " for a typer.Typer app use telemetry.instrument(app)"
            )
        app = typer.Typer(add_completion=False)
        app.command()(function)
        self.instrument(app)
        app()

    def prepare_mount(self, group: Any) -> None:
        """Called by the hook as the built root group starts, before anything runs.

        Lists the mounted group after the tool's own commands in `--help`,
        and refuses (ValueError) a clash made by a command, group or root
        callback registered after `instrument`: on the author's first run,
        rather than a command silently lost.
        """
        name = self._mounted_as
        host = self._host
        if name is None or host is None:
            return
        commands = getattr(group, "commands", None)
        if isinstance(commands, dict) and name in commands:
            # Mounted first, listed last: after the tool's own commands in --help.
            commands[name] = commands.pop(name)
        try:
            arguments = [
                str(parameter.name)
                for parameter in getattr(group, "params", ())
                if getattr(parameter, "param_type_name", None) == "argument"
            ]
            clash = _clash(host, name, self._app, arguments=arguments, mounted=True)
        except Exception as problem:  # a check of ours must never break the tool
            self.debug(f"could not check the group's name for clashes: {problem!r}")
            return
        if clash is not None:
            raise ValueError(_clash_message(self.name, name, clash))

    def single_command(self, argv: list[str]) -> Any | None:
        """The Click command Typer would build for a one-command app, else None.

        Mounting `telemetry` turns a one-command app into a group; for every
        command line but `telemetry ...` the hook runs the command exactly as
        Typer would have without the mount.
        """
        app = self._host
        if app is None or self._app is None:
            return None
        ours = [group for group in app.registered_groups if group.typer_instance is self._app]
        if not ours or argv[:1] == [_group_info_name(ours[0])]:
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
        only = app.registered_commands[0]
        base = self._command_bases.get(only.cls) if isinstance(only.cls, type) else None
        if base is not None:  # the hook already times this run: not a second time
            unwrapped = copy.copy(only)
            unwrapped.cls = base
            shadow.registered_commands = [unwrapped]
        return typer.main.get_command(shadow)

    def long_running(self, command: Callable[P, R]) -> Callable[P, R]:
        """Mark a command as long-running from its start: it sends pending days at once.

        Use it on commands that are known to take a while (a server, a sync,
        a build): pending completed days then go out in the background as
        soon as the command starts, instead of after `long_running_after`.
        """
        if not callable(command):
            raise TypeError(
                "long_running decorates a command function: write @telemetry.long_running,"
                f" not @telemetry.long_running(...) (got {type(command).__name__})"
            )
        setattr(command, LONG_RUNNING_ATTRIBUTE, True)
        return command

    def start_trigger(self) -> Trigger | None:
        """Called by the hook as an invocation starts; cheap when nothing could be sent."""
        if not sending_possible(os.environ, self.env_prefix, self._has_destination()):
            return None
        return Trigger(self, self.long_running_after)

    # -- sending --------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> SendReport:
        """Send pending completed days now, waiting at most `timeout` seconds (servers, daemons).

        Never raises: what failed is the report's `error` (and a debug line).
        """
        return self.send_now(timeout=timeout)

    def send_now(self, *, timeout: float) -> SendReport:
        """Send what is pending; never raises, whatever a back end or the environment does."""
        from ._delivery import SendReport, describe, send_pending

        try:
            decision = self.decide()
            if not decision.enabled:
                return SendReport(skipped=decision.reason)
            backend = self.destination()
            if backend is None:
                return SendReport(skipped="no endpoint or back end is configured")
            report = send_pending(self, backend, timeout=timeout, keep_data=self.debugging)
        except Exception as error:  # the library's own failure must never reach the tool
            report = SendReport(error=describe(error))
        self.debug(f"send report: {report}")
        return report

    def install_id(self) -> str | None:
        from ._config import read_config

        return read_config(self.paths.config_file).install_id

    # -- consent ------------------------------------------------------------

    def decide(self, config: Config | None = None) -> Decision:
        """Whether telemetry is on for this process, and which source decided.

        Files that another user owns or others may write to (the config
        folder or file, the data folder or its journal) turn it off, and the
        decision's reason names the path (see `_files.UnsafeFile`).
        """
        from ._files import unsafe_reason

        if config is None:
            from ._config import read_config

            config = read_config(self.paths.config_file)
        # The journal (`_journal.JOURNAL_NAME`, a module a run that records
        # nothing never loads) is the data file every recorded run writes.
        unsafe = config.unsafe or unsafe_reason(self.paths.store_dir, "data", ("journal.log",))
        return decide(self.env_prefix, os.environ, config.choice, self.consent, unsafe)

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
        from ._checks import SchemaError, validate_observation
        from ._config import read_config
        from ._journal import Observation, append

        paths = self.paths  # this invocation's user: resolved once, used throughout
        config = read_config(paths.config_file)
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
        try:
            validate_observation(day, command, outcome, error_class, flags, duration_ms)
        except SchemaError:
            from ._fit import fit_observation

            fitted = fit_observation(
                paths.store_dir, day, command, outcome, error_class, flags, duration_ms, self.debug
            )
            if fitted is None:
                return  # counted as dropped
            error_class, flags, duration_ms = fitted
        observation = Observation(day, command, outcome, error_class, flags, duration_ms)
        append(paths.store_dir, observation, today=day, debug=self.debug)
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

                show_notice(self.name, self.env_prefix, self.opt_out_command())
            return with_identity(current)

        return update_config(self.paths, self.name, change, command=self.group_command())

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
            command=self.group_command(),
        )
        return self.decide(config)

    def disable(self) -> Decision:
        """Delete all pending data at once, then store the choice "off".

        The data goes first: a choice that cannot be stored (a read-only or
        foreign config folder, a full disk) must not keep pending data on
        the way out. Raises DisableIncomplete (a ConfigUnwritable) when
        either part failed, saying which and why; `decide()` then tells
        whether telemetry is off nonetheless.
        """
        from ._config import ConfigUnwritable, DisableIncomplete, update_config

        data_problem = self.store.clear()
        try:
            config = update_config(
                self.paths,
                self.name,
                lambda current: current.replace(choice="disabled"),
                command=self.group_command(),
            )
        except ConfigUnwritable as error:
            raise DisableIncomplete(data_problem, str(error)) from error
        if data_problem is not None:
            raise DisableIncomplete(data_problem, None)
        return self.decide(config)

    def reset(self) -> tuple[str | None, str]:
        """Delete local data and mint a new install id; returns (old id, new id).

        A deletion is queued for every install id data was ever sent under
        (the ledger `sent-ids.json`: an id whose config was set aside as
        unreadable included), and for none if nothing was ever sent. The
        requests are made by `request_deletions`, or left pending for a later
        long-running run. Raises ConfigUnwritable only when the new id cannot
        be stored; a deletion that cannot be queued is explained under debug.
        """
        from ._config import mint_install_id, update_config

        old_id: str | None = None

        def change(current: Config) -> Config:
            nonlocal old_id
            old_id = current.install_id
            return current.replace(install_id=mint_install_id())

        config = update_config(self.paths, self.name, change, command=self.group_command())
        self.store.clear()
        # What this reset queued, for the reset command's own message: a
        # long-running trigger of the same process may send it meanwhile.
        self._queued_deletions: list[str] = []
        try:
            from ._delivery import queue_deletions_of_sent_ids

            self._queued_deletions = queue_deletions_of_sent_ids(self.store.directory, old_id)
        except Exception as error:  # the local part is done; the queue is best effort
            self.debug(f"could not queue the deletion requests: {error!r}")
        assert config.install_id is not None
        return old_id, config.install_id

    def request_deletions(self, *, timeout: float) -> SendReport:
        """Send pending deletion requests now (`telemetry reset` calls this with a short timeout).

        A deletion request is made even while telemetry is off: it only asks
        the receiver to forget old install ids, and nothing else is sent.
        Never raises: what failed is the report's `error` (and a debug line).
        """
        from ._delivery import SendReport, describe, send_deletions

        try:
            backend = self.destination()
            if backend is None:
                report = SendReport(skipped="no endpoint or back end is configured")
            else:
                report = send_deletions(
                    self.store.directory,
                    backend,
                    timeout=timeout,
                    tool=self.name,
                    keep_data=self.debugging,
                )
        except Exception as error:
            report = SendReport(error=describe(error))
        self.debug(f"deletion report: {report}")
        return report

    def send_not_before(self) -> str | None:
        """Until when (UTC, ISO 8601) nothing is sent: the receiver's last Retry-After."""
        from ._delivery import utc_time, waiting_until

        try:
            not_before = waiting_until(self.store.directory, self.clock())
        except OSError:
            return None
        return None if not_before is None else utc_time(not_before)

    def pending_deletions(self) -> list[str]:
        """The install ids whose deletion the receiver has not yet accepted."""
        from ._delivery import read_deletions

        try:
            return read_deletions(self.store.directory)
        except Exception as error:  # status and reset must work whatever the folder holds
            self.debug(f"cannot read pending deletions: {error!r}")
            return []


# -- mounting: what instrument() checks and wraps --------------------------------

# Set on an instrumented app: the Telemetry object that instruments it.
_INSTRUMENTED_BY = "_typer_telemetry_instrumented_by"
# Deeper sub-app nesting than this is not searched (nor built by any real tool).
_MAX_MOUNT_DEPTH = 16


def _expect_type(argument: str, value: object, kind: type, expected: str) -> None:
    if not isinstance(value, kind):
        raise TypeError(f"{argument} must be {expected}, not {type(value).__name__} {value!r}")


def _check_app(app: object) -> None:
    """Refuse, with the way out, anything but a typer.Typer app."""
    if isinstance(app, typer.Typer):
        return
    kind = type(app)
    if {cls.__name__ for cls in kind.__mro__} & {"BaseCommand", "Command", "MultiCommand"}:
        raise TypeError(
            f"instrument() takes the typer.Typer app, not a Click {kind.__name__}: the hook"
            " attaches to the Typer app, which builds its Click commands on each run"
            " (a tool written with Click alone is not supported)"
        )
    if callable(app):
        function = getattr(app, "__name__", "main")
        raise TypeError(
            f"instrument() takes a typer.Typer app, not the function {function!r}: for a tool"
            f" run with typer.run({function}), write telemetry.run({function}) instead"
        )
    raise TypeError(f"instrument() takes a typer.Typer app, not {kind.__name__} {app!r}")


def _check_group_name(group_name: object) -> None:
    from ._checks import is_command_word

    _expect_type("group_name", group_name, str, "a str such as 'privacy'")
    if not is_command_word(group_name):
        raise ValueError(
            f"group_name {group_name!r} must be one command word: 1 to 64 letters, digits,"
            " '_', '.', ':', '-', starting with a letter or digit"
        )


def _given_class(value: object) -> type | None:
    """The class given as a `cls=` (Typer wraps the defaults in a DefaultPlaceholder)."""
    from typer.models import DefaultPlaceholder

    if isinstance(value, DefaultPlaceholder):
        value = value.value
    return value if isinstance(value, type) else None


def _wrap_later_callbacks(app: typer.Typer, telemetry: Telemetry) -> None:
    """Make a `@app.callback(cls=...)` written after `instrument` instrumented too."""
    register = app.callback

    def callback(*args: Any, **kwargs: Any) -> Any:
        given = _given_class(kwargs.get("cls"))
        if given is not None:
            kwargs["cls"] = instrumented_group_class(given, telemetry, telemetry)
        return register(*args, **kwargs)

    setattr(app, "callback", callback)  # noqa: B010  (an attribute of this app alone)


def _wrap_commands(app: typer.Typer, telemetry: Telemetry) -> None:
    """Give the app's commands, present and later, a class whose `main` the hook times."""
    from typer.core import TyperCommand

    def wrapped(cls: object) -> type:
        base = _given_class(cls) or TyperCommand
        for instrumented, original in telemetry._command_bases.items():
            if original is base:
                return instrumented
        instrumented = instrumented_group_class(base, telemetry, telemetry)
        telemetry._command_bases[instrumented] = base
        return instrumented

    for info in app.registered_commands:
        info.cls = wrapped(info.cls)
    register = app.command

    def command(*args: Any, **kwargs: Any) -> Any:
        kwargs["cls"] = wrapped(kwargs.get("cls"))
        return register(*args, **kwargs)

    setattr(app, "command", command)  # noqa: B010  (an attribute of this app alone)


def _group_info_name(info: Any) -> str | None:
    """The name Typer gives a group added with add_typer (None: its commands join the parent's)."""
    name = info.name
    if isinstance(name, str):
        return name or None
    try:
        solved = typer.main.solve_typer_info_defaults(info).name
    except Exception:
        return None
    return solved if isinstance(solved, str) and solved else None


def _command_name(info: Any) -> str | None:
    """The name Typer gives a registered command: its own, else the function's, dashed."""
    if isinstance(info.name, str) and info.name:
        return info.name
    function = getattr(info.callback, "__name__", None)
    return typer.main.get_command_name(function) if isinstance(function, str) else None


def _mount_path(app: typer.Typer, target: typer.Typer, depth: int = 0) -> list[str] | None:
    """The names leading from `app` to where `target` is mounted, else None."""
    for info in app.registered_groups:
        name = _group_info_name(info)
        below = info.typer_instance
        if below is target:
            if name:
                return [name]
        elif below is not None and depth < _MAX_MOUNT_DEPTH:
            path = _mount_path(below, target, depth + 1)
            if path is not None:
                return ([name] if name else []) + path
    return None


def _mounts(app: typer.Typer, target: typer.Typer | None, depth: int = 0) -> int:
    """How many times `target` is mounted anywhere under `app`."""
    count = 0
    for info in app.registered_groups:
        below = info.typer_instance
        if below is target:
            count += 1
        elif below is not None and depth < _MAX_MOUNT_DEPTH:
            count += _mounts(below, target, depth + 1)
    return count


def _root_arguments(app: typer.Typer) -> list[str]:
    """The positional arguments of the app's root callback, as Typer will make them."""
    registered = app.registered_callback
    callback = registered.callback if registered is not None else None
    if not callback:
        callback = app.info.callback
    if not callable(callback):
        return []
    from typer.models import ArgumentInfo, ParameterInfo
    from typer.utils import get_params_from_function

    try:
        parameters = get_params_from_function(callback)
    except Exception:
        return []  # Typer itself explains what is wrong with it when it builds the app
    arguments = []
    for name, parameter in parameters.items():
        annotation = parameter.annotation
        if isinstance(annotation, type) and "Context" in {
            cls.__name__ for cls in annotation.__mro__
        }:
            continue
        default = parameter.default
        # Typer's own rule: an Argument(), or a parameter without a default, is positional.
        if isinstance(default, ArgumentInfo) or (
            not isinstance(default, ParameterInfo)
            and (default is parameter.empty or default is Ellipsis)
        ):
            arguments.append(name)
    return arguments


def _clash(
    app: typer.Typer,
    name: str,
    ours: typer.Typer | None,
    *,
    arguments: list[str],
    mounted: bool = False,
) -> str | None:
    """What would hide the group mounted as `name` on `app`, with the way out; else None."""
    if arguments:
        return (
            f"the root callback's positional argument {arguments[0]!r} would take {name!r}"
            " (or any other group name) as its value; pass instrument(app, mount=False)"
            " and mount telemetry.app yourself where it can be reached (under a sub-app),"
            " or offer no telemetry commands (the notice then names the environment variable)"
        )
    others = [info for info in app.registered_groups if info.typer_instance is not ours]
    single = not (app.registered_callback or app.info.callback or others) and (
        len(app.registered_commands) == 1
    )
    if not single:  # a one-command app's command is never typed by name
        found = _command_clash(app, name, ours, 0)
        if found is not None:
            return f"{found}; choose another name with instrument(app, group_name=...)"
    if _mounts(app, ours) > (1 if mounted else 0):
        return (
            "telemetry.app is mounted a second time; mount it yourself with"
            " instrument(app, mount=False), or let instrument() mount it"
        )
    return None


def _command_clash(app: typer.Typer, name: str, ours: typer.Typer | None, depth: int) -> str | None:
    for command in app.registered_commands:
        if _command_name(command) == name:
            function = getattr(command.callback, "__qualname__", "?")
            return f"the tool's command {name!r} (the function {function}) has that name"
    for info in app.registered_groups:
        below = info.typer_instance
        if below is ours or below is None:
            continue
        group = _group_info_name(info)
        if group == name:
            return f"the tool's group {name!r} (added with add_typer) has that name"
        if group is None and depth < _MAX_MOUNT_DEPTH:
            # A group without a name: Typer lists its commands among the parent's.
            found = _command_clash(below, name, ours, depth + 1)
            if found is not None:
                return found
    return None


def _clash_message(tool: str, name: str, clash: str) -> str:
    return f"cannot mount the telemetry group as {name!r} on {tool}: {clash} (see docs/configuration.md)"


__all__ = ["Telemetry"]
