"""One process of the concurrency swarm: the outside tool's commands in a loop, on a shared clock.

    python swarm_tool.py PLAN_JSON

PLAN_JSON is a list of command lines (lists of arguments) run one after the
other through the outside tool's app, with its real hook and store.
SWARM_CLOCK=<path> names a file holding the epoch seconds that decide the UTC
day; it is read on every reading of the clock, so the test moves the day for
every process at once while they run.

After each command line one line goes to stdout (after the command's own
output): `ack <day> <ending>`, where <day> is the day the invocation was
recorded under ("-" if it was not recorded) and <ending> the exit code or the
class of the exception that came out of the app.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import os

import outside_tool

from typer_telemetry._settings import utc_day

_seen = threading.local()


def clock() -> float:
    now = float(Path(os.environ["SWARM_CLOCK"]).read_text())
    # Only the main thread records; the sender thread reads the clock too.
    if threading.current_thread() is threading.main_thread():
        _seen.now = now
    return now


def main() -> None:
    telemetry = outside_tool.telemetry
    telemetry.settings = telemetry.settings.replace(clock=clock)
    plan = json.loads(sys.argv[1])
    for arguments in plan:
        _seen.now = None
        try:
            outside_tool.app(arguments, prog_name="outside_tool.py")
            ending = "0"
        except SystemExit as exit_:
            ending = str(exit_.code if exit_.code is not None else 0)
        except Exception as error:
            ending = type(error).__name__
        day = "-" if _seen.now is None else utc_day(_seen.now)
        sys.stdout.write(f"ack {day} {ending}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
