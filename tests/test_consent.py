"""The consent table of TELEMETRY.md, row by row: first as a pure function, then on a real tool."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.conftest import Tool
from typer_telemetry._consent import CI_PROVIDER_VARIABLES, decide, env_prefix, is_set

if TYPE_CHECKING:
    from typer_telemetry._consent import Policy, StoredChoice

PREFIX = "MYTOOL"


def test_env_prefix_upper_cases_and_replaces_non_alphanumerics() -> None:
    assert env_prefix("my-tool.cli") == "MY_TOOL_CLI"
    assert env_prefix("mytool") == "MYTOOL"
    assert env_prefix("été") == "_T_"


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "anything", "TRUE", " 1 "])
def test_values_that_count_as_set(value: str) -> None:
    assert is_set(value)


@pytest.mark.parametrize("value", [None, "", "0", "false", "no", "off", "FALSE", "Off", " no "])
def test_values_that_do_not_count_as_set(value: str | None) -> None:
    assert not is_set(value)


# Row 1: a test session's sandbox beats everything, DO_NOT_TRACK=0 and an explicit ON included.
@pytest.mark.parametrize("stored", ["enabled", "unset"])
def test_a_test_sessions_sandbox_beats_every_other_row(stored: StoredChoice) -> None:
    environ = {"TYPER_TELEMETRY_SANDBOX": "/tmp/s", f"{PREFIX}_TELEMETRY": "1", "DO_NOT_TRACK": "0"}
    decision = decide(PREFIX, environ, stored, "opt-out", unsafe="the data folder is not yours")
    assert (decision.enabled, decision.source) == (False, "sandbox")
    assert "TYPER_TELEMETRY_SANDBOX" in decision.reason


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_sandbox_variable_is_no_sandbox(value: str) -> None:
    decision = decide(PREFIX, {"TYPER_TELEMETRY_SANDBOX": value}, "unset", "opt-out")
    assert (decision.enabled, decision.source) == (True, "default")


# Row 2: DO_NOT_TRACK beats everything else, including an explicit ON.
@pytest.mark.parametrize("value", ["1", "true", "yes", "whatever"])
def test_do_not_track_beats_env_switch_stored_enable_and_default(value: str) -> None:
    environ = {"DO_NOT_TRACK": value, f"{PREFIX}_TELEMETRY": "1"}
    decision = decide(PREFIX, environ, "enabled", "opt-out")
    assert (decision.enabled, decision.source) == (False, "do_not_track")


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "FALSE"])
def test_do_not_track_zero_never_turns_telemetry_on(value: str) -> None:
    decision = decide(PREFIX, {"DO_NOT_TRACK": value}, "disabled", "opt-out")
    assert (decision.enabled, decision.source) == (False, "config")
    decision = decide(PREFIX, {"DO_NOT_TRACK": value}, "unset", "opt-in")
    assert (decision.enabled, decision.source) == (False, "default")


# Row 3: <NAME>_TELEMETRY_DISABLED.
def test_disabled_variable_beats_env_switch_and_stored_enable() -> None:
    environ = {f"{PREFIX}_TELEMETRY_DISABLED": "1", f"{PREFIX}_TELEMETRY": "on"}
    decision = decide(PREFIX, environ, "enabled", "opt-out")
    assert (decision.enabled, decision.source) == (False, "env_disabled")
    assert f"{PREFIX}_TELEMETRY_DISABLED" in decision.reason


def test_disabled_variable_set_to_false_is_ignored() -> None:
    decision = decide(PREFIX, {f"{PREFIX}_TELEMETRY_DISABLED": "false"}, "unset", "opt-out")
    assert (decision.enabled, decision.source) == (True, "default")


# Rows 4 and 6: <NAME>_TELEMETRY switches both ways and beats CI and the stored choice.
@pytest.mark.parametrize("value", ["0", "false", "off", "no", "OFF"])
def test_env_switch_off_beats_stored_enable(value: str) -> None:
    decision = decide(PREFIX, {f"{PREFIX}_TELEMETRY": value}, "enabled", "opt-out")
    assert (decision.enabled, decision.source) == (False, "env")


@pytest.mark.parametrize("value", ["1", "true", "on", "yes", "True"])
def test_env_switch_on_beats_ci_and_stored_disable(value: str) -> None:
    environ = {f"{PREFIX}_TELEMETRY": value, "CI": "true"}
    decision = decide(PREFIX, environ, "disabled", "opt-in")
    assert (decision.enabled, decision.source) == (True, "env")


def test_env_switch_with_an_unknown_value_falls_through() -> None:
    decision = decide(PREFIX, {f"{PREFIX}_TELEMETRY": "maybe"}, "disabled", "opt-out")
    assert (decision.enabled, decision.source) == (False, "config")


# Row 7: CI.
@pytest.mark.parametrize("variable", ["CI", *CI_PROVIDER_VARIABLES])
def test_ci_beats_stored_enable(variable: str) -> None:
    decision = decide(PREFIX, {variable: "true"}, "enabled", "opt-out")
    assert (decision.enabled, decision.source) == (False, "ci")
    assert variable in decision.reason


def test_ci_false_is_not_ci() -> None:
    decision = decide(PREFIX, {"CI": "false"}, "unset", "opt-out")
    assert (decision.enabled, decision.source) == (True, "default")


# Row 8: the stored choice.
def test_stored_enable_beats_opt_in_default() -> None:
    decision = decide(PREFIX, {}, "enabled", "opt-in")
    assert (decision.enabled, decision.source) == (True, "config")


def test_stored_disable_beats_opt_out_default() -> None:
    decision = decide(PREFIX, {}, "disabled", "opt-out")
    assert (decision.enabled, decision.source) == (False, "config")


def test_unreadable_config_fails_closed() -> None:
    decision = decide(PREFIX, {}, "unreadable", "opt-out")
    assert (decision.enabled, decision.source) == (False, "config")


# Row 9: the author's policy.
def test_opt_out_policy_defaults_to_on() -> None:
    assert decide(PREFIX, {}, "unset", "opt-out").enabled


def test_opt_in_policy_defaults_to_off() -> None:
    assert not decide(PREFIX, {}, "unset", "opt-in").enabled


# The same rows, end to end: a real tool process, a real config file.

ROWS = [
    ({"DO_NOT_TRACK": "1", "OUTSIDE_TOOL_TELEMETRY": "1"}, False, "do_not_track"),
    ({"OUTSIDE_TOOL_TELEMETRY_DISABLED": "yes"}, False, "env_disabled"),
    ({"OUTSIDE_TOOL_TELEMETRY": "0"}, False, "env"),
    ({"OUTSIDE_TOOL_TELEMETRY": "1", "CI": "true"}, True, "env"),
    ({"GITHUB_ACTIONS": "true"}, False, "ci"),
    ({"CI": "1"}, False, "ci"),
    ({}, True, "default"),
    ({"TOOL_CONSENT": "opt-in"}, False, "default"),
    ({"DO_NOT_TRACK": "0"}, True, "default"),
]


@pytest.mark.parametrize(("env", "records", "source"), ROWS)
def test_each_row_decides_recording_of_a_real_tool(
    tool: Tool, env: dict[str, str], records: bool, source: str
) -> None:
    result = tool.run("hello", "World", env=env)
    assert result.returncode == 0
    assert result.stdout == "Hello, World!\n"
    status = tool.status(env)
    assert status["source"] == source
    assert status["enabled"] is records
    assert bool(status["pending"]) is records
    assert ("collects anonymous usage data" in result.stderr) is records
    # Whatever the row, the real store agrees with a run that has no overrides.
    assert bool(tool.pending()) is records


def test_stored_choices_on_a_real_tool(tool: Tool) -> None:
    opt_in = {"TOOL_CONSENT": "opt-in"}
    assert tool.run("hello", "a", env=opt_in).returncode == 0
    assert tool.pending(opt_in) == []
    assert tool.run("telemetry", "enable", env=opt_in).returncode == 0
    assert tool.run("hello", "a", env=opt_in).returncode == 0
    status = tool.status(opt_in)
    assert (status["enabled"], status["source"]) == (True, "config")
    assert len(status["pending"]) == 1

    assert tool.run("telemetry", "disable").returncode == 0
    assert tool.run("hello", "a").returncode == 0
    status = tool.status()
    assert (status["enabled"], status["source"], status["pending"]) == (False, "config", [])


# The unsafe files row: files another user owns or others may write to.
UNSAFE = "the config folder /x is owned by another user (uid 65534)"


@pytest.mark.parametrize(
    ("environ", "stored", "policy"),
    [
        ({}, "enabled", "opt-out"),
        ({}, "unset", "opt-out"),
        ({f"{PREFIX}_TELEMETRY": "1"}, "enabled", "opt-out"),
        ({f"{PREFIX}_TELEMETRY": "1", "CI": "true"}, "unset", "opt-in"),
        ({"CI": "true"}, "enabled", "opt-out"),
    ],
)
def test_unsafe_files_turn_telemetry_off_whatever_the_switch_choice_or_default_say(
    environ: dict[str, str], stored: StoredChoice, policy: Policy
) -> None:
    decision = decide(PREFIX, environ, stored, policy, UNSAFE)
    assert (decision.enabled, decision.source, decision.reason) == (False, "unsafe_files", UNSAFE)


@pytest.mark.parametrize(
    ("environ", "source"),
    [
        ({"DO_NOT_TRACK": "1"}, "do_not_track"),
        ({f"{PREFIX}_TELEMETRY_DISABLED": "1"}, "env_disabled"),
        ({f"{PREFIX}_TELEMETRY": "0"}, "env"),
    ],
)
def test_an_opt_out_in_the_environment_still_reports_as_itself_over_unsafe_files(
    environ: dict[str, str], source: str
) -> None:
    decision = decide(PREFIX, environ, "enabled", "opt-out", UNSAFE)
    assert (decision.enabled, decision.source) == (False, source)
