"""The built-in signals as recorded: sampling per process, the MCP client, the project id."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import clean_environment, in_process_telemetry
from typer_telemetry._paths import JOURNAL_NAME
from typer_telemetry._runner import AGENT_VARIABLES, agent_from_client_name

NOW = 1_780_000_000.0

SAMPLED_TOOL = r"""
from typer_telemetry import Telemetry
telemetry = Telemetry("sampled-tool", version="1.0", sample_rate=0.5)
event = telemetry.event("tick")
for _ in range(3):
    event.record()
"""


def lines_of(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_sampling_keeps_or_drops_a_whole_process_and_records_its_rate(tmp_path: Path) -> None:
    recorded = []
    for number in range(24):
        home = tmp_path / f"home-{number}"
        home.mkdir()
        result = subprocess.run(
            [sys.executable, "-c", SAMPLED_TOOL],
            env=clean_environment(home),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        lines = lines_of(home / ".local/state/sampled-tool/telemetry" / JOURNAL_NAME)
        assert len(lines) in (0, 3), lines  # a process is recorded whole, or not at all
        assert all(line["properties"] == {"sample_rate": 0.5} for line in lines)
        recorded.append(bool(lines))
    # 24 fair coins: fewer than 2 or more than 22 heads has a chance of about 3 in a million.
    assert 2 <= sum(recorded) <= 22, recorded


def test_the_mcp_client_names_the_agent_never_its_own_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    telemetry = in_process_telemetry(monkeypatch, tmp_path, "mcp-tool", None, now=NOW)
    telemetry.settings = telemetry.settings.replace(signals=frozenset({"runner"}))
    for variable, _value, _agent in AGENT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    event = telemetry.event("tool_executed")
    event.record()
    telemetry.set_mcp_client("claude-ai")
    event.record()
    telemetry.set_mcp_client("Alice's private client on host-42")
    event.record()
    journal = tmp_path / ".local/state/mcp-tool/telemetry" / JOURNAL_NAME
    runners = [line["properties"] for line in lines_of(journal)]
    assert runners[0]["runner"] in ("script", "terminal")
    assert "agent" not in runners[0]
    assert runners[1] == {"runner": "agent", "agent": agent_from_client_name("claude-ai")}
    assert runners[1]["agent"] != "other"
    assert runners[2] == {"runner": "agent", "agent": "other"}
    assert "Alice" not in journal.read_text()


def test_the_project_id_is_one_per_project_folder_and_changes_with_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    telemetry = in_process_telemetry(monkeypatch, tmp_path, "project-tool", None, now=NOW)
    telemetry.settings = telemetry.settings.replace(signals=frozenset({"project"}))
    first, second = tmp_path / "work" / "first", tmp_path / "work" / "second"
    for project in (first, second):
        (project / "src" / "deep").mkdir(parents=True)
        (project / "pyproject.toml").write_text("[project]\n")
    event = telemetry.event("build")
    for folder in (first, first / "src" / "deep", second):
        monkeypatch.chdir(folder)
        event.record()
    journal = tmp_path / ".local/state/project-tool/telemetry" / JOURNAL_NAME
    ids = [line["properties"]["project_id"] for line in lines_of(journal)]  # type: ignore[index]
    assert ids[0] == ids[1] != ids[2]
    assert str(tmp_path) not in journal.read_text()
    config = (tmp_path / ".config/project-tool/telemetry.toml").read_text()
    assert "project_salt" in config
    telemetry.reset()
    monkeypatch.chdir(first)
    event.record()
    [after_reset] = [line["properties"]["project_id"] for line in lines_of(journal)]  # type: ignore[index]
    assert after_reset != ids[0]


def test_the_record_check_knows_the_same_runners_the_detection_gives() -> None:
    from typer_telemetry import _checks, _runner

    assert _checks.RUNNERS == _runner.RUNNERS
