"""README.md's quick start is true: its code runs, and its transcript is what a user sees."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, clean_environment

README = ROOT / "README.md"
ELLIPSIS = "..."


def _block_after(text: str, marker: str, language: str) -> str:
    """The first fenced block of `language` after the line containing `marker`."""
    start = text.index(marker)
    match = re.compile(rf"^```{language}\n(.*?)^```", re.MULTILINE | re.DOTALL).search(text, start)
    assert match is not None, f"no {language} block after {marker!r}"
    return match.group(1)


def _transcript(block: str) -> list[tuple[list[str], list[str]]]:
    """(command words, expected output lines) for each `$ ` line of a console block."""
    steps: list[tuple[list[str], list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            command = line[2:].split("#", 1)[0].split()
            steps.append((command, []))
        else:
            steps[-1][1].append(line)
    return steps


def _line_matches(expected: str, actual: str) -> bool:
    """`...` inside a line of the transcript stands for any text."""
    pattern = ".*".join(re.escape(part) for part in expected.split(ELLIPSIS))
    return re.fullmatch(pattern, actual) is not None


def _output_matches(expected: list[str], actual: list[str]) -> bool:
    """A line that is only `...` stands for any number of lines."""
    if not expected:
        return not actual
    if expected[0].strip() == ELLIPSIS:
        return any(_output_matches(expected[1:], actual[skip:]) for skip in range(len(actual) + 1))
    return (
        bool(actual)
        and _line_matches(expected[0], actual[0])
        and _output_matches(expected[1:], actual[1:])
    )


def test_the_quick_start_transcript_is_what_the_user_sees(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    code = _block_after(text, "Instrument the app", "python")
    steps = _transcript(_block_after(text, "Run it as a user would", "console"))
    assert len(steps) >= 3
    script = tmp_path / "mytool.py"
    script.write_text(code, encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    # Unbuffered, as on a terminal: stdout and the notice on stderr interleave as shown.
    environment = clean_environment(home, {"PYTHONUNBUFFERED": "1", "COLUMNS": "100"})
    for command, expected in steps:
        assert command[0] == "mytool", command
        result = subprocess.run(
            [sys.executable, str(script), *command[1:]],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
            cwd=home,
        )
        assert result.returncode == 0, (command, result.stdout)
        actual = [line.rstrip() for line in result.stdout.splitlines()]
        if expected:
            assert _output_matches([line.rstrip() for line in expected], actual), (
                command,
                expected,
                actual,
            )
    assert os.listdir(home), "the tool recorded nothing"
