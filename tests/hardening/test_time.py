"""The clock: jumps back and forth across days, far future and past, timezone changes.

The rules under test: a record lands on the UTC day the clock said; a day is
sent only once the clock is past it; nothing is sent twice; days more than
30 days ahead of the clock (a clock once set to 2100) are dropped and counted,
not kept forever; a clock before 2000 or beyond the platform's dates records
nothing and deletes nothing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Tool, in_process_telemetry
from tests.hardening.conftest import FULL, assert_unchanged_by_telemetry, cases
from tests.receiver import Receiver
from typer_telemetry._checks import SchemaError
from typer_telemetry._recording import record_command

DAY = 86400
DAY_1 = 1773144000  # 2026-03-10 12:00 UTC
EXTREME_CLOCKS = {
    "2100-01-01": 4102444800,
    "the epoch": 0,
    "1e20 (beyond time_t)": 10**20,
    "9999-12-31": 253402214400,
    "year 10000": 253402300800,
    "1969-12-31 (negative)": -DAY,
}


def utc_day(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def day_counts(records: list[dict[str, object]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for record in records:
        day = str(record["day"])
        totals[day] = totals.get(day, 0) + int(record["count"])  # type: ignore[call-overload]
    return totals


def test_clock_jumps_during_a_long_run_send_each_completed_day_once(
    home: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, reliability: object
) -> None:
    """In-process: the clock jumps between records and flushes, as in a server."""
    telemetry = in_process_telemetry(monkeypatch, home, "time-tool", receiver.url("/v1"))
    rng = random.Random(20260310)
    steps = cases(40, 400)
    recorded: dict[str, int] = {}
    flushes = 0
    for _ in range(steps):
        now = DAY_1 + rng.randrange(-3 * DAY, 4 * DAY)
        telemetry.settings = telemetry.settings.replace(clock=lambda now=now: float(now))
        if rng.random() < 0.7:
            record_command(telemetry.settings, "sync", "success", "", (), 10.0)
            recorded[utc_day(now)] = recorded.get(utc_day(now), 0) + 1
        else:
            flushes += 1
            report = telemetry.flush(timeout=10)
            assert report.error is None, report
            # Gating: only days the clock is past.
            assert all(day < utc_day(now) for day in report.days_sent), (report, now)
            assert all(
                record["day"] == utc_day(now) or record["day"] >= utc_day(now)
                for record in telemetry.status()["pending"]  # type: ignore[attr-defined]
            )
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_1 + 5 * DAY))
    assert telemetry.flush(timeout=10).error is None
    assert telemetry.status()["pending"] == []
    sent = [request.json() for request in receiver]
    # Every invocation counted once on the day its clock said: nothing lost, nothing doubled.
    assert day_counts([r for batch in sent for r in batch["records"]]) == recorded
    keys = [batch["idempotency_key"] for batch in sent]
    assert len(keys) == len(set(keys))
    reliability.record(  # type: ignore[attr-defined]
        area="Time",
        fault="clock jumping back and forth over 7 days within one process (flush)",
        cases=steps,
        outcome=f"{sum(recorded.values())} records over {len(recorded)} days, {flushes} "
        "flushes: each day sent only once the clock was past it; every count exactly once",
    )


def test_clock_and_timezone_jumping_between_runs(
    tool: Tool, receiver: Receiver, reliability: object
) -> None:
    """Real processes: TOOL_NOW and TZ differ from run to run; days stay UTC."""
    endpoint = receiver.url("/v1")
    rng = random.Random(7)
    zones = ["UTC", "Pacific/Kiritimati", "America/Adak", "Asia/Kolkata", "Europe/Paris"]
    runs = cases(2, 16)
    expected: dict[str, int] = {}
    for index in range(runs):
        # Late in the UTC day, so that most zones are already on the next local day.
        now = DAY_1 + rng.randrange(-2, 3) * DAY + 11 * 3600
        env = {
            "TOOL_NOW": str(now),
            "TZ": zones[index % len(zones)],
            "OUTSIDE_TOOL_TELEMETRY_ENDPOINT": endpoint,
        }
        result = assert_unchanged_by_telemetry(tool, "hello", "x", env=env)
        assert result.returncode == 0
        expected[utc_day(now)] = expected.get(utc_day(now), 0) + 1
    later = {"TOOL_NOW": str(DAY_1 + 3 * DAY), "TZ": "Pacific/Kiritimati"}
    assert (
        day_counts(tool.pending({**later, "OUTSIDE_TOOL_TELEMETRY_ENDPOINT": endpoint})) == expected
    )
    assert list(receiver) == []  # short runs never send

    # A long-running run at a later clock, in yet another zone, sends each day once.
    env = {
        **later,
        "TZ": "America/Adak",
        "OUTSIDE_TOOL_TELEMETRY_ENDPOINT": endpoint,
        "TOOL_LONG_RUNNING_AFTER": "0.05",
    }
    process = tool.popen("wait", "--until-stdin-closes", env=env)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    deadline = time.monotonic() + 30
    while set(day_counts(tool.pending(env))) - {utc_day(DAY_1 + 3 * DAY)}:
        assert time.monotonic() < deadline
    process.communicate(input="", timeout=30)
    assert process.returncode == 0
    sent = [request.json() for request in receiver]
    assert day_counts([r for batch in sent for r in batch["records"]]) == expected

    # A normal run at the real date: its record lands on today's UTC day.
    real = {"OUTSIDE_TOOL_TELEMETRY_ENDPOINT": endpoint, "TZ": "Pacific/Kiritimati"}
    before = utc_day(time.time())
    assert_unchanged_by_telemetry(tool, "hello", "x", env=real)
    assert (
        day_counts(tool.pending(real)).get(before, 0)
        + day_counts(tool.pending(real)).get(utc_day(time.time()), 0)
        >= 1
    )
    reliability.record(  # type: ignore[attr-defined]
        area="Time",
        fault="clock (over 5 days) and TZ (5 zones, UTC-10 to UTC+14) changing between runs",
        cases=runs,
        outcome="exit and stdout unchanged; each record on the UTC day of its clock; "
        "sent once by a long-running run in another zone; then a run at the real date",
    )


def test_clocks_far_in_the_future_and_before_2000(
    tool: Tool, receiver: Receiver, reliability: object
) -> None:
    endpoint = receiver.url("/v1")
    extreme = list(EXTREME_CLOCKS.items())[: cases(2, len(EXTREME_CLOCKS))]
    # Something real pending first: no extreme clock may delete it.
    tool.run(
        "hello", "x", env={"TOOL_NOW": str(DAY_1), "OUTSIDE_TOOL_TELEMETRY_ENDPOINT": endpoint}
    )
    for _name, now in extreme:
        env = {
            "TOOL_NOW": str(now),
            "OUTSIDE_TOOL_TELEMETRY_ENDPOINT": endpoint,
            "TOOL_LONG_RUNNING_AFTER": "0.05",
        }
        assert_unchanged_by_telemetry(tool, "hello", "x", env=env)
        if FULL:  # a long-running run too: the sender meets the clock
            result = tool.run("wait", "--seconds", "0.3", env=env)
            assert (result.returncode, result.stdout) == (0, "ready\nwaited\n")
        status = tool.status(env)  # never crashes, whatever the clock
        assert isinstance(status["pending"], list)
    # Back at day 1: day 1's own record was pruned by the 2100 clock (older
    # than 30 days by that clock: the retention), and what the 2100 and 9999
    # clocks recorded is dropped as far in the future and counted.
    status = tool.status({"TOOL_NOW": str(DAY_1)})
    assert status["pending"] == []
    assert list(status["dropped"]) == ["2026-03-10"]  # type: ignore[call-overload]
    assert sum(status["dropped"].values()) >= 1  # type: ignore[union-attr]
    # And at the real date nothing of it is pending either.
    real = {"OUTSIDE_TOOL_TELEMETRY_ENDPOINT": endpoint}
    assert tool.status(real)["pending"] == []
    assert list(receiver) == []  # nothing was ever completed by a sane clock
    reliability.record(  # type: ignore[attr-defined]
        area="Time",
        fault="clock at 2100, 9999-12-31, year 10000, 1970, 1969 (negative), 1e20 s",
        cases=len(extreme),
        outcome="exit and stdout unchanged, status works; no day for the out-of-schema "
        "clocks; future days dropped (counted) once the clock is back; nothing sent",
        lost="days older than 30 days by the 2100 clock (the retention, by that clock)",
    )


def test_a_clock_reset_to_1970_deletes_nothing_and_sends_nothing(
    home: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, reliability: object
) -> None:
    telemetry = in_process_telemetry(monkeypatch, home, "time-tool", receiver.url("/v1"), now=DAY_1)
    record_command(telemetry.settings, "sync", "success", "", (), 10.0)
    clocks = [0.0, -1.0, 946684799.0, float(10**20), float("nan"), float("inf")]
    for now in clocks[: cases(3, len(clocks))]:
        telemetry.settings = telemetry.settings.replace(clock=lambda now=now: now)
        with pytest.raises(SchemaError):  # no day for it: nothing recorded (the hook swallows it)
            record_command(telemetry.settings, "sync", "success", "", (), 10.0)
        report = telemetry.flush(timeout=5)
        assert report.days_sent == (), report
        assert report.error is None, report
        assert day_counts(telemetry.status()["pending"]) == {"2026-03-10": 1}  # type: ignore[arg-type]
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_1 + DAY))
    assert telemetry.flush(timeout=5).days_sent == ("2026-03-10",)
    assert len(receiver.requests) == 1
    reliability.record(  # type: ignore[attr-defined]
        area="Time",
        fault="clock before 2000 or not a date (1970, -1, 1999-12-31T23:59:59, 1e20, NaN, inf)",
        cases=len(clocks[: cases(3, len(clocks))]),
        outcome="nothing recorded, pruned or sent while it lasts; pending day sent once "
        "the clock is right",
    )


def test_days_ahead_of_the_clock_are_kept_within_30_days_then_dropped(
    home: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, reliability: object
) -> None:
    telemetry = in_process_telemetry(monkeypatch, home, "time-tool", receiver.url("/v1"))
    for ahead in (1, 30, 31, 365):
        telemetry.settings = telemetry.settings.replace(
            clock=lambda ahead=ahead: float(DAY_1 + ahead * DAY)
        )
        record_command(telemetry.settings, "sync", "success", "", (), 10.0)
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_1))
    status = telemetry.status()
    assert sorted(day_counts(status["pending"])) == ["2026-03-11", "2026-04-09"]  # type: ignore[arg-type]
    assert status["dropped"] == {"2026-03-10": 2}
    # Kept days are sent when, and only when, the clock is past them.
    assert telemetry.flush(timeout=5).days_sent == ()
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_1 + 2 * DAY))
    assert telemetry.flush(timeout=5).days_sent == ("2026-03-11",)
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_1 + 31 * DAY))
    assert telemetry.flush(timeout=5).days_sent == ("2026-04-09",)
    assert len(receiver.requests) == 2

    # The last day of the calendar does not overflow the window.
    telemetry.settings = telemetry.settings.replace(
        clock=lambda: float(EXTREME_CLOCKS["9999-12-31"])
    )
    record_command(telemetry.settings, "sync", "success", "", (), 10.0)
    assert day_counts(telemetry.status()["pending"]) == {"9999-12-31": 1}  # type: ignore[arg-type]
    assert telemetry.flush(timeout=5).days_sent == ()
    reliability.record(  # type: ignore[attr-defined]
        area="Time",
        fault="records dated 1, 30, 31 and 365 days ahead of the clock",
        cases=4,
        outcome="up to 30 days ahead kept and sent once the clock is past them; "
        "further ahead dropped and counted in `dropped`",
        lost="records dated more than 30 days ahead of the clock (documented)",
    )


def test_an_impossible_date_in_the_journal_is_dropped(
    home: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    telemetry = in_process_telemetry(monkeypatch, home, "time-tool", receiver.url("/v1"), now=DAY_1)
    record_command(telemetry.settings, "sync", "success", "", (), 10.0)
    journal = telemetry.settings.paths().store_dir / "journal.log"
    with open(journal, "ab") as handle:
        for day in ("2026-02-29", "2026-02-31", "2026-04-31", "2100-02-29"):
            handle.write(
                f'\n{{"day":"{day}","command":"sync","outcome":"success","error_class":"",'
                f'"flags":[],"duration_ms":1.0}}'.encode()
            )
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_1 + DAY))
    assert day_counts(telemetry.status()["pending"]) == {"2026-03-10": 1}  # type: ignore[arg-type]
    assert telemetry.flush(timeout=5).days_sent == ("2026-03-10",)
