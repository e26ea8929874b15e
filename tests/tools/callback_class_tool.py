"""A tool that gives its group class to `@app.callback(cls=...)`, as Typer's own CLI does.

TOOL_ORDER=before registers the callback before `instrument(app)`, `after`
(the default) after it. The group class answers to an alias (`hi` for `hello`).
TOOL_WITHOUT_TELEMETRY=1 runs the same app without the library.
"""

from __future__ import annotations

import os
from typing import Any

import typer
from typer.core import TyperGroup


class AliasGroup(TyperGroup):
    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return super().get_command(ctx, {"hi": "hello"}.get(cmd_name, cmd_name))


app = typer.Typer()
ORDER = os.environ.get("TOOL_ORDER", "after")


def root(verbose: bool = False) -> None:
    """A tool with its own group class."""


def instrument() -> None:
    if not os.environ.get("TOOL_WITHOUT_TELEMETRY"):
        from typer_telemetry import Telemetry

        Telemetry("callback-class-tool", version="1.0.0").instrument(app)


if ORDER == "before":
    app.callback(cls=AliasGroup)(root)
    instrument()
else:
    instrument()
    app.callback(cls=AliasGroup)(root)


@app.command()
def hello(name: str) -> None:
    typer.echo(f"hello {name}")


@app.command()
def bye() -> None:
    typer.echo("bye")


if __name__ == "__main__":
    app()
