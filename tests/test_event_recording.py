"""The tool's own events, as an author declares, records and times them (in process, real files)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import in_process_telemetry
from typer_telemetry import Bucket, Choice, Flag, Telemetry
from typer_telemetry._paths import DROPPED_NAME, JOURNAL_NAME

NOW = 1_780_000_000.0  # 2026-05-28


@pytest.fixture
def telemetry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Telemetry:
    return in_process_telemetry(monkeypatch, tmp_path, "events-tool", None, now=NOW)


def journal(telemetry: Telemetry) -> list[dict[str, Any]]:
    path = telemetry.settings.paths().store_dir / JOURNAL_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def dropped_lines(telemetry: Telemetry) -> int:
    path = telemetry.settings.paths().store_dir / DROPPED_NAME
    return len([line for line in path.read_text().splitlines() if line]) if path.exists() else 0


def started(telemetry: Telemetry) -> None:
    """A first recorded event: the install id exists, so that drops are counted."""
    telemetry.event("started").record()


def test_a_recorded_event_keeps_only_its_declared_fields_resolved(telemetry: Telemetry) -> None:
    ingest = telemetry.event(
        "ingest_completed",
        driver=Choice("postgres", "sqlite"),
        table_count=Bucket(10, 100, 1000),
        demo=Flag(),
    )
    ingest.record(driver="oracle", table_count=412, demo=False, duration_ms=812.0)
    [line] = journal(telemetry)
    assert line == {
        "day": "2026-05-28",
        "event": "ingest_completed",
        "properties": {"demo": False, "driver": "other", "table_count": "100-1000"},
        "outcome": "success",
        "error_class": "",
        "duration_ms": 812.0,
    }


def test_timed_records_the_duration_and_the_exception_class_and_lets_it_through(
    telemetry: Telemetry,
) -> None:
    load = telemetry.event("load", kind=Choice("csv", "json"))
    with load.timed(kind="csv") as timing:
        timing.set(kind="json")
    with pytest.raises(KeyError), load.timed(kind="csv"):
        raise KeyError("secret-file-name.csv")
    first, second = journal(telemetry)
    assert (first["properties"], first["outcome"], first["error_class"]) == (
        {"kind": "json"},
        "success",
        "",
    )
    assert first["duration_ms"] >= 0
    assert (second["outcome"], second["error_class"]) == ("error", "KeyError")
    assert "secret" not in json.dumps(journal(telemetry))


def test_ctrl_c_in_a_timed_block_is_aborted(telemetry: Telemetry) -> None:
    step = telemetry.event("setup_step", step=Choice("connect", "ingest"))
    with pytest.raises(KeyboardInterrupt), step.timed(step="connect"):
        raise KeyboardInterrupt
    assert journal(telemetry)[0]["outcome"] == "aborted"


def test_a_wrong_type_is_dropped_and_counted_for_the_user(telemetry: Telemetry) -> None:
    started(telemetry)
    ingest = telemetry.event("ingest", table_count=Bucket(10), demo=Flag())
    ingest.record(table_count="412")  # a string where a number belongs
    ingest.record(demo=1)  # 1 is not a boolean
    ingest.record(unknown_field=True)
    ingest.record(outcome="exploded")
    assert [line["event"] for line in journal(telemetry)] == ["started"]
    assert dropped_lines(telemetry) == 4
    assert telemetry.status()["dropped"] == {"2026-05-28": 4}


def test_a_wrong_type_raises_for_the_author_under_debug(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest = telemetry.event("ingest", table_count=Bucket(10))
    monkeypatch.setenv("EVENTS_TOOL_TELEMETRY_DEBUG", "1")
    with pytest.raises(TypeError, match="table_count"):
        ingest.record(table_count="412")
    with pytest.raises(ValueError, match="outcome"):
        ingest.record(outcome="exploded")


def test_nothing_is_recorded_or_counted_when_telemetry_is_off(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    started(telemetry)
    monkeypatch.setenv("EVENTS_TOOL_TELEMETRY", "0")
    event = telemetry.event("ingest", table_count=Bucket(10))
    event.record(table_count=3)
    event.record(table_count="wrong")
    assert [line["event"] for line in journal(telemetry)] == ["started"]
    assert dropped_lines(telemetry) == 0


def test_declaring_again_returns_the_same_event_and_other_fields_are_refused(
    telemetry: Telemetry,
) -> None:
    first = telemetry.event("sync", mode=Choice("full", "delta"))
    assert telemetry.event("sync", mode=Choice("full", "delta")) is first
    with pytest.raises(ValueError, match="already declared"):
        telemetry.event("sync", mode=Choice("full"))
    for taken in ("command", "cli_command_rollup", "telemetry_deletion_requested"):
        with pytest.raises(ValueError):
            telemetry.event(taken)


def test_an_error_class_given_as_text_outside_the_schema_is_made_to_fit(
    telemetry: Telemetry,
) -> None:
    event = telemetry.event("upload")
    event.record(outcome="error", error_class="not a class name: /home/alice")
    [line] = journal(telemetry)
    assert (line["outcome"], line["error_class"]) == ("error", "__unrepresentable__")


# Arbitrary values, of every kind a caller could pass, including hostile objects.
class Hostile:
    def __str__(self) -> str:
        return "leaked-through-str"

    def __repr__(self) -> str:
        return "leaked-through-repr"

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


ANY_VALUE = st.one_of(
    st.text(max_size=80),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.binary(max_size=20),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.just(Hostile()),
)
DRIVERS = ("postgres", "sqlite", "snowflake")
BOUNDS = (10, 100, 1000)
LABELS = {"<10", "10-100", "100-1000", "1000+"}


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Telemetry, Any]]:
    monkeypatch = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("hypothesis-home")
    telemetry = in_process_telemetry(monkeypatch, home, "events-tool", None, now=NOW)
    event = telemetry.event(
        "ingest_completed", driver=Choice(*DRIVERS), table_count=Bucket(*BOUNDS), demo=Flag()
    )
    yield telemetry, event
    monkeypatch.undo()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    values=st.dictionaries(
        st.sampled_from(["driver", "table_count", "demo", "path", "user", "Driver"]),
        ANY_VALUE,
        max_size=4,
    ),
    outcome=st.one_of(st.sampled_from(["success", "error", "aborted"]), ANY_VALUE),
    error_class=ANY_VALUE,
    duration_ms=ANY_VALUE,
)
def test_arbitrary_values_never_put_anything_outside_the_declaration_on_disk(
    declared: tuple[Telemetry, Any],
    values: dict[str, object],
    outcome: object,
    error_class: object,
    duration_ms: object,
) -> None:
    telemetry, event = declared
    event.record(outcome=outcome, error_class=error_class, duration_ms=duration_ms, **values)
    for line in journal(telemetry):
        assert line["event"] == "ingest_completed"
        properties = line["properties"]
        assert set(properties) <= {"driver", "table_count", "demo"}
        assert properties.get("driver", "other") in {*DRIVERS, "other"}
        assert properties.get("table_count", "<10") in LABELS
        assert properties.get("demo", False) in (True, False)
        assert line["outcome"] in ("success", "error", "usage_error", "aborted")
        assert line["error_class"] == "" or line["error_class"].isidentifier()
        assert "leaked" not in json.dumps(line)


def test_hostile_values_never_reach_the_wire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer_telemetry.backends import FileBackend

    telemetry = in_process_telemetry(monkeypatch, tmp_path, "events-tool", None, now=NOW)
    sent = tmp_path / "sent.jsonl"
    telemetry.settings = telemetry.settings.replace(backend=FileBackend(sent))
    event = telemetry.event(
        "ingest_completed", driver=Choice(*DRIVERS), table_count=Bucket(*BOUNDS), demo=Flag()
    )
    hostile: list[object] = [
        "/home/alice/.ssh/id_rsa",
        "postgres\n",
        "POSTGRES",
        Hostile(),
        float("nan"),
        -1,
        10**30,
        True,
        b"postgres",
        ["postgres"],
    ]
    for value in hostile:
        event.record(driver=value, table_count=value, demo=value, error_class=value)
        event.record(driver=value)
        event.record(table_count=value, outcome="error", error_class=value)
    telemetry.settings = telemetry.settings.replace(clock=lambda: NOW + 86_400)
    report = telemetry.flush(timeout=5)
    assert report.days_sent == ("2026-05-28",), report
    [batch] = [json.loads(line) for line in sent.read_text().splitlines()]
    assert sum(record["count"] for record in batch["records"]) > 0
    for record in batch["records"]:
        assert set(record["properties"]) <= {"driver", "table_count", "demo"}
        assert record["properties"].get("driver", "other") in {*DRIVERS, "other"}
        assert record["properties"].get("table_count", "<10") in LABELS
    text = json.dumps(batch)
    for leaked in ("alice", "leaked", "ssh", "POSTGRES", "nan"):
        assert leaked not in text
