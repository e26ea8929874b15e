"""The hook, seen from outside: a real tool process, its output, exit codes and records."""

from __future__ import annotations

import signal

import pytest

from tests.conftest import Tool, tool_script

NOTICE_MARK = "collects anonymous usage data"


def strip_notice(stderr: str) -> str:
    return "".join(line for line in stderr.splitlines(True) if NOTICE_MARK not in line)


def test_records_command_paths_outcomes_error_classes_and_flags(tool: Tool) -> None:
    invocations = [
        ("hello", "World"),
        ("hello", "World", "-g", "Hi", "--count", "2"),
        ("-v", "--config", "/secret/path.toml", "hello", "Bob", "-g", "Hey"),
        ("db", "migrate", "-f"),
        ("db", "migrate", "--target", "v42", "--force"),
        ("db", "remote", "push", "--dry-run"),
        ("fail", "--message", "a secret message"),
        ("leave", "--code", "4"),
        ("leave", "--code", "0"),
        ("sys-exit", "--code", "6"),
        ("hello", "--bogus"),
        ("hello",),
        ("db", "nosuch-command"),
        ("db", "migrate", "--target"),
        ("abort",),
    ]
    for arguments in invocations:
        tool.run(*arguments, input="n\n")
    counts = tool.counts()
    day = next(iter(counts))[0]
    # Click 8.2 and later name an unknown command's error NoSuchCommand.
    no_such_command = (
        "NoSuchCommand"
        if (day, "db", "usage_error", "NoSuchCommand", ()) in counts
        else "UsageError"
    )
    assert counts == {
        (day, "hello", "success", "", ()): 1,
        (day, "hello", "success", "", ("--count", "--greeting")): 1,
        (day, "hello", "success", "", ("--config", "--greeting", "--verbose")): 1,
        (day, "db migrate", "success", "", ("--force",)): 1,
        (day, "db migrate", "success", "", ("--force", "--target")): 1,
        (day, "db remote push", "success", "", ("--dry-run",)): 1,
        (day, "fail", "error", "RuntimeError", ("--message",)): 1,
        (day, "leave", "error", "Exit", ("--code",)): 1,
        (day, "leave", "success", "", ("--code",)): 1,
        (day, "sys-exit", "error", "SystemExit", ("--code",)): 1,
        (day, "hello", "usage_error", "NoSuchOption", ()): 1,
        (day, "hello", "usage_error", "MissingParameter", ()): 1,
        (day, "db", "usage_error", no_such_command, ()): 1,
        (day, "db migrate", "usage_error", "BadOptionUsage", ()): 1,
        (day, "abort", "aborted", "Abort", ()): 1,
    }


BEHAVIOUR_CASES = [
    ("hello", "World"),
    ("-v", "hello", "World", "-n", "2"),
    ("db", "migrate", "-f", "-t", "v1"),
    ("db", "remote", "push"),
    ("fail", "--message", "kaboom"),
    ("leave", "--code", "7"),
    ("sys-exit",),
    ("hello", "--bogus"),
    ("hello",),
    ("nosuch",),
    ("db",),
    ("--help",),
    ("db", "--help"),
    ("hello", "--help"),
    ("abort",),
]


@pytest.mark.parametrize("arguments", BEHAVIOUR_CASES, ids=" ".join)
def test_output_and_exit_code_are_those_of_the_tool_without_the_library(
    tool: Tool, arguments: tuple[str, ...]
) -> None:
    bare = tool.run(*arguments, env={"TOOL_WITHOUT_TELEMETRY": "1"}, input="n\n")
    instrumented = tool.run(*arguments, input="n\n")
    assert instrumented.returncode == bare.returncode
    if "--help" in arguments and arguments[0] == "--help":
        # The one intended difference: the root help lists the `telemetry` group.
        assert instrumented.stdout.replace("telemetry", "") != ""
        assert "telemetry" in instrumented.stdout
    else:
        assert instrumented.stdout == bare.stdout
    assert strip_notice(instrumented.stderr) == bare.stderr


def test_notice_is_one_line_on_stderr_once_per_machine(tool: Tool) -> None:
    first = tool.run("hello", "World")
    notice_lines = [line for line in first.stderr.splitlines() if NOTICE_MARK in line]
    assert len(notice_lines) == 1
    assert notice_lines[0].startswith("outside-tool collects anonymous usage data")
    assert notice_lines[0].endswith(
        "Opt out: outside-tool telemetry disable or OUTSIDE_TOOL_TELEMETRY=0."
    )
    assert first.stdout == "Hello, World!\n"
    for arguments in (("hello", "again"), ("db", "migrate"), ("fail",)):
        assert NOTICE_MARK not in tool.run(*arguments).stderr


def test_no_notice_and_no_files_when_disabled(tool: Tool) -> None:
    result = tool.run("hello", "World", env={"DO_NOT_TRACK": "1"})
    assert result.stderr == ""
    assert list(tool.files()) == []


def test_help_completion_and_telemetry_commands_are_not_recorded(tool: Tool) -> None:
    for arguments in (
        ("--help",),
        ("hello", "--help"),
        ("db", "migrate", "--help"),
        ("telemetry", "status"),
        ("telemetry", "--help"),
        ("--show-completion", "bash"),
    ):
        tool.run(*arguments)
    tool.run("hello", "x", env={"_OUTSIDE_TOOL_PY_COMPLETE": "complete_bash", "COMP_WORDS": "x"})
    assert tool.pending() == []
    assert NOTICE_MARK not in tool.run("hello", "World").stderr.replace(NOTICE_MARK, "", 1)
    assert len(tool.pending()) == 1


def test_sigterm_is_recorded_as_aborted_and_the_process_dies_of_sigterm(tool: Tool) -> None:
    tool.run("hello", "first")  # the notice and identity are settled
    process = tool.popen("wait", "--seconds", "30")
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM
    assert stderr == ""
    day = next(iter(tool.counts()))[0]
    assert tool.counts()[(day, "wait", "aborted", "SIGTERM", ("--seconds",))] == 1


def test_sigterm_kills_like_without_the_library(tool: Tool) -> None:
    process = tool.popen("wait", env={"TOOL_WITHOUT_TELEMETRY": "1"})
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM


def test_ctrl_c_keeps_typers_exit_code_and_is_recorded_as_aborted(tool: Tool) -> None:
    bare = tool.run("interrupt", env={"TOOL_WITHOUT_TELEMETRY": "1"})
    instrumented = tool.run("interrupt")
    assert instrumented.returncode == bare.returncode
    assert instrumented.returncode in (1, 130)
    assert strip_notice(instrumented.stderr) == bare.stderr
    day = next(iter(tool.counts()))[0]
    assert tool.counts() == {(day, "interrupt", "aborted", "KeyboardInterrupt", ()): 1}


def test_single_command_app_behaves_exactly_as_before(home: object) -> None:
    from pathlib import Path

    tool = Tool(tool_script("single_tool"), Path(str(home)))
    # The one documented difference: a first argument of exactly `telemetry`
    # reaches the telemetry group (checked at the end).
    for arguments in (("--help",), ("Ann", "-l"), ("Bob",), ("-x",), ()):
        bare = tool.run(*arguments, env={"TOOL_WITHOUT_TELEMETRY": "1"})
        instrumented = tool.run(*arguments)
        assert instrumented.returncode == bare.returncode
        assert instrumented.stdout == bare.stdout
        assert strip_notice(instrumented.stderr) == bare.stderr
    day = next(iter(tool.counts()))[0]
    assert tool.counts() == {
        (day, "", "success", "", ("--loud",)): 1,
        (day, "", "success", "", ()): 1,
        (day, "", "usage_error", "NoSuchOption", ()): 1,
        (day, "", "usage_error", "MissingParameter", ()): 1,
    }
    status = tool.run("telemetry", "status")
    assert status.returncode == 0
    assert "Telemetry for single-tool is on" in status.stdout


def test_custom_group_class_keeps_working_and_records_canonical_names(home: object) -> None:
    from pathlib import Path

    tool = Tool(tool_script("custom_group_tool"), Path(str(home)))
    bare = tool.run("m", "-f", env={"TOOL_WITHOUT_TELEMETRY": "1"})
    instrumented = tool.run("m", "-f")
    assert (instrumented.returncode, instrumented.stdout) == (bare.returncode, bare.stdout)
    assert instrumented.stdout == "migrate force=True\n"
    help_text = tool.run("--help").stdout
    assert help_text.index("check") < help_text.index("migrate") < help_text.index("telemetry")
    day = next(iter(tool.counts()))[0]
    assert tool.counts() == {(day, "migrate", "success", "", ("--force",)): 1}
