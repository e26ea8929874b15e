"""Recording: what one append to the rollup store costs, how big the store gets, throughput.

The store work itself runs in worker processes (bench/tools/recorder.py);
this side prepares folders, starts workers together, and checks the counts
the store ends up with.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import (
    ENDPOINT_VARIABLE,
    child_environment,
    discard,
    median,
    run_checked,
    run_timed,
    store_directory,
    tool_command,
)
from local_receiver import Receiver

from typer_telemetry._records import Record
from typer_telemetry._store import RollupStore

STORE_SIZES = (10, 1_000, 100_000)
DISTINCT_COMMANDS = 10
WORKER_TIMEOUT_SECONDS = 300.0
# The records that recorder.py's `invoke` leads to, in the order it alternates them.
INVOKED_RECORDS = (("hello", ("--count",)), ("hello", ("--count", "--greeting")))


@dataclass
class StoreFigures:
    """Appending `records` invocations to a fresh store: the cost of each append, the size after."""

    records: int
    median_us: float
    mean_us: float
    p99_us: float
    max_us: float
    folds: int
    distinct_records: int
    bytes_after_appends: int
    allocated_after_appends: int
    bytes_folded: int
    allocated_folded: int
    directory: Path


def _count(record: Record | Mapping[str, Any]) -> int:
    """A record's count: a stored Record, or one as the HTTP back end sent it."""
    count = record.count if isinstance(record, Record) else record["count"]
    assert isinstance(count, int)
    return count


def _key(record: Record | Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """A command record's command path and flags: a stored Record, or one as sent."""
    properties = dict(record.to_json() if isinstance(record, Record) else record)["properties"]
    flags = properties["flags"]
    assert isinstance(flags, list)
    return str(properties["command"]), tuple(str(flag) for flag in flags)


def _sizes(directory: Path) -> tuple[int, int]:
    """Total size of the store's files: as written, and as allocated on disk."""
    files = [path.stat() for path in directory.iterdir() if path.is_file()]
    return sum(info.st_size for info in files), sum(info.st_blocks * 512 for info in files)


def measure_store(root: Path, day: str, records: int, environment: dict[str, str]) -> StoreFigures:
    """Time each of `records` appends to a fresh store (in a worker), then measure the store."""
    directory = root / f"store-{records}"
    result = run_checked(
        tool_command("recorder.py", "time-appends", str(directory), day, str(records)), environment
    )
    timing = json.loads(result.stdout)
    written, allocated = _sizes(directory)
    # Reading what is pending folds the journal, as `telemetry status` and sending do.
    pending = RollupStore(directory, discard).pending(today=day)
    folded, folded_allocated = _sizes(directory)
    return StoreFigures(
        records=records,
        median_us=timing["median_us"],
        mean_us=timing["mean_us"],
        p99_us=timing["p99_us"],
        max_us=timing["max_us"],
        folds=timing["folds"],
        distinct_records=len(pending),
        bytes_after_appends=written,
        allocated_after_appends=allocated,
        bytes_folded=folded,
        allocated_folded=folded_allocated,
        directory=directory,
    )


# -- many processes at once -----------------------------------------------------------


@dataclass(frozen=True)
class Together:
    """Workers started together: seconds until the last one ended, and what each printed."""

    seconds: float
    stdouts: list[str]
    stderrs: list[str]


def _start_together(
    commands: Sequence[list[str]], environment: dict[str, str], logs: Path
) -> Together:
    """Start workers, wait until each says "ready", let them all go; time until the last ends.

    Each worker's stderr goes to a file under `logs`, so that no pipe can fill
    up and stall a worker; after "ready" a worker prints at most one line.
    """
    logs.mkdir(parents=True, exist_ok=True)
    stderr_paths = [logs / f"worker-{index}.stderr" for index in range(len(commands))]
    workers = []
    try:
        for command, stderr_path in zip(commands, stderr_paths, strict=True):
            with stderr_path.open("w", encoding="utf-8") as stderr:
                workers.append(
                    subprocess.Popen(
                        command,
                        env=environment,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=stderr,
                        text=True,
                    )
                )
        for worker, stderr_path in zip(workers, stderr_paths, strict=True):
            assert worker.stdout is not None
            if worker.stdout.readline().strip() != "ready":
                worker.wait(timeout=WORKER_TIMEOUT_SECONDS)
                raise RuntimeError(f"a worker did not start: {stderr_path.read_text().strip()}")
        started = time.perf_counter()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.close()
        for worker, stderr_path in zip(workers, stderr_paths, strict=True):
            if worker.wait(timeout=WORKER_TIMEOUT_SECONDS) != 0:
                raise RuntimeError(
                    f"a worker failed with {worker.returncode}: {stderr_path.read_text().strip()}"
                )
        elapsed = time.perf_counter() - started
        return Together(
            seconds=elapsed,
            stdouts=[worker.stdout.read() for worker in workers if worker.stdout is not None],
            stderrs=[path.read_text(encoding="utf-8") for path in stderr_paths],
        )
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            if worker.stdout is not None:
                worker.stdout.close()


@dataclass
class ThroughputFigures:
    processes: int
    records_per_process: int
    seconds: float
    records_per_second: float
    counted: int
    counts_exact: bool
    store_messages: dict[str, int]


def measure_throughput(
    root: Path, day: str, processes: int, records_per_process: int, environment: dict[str, str]
) -> ThroughputFigures:
    """`processes` workers append to one store at once; then every count must be exact."""
    directory = root / f"throughput-{processes}"
    command = tool_command("recorder.py", "append", str(directory), day, str(records_per_process))
    together = _start_together([command] * processes, environment, directory.with_suffix(".logs"))
    messages: Counter[str] = Counter()
    for output in together.stdouts:
        messages.update(json.loads(output))
    pending = RollupStore(directory, discard).pending(today=day)
    expected_each = processes * records_per_process // DISTINCT_COMMANDS
    total = processes * records_per_process
    counts = [_count(record) for record in pending]
    return ThroughputFigures(
        processes=processes,
        records_per_process=records_per_process,
        seconds=together.seconds,
        records_per_second=total / together.seconds,
        counted=sum(counts),
        counts_exact=len(counts) == DISTINCT_COMMANDS
        and all(count == expected_each for count in counts),
        store_messages=dict(messages),
    )


@dataclass
class ConcurrentInvocations:
    """Many processes run the instrumented tool at once; then the day is sent, twice."""

    processes: int
    invocations_per_process: int
    seconds: float
    counted: int
    counts_exact: bool
    notices_shown: int
    batches_received: int
    counted_in_batches: int
    pending_after_send: int
    second_send_days: int

    @property
    def passed(self) -> bool:
        total = self.processes * self.invocations_per_process
        return (
            self.counts_exact
            and self.counted_in_batches == total
            and self.batches_received == 1
            and self.pending_after_send == 0
            and self.second_send_days == 0
        )


def measure_concurrent_invocations(
    home: Path,
    receiver: Receiver,
    *,
    processes: int,
    invocations_per_process: int,
    yesterday_noon: float,
    today: str,
) -> ConcurrentInvocations:
    """16 x 200 invocations on a fresh machine, recorded as yesterday, then sent.

    All processes are first runs at once: they must agree on one install id
    and show the notice once. Every count must be exact; sending must deliver
    the day once, leave nothing pending, and a second send must find nothing.
    """
    endpoint = {ENDPOINT_VARIABLE: f"{receiver.url}/v1"}
    recording = child_environment(home, {**endpoint, "BENCH_NOW": str(yesterday_noon)})
    command = tool_command("recorder.py", "invoke", str(invocations_per_process))
    together = _start_together([command] * processes, recording, home / "logs")
    store = RollupStore(store_directory(home), discard)
    pending = store.pending(today=today)
    expected: Counter[tuple[str, tuple[str, ...]]] = Counter()
    for index in range(invocations_per_process):
        expected[INVOKED_RECORDS[index % len(INVOKED_RECORDS)]] += processes
    counted = Counter({_key(record): _count(record) for record in pending})
    sending = child_environment(home, endpoint)
    reports = [
        json.loads(run_checked(tool_command("recorder.py", "flush"), sending).stdout)
        for _ in range(2)
    ]
    batches = [request for request in receiver.requests if request.path.endswith("/batches")]
    in_batches = sum(
        _count(record) for request in batches for record in json.loads(request.content)["records"]
    )
    return ConcurrentInvocations(
        processes=processes,
        invocations_per_process=invocations_per_process,
        seconds=together.seconds,
        counted=sum(counted.values()),
        counts_exact=counted == expected,
        notices_shown=sum("collects anonymous usage data" in stderr for stderr in together.stderrs),
        batches_received=len(batches),
        counted_in_batches=in_batches,
        pending_after_send=len(store.pending(today=today)),
        second_send_days=len(reports[1]["days_sent"]),
    )


# -- a store at its limits ------------------------------------------------------------

LIMITS_ROUNDS = 5


@dataclass
class StoreAtLimits:
    """One store size: the fold a recorded run makes, and `telemetry status` as a real process."""

    label: str
    records: int
    rollup_bytes: int
    fold_median_ms: float
    fold_max_ms: float
    fold_cpu_ms: float
    status_ms: float
    status_json_ms: float
    help_ms: float
    status_cpu_ms: float
    status_json_cpu_ms: float
    help_cpu_ms: float
    status_lines: int
    status_json_bytes: int


def write_store(directory: Path, days: Sequence[str], keys_per_day: int) -> int:
    """A store of `keys_per_day` distinct records on each of `days`, written by the store itself."""
    import random

    from typer_telemetry._recording import Observation
    from typer_telemetry._store import Rollup

    durations = random.Random(len(days) * keys_per_day)
    rollup = Rollup(folded_through=1)
    for day in days:
        for index in range(keys_per_day):
            observation = Observation.of_command(
                day,
                f"group{index // 16} command{index % 16}",
                "success" if index % 3 else "usage_error",
                "" if index % 3 else "FileNotFoundError",
                tuple(sorted({"--verbose", f"--option-{index % 7}"})),
                durations.lognormvariate(4.5, 1.2),
            )
            # As a fold adds it: the journal line the observation writes, parsed.
            assert rollup.add_line(observation.journal_line().strip())
    directory.mkdir(parents=True, exist_ok=True)
    RollupStore(directory, discard)._write_rollup(rollup)
    return len(rollup.aggregates)


def measure_store_at_limits(
    root: Path, days: Sequence[str], keys_per_day: int, label: str, rounds: int = LIMITS_ROUNDS
) -> StoreAtLimits:
    """Fold time (in a worker) and `status` / `status --json` wall time for one store."""
    home = root / f"limits-{label}"
    environment = child_environment(home)
    directory = store_directory(home)
    records = write_store(directory, days, keys_per_day)
    today = max(days)
    fold = json.loads(
        run_checked(
            tool_command("recorder.py", "time-fold", str(directory), today, str(rounds)),
            environment,
        ).stdout
    )
    command = tool_command("instrumented.py")
    walls: dict[str, list[float]] = {"status": [], "json": [], "help": []}
    cpus: dict[str, list[float]] = {"status": [], "json": [], "help": []}
    for _ in range(rounds):
        for key, arguments in (
            ("status", ["telemetry", "status"]),
            ("json", ["telemetry", "status", "--json"]),
            ("help", ["--help"]),
        ):
            timed = run_timed([*command, *arguments], environment)
            if timed.exit_code != 0:
                raise RuntimeError(f"{' '.join(arguments)} exited with {timed.exit_code}")
            walls[key].append(timed.wall_ms)
            cpus[key].append(timed.cpu_ms)
    text = run_checked([*command, "telemetry", "status"], environment).stdout
    as_json = run_checked([*command, "telemetry", "status", "--json"], environment).stdout
    return StoreAtLimits(
        label=label,
        records=records,
        rollup_bytes=(directory / "rollup.json").stat().st_size,
        fold_median_ms=fold["median_ms"],
        fold_max_ms=fold["max_ms"],
        fold_cpu_ms=fold["cpu_median_ms"],
        status_ms=median(walls["status"]),
        status_json_ms=median(walls["json"]),
        help_ms=median(walls["help"]),
        status_cpu_ms=median(cpus["status"]),
        status_json_cpu_ms=median(cpus["json"]),
        help_cpu_ms=median(cpus["help"]),
        status_lines=len(text.splitlines()),
        status_json_bytes=len(as_json.encode()),
    )
