"""`python -m typer_telemetry.collector`: the same as `typer-telemetry-collector`."""

from __future__ import annotations

from .cli import main

main()
