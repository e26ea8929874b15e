"""Commands and the tool's own events together: many processes at once, kill -9, lost replies.

The example warehouse tool records an event inside each of its commands
(`ingest` a timed `ingest_completed`, `check` a `connection_test`), so every
invocation writes two journal lines: the event's, then the command's. The
guarantees of the store hold for both kinds alike.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Tool, clean_environment
from tests.hardening.conftest import Reliability, cases
from tests.receiver import Receiver
from typer_telemetry._runner import AGENT_VARIABLES

TOOLS = Path(__file__).resolve().parent.parent / "tools"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "warehouse.py"
DAY_1 = 1_773_100_800  # 2026-03-10 00:00 UTC
DAY_2 = DAY_1 + 86_400
LINES = (
    (["ingest", "postgres", "--tables", "40"], "ingest_completed"),
    (["ingest", "sqlite", "--tables", "4000", "--demo"], "ingest_completed"),
    (["check", "snowflake"], "connection_test"),
    (["check", "mysql"], "connection_test"),  # fails: exit code 1, recorded as an error
)


def environment(home: Path, **extra: str) -> dict[str, str]:
    agents = {variable: "" for variable, _value, _agent in AGENT_VARIABLES}
    return clean_environment(home, {**agents, "WAREHOUSE_NOW": str(DAY_1), **extra})


def swarm(home: Path, plan: list[list[str]]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(TOOLS / "mixed_swarm.py"), json.dumps(plan)],
        env=environment(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=home,
    )


def plan(rng: random.Random, length: int) -> list[list[str]]:
    return [list(rng.choice(LINES)[0]) for _ in range(length)]


def expected(lines: list[list[str]]) -> Counter[str]:
    """Invocations and events a list of command lines records."""
    counts: Counter[str] = Counter()
    for line in lines:
        counts["command"] += 1
        counts["ingest_completed" if line[0] == "ingest" else "connection_test"] += 1
    return counts


def pending(home: Path) -> Counter[str]:
    tool = Tool(script=EXAMPLE, home=home)
    tool.env = environment(home)
    counts: Counter[str] = Counter()
    for record in tool.pending():
        counts[str(record["event"])] += int(record["count"])  # type: ignore[call-overload]
    return counts


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.mark.slow
def test_concurrent_processes_count_commands_and_events_exactly_and_send_them_once(
    tmp_path: Path, receiver: Receiver, reliability: Reliability
) -> None:
    rng = random.Random(1)
    processes, per_process = cases(6, 16), cases(25, 200)
    plans = [plan(rng, per_process) for _ in range(processes)]
    running = [swarm(tmp_path, one) for one in plans]
    for process in running:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        assert stdout.count("ack ") == per_process
        assert "Traceback" not in stderr, stderr
    total = sum((expected(one) for one in plans), Counter())
    assert pending(tmp_path) == total

    # The receiver stores the day's batch but the connection drops before it
    # answers: the next long-running run sends the same batch under the same key.
    receiver.respond(reset=True)
    tool = Tool(script=EXAMPLE, home=tmp_path)
    sync_env = {
        **environment(tmp_path, WAREHOUSE_NOW=str(DAY_2), WAREHOUSE_ENDPOINT=receiver.url("/v1"))
    }
    for requests in (1, 2):
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "sync"],
            env=sync_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        assert process.stdout is not None
        assert process.stdout.readline() == "syncing\n"
        receiver.wait_for(requests)
        receiver.respond()
        if requests == 2:
            # Until the accepted day has left the store (the sender removes it
            # after the answer; a process ended before that sends it again).
            tool.env = sync_env
            deadline = time.monotonic() + 60
            while any(record["day"] == "2026-03-10" for record in tool.pending()):
                assert time.monotonic() < deadline, "the accepted day never left the store"
        process.communicate(input="", timeout=60)
    batches = [request.json() for request in receiver.wait_for(2)]
    assert batches[0]["idempotency_key"] == batches[1]["idempotency_key"]
    stored = {batch["idempotency_key"]: batch for batch in batches}  # what a receiver keeps
    sent: Counter[str] = Counter()
    for batch in stored.values():
        for record in batch["records"]:
            sent[record["event"]] += record["count"]
    assert sent == total
    reliability.record(
        "Events",
        "concurrent processes recording commands and the tool's own events, then a batch"
        " whose reply is lost",
        processes * per_process,
        "every command and event counted once; the batch sent again under its key",
    )


def test_kill_9_while_recording_commands_and_events_loses_at_most_the_invocation_in_flight(
    tmp_path: Path, reliability: Reliability
) -> None:
    rng = random.Random(2)
    rounds = cases(3, 30)
    acknowledged: Counter[str] = Counter()
    for round_number in range(rounds):
        lines = plan(rng, 400)
        process = swarm(tmp_path, lines)
        assert process.stdout is not None
        kill_after = rng.randrange(1, 60)
        acks = 0
        while acks < kill_after:
            line = process.stdout.readline()
            assert line, process.stderr.read() if process.stderr else ""
            acks += line.startswith("ack ")  # the commands' own output aside
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        acknowledged += expected(lines[:acks])
        found = pending(tmp_path)
        # The invocation in flight (after the last ack) may be in the journal
        # whole, in part (its event but not yet its command), or not at all.
        in_flight = expected(lines[acks : acks + 1])
        for kind in ("command", "ingest_completed", "connection_test"):
            assert acknowledged[kind] <= found[kind] <= acknowledged[kind] + in_flight[kind], (
                round_number,
                kind,
                found,
                acknowledged,
            )
        acknowledged = found  # what the next round builds on
    reliability.record(
        "Events",
        "kill -9 at a random moment while commands and the tool's own events are recorded",
        rounds,
        "every acknowledged command and event kept; at most the one in flight lost",
        lost="at most the invocation in flight",
    )
