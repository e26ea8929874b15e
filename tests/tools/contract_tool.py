"""A tool with every shape of command tree the contract must describe (run as a real process).

Root options, a group with options of its own, nested groups, on/off
options, short-only and hidden options, a hidden command, a command loaded
only when asked (a lazy group), an option and a command whose names fall
outside the schema, and a command that declares `-h` as its help.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from typer_telemetry import Bucket, Flag, Telemetry


class LazyGroup(TyperGroup):
    """Builds its `lazy` command only when asked, as plugin loaders do."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), "lazy"]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name != "lazy":
            return super().get_command(ctx, cmd_name)
        loaded = typer.Typer()

        @loaded.command()
        def lazy(deep: Annotated[bool, typer.Option("--deep")] = False) -> None:
            typer.echo(f"lazy deep={deep}")

        command = typer.main.get_command(loaded)
        command.name = "lazy"
        return command


app = typer.Typer(cls=LazyGroup, help="A tool for the contract tests.")
telemetry = Telemetry("contract-tool", version="3.1.0", endpoint="https://t.example.com/v1")
telemetry.instrument(app)
batch = telemetry.event("batch_done", size=Bucket(1, 10), retried=Flag())


@app.callback()
def root(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Root options are recorded with every command."""


db = typer.Typer(help="Database commands.")
app.add_typer(db, name="db")


@db.callback()
def db_options(profile: Annotated[str, typer.Option("--profile")] = "default") -> None:
    """The group's option is recorded with each of its commands."""


@db.command()
def migrate(
    force: Annotated[bool, typer.Option("--force", "-f")] = False,
    reload: Annotated[bool, typer.Option("--reload/--no-reload")] = True,
    target: Annotated[str, typer.Option("--to")] = "head",
    secret: Annotated[bool, typer.Option("--secret-mode", hidden=True)] = False,
    quiet: Annotated[bool, typer.Option("-q")] = False,
) -> None:
    typer.echo("migrated")


@db.command(hidden=True)
def vacuum(full: Annotated[bool, typer.Option("--full")] = False) -> None:
    typer.echo("vacuumed")


tables = typer.Typer(help="Tables.")
db.add_typer(tables, name="tables")


@tables.command("list")
def list_tables(show_all: Annotated[bool, typer.Option("--all")] = False) -> None:
    typer.echo("tables")


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def ingest(
    naive: Annotated[str, typer.Option("--naïve")] = "",
    color: Annotated[bool, typer.Option(" /--no-color")] = True,
) -> None:
    typer.echo("ingested")


@app.command("grüße")
def greet() -> None:
    typer.echo("hello")


if __name__ == "__main__":
    app()
