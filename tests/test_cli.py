"""The `telemetry` command group: status, enable, disable, reset; files and privacy."""

from __future__ import annotations

import json
import os
import re
import stat
import uuid

import pytest

from tests.conftest import Tool
from typer_telemetry._schema import ROLLUP_FIELD_NAMES


def test_status_json_has_the_documented_fields(tool: Tool) -> None:
    tool.run("db", "migrate", "-f")
    status = tool.status()
    for name in (
        "enabled",
        "reason",
        "install_id",
        "config_path",
        "data_dir",
        "endpoint",
        "pending",
    ):
        assert name in status
    assert status["enabled"] is True
    assert isinstance(status["reason"], str)
    assert status["reason"]
    uuid.UUID(str(status["install_id"]))
    assert status["config_path"] == str(tool.config_dir / "telemetry.toml")
    assert status["data_dir"] == str(tool.store_dir)
    assert status["endpoint"] is None
    (record,) = status["pending"]  # type: ignore[misc]
    assert tuple(record) == ROLLUP_FIELD_NAMES
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", record["day"])
    assert (
        record["properties"]["command"],
        record["outcome"],
        record["properties"]["flags"],
        record["count"],
    ) == (
        "db migrate",
        "success",
        ["--force"],
        1,
    )


def test_status_json_shows_the_endpoint_override(tool: Tool) -> None:
    status = tool.status({"OUTSIDE_TOOL_TELEMETRY_ENDPOINT": "https://self-hosted.example/v1"})
    assert status["endpoint"] == "https://self-hosted.example/v1"


def test_status_for_people_says_why_and_how_to_change_it(tool: Tool) -> None:
    tool.run("hello", "x")
    text = tool.run("telemetry", "status").stdout
    assert "Telemetry for outside-tool is on: on by default (opt-out)." in text
    assert "run `outside-tool telemetry disable`" in text
    assert "hello" in text
    assert "1 invocations over 1 day(s)" in text
    text = tool.run("telemetry", "status", env={"DO_NOT_TRACK": "1"}).stdout
    assert "is off: DO_NOT_TRACK is set" in text
    assert "unset DO_NOT_TRACK" in text


def test_disable_deletes_pending_data_at_once_and_stops_recording(tool: Tool) -> None:
    tool.run("hello", "x")
    tool.run("db", "migrate")
    assert len(tool.pending()) == 2
    result = tool.run("telemetry", "disable")
    assert result.returncode == 0
    assert "disabled" in result.stdout
    assert tool.pending() == []
    assert [p.name for p in tool.store_dir.iterdir()] == ["compact.lock"]
    tool.run("hello", "x")
    assert tool.pending() == []
    assert tool.status()["reason"] == "disabled by your stored choice"


def test_enable_warns_when_an_environment_variable_overrides_it(tool: Tool) -> None:
    result = tool.run("telemetry", "enable", env={"OUTSIDE_TOOL_TELEMETRY": "0"})
    assert result.returncode == 0
    assert "stays off for now, because OUTSIDE_TOOL_TELEMETRY=0" in result.stderr
    result = tool.run("telemetry", "disable", env={"OUTSIDE_TOOL_TELEMETRY": "1"})
    assert "stays on for now, because OUTSIDE_TOOL_TELEMETRY=1" in result.stderr


def test_enable_counts_as_having_seen_the_notice(tool: Tool) -> None:
    assert tool.run("telemetry", "enable").returncode == 0
    assert "collects anonymous usage data" not in tool.run("hello", "x").stderr
    assert len(tool.pending()) == 1


def test_reset_deletes_data_and_mints_a_new_install_id(tool: Tool) -> None:
    tool.run("hello", "x")
    old_id = tool.status()["install_id"]
    result = tool.run("telemetry", "reset")
    assert result.returncode == 0
    status = tool.status()
    assert status["pending"] == []
    assert status["install_id"] not in (None, old_id)
    assert f"{old_id} -> {status['install_id']}" in result.stdout
    assert status["enabled"] is True  # reset keeps the choice
    tool.run("hello", "x")
    assert "collects anonymous usage data" not in tool.run("hello", "y").stderr
    assert len(tool.pending()) == 1


def test_files_are_private_and_in_the_platform_folders(tool: Tool) -> None:
    os.umask(0o022)
    tool.run("hello", "x")
    tool.run("telemetry", "status")
    files = list(tool.files())
    assert files
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600, path
        assert path.is_relative_to(tool.config_dir) or path.is_relative_to(tool.store_dir)
    for folder in (tool.config_dir, tool.store_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


SECRETS = ("s3cr3t-name", "/home/alice/private/db.sqlite", "tok-9f8e7d", "very secret failure")


def test_no_argument_value_path_or_error_message_reaches_the_disk(tool: Tool) -> None:
    tool.run("hello", SECRETS[0], "-g", SECRETS[2])
    tool.run("-c", SECRETS[1], "db", "migrate", "-t", SECRETS[2])
    tool.run("fail", "--message", SECRETS[3])
    tool.run("db", SECRETS[0])  # an unknown command name is a value too
    tool.run("hello", f"--{SECRETS[0]}")  # and so is an unknown option
    tool.run("hello", "x", env={"SOME_TOKEN": SECRETS[2]})
    assert len(tool.pending()) == 6
    for path in tool.files():
        content = path.read_bytes()
        for secret in (*SECRETS, str(tool.home)):
            assert secret.encode() not in content, (path, secret)
    status_output = tool.run("telemetry", "status", "--json").stdout
    pending = json.dumps(json.loads(status_output)["pending"])
    for secret in SECRETS:
        assert secret not in pending


def test_an_unwritable_config_keeps_telemetry_off_for_the_run(tool: Tool) -> None:
    tool.config_dir.parent.mkdir(parents=True)
    tool.config_dir.write_text("not a folder")  # the config folder cannot be created
    result = tool.run("hello", "x")
    assert result.returncode == 0
    assert result.stdout == "Hello, x!\n"
    assert result.stderr == ""
    assert not tool.store_dir.exists()
    debug = tool.run("hello", "x", env={"OUTSIDE_TOOL_TELEMETRY_DEBUG": "1"})
    assert "[outside-tool telemetry]" in debug.stderr
    assert debug.stdout == "Hello, x!\n"


@pytest.mark.parametrize(
    "content",
    [b"enabled = 'yes", b"\xff\xfe", b'enabled = "yes"\n', b"[[[", b"enabled = 1\n"],
    ids=["broken-toml", "binary", "string-choice", "garbage", "integer-choice"],
)
def test_a_corrupt_or_wrong_typed_config_fails_closed(tool: Tool, content: bytes) -> None:
    tool.config_dir.mkdir(parents=True)
    (tool.config_dir / "telemetry.toml").write_bytes(content)
    result = tool.run("hello", "x")
    assert (result.returncode, result.stdout, result.stderr) == (0, "Hello, x!\n", "")
    status = tool.status()
    assert (status["enabled"], status["reason"]) == (
        False,
        "the telemetry config file cannot be read",
    )
    # An explicit choice repairs it, keeping the unreadable file aside.
    assert tool.run("telemetry", "enable").returncode == 0
    assert tool.status()["enabled"] is True
    assert any(p.name.startswith("telemetry.toml.unreadable-") for p in tool.config_dir.iterdir())


def test_a_hand_edited_config_is_read_with_full_toml(tool: Tool) -> None:
    tool.config_dir.mkdir(parents=True)
    (tool.config_dir / "telemetry.toml").write_text(
        "# my settings\nenabled = false   # no thanks\n[other]\nkey = 'value'\n"
    )
    tool.run("hello", "x")
    status = tool.status()
    assert (status["enabled"], status["source"]) == (False, "config")
    assert tool.run("telemetry", "enable").returncode == 0
    text = (tool.config_dir / "telemetry.toml").read_text()
    assert "enabled = true" in text
    assert "[other]" in text
