"""Time the phases of one short invocation from inside the process: where added time goes.

    python phases.py bare|instrumented REPORT_FILE

Runs `hello World` as bare.py or instrumented.py would, timing each phase,
and writes the milliseconds as JSON to REPORT_FILE. The runner times the
whole process too; what is left over is interpreter start-up and exit.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # typing is imported for real by Typer, inside the timed phases
    from collections.abc import Callable
    from typing import Any

# Phase names, as the runner reports them.
TYPER = "import Typer, build the app"
LIBRARY = "import typer_telemetry"
INSTRUMENT = "Telemetry() and instrument(app)"
INVOCATION = "the invocation: app()"
RECORDING = "of which: recording the invocation"
TRIGGER = "of which: starting the long-running trigger"
DISPLAY_ORDER = (TYPER, LIBRARY, INSTRUMENT, INVOCATION, RECORDING, TRIGGER)

phases: dict[str, float] = {}


def lap(phase: str, since: float) -> float:
    now = time.perf_counter()
    phases[phase] = phases.get(phase, 0.0) + (now - since) * 1000.0
    return now


def timing(phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        begun = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            lap(phase, begun)

    return timed


def main(variant: str, report_path: str) -> None:
    mark = time.perf_counter()
    from sample_app import build_app

    app = build_app()
    mark = lap(TYPER, mark)
    if variant == "instrumented":
        from typer_telemetry import Telemetry

        mark = lap(LIBRARY, mark)
        telemetry = Telemetry(
            "benchtool",
            version="1.0.0",
            endpoint="http://127.0.0.1:9/v1",
            long_running_after=float(os.environ.get("BENCH_LONG_RUNNING_AFTER", "2.0")),
        )
        telemetry.instrument(app)
        mark = lap(INSTRUMENT, mark)
        # Module attributes: the hook looks both up when it calls them. The
        # recorder's module is loaded here, so its import counts as recording,
        # as it does when the hook loads it after the command.
        begun = time.perf_counter()
        from typer_telemetry import _hook, _recording

        lap(RECORDING, begun)
        _recording.record_command = timing(RECORDING, _recording.record_command)
        _hook.start_trigger = timing(TRIGGER, _hook.start_trigger)
        mark = time.perf_counter()
    try:
        app(["hello", "World"], prog_name="benchtool")
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise
    lap(INVOCATION, mark)
    import json

    with open(report_path, "w", encoding="utf-8") as report:
        json.dump({phase: phases[phase] for phase in DISPLAY_ORDER if phase in phases}, report)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
