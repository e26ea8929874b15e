"""What the hook is handed by the wiring, for the type checker only.

Never imported at run time: every instrumented run loads `_hook`, and these
classes would make it bigger to load for nothing. The hook depends on this
interface, not on the facade that implements it (`_telemetry.Mount`).
"""

from __future__ import annotations

from typing import Any, Protocol

from ._settings import Settings


class Host(Protocol):
    """The instrumented app as the hook sees it: its settings now, and what to run."""

    settings: Settings

    def single_command(self, argv: list[str]) -> Any | None:
        """The command a one-command app runs in place of its group, else None."""
        ...

    def prepare_mount(self, group: Any) -> None:
        """Called as the root group starts: lists the mounted group last, refuses a late clash."""
        ...
