"""The Telemetry facade: the tool author's settings, and the wiring into the Typer app.

`Telemetry(...)` checks the author's arguments into an immutable `Settings`
value (`_settings.py`) and hands it down: to the hook (through a `Mount`,
which is what the hook sees of the instrumented app), to the recorder, to
the sender and to the `telemetry` commands. Nothing below calls back up.
Everything about mounting the `telemetry` group (finding clashes, wrapping
the author's own group classes, a one-command app) is wiring, and lives
here, because it runs on every run of the tool as the app is built.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from ._hook import LONG_RUNNING_ATTRIBUTE, TELEMETRY_MARKER, instrumented_group_class
from ._settings import DEFAULT_GROUP_NAME, checked_settings

# The modules for files, the config, the checks and the journal load when first
# needed: a run with telemetry switched off by the environment never loads them,
# and a recorded run never loads the schema's tables, the store or a back end.
if TYPE_CHECKING:
    from ._consent import Decision, Policy
    from ._delivery import SendReport
    from ._event_recording import Event
    from ._events import Bucket, Choice, Flag
    from ._settings import Settings
    from .backends.base import Backend

if TYPE_CHECKING:  # type variables cost an import-time call each; only the checker needs them
    from typing import ParamSpec, TypeVar

    TyperApp = TypeVar("TyperApp", bound=typer.Typer)
    P = ParamSpec("P")
    R = TypeVar("R")


class Telemetry:
    """Anonymous usage telemetry for one Typer tool: make one per tool, then instrument its app.

        app = typer.Typer()
        telemetry = Telemetry("mytool", version="1.4.0", endpoint="https://t.example.com/v1")
        telemetry.instrument(app)

    Every argument is described in docs/configuration.md.
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
        signals: tuple[str, ...] = (),
        sample_rate: float = 1.0,
    ) -> None:
        self._mount = Mount(
            checked_settings(
                name,
                version=version,
                endpoint=endpoint,
                consent=consent,
                long_running_after=long_running_after,
                backend=backend,
                signals=signals,
                sample_rate=sample_rate,
            )
        )
        self._events: dict[str, Event] = {}
        # What `telemetry schema` prints: the group below sees only the mount.
        self._mount.describe = self._describe

    @property
    def settings(self) -> Settings:
        """The author's settings as handed down now (immutable: assign a `replace`d copy)."""
        return self._mount.settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        self._mount.settings = settings

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def version(self) -> str:
        return self.settings.version

    # -- wiring into the tool -----------------------------------------------

    @property
    def app(self) -> typer.Typer:
        """The ready-made `telemetry status|enable|disable|reset` Typer app.

        To mount it yourself (under another name, in a sub-app), mount it
        and call `instrument(app, mount=False)`, in either order; or mount it
        before `instrument(app)`, which then finds it and does not mount it again.
        """
        return self._mount.group_app()

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
        self._mount.instrument(app, group_name=group_name, hidden=hidden, mount=mount)
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

    # -- the author's own events ------------------------------------------------

    def event(self, name: str, **fields: Choice | Bucket | Flag) -> Event:
        """Declare an event of the tool's own; its fields are the allowlist of what it records.

        `Choice(...)` records one of the declared strings (any other as
        `other`), `Bucket(...)` a number as the label of its bucket, `Flag()`
        a boolean: nothing typed by a user can reach a record. Declaring the
        same event again with the same fields returns the same object.
        """
        from ._event_recording import declare

        return declare(self._mount, self._events, name, fields)

    def set_mcp_client(self, client_name: object) -> None:
        """Name the MCP client driving this process, from its `initialize` request's clientInfo.name.

        With the `runner` signal on, later events of this process are
        recorded as run by that agent (a documented name, or `other`: the
        client's own text is never recorded).
        """
        from ._runner import agent_from_client_name

        self.settings = self.settings.replace(mcp_agent=agent_from_client_name(client_name))

    def _describe(self) -> dict[str, Any]:
        """This tool's contract (`_contract.tool_schema`): what `telemetry schema` prints."""
        from ._contract import tool_schema

        return tool_schema(self)

    # -- sending --------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> SendReport:
        """Send pending completed days now, waiting at most `timeout` seconds (servers, daemons).

        Never raises: what failed is the report's `error` (and a debug line).
        """
        from ._delivery import flush

        return flush(self.settings, timeout=timeout)

    # -- what the user's commands do, for a program --------------------------------

    def decide(self) -> Decision:
        """Whether telemetry is on for this process, and which source decided."""
        from ._controls import decision

        return decision(self.settings)

    def status(self) -> dict[str, Any]:
        """Everything `telemetry status --json` shows (see docs/configuration.md for each key)."""
        from ._status import status_report

        return status_report(self.settings)

    def enable(self) -> Decision:
        """Store the choice "on"; the returned decision says whether an override wins."""
        from ._controls import enable

        return enable(self.settings)

    def disable(self) -> Decision:
        """Delete all pending data at once, then store the choice "off": a choice that cannot be stored never keeps the data."""
        from ._controls import disable

        return disable(self.settings)

    def reset(self) -> tuple[str | None, str]:
        """Delete local data, mint a new install id, queue deletions; returns (old id, new id)."""
        from ._controls import reset

        return reset(self.settings).ids


class Mount:
    """One Telemetry object's wiring: what the hook sees of the instrumented app.

    It holds the settings in force (the hook reads them as each invocation
    starts) and everything `instrument` set up: the app, the `telemetry`
    group and the name it was mounted under, the command classes it wrapped.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.host: typer.Typer | None = None
        self.mounted_as: str | None = None
        # Command classes `instrument(app, mount=False)` wrapped, and what they wrap.
        self.command_bases: dict[type, type] = {}
        self._group_app: typer.Typer | None = None
        self._group_words_found = False
        # The tool's contract, made on demand (set by the Telemetry object, which knows the events).
        self.describe: Callable[[], dict[str, Any]] | None = None

    def group_app(self) -> typer.Typer:
        if self._group_app is None:
            self._group_app = _telemetry_group_app(self)
        return self._group_app

    def set_group_words(self, words: str | None) -> None:
        self.settings = self.settings.replace(group_words=words)

    def instrument(
        self, app: typer.Typer, *, group_name: str | None, hidden: bool, mount: bool
    ) -> None:
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
                f"this app is already instrumented by Telemetry({owner.settings.name!r}):"
                " one Telemetry object per app, made once"
            )
        if self.host is not None:
            raise ValueError(
                f"this Telemetry({self.settings.name!r}) object already instruments an app:"
                " make one Telemetry object per app"
            )
        from typer.core import TyperGroup

        found = None if self._group_app is None else _mount_path(app, self._group_app)
        name = group_name or DEFAULT_GROUP_NAME
        if found is not None:
            if (group_name is not None and group_name != found[-1]) or hidden:
                raise ValueError(
                    f"telemetry.app is already mounted on this app as {' '.join(found)!r}:"
                    " group_name= and hidden= apply only to the group instrument() mounts;"
                    " give them to your own add_typer(telemetry.app, ...) instead"
                )
        elif mount:
            clash = _clash(app, name, self._group_app, arguments=_root_arguments(app))
            if clash is not None:
                raise ValueError(_clash_message(self.settings.name, name, clash))
        # Nothing is changed above this line: a refused app stays as it was.
        app.info.cls = instrumented_group_class(_given_class(app.info.cls) or TyperGroup, self)
        registered = app.registered_callback
        callback_class = None if registered is None else _given_class(registered.cls)
        if registered is not None and callback_class is not None:
            # Typer prefers a `cls=` given to `@app.callback(...)` (the `typer` CLI's own way).
            registered.cls = instrumented_group_class(callback_class, self)
        _wrap_later_callbacks(app, self)
        if found is not None:
            self.set_group_words(" ".join(found))
        elif mount:
            app.add_typer(self.group_app(), name=name, hidden=hidden)
            self.mounted_as = name
            self.set_group_words(name)
        else:
            # Found on first use if the author mounts telemetry.app (see prepare_mount).
            self.set_group_words(None)
            # With no group mounted, Typer builds a one-command app without any
            # group class: the hook then sits on the command's class (in a
            # group, Click never calls a command's `main`).
            _wrap_commands(app, self)
        setattr(app, _INSTRUMENTED_BY, self)
        self.host = app

    def prepare_mount(self, group: Any) -> None:
        """Called by the hook as the built root group starts, before anything runs.

        Finds where the author mounted `telemetry.app` after
        `instrument(app, mount=False)`; lists the mounted group after the
        tool's own commands in `--help`; and refuses (ValueError) a clash
        made by a command, group or root callback registered after
        `instrument`: on the author's first run, rather than a command
        silently lost.
        """
        host = self.host
        if host is None:
            return
        if not self._group_words_found and self.settings.group_words is None:
            self._group_words_found = True
            path = None if self._group_app is None else _mount_path(host, self._group_app)
            if path is not None:
                self.set_group_words(" ".join(path))
        name = self.mounted_as
        if name is None:
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
            clash = _clash(host, name, self._group_app, arguments=arguments, mounted=True)
        except Exception as problem:  # a check of ours must never break the tool
            self.settings.debug(f"could not check the group's name for clashes: {problem!r}")
            return
        if clash is not None:
            raise ValueError(_clash_message(self.settings.name, name, clash))

    def single_command(self, argv: list[str]) -> Any | None:
        """The Click command Typer would build for a one-command app, else None.

        Mounting `telemetry` turns a one-command app into a group; for every
        command line but `telemetry ...` the hook runs the command exactly as
        Typer would have without the mount.
        """
        app = self.host
        if app is None or self._group_app is None:
            return None
        ours = [group for group in app.registered_groups if group.typer_instance is self._group_app]
        if not ours or argv[:1] == [_group_info_name(ours[0])]:
            return None
        others = [
            group for group in app.registered_groups if group.typer_instance is not self._group_app
        ]
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
        base = self.command_bases.get(only.cls) if isinstance(only.cls, type) else None
        if base is not None:  # the hook already times this run: not a second time
            unwrapped = copy.copy(only)
            unwrapped.cls = base
            shadow.registered_commands = [unwrapped]
        return typer.main.get_command(shadow)


def _telemetry_group_app(mount: Mount) -> typer.Typer:
    """The `telemetry` group that `instrument` mounts: cheap to mount, its commands made on use.

    Typer builds every mounted group on every run of the tool. This one is
    built empty, and its commands are made only when it is itself invoked,
    so that mounting it costs the tool's ordinary commands next to nothing.
    The hook never records its commands (they carry `TELEMETRY_MARKER`).
    """
    from typer.core import TyperGroup

    class TelemetryGroup(TyperGroup):
        def make_context(
            self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
        ) -> Any:
            if parent is not None and info_name:
                # The words the user typed to reach the group, wherever the
                # author mounted it: what the messages tell the user to type.
                words, outer = [info_name], parent
                while outer.parent is not None:
                    words.append(outer.info_name or "")
                    outer = outer.parent
                mount.set_group_words(" ".join(reversed(words)))
            if not self.commands:
                from ._cli import commands_app  # the commands load only when used

                self.commands.update(
                    typer.main.get_group(commands_app(mount.settings, mount.describe)).commands
                )
            return super().make_context(info_name, args, parent, **extra)

    setattr(TelemetryGroup, TELEMETRY_MARKER, True)
    return typer.Typer(
        cls=TelemetryGroup,
        help=f"Show or change {mount.settings.name}'s anonymous usage telemetry.",
        no_args_is_help=True,
        add_completion=False,
    )


def _expect_type(argument: str, value: object, kind: type, expected: str) -> None:
    if not isinstance(value, kind):
        raise TypeError(f"{argument} must be {expected}, not {type(value).__name__} {value!r}")


# -- mounting: what instrument() checks and wraps --------------------------------

# Set on an instrumented app: the Telemetry object that instruments it.
_INSTRUMENTED_BY = "_typer_telemetry_instrumented_by"
# Deeper sub-app nesting than this is not searched (nor built by any real tool).
_MAX_MOUNT_DEPTH = 16


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


def _wrap_later_callbacks(app: typer.Typer, mount: Mount) -> None:
    """Make a `@app.callback(cls=...)` written after `instrument` instrumented too."""
    register = app.callback

    def callback(*args: Any, **kwargs: Any) -> Any:
        given = _given_class(kwargs.get("cls"))
        if given is not None:
            kwargs["cls"] = instrumented_group_class(given, mount)
        return register(*args, **kwargs)

    setattr(app, "callback", callback)  # noqa: B010  (an attribute of this app alone)


def _wrap_commands(app: typer.Typer, mount: Mount) -> None:
    """Give the app's commands, present and later, a class whose `main` the hook times."""
    from typer.core import TyperCommand

    def wrapped(cls: object) -> type:
        base = _given_class(cls) or TyperCommand
        for instrumented, original in mount.command_bases.items():
            if original is base:
                return instrumented
        instrumented = instrumented_group_class(base, mount)
        mount.command_bases[instrumented] = base
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
