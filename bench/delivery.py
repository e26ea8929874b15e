"""Delivery: how long a long-running invocation's exit waits for sending, and payload sizes.

Exit delay: the instrumented tool's `work` command runs for WORK_SECONDS and
counts as long-running after LONG_RUNNING_AFTER seconds, so it sends the
pending completed day while it runs. Its wall time with a healthy, a slow,
a hung endpoint and one that never accepts the connection, minus the same command's wall time with telemetry
disabled (DO_NOT_TRACK=1) in the same round, is the delay at exit. The
time from the command's last line ("worked") to the end of the process is
measured too: it leaves out start-up, and so varies much less.
"""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    ENDPOINT_VARIABLE,
    child_environment,
    discard,
    median,
    quartiles,
    run_checked,
    run_timed,
    store_directory,
    tool_command,
)
from local_receiver import SLOW_ANSWER_SECONDS, Receiver, Unaccepting

from typer_telemetry._delivery import build_envelope, idempotency_key
from typer_telemetry._records import Record
from typer_telemetry._store import RollupStore
from typer_telemetry.backends import (
    Backend,
    Batch,
    FileBackend,
    HTTPBackend,
    OTLPBackend,
    PostHogBackend,
)

WORK_SECONDS = 1.5
LONG_RUNNING_AFTER = 0.2
SEEDED_INVOCATIONS = 10
ARRIVAL_TIMEOUT_SECONDS = 10.0
CONDITIONS = ("disabled", "healthy", "slow", "hung", "unaccepting")
CONDITION_LABELS = {
    "disabled": "telemetry disabled (DO_NOT_TRACK=1), the baseline",
    "healthy": "healthy endpoint",
    "slow": f"slow endpoint (answers after {SLOW_ANSWER_SECONDS:.0f} s)",
    "hung": "hung endpoint (never answers)",
    "unaccepting": "endpoint that never accepts the connection (connecting hangs)",
}


@dataclass
class ExitDelay:
    condition: str
    label: str
    wall_ms: float
    delay_ms: float
    delay_spread_ms: tuple[float, float]
    after_command_ms: float
    after_command_delay_ms: float
    sends_seen: int
    delivered: int
    runs: int


@dataclass
class ExitDelays:
    rounds: int
    conditions: list[ExitDelay] = field(default_factory=list)

    def delay(self, condition: str) -> ExitDelay:
        return next(delay for delay in self.conditions if delay.condition == condition)


def measure_exit_delays(
    root: Path,
    receivers: Mapping[str, Receiver | Unaccepting],
    *,
    rounds: int,
    yesterday_noon: float,
    today: str,
    progress: Callable[[str], None],
) -> ExitDelays:
    """Each run starts from a fresh home holding a pending completed day (yesterday's)."""
    walls: dict[str, list[float]] = {condition: [] for condition in CONDITIONS}
    after_command: dict[str, list[float]] = {condition: [] for condition in CONDITIONS}
    sends_seen = dict.fromkeys(CONDITIONS, 0)
    delivered = dict.fromkeys(CONDITIONS, 0)
    for round_number in range(rounds):
        shift = round_number % len(CONDITIONS)
        for condition in [*CONDITIONS[shift:], *CONDITIONS[:shift]]:
            home = root / f"exit-{condition}-{round_number}"
            receiver = receivers["healthy" if condition == "disabled" else condition]
            endpoint = {ENDPOINT_VARIABLE: f"{receiver.url}/v1"}
            run_checked(
                tool_command("recorder.py", "invoke", str(SEEDED_INVOCATIONS)),
                child_environment(home, {**endpoint, "BENCH_NOW": str(yesterday_noon)}),
                stdin="go\n",
            )
            before = receiver.count()
            extra = {**endpoint, "BENCH_LONG_RUNNING_AFTER": str(LONG_RUNNING_AFTER)}
            if condition == "disabled":
                extra["DO_NOT_TRACK"] = "1"
            timed = run_timed(
                tool_command("instrumented.py", "work", "--seconds", str(WORK_SECONDS)),
                child_environment(home, extra),
                watch_for=b"worked",
            )
            if timed.exit_code != 0 or timed.after_line_ms is None:
                raise RuntimeError(f"`work` exited with {timed.exit_code} ({condition})")
            walls[condition].append(timed.wall_ms)
            after_command[condition].append(timed.after_line_ms)
            if condition == "unaccepting":
                pass  # nothing can arrive, and nothing is waited for
            elif condition != "disabled":
                assert isinstance(receiver, Receiver)
                try:
                    receiver.wait_for(before + 1, timeout=ARRIVAL_TIMEOUT_SECONDS)
                    sends_seen[condition] += 1
                except TimeoutError:
                    pass
            elif receiver.count() > before:
                sends_seen[condition] += 1
            store = RollupStore(store_directory(home), discard)
            if not [record for record in store.pending(today=today) if record.day != today]:
                delivered[condition] += 1
        progress(f"  exit delay: {round_number + 1}/{rounds} rounds")

    figures = ExitDelays(rounds)
    for condition in CONDITIONS:
        delays = [
            wall - baseline
            for wall, baseline in zip(walls[condition], walls["disabled"], strict=True)
        ]
        delays_after_command = [
            after - baseline
            for after, baseline in zip(
                after_command[condition], after_command["disabled"], strict=True
            )
        ]
        figures.conditions.append(
            ExitDelay(
                condition=condition,
                label=CONDITION_LABELS[condition],
                wall_ms=median(walls[condition]),
                delay_ms=median(delays),
                delay_spread_ms=quartiles(delays),
                after_command_ms=median(after_command[condition]),
                after_command_delay_ms=median(delays_after_command),
                sends_seen=sends_seen[condition],
                delivered=delivered[condition],
                runs=rounds,
            )
        )
    return figures


# -- payloads -----------------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    backend: str
    records: int
    raw_bytes: int
    gzipped_bytes: int
    wire_bytes: int | None
    wire_encoding: str


def realistic_batch(records: Sequence[Record], tool_version: str) -> Batch:
    """One completed day, exactly as the sender builds it."""
    install_id = str(uuid.uuid4())
    day = records[0].day
    return Batch(
        day,
        build_envelope("benchtool", tool_version, install_id),
        records,
        idempotency_key(install_id, day, records, 1),
    )


def measure_payloads(batch: Batch, receiver: Receiver, folder: Path) -> list[Payload]:
    """Send the batch through each back end; sizes of what the receiver (or the file) got."""
    file_path = folder / "batches.jsonl"
    backends: list[tuple[str, Backend]] = [
        ("HTTPBackend", HTTPBackend(f"{receiver.url}/v1")),
        ("PostHogBackend", PostHogBackend("phc_benchmark", host=receiver.url)),
        ("OTLPBackend", OTLPBackend(receiver.url)),
    ]
    payloads = []
    for name, backend in backends:
        before = receiver.count()
        backend.send(batch, timeout=10.0)
        request = receiver.wait_for(before + 1, timeout=ARRIVAL_TIMEOUT_SECONDS)[before]
        payloads.append(
            Payload(
                backend=name,
                records=len(batch.records),
                raw_bytes=len(request.content),
                gzipped_bytes=len(gzip.compress(request.content, mtime=0)),
                wire_bytes=len(request.body),
                wire_encoding=request.headers.get("content-encoding", "identity"),
            )
        )
    FileBackend(file_path).send(batch, timeout=10.0)
    line = file_path.read_bytes()
    payloads.append(
        Payload(
            backend="FileBackend",
            records=len(batch.records),
            raw_bytes=len(line),
            gzipped_bytes=len(gzip.compress(line, mtime=0)),
            wire_bytes=None,
            wire_encoding="a line in a local file",
        )
    )
    return payloads


def pending_day(store: Path, day: str) -> list[Record]:
    """A folded day of the store, as it would be sent."""
    return [
        record for record in RollupStore(store, discard).pending(today=day) if record.day == day
    ]
