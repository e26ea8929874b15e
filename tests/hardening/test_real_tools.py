"""The hook on tools built the way real ones are, and invocations the schema cannot hold as they are.

tests/tools/real_tool.py builds commands lazily (Click's LazyGroup pattern,
groups inside lazily made groups), has on/off options, calls itself from
inside a command, declares its own `--help`, and has commands that are too
deep, too wide or badly named for the schema. Every case runs as a real
process in its own home; what was recorded is read back with `telemetry
status --json`, as a user would.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.conftest import RecordKey, Tool, enter_clean_environment, tool_script
from tests.hardening.conftest import Reliability, assert_unchanged_by_telemetry

AREA = "Hook"
REAL_TOOL = tool_script("real_tool")


@pytest.fixture
def real_tool(home: Path) -> Tool:
    return Tool(REAL_TOOL, home)


def counts_of(tool: Tool) -> tuple[str, dict[RecordKey, int]]:
    """The day the records are under, and the records keyed without it."""
    counts = tool.counts()
    days = {key[0] for key in counts}
    assert len(days) == 1, counts
    return days.pop(), counts


def without_day(counts: dict[RecordKey, int]) -> dict[tuple[object, ...], int]:
    return {key[1:]: count for key, count in counts.items()}


def test_lazily_built_commands_are_recorded_with_the_path_and_options_click_resolved(
    real_tool: Tool, reliability: Reliability
) -> None:
    cases = [
        ("lazy-hello", "Ann", "-l"),
        ("-v", "lazy-hello", "Bob"),
        ("lazy-db", "migrate", "-f"),
        ("lazy-db", "-u", "postgres://secret", "migrate"),
        ("lazy-db", "-u", "x", "remote", "-t", "3", "push", "-n"),
        ("lazy-db", "remote", "push"),
        ("lazy-db", "remote", "push", "--bogus"),
        ("lazy-db", "remote", "nosuch"),
        ("lazy-db", "remote", "push", "--help"),
    ]
    for arguments in cases:
        assert_unchanged_by_telemetry(real_tool, *arguments)
    _day, counts = counts_of(real_tool)
    no_such_command = next(
        (key[3] for key in counts if key[1] == "lazy-db remote" and key[2] == "usage_error"),
        "NoSuchCommand",
    )
    assert no_such_command in ("NoSuchCommand", "UsageError")
    assert without_day(counts) == {
        ("lazy-hello", "success", "", ("--loud",)): 1,
        ("lazy-hello", "success", "", ("--verbose",)): 1,
        ("lazy-db migrate", "success", "", ("--force",)): 1,
        ("lazy-db migrate", "success", "", ("--url",)): 1,
        ("lazy-db remote push", "success", "", ("--dry-run", "--timeout", "--url")): 1,
        ("lazy-db remote push", "success", "", ()): 1,
        ("lazy-db remote push", "usage_error", "NoSuchOption", ()): 1,
        ("lazy-db remote", "usage_error", no_such_command, ()): 1,
    }
    reliability.record(
        AREA,
        "commands built on demand while parsing (a group whose get_command builds them, "
        "a lazily built group inside a lazily built group, three levels), with options at "
        "every level, usage errors and --help on the lazily built leaf",
        len(cases),
        "recorded with the command path and options Click resolved, at every depth; "
        "--help not recorded; output and exit code as without the library",
    )


def test_an_on_off_option_is_recorded_under_the_name_the_user_chose(
    real_tool: Tool, reliability: Reliability
) -> None:
    cases = {
        ("serve", "--no-reload"): ("--no-reload",),
        ("serve", "-R"): ("--no-reload",),
        ("serve", "-r"): ("--reload",),
        ("serve", "--reload", "--accept"): ("--accept", "--reload"),
        ("serve", "--reject", "--no-color"): ("--no-color", "--reject"),
        ("serve", "--no-reload", "--reload"): ("--reload",),  # the last one given wins
        ("--no-quiet", "plain"): ("--no-quiet",),
        ("--quiet", "-v", "plain"): ("--quiet", "--verbose"),
        ("-v", "plain"): ("--verbose",),
    }
    for arguments in cases:
        assert_unchanged_by_telemetry(real_tool, *arguments)
    _day, counts = counts_of(real_tool)
    expected: dict[tuple[object, ...], int] = {}
    for arguments, flags in cases.items():
        key = (arguments[-1] if arguments[-1] == "plain" else "serve", "success", "", flags)
        expected[key] = expected.get(key, 0) + 1
    assert without_day(counts) == expected
    reliability.record(
        AREA,
        "on/off options (`--reload/--no-reload` with `-r/-R`, `--accept/--reject`, an off "
        "name alone, Typer's automatic `--no-<name>`), given by long or short name",
        len(cases),
        "recorded under the first long name of the side given (`--no-reload` for `-R`); "
        "never a value",
    )


def test_end_of_input_at_a_prompt_is_recorded_as_aborted(
    real_tool: Tool, reliability: Reliability
) -> None:
    result = assert_unchanged_by_telemetry(real_tool, "ask", input="")
    assert result.returncode == 1
    assert result.stdout.startswith("name")
    _day, counts = counts_of(real_tool)
    assert without_day(counts) == {("ask", "aborted", "EOFError", ()): 1}
    reliability.record(
        AREA,
        "end of input at a prompt (Typer prints Aborted!, exit status 1)",
        1,
        "recorded as aborted (EOFError), like a declined prompt",
    )


def test_only_the_outermost_invocation_in_a_process_is_recorded(
    real_tool: Tool, reliability: Reliability
) -> None:
    assert_unchanged_by_telemetry(real_tool, "again")
    assert_unchanged_by_telemetry(real_tool, "again-failing")
    _day, counts = counts_of(real_tool)
    assert without_day(counts) == {
        ("again", "success", "", ()): 1,
        ("again-failing", "success", "", ()): 1,
    }
    inner_store = real_tool.home / ".local" / "state" / "real-tool-inner"
    assert not inner_store.exists(), "the inner app recorded (or prepared to record)"

    # The outer invocation keeps its own SIGTERM handler through the inner ones.
    process = real_tool.popen("again", "--wait")
    assert process.stdout is not None
    while process.stdout.readline().strip() != "ready":
        pass
    process.send_signal(signal.SIGTERM)
    _stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM
    assert "sigterm handler set: True" in stderr
    _day, counts = counts_of(real_tool)
    assert without_day(counts)[("again", "aborted", "SIGTERM", ("--wait",))] == 1
    assert len(counts) == 3
    reliability.record(
        AREA,
        "a command that runs the app again (`app([...], standalone_mode=False)`, "
        "ctx.invoke, another instrumented app, an inner run that fails), then SIGTERM "
        "during it",
        3,
        "one record per user command, for the outermost invocation in the thread; the inner "
        "ones start no trigger and record nothing; SIGTERM still recorded as aborted",
    )


def test_a_help_request_through_an_option_the_command_declares_is_never_recorded(
    real_tool: Tool, reliability: Reliability
) -> None:
    not_recorded = [
        ("weasel-run", "--help"),
        ("weasel-run", "build", "--help"),
        ("short-help", "-h"),
        ("short-help", "--force", "-h"),
        ("h-help", "-h"),
        ("h-help", "--help"),
    ]
    recorded = [("weasel-run", "build"), ("short-help", "--force"), ("h-help",)]
    for arguments in not_recorded + recorded:
        assert_unchanged_by_telemetry(real_tool, *arguments)
    _day, counts = counts_of(real_tool)
    assert without_day(counts) == {
        ("weasel-run", "success", "", ()): 1,
        ("short-help", "success", "", ("--force",)): 1,
        ("h-help", "success", "", ()): 1,
    }
    reliability.record(
        AREA,
        "help asked through an option the command declares itself under a help option name "
        "(Click's help turned off and `--help` handled by the command, as weasel's `run`; "
        "help option names `-h` / `-h, --help`)",
        len(not_recorded),
        "not recorded, as --help never is; the same commands without it are recorded",
    )


def test_invocations_outside_the_schema_are_made_to_fit_or_counted_as_dropped(
    real_tool: Tool, reliability: Reliability
) -> None:
    forty = [f"--o{index:02d}" for index in range(40)]
    eight_deep = [f"l{level}" for level in range(1, 8)] + ["leaf"]
    nine_deep = [f"l{level}" for level in range(1, 9)] + ["leaf"]
    for arguments in (
        ["many", *forty],
        eight_deep,
        nine_deep,
        ["grüß"],
        ["two words"],
        ["fail-unicode"],
        ["fail-long"],
        ["odd-option", "--naïve", "--plain-one"],
    ):
        assert_unchanged_by_telemetry(real_tool, *arguments)
    day, counts = counts_of(real_tool)
    assert without_day(counts) == {
        ("many", "success", "", tuple(sorted(forty)[:32])): 1,
        (" ".join(eight_deep), "success", "", ()): 1,
        ("fail-unicode", "error", "__unrepresentable__", ()): 1,
        ("fail-long", "error", "__unrepresentable__", ()): 1,
        ("odd-option", "success", "", ("--plain-one",)): 1,
    }
    assert real_tool.status()["dropped"] == {day: 3}
    for path in real_tool.files():
        text = path.read_bytes().decode("utf-8", "replace")
        for outside in ("grüß", "two words", "Ошибка", "Exxxxxxxx", "l8 leaf", "--o32", "naïve"):
            assert outside not in text, (path, outside)
    reliability.record(
        AREA,
        "invocations the schema cannot hold as they are: 40 options at once, a command path "
        "9 deep, a non-ASCII command name, a name with a space, a non-ASCII and a "
        "121-character exception class name, a non-ASCII option name",
        8,
        "options: the first 32 names in sorted order kept, a name outside the schema left "
        "out; error class recorded as "
        "`__unrepresentable__`; command path outside the schema: counted as dropped for the "
        "day (shown by `status`); the text outside the schema is never stored",
        lost="the command path of an invocation whose path is outside the schema (counted)",
    )


def test_in_process_invocations_land_in_the_folders_of_the_home_they_ran_under(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reliability: Reliability
) -> None:
    import typer
    from typer.testing import CliRunner

    from typer_telemetry import Telemetry

    app = typer.Typer()

    @app.command()
    def hello(loud: bool = False) -> None:
        typer.echo("hello")

    @app.command()
    def bye() -> None:
        typer.echo("bye")

    telemetry = Telemetry("runner-tool", version="1.0")
    telemetry.instrument(app)
    runner = CliRunner()
    homes = [tmp_path / "first", tmp_path / "second"]
    for home, arguments in zip(homes, (["hello", "--loud"], ["bye"]), strict=True):
        home.mkdir()
        enter_clean_environment(monkeypatch, home)
        result = runner.invoke(app, arguments)
        assert result.exit_code == 0, result.output
    seen = []
    for home in homes:
        enter_clean_environment(monkeypatch, home)
        status = telemetry.status()
        assert str(status["data_dir"]).startswith(str(home))
        seen.append(
            [
                (record["properties"]["command"], record["properties"]["flags"])
                for record in status["pending"]
            ]
        )
    assert seen == [[("hello", ["--loud"])], [("bye", [])]]
    reliability.record(
        AREA,
        "one process, invocations under two HOMEs (CliRunner tests, one home per test)",
        2,
        "each invocation recorded in the folders of the home it ran under",
    )
