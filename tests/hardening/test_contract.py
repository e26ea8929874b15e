"""The tool's contract under bad targets and odd command trees (`python -m typer_telemetry`).

Each target is a real module in a real folder, loaded by a real
`python -m typer_telemetry` process in a clean home: whatever is wrong with
it, the answer is one line on stderr and exit code 2, never a traceback,
and nothing is recorded by importing it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TOOLS, clean_environment

MODULES = {
    "raising": "raise RuntimeError('no config\\nsecond line')\n",
    "exiting": "import sys\nsys.exit(3)\n",
    "interrupting": "raise KeyboardInterrupt\n",
    "bare": (
        "import typer\nfrom typer_telemetry import Telemetry\n"
        "app = typer.Typer()\ntelemetry = Telemetry('bare', version='1')\n"
    ),
    "two": (
        "from typer_telemetry import Telemetry\n"
        "one = Telemetry('one', version='1')\nother = Telemetry('other', version='1')\n"
    ),
    "running": (
        "import typer\nfrom typer_telemetry import Telemetry\n"
        "app = typer.Typer()\ntelemetry = Telemetry('running', version='1')\n"
        "telemetry.instrument(app)\n"
        "@app.command()\ndef go() -> None: pass\n"
        "@app.command()\ndef stop() -> None: pass\n"
        "app()\n"
    ),
    "failing_group": (
        "import typer\nfrom typer.core import TyperGroup\n"
        "from typer_telemetry import Telemetry\n"
        "class Plugins(TyperGroup):\n"
        "    def list_commands(self, ctx):\n"
        "        return [*super().list_commands(ctx), 'broken']\n"
        "    def get_command(self, ctx, name):\n"
        "        if name == 'broken':\n"
        "            raise ImportError('plugin broken\\nis missing')\n"
        "        return super().get_command(ctx, name)\n"
        "app = typer.Typer(cls=Plugins)\ntelemetry = Telemetry('failing', version='1')\n"
        "telemetry.instrument(app)\n"
        "@app.command()\ndef go() -> None: pass\n"
        "@app.command()\ndef stop() -> None: pass\n"
    ),
    "chatty": (
        "import sys, typer\nfrom typer_telemetry import Telemetry\n"
        "print('loading plugins...')\nprint('warning: old config', file=sys.stderr)\n"
        "app = typer.Typer()\ntelemetry = Telemetry('chatty', version='1')\n"
        "telemetry.instrument(app)\n"
        "@app.command()\ndef go() -> None: pass\n"
    ),
}

BAD_TARGETS = [
    ("", "give the tool as MODULE:ATTRIBUTE"),
    ("missing_module:telemetry", "no module named 'missing_module'"),
    ("raising:telemetry", "importing 'raising' failed: RuntimeError: no config"),
    ("exiting:telemetry", "exited (code 3)"),
    ("bare:nothing", "has no attribute 'nothing'"),
    ("bare:typer", "is a module, not a Telemetry object"),
    ("bare:telemetry", "instruments no app"),
    ("bare:app", "no Telemetry object instruments"),
    ("bare", "instruments no app"),
    ("two", "holds 2 Telemetry objects (one, other)"),
    ("running:telemetry", "exited"),
    ("named_group_tool:telemetry", "mounted a second time"),
    ("failing_group:telemetry", "telemetry: plugin broken"),
]


@pytest.mark.parametrize(("target", "message"), BAD_TARGETS)
def test_a_target_that_cannot_be_described_is_one_line_and_exit_2(
    home: Path, target: str, message: str, reliability: object
) -> None:
    for name, text in MODULES.items():
        (home / f"{name}.py").write_text(text)
    for command in (["docs"], ["schema", "--json"], ["docs", "--check", "TELEMETRY.md"]):
        result = subprocess.run(
            [sys.executable, "-m", "typer_telemetry", command[0], target, *command[1:]],
            env=clean_environment(home, {"PYTHONPATH": str(TOOLS), "TOOL_MOUNT": "twice"}),
            capture_output=True,
            text=True,
            cwd=home,
            timeout=60,
        )
        assert result.returncode == 2, result
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert message in result.stderr, result.stderr
    # Importing the tool ran none of its commands as a recorded use.
    assert not (home / ".local" / "state").exists()
    reliability.record(  # type: ignore[attr-defined]
        area="Contract",
        fault=(
            "`python -m typer_telemetry docs|schema` given a target it cannot describe (no module,"
            " no attribute, not a Telemetry object, an import that raises or exits or runs the"
            " app, no app instrumented, two Telemetry objects, a clash of the group's name, a group whose get_command raises)"
        ),
        cases=len(BAD_TARGETS),
        outcome="one line on stderr naming the problem, exit code 2, no traceback; nothing recorded",
    )


def test_what_the_module_prints_as_it_loads_never_reaches_the_document(
    home: Path, reliability: object
) -> None:
    (home / "chatty.py").write_text(MODULES["chatty"])
    outputs = {}
    for command in (["docs"], ["schema", "--json"], ["schema"]):
        result = subprocess.run(
            [sys.executable, "-m", "typer_telemetry", command[0], "chatty:telemetry", *command[1:]],
            env=clean_environment(home),
            capture_output=True,
            text=True,
            cwd=home,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "loading plugins" not in result.stdout
        assert result.stderr == ""
        outputs[command[-1]] = result.stdout
    assert outputs["docs"].startswith("# Telemetry in chatty\n")
    assert outputs["--json"].startswith("{\n")
    reliability.record(  # type: ignore[attr-defined]
        area="Contract",
        fault="a tool module that prints on stdout or stderr as it is imported",
        cases=3,
        outcome=(
            "its output is discarded: `docs > TELEMETRY.md` and `schema --json` hold the"
            " document alone"
        ),
    )


def test_a_console_that_cannot_encode_a_name_never_breaks_the_contract(
    home: Path, reliability: object
) -> None:
    """Names outside the allowlist (`grüße`, `--naïve`) on an ASCII console or a redirected one."""
    environment = clean_environment(home, {"PYTHONIOENCODING": "ascii"})
    generated = subprocess.run(
        [sys.executable, "-m", "typer_telemetry", "docs", "contract_tool:telemetry"],
        env=environment,
        capture_output=True,
        cwd=TOOLS,
        timeout=60,
    )
    assert generated.returncode == 0, generated.stderr
    assert b"| `ingest` |" in generated.stdout
    assert "`grüße`".encode() in generated.stdout  # UTF-8, whatever the console
    shown = subprocess.run(
        [sys.executable, str(TOOLS / "contract_tool.py"), "telemetry", "schema"],
        env=environment,
        capture_output=True,
        text=True,
        cwd=home,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "gr\\xfc\\xdfe" in shown.stdout
    reliability.record(  # type: ignore[attr-defined]
        area="Contract",
        fault="a console whose encoding cannot show a command or option name outside the allowlist",
        cases=2,
        outcome=(
            "`python -m typer_telemetry docs` writes UTF-8 with plain newlines (the same file on"
            " every system); `telemetry schema` shows the character as an escape; exit code 0"
        ),
    )
