"""The mountable `telemetry` group: cheap to mount, its commands made on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import typer
from typer.core import TyperGroup

from ._hook import TELEMETRY_MARKER

if TYPE_CHECKING:
    from ._telemetry import Telemetry


class TelemetryGroup(TyperGroup):
    """The group class of `telemetry ...`; the hook never records these commands.

    Typer builds every mounted group on every run of the tool. This one is
    built empty, and its commands are made only when it is itself invoked,
    so that mounting it costs the tool's ordinary commands next to nothing.
    """

    telemetry: ClassVar[Telemetry]

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        if not self.commands:
            from ._cli import commands_app  # the commands load only when used

            commands = typer.main.get_group(commands_app(type(self).telemetry)).commands
            self.commands.update(commands)
        return super().make_context(info_name, args, parent, **extra)


setattr(TelemetryGroup, TELEMETRY_MARKER, True)


def build_app(telemetry: Telemetry) -> typer.Typer:
    """The mountable `telemetry` app; its commands are made on first use."""
    group_class = type(TelemetryGroup.__name__, (TelemetryGroup,), {"telemetry": telemetry})
    return typer.Typer(
        cls=group_class,
        help=f"Show or change {telemetry.name}'s anonymous usage telemetry.",
        no_args_is_help=True,
        add_completion=False,
    )
