"""Recording the tool's own events: what `telemetry.event(...)` returns, and timing a block.

The declaration (`_events.EventType`, made of `Choice`, `Bucket` and `Flag`
fields) is the allowlist; this module turns one occurrence into an
observation for the recorder. Loaded when the author declares an event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._events import EventType, FieldTypeError, UnknownFieldError

if TYPE_CHECKING:
    from ._protocols import Host
    from ._recording import Observation
    from ._settings import Settings


class Event:
    """A declared event of the tool's own: `record()` one, or time a block as one with `timed()`.

    Made by `telemetry.event(...)`. Recording never raises and never slows
    the tool: a value outside the declaration is recorded as `other` (a
    `Choice`) or not at all (a wrong type: the event is counted as dropped,
    which `status` shows). Under `<NAME>_TELEMETRY_DEBUG` such a mistake
    raises instead, so that the author sees it.
    """

    __slots__ = ("_host", "declaration")

    def __init__(self, host: Host, declaration: EventType) -> None:
        self._host = host
        self.declaration = declaration

    @property
    def name(self) -> str:
        return self.declaration.name

    def __repr__(self) -> str:
        return f"Event({self.declaration.name!r})"

    def record(
        self,
        *,
        outcome: str = "success",
        error_class: str | BaseException | type[BaseException] | None = None,
        duration_ms: float | None = None,
        **values: object,
    ) -> None:
        """Record one occurrence with the given field values.

        `outcome` is one of `success`, `error`, `usage_error`, `aborted`;
        `error_class` the exception (or its class, or its class name) that
        caused a failure, of which only the class name is kept; `duration_ms`
        how long it took, if it was timed.
        """
        self._record(values, outcome, error_class, duration_ms)

    def timed(self, **values: object) -> Timing:
        """Time the block as one occurrence: its duration, and its outcome from how it ended.

        The block's exception, if any, is recorded by class name and raised
        on as it was. `timing.set(...)` adds field values known only inside
        the block:

            with ingest.timed(driver="sqlite") as timing:
                tables = load_tables()
                timing.set(table_count=len(tables))
        """
        return Timing(self, values)

    def _record(
        self,
        values: Mapping[str, object],
        outcome: object,
        error_class: object,
        duration_ms: object,
    ) -> None:
        settings = self._host.settings
        try:
            observation = self._observation(settings, values, outcome, error_class, duration_ms)
        except (FieldTypeError, UnknownFieldError, TypeError, ValueError) as mistake:
            if settings.debugging():
                raise  # the author's mistake, shown where the author looks
            from ._recording import record_drop

            _guarded(settings, record_drop, f"event {self.name!r} not recorded: {mistake}")
            return
        from ._recording import record

        _guarded(settings, record, observation)

    def _observation(
        self,
        settings: Settings,
        values: Mapping[str, object],
        outcome: object,
        error_class: object,
        duration_ms: object,
    ) -> Observation:
        from ._checks import OUTCOMES, is_duration
        from ._recording import Observation

        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        if duration_ms is not None and (
            isinstance(duration_ms, bool)
            or not isinstance(duration_ms, (int, float))
            or not is_duration(duration_ms)
        ):
            raise TypeError("duration_ms must be a finite number of milliseconds, at least 0")
        return Observation(
            settings.today(),
            self.declaration.name,
            self.declaration.properties(values),
            str(outcome),
            "" if outcome == "success" else _class_name(error_class),
            None if duration_ms is None else float(duration_ms),
        )


def _class_name(error: object) -> str:
    """The class name of an exception, its class, or a name given as text ("" for none)."""
    if error is None:
        return ""
    if isinstance(error, BaseException):
        return type(error).__name__
    if isinstance(error, type) and issubclass(error, BaseException):
        return error.__name__
    if isinstance(error, str):
        return error  # checked against the schema (a Python identifier) before it is kept
    raise TypeError("error_class must be an exception, an exception class or a class name")


def _guarded(settings: Settings, action: Callable[[Settings, Any], None], argument: Any) -> None:
    """Run a recording step; whatever fails is explained under debug, never raised."""
    try:
        action(settings, argument)
    except Exception as problem:
        settings.debug(f"could not record the event: {problem!r}")


class Timing:
    """The block `Event.timed()` times; `set()` adds field values known only inside it."""

    __slots__ = ("_event", "_started", "_values")

    def __init__(self, event: Event, values: Mapping[str, object]) -> None:
        self._event = event
        self._values = dict(values)
        self._started = 0.0

    def set(self, **values: object) -> None:
        self._values.update(values)

    def __enter__(self) -> Timing:
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        duration_ms = (time.perf_counter() - self._started) * 1000.0
        outcome, error_class = _ending(error)
        self._event._record(self._values, outcome, error_class, duration_ms)


def _ending(error: BaseException | None) -> tuple[str, str]:
    """(outcome, error class) of a block that ended with `error` (Click's endings included)."""
    if error is None:
        return "success", ""
    from ._hook import classify

    ending = classify(error)
    return ending if ending is not None else ("success", "")


def declare(
    host: Host, declared: dict[str, Event], name: object, fields: Mapping[str, object]
) -> Event:
    """The Event `telemetry.event(name, **fields)` returns: made once per name.

    Declaring a name again with equal fields returns the same Event; with
    other fields it raises ValueError (one name, one meaning, on the wire).
    """
    declaration = EventType(name, fields)  # type: ignore[arg-type]
    if declaration.name in RESERVED_BACKEND_EVENT_NAMES:
        raise ValueError(
            f"event name {declaration.name!r} is taken by a back end's own events: choose another"
        )
    existing = declared.get(declaration.name)
    if existing is not None:
        if existing.declaration != declaration:
            raise ValueError(
                f"event {declaration.name!r} is already declared with other fields:"
                " declare each event once (keep the Event object telemetry.event() returns)"
            )
        return existing
    event = declared[declaration.name] = Event(host, declaration)
    return event


# The PostHog back end's own event names (a tool's event would mix with them there).
RESERVED_BACKEND_EVENT_NAMES = frozenset({"cli_command_rollup", "telemetry_deletion_requested"})
