"""The tool's TELEMETRY.md says exactly what the code records."""

from __future__ import annotations

from pathlib import Path

from inventory import cli

from typer_telemetry.testing import assert_telemetry_md_current


def test_telemetry_md_is_current() -> None:
    assert_telemetry_md_current(cli.telemetry, Path(__file__).parent.parent / "TELEMETRY.md")
