"""Worker processes for the recording benchmarks.

    python recorder.py time-appends STORE_DIR DAY COUNT
        append COUNT records to a RollupStore, timing each call; print the figures as JSON
    python recorder.py append STORE_DIR DAY COUNT
        append COUNT records to a RollupStore (many of these run at once); print, as JSON,
        how often the store explained a decision on its debug channel, by message
    python recorder.py invoke COUNT
        run the instrumented tool's `hello` command COUNT times in this process (hook and store)
    python recorder.py flush
        send the instrumented tool's pending completed days now; print what was sent as JSON
    python recorder.py time-fold STORE_DIR DAY ROUNDS
        ROUNDS times: copy the store, append one journal's worth of invocations of DAY
        (just under the size that folds), time the fold; print the figures as JSON

`append` and `invoke` print "ready" once loaded and start when a line arrives
on stdin, so that many workers start together and process start-up is not
part of what is timed. Records cycle through ten distinct commands.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path

from typer_telemetry import _recording
from typer_telemetry._paths import ROLLUP_NAME
from typer_telemetry._recording import Observation
from typer_telemetry._store import RollupStore


def _quiet(message: str) -> None:
    pass


COMMANDS = (
    ("build", ("--release",)),
    ("test", ()),
    ("test", ("--verbose",)),
    ("deploy", ("--env", "--force")),
    ("db migrate", ()),
    ("db seed", ("--count",)),
    ("config show", ()),
    ("config set", ()),
    ("login", ()),
    ("status", ("--json",)),
)
# Arguments of the instrumented tool's commands, and the records they lead to.
INVOCATIONS = (
    ("hello", "bench", "--count", "0"),
    ("hello", "bench", "--count", "0", "--greeting", "Hi"),
)


def observations(day: str, count: int) -> list[Observation]:
    """`count` realistic invocations of ten distinct commands, with varied durations."""
    durations = random.Random(day)
    return [
        Observation.of_command(
            day,
            COMMANDS[index % len(COMMANDS)][0],
            "success",
            "",
            COMMANDS[index % len(COMMANDS)][1],
            durations.lognormvariate(4.5, 1.2),
        )
        for index in range(count)
    ]


def ignore(message: str) -> None:
    """The store's debug output is not wanted here."""


class MessageCounter:
    """Counts what the store says on its debug channel (a record refused, a fold postponed)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __call__(self, message: str) -> None:
        self.counts[message] = self.counts.get(message, 0) + 1


def wait_for_start() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def time_appends(directory: Path, day: str, count: int) -> None:
    store = RollupStore(directory, ignore)
    durations_ns = []
    for observation in observations(day, count):
        started = time.perf_counter_ns()
        _recording.append(store.directory, observation, _quiet)
        durations_ns.append(time.perf_counter_ns() - started)
    durations_us = sorted(duration / 1000.0 for duration in durations_ns)
    rollup_path = directory / ROLLUP_NAME
    folds = json.loads(rollup_path.read_bytes())["folded_through"] if rollup_path.exists() else 0
    print(
        json.dumps(
            {
                "count": count,
                "median_us": statistics.median(durations_us),
                "mean_us": statistics.fmean(durations_us),
                "p99_us": durations_us[int(0.99 * (len(durations_us) - 1))],
                "max_us": durations_us[-1],
                "folds": folds,
            }
        )
    )


def append(directory: Path, day: str, count: int) -> None:
    messages = MessageCounter()
    store = RollupStore(directory, messages)
    batch = observations(day, count)
    wait_for_start()
    for observation in batch:
        _recording.append(store.directory, observation, _quiet)
    print(json.dumps(messages.counts), flush=True)


def invoke(count: int) -> None:
    import instrumented

    wait_for_start()
    for index in range(count):
        try:
            instrumented.app(list(INVOCATIONS[index % len(INVOCATIONS)]), prog_name="benchtool")
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                raise


def flush() -> None:
    import instrumented

    report = instrumented.telemetry.flush(timeout=30.0)
    print(json.dumps(report._asdict()))


def time_fold(directory: Path, day: str, rounds: int) -> None:
    """Time the fold a recorded run makes when its journal is full, on copies of a store."""
    import shutil
    import tempfile

    from typer_telemetry._paths import JOURNAL_NAME
    from typer_telemetry._recording import FOLD_AT_BYTES

    durations_ms = []
    cpu_ms = []
    records = 0
    with tempfile.TemporaryDirectory(prefix="fold-") as scratch:
        for round_number in range(rounds):
            copy = Path(scratch) / f"store-{round_number}"
            shutil.copytree(directory, copy)
            store = RollupStore(copy, ignore)
            for observation in observations(day, FOLD_AT_BYTES // 64):
                if (copy / JOURNAL_NAME).exists() and (
                    (copy / JOURNAL_NAME).stat().st_size + 200 >= FOLD_AT_BYTES
                ):
                    break
                _recording.append(store.directory, observation, _quiet)
            started = time.perf_counter_ns()
            cpu_started = time.process_time_ns()
            store.fold(today=day)
            durations_ms.append((time.perf_counter_ns() - started) / 1e6)
            cpu_ms.append((time.process_time_ns() - cpu_started) / 1e6)
            records = len(store.pending(today=day))
            shutil.rmtree(copy)
    print(
        json.dumps(
            {
                "rounds": rounds,
                "median_ms": statistics.median(durations_ms),
                "max_ms": max(durations_ms),
                "cpu_median_ms": statistics.median(cpu_ms),
                "records": records,
            }
        )
    )


def main(arguments: list[str]) -> None:
    mode, *rest = arguments
    if mode == "time-appends":
        time_appends(Path(rest[0]), rest[1], int(rest[2]))
    elif mode == "time-fold":
        time_fold(Path(rest[0]), rest[1], int(rest[2]))
    elif mode == "append":
        append(Path(rest[0]), rest[1], int(rest[2]))
    elif mode == "invoke":
        invoke(int(rest[0]))
    elif mode == "flush":
        flush()
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
