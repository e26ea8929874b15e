"""Local files: whatever the tool's telemetry files look like, the host tool is unaffected.

Each fault is planted in an isolated home that holds real files made by real
runs (a "golden" home, built once per test process and copied per case),
then the outside tool runs as a real process. The contract checked each time:
the same exit code and stdout as the tool without the library, stderr the
same but for the one-time notice (and, under OUTSIDE_TOOL_TELEMETRY_DEBUG=1,
the library's explanations), nothing written through a planted link, and the
data recorded before the fault still pending unless the fault itself
destroyed it (what is lost is said in each reliability row).

Runs as root (the test machines and CI do): to make a folder truly read-only
for the child, the child gives up the capabilities that let root ignore file
modes (CAP_DAC_OVERRIDE and friends) before it starts, and the folders lose
their write bits (readable by the owner alone: a folder of another user, or
one others may write to, is refused outright, see test_other_users.py); each
such test first proves a write is refused.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conftest import OUTSIDE_TOOL, TOOLS, RecordKey, Tool
from tests.hardening.conftest import (
    FULL,
    Reliability,
    assert_unchanged_by_telemetry,
    cases,
    strip_notice,
)
from tests.receiver import Receiver
from typer_telemetry import _recording, _store

T = TypeVar("T")

NOW = "1773100800"  # 2026-03-10 12:00 UTC
TODAY = "2026-03-10"
DEBUG = {"OUTSIDE_TOOL_TELEMETRY_DEBUG": "1"}
MARK = "[outside-tool telemetry]"
AREA = "Local files"
COMMAND = ("db", "migrate", "--force")

MIGRATE: RecordKey = (TODAY, "db migrate", "success", "", ("--force",))
FAILED: RecordKey = (TODAY, "fail", "error", "RuntimeError", ())
HELLO: RecordKey = (TODAY, "hello", "success", "", ())

CONFIG = Path(".config/outside-tool/telemetry.toml")
CONFIG_DIR = CONFIG.parent
STATE_DIR = Path(".local/state/outside-tool")
STORE = STATE_DIR / "telemetry"
ROLLUP = STORE / "rollup.json"
JOURNAL = STORE / "journal.log"
DELETIONS = STORE / "deletions.json"
IN_ROLLUP = (MIGRATE,)
IN_JOURNAL = (FAILED, HELLO)
EVERYTHING = IN_ROLLUP + IN_JOURNAL


# -- the golden home and the cases built from it ----------------------------------


@pytest.fixture(scope="session")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home after real use: config, a folded rollup, a journal, a pending deletion."""
    home = tmp_path_factory.mktemp("golden") / "home"
    home.mkdir()
    tool = Tool(OUTSIDE_TOOL, home, env={"TOOL_NOW": NOW})
    # Something was sent (a reset asks to delete only ids data was sent under):
    # the day before goes to a receiver from a long-running run.
    tool.run("hello", "world", env={"TOOL_NOW": str(int(NOW) - 86400)})
    with Receiver() as receiver:
        sender = tool.popen(
            "wait",
            "--until-stdin-closes",
            env={
                "OUTSIDE_TOOL_TELEMETRY_ENDPOINT": receiver.url("/v1"),
                "TOOL_LONG_RUNNING_AFTER": "0.05",
            },
        )
        receiver.wait_for(1)
        sender.communicate(input="", timeout=30)
    for args, env in (
        # An endpoint that refuses connections: the deletion request stays pending.
        (("telemetry", "reset"), {"OUTSIDE_TOOL_TELEMETRY_ENDPOINT": "http://127.0.0.1:9/v1"}),
        (COMMAND, {}),
        (("telemetry", "status", "--json"), {}),  # folds the journal into rollup.json
        (("fail",), {}),
        (("hello", "world"), {}),
    ):
        result = tool.run(*args, env=env)
        assert result.returncode in (0, 1), result.stderr
    for path in (CONFIG, ROLLUP, JOURNAL, DELETIONS):
        assert (home / path).is_file(), path
    rollup = json.loads((home / ROLLUP).read_bytes())
    assert [record["properties"]["command"] for record in rollup["records"]] == ["db migrate"]
    assert (home / JOURNAL).read_bytes().count(b"\n") == 2
    return home


@pytest.fixture
def fresh(tmp_path: Path, golden: Path) -> Callable[[], Tool]:
    """Make a new case: a copy of the golden home, as a Tool."""
    counter = iter(range(1_000_000))

    def make() -> Tool:
        home = tmp_path / f"case-{next(counter)}"
        shutil.copytree(golden, home, symlinks=True)
        return Tool(OUTSIDE_TOOL, home, env={"TOOL_NOW": NOW})

    return make


_BARE: dict[tuple[str, ...], subprocess.CompletedProcess[str]] = {}


def bare(tool: Tool, *args: str) -> subprocess.CompletedProcess[str]:
    """The tool without the library (its result does not depend on the home's files)."""
    if args not in _BARE:
        _BARE[args] = tool.run(*args, env={"TOOL_WITHOUT_TELEMETRY": "1"})
    return _BARE[args]


def run_unchanged(tool: Tool, *args: str, env: Mapping[str, str] | None = None) -> list[str]:
    """Run with the library under DEBUG, compare with the bare tool; return the debug lines.

    The cheap form of `assert_unchanged_by_telemetry` for long loops of cases
    (the bare run is made once); every fault also goes through the shared helper.
    """
    started = time.monotonic()
    result = tool.run(*args, env={**DEBUG, **(env or {})}, timeout=60)
    assert time.monotonic() - started < 10, "the tool took more than 10 s"
    reference = bare(tool, *args)
    assert result.returncode == reference.returncode, result.stderr
    assert result.stdout == reference.stdout
    lines = strip_notice(result.stderr).splitlines(True)
    assert "".join(line for line in lines if not line.startswith(MARK)) == reference.stderr
    return [line for line in lines if line.startswith(MARK)]


def assert_contract(tool: Tool, *args: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The shared helper, plain and under DEBUG (which must explain); returns the debug lines."""
    args = args or COMMAND
    started = time.monotonic()
    # Under DEBUG first: that run meets the fault as planted, and must explain it.
    result = assert_unchanged_by_telemetry(
        tool, *args, env={**(env or {}), **DEBUG}, debug_allowed=True
    )
    assert_unchanged_by_telemetry(tool, *args, env=env)
    assert time.monotonic() - started < 40, "four runs took more than 40 s"
    lines = [line for line in result.stderr.splitlines() if line.startswith(MARK)]
    assert lines, "no explanation on stderr under OUTSIDE_TOOL_TELEMETRY_DEBUG=1"
    return lines


def assert_status_quiet(tool: Tool) -> None:
    """`status --json` exits 0 promptly, prints one JSON object, and no traceback."""
    started = time.monotonic()
    result = tool.run("telemetry", "status", "--json")
    assert time.monotonic() - started < 10
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), dict)
    assert "Traceback" not in result.stderr


def assert_pending(
    tool: Tool, keys: tuple[RecordKey, ...], *, at_least: int = 1
) -> dict[RecordKey, int]:
    """`status --json` works and still lists each of `keys`."""
    counts = tool.counts()
    for key in keys:
        assert counts.get(key, 0) >= at_least, (key, counts)
    return counts


def pick(params: list[T], fast: int, seed: int) -> list[T]:
    """All parameter sets in the full run; a seeded sample of `fast` of them in the fast one."""
    if FULL or fast >= len(params):
        return params
    return random.Random(seed).sample(params, fast)


FULL_OFFSETS = 80


def sampled(total: int, fast: int, seed: int) -> list[int]:
    """A seeded sample of offsets: `fast` of them in the fast run, up to 80 in the full one."""
    count = cases(fast, min(total, FULL_OFFSETS))
    if count >= total:
        return list(range(total))
    return sorted(random.Random(seed).sample(range(total), count))


def store_records(tool: Tool) -> dict[RecordKey, int]:
    """What the store holds, read from its files without running the tool (after a fold)."""
    document = json.loads((tool.home / ROLLUP).read_bytes())
    return {
        (
            r["day"],
            r["properties"]["command"],
            r["outcome"],
            r["error_class"],
            tuple(r["properties"]["flags"]),
        ): r["count"]
        for r in document["records"]
    }


def set_aside(tool: Tool, name: str) -> list[bytes]:
    return [p.read_bytes() for p in (tool.home / STORE).glob(f"{name}.unusable-*")]


def fill_journal(tool: Tool, target: int = _recording.FOLD_AT_BYTES - 40) -> None:
    """Grow the journal with real journal lines until the next run folds it."""
    line = _recording.Observation.of_command(TODAY, "hello", "success", "", (), 7.0).journal_line()
    path = tool.home / JOURNAL
    if any(p.is_symlink() for p in (path, path.parent, path.parent.parent)):
        return  # a planted link: the test must not write through it either
    size = path.stat().st_size if path.exists() else 0
    with open(path, "ab") as journal:
        journal.write(line * max(0, (target - size) // len(line)))


# -- truncation at sampled byte offsets -------------------------------------------------


@pytest.mark.timeout(900)
def test_config_truncated_at_sampled_byte_offsets(
    fresh: Callable[[], Tool], golden: Path, reliability: Reliability
) -> None:
    valid = (golden / CONFIG).read_bytes()
    offsets = sampled(len(valid), 2, seed=1)
    outcomes = {"recorded": 0, "off": 0}
    for index, offset in enumerate(offsets):
        tool = fresh()
        (tool.home / CONFIG).write_bytes(valid[:offset])
        journal_before = (tool.home / JOURNAL).read_bytes()
        debug = assert_contract(tool) if index == 0 else run_unchanged(tool, *COMMAND)
        journal_after = (tool.home / JOURNAL).read_bytes()
        assert journal_after.startswith(journal_before)  # nothing earlier touched
        if journal_after != journal_before:
            outcomes["recorded"] += 1
            assert any("recorded Observation" in line for line in debug)
        else:
            outcomes["off"] += 1  # fail closed: the stored choice might have been "disabled"
            assert any("config file cannot be read" in line for line in debug), debug
        if index % 10 == 0:
            assert_pending(tool, EVERYTHING)
    reliability.record(
        area=AREA,
        fault=f"config file truncated at {len(offsets)} seeded byte offsets of {len(valid)}",
        cases=len(offsets),
        outcome=(
            "tool unaffected; a cut that leaves valid TOML keeps recording (the notice may "
            "show again), any other cut reads as unreadable: recording off until "
            "`telemetry enable/disable` rewrites it (fail closed); pending data kept"
        ),
        lost="nothing already recorded; invocations while the file is unreadable are not recorded",
    )
    if FULL:  # every cut inside a value makes the file unreadable
        assert outcomes["off"] >= 1


@pytest.mark.timeout(900)
def test_rollup_truncated_at_sampled_byte_offsets(
    fresh: Callable[[], Tool], golden: Path, reliability: Reliability
) -> None:
    valid = (golden / ROLLUP).read_bytes()
    offsets = sampled(len(valid), 2, seed=2)
    for index, offset in enumerate(offsets):
        tool = fresh()
        (tool.home / ROLLUP).write_bytes(valid[:offset])
        fill_journal(tool)  # this run folds: it reads the truncated rollup
        debug = assert_contract(tool) if index == 0 else run_unchanged(tool, *COMMAND)
        assert any("rollup file is unusable" in line for line in debug), debug
        assert set_aside(tool, "rollup.json") == [valid[:offset]]  # kept, not deleted
        held = store_records(tool)
        assert held[MIGRATE] >= 1  # this run's record, folded into a new, valid rollup
        assert held[FAILED] == 1
        if index % 10 == 0:
            assert_pending(tool, (MIGRATE, FAILED, HELLO))
    reliability.record(
        area=AREA,
        fault=f"rollup.json truncated at {len(offsets)} seeded byte offsets of {len(valid)}",
        cases=len(offsets),
        outcome="tool unaffected; file set aside as rollup.json.unusable-*; the run that "
        "found it folded the journal into a new rollup",
        lost="the truncated file's records (set aside, not deleted)",
    )


@pytest.mark.timeout(900)
def test_journal_truncated_at_sampled_byte_offsets(
    fresh: Callable[[], Tool], golden: Path, reliability: Reliability
) -> None:
    valid = (golden / JOURNAL).read_bytes()
    lines = valid.split(b"\n")[1:]
    assert len(lines) == 2
    offsets = sampled(len(valid), 2, seed=3)
    for index, offset in enumerate(offsets):
        tool = fresh()
        (tool.home / JOURNAL).write_bytes(valid[:offset])
        if index == 0:
            assert_contract(tool)
        counts = assert_pending(tool, (MIGRATE,))
        # Whole lines before the cut survive; the cut line alone is lost.
        whole = valid[:offset].split(b"\n")[1:]
        complete = [line for line in whole if line in lines]
        assert counts.get(FAILED, 0) == (lines[0] in complete)
        assert counts.get(HELLO, 0) == (lines[1] in complete)
        # And recording goes on after the cut line.
        run_unchanged(tool, "hello", "world")
        assert tool.counts()[HELLO] == counts.get(HELLO, 0) + 1
    reliability.record(
        area=AREA,
        fault=f"journal.log truncated at {len(offsets)} seeded byte offsets of {len(valid)}",
        cases=len(offsets),
        outcome="tool unaffected; the cut line is dropped at folding (explained under DEBUG); "
        "later runs record",
        lost="the one record the cut went through",
    )


@pytest.mark.timeout(900)
def test_deletions_truncated_at_sampled_byte_offsets(
    fresh: Callable[[], Tool], golden: Path, reliability: Reliability
) -> None:
    valid = (golden / DELETIONS).read_bytes()
    pending_id = json.loads(valid)[0]
    offsets = sampled(len(valid), 1, seed=4)
    for index, offset in enumerate(offsets):
        tool = fresh()
        (tool.home / DELETIONS).write_bytes(valid[:offset])
        if index == 0:
            assert_contract(tool)
        report = tool.status()
        assert report["pending_deletions"] in ([], [pending_id])
        assert report["pending_deletions"] == []  # every cut spoils the JSON
        assert_pending(tool, EVERYTHING)
    reliability.record(
        area=AREA,
        fault=f"deletions.json truncated at {len(offsets)} seeded byte offsets of {len(valid)}",
        cases=len(offsets),
        outcome="tool and status unaffected; the file reads as no pending deletion",
        lost="the pending deletion request (the old install id cannot be recovered from a cut file)",
    )


# -- empty, random, huge, wrong-typed and foreign content -----------------------------

FILES = {
    "config": CONFIG,
    "rollup": ROLLUP,
    "journal": JOURNAL,
    "segment": STORE / "segment-2.log",
    "deletions": DELETIONS,
    "compact.lock": STORE / "compact.lock",
    "send.lock": STORE / "send.lock",
    "config lock": CONFIG_DIR / ".telemetry.lock",
}


def expected_survivors(name: str) -> tuple[RecordKey, ...]:
    """The golden records a fault in file `name` may not take with it."""
    if name == "rollup":
        return IN_JOURNAL
    if name in ("journal", "segment"):
        return IN_ROLLUP
    return EVERYTHING


def plant(tool: Tool, name: str, content: bytes) -> None:
    path = tool.home / FILES[name]
    if name == "segment":
        # A segment is a journal set aside for folding (what a crash mid-fold leaves).
        os.rename(tool.home / JOURNAL, path)
    path.write_bytes(content)


def check_after(tool: Tool, name: str) -> None:
    """Status works, earlier data is pending, nothing foreign was kept, recording goes on."""
    assert_pending(tool, expected_survivors(name))
    if name != "config":
        run_unchanged(tool, "hello", "world")
        assert tool.counts()[HELLO] >= 1
    held = (tool.home / ROLLUP).read_bytes() if (tool.home / ROLLUP).exists() else b""
    assert b"foreign" not in held
    assert b"\x00" not in held


@pytest.mark.parametrize("name", pick(sorted(FILES), 1, seed=10))
def test_empty_file(fresh: Callable[[], Tool], name: str, reliability: Reliability) -> None:
    tool = fresh()
    plant(tool, name, b"")
    assert_contract(tool)
    check_after(tool, name)
    reliability.record(
        area=AREA,
        fault=f"{name} file empty",
        cases=1,
        outcome="tool unaffected; status works; later runs record"
        + ("; an empty config is a fresh one (notice once more)" if name == "config" else ""),
        lost="nothing"
        if name in ("config", "deletions") or "lock" in name
        else "the emptied file's records",
    )


@pytest.mark.timeout(900)
def test_random_binary_files(fresh: Callable[[], Tool], reliability: Reliability) -> None:
    rng = random.Random(20260310)
    names = sorted(FILES)
    total = cases(2, 80)
    offset = rng.randrange(len(names))
    for index in range(total):
        name = names[(index + offset) % len(names)]
        tool = fresh()
        plant(tool, name, rng.randbytes(rng.choice([1, 7, 100, 4096, 70_000])))
        if index == 0:
            assert_contract(tool)
        else:
            run_unchanged(tool, *COMMAND)
        if index < 2 or index % 10 == 0:
            check_after(tool, name)
    reliability.record(
        area=AREA,
        fault="random binary content (seeded) in the config, rollup, journal, segment, "
        "deletions and lock files",
        cases=total,
        outcome="tool unaffected; a binary config reads as unreadable (off), a binary rollup "
        "is set aside, binary journal lines are dropped at folding; status works",
        lost="the overwritten file's records",
    )


HUGE = 200 * 1024 * 1024


# Runs the tool's script and writes the peak memory of its own process image
# (VmHWM, KiB) at exit. `ru_maxrss` from wait4 is not that on Linux: exec
# carries over the high-water mark of the process that forked it, so a test
# worker grown past the limit would fail the tool for the worker's memory.
PEAK_WRAPPER = """
import atexit, os, runpy, sys

def write_peak():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                with open(os.environ["MEASURED_PEAK_FILE"], "w") as out:
                    out.write(line.split()[1])

atexit.register(write_peak)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_measured(tool: Tool, *args: str) -> tuple[subprocess.CompletedProcess[str], float, int]:
    """Run the instrumented tool; also return its wall time and peak memory (KiB)."""
    peak_file = tool.home / "peak-kib"
    peak_file.unlink(missing_ok=True)
    measured = Path("/proc/self/status").exists()
    command = [sys.executable, "-c", PEAK_WRAPPER] if measured else [sys.executable]
    started = time.monotonic()
    with open(tool.home / "out", "w+") as out, open(tool.home / "err", "w+") as err:
        process = subprocess.Popen(
            [*command, str(tool.script), *args],
            env={**tool.environment(DEBUG), "MEASURED_PEAK_FILE": str(peak_file)},
            stdout=out,
            stderr=err,
            text=True,
            cwd=tool.home,
        )
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(
            process.args, process.returncode, out.read(), err.read()
        )
    peak = int(peak_file.read_text()) if measured else usage.ru_maxrss
    return result, time.monotonic() - started, peak


@pytest.mark.parametrize("name", pick(sorted(FILES), 1, seed=11))
def test_huge_sparse_file_is_never_read_whole(
    fresh: Callable[[], Tool], name: str, reliability: Reliability
) -> None:
    tool = fresh()
    plant(tool, name, b"")
    with open(tool.home / FILES[name], "r+b") as handle:
        handle.truncate(HUGE)  # sparse: costs no disk, but reading it whole costs 200 MiB
    reference = bare(tool, *COMMAND)
    for args in (COMMAND, ("telemetry", "status", "--json")):
        result, seconds, peak_kib = run_measured(tool, *args)
        assert seconds < 10
        assert peak_kib < 120 * 1024, f"{args}: peak memory {peak_kib} KiB"
        assert result.returncode == 0, result.stderr
        if args == COMMAND:
            assert result.stdout == reference.stdout
            assert any(line.startswith(MARK) for line in result.stderr.splitlines())
    assert_contract(tool)
    check_after(tool, name)
    reliability.record(
        area=AREA,
        fault=f"{name} file replaced by a 200 MiB (sparse) file",
        cases=1,
        outcome="tool unaffected, finishes promptly, memory stays under 120 MiB; "
        + (
            "config reads as unreadable (off)"
            if name == "config"
            else "lock files are never read"
            if "lock" in name
            else "the file is set aside or read only up to its limit"
        ),
        lost="nothing" if "lock" in name else "the replaced file's records",
    )


ROLLUP_RECORD = {
    "day": TODAY,
    "command": "db migrate",
    "outcome": "success",
    "error_class": "",
    "flags": ["--force"],
    "count": 1,
    "duration_ms_sum": 5.0,
    "duration_ms_min": 5.0,
    "duration_ms_max": 5.0,
    "duration_ms_buckets": [1] + [0] * 15,
}


def rollup_document(**changes: object) -> bytes:
    document: dict[str, object] = {
        "format": "typer-telemetry-rollup",
        "version": 1,
        "merged_through": 1,
        "records": [ROLLUP_RECORD],
        "dropped": {},
    }
    document.update(changes)
    return json.dumps(document).encode()


def record_with(**changes: object) -> dict[str, object]:
    return {**ROLLUP_RECORD, **changes}


def rollup_document_2(**changes: object) -> bytes:
    """A rollup of the current version (events with properties, `folded_through`)."""
    document: dict[str, object] = {
        "format": "typer-telemetry-rollup",
        "version": 2,
        "folded_through": 1,
        "records": [record_2_with()],
        "dropped": {},
    }
    document.update(changes)
    return json.dumps(document).encode()


def record_2_with(**changes: object) -> dict[str, object]:
    from typer_telemetry._records import upgrade_version_1

    return {**upgrade_version_1(ROLLUP_RECORD), **changes}


def journal_line_2(**changes: object) -> bytes:
    values = {
        "day": TODAY,
        "event": "command",
        "properties": {"command": "x", "flags": []},
        "outcome": "success",
        "error_class": "",
        "duration_ms": 1,
        **changes,
    }
    return b"\n" + json.dumps(values).encode()


WRONG_TYPED: list[tuple[str, str, bytes]] = [
    ("config", "enabled is a string", b'enabled = "yes"\n'),
    ("config", "enabled is a number", b"enabled = 1\n"),
    ("config", "install_id is a number", b"install_id = 42\nenabled = true\n"),
    ("config", "install_id is not a uuid", b'install_id = "../../etc/passwd"\nenabled = true\n'),
    ("config", "notice_shown is a string", b'notice_shown = "true"\n'),
    ("config", "a table and an array", b"enabled = [true]\n[enabled2]\nx = 1\n"),
    ("config", "duplicate keys", b"enabled = true\nenabled = false\n"),
    ("config", "not utf-8", b'install_id = "\xff\xfe"\n'),
    ("config", "deeply nested", b"enabled = " + b"[" * 100_000),
    ("rollup", "count is -1", rollup_document(records=[record_with(count=-1)])),
    ("rollup", "count is 1e308", rollup_document(records=[record_with(count=1e308)])),
    ("rollup", "count is a string", rollup_document(records=[record_with(count="x")])),
    ("rollup", "day 2026-13-45", rollup_document(records=[record_with(day="2026-13-45")])),
    ("rollup", "flags not a list", rollup_document(records=[record_with(flags="--force")])),
    ("rollup", "an extra field", rollup_document(records=[record_with(user="alice")])),
    ("rollup", "records not a list", rollup_document(records={"a": 1})),
    ("rollup", "merged_through is -1", rollup_document(merged_through=-1)),
    ("rollup", "merged_through is huge", rollup_document(merged_through=10**30)),
    ("rollup", "merged_through is a string", rollup_document(merged_through="7")),
    (
        "rollup",
        "dropped with foreign days and counts",
        rollup_document(dropped={"/home/alice": 5, TODAY: 10**40, "2026-13-45": 1}),
    ),
    ("rollup", "deeply nested", b"[" * 100_000),
    # The same faults in the current version's layout.
    ("rollup", "v2: folded_through is -1", rollup_document_2(folded_through=-1)),
    (
        "rollup",
        "v2: properties not an object",
        rollup_document_2(records=[record_2_with(properties=["x"])]),
    ),
    (
        "rollup",
        "v2: an undeclared property",
        rollup_document_2(
            records=[
                record_2_with(properties={"command": "db migrate", "flags": [], "user": "alice"})
            ]
        ),
    ),
    (
        "rollup",
        "v2: an event named like a path",
        rollup_document_2(records=[record_2_with(event="/home/alice")]),
    ),
    (
        "journal",
        "v2: lines with wrong types",
        journal_line_2(day="2026-13-45")
        + journal_line_2(properties={"command": "x", "flags": "--force"})
        + journal_line_2(properties={"command": "x", "flags": [], "user": "alice"})
        + journal_line_2(event="/home/alice")
        + journal_line_2(duration_ms=-1)
        + journal_line_2(properties="x"),
    ),
    (
        "journal",
        "lines with wrong types",
        b'\n{"day":"2026-13-45","command":"x","outcome":"success","error_class":"",'
        b'"flags":[],"duration_ms":1}'
        b'\n{"day":"2026-03-10","command":"x","outcome":"success","error_class":"",'
        b'"flags":"--force","duration_ms":1}'
        b'\n{"day":"2026-03-10","command":"x","outcome":"success","error_class":"",'
        b'"flags":[],"duration_ms":1e308}'
        b'\n{"day":"2026-03-10","command":"x","outcome":"success","error_class":"",'
        b'"flags":[],"duration_ms":-1}'
        b'\n{"day":"2026-03-10","command":"x","outcome":"success","error_class":"",'
        b'"flags":[],"duration_ms":"1"}'
        b"\n[" + b"[" * 100_000,
    ),
    ("deletions", "a number", b"42"),
    ("deletions", "an object", b'{"install_id": "x"}'),
    ("deletions", "entries that are no install ids", b'["/etc/passwd", 1, null, "x"]'),
]


@pytest.mark.parametrize(
    ("name", "what", "content"), pick(WRONG_TYPED, 3, seed=12), ids=lambda value: str(value)[:40]
)
def test_wrong_typed_values(
    fresh: Callable[[], Tool],
    golden: Path,
    name: str,
    what: str,
    content: bytes,
    reliability: Reliability,
) -> None:
    tool = fresh()
    plant(tool, name, content)
    if name == "rollup":
        fill_journal(tool)
    assert_contract(tool)
    report = tool.status()
    assert_pending(tool, expected_survivors(name))
    golden_id = json.loads((golden / DELETIONS).read_bytes())[0]
    assert report["pending_deletions"] == ([] if name == "deletions" else [golden_id])
    # Nothing outside the schema was kept or is shown.
    shown = json.dumps(report)
    for foreign in ("alice", "passwd", "2026-13-45"):
        assert foreign not in shown
    if name == "rollup":
        for value in report["dropped"].values():  # type: ignore[attr-defined]
            assert 0 < value <= 2**53
        held = (tool.home / ROLLUP).read_bytes()
        assert b"alice" not in held
        assert b"2026-13-45" not in held
    if name == "config":
        assert report["install_id"] is None or len(str(report["install_id"])) == 36
    reliability.record(
        area=AREA,
        fault=f"{name}: {what}",
        cases=1,
        outcome="tool unaffected; "
        + {
            "config": "a wrong-typed choice reads as unreadable (off); a bad install id is re-minted",
            "rollup": "the rollup is set aside and rebuilt from the journal; foreign values never "
            "kept or shown",
            "journal": "lines outside the schema are dropped at folding",
            "deletions": "entries that are no install ids are ignored",
        }[name],
        lost="nothing" if name in ("config", "deletions") else "the bad file's records",
    )


FOREIGN = b'{"foreign": true, "version": 3, "items": [1, 2, 3]}\n'
FOREIGN_TOML = b'[tool.foreign]\nname = "other program"\n'


@pytest.mark.parametrize("name", pick(["config", "rollup", "journal", "deletions"], 1, seed=13))
def test_another_programs_file(
    fresh: Callable[[], Tool], name: str, reliability: Reliability
) -> None:
    tool = fresh()
    content = FOREIGN_TOML if name == "config" else FOREIGN
    plant(tool, name, content)
    if name == "rollup":
        fill_journal(tool)
    assert_contract(tool)
    check_after(tool, name)
    if name == "rollup":
        assert set_aside(tool, "rollup.json") == [FOREIGN]
    if name == "config":
        # A config with unknown keys but no choice is kept, keys and all.
        assert (tool.home / CONFIG).read_bytes().count(b"other program") == 1
    reliability.record(
        area=AREA,
        fault=f"another program's file in place of {name}",
        cases=1,
        outcome="tool unaffected; "
        + {
            "config": "unknown TOML keys are kept, the file stays the user's",
            "rollup": "set aside, not deleted",
            "journal": "its lines are dropped at folding",
            "deletions": "ignored",
        }[name],
        lost="nothing" if name in ("config", "deletions") else "the replaced file's records",
    )


# -- wrong kinds of files ------------------------------------------------------------

KINDS: list[tuple[str, Path, str, tuple[RecordKey, ...]]] = [
    ("config path is a directory", CONFIG, "dir", EVERYTHING),
    ("config dir is a file", CONFIG_DIR, "file", EVERYTHING),
    ("state dir is a file", STATE_DIR, "file", ()),
    ("store dir is a file", STORE, "file", ()),
    ("rollup.json is a directory", ROLLUP, "dir", IN_JOURNAL),
    ("journal.log is a directory", JOURNAL, "dir", IN_ROLLUP),
    ("compact.lock is a directory", STORE / "compact.lock", "dir", EVERYTHING),
    ("send.lock is a directory", STORE / "send.lock", "dir", EVERYTHING),
    ("deletions.json is a directory", DELETIONS, "dir", EVERYTHING),
    ("config file is a named pipe", CONFIG, "fifo", EVERYTHING),
    ("rollup.json is a named pipe", ROLLUP, "fifo", IN_JOURNAL),
    ("journal.log is a named pipe", JOURNAL, "fifo", IN_ROLLUP),
    ("segment is a named pipe", STORE / "segment-2.log", "fifo", IN_ROLLUP),
    ("deletions.json is a named pipe", DELETIONS, "fifo", EVERYTHING),
]


def replace_with(path: Path, kind: str) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    if kind == "dir":
        path.mkdir()
        (path / "inside").write_bytes(b"a file of the user's")
    elif kind == "file":
        path.write_bytes(b"a file of the user's")
    else:
        os.mkfifo(path)


@pytest.mark.parametrize(
    ("what", "where", "kind", "kept"), pick(KINDS, 3, seed=14), ids=lambda v: str(v)[:40]
)
def test_wrong_kind_of_file(
    fresh: Callable[[], Tool],
    what: str,
    where: Path,
    kind: str,
    kept: tuple[RecordKey, ...],
    reliability: Reliability,
) -> None:
    tool = fresh()
    path = tool.home / where
    if "segment" in what:
        os.rename(tool.home / JOURNAL, path)
    replace_with(path, kind)
    assert_contract(tool)
    assert_status_quiet(tool)
    # The user's thing is still there, untouched (at most set aside under another name).
    found = [path, *path.parent.glob(f"{path.name}.unusable-*")]
    if kind == "dir":
        assert any((p / "inside").is_file() for p in found)
    elif kind == "file":
        assert path.read_bytes() == b"a file of the user's"
    elif "segment" not in what:  # a segment name in the store folder is removed once folded
        assert any(p.is_fifo() for p in found)
    if kept:
        assert_pending(tool, kept)
    else:
        assert tool.status()["pending"] == []  # the store folder itself is gone
    reliability.record(
        area=AREA,
        fault=what,
        cases=1,
        outcome="tool unaffected and never blocks; status works; the user's file is left alone",
        lost="nothing" if kept == EVERYTHING else "records of the replaced file or folder",
    )


# -- planted symlinks ----------------------------------------------------------------


def plant_victims(root: Path) -> dict[Path, tuple[bytes, int]]:
    victims = root / "victims"
    victims.mkdir(exist_ok=True)
    made = {}
    for name in ("victim.txt", "rollup.json", "journal.log", "telemetry.toml"):
        path = victims / name
        path.write_bytes(f"precious {name}\n".encode())
        path.chmod(0o644)
        made[path] = (path.read_bytes(), path.stat().st_mode)
    return made


def assert_victims_unchanged(root: Path, victims: dict[Path, tuple[bytes, int]]) -> None:
    assert sorted(p.name for p in (root / "victims").iterdir()) == sorted(
        p.name for p in victims
    ), "a file was created through a link"
    for path, (content, mode) in victims.items():
        assert path.read_bytes() == content
        assert path.stat().st_mode == mode


LINKS = [
    ("config file", CONFIG, "victim.txt"),
    ("config dir", CONFIG_DIR, ""),
    ("state dir", STATE_DIR, ""),
    ("store dir", STORE, ""),
    ("rollup.json", ROLLUP, "victim.txt"),
    ("journal.log", JOURNAL, "victim.txt"),
    ("segment", STORE / "segment-9.log", "victim.txt"),
    ("deletions.json", DELETIONS, "victim.txt"),
    ("compact.lock", STORE / "compact.lock", "victim.txt"),
    ("send.lock", STORE / "send.lock", "victim.txt"),
    ("config lock", CONFIG_DIR / ".telemetry.lock", "victim.txt"),
    ("a dangling link as rollup.json", ROLLUP, "missing.json"),
]


@pytest.mark.parametrize(
    ("what", "where", "target"), pick(LINKS, 2, seed=15), ids=lambda v: str(v)[:40]
)
def test_planted_symlink(
    fresh: Callable[[], Tool], what: str, where: Path, target: str, reliability: Reliability
) -> None:
    tool = fresh()
    victims = plant_victims(tool.home.parent)
    path = tool.home / where
    if what == "segment":
        os.rename(tool.home / JOURNAL, tool.home / STORE / "segment-8.log")
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.symlink_to(tool.home.parent / "victims" / target)
    assert_contract(tool)
    assert_status_quiet(tool)
    fill_journal(tool)
    run_unchanged(tool, *COMMAND)  # a run that folds
    tool.status()
    for args in (("telemetry", "disable"), ("telemetry", "enable"), ("telemetry", "reset")):
        result = tool.run(*args)
        assert "Traceback" not in result.stderr, result.stderr
    assert_victims_unchanged(tool.home.parent, victims)
    reliability.record(
        area=AREA,
        fault=f"symlink planted as the {what}, pointing outside",
        cases=1,
        outcome="tool unaffected; the link is never followed for writing: victim byte-identical, "
        "mode unchanged, nothing created through the link (checked after recording, folding, "
        "status, disable, enable, reset)",
        lost="records of the file the link replaced",
    )


def test_symlink_planted_as_the_temporary_file(
    fresh: Callable[[], Tool], reliability: Reliability
) -> None:
    """The temporary names hold the writer's pid: plant them from inside the child."""
    tool = fresh()
    victims = plant_victims(tool.home.parent)
    victim = tool.home.parent / "victims" / "victim.txt"
    fill_journal(tool)
    (tool.home / CONFIG).unlink()  # so that this run writes the config too

    def plant_for_me() -> None:
        pid = os.getpid()
        for folder, name in ((CONFIG_DIR, "telemetry.toml"), (STORE, "rollup.json")):
            os.symlink(victim, tool.home / folder / f".{name}.{pid}.tmp")

    for _ in range(2):
        result = subprocess.run(
            [sys.executable, str(tool.script), *COMMAND],
            env=tool.environment(DEBUG),
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=plant_for_me,
        )
        reference = bare(tool, *COMMAND)
        assert result.returncode == reference.returncode
        assert result.stdout == reference.stdout
        assert any(line.startswith(MARK) for line in result.stderr.splitlines())
        fill_journal(tool)
    assert_victims_unchanged(tool.home.parent, victims)
    assert_pending(tool, EVERYTHING)
    reliability.record(
        area=AREA,
        fault="symlink planted at the writer's own temporary file name (config and rollup)",
        cases=2,
        outcome="tool unaffected; the write is refused (O_NOFOLLOW), victim unchanged",
        lost="that run's record",
    )


# -- read-only folders (as root: capabilities dropped in the child) -------------------

OTHER_USER = 65534
_CAP_CHOWN, _CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER = 0, 1, 2, 3
_PR_CAPBSET_DROP = 24


def without_file_privileges() -> None:
    """preexec_fn: give up root's exemption from file modes (for this child and its exec)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (_CAP_CHOWN, _CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER):
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@dataclass
class ConfinedTool(Tool):
    """The tool run with a preexec_fn, and some variables removed from its environment."""

    preexec: Callable[[], None] | None = None
    unset: tuple[str, ...] = ()
    script_override: Path | None = None

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        environment = self.environment(env)
        for name in self.unset:
            environment.pop(name, None)
        script = self.script_override or self.script
        return subprocess.run(
            [sys.executable, str(script), *args],
            env=environment,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=next(folder for folder in (self.home, *self.home.parents) if folder.is_dir()),
            preexec_fn=self.preexec,
        )


def make_read_only(folder: Path) -> Iterator[Path]:
    """Folders and files below `folder` (and itself) still ours, with no write bits.

    Readable by the owner alone: a folder of ours that others may read is
    tightened to 0700 (writable again), and one of another user is refused
    before anything is read (test_other_users.py).
    """
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o500 if path.is_dir() else 0o400)
        yield path


def assert_write_refused(tool: ConfinedTool, folder: Path) -> None:
    probe = (
        "import sys\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        open(path, 'ab').close()\n"
        "    except PermissionError:\n"
        "        continue\n"
        "    sys.exit(f'could write {path}')\n"
    )
    targets = [str(folder / "probe")] + [str(p) for p in folder.rglob("*") if p.is_file()]
    result = subprocess.run(
        [sys.executable, "-c", probe, *targets],
        capture_output=True,
        text=True,
        preexec_fn=tool.preexec,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert not (folder / "probe").exists()


READ_ONLY = [("home", Path(".")), ("config dir", CONFIG_DIR), ("state dir", STATE_DIR)]


@pytest.mark.parametrize(("what", "where"), pick(READ_ONLY, 1, seed=16), ids=lambda v: str(v)[:40])
def test_read_only_folder(
    fresh: Callable[[], Tool], what: str, where: Path, reliability: Reliability
) -> None:
    base = fresh()
    tool = ConfinedTool(base.script, base.home, base.env, preexec=without_file_privileges)
    fill_journal(tool)
    before = {p: p.read_bytes() for p in tool.files()}
    list(make_read_only(tool.home / where))
    assert_write_refused(tool, tool.home / where)
    debug = assert_contract(tool)
    assert_status_quiet(tool)
    assert_pending(tool, EVERYTHING)  # read as the confined child
    if where != CONFIG_DIR:  # the config needs no write once the notice was shown
        assert any("could not" in line or "cannot" in line for line in debug), debug
    # The read-only files are untouched.
    for path in (tool.home / where).rglob("*"):
        if path in before:
            assert path.read_bytes() == before[path]
    reliability.record(
        area=AREA,
        fault=f"read-only {what} (mode 0500, files 0400; root's file capabilities dropped)",
        cases=1,
        outcome="tool unaffected; writes refused and explained under DEBUG; status shows the "
        "data recorded before",
        lost="the invocations run while it is read-only",
    )


# -- no home -------------------------------------------------------------------------


def test_home_points_to_a_missing_folder(tmp_path: Path, reliability: Reliability) -> None:
    missing = tmp_path / "gone" / "home"
    tool = ConfinedTool(
        OUTSIDE_TOOL, missing, {"TOOL_NOW": NOW}, unset=("XDG_CONFIG_HOME", "XDG_STATE_HOME")
    )
    assert_contract(tool)
    assert not missing.exists(), "telemetry created a home that did not exist"
    report = tool.status()
    assert report["pending"] == []
    reliability.record(
        area=AREA,
        fault="HOME points to a folder that does not exist (no XDG variables)",
        cases=1,
        outcome="tool unaffected; nothing recorded and no home folder created",
        lost="the invocations run without a home",
    )


@pytest.mark.parametrize("passwd", pick(["passwd home", "no passwd entry"], 1, seed=17))
def test_no_home_variable(tmp_path: Path, passwd: str, reliability: Reliability) -> None:
    """HOME and XDG unset: the account's passwd entry decides (faked, not to touch /root)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"TOOL_NOW": NOW}
    if passwd == "passwd home":
        env["FILES_PASSWD_HOME"] = str(home)
    tool = ConfinedTool(
        OUTSIDE_TOOL,
        home,
        env,
        unset=("HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"),
        script_override=TOOLS / "files_no_home.py",
    )
    assert_contract(tool)
    if passwd == "passwd home":
        assert tool.counts()[MIGRATE] == 2  # both instrumented runs
    else:
        assert tool.status()["pending"] == []
        assert not any(p.name == "~" for p in home.parent.rglob("*")), "a '~' folder was made"
    reliability.record(
        area=AREA,
        fault=f"HOME and XDG_* unset ({passwd})",
        cases=1,
        outcome="tool unaffected; "
        + (
            "the account's home from the passwd database is used"
            if passwd == "passwd home"
            else "no folder is made (no '~' in the working directory); nothing recorded"
        ),
        lost="nothing" if passwd == "passwd home" else "the invocations run without a home",
    )


# -- a full disk ---------------------------------------------------------------------


def file_size_limit(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def big_rollup(tool: Tool, keys: int = 130) -> None:
    """A real rollup written by the store, larger than the journal that will fold into it."""
    store = _store.RollupStore(tool.home / STORE, lambda message: None)
    for index in range(keys):
        observation = _recording.Observation.of_command(
            TODAY, f"command{index}", "success", "", (), 3.0
        )
        _recording.append(store.directory, observation, lambda message: None)
    assert store.fold(today=TODAY)
    assert (tool.home / ROLLUP).stat().st_size > _recording.FOLD_AT_BYTES + 4096


def test_full_disk(fresh: Callable[[], Tool], reliability: Reliability) -> None:
    limits: list[int | str] = (
        [0, 1, 64, 200, "journal-1", "between"] if FULL else [0, "journal-1", "between"]
    )
    tried = 0
    for limit in limits:
        base = fresh()
        if limit == "between":
            # The journal fits, the rollup rewritten by this run's fold does not.
            big_rollup(base)
            fill_journal(base)
            value = (base.home / JOURNAL).stat().st_size + 4096
        elif limit == "journal-1":
            value = (base.home / JOURNAL).stat().st_size + 40  # the new line is torn
        else:
            (base.home / CONFIG).unlink()  # the config must be written too
            value = int(limit)
        before = {p.name: p.read_bytes() for p in (base.home / STORE).iterdir() if p.is_file()}
        tool = ConfinedTool(base.script, base.home, base.env, preexec=file_size_limit(value))
        assert_contract(tool)
        tried += 1
        # Earlier data intact: the rollup is byte-identical or a complete, valid one.
        rollup = (tool.home / ROLLUP).read_bytes()
        assert rollup == before["rollup.json"]
        assert not list((tool.home / STORE).glob(".*.tmp"))
        counts = assert_pending(tool, EVERYTHING)  # status without the limit
        if limit == "between":
            assert counts[(TODAY, "command5", "success", "", ())] == 1
            assert counts[MIGRATE] >= 2
    reliability.record(
        area=AREA,
        fault="full disk (RLIMIT_FSIZE: 0, 1, 64, 200 bytes, a torn journal line, a rollup "
        "rewrite that does not fit)",
        cases=tried,
        outcome="tool unaffected; recording degrades silently (explained under DEBUG); the "
        "earlier rollup stays byte-identical, no temporary file left; a fold that cannot "
        "write keeps its segment for the next run",
        lost="the invocations that did not fit (a torn journal line is dropped at folding)",
    )


# -- locks held by a stuck process ---------------------------------------------------

HOLD = (
    "import fcntl, os, sys\n"
    "descriptor = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
    "fcntl.flock(descriptor, fcntl.LOCK_EX)\n"
    "print('locked', flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.fixture
def stuck() -> Iterator[Callable[[Path], None]]:
    holders: list[subprocess.Popen[str]] = []

    def hold(path: Path) -> None:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        holders.append(holder)
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"

    yield hold
    for holder in holders:
        holder.kill()
        holder.wait()


LOCKS = [
    ("compact.lock", STORE / "compact.lock"),
    ("send.lock", STORE / "send.lock"),
    ("config lock", CONFIG_DIR / ".telemetry.lock"),
    ("journal.log", JOURNAL),
    ("segment", STORE / "segment-2.log"),
]


@pytest.mark.parametrize(("what", "where"), pick(LOCKS, 2, seed=18), ids=lambda v: str(v)[:40])
def test_lock_held_forever_by_a_stuck_process(
    fresh: Callable[[], Tool],
    stuck: Callable[[Path], None],
    what: str,
    where: Path,
    reliability: Reliability,
) -> None:
    tool = fresh()
    if what == "segment":
        os.rename(tool.home / JOURNAL, tool.home / where)
    if what == "config lock":
        (tool.home / CONFIG).unlink()  # this run must write the config
    stuck(tool.home / where)
    fill_journal(tool)  # this run folds too
    assert_contract(tool)
    assert_status_quiet(tool)
    counts = assert_pending(tool, IN_ROLLUP)
    if what not in ("config lock",):
        assert counts.get(MIGRATE, 0) >= 2, "the runs under the stuck lock were not recorded"
    reliability.record(
        area=AREA,
        fault=f"{what} held (flock) forever by a stuck process",
        cases=1,
        outcome="tool finishes promptly (under 10 s, the lock waits are bounded), exit code "
        "unchanged; "
        + (
            "nothing recorded while the config cannot be written"
            if what == "config lock"
            else "records still go to the journal"
        ),
        lost="the invocations run while it is held" if what == "config lock" else "nothing",
    )


def test_full_journal_with_folding_stuck_counts_the_drops(
    fresh: Callable[[], Tool], stuck: Callable[[Path], None], reliability: Reliability
) -> None:
    tool = fresh()
    fill_journal(tool, _recording.MAX_JOURNAL_BYTES - 20)
    stuck(tool.home / STORE / "compact.lock")
    runs = cases(2, 5)
    for index in range(runs):
        debug = assert_contract(tool) if index == 0 else run_unchanged(tool, *COMMAND)
        assert any("dropped" in line for line in debug), debug
    report = tool.status()  # still locked: status reads without folding
    dropped = report["dropped"]
    assert isinstance(dropped, dict)
    # Every instrumented run was dropped: two in assert_contract, one each after.
    assert dropped == {TODAY: runs + 1}
    reliability.record(
        area=AREA,
        fault="journal full (1 MiB) while a stuck process holds the folding lock",
        cases=runs,
        outcome="tool unaffected; each record that cannot be stored is counted in `dropped` "
        "(status --json) and explained under DEBUG",
        lost="those records (counted as dropped, as TELEMETRY.md documents)",
    )


# -- an upgrade: a store written by the previous version -----------------------------

UPGRADED_DAYS = ("2026-03-07", "2026-03-08", "2026-03-09")
NOTED_KEY = "0123456789abcdef" * 2  # the key the previous version noted its batch under


def version_1_record(
    day: str, command: str, outcome: str, error_class: str, flags: list[str], durations: list[float]
) -> dict[str, object]:
    """A rollup record as version 1 wrote it: command and flags at the top, no event."""
    from typer_telemetry._schema import DURATION_BUCKET_COUNT, bucket_index

    buckets = [0] * DURATION_BUCKET_COUNT
    for duration in durations:
        buckets[bucket_index(duration)] += 1
    return {
        "day": day,
        "command": command,
        "outcome": outcome,
        "error_class": error_class,
        "flags": flags,
        "count": len(durations),
        "duration_ms_sum": sum(durations),
        "duration_ms_min": min(durations),
        "duration_ms_max": max(durations),
        "duration_ms_buckets": buckets,
    }


def version_1_journal_line(day: str, command: str, flags: list[str], duration_ms: float) -> bytes:
    values = {
        "day": day,
        "command": command,
        "outcome": "success",
        "error_class": "",
        "flags": flags,
        "duration_ms": duration_ms,
    }
    return b"\n" + json.dumps(values, separators=(",", ":")).encode()


def test_an_upgrade_folds_a_version_1_store_into_version_2_and_sends_nothing_twice(
    home: Path, reliability: Reliability
) -> None:
    """rollup.json of version 1 (`merged_through`), version-1 journal lines and a batch noted
    in flight by version 1: every count survives, the noted batch goes out again under its key."""
    from typer_telemetry._records import upgrade_version_1

    tool = Tool(OUTSIDE_TOOL, home, env={"TOOL_NOW": NOW})
    first = tool.run("hello", "today")  # makes the config, the id and the store folder
    assert first.returncode == 0, first.stderr
    day_0, day_1, day_2 = UPGRADED_DAYS
    in_flight = version_1_record(day_0, "hello", "success", "", [], [3.0, 4.0, 250.0, 9000.0])
    rollup_records = [
        in_flight,  # counted in the records too, as version 1 kept a noted batch
        version_1_record(day_1, "db migrate", "success", "", ["--force"], [10.0, 20.0, 30.0]),
        version_1_record(day_1, "fail", "error", "RuntimeError", [], [1.5, 2.5]),
    ]
    previous = json.loads((home / ROLLUP).read_bytes()) if (home / ROLLUP).exists() else {}
    merged_through = int(previous.get("folded_through", 0))
    (home / ROLLUP).write_text(
        json.dumps(
            {
                "format": "typer-telemetry-rollup",
                "version": 1,
                "merged_through": merged_through,
                "records": rollup_records,
                "dropped": {day_1: 2},
                "in_flight": {"day": day_0, "idempotency_key": NOTED_KEY, "records": [in_flight]},
            }
        )
    )
    with open(home / JOURNAL, "ab") as journal:
        journal.write(version_1_journal_line(day_1, "db migrate", ["--force"], 40.0))
        journal.write(version_1_journal_line(day_2, "db migrate", ["--force"], 50.0))
        journal.write(version_1_journal_line(day_2, "hello", [], 60.0))
    expected = {
        (day_0, "hello", "success", "", ()): 4,
        (day_1, "db migrate", "success", "", ("--force",)): 4,
        (day_1, "fail", "error", "RuntimeError", ()): 2,
        (day_2, "db migrate", "success", "", ("--force",)): 1,
        (day_2, "hello", "success", "", ()): 1,
        (TODAY, "hello", "success", "", ()): 1,
    }

    # Folded (status folds first) into a version-2 file with every count exact.
    assert tool.counts() == expected
    rewritten = json.loads((home / ROLLUP).read_bytes())
    assert (rewritten["version"], "merged_through" in rewritten) == (2, False)
    assert rewritten["folded_through"] >= merged_through
    assert rewritten["dropped"] == {day_1: 2}
    assert rewritten["in_flight"] == {
        "day": day_0,
        "idempotency_key": NOTED_KEY,
        "records": [upgrade_version_1(in_flight)],
    }

    # Sent (`telemetry.flush()`, as a server would): the noted batch again under its noted
    # key, exactly as it was; every other completed day once, under a key of its own.
    with Receiver() as receiver:
        sender = Tool(TOOLS / "life_tool.py", home, env={"TOOL_NOW": NOW})
        result = sender.run("--flush", env={"OUTSIDE_TOOL_TELEMETRY_ENDPOINT": receiver.url("/v1")})
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert (report["error"], report["days_sent"]) == (None, list(UPGRADED_DAYS))
        batches = [request for request in receiver if request.path.endswith("/batches")]
    assert len(batches) == len(UPGRADED_DAYS)
    by_day = {request.json()["day"]: request for request in batches}
    assert sorted(by_day) == list(UPGRADED_DAYS)  # each day once
    noted = by_day[day_0]
    assert noted.headers["idempotency-key"] == NOTED_KEY
    assert noted.json()["records"] == [upgrade_version_1(in_flight)]
    keys = {request.headers["idempotency-key"] for request in batches}
    assert len(keys) == len(UPGRADED_DAYS)
    delivered: dict[RecordKey, int] = {}
    for request in batches:
        document = request.json()
        assert document["version"] == 2
        for record in document["records"]:
            properties = record["properties"]
            key = (
                record["day"],
                properties["command"],
                record["outcome"],
                record["error_class"],
                tuple(properties["flags"]),
            )
            assert key not in delivered, key  # no record twice
            delivered[key] = record["count"]
    assert delivered == {key: count for key, count in expected.items() if key[0] != TODAY}
    # Nothing of the sent days is left to send again; today's records wait for their day.
    assert {key[0] for key in tool.counts()} == {TODAY}
    assert "in_flight" not in json.loads((home / ROLLUP).read_bytes())
    reliability.record(
        area=AREA,
        fault="an upgrade: rollup.json of version 1 (`merged_through`), version-1 journal "
        "lines and a batch noted in flight by version 1",
        cases=1,
        outcome="folded into a version-2 rollup with every count, duration and drop exact; "
        "the noted batch sent again under its noted key exactly as it was, each other "
        "completed day sent once; nothing sent twice",
    )
