"""A tool whose author chooses where the telemetry group goes (the tests run it as a real process).

TOOL_MOUNT says how the group is mounted:
  instrument (default)  telemetry.instrument(app, group_name=..., hidden=...)
  none                  telemetry.instrument(app, mount=False): the hook alone
  before                app.add_typer(telemetry.app, name="privacy"), then instrument(app)
  sub-app               instrument(app, mount=False), then telemetry.app under `admin telemetry`
  twice                 instrument(app), then app.add_typer(telemetry.app, ...) again (a mistake)
  clash-after           instrument(app), then a command named `telemetry` (a mistake)
TOOL_GROUP_NAME=<word> and TOOL_HIDDEN=1 are passed to instrument().
TOOL_SINGLE=1 makes it a one-command app.
TOOL_WITHOUT_TELEMETRY=1 runs the same app without the library.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

app = typer.Typer(help="A tool with its own idea of the telemetry group.")
MOUNT = os.environ.get("TOOL_MOUNT", "instrument")
telemetry: Any = None

if not os.environ.get("TOOL_WITHOUT_TELEMETRY"):
    from typer_telemetry import Telemetry

    telemetry = Telemetry("named-group-tool", version="1.0.0")
    options: dict[str, Any] = {}
    if os.environ.get("TOOL_GROUP_NAME"):
        options["group_name"] = os.environ["TOOL_GROUP_NAME"]
    if os.environ.get("TOOL_HIDDEN"):
        options["hidden"] = True
    if MOUNT == "before":
        app.add_typer(telemetry.app, name="privacy")
        telemetry.instrument(app)
    elif MOUNT in ("none", "sub-app"):
        telemetry.instrument(app, mount=False)
    else:
        telemetry.instrument(app, **options)
        if MOUNT == "twice":
            app.add_typer(telemetry.app, name="privacy")


@app.command()
def greet(
    name: str,
    loud: Annotated[bool, typer.Option("--loud", "-l")] = False,
) -> None:
    """Greet NAME."""
    typer.echo(f"hi {name}{'!' if loud else ''}")


if not os.environ.get("TOOL_SINGLE"):

    @app.command()
    def bye() -> None:
        typer.echo("bye")

    if MOUNT == "clash-after":

        @app.command("telemetry")
        def own_telemetry() -> None:
            typer.echo("the tool's own telemetry command")


if MOUNT == "sub-app" and telemetry is not None:
    admin = typer.Typer(help="Administration.")
    admin.add_typer(telemetry.app, name="telemetry")
    app.add_typer(admin, name="admin")


if __name__ == "__main__":
    app()
