"""What recording one of the tool's own events costs, in process, next to a command's record.

    python bench/events.py [--rounds N] [--json PATH]

Each case runs in a fresh child process with its own home (real files, a
real journal that is folded as it grows, exactly as in a tool), and times
the call alone, side by side in one run:

- `record_command`: what the hook does for one command invocation (the baseline);
- `event.record(...)`: one occurrence of an event with a choice, a bucket and a flag;
- `event.timed()`: the same event timed around an empty block;
- `event.record(...)` with the `runner` and `project` signals on;
- `event.record(...)` while `DO_NOT_TRACK=1` (off: decided by the environment alone).

The figure is the median per call over `--rounds` calls (after a warm-up),
and its ratio to the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = ("command", "event", "timed", "event_with_signals", "event_when_off")

CHILD = r"""
import json, os, sys, time
from typer_telemetry import Bucket, Choice, Flag, Telemetry
from typer_telemetry._recording import record_command

case, rounds = sys.argv[1], int(sys.argv[2])
signals = ("runner", "project") if case == "event_with_signals" else ()
telemetry = Telemetry("bench-events", version="1.0", signals=signals)
event = telemetry.event(
    "ingest_completed",
    driver=Choice("postgres", "sqlite", "snowflake"),
    table_count=Bucket(10, 100, 1000),
    demo=Flag(),
)
settings = telemetry.settings
drivers = ("postgres", "sqlite", "snowflake", "oracle")

def once(index):
    if case == "command":
        record_command(settings, "ingest", "success", "", ("--tables",), 12.5)
    elif case == "timed":
        with event.timed(driver=drivers[index % 4], table_count=index % 2000, demo=False):
            pass
    else:
        event.record(driver=drivers[index % 4], table_count=index % 2000, demo=False)

for index in range(50):  # warm-up: the first run claims the install id and shows the notice
    once(index)
timings = []
for index in range(rounds):
    started = time.perf_counter_ns()
    once(index)
    timings.append(time.perf_counter_ns() - started)
print(json.dumps(timings))
"""


def measure(case: str, rounds: int) -> list[int]:
    with tempfile.TemporaryDirectory() as home:
        environment = {
            name: value
            for name, value in os.environ.items()
            if name not in ("CI", "DO_NOT_TRACK") and "TELEMETRY" not in name
        }
        environment.update(
            HOME=home,
            XDG_CONFIG_HOME=f"{home}/.config",
            XDG_STATE_HOME=f"{home}/.local/state",
        )
        if case == "event_when_off":
            environment["DO_NOT_TRACK"] = "1"
        result = subprocess.run(
            [sys.executable, "-c", CHILD, case, str(rounds)],
            env=environment,
            cwd=home,
            capture_output=True,
            text=True,
            check=True,
        )
        timings: list[int] = json.loads(result.stdout)
        return timings


CASE_NAMES = {
    "command": "a command's record (`record_command`, what the hook does): the baseline",
    "event": "`event.record(...)`: a choice, a bucket and a flag",
    "timed": "`with event.timed(...)`: the same, timed around an empty block",
    "event_with_signals": "`event.record(...)` with the `runner` and `project` signals",
    "event_when_off": "`event.record(...)` with `DO_NOT_TRACK=1`",
}


def measure_events(rounds: int) -> dict[str, dict[str, float]]:
    """Median and 90th percentile (µs per call) of each case, each in a fresh process."""
    figures = {}
    for case in CASES:
        timings = measure(case, rounds)
        figures[case] = {
            "median_us": statistics.median(timings) / 1000,
            "p90_us": statistics.quantiles(timings, n=10)[-1] / 1000,
            "rounds": float(rounds),
        }
    return figures


def event_lines(figures: dict[str, dict[str, float]]) -> list[str]:
    """The Markdown section of docs/performance.md."""
    baseline = figures["command"]["median_us"]
    rounds = int(figures["command"]["rounds"])
    lines = [
        "## 8. Recording the tool's own events, in process",
        "",
        "What one call costs a tool that records events of its own (a server, an",
        "MCP tool, a long command recording steps), next to what the hook does",
        f"for one command, side by side in one run: {rounds:,} calls each, in a",
        "fresh process with its own home (real files: the journal is appended to,",
        "and folded whenever it passes 16 KiB, as in a tool; the 90th percentile",
        "includes those folds). `python bench/events.py` runs it alone.",
        "",
        "| case | median per call | 90th percentile | ratio to a command's record |",
        "| --- | ---: | ---: | ---: |",
    ]
    for case, figure in figures.items():
        lines.append(
            f"| {CASE_NAMES[case]} | {figure['median_us']:.1f} µs | {figure['p90_us']:.1f} µs |"
            f" {figure['median_us'] / baseline:.2f} |"
        )
    lines += [
        "",
        "A recorded event does what a recorded command does after the command has",
        "run: read the config (the stored choice, the install id), check that the",
        "files are the user's alone, check the event against the schema and",
        "append one line to the journal. An event's properties make its journal",
        "line longer than a command's, so the journal fills, and is folded,",
        "sooner. The signals add the environment's agent variables (`runner`) and",
        "a walk up from the working folder with a salted hash (`project`). While",
        "telemetry is off by the environment, a call resolves the values against",
        "the declaration (so that the author's mistakes show the same way) and",
        "stops at the opt-out: no file is opened.",
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    figures = measure_events(arguments.rounds)
    print("\n".join(event_lines(figures)))
    if arguments.json:
        arguments.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
