"""`python -m typer_telemetry`: a tool's own TELEMETRY.md and its schema, from its code.

    python -m typer_telemetry docs mytool.cli:telemetry > TELEMETRY.md
    python -m typer_telemetry docs mytool.cli:telemetry --check TELEMETRY.md   # in CI
    python -m typer_telemetry schema mytool.cli:telemetry --json

TARGET is `module:attribute`: the tool's Telemetry object, or the Typer app
it instruments (the current folder is searched first, as uvicorn does).
Importing the module runs the tool's top-level code, never its commands:
`DO_NOT_TRACK=1` is set for this process first, so nothing of this run can
be recorded as a use of the tool.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from ._telemetry import Telemetry

# Exit code of a TARGET that cannot be loaded or described (Click's usage-error code).
BAD_TARGET = 2

main = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="A tool's own telemetry contract: its TELEMETRY.md and its schema, from its code.",
)

TargetArgument = Annotated[
    str,
    typer.Argument(
        metavar="MODULE:ATTRIBUTE",
        help="The tool's Telemetry object (or its instrumented Typer app), e.g. mytool.cli:telemetry.",
        show_default=False,
    ),
]


def _fail(message: str, code: int = BAD_TARGET) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def _write(text: str) -> None:
    """`text` on stdout as UTF-8 with plain newlines, whatever the platform's console encoding:
    the generated file is then the same bytes on every system."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    buffer.write(text.encode("utf-8"))
    buffer.flush()


def _one_line(error: BaseException) -> str:
    """An error as one line: its message's first line, else its class."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _loaded(target: str) -> Telemetry:
    from ._contract import TargetError, load_target

    os.environ["DO_NOT_TRACK"] = "1"  # importing the tool is no use of it
    try:
        return load_target(target)
    except TargetError as error:
        _fail(str(error))


def _described(function: object, telemetry: Telemetry) -> str:
    """The Markdown or JSON text, or a one-line error (no commands, a clash)."""
    try:
        result = function(telemetry)  # type: ignore[operator]
    except Exception as error:
        _fail(f"cannot describe {telemetry.settings.name}'s telemetry: {_one_line(error)}")
    return str(result)


@main.command()
def docs(
    target: TargetArgument,
    check: Annotated[
        Path | None,
        typer.Option(
            "--check",
            metavar="FILE",
            help="Compare FILE with the generated text: exit 1 with the difference if it differs.",
        ),
    ] = None,
) -> None:
    """Print the tool's own TELEMETRY.md (or check a checked-in copy with --check FILE)."""
    from ._contract import check_telemetry_md, telemetry_md

    telemetry = _loaded(target)
    if check is None:
        _write(_described(telemetry_md, telemetry))
        return
    try:
        problem = check_telemetry_md(telemetry, check)
    except Exception as error:
        _fail(f"cannot describe {telemetry.settings.name}'s telemetry: {_one_line(error)}")
    if problem is not None:
        problem = problem.replace("MODULE:ATTRIBUTE", target)
        _fail(problem.rstrip("\n"), 1)
    typer.echo(f"{check} is current.", err=True)


@main.command()
def schema(
    target: TargetArgument,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the machine-readable document (the allowlist).")
    ] = False,
) -> None:
    """Print every command, option, event and field the tool could ever send."""
    from ._contract import schema_json, schema_lines, tool_schema

    telemetry = _loaded(target)
    try:
        document = tool_schema(telemetry)
    except Exception as error:
        _fail(f"cannot describe {telemetry.settings.name}'s telemetry: {_one_line(error)}")
    if as_json:
        _write(schema_json(document))
        return
    import shutil

    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else 80
    _write("\n".join(schema_lines(document, width)) + "\n")


if __name__ == "__main__":
    main(prog_name="python -m typer_telemetry")
