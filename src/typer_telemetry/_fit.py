"""What is recorded of an invocation that the schema cannot hold as it is.

Loaded only when `validate_observation` refuses an invocation (about never),
so that the modules every recorded run loads stay as small as they are.
TELEMETRY.md lists every case and what is recorded; nothing that does not
fit is ever written, not even to the debug output.

Hot path: standard library only (it runs inside a recorded run).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ._checks import (
    MAX_DURATION_MS,
    MAX_FLAGS,
    _is_class_name,
    is_command_path,
    is_day,
    is_flag,
    validate_observation,
)

# What an error class whose name the schema cannot hold (not ASCII, longer
# than 100 characters, empty) is recorded as. Python reserves names of the
# form `__name__` for itself, so no real exception class is called this.
UNREPRESENTABLE_ERROR_CLASS = "__unrepresentable__"


def fit_observation(
    store_dir: Path,
    day: str,
    command: str,
    outcome: str,
    error_class: str,
    flags: Sequence[str],
    duration_ms: float,
    debug: Callable[[str], None],
) -> tuple[str, tuple[str, ...], float] | None:
    """The (error_class, flags, duration_ms) to record in place of those refused, or None.

    An error class outside the schema becomes `UNREPRESENTABLE_ERROR_CLASS`;
    option names outside the schema are left out and, of more than
    `MAX_FLAGS`, the first `MAX_FLAGS` in sorted order are kept; a duration
    longer than `MAX_DURATION_MS` counts as that long. A command path that
    cannot be recorded (deeper than `MAX_COMMAND_DEPTH`, or a name outside
    the schema) has no stand-in: the invocation is counted as dropped for the
    day, which `status` shows, and None is returned. Whatever else is wrong
    (a day the clock cannot give) raises `SchemaError`, as before.
    """
    if not is_command_path(command):
        if not is_day(day):
            validate_observation(day, command, outcome, error_class, flags, duration_ms)
        from ._journal import _count_dropped

        reason = "the command path is outside the schema (too deep, or a name it cannot hold)"
        _count_dropped(store_dir, day, debug, reason)
        return None
    if outcome != "success" and not _is_class_name(error_class):
        error_class = UNREPRESENTABLE_ERROR_CLASS
    kept = tuple(sorted({flag for flag in flags if is_flag(flag)})[:MAX_FLAGS])
    if isinstance(duration_ms, (int, float)) and duration_ms > MAX_DURATION_MS:
        duration_ms = MAX_DURATION_MS
    validate_observation(day, command, outcome, error_class, kept, duration_ms)
    debug("the invocation was made to fit the schema (see TELEMETRY.md)")
    return error_class, kept, duration_ms
