"""`mytool telemetry schema`: what the tool could ever send, asked of the tool itself."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TOOLS, Tool, clean_environment, tool_script


@pytest.fixture
def contract_tool(home: Path) -> Tool:
    return Tool(tool_script("contract_tool"), home)


def expected_words(document: dict[str, object]) -> list[str]:
    """Every command path, option, event, field and value the text must show."""
    words: list[str] = []
    for command in document["commands"]:  # type: ignore[attr-defined]
        words += [command["path"].replace("\t", " ") or "(the tool itself, no command)"]
        words += command["options"] + command["options_left_out"]
    for name, event in document["events"].items():  # type: ignore[attr-defined]
        words.append(name)
        for field, spec in event["fields"].items():
            words.append(field)
            words += [json.dumps(value).strip('"') for value in spec["values"]]
    return words


@pytest.mark.parametrize("columns", [40, 80])
def test_the_text_fits_the_width_and_cuts_nothing_when_piped(
    contract_tool: Tool, columns: int
) -> None:
    document = json.loads(contract_tool.run("telemetry", "schema", "--json").stdout)
    result = contract_tool.run("telemetry", "schema", env={"COLUMNS": str(columns)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for line in lines:
        # Only a single word wider than the screen may pass it (never cut).
        assert len(line) <= columns or " " not in line.strip(), line
    text = " ".join(line.strip() for line in lines)
    for word in expected_words(document):
        assert word in text, word
    assert "db migrate" in lines[lines.index("  db migrate")]


def test_the_text_fits_a_terminal_of_40_columns(home: Path) -> None:
    primary, secondary = pty.openpty()
    os.set_blocking(primary, True)
    import fcntl
    import struct
    import termios

    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 40, 0, 0))
    environment = clean_environment(home)
    environment.pop("COLUMNS")
    process = subprocess.Popen(
        [sys.executable, str(tool_script("contract_tool")), "telemetry", "schema"],
        stdin=secondary,
        stdout=secondary,
        stderr=subprocess.PIPE,
        env=environment,
        cwd=home,
    )
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the terminal closed: the process has ended
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=60) == 0
    os.close(primary)
    lines = output.decode().replace("\r\n", "\n").splitlines()
    assert any("db tables list" in line for line in lines)
    for line in lines:
        assert len(line) <= 40 or " " not in line.strip(), line


def test_json_is_the_documents_python_m_prints(contract_tool: Tool, home: Path) -> None:
    ours = contract_tool.run("telemetry", "schema", "--json")
    assert ours.returncode == 0, ours.stderr
    theirs = subprocess.run(
        [sys.executable, "-m", "typer_telemetry", "schema", "contract_tool:telemetry", "--json"],
        env=clean_environment(home),
        capture_output=True,
        text=True,
        cwd=TOOLS,
        timeout=60,
    )
    assert theirs.returncode == 0, theirs.stderr
    assert ours.stdout == theirs.stdout
    assert json.loads(ours.stdout)["tool"] == "contract-tool"


@pytest.mark.parametrize(
    "environment",
    [{}, {"DO_NOT_TRACK": "1"}, {"CONTRACT_TOOL_TELEMETRY": "0"}, {"CI": "true"}],
)
def test_schema_works_whatever_the_consent_and_is_never_recorded(
    contract_tool: Tool, environment: dict[str, str]
) -> None:
    result = contract_tool.run("telemetry", "schema", env=environment)
    assert result.returncode == 0, result.stderr
    assert "batch_done" in result.stdout
    # Describing is no use of the tool: no notice, nothing pending.
    assert "collects anonymous usage data" not in result.stderr
    assert contract_tool.pending() == []


def test_schema_is_in_the_telemetry_group_under_its_own_name(home: Path) -> None:
    tool = Tool(tool_script("named_group_tool"), home)
    result = tool.run("admin", "telemetry", "schema", env={"TOOL_MOUNT": "sub-app"})
    assert result.returncode == 0, result.stderr
    assert "named-group-tool admin telemetry disable" in result.stdout
    help_text = tool.run("admin", "telemetry", "--help", env={"TOOL_MOUNT": "sub-app"}).stdout
    assert "schema" in help_text


def test_a_clash_that_fails_every_run_fails_the_contract_in_one_line(home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "typer_telemetry", "docs", "named_group_tool:telemetry"],
        env=clean_environment(home, {"TOOL_MOUNT": "twice"}),
        capture_output=True,
        text=True,
        cwd=TOOLS,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "mounted a second time" in result.stderr


def test_a_console_that_cannot_show_a_name_gets_an_escape_not_a_traceback(
    contract_tool: Tool,
) -> None:
    result = contract_tool.run("telemetry", "schema", env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    assert "--na\\xefve" in result.stdout
    assert "gr\\xfc\\xdfe" in result.stdout
