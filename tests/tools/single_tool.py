"""A one-command tool: Typer runs the command directly, with no subcommand name."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from typer_telemetry import Telemetry

app = typer.Typer()
if not os.environ.get("TOOL_WITHOUT_TELEMETRY"):
    Telemetry("single-tool", version="0.1.0").instrument(app)


@app.command()
def main(
    name: str,
    loud: Annotated[bool, typer.Option("--loud", "-l")] = False,
) -> None:
    """Greet NAME."""
    typer.echo(f"hi {name}{'!' if loud else ''}")


if __name__ == "__main__":
    app()
