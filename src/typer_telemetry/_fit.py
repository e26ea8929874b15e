"""What is recorded of an event that the schema cannot hold as it is.

Loaded only when `check_observation` refuses an event (about never), so that
the modules every recorded run loads stay as small as they are. TELEMETRY.md
lists every case and what is recorded; nothing that does not fit is ever
written, not even to the debug output.

Hot path: standard library only (it runs inside a recorded run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._checks import (
    COMMAND_EVENT,
    MAX_DURATION_MS,
    MAX_FLAGS,
    SchemaError,
    _is_class_name,
    check_observation,
    is_command_path,
    is_day,
    is_flag,
)

if TYPE_CHECKING:
    from ._recording import Observation
    from ._records import Properties

# What an error class whose name the schema cannot hold (not ASCII, longer
# than 100 characters, empty) is recorded as. Python reserves names of the
# form `__name__` for itself, so no real exception class is called this.
UNREPRESENTABLE_ERROR_CLASS = "__unrepresentable__"


def fit_observation(observation: Observation) -> tuple[Properties, str, float | None] | None:
    """The (properties, error class, duration) to record in place of those refused, or None.

    None means: count the event as dropped.

    An error class outside the schema becomes `UNREPRESENTABLE_ERROR_CLASS`;
    option names outside the schema are left out and, of more than
    `MAX_FLAGS`, the first `MAX_FLAGS` in sorted order are kept; a duration
    longer than `MAX_DURATION_MS` counts as that long. A command path that
    cannot be recorded (deeper than `MAX_COMMAND_DEPTH`, or a name outside
    the schema) has no stand-in: None, and the event is counted as dropped
    for its day, which `status` shows. Whatever else is wrong (a day the
    clock cannot give) raises `SchemaError`: nothing is recorded or counted.
    """
    if not is_day(observation.day):
        raise SchemaError("day is outside the schema")
    properties = dict(observation.properties)
    if observation.event == COMMAND_EVENT:
        if not is_command_path(properties.get("command")):
            return None
        flags = properties.get("flags", ())
        if isinstance(flags, tuple):
            properties["flags"] = tuple(
                sorted({flag for flag in flags if is_flag(flag)})[:MAX_FLAGS]
            )
    error_class = observation.error_class
    if observation.outcome != "success" and not _is_class_name(error_class):
        error_class = UNREPRESENTABLE_ERROR_CLASS
    duration_ms = observation.duration_ms
    if isinstance(duration_ms, (int, float)) and duration_ms > MAX_DURATION_MS:
        duration_ms = MAX_DURATION_MS
    fitted = (tuple(sorted(properties.items())), error_class, duration_ms)
    try:
        check_observation(observation.replace(*fitted))
    except SchemaError:
        return None
    return fitted
