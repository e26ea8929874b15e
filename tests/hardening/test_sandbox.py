"""A test session's sandbox (TYPER_TELEMETRY_SANDBOX): nothing recorded, nothing outside the folder.

The pytest plugin sets the variable for a whole session (docs/testing.md);
these tests set it by hand for real processes of the outside tool: every
command of the tool and of its `telemetry` group must leave the user's home
exactly as it was, record nothing, print no notice and open no connection,
whatever else the environment says.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from tests.conftest import Tool
from tests.hardening.conftest import Reliability, assert_unchanged_by_telemetry
from tests.receiver import Receiver

AREA = "Test sandbox"
NOTICE = "collects anonymous usage data"


def tree(folder: Path) -> dict[str, tuple[int, int, float]]:
    """Every entry below `folder`: mode, size, mtime (what "untouched" means)."""
    return {
        str(path.relative_to(folder)): (info.st_mode, info.st_size, info.st_mtime)
        for path in sorted(folder.rglob("*"))
        for info in [path.lstat()]
    }


def test_a_sandboxed_tool_records_nothing_and_its_commands_stay_in_the_sandbox(
    tool: Tool, tmp_path: Path, reliability: Reliability
) -> None:
    (tool.home / ".profile").write_text("# the user's own file\n")
    before = tree(tool.home)
    sandbox = tmp_path / "sandbox"
    with Receiver() as receiver:
        env = {
            "TYPER_TELEMETRY_SANDBOX": str(sandbox),
            "OUTSIDE_TOOL_TELEMETRY": "1",  # an explicit "on" does not beat the sandbox
            "OUTSIDE_TOOL_TELEMETRY_ENDPOINT": receiver.url(),
        }
        first = assert_unchanged_by_telemetry(tool, "hello", "ada", env=env)
        assert NOTICE not in first.stderr
        assert tool.run("db", "migrate", "--force", env=env).returncode == 0
        serving = tool.popen("serve", env=env)
        assert serving.stdout is not None
        assert serving.stdout.readline() == "serving\n"
        serving.communicate("", timeout=30)
        for command in ("enable", "reset", "disable", "enable"):
            result = tool.run("telemetry", command, env=env)
            assert result.returncode == 0, result.stderr
        status = json.loads(tool.run("telemetry", "status", "--json", env=env).stdout)
        assert (status["enabled"], status["source"]) == (False, "sandbox")
        assert status["pending"] == []
        assert "TYPER_TELEMETRY_SANDBOX" in tool.run("telemetry", "status", env=env).stdout
        assert receiver.requests == []
    assert tree(tool.home) == before
    # The telemetry commands' files are in the sandbox, private; no data was ever recorded.
    assert (sandbox / "config" / "outside-tool" / "telemetry.toml").is_file()
    assert not list(sandbox.rglob("journal.log"))
    assert not list(sandbox.rglob("rollup.json"))
    for path in [sandbox, *sandbox.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    reliability.record(
        area=AREA,
        fault="TYPER_TELEMETRY_SANDBOX set, with MYTOOL_TELEMETRY=1 and an endpoint: ordinary, "
        "long-running and every `telemetry` command run",
        cases=9,
        outcome="tool unaffected, no notice; nothing recorded, no connection; status names the "
        "sandbox; the telemetry commands' files are in the sandbox (0700/0600), the home is "
        "untouched",
    )


def test_a_sandbox_folder_that_is_not_ours_alone_is_never_written(
    tool: Tool, tmp_path: Path, reliability: Reliability
) -> None:
    sandbox = tmp_path / "sandbox"
    planted = sandbox / "config" / "outside-tool"
    planted.mkdir(parents=True)
    os.chown(planted, 65534, 65534)
    env = {"TYPER_TELEMETRY_SANDBOX": str(sandbox)}
    assert_unchanged_by_telemetry(tool, "hello", "ada", env=env)
    enable = tool.run("telemetry", "enable", env=env)
    assert enable.returncode == 1
    assert "owned by another user" in enable.stderr
    assert "Traceback" not in enable.stderr
    assert list(planted.iterdir()) == []
    # A relative sandbox is refused where it would be created: nothing in the working folder.
    before = tree(tool.home)
    relative = tool.run("telemetry", "enable", env={"TYPER_TELEMETRY_SANDBOX": "sandbox"})
    assert relative.returncode == 1
    assert "Traceback" not in relative.stderr
    assert tree(tool.home) == before
    reliability.record(
        area=AREA,
        fault="sandbox whose tool folder another user owns; a relative sandbox folder",
        cases=2,
        outcome="tool unaffected; `telemetry enable` exits 1 saying why; nothing written there "
        "or in the working folder",
    )
