"""A `typer.run(main)` tool, instrumented with the one-line change `telemetry.run(main)`.

TOOL_WITHOUT_TELEMETRY=1 runs it with `typer.run(main)`, as before the change.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer


def main(
    name: str,
    loud: Annotated[bool, typer.Option("--loud", "-l")] = False,
) -> None:
    """Greet NAME."""
    typer.echo(f"hi {name}{'!' if loud else ''}")


if __name__ == "__main__":
    if os.environ.get("TOOL_WITHOUT_TELEMETRY"):
        typer.run(main)
    else:
        from typer_telemetry import Telemetry

        Telemetry("typer-run-tool", version="1.0.0").run(main)
