"""What the hook expects of the Telemetry facade, for the type checker only.

Never imported at run time: every instrumented run loads `_hook`, and these
classes would make it bigger to load for nothing.
"""

from __future__ import annotations

from typing import Protocol


class Recorder(Protocol):
    """What the hook hands a finished invocation to (the Telemetry facade)."""

    def record_invocation(
        self,
        command: str,
        outcome: str,
        error_class: str,
        flags: tuple[str, ...],
        duration_ms: float,
    ) -> None: ...

    def debug(self, message: str) -> None: ...

    def start_trigger(self) -> Trigger | None:
        """The long-running trigger for a new invocation, if this one could send."""
        ...


class Trigger(Protocol):
    def now(self) -> None: ...

    def cancel(self) -> None: ...
