"""Typer's own `typer` CLI, instrumented (the tests run it as a real process).

Its root callback sets its own group class (`@app.callback(cls=TyperCLIGroup)`)
and takes an optional positional PATH_OR_MODULE, which would swallow the name
of any mounted group: so the hook is installed alone (`mount=False`).
TOOL_WITHOUT_TELEMETRY=1 runs the same CLI without the library.
"""

from __future__ import annotations

import os
import sys

import typer.cli

if not os.environ.get("TOOL_WITHOUT_TELEMETRY"):
    from typer_telemetry import Telemetry

    Telemetry("typer-cli-tool", version=typer.__version__).instrument(typer.cli.app, mount=False)

if __name__ == "__main__":
    sys.exit(typer.cli.main())
