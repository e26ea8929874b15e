"""A tool whose author set a custom group class (ordering and aliases)."""

from __future__ import annotations

import os
from typing import Annotated, Any, ClassVar

import typer
from typer.core import TyperGroup


class AliasGroup(TyperGroup):
    aliases: ClassVar[dict[str, str]] = {"m": "migrate"}

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(super().list_commands(ctx))


app = typer.Typer(cls=AliasGroup)
if not os.environ.get("TOOL_WITHOUT_TELEMETRY"):
    from typer_telemetry import Telemetry

    Telemetry("custom-group-tool", version="0.1.0").instrument(app)


@app.command()
def migrate(force: Annotated[bool, typer.Option("--force", "-f")] = False) -> None:
    typer.echo(f"migrate force={force}")


@app.command()
def check() -> None:
    typer.echo("ok")


if __name__ == "__main__":
    app()
