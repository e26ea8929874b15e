"""The per-day rollup store: aggregation, folding, bounds, corruption, kill -9, concurrency."""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path

import pytest

from tests.conftest import Tool, append_event, run_burst
from typer_telemetry import _recording, _store
from typer_telemetry._recording import Observation
from typer_telemetry._records import Record
from typer_telemetry._schema import DURATION_BUCKET_COUNT, check_record
from typer_telemetry._store import RollupStore

DAY = "2026-03-10"


def observation(
    command: str = "db migrate", day: str = DAY, ms: float = 12.5, **fields: object
) -> Observation:
    values: dict[str, object] = {
        "day": day,
        "command": command,
        "outcome": "success",
        "error_class": "",
        "flags": (),
        "duration_ms": ms,
    }
    values.update(fields)
    return Observation.of_command(**values)  # type: ignore[arg-type]


def debug_lines() -> tuple[list[str], RollupStore]:
    lines: list[str] = []
    return lines, RollupStore(Path("."), lines.append)


@pytest.fixture
def store(tmp_path: Path) -> RollupStore:
    return RollupStore(tmp_path / "store", lambda message: None)


def test_records_aggregate_per_day_command_outcome_error_and_flags(store: RollupStore) -> None:
    append_event(store, observation(ms=3))
    append_event(store, observation(ms=30))
    append_event(store, observation(ms=3000, flags=("--force",)))
    append_event(store, observation(outcome="error", error_class="ValueError", ms=1))
    append_event(store, observation(day="2026-03-11", ms=7))
    records = store.pending(today="2026-03-11")
    assert [(r.day, r.event, r.outcome, r.property("flags"), r.count) for r in records] == [
        # sorted by day, event, properties, outcome, error class
        (DAY, "command", "success", ("--force",), 1),
        (DAY, "command", "error", (), 1),
        (DAY, "command", "success", (), 2),
        ("2026-03-11", "command", "success", (), 1),
    ]
    two = records[2]
    assert (two.duration_ms_sum, two.duration_ms_min, two.duration_ms_max) == (33, 3, 30)
    buckets = two.duration_ms_buckets
    assert isinstance(buckets, tuple)
    assert len(buckets) == DURATION_BUCKET_COUNT
    assert buckets[0] == 1
    assert buckets[3] == 1
    for record in records:
        check_record(record.to_json())


def test_folding_keeps_counts_and_empties_the_journal(store: RollupStore) -> None:
    for _ in range(500):
        append_event(store, observation())
    assert store.fold(today=DAY)
    assert not store.journal_path.exists()
    assert [r.count for r in store.pending(today=DAY)] == [500]
    assert sorted(p.name for p in store.directory.iterdir()) == ["compact.lock", "rollup.json"]


def test_store_for_100000_invocations_of_10_commands_stays_under_64_kib(store: RollupStore) -> None:
    commands = [f"command{index}" for index in range(10)]
    for index in range(100_000):
        append_event(store, observation(command=commands[index % 10], ms=index % 977))
    size = sum(path.stat().st_size for path in store.directory.iterdir())
    assert size <= 64 * 1024
    assert sum(r.count for r in store.pending(today=DAY)) == 100_000


def test_days_older_than_the_retention_are_dropped(store: RollupStore) -> None:
    append_event(store, observation(day="2026-01-01"))
    append_event(store, observation(day="2026-01-20"))
    assert [r.day for r in store.pending(today="2026-02-05")] == ["2026-01-20"]


def test_keys_beyond_the_daily_cap_are_counted_as_dropped(store: RollupStore) -> None:
    for index in range(_store.MAX_KEYS_PER_DAY + 5):
        append_event(store, observation(command=f"c{index}"))
    append_event(store, observation(command="c0"))  # an existing key still counts
    records = store.pending(today=DAY)
    assert len(records) == _store.MAX_KEYS_PER_DAY
    assert sum(r.count for r in records) == _store.MAX_KEYS_PER_DAY + 1
    assert store.dropped() == {DAY: 5}


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\xff garbage", b"{}", b"[1,2]", b'{"format":"other"}', b"{" * 10_000],
    ids=["empty", "binary", "empty-object", "list", "foreign", "deep"],
)
def test_an_unusable_rollup_file_is_set_aside_and_recording_goes_on(
    store: RollupStore, content: bytes
) -> None:
    store.directory.mkdir(parents=True)
    store.rollup_path.write_bytes(content)
    append_event(store, observation())
    assert [r.count for r in store.pending(today=DAY)] == [1]
    aside = [
        p.name for p in store.directory.iterdir() if p.name.startswith("rollup.json.unusable-")
    ]
    assert len(aside) == 1


def test_journal_lines_outside_the_schema_are_dropped(store: RollupStore) -> None:
    append_event(store, observation())
    with open(store.journal_path, "ab") as journal:
        journal.write(
            b'\n{"day":"2026-03-10","command":"x","outcome":"success","error_class":"",'
            b'"flags":[],"duration_ms":1,"secret":"leak"}'
        )
        journal.write(b'\n{"day":"2026-03-10","command":"has \\"quote","outcome":"success"}')
        journal.write(
            b'\n{"day":"2026-03-10","event":"command","properties":{"command":"x","flags":[],'
            b'"secret":"leak"},"outcome":"success","error_class":"","duration_ms":1}'
        )
        journal.write(
            b'\n{"day":"2026-03-10","event":"command","properties":{"command":"x","flags":[]},'
            b'"outcome":"success","error_class":"","duration_ms":1,"secret":"leak"}'
        )
        journal.write(b"\nnot json at all")
        journal.write(
            b'\n{"day":"2026-03-10","command":"db migrate","outcome":"succe'
        )  # torn write
    append_event(store, observation())
    records = store.pending(today=DAY)
    assert [(r.property("command"), r.count) for r in records] == [("db migrate", 2)]
    assert b"secret" not in store.rollup_path.read_bytes()


def test_a_segment_left_by_a_crash_after_folding_is_not_counted_twice(store: RollupStore) -> None:
    for _ in range(3):
        append_event(store, observation())
    store.fold(today=DAY)
    document = json.loads(store.rollup_path.read_bytes())
    # As if the folding process died after writing the rollup, before deleting the segment:
    leftover = store.directory / f"segment-{document['folded_through']}.log"
    leftover.write_bytes(observation().journal_line() * 3)
    assert [r.count for r in store.pending(today=DAY)] == [3]
    assert not leftover.exists()


def test_a_segment_left_by_a_crash_before_folding_is_folded_once(store: RollupStore) -> None:
    append_event(store, observation())
    store.fold(today=DAY)
    append_event(store, observation())
    # As if a folder renamed the journal and died before folding it:
    os.rename(store.journal_path, store.directory / "segment-7.log")
    append_event(store, observation())
    assert [r.count for r in store.pending(today=DAY)] == [3]
    assert [r.count for r in store.pending(today=DAY)] == [3]


def test_a_full_journal_is_folded_rather_than_refusing_records(store: RollupStore) -> None:
    store.directory.mkdir(parents=True)
    line = observation().journal_line()
    count = _recording.MAX_JOURNAL_BYTES // len(line)
    store.journal_path.write_bytes(line * count)  # as if other processes outran folding
    append_event(store, observation())
    assert [r.count for r in store.pending(today=DAY)] == [count + 1]


def test_a_temporary_file_left_by_a_killed_writer_is_cleaned_up(store: RollupStore) -> None:
    append_event(store, observation())
    leftover = store.directory / ".rollup.json.12345.tmp"
    leftover.write_bytes(b'{"half": ')
    store.fold(today=DAY)
    assert not leftover.exists()
    assert [r.count for r in store.pending(today=DAY)] == [1]


def test_files_are_private(store: RollupStore) -> None:
    append_event(store, observation())
    store.fold(today=DAY)
    assert store.directory.stat().st_mode & 0o777 == 0o700
    for path in store.directory.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path


def test_a_symlink_in_place_of_the_journal_is_not_followed(
    store: RollupStore, tmp_path: Path
) -> None:
    store.directory.mkdir(parents=True)
    target = tmp_path / "elsewhere.txt"
    target.write_text("untouched")
    store.journal_path.symlink_to(target)
    with pytest.raises(OSError):
        append_event(store, observation())
    assert target.read_text() == "untouched"


def test_clear_deletes_everything_pending(store: RollupStore) -> None:
    for _ in range(3):
        append_event(store, observation())
    store.fold(today=DAY)
    append_event(store, observation())
    store.clear()
    assert store.pending(today=DAY) == []
    assert [p.name for p in store.directory.iterdir()] == ["compact.lock"]


@pytest.mark.slow
def test_eight_processes_recording_at_once_lose_and_duplicate_nothing(tool: Tool) -> None:
    env = {"TOOL_NOW": "1773144000", "BURST_COMPACT_AT": "2048"}  # 2026-03-10, fold often
    processes = [run_burst(tool.home, 50, env) for _ in range(8)]
    notices = 0
    for process in processes:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()
        assert stdout == b"." * 50
        notices += stderr.count(b"collects anonymous usage data")
    assert tool.counts(env) == {("2026-03-10", "hello", "success", "", ("--count",)): 400}
    # Eight simultaneous first runs agree on one install id and show one notice.
    assert notices == 1
    assert tool.status(env)["install_id"]


@pytest.mark.slow
def test_kill_9_while_recording_never_corrupts_earlier_days(tool: Tool) -> None:
    earlier = {"TOOL_NOW": "1773144000", "BURST_COMPACT_AT": "1024"}  # 2026-03-10
    later = {"TOOL_NOW": "1773230400", "BURST_COMPACT_AT": "1024"}  # 2026-03-11
    finished = run_burst(tool.home, 60, earlier)
    finished.communicate(timeout=120)
    assert finished.returncode == 0
    key_earlier = ("2026-03-10", "hello", "success", "", ("--count",))
    key_later = ("2026-03-11", "hello", "success", "", ("--count",))
    assert tool.counts(earlier) == {key_earlier: 60}

    chance = random.Random(20261124)
    recorded_before = 0
    for _trial in range(12):
        process = run_burst(tool.home, 100_000, later)
        assert process.stdout is not None
        # Let a random number of invocations be acknowledged, then kill -9.
        acknowledged = len(process.stdout.read(chance.randint(1, 40)))
        process.send_signal(signal.SIGKILL)
        acknowledged += len(process.stdout.read())
        process.wait(timeout=30)
        counts = tool.counts(later)
        assert counts[key_earlier] == 60
        # The killed process may have recorded one invocation it did not acknowledge.
        assert (
            recorded_before + acknowledged
            <= counts[key_later]
            <= recorded_before + acknowledged + 1
        )
        recorded_before = counts[key_later]


def test_a_version_1_rollup_file_is_read_as_command_events_and_rewritten_as_version_2(
    store: RollupStore,
) -> None:
    store.directory.mkdir(parents=True, mode=0o700)
    version_1 = {
        "format": "typer-telemetry-rollup",
        "version": 1,
        "merged_through": 4,
        "records": [
            {
                "day": DAY,
                "command": "db migrate",
                "outcome": "success",
                "error_class": "",
                "flags": ["--force"],
                "count": 2,
                "duration_ms_sum": 25.0,
                "duration_ms_min": 12.5,
                "duration_ms_max": 12.5,
                "duration_ms_buckets": [0, 0, 2] + [0] * 13,
            }
        ],
    }
    store.rollup_path.write_text(json.dumps(version_1))
    os.chmod(store.rollup_path, 0o600)
    # A journal line of version 1 too, as a run of the older library left it.
    store.journal_path.write_bytes(
        b'\n{"day":"2026-03-10","command":"db migrate","outcome":"success",'
        b'"error_class":"","flags":["--force"],"duration_ms":12.5}'
    )
    os.chmod(store.journal_path, 0o600)
    append_event(store, observation(flags=("--force",)))  # the same key, written as version 2

    [record] = store.pending(today=DAY)
    assert (record.event, record.property("command"), record.property("flags")) == (
        "command",
        "db migrate",
        ("--force",),
    )
    assert record.count == 4
    assert store.fold(today=DAY)
    document = json.loads(store.rollup_path.read_bytes())
    assert (document["version"], document["folded_through"]) == (2, 5)
    assert "merged_through" not in document
    assert [Record.from_json(r) for r in document["records"]] == [record]
    assert document["records"][0]["properties"] == {"command": "db migrate", "flags": ["--force"]}
