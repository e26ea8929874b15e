"""Every Python block of the documentation runs, page by page, as a reader would run it.

Each page's blocks run in order in one namespace (like a doctest session), in
a child process with its own empty HOME and XDG folders, `DO_NOT_TRACK=1` and
the network cut off, so that an example can neither send nor record anything.
A block that cannot run is marked `<!-- not run: <reason> -->`; the summary
at the end of the run says how many ran and how many were skipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, clean_environment
from tests.docs.code_blocks import RUNNER, blocks_of, python_blocks

PAGES = sorted(
    [ROOT / "README.md", ROOT / "TELEMETRY.md", *(ROOT / "docs").glob("*.md")],
    key=lambda page: str(page.relative_to(ROOT)),
)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_python_block_of_the_page_runs(
    page: Path, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    blocks = blocks_of(page)
    runnable = [block for block in blocks if block.skipped_because is None]
    record_property("docs_blocks_run", len(runnable))
    record_property("docs_blocks_skipped", len(blocks) - len(runnable))
    if not runnable:
        return
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()  # an example's own files (a FileBackend's) go here
    environment = clean_environment(home, {"DO_NOT_TRACK": "1", "NO_COLOR": "1"})
    name = str(page.relative_to(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps([str(page), [[block.line, block.code] for block in runnable]]),
        env=environment,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{name}:\n{result.stderr}"
    # Under DO_NOT_TRACK nothing is recorded: no settings file, no store.
    assert not list(home.rglob("*")), f"{name}: the examples wrote {list(home.rglob('*'))}"


def test_the_blocks_are_found_with_their_lines_and_skips() -> None:
    text = (
        "# Page\n"
        "```python\n"
        "x = 1\n"
        "```\n"
        "\n"
        "<!-- not run: needs a terminal -->\n"
        "\n"
        "```python\n"
        "input()\n"
        "```\n"
        "```console\n"
        "$ ls\n"
        "```\n"
        "- a list item:\n"
        "\n"
        "    ```py\n"
        "    y = x + 1\n"
        "    ```\n"
    )
    blocks = python_blocks(text)
    assert [(block.line, block.code, block.skipped_because) for block in blocks] == [
        (3, "x = 1\n", None),
        (9, "input()\n", "needs a terminal"),
        (17, "y = x + 1\n", None),
    ]


def test_a_skip_without_a_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="must say why"):
        python_blocks("<!-- not run: -->\n```python\npass\n```\n")


def test_a_failing_block_is_reported_with_its_page_and_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("Intro\n\n```python\nvalue = 1\n```\n\n```python\n\nvalue.missing\n```\n")
    blocks = blocks_of(page)
    result = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps([str(page), [[block.line, block.code] for block in blocks]]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"{page}: the block at line 8 failed: AttributeError" in result.stderr
    assert f'File "{page}", line 9' in result.stderr


def test_an_example_cannot_reach_the_network(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nimport socket\nsocket.create_connection(('127.0.0.1', 9))\n```\n")
    result = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps([str(page), [[block.line, block.code] for block in blocks_of(page)]]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "tried to use the network" in result.stderr
