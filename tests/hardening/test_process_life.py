"""Process life: kill -9 while recording or sending, Ctrl-C and SIGTERM (twice), os._exit.

Every process here is real and every signal is real. Kills land at random
points chosen two ways: from inside, at the n-th Python trace event of the
library's recording or sending (tests/tools/life_tool.py, LIFE_KILL_IN), which
reaches every step between two system calls; and from outside, after a seeded
random delay, which also lands inside system calls. The invariants:

- recording: what is pending is what was acknowledged, plus at most the one
  invocation in flight; nothing is ever corrupt or set aside, and whatever a
  killed process left (a half-written temporary file, an unfolded segment) is
  cleaned up by the next run that folds;
- sending: a receiver that drops batches whose idempotency key it already
  accepted ends up with exactly what was recorded, per key, once the next
  long-running run has sent the rest (and nothing else stays pending).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import OUTSIDE_TOOL, RecordKey, Tool, clean_environment, run_burst, tool_script
from tests.hardening.conftest import (
    NOTICE_MARK,
    Reliability,
    assert_unchanged_by_telemetry,
    cases,
    strip_notice,
)
from tests.receiver import Receiver
from typer_telemetry._records import Record
from typer_telemetry._store import RollupStore

LIFE_TOOL = tool_script("life_tool")
DAY_1 = 1773144000  # 2026-03-10 12:00 UTC
DAY_2 = DAY_1 + 86400  # 2026-03-11
DAY_3 = DAY_2 + 86400  # 2026-03-12
TODAY = "2026-03-12"
AREA = "Process life"
WORKERS = 2  # parallel homes; the machine has two cores
T = TypeVar("T")


# -- helpers -------------------------------------------------------------------------------


def life(home: Path) -> Tool:
    """The life tool in `home` (it records as the outside tool does, into the same files)."""
    return Tool(LIFE_TOOL, home)


def outside(home: Path) -> Tool:
    return Tool(OUTSIDE_TOOL, home)


def store_dir(home: Path) -> Path:
    return outside(home).store_dir


def as_key(record: Mapping[str, object] | Record) -> RecordKey:
    """A command record's key, from its JSON form (sent, status --json) or as the store reads it."""
    if isinstance(record, Record):
        record = record.to_json()
    return (
        str(record["day"]),
        str(record["properties"]["command"]),
        str(record["outcome"]),
        str(record["error_class"]),
        tuple(record["properties"]["flags"]),  # type: ignore[call-overload]
    )


def in_process_counts(home: Path, today: str = TODAY) -> dict[RecordKey, int]:
    """What `telemetry status --json` would list, read with the same call (folds first)."""
    records = RollupStore(store_dir(home), lambda message: None).pending(today=today)
    return {as_key(r): r.count for r in records}


def leftovers(home: Path) -> dict[str, int]:
    """Files a killed process may leave: temporary files, unfolded segments, files set aside."""
    found: Counter[str] = Counter()
    for folder in (store_dir(home), outside(home).config_dir):
        if not folder.is_dir():
            continue
        for name in os.listdir(folder):
            if name.endswith(".tmp"):
                found["temporary file"] += 1
            elif re.fullmatch(r"segment-\d+\.log", name):
                found["unfolded segment"] += 1
            elif "unusable" in name or "unreadable" in name:
                found["set aside"] += 1
    return dict(found)


def in_parallel(function: Callable[[int], T], count: int) -> list[T]:
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(function, range(count)))


def life_popen(home: Path, *arguments: str, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(LIFE_TOOL), *arguments],
        env=clean_environment(home, env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=home,
    )


def counted_events(stderr: bytes) -> dict[str, int]:
    """The last `life-count <target> <n>` of each target."""
    found: dict[str, int] = {}
    for target, number in re.findall(rb"life-count (\S+) (\d+)", stderr):
        found[target.decode()] = int(number)
    return found


def kill_report(stderr: bytes) -> list[str] | None:
    """The library functions on the stack where the tool killed itself, if it did."""
    match = re.search(rb"life-kill \S+ \d+ (\S+)", stderr)
    return match.group(1).decode().split(",") if match else None


# -- 1. kill -9 while recording ------------------------------------------------------------

HELLO = ("2026-03-12", "hello", "success", "", ("--count",))


def record_env(compact_at: int, **extra: str) -> dict[str, str]:
    return {"TOOL_NOW": str(DAY_3), "LIFE_COMPACT_AT": str(compact_at), **extra}


def calibrate_recording(home: Path, compact_at: int, invocations: int) -> int:
    """How many trace events `invocations` recordings take (after a first run settled the id)."""
    process = life_popen(
        home, "--burst", str(invocations), env=record_env(compact_at, LIFE_KILL_IN="record")
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    return counted_events(stderr)["record"]


@pytest.mark.timeout(900)  # full mode on a loaded machine
def test_kill_9_at_a_random_point_of_recording(tmp_path: Path, reliability: Reliability) -> None:
    lanes_fold_always = cases(1, 10)
    lanes_fold_sometimes = cases(1, 10)
    kills_per_lane = cases(3, 11)
    seed = random.Random(20261125)
    seeds = [seed.random() for _ in range(lanes_fold_always + lanes_fold_sometimes)]

    # How long recording is, in trace events, for each folding rhythm.
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    assert life(calibration).run("--burst", "1", env=record_env(1)).returncode == 0
    span = {
        1: calibrate_recording(calibration, 1, 4),
        600: calibrate_recording(calibration, 600, 8),
    }

    def lane(index: int) -> dict[str, Any]:
        chance = random.Random(seeds[index])
        compact_at = 1 if index < lanes_fold_always else 600
        home = tmp_path / f"lane-{index}"
        home.mkdir()
        first = life(home).run("--burst", "1", env=record_env(compact_at))
        assert first.returncode == 0, first.stderr
        recorded = 1
        tally: Counter[str] = Counter()
        for _ in range(kills_per_lane):
            point = chance.randint(1, span[compact_at])
            env = record_env(compact_at, LIFE_KILL_IN=f"record:{point}")
            process = life_popen(home, "--burst", "100000", env=env)
            stdout, stderr = process.communicate(timeout=60)
            assert process.returncode == -signal.SIGKILL, stderr
            stack = kill_report(stderr)
            assert stack is not None, stderr
            acknowledged = len(stdout)
            left = leftovers(home)
            assert "set aside" not in left
            counts = in_process_counts(home)
            assert set(counts) == {HELLO}
            in_flight = counts[HELLO] - recorded - acknowledged
            assert in_flight in (0, 1), (stack, counts, recorded, acknowledged)
            if "compact" in stack:  # folding starts only once the line is written
                assert in_flight == 1, stack
            assert leftovers(home) == {}, "the next fold cleans up what the kill left"
            recorded = counts[HELLO]
            tally["kills"] += 1
            tally["while folding" if "_compact_locked" in stack else "outside folding"] += 1
            tally["in flight counted" if in_flight else "in flight lost"] += 1
            for kind, number in left.items():
                tally[f"left {kind}"] += number
        # Later runs record normally, and the real `telemetry status --json` agrees.
        after = life(home).run("--burst", "3", env=record_env(compact_at))
        assert after.returncode == 0, after.stderr
        assert outside(home).counts(record_env(compact_at)) == {HELLO: recorded + 3}
        return tally

    tally = sum(in_parallel(lane, lanes_fold_always + lanes_fold_sometimes), Counter())
    assert tally["kills"] == (lanes_fold_always + lanes_fold_sometimes) * kills_per_lane
    reliability.record(
        area=AREA,
        fault=(
            "kill -9 at a random Python line of recording (a burst of invocations in one "
            "process; folding on every record or every few records)"
        ),
        cases=tally["kills"],
        outcome=(
            f"pending = acknowledged or acknowledged + 1 every time, never corrupt; "
            f"{tally['while folding']} kills landed while folding; "
            f"{tally['left temporary file']} half-written rollup files and "
            f"{tally['left unfolded segment']} unfolded segments were left, all cleaned "
            "up by the next fold; later runs record normally"
        ),
        lost=(
            f"at most the one invocation in flight (lost in {tally['in flight lost']} kills, "
            f"kept in {tally['in flight counted']})"
        ),
    )


@pytest.mark.timeout(900)  # full mode on a loaded machine
def test_kill_9_at_a_random_moment_of_a_burst(tmp_path: Path, reliability: Reliability) -> None:
    lanes = cases(1, 2)
    kills_per_lane = cases(4, 40)
    seed = random.Random(20261126)
    seeds = [seed.random() for _ in range(lanes)]

    def lane(index: int) -> dict[str, int]:
        chance = random.Random(seeds[index])
        home = tmp_path / f"lane-{index}"
        home.mkdir()
        recorded = 0
        tally: Counter[str] = Counter()
        for _ in range(kills_per_lane):
            env = {"TOOL_NOW": str(DAY_3), "BURST_COMPACT_AT": str(chance.choice([1, 300, 2048]))}
            process = run_burst(home, 100_000, env)
            assert process.stdout is not None
            # A random number of acknowledged invocations, then a random sliver of time.
            acknowledged = len(process.stdout.read(chance.randint(1, 12)))
            time.sleep(chance.uniform(0, 0.004))
            process.send_signal(signal.SIGKILL)
            acknowledged += len(process.stdout.read())
            process.communicate(timeout=60)
            assert process.returncode == -signal.SIGKILL
            left = leftovers(home)
            assert "set aside" not in left
            counts = in_process_counts(home)
            assert set(counts) == {HELLO}
            in_flight = counts[HELLO] - recorded - acknowledged
            assert in_flight in (0, 1), (counts, recorded, acknowledged)
            assert leftovers(home) == {}
            recorded = counts[HELLO]
            tally["kills"] += 1
            tally["in flight counted" if in_flight else "in flight lost"] += 1
            for kind, number in left.items():
                tally[f"left {kind}"] += number
        assert outside(home).counts({"TOOL_NOW": str(DAY_3)}) == {HELLO: recorded}
        return tally

    tally = sum(in_parallel(lane, lanes), Counter())
    reliability.record(
        area=AREA,
        fault="kill -9 after a random delay during a burst of invocations (any moment, system calls included)",
        cases=tally["kills"],
        outcome=(
            "pending = acknowledged or acknowledged + 1 every time, never corrupt; "
            f"{tally['left temporary file']} temporary files and "
            f"{tally['left unfolded segment']} unfolded segments left, all cleaned up by the next fold"
        ),
        lost=(
            f"at most the one invocation in flight (lost in {tally['in flight lost']} kills, "
            f"kept in {tally['in flight counted']})"
        ),
    )


@pytest.mark.timeout(900)  # full mode on a loaded machine
def test_kill_9_at_a_random_point_of_a_first_run(tmp_path: Path, reliability: Reliability) -> None:
    """The first run mints the install id and shows the notice: a kill there loses neither."""
    trials = cases(2, 40)
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    process = life_popen(
        calibration, "--burst", "1", env=record_env(1, LIFE_KILL_IN="record,claim")
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0
    span = counted_events(stderr)
    # Half the kills anywhere in the recording, half in the first run's own step.
    seed = random.Random(20261127)
    targets = ["record" if index % 2 else "claim" for index in range(trials)]
    points = [f"{target}:{seed.randint(1, span[target])}" for target in targets]

    def trial(index: int) -> dict[str, int]:
        home = tmp_path / f"first-{index}"
        home.mkdir()
        env = record_env(1, LIFE_KILL_IN=points[index])
        killed = life_popen(home, "--burst", "100000", env=env)
        stdout, killed_stderr = killed.communicate(timeout=60)
        assert killed.returncode == -signal.SIGKILL
        assert stdout == b""
        left = leftovers(home)
        assert "set aside" not in left
        following = life(home).run("--burst", "1", env=record_env(1))
        assert following.returncode == 0, following.stderr
        assert leftovers(home) == {}, "the next run cleans up what the kill left"
        counts = in_process_counts(home)
        assert counts[HELLO] in (1, 2)
        # The user is told at least once, before anything is recorded.
        shown = NOTICE_MARK in killed_stderr.decode() or NOTICE_MARK in following.stderr
        assert shown, (kill_report(killed_stderr), following.stderr)
        tally: Counter[str] = Counter(kills=1)
        tally["in flight counted" if counts[HELLO] == 2 else "in flight lost"] += 1
        stack = kill_report(killed_stderr) or []
        if "write_private_file" in stack:
            tally["while writing the config"] += 1
        elif "_claim_identity" in stack:
            tally["elsewhere in the first-run step"] += 1
        for kind, number in left.items():
            tally[f"left {kind}"] += number
        return tally

    tally = sum(in_parallel(trial, trials), Counter())
    reliability.record(
        area=AREA,
        fault=(
            "kill -9 at a random Python line of a first run (install id minted, notice "
            "shown), half of them inside that step"
        ),
        cases=tally["kills"],
        outcome=(
            f"{tally['while writing the config']} kills landed while the config was written, "
            f"{tally['elsewhere in the first-run step']} elsewhere in the first-run step; the "
            "notice is shown by the killed run or the next one, always before anything is "
            f"recorded; {tally['left temporary file']} temporary files left, cleaned up by "
            "the next run; never corrupt"
        ),
        lost=(
            f"at most the invocation in flight (lost in {tally['in flight lost']} kills, "
            f"kept in {tally['in flight counted']})"
        ),
    )


# -- 2. kill -9 while sending --------------------------------------------------------------


def send_env(endpoint: str, **extra: str) -> dict[str, str]:
    return {"TOOL_NOW": str(DAY_3), "OUTSIDE_TOOL_TELEMETRY_ENDPOINT": endpoint, **extra}


def make_template(home: Path) -> dict[RecordKey, int]:
    """Two completed days pending, part folded into the rollup and part still in the journal."""
    script = [
        f"{DAY_1} hello x",
        f"{DAY_1} hello y -g Hi",
        f"{DAY_1} fail",
        f"{DAY_2} db migrate --force",
        f"{DAY_2} telemetry status --json",  # folds what is there into the rollup
        f"{DAY_1} hello x",
        f"{DAY_2} leave",
        f"{DAY_2} db remote push --dry-run",
        *[f"{DAY_2} hello burst -n 0"] * 4,
    ]
    result = life(home).run("--each", input="\n".join(script), env={"TOOL_NOW": str(DAY_1)})
    assert result.returncode == 0, result.stderr
    assert (store_dir(home) / "journal.log").stat().st_size > 0
    # Read without folding, so that the journal part stays in the journal.
    records = RollupStore(store_dir(home), lambda message: None).snapshot().records()
    counts = {as_key(record): record.count for record in records}
    assert sum(counts.values()) == 11
    return counts


def accepted_by_a_deduplicating_receiver(receiver: Receiver) -> tuple[Counter[RecordKey], int]:
    """What a receiver that drops repeated idempotency keys keeps, and how many it dropped."""
    kept: Counter[RecordKey] = Counter()
    seen: dict[str, object] = {}
    dropped = 0
    for request in receiver:
        if not request.path.endswith("/batches"):
            continue
        try:
            batch = request.json()
        except ValueError:
            continue  # cut off by the kill: never acknowledged, never kept
        key = request.headers["idempotency-key"]
        assert batch["idempotency_key"] == key
        if key in seen:
            assert seen[key] == batch["records"], "one key, one content"
            dropped += 1
            continue
        seen[key] = batch["records"]
        for record in batch["records"]:
            kept[as_key(record)] += record["count"]
    return kept, dropped


KINDS = ("fold-before-send", "request", "remove-sent", "arrival", "timer")


@pytest.mark.timeout(900)  # full mode on a loaded machine
def test_kill_9_at_a_random_point_of_sending(tmp_path: Path, reliability: Reliability) -> None:
    per_kind = {kind: cases(1, 40) for kind in KINDS}
    template = tmp_path / "template"
    template.mkdir()
    recorded = make_template(template)

    # How long each step is, in trace events, when nothing is killed.
    calibration = tmp_path / "calibration"
    shutil.copytree(template, calibration)
    with Receiver() as receiver:
        env = send_env(receiver.url("/v1"), LIFE_KILL_IN="fold-before-send,request,remove-sent")
        result = life(calibration).run("--flush", env=env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["days_sent"] == ["2026-03-10", "2026-03-11"]
        span = counted_events(result.stderr.encode())
        assert len(receiver.requests) == 2
    assert set(span) == {"fold-before-send", "request", "remove-sent"}

    seed = random.Random(20261128)
    plan = [(kind, seed.random()) for kind in KINDS for _ in range(per_kind[kind])]

    def trial(index: int) -> dict[str, int]:
        kind, trial_seed = plan[index]
        chance = random.Random(trial_seed)
        home = tmp_path / f"send-{index}"
        shutil.copytree(template, home)
        tally: Counter[str] = Counter()
        with Receiver() as receiver:
            env = send_env(receiver.url("/v1"))
            if kind in span:
                env["LIFE_KILL_IN"] = f"{kind}:{chance.randint(1, span[kind])}"
            if kind in span:
                # The process kills itself at the chosen point of a flush; if that step
                # took fewer events this time, the send completes and the process exits.
                killed = life(home).run("--flush", env=env)
                assert killed.returncode in (-signal.SIGKILL, 0), killed.stderr
                stderr = killed.stderr.encode()
            else:
                process = life_popen(home, "serve", env=env)  # marked long-running: sends at once
                assert process.stdout is not None
                assert process.stdout.readline() == b"serving\n"
                if kind == "timer":
                    time.sleep(chance.uniform(0, 0.25))
                else:
                    receiver.wait_for(chance.randint(1, 2))
                process.send_signal(signal.SIGKILL)
                _, stderr = process.communicate(timeout=60)
                assert process.returncode == -signal.SIGKILL
            before = {
                "requests": len(receiver.requests),
                "pending days": len({key[0] for key in in_process_counts(home)} - {TODAY}),
            }
            expected = Counter(recorded)
            if chance.random() < 0.4:
                # A late record of a completed day (a run that began before midnight)
                # arrives before the rest is sent: it must not be merged into a resent
                # batch under a new key, nor lost.
                late = life(home).run("hello", "late", env={"TOOL_NOW": str(DAY_1)})
                assert late.returncode == 0, late.stderr
                expected[("2026-03-10", "hello", "success", "", ())] += 1
                tally["late records"] += 1
            # A later long-running run sends the rest.
            follow = life(home).run("--flush", env=send_env(receiver.url("/v1")))
            assert follow.returncode == 0, follow.stderr
            report = json.loads(follow.stdout)
            assert report["error"] is None, report
            assert report["skipped"] is None, report
            pending = {k: v for k, v in in_process_counts(home).items() if k[0] != TODAY}
            assert pending == {}
            assert leftovers(home) == {}
            kept, dropped = accepted_by_a_deduplicating_receiver(receiver)
            assert kept == expected
        tally["kills"] += 1
        if before["requests"] == 0:
            tally["before any request"] += 1
        elif before["pending days"] == 2 and before["requests"] == 1:
            tally["with the first batch received, before the store was updated"] += 1
        elif before["pending days"] == 1 and before["requests"] == 1:
            tally["between the two days"] += 1
        elif before["pending days"] == 0:
            tally["after everything was sent"] += 1
        else:
            tally["with the second batch received, before the store was updated"] += 1
        tally["duplicates dropped"] += dropped
        if kill_report(stderr) is None and kind not in ("timer", "arrival"):
            tally["past the chosen point"] += 1
        return tally

    tally = sum(in_parallel(trial, len(plan)), Counter())
    split = "; ".join(
        f"{tally[name]} {name}"
        for name in (
            "before any request",
            "with the first batch received, before the store was updated",
            "between the two days",
            "with the second batch received, before the store was updated",
            "after everything was sent",
        )
    )
    reliability.record(
        area=AREA,
        fault=(
            "kill -9 while sending two completed days to a real receiver: at a random Python "
            "line of the fold, the HTTP request or the store update, when a batch arrives, or "
            "after a random delay"
        ),
        cases=tally["kills"],
        outcome=(
            f"kills landed: {split}. In {tally['late records']} cases a late record of a "
            "completed day arrived before the next long-running run sent the rest; a receiver that "
            f"drops repeated idempotency keys (it dropped {tally['duplicates dropped']} "
            "resent batches) holds exactly what was recorded, per key"
        ),
        lost="nothing",
    )


# -- 3. SIGINT and SIGTERM ------------------------------------------------------------------

WAIT_KEY = ("2026-03-12", "wait", "aborted")


def signalled(
    home: Path, signals: Iterable[signal.Signals], env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    process = life(home).popen("wait", "--seconds", "120", env=env)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    for number in signals:
        process.send_signal(number)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, "ready\n" + stdout, stderr)


@pytest.fixture(scope="module")
def settled_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("settled") / "home"
    home.mkdir()
    first = life(home).run("hello", "first", env={"TOOL_NOW": str(DAY_3), "LIFE_COMPACT_AT": "1"})
    assert first.returncode == 0, first.stderr
    assert NOTICE_MARK in first.stderr
    return home


@pytest.fixture
def settled(settled_template: Path, tmp_path: Path) -> Path:
    """A home whose first run (install id, notice) is over, with one `hello` recorded on day 3."""
    home = tmp_path / "home"
    shutil.copytree(settled_template, home)
    return home


@pytest.mark.parametrize(
    ("number", "error_class", "status"),
    [(signal.SIGINT, "KeyboardInterrupt", 130), (signal.SIGTERM, "SIGTERM", -signal.SIGTERM)],
)
def test_a_signal_during_a_command_is_recorded_and_ends_it_as_without_the_library(
    settled: Path,
    reliability: Reliability,
    number: signal.Signals,
    error_class: str,
    status: int,
) -> None:
    env = {"TOOL_NOW": str(DAY_3), "LIFE_SIGINT": "default"}
    home = settled
    bare = signalled(home, [number], {**env, "TOOL_WITHOUT_TELEMETRY": "1"})
    instrumented = signalled(home, [number], env)
    assert bare.returncode == status  # Typer's own: 130 for Ctrl-C, killed by SIGTERM
    assert instrumented.returncode == bare.returncode
    assert instrumented.stdout == bare.stdout == "ready\n"
    assert strip_notice(instrumented.stderr) == bare.stderr
    counts = outside(home).counts(env)
    assert counts[(*WAIT_KEY, error_class, ("--seconds",))] == 1
    reliability.record(
        area=AREA,
        fault=f"{number.name} during a command",
        cases=1,
        outcome=(
            f"recorded as aborted ({error_class}); exit status {status} "
            f"({128 + number.value} in a shell), stdout and stderr as without the library"
        ),
    )


class LockHolder:
    """Another process holding a shared lock on the live journal: a writer stuck mid-append."""

    def __init__(self, journal: Path) -> None:
        code = (
            "import fcntl, os, sys\n"
            f"descriptor = os.open({str(journal)!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)\n"
            "fcntl.flock(descriptor, fcntl.LOCK_SH)\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline() == "held\n"

    def holding(self) -> bool:
        return self.process.poll() is None

    def release(self) -> None:
        self.process.communicate(input="", timeout=30)


SECOND_SIGNAL_CASES = [
    (signal.SIGTERM, signal.SIGTERM, "SIGTERM", -signal.SIGTERM),
    (signal.SIGINT, signal.SIGINT, "KeyboardInterrupt", 130),
    (signal.SIGTERM, signal.SIGINT, "SIGTERM", -signal.SIGTERM),
    (signal.SIGINT, signal.SIGTERM, "KeyboardInterrupt", -signal.SIGTERM),
]


@pytest.mark.parametrize(("first", "second", "error_class", "status"), SECOND_SIGNAL_CASES)
def test_a_second_signal_while_recording_ends_the_process_at_once(
    settled: Path,
    reliability: Reliability,
    first: signal.Signals,
    second: signal.Signals,
    error_class: str,
    status: int,
) -> None:
    # Every record folds, and a fold waits two minutes for a writer stuck on the journal:
    # the recording of the first signal's invocation blocks until the second arrives.
    env = {"TOOL_NOW": str(DAY_3), "LIFE_SIGINT": "default", "LIFE_COMPACT_AT": "1"}
    home = settled
    folder = store_dir(home)
    assert not any(name.startswith("segment-") for name in os.listdir(folder))
    bare = signalled(home, [first], {**env, "TOOL_WITHOUT_TELEMETRY": "1"})

    holder = LockHolder(folder / "journal.log")
    try:
        process = life(home).popen("wait", "--seconds", "120", env={**env, "LIFE_LOCK_WAIT": "120"})
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        process.send_signal(first)
        # The invocation's line is written and the fold has set the journal aside; it now
        # waits for the stuck writer.
        deadline = time.monotonic() + 60
        while not any(name.startswith("segment-") for name in os.listdir(folder)):
            assert time.monotonic() < deadline, "the recording never reached the fold"
            assert process.poll() is None, process.communicate()
        sent = time.monotonic()
        process.send_signal(second)
        stdout, stderr = process.communicate(timeout=60)
        took = time.monotonic() - sent
        assert holder.holding(), "the lock was still held when the process ended"
    finally:
        holder.release()
    assert took < 5, f"the process took {took:.1f} s to end after the second signal"
    assert process.returncode == status, stderr
    assert "ready\n" + stdout == bare.stdout
    if status == bare.returncode:
        assert strip_notice(stderr) == bare.stderr
    assert "Traceback" not in stderr
    # The line was written before the fold blocked: the invocation is not lost.
    assert in_process_counts(home)[(*WAIT_KEY, error_class, ("--seconds",))] == 1
    reliability.record(
        area=AREA,
        fault=(
            f"{first.name}, then {second.name} while the first one's invocation is being "
            "recorded (the fold blocked by another process's lock)"
        ),
        cases=1,
        outcome=(
            f"the process ends within {5} s of the second signal (lock still held), exit "
            f"status {status}, no traceback; the invocation was already written: recorded "
            f"as aborted ({error_class})"
        ),
    )


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_the_parent_ignores_stays_ignored(
    settled: Path, reliability: Reliability, number: signal.Signals
) -> None:
    name = "LIFE_SIGINT" if number == signal.SIGINT else "LIFE_SIGTERM"
    env = {"TOOL_NOW": str(DAY_3), name: "ignore"}
    home = settled
    results = []
    for variant in ({"TOOL_WITHOUT_TELEMETRY": "1"}, {}):
        process = life(home).popen("wait", "--until-stdin-closes", env={**env, **variant})
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        process.send_signal(number)  # delivered (and ignored) before stdin closes
        stdout, stderr = process.communicate(input="", timeout=60)
        results.append((process.returncode, "ready\n" + stdout, strip_notice(stderr)))
    assert results[0] == results[1] == (0, "ready\nwaited\n", "")
    key = ("2026-03-12", "wait", "success", "", ("--until-stdin-closes",))
    assert in_process_counts(home)[key] == 1
    cases_run = 1
    if number == signal.SIGINT:
        # outside_tool's `interrupt` puts Python's Ctrl-C handling back and interrupts itself.
        assert_unchanged_by_telemetry(life(home), "interrupt", env=env)
        key = ("2026-03-12", "interrupt", "aborted", "KeyboardInterrupt", ())
        assert in_process_counts(home)[key] == 1
        cases_run += 1
    reliability.record(
        area=AREA,
        fault=f"{number.name} sent to a tool whose parent ignores it (as test runners do)",
        cases=cases_run,
        outcome=(
            "still ignored: the command runs to its end, recorded as a success; "
            "output and exit status as without the library"
        ),
    )


# -- 4. os._exit --------------------------------------------------------------------------


def test_os_exit_in_the_tool_keeps_its_exit_code_and_earlier_data(
    settled: Path, reliability: Reliability
) -> None:
    env = {"TOOL_NOW": str(DAY_3)}
    home = settled
    before = in_process_counts(home)
    assert sum(before.values()) == 1
    codes = (0, 7)
    for code in codes:
        result = assert_unchanged_by_telemetry(life(home), "exit-now", "--code", str(code), env=env)
        assert result.returncode == code
        assert result.stdout == "leaving now\n"
    # os._exit skips the hook's recording: nothing for those runs, the rest intact.
    assert in_process_counts(home) == before
    assert leftovers(home) == {}
    assert life(home).run("hello", "again", env=env).returncode == 0
    hello = ("2026-03-12", "hello", "success", "", ())
    assert outside(home).counts(env) == {hello: 2}
    reliability.record(
        area=AREA,
        fault="the tool leaves through os._exit (no exception, no finally, no atexit)",
        cases=len(codes),
        outcome=(
            "exit code and output as without the library; earlier data intact, later runs "
            "record normally"
        ),
        lost="the os._exit invocation itself (documented: nothing runs after os._exit)",
    )
