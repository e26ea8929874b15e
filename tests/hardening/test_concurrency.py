"""Concurrency: 16 processes recording and sending at once, across day changes, sends failing.

Sixteen slots each run the outside tool (tests/tools/swarm_tool.py) in a
loop of real processes, every one a few dozen invocations through the real
hook and store. The day comes from a shared clock file that the test moves
forward while they run, so completed days keep appearing; `wait` invocations
run long enough to send them from their background thread to a real HTTP
receiver, which now and then answers 503 or resets the connection. Processes
end while their sender thread may be in the middle of a send, as real ones do.

At the end, after a final send with the receiver healthy, what the receiver
accepted (one copy per idempotency key) plus what is still pending must be
exactly what the processes acknowledged recording.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TOOLS, Tool, clean_environment
from tests.hardening.conftest import FULL, Reliability, cases
from tests.receiver import ReceivedRequest, Receiver, Reply
from typer_telemetry._schema import check_envelope, check_record
from typer_telemetry._settings import utc_day

SWARM_TOOL = TOOLS / "swarm_tool.py"
FIRST_NOW = 1773144000  # 2026-03-10 12:00 UTC
DAY_SECONDS = 86400
SLOTS = 16

Key = tuple[str, str, str, str, tuple[str, ...]]
# (day-less key, stdout of the command, ending reported by swarm_tool)
Expected = tuple[tuple[str, str, str, tuple[str, ...]], str, str]

# Each command line a process may run, with what it must print and record.
COMMAND_LINES: list[tuple[list[str], Expected, int]] = [
    (["hello", "swarm"], (("hello", "success", "", ()), "Hello, swarm!\n", "0"), 4),
    (
        ["hello", "swarm", "-g", "Hi", "-n", "2"],
        (("hello", "success", "", ("--count", "--greeting")), "Hi, swarm!\nHi, swarm!\n", "0"),
        2,
    ),
    (
        ["db", "migrate", "-f"],
        (("db migrate", "success", "", ("--force",)), "migrated to head (forced)\n", "0"),
        2,
    ),
    (
        ["-v", "db", "remote", "push", "--dry-run"],
        (("db remote push", "success", "", ("--dry-run", "--verbose")), "pushed (dry run)\n", "0"),
        1,
    ),
    (
        ["fail", "--message", "boom"],
        (("fail", "error", "RuntimeError", ("--message",)), "", "RuntimeError"),
        1,
    ),
    (["hello"], (("hello", "usage_error", "MissingParameter", ()), "", "2"), 1),
    (["leave"], (("leave", "error", "Exit", ()), "leaving\n", "3"), 1),
    # Long-running (the tool says so after 0.02 s): sends completed days in the background.
    (
        ["wait", "--seconds", "0.1"],
        (("wait", "success", "", ("--seconds",)), "ready\nwaited\n", "0"),
        2,
    ),
]


def accepted(request: ReceivedRequest) -> bool:
    """The receiver stored it: it acknowledged it, or read it and never answered.

    Either way the sender may never learn of it (it ended first, or the answer
    was lost): the strict reading, under which a batch sent again must carry
    the same key.
    """
    reply = request.reply
    if reply is not None and reply.hang:
        return True
    return (
        reply is not None and not reply.reset and reply.status == 200 and reply.body == Reply().body
    )


def refused(request: ReceivedRequest) -> bool:
    return request.reply is not None and not accepted(request)


class Swarm:
    """The slots, what their processes acknowledged, and anything that went wrong."""

    def __init__(self, home: Path, clock_file: Path, endpoint: str, per_process: int) -> None:
        self.home = home
        self.clock_file = clock_file
        self.endpoint = endpoint
        self.per_process = per_process
        self.acknowledged: Counter[Key] = Counter()
        self.per_day: Counter[str] = Counter()
        self.processes = 0
        self.problems: list[str] = []
        self.days: set[str] = set()
        self.stop = threading.Event()
        self.changed = threading.Condition()

    def set_now(self, now: int) -> None:
        temporary = self.clock_file.with_suffix(".tmp")
        temporary.write_text(str(now))
        temporary.replace(self.clock_file)  # atomic: a reader sees the old or the new time
        with self.changed:
            self.days.add(utc_day(now))

    def slot(self, number: int) -> None:
        rng = random.Random(number)
        lines = [line for line, _, _ in COMMAND_LINES]
        weights = [weight for _, _, weight in COMMAND_LINES]
        environment = clean_environment(
            self.home,
            {
                "SWARM_CLOCK": str(self.clock_file),
                "OUTSIDE_TOOL_TELEMETRY_ENDPOINT": self.endpoint,
                "TOOL_LONG_RUNNING_AFTER": "0.02",
            },
        )
        while not self.stop.is_set():
            picks = rng.choices(range(len(lines)), weights, k=self.per_process)
            plan = [lines[pick] for pick in picks]
            try:
                result = subprocess.run(
                    [sys.executable, str(SWARM_TOOL), json.dumps(plan)],
                    env=environment,
                    capture_output=True,
                    text=True,
                    timeout=120,
                    cwd=self.home,
                )
            except subprocess.TimeoutExpired:
                self.problems.append(f"slot {number}: a process hung")
                return
            self.check(number, picks, result)

    def check(
        self, number: int, picks: list[int], result: subprocess.CompletedProcess[str]
    ) -> None:
        where = f"slot {number}"
        if result.returncode != 0:
            self.problems.append(f"{where}: exit {result.returncode}: {result.stderr[-2000:]}")
            return
        if "Traceback" in result.stderr or "telemetry]" in result.stderr:
            self.problems.append(f"{where}: unexpected stderr: {result.stderr[-2000:]}")
        lines = result.stdout.splitlines(True)
        expected_stdout = []
        found: Counter[Key] = Counter()
        for pick in picks:
            key, stdout, ending = COMMAND_LINES[pick][1]
            expected_stdout.append(stdout)
            output_lines = stdout.count("\n")
            ack = lines[output_lines] if len(lines) > output_lines else ""
            lines = lines[output_lines + 1 :]
            parts = ack.split()
            day = parts[1] if len(parts) == 3 else "-"
            expected_stdout.append(f"ack {day} {ending}\n")
            with self.changed:
                known = day in self.days
            if not known:
                self.problems.append(f"{where}: not recorded, or on a day never set: {ack!r}")
                continue
            found[(day, *key)] += 1
        if result.stdout != "".join(expected_stdout):
            self.problems.append(
                f"{where}: stdout {result.stdout!r} != expected {''.join(expected_stdout)!r}"
            )
        with self.changed:
            self.acknowledged.update(found)
            for key, count in found.items():
                self.per_day[key[0]] += count
            self.processes += 1
            self.changed.notify_all()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def batch_requests(receiver: Receiver) -> list[ReceivedRequest]:
    return [request for request in receiver if request.path == "/v1/batches"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sixteen_processes_record_and_send_across_day_changes_with_failing_sends(
    tmp_path: Path, receiver: Receiver, reliability: Reliability
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    duration = cases(5, 60)
    day_period = duration / (5 if not FULL else 20)
    mode_period = day_period / 2
    swarm = Swarm(home, tmp_path / "clock", receiver.url("/v1"), per_process=cases(12, 25))
    now = FIRST_NOW
    swarm.set_now(now)
    slots = [threading.Thread(target=swarm.slot, args=(number,)) for number in range(SLOTS)]
    started = time.monotonic()
    for slot in slots:
        slot.start()

    # (A receiver that stores a batch and never answers holds the one sender for
    # its whole request timeout; that case has its own test below.)
    modes = ["ok", "503", "ok", "reset"]
    mode = 0
    mode_started = day_started = started
    requests_at_mode_start = 0
    try:
        while True:
            with swarm.changed:
                swarm.changed.wait(timeout=0.05)
                today_count = swarm.per_day[utc_day(now)]
                problems = list(swarm.problems)
            assert not problems, problems
            clock = time.monotonic()
            # The day moves on once it has had time and invocations.
            if clock - day_started >= day_period and today_count >= SLOTS:
                now += DAY_SECONDS
                swarm.set_now(now)
                day_started = clock
            # The receiver changes its answer once the current one has been seen.
            since = batch_requests(receiver)[requests_at_mode_start:]
            seen = (
                any(accepted(r) for r in since) if modes[mode] == "ok" else any(map(refused, since))
            )
            # Each answer stays until a sender has met it (a sender may take
            # seconds to get going on a loaded machine: it imports httpx first).
            if clock - mode_started >= mode_period and seen:
                mode = (mode + 1) % len(modes)
                receiver.respond(
                    **{
                        "ok": {},
                        "503": {"status": 503},
                        "reset": {"reset": True},
                    }[modes[mode]]
                )  # type: ignore[arg-type]
                mode_started = clock
                requests_at_mode_start = len(receiver.requests)
            sent = batch_requests(receiver)
            completed_days = len(swarm.days) - 1
            if (
                clock - started >= duration
                and completed_days >= 3
                and any(map(accepted, sent))
                and any(map(refused, sent))
            ):
                break
            assert clock - started < duration * 4 + 400, (
                f"the swarm never met its goals: {completed_days} days completed, "
                f"{sum(map(accepted, sent))} batches stored, {sum(map(refused, sent))} refused, "
                f"{swarm.processes} processes done, answering {modes[mode]!r}"
            )
    finally:
        swarm.stop.set()
        for slot in slots:
            slot.join(timeout=300)
    elapsed = time.monotonic() - started
    assert not swarm.problems, swarm.problems

    # The final send, with the receiver healthy and every swarm day completed.
    receiver.respond()
    final = now + DAY_SECONDS
    tool = Tool(SWARM_TOOL.parent / "outside_tool.py", home)
    env = {
        "TOOL_NOW": str(final),
        "OUTSIDE_TOOL_TELEMETRY_ENDPOINT": receiver.url("/v1"),
        "TOOL_LONG_RUNNING_AFTER": "0.02",
    }
    process = tool.popen("wait", "--until-stdin-closes", env=env)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    deadline = time.monotonic() + 120
    while any(str(record["day"]) < utc_day(final) for record in tool.pending(env)):
        assert time.monotonic() < deadline, "the final send never emptied the completed days"
    stdout, stderr = process.communicate(input="", timeout=60)
    assert (process.returncode, stdout) == (0, "waited\n"), stderr
    expected = Counter(swarm.acknowledged)
    expected[(utc_day(final), "wait", "success", "", ("--until-stdin-closes",))] += 1

    # What the receiver accepted, one copy per idempotency key.
    by_key: dict[str, dict[str, object]] = {}
    copies: Counter[str] = Counter()
    install_ids = set()
    requests = batch_requests(receiver)
    for request in requests:
        if not accepted(request):
            continue
        batch = request.json()
        key = batch["idempotency_key"]
        assert request.headers["idempotency-key"] == key
        check_envelope(batch["envelope"])
        install_ids.add(batch["envelope"]["install_id"])
        for record in batch["records"]:
            check_record(record)
            assert record["day"] == batch["day"]
        if key in by_key:
            # A copy of an accepted batch must be the very same batch.
            assert batch == by_key[key]
        by_key[key] = batch
        copies[key] += 1
    assert len(install_ids) == 1
    contents = [json.dumps([b["day"], b["records"]], sort_keys=True) for b in by_key.values()]
    assert len(set(contents)) == len(contents), "the same records went out under two keys"

    delivered: Counter[Key] = Counter()
    for batch in by_key.values():
        for record in batch["records"]:  # type: ignore[attr-defined]
            key_of = (
                record["day"],
                record["properties"]["command"],
                record["outcome"],
                record["error_class"],
                tuple(record["properties"]["flags"]),
            )
            delivered[key_of] += record["count"]
    pending = Counter(tool.counts(env))
    assert delivered + pending == expected
    assert all(day == utc_day(final) for day, *_ in pending)

    invocations = sum(expected.values())
    failures = sum(map(refused, requests))
    resent = sum(copies.values()) - len(copies)
    days = sorted(swarm.days)
    print(
        f"swarm: {elapsed:.1f} s, {swarm.processes} processes, {invocations} invocations, "
        f"{len(days)} days, {len(by_key)} batches stored ({resent} copies sent again), "
        f"{failures} sends refused (503 or reset)"
    )
    assert swarm.processes >= SLOTS
    reliability.record(
        area="Concurrency",
        fault=(
            f"{SLOTS} processes recording and sending for {duration} s across "
            f"{len(days) - 1} day changes, the receiver answering 503 or resetting "
            f"part of the time ({swarm.processes} processes in all)"
        ),
        cases=invocations,
        outcome=(
            f"counts exact per day, command, outcome, error class and flag set; "
            f"{len(by_key)} batches each stored once ({resent} copies sent again carried "
            f"the same key), {failures} refused sends kept pending and sent later; "
            f"exit codes and stdout unchanged"
        ),
        lost="nothing",
    )


def test_a_day_stored_by_the_receiver_but_unanswered_is_not_counted_twice_after_late_records(
    receiver: Receiver, tmp_path: Path, reliability: Reliability
) -> None:
    """The receiver stores a batch but its answer is lost; then more of that day arrives.

    Late records for a completed day are rare but real: a writer stopped
    (Ctrl-Z) while appending keeps its journal segment from being folded, or
    the clock is stepped back across midnight. The batch that may have been
    stored must go out again as it was, under its key, and the late records
    in a batch of their own: never merged into a new batch that a receiver
    would count in full a second time.
    """
    home = tmp_path / "home"
    home.mkdir()
    tool = Tool(SWARM_TOOL.parent / "outside_tool.py", home)
    day_1 = {"TOOL_NOW": str(FIRST_NOW), "OUTSIDE_TOOL_TELEMETRY_ENDPOINT": receiver.url("/v1")}
    day_2 = {**day_1, "TOOL_NOW": str(FIRST_NOW + DAY_SECONDS), "TOOL_LONG_RUNNING_AFTER": "0.02"}
    assert tool.run("hello", "x", env=day_1).returncode == 0

    receiver.respond(hang=True)  # it reads (and stores) the batch, and never answers
    process = tool.popen("wait", "--until-stdin-closes", env=day_2)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    receiver.wait_for(1)
    process.communicate(input="", timeout=30)
    assert process.returncode == 0

    assert tool.run("hello", "x", env=day_1).returncode == 0  # a late record of day 1
    receiver.respond()
    process = tool.popen("wait", "--until-stdin-closes", env=day_2)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    deadline = time.monotonic() + 60
    while any(record["day"] == "2026-03-10" for record in tool.pending(day_2)):
        assert time.monotonic() < deadline, "day 1 was never sent"
    process.communicate(input="", timeout=30)

    stored: dict[str, int] = {}
    for request in batch_requests(receiver):
        batch = request.json()
        stored[batch["idempotency_key"]] = sum(
            record["count"]
            for record in batch["records"]
            if record["properties"]["command"] == "hello"
        )
    assert len(batch_requests(receiver)) == 3  # the unanswered one, its copy, the late record
    assert sum(stored.values()) == 2
    reliability.record(
        area="Concurrency",
        fault=(
            "a batch stored by the receiver whose answer never came, then late records "
            "for the same day (a writer stopped mid-append, a clock stepped back)"
        ),
        cases=1,
        outcome="the batch went out again under its own key, the late records in their own batch",
        lost="nothing; nothing counted twice",
    )
