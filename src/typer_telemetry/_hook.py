"""The hook: time every invocation and observe its command path, outcome and flags.

`instrumented_group_class` wraps the app's group class (the author's own
`cls=` if any) with a `main` that times the whole call and classifies how it
ended, and hands the invocation to the recorder (`_recording.py`). To see how
far Click resolved the command line, even when parsing fails, the root
command gets a context class that remembers the contexts created for the
invocation, which each group on the path passes on to the command it
resolves, however made. While the command runs, a `Trigger` starts a send
once it has run long enough. What the hook needs of the app's wiring (its
settings, a one-command app's command) it is handed as a `Host`. Nothing
here writes to stdout, changes arguments, exit codes or exceptions, or lets
an error of its own escape.

Hot path: standard library only.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from ._consent import decided_by_environment

if TYPE_CHECKING:
    from ._protocols import Host
    from ._settings import Settings

LONG_RUNNING_ATTRIBUTE = "__typer_telemetry_long_running__"
SEND_TIMEOUT_SECONDS = 30.0
# The longest the end of an invocation waits for its trigger's thread to end (it
# only has to wake and return: microseconds, unless the machine is starved).
CANCEL_WAIT_SECONDS = 1.0


# -- how an invocation ended ----------------------------------------------------
#
# Click and Typer turn every ending into `SystemExit` in standalone mode, but
# they raise it *while handling* the original exception, so `__context__`
# still holds it: a `UsageError`, an `Abort` caused by `KeyboardInterrupt`, an
# `Exit`. Exceptions are recognised by class name along their MRO, so that the
# same code serves Click and Typer's vendored copy of it.

SUCCESS = ("success", "")

# Not invocations of the tool's own commands: never recorded.
_HELP_EXCEPTIONS = frozenset({"NoArgsIsHelpError"})


class Terminated(BaseException):
    """Stands for SIGTERM, which ends the process without an exception."""


def _class_names(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}


def _interrupt_in_chain(error: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (KeyboardInterrupt, EOFError)):
            return type(current).__name__
        current = current.__cause__ or current.__context__
    return None


def _from_click(error: BaseException, exit_code: object) -> tuple[str, str] | None:
    names = _class_names(error)
    if names & _HELP_EXCEPTIONS:
        return None
    if "UsageError" in names:
        return ("usage_error", type(error).__name__)
    interrupt = _interrupt_in_chain(error)
    if interrupt == "KeyboardInterrupt":
        return ("aborted", "KeyboardInterrupt")
    if interrupt == "EOFError":
        # End of input at a prompt: Click prints "Aborted!", as for a declined one.
        return ("aborted", "EOFError")
    if "Abort" in names:
        return ("aborted", type(error).__name__)
    if "Exit" in names:
        code = getattr(error, "exit_code", exit_code)
        return SUCCESS if code in (0, None) else ("error", "Exit")
    return ("error", type(error).__name__)


def _is_click_exception(error: BaseException) -> bool:
    return bool(_class_names(error) & {"ClickException", "Abort", "Exit"})


def classify(error: BaseException | None) -> tuple[str, str] | None:
    """(outcome, error_class) for an invocation, or None when it was only a help request."""
    if error is None:
        return SUCCESS
    if isinstance(error, Terminated):
        return ("aborted", "SIGTERM")
    if isinstance(error, SystemExit):
        handled = error.__context__
        if handled is not None and _is_click_exception(handled):
            return _from_click(handled, error.code)
        if handled is not None and isinstance(handled, KeyboardInterrupt):
            return ("aborted", "KeyboardInterrupt")
        return SUCCESS if error.code in (0, None) else ("error", "SystemExit")
    if isinstance(error, (KeyboardInterrupt, EOFError)):
        return ("aborted", type(error).__name__)
    if _is_click_exception(error):  # standalone_mode=False lets them through
        return _from_click(error, None)
    return ("error", type(error).__name__)


# -- what the invocation was -------------------------------------------------------

# Parameters whose presence means "not a use of the tool's commands".
_NOT_RECORDED_PARAMETERS = ("install_completion", "show_completion")
TELEMETRY_MARKER = "_typer_telemetry_group"
TELEMETRY_GROUP_NAME = "telemetry"


class Invocation:
    """The contexts Click created for one invocation, outermost first."""

    __slots__ = ("contexts", "finished", "leaf_reached", "settings", "started", "trigger")

    def __init__(self, settings: Settings, started: float) -> None:
        self.settings = settings
        self.started = started
        self.contexts: list[Any] = []
        self.leaf_reached = False
        self.finished = False
        self.trigger: Trigger | None = None


# The invocation under way in each thread. Click creates an invocation's
# contexts in the thread that called `main`, so a thread's own entry is the
# one its contexts belong to (a `contextvars.ContextVar` would cost a module
# import on every run of a tool that does not load it).
_current_invocations: dict[int, Invocation] = {}
_context_classes: dict[type, type] = {}
_recording_classes: set[type] = set()
_WATCHING = "_typer_telemetry_watching"  # marks our wrapper of a group's resolve_command


def _is_group(command: Any) -> bool:
    return hasattr(command, "resolve_command")


def _record_contexts_of(command: Any) -> None:
    """Give `command` a subclass of its context class that notes each new context.

    A group's context also wraps the group's `resolve_command`, to do the
    same to the command it resolves: commands a lazy group builds only then
    are reached, and only the path costs anything, not the whole tree.
    """
    base = command.context_class
    if base in _recording_classes:
        return
    recording = _context_classes.get(base)
    if recording is None:

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            base.__init__(self, *args, **kwargs)
            invocation = _current_invocations.get(_thread.get_ident())
            if invocation is not None and not invocation.leaf_reached:
                # Once a leaf command is reached, later contexts come from the
                # command itself (ctx.invoke of another command): not the path.
                invocation.contexts.append(self)
                group = self.command
                if not _is_group(group):
                    invocation.leaf_reached = True
                elif not getattr(group.resolve_command, _WATCHING, False):
                    resolve = group.resolve_command

                    def resolve_command(ctx: Any, args: Any) -> Any:
                        resolved = resolve(ctx, args)
                        try:
                            if resolved[1] is not None:
                                _record_contexts_of(resolved[1])
                        except Exception:  # an author's odd resolve_command
                            pass
                        return resolved

                    setattr(resolve_command, _WATCHING, True)
                    try:  # noqa: SIM105 - cheaper than suppress() on every run
                        group.resolve_command = resolve_command
                    except Exception:  # a group that takes no attributes
                        pass
                callback = getattr(group, "callback", None)
                if invocation.trigger is not None and getattr(
                    callback, LONG_RUNNING_ATTRIBUTE, False
                ):
                    invocation.trigger.now()

        recording = type(
            base.__name__, (base,), {"__init__": __init__, "__module__": base.__module__}
        )
        _context_classes[base] = recording
        _recording_classes.add(recording)
    command.context_class = recording


def _source_is_command_line(context: Any, name: str) -> bool:
    try:
        source = context.get_parameter_source(name)
    except Exception:
        return False
    return source is not None and source.name == "COMMANDLINE"


def canonical_flag(parameter: Any, context: Any = None) -> str:
    """The first long name of an option (`--force` for `-f/--force`), else its first name.

    With the context, of the side of an on/off option given: Click stores
    False for `--no-reload` of `--reload/--no-reload` (looked at, never kept).
    """
    names = parameter.opts
    secondary = parameter.secondary_opts
    if secondary and (
        not names or (context is not None and context.params.get(parameter.name) is False)
    ):
        names = secondary  # also for an option with off names only (" /--no-color")
    long_names = [name for name in names if name.startswith("--")]
    return str(long_names[0] if long_names else names[0])


def describe(contexts: list[Any]) -> tuple[str, tuple[str, ...]] | None:
    """The command path and the flags given, or None when this was not a use of a command.

    Help is asked by any option under one of the context's help option
    names, Click's or the command's own (weasel's `run` declares `--help`).
    """
    names: list[str] = []
    flags: set[str] = set()
    for depth, context in enumerate(contexts):
        command = context.command
        if getattr(command, TELEMETRY_MARKER, False):
            return None
        if depth > 0:
            # A name with a space cannot be told from two names: a tab (no
            # name character) keeps it outside the schema, counted as dropped.
            names.append((command.name or "").replace(" ", "\t"))
        help_names = set(context.help_option_names or ())
        options = [option for option in command.params if option.param_type_name == "option"]
        try:  # Click adds its help option outside `params`
            help_option = command.get_help_option(context)
        except Exception:
            help_option = None
        options.append(help_option)
        for option in options:
            if option is None or not _source_is_command_line(context, option.name or ""):
                continue
            if (
                option.name in _NOT_RECORDED_PARAMETERS
                or not help_names.isdisjoint(option.opts)
                or not help_names.isdisjoint(option.secondary_opts)
            ):
                return None
            flags.add(canonical_flag(option, context))
    return " ".join(names), tuple(sorted(flags))


def _completion_requested() -> bool:
    # Click completes when `_<PROG>_COMPLETE` is set; the program name may
    # differ from the app's, so any such variable counts.
    return any(name.startswith("_") and name.endswith("_COMPLETE") for name in os.environ)


def finish(invocation: Invocation, error: BaseException | None) -> None:
    """Hand the invocation to the recorder once; never raises."""
    if invocation.finished:
        return
    invocation.finished = True
    try:
        if invocation.trigger is not None:
            invocation.trigger.cancel()
        duration_ms = (time.perf_counter() - invocation.started) * 1000.0
        ending = classify(error)
        described = describe(invocation.contexts)
        if ending is None or described is None:
            return
        command, flags = described
        outcome, error_class = ending
        settings = invocation.settings
        # An opt-out in the environment decides before the recorder is even loaded.
        by_environment = decided_by_environment(settings.env_prefix, os.environ)
        if by_environment is not None and not by_environment.enabled:
            settings.debug(f"not recording: {by_environment.reason}")
            return
        from ._recording import record_command

        record_command(settings, command, outcome, error_class, flags, duration_ms)
    except KeyboardInterrupt:
        # Ctrl-C while recording (a second one, or one during a slow fold): the
        # user wants out. Give up this record and let the invocation end as it
        # was ending (Typer's 130, or the SIGTERM handler's own death), at once
        # and without a traceback from our internals. A half-done fold is
        # finished by the next run, as after a kill.
        return
    except Exception as problem:
        invocation.settings.debug(f"could not record the invocation: {problem!r}")


def _nothing_to_restore() -> None:
    pass


def _install_sigterm(invocation: Invocation) -> Callable[[], None]:
    """Record SIGTERM as `aborted`, then die of it as if nothing had caught it.

    Only the main thread may set a handler: elsewhere `signal.signal` raises
    ValueError, and SIGTERM is left as it was.
    """
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return _nothing_to_restore  # the tool handles SIGTERM itself: leave it alone

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once
            finish(invocation, Terminated())
            os.kill(os.getpid(), signal.SIGTERM)

        signal.signal(signal.SIGTERM, on_sigterm)
    except (ValueError, OSError, AttributeError):
        return _nothing_to_restore

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return restore


class _Begun:
    """What `_begin` set up for one invocation, undone by `_end`.

    One user command is one record: an invocation inside another in the same
    thread (a command calling `app([...], standalone_mode=False)`) gets one
    already finished that notes nothing, with no trigger or SIGTERM handler.
    """

    def __init__(self, settings: Settings, root: Any) -> None:
        self.thread = _thread.get_ident()
        self.outer = _current_invocations.get(self.thread)
        self.invocation = Invocation(settings, started=time.perf_counter())
        if self.outer is not None:
            self.invocation.finished = self.invocation.leaf_reached = True
            self.restore_sigterm = _nothing_to_restore
            _current_invocations[self.thread] = self.invocation
            return
        self.invocation.trigger = start_trigger(settings)
        _record_contexts_of(root)
        _current_invocations[self.thread] = self.invocation
        self.restore_sigterm = _install_sigterm(self.invocation)


def _begin(settings: Settings, root: Any) -> _Begun | None:
    if _completion_requested():
        return None
    try:
        return _Begun(settings, root)
    except Exception as problem:
        settings.debug(f"could not instrument the invocation: {problem!r}")
        return None


def _end(begun: _Begun, error: BaseException | None) -> None:
    try:
        if begun.outer is None:
            _current_invocations.pop(begun.thread, None)
        else:
            _current_invocations[begun.thread] = begun.outer
        begun.restore_sigterm()
    except Exception as problem:
        begun.invocation.settings.debug(f"could not clean up after the invocation: {problem!r}")
    finish(begun.invocation, error)


def instrumented_group_class(base: Any, host: Host) -> type:
    """A subclass of the app's group class whose `main` records every invocation.

    When the author's app has a single command, Typer would have run that
    command directly; `host.single_command` builds it so that the tool
    behaves exactly as before, with `telemetry ...` added beside it.
    """

    def main(self: Any, *args: Any, **kwargs: Any) -> Any:
        # Everything runs in this one frame, so that a plain (non-rich)
        # traceback of the tool's own error shows a single extra line.
        argv_given = kwargs.get("args", args[0] if args else None)
        try:
            single = host.single_command(list(sys.argv[1:] if argv_given is None else argv_given))
        except Exception as problem:
            host.settings.debug(f"could not build the single command: {problem!r}")
            single = None
        # Lists the mounted group last; raises ValueError for a clash made after instrument().
        host.prepare_mount(self)
        begun = _begin(host.settings, self if single is None else single)
        if begun is None:
            return (
                base.main(self, *args, **kwargs) if single is None else single.main(*args, **kwargs)
            )
        error: BaseException | None = None
        try:
            if single is None:
                return base.main(self, *args, **kwargs)
            return single.main(*args, **kwargs)
        except BaseException as raised:
            error = raised
            raise
        finally:
            _end(begun, error)

    return type(base.__name__, (base,), {"main": main, "__module__": base.__module__})


# -- the long-running trigger ---------------------------------------------------------


class Trigger:
    """A thread that sends pending completed days once the invocation has run long enough.

    Only a *long-running* invocation sends: one that has run for
    `long_running_after` seconds, or one whose command is marked
    `@telemetry.long_running` (`now()`). The end of the invocation
    (`cancel()`) ends a thread still waiting, and waits the moment it takes
    to end, so short commands never import httpx, never open a socket and
    never leave a thread of ours running as the interpreter exits. A send
    already under way goes on while the tool does; if the tool exits first,
    `_exiting` cuts the send short and waits for the thread, briefly.

    A daemon `threading.Thread`: Typer has already imported `threading`, and
    its `join` waits until the thread has truly ended.
    """

    def __init__(self, settings: Settings) -> None:
        import threading  # already loaded by Typer: a lookup

        self._settings = settings
        # "waiting" until the thread starts sending ("sending") or the invocation ends first.
        self._state = "waiting"
        self._state_lock = _thread.allocate_lock()
        # Held until `now()` or `cancel()` releases it; the thread waits on it.
        self._wake = _thread.allocate_lock()
        self._wake.acquire()
        self._thread = threading.Thread(target=self._run, name="typer-telemetry", daemon=True)
        self._thread.start()

    def now(self) -> None:
        with contextlib.suppress(RuntimeError):  # already released: once is enough
            self._wake.release()

    def cancel(self) -> None:
        with self._state_lock:
            waiting = self._state == "waiting"
            if waiting:
                self._state = "cancelled"
        self.now()
        if waiting:
            self._thread.join(CANCEL_WAIT_SECONDS)

    def _run(self) -> None:
        try:
            self._wake.acquire(True, min(self._settings.long_running_after, _thread.TIMEOUT_MAX))
            if self._state == "cancelled":  # the usual end: at once, with nothing imported
                return
            from . import _exiting  # before the state lock: an import takes a lock of its own

            with self._state_lock:
                if self._state == "cancelled" or not _exiting.start_sending():
                    return
                self._state = "sending"
            try:
                from ._delivery import flush

                flush(self._settings, timeout=SEND_TIMEOUT_SECONDS)
            finally:
                _exiting.stop_sending()
        except Exception as problem:  # a thread's error must never surface
            self._settings.debug(f"sending failed: {problem!r}")


def start_trigger(settings: Settings) -> Trigger | None:
    """The trigger of a new invocation, if it could send at all (cheap when it could not)."""
    if not settings.has_destination():
        return None
    by_environment = decided_by_environment(settings.env_prefix, os.environ)
    if by_environment is not None and not by_environment.enabled:
        return None
    if "_pytest.assertion.rewrite" in sys.modules:
        _load_sending_code()
    return Trigger(settings)


def _load_sending_code() -> None:
    """Load, in this thread, the modules a send loads, before a trigger could send.

    Under pytest only. pytest rewrites the asserts of every module of a
    package that ships a pytest plugin (this one does), and parses each with
    `ast.parse`, without a cache under PYTHONDONTWRITEBYTECODE. On Python
    3.11, two threads parsing at once can fail with "SystemError: AST
    constructor recursion depth mismatch" (CPython gh-106905): a sending
    thread loading its modules while the command loads another of ours (its
    `telemetry.status()`, say) could fail the author's test. Loaded here,
    they are only looked up by the sending thread.
    """
    from . import _config, _delivery, _exiting  # noqa: F401 - loaded for the sending thread
