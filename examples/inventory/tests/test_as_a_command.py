"""The installed `inventory` command as a real process, with the telemetry it records."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from inventory import cli

INVENTORY = shutil.which("inventory", path=str(Path(sys.executable).parent)) or "inventory"


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INVENTORY, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "delivery.json").write_text(
        '[{"sku": "A-1", "quantity": 250}, {"sku": "B-2", "quantity": 4}]', encoding="utf-8"
    )
    return tmp_path


def test_a_run_of_the_command_is_recorded(workdir: Path, telemetry_capture) -> None:
    capture = telemetry_capture(cli.telemetry)

    result = run("ingest", "delivery.json", env=capture.environment(), cwd=workdir)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "ingested 2 rows\n"
    (event,) = capture.records("ingest_completed")
    assert dict(event.properties) == {"file_format": "json", "rows": "<10", "dry_run": False}
    (batch,) = capture.send_completed_days()
    assert {record.event for record in batch.records} == {"command", "ingest_completed"}


def test_stdout_is_the_same_with_telemetry_on_and_off(workdir: Path, telemetry_capture) -> None:
    capture = telemetry_capture(cli.telemetry)

    on = run("ingest", "delivery.json", "--dry-run", env=capture.environment(), cwd=workdir)
    off = run("ingest", "delivery.json", "--dry-run", cwd=workdir)

    assert on.stdout == off.stdout == "checked 2 rows\n"
    assert len(capture.records("ingest_completed")) == 1


def test_without_the_fixture_a_run_records_nothing(workdir: Path, tmp_path: Path) -> None:
    result = run("ingest", "delivery.json", cwd=workdir)

    assert result.returncode == 0
    assert "anonymous usage data" not in result.stderr
    status = run("telemetry", "status", cwd=workdir)
    assert "off" in status.stdout
