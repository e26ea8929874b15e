"""Variants (b) and (c): the sample tool instrumented with typer-telemetry, as its README shows.

The runner points BENCHTOOL_TELEMETRY_ENDPOINT at its local receiver; the
endpoint written here is a closed local port, so nothing can leave the machine.
BENCH_NOW=<epoch seconds> pins the clock that decides the UTC day (to record
days that are already complete), BENCH_LONG_RUNNING_AFTER=<seconds> sets when
a running command counts as long-running.
"""

from __future__ import annotations

import os

from sample_app import build_app

from typer_telemetry import Telemetry

app = build_app()
telemetry = Telemetry(
    "benchtool",
    version="1.0.0",
    endpoint="http://127.0.0.1:9/v1",
    long_running_after=float(os.environ.get("BENCH_LONG_RUNNING_AFTER", "2.0")),
)
if os.environ.get("BENCH_NOW"):
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(os.environ["BENCH_NOW"]))
telemetry.instrument(app)

if __name__ == "__main__":
    app()
