"""A tool's contract from its code: `tool_schema`, its own TELEMETRY.md, `python -m typer_telemetry`.

The contract must list exactly what the hook can record: the tests run the
tools as real processes with every option the contract lists, in a clean
home, and compare what was recorded with what the contract says.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.conftest import ROOT, TOOLS, Tool, clean_environment, tool_script
from typer_telemetry import Telemetry, _contract
from typer_telemetry._contract import (
    NoCommands,
    check_telemetry_md,
    telemetry_md,
    tool_schema,
)
from typer_telemetry._telemetry import _INSTRUMENTED_BY

EXAMPLES = ROOT / "examples"


def python_m(
    home: Path, *arguments: str, cwd: Path = TOOLS, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m typer_telemetry ...` as a real process, in a clean home."""
    return subprocess.run(
        [sys.executable, "-m", "typer_telemetry", *arguments],
        env=clean_environment(home, env),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def schema_of(home: Path, target: str, cwd: Path = TOOLS, **env: str) -> dict[str, Any]:
    result = python_m(home, "schema", target, "--json", cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


def commands_of(document: dict[str, Any]) -> dict[str, list[str]]:
    return {command["path"]: command["options"] for command in document["commands"]}


def load_tool_module(name: str) -> Any:
    """The tool's module, imported in this process under a name of its own."""
    spec = importlib.util.spec_from_file_location(f"contract_test_{name}", tool_script(name))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the cross-check: what the contract lists is what a run records ------------------


def _argv_sides(module: Any, path: str) -> list[list[str]]:
    """Command lines giving every option of every level of `path`: the on sides, then the off sides.

    Built from Click's own view of the declared parameters (not from the
    contract), so an option the contract leaves out shows up as recorded.
    The attributes read are the same in Click and in Typer's vendored copy.
    """
    root = typer.main.get_command(module.app)
    levels = [root]
    context = root.context_class(root, info_name="tool")
    contexts = [context]
    for name in path.split(" ") if path else []:
        command = levels[-1].get_command(contexts[-1], name)
        assert command is not None, name
        levels.append(command)
        contexts.append(command.context_class(command, info_name=name, parent=contexts[-1]))
    sides = []
    for side in ("on", "off"):
        argv: list[str] = []
        for depth, command in enumerate(levels):
            if depth:
                argv.append(path.split(" ")[depth - 1])
            for parameter in command.params:
                if parameter.param_type_name != "option" or parameter.name in (
                    "install_completion",
                    "show_completion",
                ):
                    continue
                names = parameter.secondary_opts if side == "off" else parameter.opts
                if not names:
                    names = parameter.opts or parameter.secondary_opts
                argv.append(names[0])
                if not parameter.is_flag:
                    argv.append("1")
        sides.append(argv)
    return sides


def test_the_schema_lists_exactly_the_commands_and_options_a_run_records(home: Path) -> None:
    document = schema_of(home, "contract_tool:telemetry")
    listed = commands_of(document)
    module = load_tool_module("contract_tool")
    tool = Tool(tool_script("contract_tool"), home)
    leaves = [command["path"] for command in document["commands"] if not command["group"]]
    assert sorted(leaves) == ["db migrate", "db tables list", "db vacuum", "ingest", "lazy"]
    for path in leaves:
        for argv in _argv_sides(module, path):
            result = tool.run(*argv)
            assert result.returncode == 0, (argv, result.stderr)
    recorded: dict[str, set[str]] = {}
    for record in tool.pending():
        properties = record["properties"]
        assert isinstance(properties, dict)
        assert record["outcome"] == "success", record
        recorded.setdefault(properties["command"], set()).update(properties["flags"])
    assert sorted(recorded) == sorted(leaves)
    for path in leaves:
        # Every flag recorded is listed, and every listed flag was recorded.
        assert recorded[path] == set(listed[path]), path
    assert listed["db migrate"] == [
        "--force",
        "--no-reload",
        "--profile",
        "--reload",
        "--secret-mode",
        "--to",
        "--verbose",
        "-q",
    ]
    ingest = next(command for command in document["commands"] if command["path"] == "ingest")
    assert ingest["options_left_out"] == ["--naïve"]


def test_hidden_lazy_nested_and_outside_the_schema_commands_are_all_described(home: Path) -> None:
    document = schema_of(home, "contract_tool:telemetry")
    by_path = {command["path"]: command for command in document["commands"]}
    assert by_path["db vacuum"]["hidden"] is True
    assert by_path["lazy"]["options"] == ["--deep", "--verbose"]  # built only when asked
    assert by_path["db tables"]["group"] is True
    assert by_path[""]["options"] == ["--verbose"]
    # The telemetry group is never recorded, so never listed; help and completion neither.
    assert not any(path.startswith("telemetry") for path in by_path)
    assert not any(
        flag in ("--help", "-h", "--install-completion", "--show-completion")
        for command in document["commands"]
        for flag in command["options"]
    )
    assert document["dropped_commands"] == ["grüße"]
    tool = Tool(tool_script("contract_tool"), home)
    assert tool.run("grüße").returncode == 0
    assert tool.pending() == []  # only counted as dropped, as the contract says


def test_a_custom_group_class_with_aliases_lists_each_command_once(home: Path) -> None:
    document = schema_of(home, "custom_group_tool:app")
    assert commands_of(document) == {"": [], "check": [], "migrate": ["--force"]}
    tool = Tool(tool_script("custom_group_tool"), home)
    assert tool.run("m", "-f").returncode == 0
    assert [record["properties"] for record in tool.pending()] == [
        {"command": "migrate", "flags": ["--force"]}
    ]


def test_a_one_command_app_is_described_as_the_root_command_it_runs(home: Path) -> None:
    document = schema_of(home, "single_tool:app")
    assert commands_of(document) == {"": ["--loud"]}
    tool = Tool(tool_script("single_tool"), home)
    assert tool.run("ann", "-l").returncode == 0
    assert [record["properties"] for record in tool.pending()] == [
        {"command": "", "flags": ["--loud"]}
    ]


def test_telemetry_run_tools_describe_themselves_through_telemetry_schema(home: Path) -> None:
    tool = Tool(tool_script("typer_run_tool"), home)
    result = tool.run("telemetry", "schema", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert commands_of(document) == {"": ["--loud"]}
    assert document["tool"] == "typer-run-tool"


@pytest.mark.parametrize(
    ("mount", "group_name", "command"),
    [
        ("instrument", "privacy", "named-group-tool privacy"),
        ("sub-app", "", "named-group-tool admin telemetry"),
        ("before", "", "named-group-tool privacy"),
        ("none", "", None),
    ],
)
def test_the_notice_and_commands_name_where_the_telemetry_group_is(
    home: Path, mount: str, group_name: str, command: str | None
) -> None:
    document = schema_of(
        home, "named_group_tool:telemetry", TOOL_MOUNT=mount, TOOL_GROUP_NAME=group_name
    )
    assert document["telemetry_command"] == command
    opt_out = f"{command} disable or " if command else ""
    assert document["notice"].endswith(f"Opt out: {opt_out}NAMED_GROUP_TOOL_TELEMETRY=0.")
    paths = set(commands_of(document))
    assert paths == ({"", "admin", "bye", "greet"} if mount == "sub-app" else {"", "bye", "greet"})
    # What the tool itself prints first is what the contract says.
    tool = Tool(tool_script("named_group_tool"), home)
    result = tool.run("bye", env={"TOOL_MOUNT": mount, "TOOL_GROUP_NAME": group_name})
    assert document["notice"] in result.stderr


def test_the_warehouse_example_lists_its_events_with_all_three_field_kinds(home: Path) -> None:
    document = schema_of(home, "warehouse:telemetry", cwd=EXAMPLES)
    assert document["events"] == {
        "connection_test": {
            "fields": {
                "driver": {"kind": "choice", "values": ["postgres", "sqlite", "snowflake", "other"]}
            }
        },
        "ingest_completed": {
            "fields": {
                "demo": {"kind": "flag", "values": [True, False]},
                "driver": {
                    "kind": "choice",
                    "values": ["postgres", "sqlite", "snowflake", "other"],
                },
                "table_count": {
                    "kind": "bucket",
                    "bounds": [10, 100, 1000],
                    "values": ["<10", "10-100", "100-1000", "1000+"],
                },
            }
        },
    }
    assert document["signals"] == ["project", "runner"]
    assert sorted(document["added_properties"]) == ["agent", "project_id", "runner"]
    assert commands_of(document) == {
        "": [],
        "check": [],
        "ingest": ["--demo", "--tables"],
        "sync": [],
    }


def test_the_json_document_has_every_key_sorted_and_no_machine_detail(home: Path) -> None:
    result = python_m(home, "schema", "contract_tool:telemetry", "--json")
    text = result.stdout
    document = json.loads(text)
    assert text == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n"
    assert sorted(document) == [
        "added_properties",
        "command_properties",
        "commands",
        "consent",
        "destination",
        "dropped_commands",
        "envelope_fields",
        "events",
        "format",
        "notice",
        "outcomes",
        "record_fields",
        "sample_rate",
        "schema_version",
        "signals",
        "telemetry_command",
        "tool",
        "tool_version",
        "variables",
        "version",
    ]
    assert document["format"] == "typer-telemetry-schema"
    assert document["version"] == 1
    assert document["schema_version"] == 2
    assert document["destination"] == {
        "kind": "http",
        "address": "https://t.example.com/v1",
        "class": None,
    }
    assert document["variables"]["switch"] == "CONTRACT_TOOL_TELEMETRY"
    paths = [command["path"] for command in document["commands"]]
    assert paths == sorted(paths)
    for command in document["commands"]:
        assert command["options"] == sorted(command["options"])
    assert str(home) not in text


# -- the tool's own TELEMETRY.md ---------------------------------------------------------


def test_docs_names_the_tool_its_variables_notice_commands_and_events(home: Path) -> None:
    result = python_m(home, "docs", "contract_tool:telemetry")
    assert result.returncode == 0, result.stderr
    markdown = result.stdout
    document = schema_of(home, "contract_tool:telemetry")
    assert markdown.startswith("# Telemetry in contract-tool\n")
    for text in (
        "CONTRACT_TOOL_TELEMETRY=0",
        "CONTRACT_TOOL_TELEMETRY_DISABLED=1",
        "CONTRACT_TOOL_TELEMETRY_ENDPOINT",
        "`contract-tool telemetry disable` / `contract-tool telemetry enable`",
        document["notice"],
        "| `db migrate` | `--force`, `--no-reload`, `--profile`, `--reload`, `--secret-mode`,"
        " `--to`, `--verbose`, `-q` |",
        "| `lazy` | `--deep`, `--verbose` |",
        "### `batch_done`",
        "| `size` | number range | `<1`, `1-10`, `10+` |",
        "| `retried` | true or false | `true`, `false` |",
        "https://t.example.com/v1",
        "`grüße`",
        "https://pypi.org/project/typer-telemetry/",
        "`~/.config/contract-tool/telemetry.toml`",
        "`~/Library/Application Support/contract-tool/telemetry/`",
        "`%LOCALAPPDATA%\\contract-tool\\telemetry.toml`",
    ):
        assert text in markdown, text
    assert "mytool" not in markdown
    assert "MYTOOL" not in markdown
    assert "Nothing: contract-tool turned on none of the optional signals" in markdown


def test_docs_is_the_same_in_two_runs_and_two_homes(tmp_path: Path) -> None:
    outputs = []
    for name in ("one", "two"):
        home = tmp_path / name
        home.mkdir()
        for _ in range(2):
            result = python_m(home, "docs", "warehouse:telemetry", cwd=EXAMPLES)
            assert result.returncode == 0, result.stderr
            assert str(home) not in result.stdout
            outputs.append(result.stdout)
    assert len(set(outputs)) == 1


def test_docs_check_exits_0_when_current_and_1_with_the_diff_when_not(home: Path) -> None:
    written = home / "TELEMETRY.md"
    written.write_text(python_m(home, "docs", "contract_tool:telemetry").stdout)
    current = python_m(home, "docs", "contract_tool:telemetry", "--check", str(written))
    assert current.returncode == 0, current.stderr
    assert current.stdout == ""
    written.write_text(written.read_text().replace("`--deep`, ", ""))
    stale = python_m(home, "docs", "contract_tool:telemetry", "--check", str(written))
    assert stale.returncode == 1
    assert stale.stdout == ""
    assert "+| `lazy` | `--deep`, `--verbose` |" in stale.stderr
    assert "-| `lazy` | `--verbose` |" in stale.stderr
    assert f"python -m typer_telemetry docs contract_tool:telemetry > {written}" in stale.stderr
    assert "Traceback" not in stale.stderr
    missing = python_m(home, "docs", "contract_tool:telemetry", "--check", str(home / "nope.md"))
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr


def test_the_diff_is_cut_to_forty_lines(home: Path, tmp_path: Path) -> None:
    module = load_tool_module("contract_tool")
    written = tmp_path / "TELEMETRY.md"
    written.write_text("an old page\n" * 200)
    problem = check_telemetry_md(module.telemetry, written)
    assert problem is not None
    shown = [line for line in problem.splitlines() if line[:1] in "+- @"]
    assert len(shown) <= _contract.DIFF_LINES
    assert "more lines" in problem
    written.write_text(telemetry_md(module.telemetry))
    assert check_telemetry_md(module.telemetry, written) is None


# -- bad targets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module:telemetry", "no module named 'no_such_module'"),
        ("contract_tool:nothing_here", "has no attribute 'nothing_here'"),
        ("contract_tool:batch", "not a Telemetry object"),
        ("contract_tool", ""),  # one Telemetry object: found without naming it
        ("broken_tool:telemetry", "importing 'broken_tool' failed: RuntimeError: broken"),
        ("exiting_tool:telemetry", "exited"),
        ("bare_tool:telemetry", "instruments no app"),
        ("bare_tool:app", "no Telemetry object instruments"),
        (":telemetry", "the module is missing"),
    ],
)
def test_a_bad_target_is_one_line_on_stderr_and_exit_2(
    home: Path, target: str, message: str
) -> None:
    (home / "broken_tool.py").write_text("raise RuntimeError('broken\\nsecond line')\n")
    (home / "exiting_tool.py").write_text("import sys\nsys.exit(3)\n")
    (home / "bare_tool.py").write_text(
        "import typer\nfrom typer_telemetry import Telemetry\n"
        "app = typer.Typer()\ntelemetry = Telemetry('bare', version='1')\n"
    )
    for command in ("docs", "schema"):
        result = python_m(home, command, target, cwd=home, env={"PYTHONPATH": str(TOOLS)})
        if not message:
            assert result.returncode == 0, result.stderr
            continue
        assert result.returncode == 2, result
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert message in result.stderr


def test_importing_the_target_records_nothing(home: Path) -> None:
    """The module may run code at import; nothing of `python -m typer_telemetry` is a use of it."""
    (home / "eager_tool.py").write_text(
        "import typer\nfrom typer_telemetry import Telemetry\n"
        "app = typer.Typer()\ntelemetry = Telemetry('eager-tool', version='1')\n"
        "telemetry.instrument(app)\n"
        "@app.command()\ndef go() -> None: pass\n"
        "@app.command()\ndef stop() -> None: pass\n"
        "app(['go'], standalone_mode=False)\n"
    )
    result = python_m(home, "docs", "eager_tool:telemetry", cwd=home)
    assert result.returncode == 0, result.stderr
    assert not (home / ".config" / "eager-tool").exists()
    assert not (home / ".local" / "state" / "eager-tool").exists()


# -- in this process ---------------------------------------------------------------------


def test_a_telemetry_object_without_an_app_refuses_to_describe_commands() -> None:
    telemetry = Telemetry("lonely", version="1.0")
    with pytest.raises(NoCommands, match=r"telemetry.instrument\(app\)"):
        tool_schema(telemetry)
    with pytest.raises(NoCommands):
        telemetry_md(telemetry)


def test_opt_in_signals_and_sampling_are_stated_and_only_those_turned_on() -> None:
    app = typer.Typer()

    @app.command()
    def one() -> None: ...

    @app.command()
    def two() -> None: ...

    telemetry = Telemetry(
        "sampled", version="1.0", consent="opt-in", signals=("project",), sample_rate=0.25
    )
    telemetry.instrument(app, mount=False)
    document = tool_schema(telemetry)
    assert document["consent"] == "opt-in"
    assert document["telemetry_command"] is None
    assert document["notice"].endswith("Opt out: SAMPLED_TELEMETRY=0.")
    assert document["added_properties"] == {
        "project_id": {"kind": "hash", "pattern": "^[0-9a-f]{32}$"},
        "sample_rate": {"kind": "number", "values": [0.25]},
    }
    markdown = telemetry_md(telemetry)
    assert "Telemetry is **off** until you turn it on (`SAMPLED_TELEMETRY=1`)." in markdown
    assert "(none: sampled offers no telemetry commands)" in markdown
    assert "**which project** (`project_id`)" in markdown
    assert "(0.25, decided once per run)" in markdown
    assert "**who ran the command**" not in markdown
    assert "sampled configures no destination: nothing is sent" in markdown


def test_a_custom_back_end_is_named_by_its_class() -> None:
    class Vault:
        def send(self, batch: object, *, timeout: float) -> None: ...

        def request_deletion(self, *args: object, **kwargs: object) -> None: ...

    app = typer.Typer()

    @app.command()
    def run() -> None: ...

    telemetry = Telemetry("vaulted", version="1.0", backend=Vault())
    telemetry.instrument(app)
    assert tool_schema(telemetry)["destination"] == {
        "kind": "custom",
        "address": None,
        "class": "Vault",
    }


def test_the_instrumented_marker_is_the_one_instrument_sets() -> None:
    assert _contract.INSTRUMENTED_BY == _INSTRUMENTED_BY


def test_a_group_that_contains_itself_is_refused_rather_than_walked_forever() -> None:
    from typer.core import TyperGroup

    class Mirror(TyperGroup):
        def list_commands(self, ctx: Any) -> list[str]:
            return ["a", "b", "c"]

        def get_command(self, ctx: Any, name: str) -> Any:
            return Mirror(name=name)  # a new group each time: 3 ** depth paths

    app = typer.Typer(cls=Mirror)

    @app.command()
    def one() -> None: ...

    @app.command()
    def two() -> None: ...

    telemetry = Telemetry("mirror", version="1.0")
    telemetry.instrument(app, mount=False)
    with pytest.raises(ValueError, match="does a group list itself"):
        tool_schema(telemetry)


def test_docs_is_utf_8_with_plain_newlines_whatever_the_console_encoding(home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "typer_telemetry", "docs", "contract_tool:telemetry"],
        env=clean_environment(home, {"PYTHONIOENCODING": "ascii"}),
        capture_output=True,
        cwd=TOOLS,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "`grüße`".encode() in result.stdout
    assert b"\r" not in result.stdout


def test_a_copy_checked_out_with_windows_line_endings_is_current(tmp_path: Path) -> None:
    module = load_tool_module("contract_tool")
    written = tmp_path / "TELEMETRY.md"
    written.write_bytes(telemetry_md(module.telemetry).replace("\n", "\r\n").encode())
    assert check_telemetry_md(module.telemetry, written) is None


def _consent_rows(markdown: str) -> list[str]:
    """The first cells of the consent table (under "## Turning it off"), in order."""
    section = markdown.split("## Turning it off", 1)[1].split("\n## ", 1)[0]
    return [
        line.split("|")[2].strip()
        for line in section.splitlines()
        if line.startswith("| ") and line.split("|")[1].strip().isdigit()
    ]


def test_a_tools_consent_table_has_the_rows_of_the_library_telemetry_md() -> None:
    app = typer.Typer()

    @app.command()
    def hello() -> None: ...

    telemetry = Telemetry("mytool", version="1.0")
    telemetry.instrument(app)

    generated = _consent_rows(telemetry_md(telemetry))
    documented = _consent_rows((ROOT / "TELEMETRY.md").read_text(encoding="utf-8"))

    assert len(generated) == len(documented) == 9
    for tool_row, library_row in zip(generated, documented, strict=True):
        variables = {word for word in library_row.split("`")[1::2] if "_" in word}
        assert variables <= set(tool_row.split("`")[1::2]), (tool_row, library_row)
