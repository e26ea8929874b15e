"""The small tool every variant runs: the same commands, whatever instruments them.

`build_app(command_done)` calls `command_done(name)` as a command ends, which
is where a tool author instrumenting by hand would report it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Annotated

import typer

CommandDone = Callable[[str], None]


def build_app(command_done: CommandDone | None = None) -> typer.Typer:
    app = typer.Typer(help="A small tool to benchmark.")

    def done(name: str) -> None:
        if command_done is not None:
            command_done(name)

    @app.command()
    def hello(
        name: str,
        greeting: Annotated[str, typer.Option("--greeting", "-g")] = "Hello",
        count: Annotated[int, typer.Option("--count", "-n")] = 1,
    ) -> None:
        """Greet someone: the short invocation."""
        for _ in range(count):
            typer.echo(f"{greeting}, {name}!")
        done("hello")

    @app.command()
    def work(seconds: Annotated[float, typer.Option("--seconds")] = 1.5) -> None:
        """Keep busy for a while, then say "worked": the long-running invocation."""
        time.sleep(seconds)
        typer.echo("worked")
        sys.stdout.flush()
        done("work")

    return app
