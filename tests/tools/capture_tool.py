"""A small inventory tool for the pytest plugin's tests: run in process (imported) or as a script.

It has an endpoint (so a long-running run would send), a custom event whose
failing block is recorded as an error, and a long-running command.
CAPTURE_TOOL_NOW=<epoch seconds> pins the clock that decides the UTC day.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from typer_telemetry import Bucket, Choice, Flag, Telemetry

app = typer.Typer(help="An inventory tool.")
telemetry = Telemetry("inventory", version="1.0.0", endpoint="https://telemetry.invalid/v1")
if os.environ.get("CAPTURE_TOOL_NOW"):
    telemetry.settings = telemetry.settings.replace(
        clock=lambda: float(os.environ["CAPTURE_TOOL_NOW"])
    )
ingest_completed = telemetry.event(
    "ingest_completed", source=Choice("csv", "json"), rows=Bucket(10, 100), dry=Flag()
)
telemetry.instrument(app)


@app.command()
def ingest(
    source: Annotated[str, typer.Option("--source")],
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
) -> None:
    """Load a file; the custom event says how it went."""
    kind = source.rpartition(".")[2]
    with ingest_completed.timed(source=kind, dry=dry_run) as timing:
        if not os.path.exists(source):
            raise FileNotFoundError(source)
        with open(source) as handle:
            timing.set(rows=sum(1 for _ in handle))
    typer.echo("ingested")


@app.command()
def count(items: list[str]) -> None:
    """Print how many items were given."""
    typer.echo(str(len(items)))


@app.command()
@telemetry.long_running
def sync(
    until_stdin_closes: Annotated[bool, typer.Option("--until-stdin-closes")] = False,
) -> None:
    """A long-running command: it starts a send of the completed days at once."""
    if until_stdin_closes:
        import sys

        sys.stdin.read()
    typer.echo("synced")


if __name__ == "__main__":
    app()
