"""Who ran the command: the agent table, hostile values, MCP client names, a real terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from typer_telemetry import _runner
from typer_telemetry._runner import (
    AGENT_VARIABLES,
    AGENTS,
    MCP_CLIENT_NAMES,
    RUNNERS,
    agent_from_client_name,
    agent_table_markdown,
    detect_runner,
)

ROOT = Path(__file__).resolve().parent.parent
RUNNER_SOURCE = Path(_runner.__file__).resolve()
VARIABLES = sorted({variable for variable, _, _ in AGENT_VARIABLES})
GENERIC = ("AGENT", "AI_AGENT")

ODD_VALUES = [
    "x y z",
    "  spaced  out  ",
    "ünïcødé 🤖 名前",
    "a" * 10_240,
    "line\nbreak\ttab",
    "\x1b[31mred\x1b[0m",
    "'; DROP TABLE events; --",
    "/home/alice/secret-project",
    "\udcff",  # an undecodable byte, as os.environ gives it
]


def detect(environ: dict[str, str], terminal: bool = False) -> tuple[str, str]:
    return detect_runner(environ, stdin_is_terminal=terminal, stderr_is_terminal=terminal)


# --- the table ------------------------------------------------------------------


def test_the_table_names_only_documented_agents_and_other_is_last() -> None:
    assert AGENTS[-1] == "other"
    assert len(set(AGENTS)) == len(AGENTS)
    for name in AGENTS:
        assert name.isascii()
        assert name == name.lower()
        assert not set(name) & set(" -")
    for variable, wanted, agent in AGENT_VARIABLES:
        assert agent in AGENTS
        assert variable.isupper() or "_" in variable
        assert wanted is None or wanted == wanted.strip().lower()
    for _, agent in MCP_CLIENT_NAMES:
        assert agent in AGENTS
        assert agent != "other"


def test_the_generic_conventions_are_checked_after_every_named_variable() -> None:
    """A named agent's variable beats AGENT / AI_AGENT, which everything inherits."""
    first_generic = min(
        index
        for index, (variable, wanted, _) in enumerate(AGENT_VARIABLES)
        if variable in GENERIC and wanted is None
    )
    assert all(variable in GENERIC for variable, _, _ in AGENT_VARIABLES[first_generic:])


@pytest.mark.parametrize(("variable", "wanted", "agent"), AGENT_VARIABLES)
@pytest.mark.parametrize("terminal", [True, False])
def test_every_row_of_the_table_names_its_agent(
    variable: str, wanted: str | None, agent: str, terminal: bool
) -> None:
    value = wanted if wanted is not None else "some-session-id-1234"
    assert detect({variable: value}, terminal) == ("agent", agent)


@pytest.mark.parametrize(
    ("variable", "wanted", "agent"),
    [row for row in AGENT_VARIABLES if row[1] is not None and row[0] not in GENERIC],
)
def test_a_flag_variable_with_another_value_is_not_that_agent(
    variable: str, wanted: str, agent: str
) -> None:
    """CLAUDECODE=0 is not Claude Code: a flag counts only with the value agents set."""
    assert detect({variable: wanted + "-not"}, True) == ("terminal", "")
    assert detect({variable: "0"}, False) == ("script", "")


@pytest.mark.parametrize("variable", ["CLAUDECODE", "GEMINI_CLI", "AGENT", "CODEX_THREAD_ID"])
def test_the_value_is_compared_without_case_or_surrounding_blanks(variable: str) -> None:
    wanted = {"CLAUDECODE": " 1 ", "GEMINI_CLI": "1\n", "AGENT": " AMP ", "CODEX_THREAD_ID": "x"}
    runner, agent = detect({variable: wanted[variable]})
    assert runner == "agent"
    assert agent != "other"


@pytest.mark.parametrize("variable", GENERIC)
@pytest.mark.parametrize(
    "value", ["somethingelse", "1", "true", "my-internal-bot@2.0", "devin@1", "v0", "An Agent"]
)
def test_an_agent_signalled_generically_but_not_known_is_other(variable: str, value: str) -> None:
    assert detect({variable: value}, True) == ("agent", "other")


@pytest.mark.parametrize(
    ("value", "agent"),
    [
        ("claude-code", "claude_code"),
        ("claude_code@2", "claude_code"),
        ("Cursor", "cursor"),
        ("gemini-cli", "gemini_cli"),
        ("codex@1.2.3", "codex"),
        ("goose", "goose"),
    ],
)
@pytest.mark.parametrize("variable", GENERIC)
def test_a_generic_variable_naming_a_known_agent_names_it(
    variable: str, value: str, agent: str
) -> None:
    assert detect({variable: value}) == ("agent", agent)


@pytest.mark.parametrize("variable", VARIABLES)
def test_an_empty_or_blank_variable_is_not_set(variable: str) -> None:
    for value in ("", " ", "\t\n"):
        assert detect({variable: value}, True) == ("terminal", "")
        assert detect({variable: value}, False) == ("script", "")


@pytest.mark.parametrize("variable", VARIABLES)
@pytest.mark.parametrize("value", ODD_VALUES)
def test_odd_values_never_leak_into_the_result(variable: str, value: str) -> None:
    runner, agent = detect({variable: value}, True)
    assert runner in RUNNERS
    assert agent in (*AGENTS, "")
    assert value not in (runner, agent) or value in AGENTS


@settings(max_examples=300, deadline=None)
@given(
    environ=st.dictionaries(
        st.sampled_from([*VARIABLES, "PATH", "TERM_PROGRAM", "CURSOR_TRACE_ID"]),
        st.text(max_size=300),
    ),
    stdin=st.booleans(),
    stderr=st.booleans(),
)
def test_whatever_the_environment_holds_the_result_is_one_of_the_documented_names(
    environ: dict[str, str], stdin: bool, stderr: bool
) -> None:
    runner, agent = detect_runner(environ, stdin_is_terminal=stdin, stderr_is_terminal=stderr)
    assert runner in RUNNERS
    if runner == "agent":
        assert agent in AGENTS
    else:
        assert agent == ""
        assert runner == ("terminal" if stdin and stderr else "script")


# --- order and what does not count ----------------------------------------------


@pytest.mark.parametrize(
    ("environ", "agent"),
    [
        # A terminal agent started from an editor's agent terminal: the terminal agent.
        ({"COPILOT_AGENT": "1", "CLAUDECODE": "1"}, "claude_code"),
        ({"CLINE_ACTIVE": "true", "GEMINI_CLI": "1"}, "gemini_cli"),
        ({"AI_AGENT": "github_copilot_vscode_agent", "CODEX_THREAD_ID": "t"}, "codex"),
        # A named variable beats the generic conventions.
        ({"AGENT": "somethingelse", "GOOSE_TERMINAL": "1"}, "goose"),
        ({"AI_AGENT": "my-bot", "CURSOR_AGENT": "1"}, "cursor"),
        ({"AGENT": "amp", "AI_AGENT": "crush"}, "crush"),
        # Table order between terminal agents.
        ({"CLAUDECODE": "1", "CODEX_SANDBOX": "seatbelt"}, "claude_code"),
        ({"QWEN_CODE": "1", "GEMINI_CLI": "1"}, "qwen_code"),
    ],
)
def test_when_several_agents_are_set_the_documented_order_decides(
    environ: dict[str, str], agent: str
) -> None:
    assert detect(environ, True) == ("agent", agent)


@pytest.mark.parametrize(
    "environ",
    [
        {"CURSOR_TRACE_ID": "abc"},
        {"TERM_PROGRAM": "vscode", "GIT_PAGER": "cat"},
        {"TERM_PROGRAM": "zed", "PAGER": "cat"},
        {"CODEIUM_EDITOR_APP_ROOT": "/opt/windsurf"},
        {"REPL_ID": "x"},
        {"CODEX_HOME": "/home/alice/.codex"},
        {"CLAUDE_CONFIG_DIR": "/home/alice/.claude"},
        {"GOOSE_PROVIDER": "openai"},
        {"CI": "true"},
    ],
)
def test_what_an_editor_sets_for_every_terminal_or_a_person_configures_is_not_an_agent(
    environ: dict[str, str],
) -> None:
    """These are set for people too (an editor's own terminal, a user's config)."""
    assert detect(environ, True) == ("terminal", "")


@pytest.mark.parametrize(
    ("stdin", "stderr", "runner"),
    [
        (True, True, "terminal"),
        (True, False, "script"),
        (False, True, "script"),
        (False, False, "script"),
    ],
)
def test_a_terminal_needs_both_stdin_and_stderr_on_one(
    stdin: bool, stderr: bool, runner: str
) -> None:
    assert detect_runner({}, stdin_is_terminal=stdin, stderr_is_terminal=stderr) == (runner, "")


def test_the_environment_mapping_is_only_read() -> None:
    environ = {"CLAUDECODE": "1", "AGENT": "x"}
    detect(environ)
    assert environ == {"CLAUDECODE": "1", "AGENT": "x"}


# --- MCP clients ----------------------------------------------------------------


def spellings(name: str) -> list[str]:
    return [
        name,
        name.upper(),
        name.lower(),
        name.title(),
        name.replace("-", " "),
        name.replace(" ", "-"),
        name.replace("-", "_").replace(" ", "_"),
        f"  {name}  ",
    ]


@pytest.mark.parametrize(("client", "agent"), MCP_CLIENT_NAMES)
def test_every_known_mcp_client_maps_to_its_agent_in_any_spelling(client: str, agent: str) -> None:
    for spelling in spellings(client):
        assert agent_from_client_name(spelling) == agent, spelling


@pytest.mark.parametrize(
    ("client", "agent"),
    [
        ("claude-ai", "claude_desktop"),
        ("cursor-vscode", "cursor"),
        ("Visual Studio Code", "copilot"),
        ("Visual-Studio-Code", "copilot"),
        ("visual studio code - insiders", "copilot"),
        ("CLAUDE-CODE", "claude_code"),
        ("Roo-Code", "roo_code"),
    ],
)
def test_the_client_names_real_clients_send_are_recognised(client: str, agent: str) -> None:
    assert agent_from_client_name(client) == agent


@pytest.mark.parametrize(
    "name",
    [
        "my-own-client",
        "mcp-inspector",
        "cursor-vscode-fork",
        "claude",
        "Visual Studio",
        "ünïcødé 🤖",
        "/home/alice/secret",
        "x" * 200,
    ],
)
def test_an_unknown_client_is_other_and_never_its_own_text(name: str) -> None:
    assert agent_from_client_name(name) == "other"


@pytest.mark.parametrize(
    "name",
    [None, 42, 1.5, b"cursor-vscode", ["cursor-vscode"], {"name": "cursor-vscode"}, "", "   "],
)
def test_a_missing_or_wrongly_typed_client_name_is_other(name: object) -> None:
    assert agent_from_client_name(name) == "other"


def test_an_overlong_client_name_is_other_even_if_it_would_match() -> None:
    assert agent_from_client_name("cursor-vscode" + " " * 300) == "other"
    assert agent_from_client_name("a" * 10_240) == "other"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=400), st.binary(max_size=50), st.integers(), st.none()))
def test_whatever_a_client_sends_the_result_is_a_documented_agent(name: object) -> None:
    agent = agent_from_client_name(name)
    assert agent in AGENTS


# --- the generated table in the documentation -------------------------------------


def test_the_agent_table_has_a_row_per_agent_naming_every_variable_and_client() -> None:
    table = agent_table_markdown()
    lines = table.splitlines()
    assert len(lines) == 2 + len(AGENTS)
    for agent, line in zip(AGENTS, lines[2:], strict=True):
        assert line.startswith(f"| `{agent}` |")
    for variable, wanted, _ in AGENT_VARIABLES:
        assert (f"`{variable}`" if wanted is None else f"`{variable}={wanted}`") in table
    for client, _ in MCP_CLIENT_NAMES:
        assert f"`{client}`" in table


def test_the_documentation_shows_the_current_agent_table() -> None:
    """docs/signals.md pastes `agent_table_markdown()`; regenerate it when the table changes."""
    page = (ROOT / "docs" / "signals.md").read_text(encoding="utf-8")
    assert agent_table_markdown() in page


# --- a real terminal ------------------------------------------------------------

CHILD = """
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("runner", sys.argv[1])
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)
result = runner.detect_runner(
    os.environ, stdin_is_terminal=sys.stdin.isatty(), stderr_is_terminal=sys.stderr.isatty()
)
with open(sys.argv[2], "w") as out:
    out.write(" ".join(result).strip())
"""


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any agent's variable (the suite may run under one)."""
    environment = {name: value for name, value in os.environ.items() if name not in VARIABLES}
    environment.update(extra)
    return environment


def run_child(
    tmp_path: Path, *, stdin_on_terminal: bool, stderr_on_terminal: bool, **extra: str
) -> str:
    """Run the child with stdin and/or stderr on the slave side of a real pseudo-terminal."""
    out = tmp_path / "result.txt"
    master, slave = os.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(RUNNER_SOURCE), str(out)],
            stdin=slave if stdin_on_terminal else subprocess.PIPE,
            stderr=slave if stderr_on_terminal else subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            input=None,
            env=child_environment(**extra),
            timeout=60,
            check=False,
        )
    finally:
        os.close(slave)
        os.close(master)
    assert result.returncode == 0, result.stderr
    return out.read_text()


def test_a_real_terminal_is_a_terminal_and_pipes_are_a_script(tmp_path: Path) -> None:
    assert run_child(tmp_path, stdin_on_terminal=True, stderr_on_terminal=True) == "terminal"
    assert run_child(tmp_path, stdin_on_terminal=False, stderr_on_terminal=False) == "script"


def test_a_terminal_on_one_side_only_is_a_script(tmp_path: Path) -> None:
    """`tool < input.txt` at a prompt, or a hook that keeps only stdin: not typed by a person."""
    assert run_child(tmp_path, stdin_on_terminal=True, stderr_on_terminal=False) == "script"
    assert run_child(tmp_path, stdin_on_terminal=False, stderr_on_terminal=True) == "script"


def test_an_agent_at_a_real_terminal_is_the_agent(tmp_path: Path) -> None:
    """Agents often run commands in a pseudo-terminal: their variable still decides."""
    output = run_child(tmp_path, stdin_on_terminal=True, stderr_on_terminal=True, CLAUDECODE="1")
    assert output == "agent claude_code"
    output = run_child(tmp_path, stdin_on_terminal=True, stderr_on_terminal=True, AGENT="zz-bot")
    assert output == "agent other"
