"""The tool's commands in process (CliRunner), with the telemetry they record.

Nothing here sets up telemetry by hand: the pytest plugin that comes with
typer-telemetry keeps every test from recording, and the `telemetry_capture`
fixture turns it on for one test, in a home of its own, with an in-memory
back end.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from inventory import cli
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "delivery.csv").write_text("sku,quantity\nA-1,3\nB-2,12\n", encoding="utf-8")
    return tmp_path


def test_an_ingest_records_one_success_with_its_row_range(workdir: Path, telemetry_capture) -> None:
    capture = telemetry_capture(cli.telemetry)

    result = runner.invoke(cli.app, ["ingest", "delivery.csv"])

    assert result.exit_code == 0, result.output
    (event,) = capture.records("ingest_completed")
    assert (event.outcome, event.count) == ("success", 1)
    assert dict(event.properties) == {"file_format": "csv", "rows": "<10", "dry_run": False}


def test_a_preflight_failure_records_exactly_one_error(workdir: Path, telemetry_capture) -> None:
    capture = telemetry_capture(cli.telemetry)

    result = runner.invoke(cli.app, ["ingest", "missing.csv"])

    assert result.exit_code == 1
    (event,) = capture.records("ingest_completed")
    assert (event.outcome, event.error_class, event.count) == ("error", "PreflightError", 1)
    (command,) = capture.records("command")
    assert (command.outcome, command.error_class) == ("error", "Exit")


def test_an_unknown_format_is_recorded_as_other_never_as_typed(
    workdir: Path, telemetry_capture
) -> None:
    capture = telemetry_capture(cli.telemetry)
    (workdir / "secret-customer-list.xlsx").write_text("", encoding="utf-8")

    runner.invoke(cli.app, ["ingest", "secret-customer-list.xlsx"])

    (event,) = capture.records("ingest_completed")
    assert dict(event.properties)["file_format"] == "other"
    assert "secret" not in repr(capture.records())


def test_options_are_recorded_by_name_never_by_value(workdir: Path, telemetry_capture) -> None:
    capture = telemetry_capture(cli.telemetry)

    runner.invoke(
        cli.app, ["--store", "s.csv", "stock", "adjust", "A-1", "5", "--reason", "audit 7"]
    )

    (command,) = capture.records("command")
    assert dict(command.properties) == {
        "command": "stock adjust",
        "flags": ("--reason", "--store"),
    }
    assert "audit" not in repr(capture.records())


def test_a_completed_day_sends_what_status_showed(workdir: Path, telemetry_capture) -> None:
    capture = telemetry_capture(cli.telemetry)
    runner.invoke(cli.app, ["ingest", "delivery.csv", "--dry-run"])
    recorded = capture.records()

    (batch,) = capture.send_completed_days()

    assert batch.envelope.tool == "inventory"
    assert sorted(batch.records, key=repr) == sorted(recorded, key=repr)
    assert capture.records() == []


def test_disable_deletes_what_was_recorded(workdir: Path, telemetry_capture) -> None:
    capture = telemetry_capture(cli.telemetry)
    runner.invoke(cli.app, ["ingest", "delivery.csv"])
    assert capture.records()

    result = runner.invoke(cli.app, ["telemetry", "disable"])

    assert result.exit_code == 0
    assert capture.records() == []
    runner.invoke(cli.app, ["ingest", "delivery.csv"])
    assert capture.records() == []


def test_without_the_fixture_nothing_is_recorded_anywhere(workdir: Path) -> None:
    result = runner.invoke(cli.app, ["ingest", "delivery.csv"])

    assert result.exit_code == 0
    assert "anonymous usage data" not in result.output
    assert not cli.telemetry.decide().enabled
