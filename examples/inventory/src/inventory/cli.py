"""The `inventory` command: a stock list kept in a CSV file.

inventory ingest deliveries.csv          add the quantities of a delivery file
inventory ingest returns.json --dry-run  check a file without changing the stock
inventory stock show --below 5           what runs low
inventory stock adjust SKU-1 -2          change one item by hand
inventory sync --once                    push the stock to the warehouse (long-running)
inventory telemetry status               what telemetry records, and how to turn it off
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from typer_telemetry import Bucket, Choice, Flag, Telemetry

from . import __version__

app = typer.Typer(help="Keep a stock list in a CSV file.", no_args_is_help=True)
stock = typer.Typer(help="Look at and change the stock list.", no_args_is_help=True)
app.add_typer(stock, name="stock")

telemetry = Telemetry(
    "inventory", version=__version__, endpoint="https://telemetry.example.com/inventory"
)
telemetry.instrument(app)

# The tool's own event: one per ingest, timed, with the file's format, roughly
# how many rows it had (a range, never the number) and whether it was a dry run.
ingest_completed = telemetry.event(
    "ingest_completed",
    file_format=Choice("csv", "json"),
    rows=Bucket(10, 100, 1000, 10000),
    dry_run=Flag(),
)

FIELDS = ("sku", "quantity")
state = {"store": Path("inventory.csv")}


class PreflightError(Exception):
    """The delivery file cannot be ingested as it is (missing, unknown format, bad columns)."""


@app.callback()
def main(
    store: Annotated[
        Path, typer.Option("--store", envvar="INVENTORY_STORE", help="The stock list.")
    ] = Path("inventory.csv"),
) -> None:
    """Keep a stock list in a CSV file."""
    state["store"] = store


def read_stock() -> dict[str, int]:
    path = state["store"]
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["sku"]: int(row["quantity"]) for row in csv.DictReader(handle)}


def write_stock(items: dict[str, int]) -> None:
    with state["store"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        for sku, quantity in sorted(items.items()):
            writer.writerow({"sku": sku, "quantity": quantity})


def read_delivery(source: Path) -> list[tuple[str, int]]:
    """The (sku, quantity) rows of a delivery file, or PreflightError saying why not."""
    if source.suffix not in (".csv", ".json"):
        raise PreflightError(f"{source.name}: only .csv and .json files can be ingested")
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as error:
        raise PreflightError(f"{source}: {error.strerror}") from None
    rows = json.loads(text) if source.suffix == ".json" else list(csv.DictReader(text.splitlines()))
    if not isinstance(rows, list) or any(
        not isinstance(row, dict) or set(FIELDS) - set(row) for row in rows
    ):
        raise PreflightError(f"{source.name}: every row needs {' and '.join(FIELDS)}")
    return [(str(row["sku"]), int(row["quantity"])) for row in rows]


@app.command()
def ingest(
    source: Annotated[Path, typer.Argument(help="A delivery file (.csv or .json).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Check the file, change nothing.")
    ] = False,
) -> None:
    """Add the quantities of a delivery file to the stock."""
    try:
        with ingest_completed.timed(file_format=source.suffix[1:], dry_run=dry_run) as timing:
            rows = read_delivery(source)
            timing.set(rows=len(rows))
            if not dry_run:
                items = read_stock()
                for sku, quantity in rows:
                    items[sku] = items.get(sku, 0) + quantity
                write_stock(items)
    except PreflightError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{'checked' if dry_run else 'ingested'} {len(rows)} rows")


@stock.command("show")
def show(
    below: Annotated[
        int | None, typer.Option("--below", help="Only items with fewer than this.")
    ] = None,
) -> None:
    """Print the stock list."""
    for sku, quantity in sorted(read_stock().items()):
        if below is None or quantity < below:
            typer.echo(f"{sku}\t{quantity}")


@stock.command("adjust")
def adjust(
    sku: str,
    delta: int,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept nowhere).")] = "",
) -> None:
    """Change the quantity of one item."""
    items = read_stock()
    items[sku] = items.get(sku, 0) + delta
    if items[sku] < 0:
        typer.echo(f"error: {sku} would fall below zero", err=True)
        raise typer.Exit(1)
    write_stock(items)
    typer.echo(f"{sku}\t{items[sku]}")


@app.command()
@telemetry.long_running
def sync(
    once: Annotated[
        bool, typer.Option("--once/--watch", help="Push once, or until stdin ends.")
    ] = True,
) -> None:
    """Push the stock list to the warehouse (long-running: pending telemetry goes out meanwhile)."""
    typer.echo(f"pushed {len(read_stock())} items")
    if not once:
        sys.stdin.read()
