"""The per-user folders are platformdirs' folders, whether or not platformdirs is imported."""

from __future__ import annotations

import sys

import platformdirs
import pytest

from typer_telemetry._paths import Paths, _xdg_folders

CASES = [
    {"HOME": "/home/ada"},
    {"HOME": "/home/ada/"},
    {"HOME": "/home/ada", "XDG_CONFIG_HOME": "/cfg", "XDG_STATE_HOME": "/st/"},
    {"HOME": "/home/ada", "XDG_CONFIG_HOME": "relative/cfg", "XDG_STATE_HOME": ""},
    {"HOME": "/home/ada", "XDG_CONFIG_HOME": "", "XDG_STATE_HOME": "/st"},
    {"HOME": "relative-home"},
    {},
]


@pytest.mark.parametrize("environment", CASES)
def test_the_folders_agree_with_platformdirs(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    try:
        expected = (
            platformdirs.user_config_dir("my-tool", appauthor=False),
            platformdirs.user_state_dir("my-tool", appauthor=False),
        )
    except (RuntimeError, KeyError):
        pytest.skip("platformdirs cannot resolve a home here either")
    paths = Paths.for_tool("my-tool")
    assert (str(paths.config_dir), str(paths.state_dir)) == expected


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the shortcut is for Linux")
def test_the_common_linux_case_needs_no_platformdirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/ada")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    folders = _xdg_folders("my-tool")
    assert folders is not None
    assert [str(folder) for folder in folders] == [
        "/home/ada/.config/my-tool",
        "/home/ada/.local/state/my-tool",
    ]


def test_a_test_sessions_sandbox_holds_every_tools_folders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", "/home/ada")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/cfg")
    monkeypatch.setenv("TYPER_TELEMETRY_SANDBOX", "/tmp/session-sandbox")
    paths = Paths.for_tool("my-tool")
    assert (str(paths.config_dir), str(paths.state_dir)) == (
        "/tmp/session-sandbox/config/my-tool",
        "/tmp/session-sandbox/state/my-tool",
    )
    monkeypatch.setenv("TYPER_TELEMETRY_SANDBOX", " ")
    assert str(Paths.for_tool("my-tool").config_dir) == "/cfg/my-tool"
