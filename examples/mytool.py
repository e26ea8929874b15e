"""An example tool instrumented with typer-telemetry (used by the demo and the tests).

python examples/mytool.py hello World
python examples/mytool.py db migrate --force
python examples/mytool.py telemetry status
"""

from __future__ import annotations

import os
import time
from typing import Annotated

import typer

from typer_telemetry import Telemetry

app = typer.Typer(help="An example tool with anonymous usage telemetry.")
telemetry = Telemetry("mytool", version="1.4.0", long_running_after=1.0)
telemetry.instrument(app)
# For the demo only: pretend the clock says another time (seconds since the epoch).
if os.environ.get("MYTOOL_DEMO_NOW"):
    telemetry.settings = telemetry.settings.replace(
        clock=lambda: float(os.environ["MYTOOL_DEMO_NOW"])
    )

db = typer.Typer(help="Database commands.")
app.add_typer(db, name="db")

state = {"verbose": False}


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Say more.")] = False,
) -> None:
    """An example tool."""
    state["verbose"] = verbose


@app.command()
def hello(
    name: str,
    greeting: Annotated[str, typer.Option("--greeting", "-g")] = "Hello",
    shout: Annotated[bool, typer.Option("--shout/--no-shout")] = False,
) -> None:
    """Greet someone."""
    text = f"{greeting}, {name}!"
    typer.echo(text.upper() if shout else text)


@app.command()
def fail(message: str = "something broke") -> None:
    """Raise an exception."""
    raise ValueError(message)


@app.command()
def leave(code: int = 3) -> None:
    """Exit with a given code."""
    raise typer.Exit(code)


@app.command()
def wait(seconds: float = 1.0) -> None:
    """Sleep (for long-running and signal demos)."""
    typer.echo("waiting", err=True)
    time.sleep(seconds)
    typer.echo("done")


@db.command()
def migrate(
    force: Annotated[bool, typer.Option("--force", "-f")] = False,
    target: Annotated[str, typer.Option("--target", "-t")] = "head",
) -> None:
    """Migrate the database."""
    typer.echo(f"migrated to {target}{' (forced)' if force else ''}")


if __name__ == "__main__":
    app()
