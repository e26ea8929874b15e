"""docs/testing.md's worked example is a real test suite, run as a tool author runs it.

The blocks marked `<!-- example: <file name> -->` are saved under those
names side by side and run in a pytest session of their own (the plugin
loaded from its entry point), in a fresh home with CI and DO_NOT_TRACK
removed. The page's other Python blocks run as they are, each in a fresh
interpreter.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, clean_environment

pytest_plugins = ["pytester"]

PAGE = ROOT / "docs" / "testing.md"
BLOCK = re.compile(r"(?:<!-- example: (?P<name>[\w.]+) -->\n)?```python\n(?P<code>.*?)```", re.S)


def blocks() -> list[tuple[str | None, str]]:
    return [(match["name"], match["code"]) for match in BLOCK.finditer(PAGE.read_text())]


def test_the_worked_example_passes_as_written(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    files = {name: code for name, code in blocks() if name is not None}
    assert set(files) == {"inventory.py", "test_inventory.py"}
    for name, code in files.items():
        (pytester.path / name).write_text(code)
    home = tmp_path / "home"
    home.mkdir()
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in clean_environment(home).items():
        monkeypatch.setenv(name, value)
    tests = len(re.findall(r"^def test_", files["test_inventory.py"], re.M))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=tests)
    assert tests == 3
    assert list(home.rglob("*")) == []  # the captures had homes of their own


@pytest.mark.parametrize(
    "code", [code for name, code in blocks() if name is None], ids=lambda code: code[:30]
)
def test_every_other_python_block_runs_as_it_is(code: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=clean_environment(tmp_path, {"TYPER_TELEMETRY_SANDBOX": str(tmp_path / "sandbox")}),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
