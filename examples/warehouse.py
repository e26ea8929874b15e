"""An example tool that records events of its own besides its commands.

python examples/warehouse.py ingest postgres --tables 412
python examples/warehouse.py ingest sqlite --tables 3 --demo
python examples/warehouse.py check snowflake
python examples/warehouse.py telemetry status

Two events: `ingest_completed`, timed around the work, with the driver (one
of three words, anything else recorded as `other`), the number of tables (as
a range, never the number) and whether it was a demo; and `connection_test`,
recorded with its outcome. The `runner` and `project` signals add who ran the
tool (a terminal, a script, a coding agent) and a salted hash of the project
folder to every record.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Annotated

import typer

from typer_telemetry import Bucket, Choice, Flag, Telemetry
from typer_telemetry.backends import Backend, OTLPBackend, PostHogBackend


def backend() -> Backend | None:
    """Where the data goes, for the demo and the tests: PostHog, OTLP, or the endpoint below."""
    if os.environ.get("WAREHOUSE_POSTHOG_HOST"):
        return PostHogBackend("phc_warehouse_example", host=os.environ["WAREHOUSE_POSTHOG_HOST"])
    if os.environ.get("WAREHOUSE_OTLP_ENDPOINT"):
        return OTLPBackend(os.environ["WAREHOUSE_OTLP_ENDPOINT"])
    return None


app = typer.Typer(help="Load tables into the warehouse.")
telemetry = Telemetry(
    "warehouse",
    version="2.0.0",
    endpoint=os.environ.get("WAREHOUSE_ENDPOINT") or None,
    backend=backend(),
    signals=("runner", "project"),
    long_running_after=float(os.environ.get("WAREHOUSE_LONG_RUNNING_AFTER", "1.0")),
)
telemetry.instrument(app)
# For the demo and the tests only: pretend the clock says another time.
if os.environ.get("WAREHOUSE_NOW"):
    telemetry.settings = telemetry.settings.replace(
        clock=lambda: float(os.environ["WAREHOUSE_NOW"])
    )

DRIVERS = ("postgres", "sqlite", "snowflake")
ingest_completed = telemetry.event(
    "ingest_completed",
    driver=Choice(*DRIVERS),
    table_count=Bucket(10, 100, 1000),
    demo=Flag(),
)
connection_test = telemetry.event("connection_test", driver=Choice(*DRIVERS))


class ConnectionRefused(Exception):
    """The warehouse did not answer."""


@app.command()
def ingest(
    driver: str,
    tables: Annotated[int, typer.Option(help="How many tables to load.")] = 1,
    demo: Annotated[bool, typer.Option("--demo", help="Load the demo data set.")] = False,
) -> None:
    """Load tables; the ingest is timed and recorded as `ingest_completed`."""
    with ingest_completed.timed(driver=driver, demo=demo) as timing:
        time.sleep(float(os.environ.get("WAREHOUSE_WORK_SECONDS", "0")))
        if tables < 0:
            raise ValueError("a negative number of tables")
        timing.set(table_count=tables)
    typer.echo(f"loaded {tables} tables with {driver}")


@app.command()
@telemetry.long_running
def sync() -> None:
    """A long-running command (it runs until its input ends): pending days are sent meanwhile."""
    typer.echo("syncing")
    sys.stdout.flush()
    sys.stdin.read()
    typer.echo("synced")


@app.command()
def check(driver: str) -> None:
    """Test the connection; recorded as `connection_test`, failed or not."""
    if driver not in DRIVERS:
        connection_test.record(driver=driver, outcome="error", error_class=ConnectionRefused)
        typer.echo(f"cannot reach {driver}", err=True)
        raise typer.Exit(1)
    connection_test.record(driver=driver)
    typer.echo(f"{driver} answers")


if __name__ == "__main__":
    app()
