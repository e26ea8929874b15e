"""How an invocation ended: (outcome, error class) from what left Click's `main`.

Click and Typer turn every ending into `SystemExit` in standalone mode, but
they raise it *while handling* the original exception, so `__context__`
still holds it: a `UsageError`, an `Abort` caused by `KeyboardInterrupt`, an
`Exit`. Exceptions are recognised by class name along their MRO, so that the
same code serves Click and Typer's vendored copy of it.
"""

from __future__ import annotations

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
        return ("error", "EOFError")
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
    if isinstance(error, KeyboardInterrupt):
        return ("aborted", "KeyboardInterrupt")
    if _is_click_exception(error):  # standalone_mode=False lets them through
        return _from_click(error, None)
    return ("error", type(error).__name__)
