"""The hardening suite: faults, hostile input and concurrency against real processes.

Every test here runs in `nox -s tests` with a small number of cases, and in
`nox -s hardening` (HARDENING_FULL=1) with the full number, which then writes
the table of docs/reliability.md from what each test reports through the
`reliability` fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import Tool

if TYPE_CHECKING:
    from typer_telemetry import Telemetry

FULL = os.environ.get("HARDENING_FULL") == "1"
RESULTS = os.environ.get("HARDENING_RESULTS")


def cases(fast: int, full: int) -> int:
    """How many cases a test tries: a few in `nox -s tests`, all of them in `nox -s hardening`."""
    return full if FULL else fast


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.hardening)


@dataclass
class Reliability:
    """Rows for docs/reliability.md: what was tried, how often, what happened, what was lost."""

    test: str

    def record(
        self, area: str, fault: str, cases: int, outcome: str, lost: str = "nothing"
    ) -> None:
        if not RESULTS:
            return
        row = {
            "area": area,
            "fault": fault,
            "cases": cases,
            "outcome": outcome,
            "lost": lost,
            "test": self.test,
        }
        folder = Path(RESULTS)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"rows-{os.getpid()}.jsonl", "a", encoding="utf-8") as rows:
            rows.write(json.dumps(row) + "\n")


@pytest.fixture
def reliability(request: pytest.FixtureRequest) -> Iterator[Reliability]:
    """Report a row; rows are written only if the test passes."""
    pending: list[tuple[str, str, int, str, str]] = []

    class Deferred(Reliability):
        def record(
            self, area: str, fault: str, cases: int, outcome: str, lost: str = "nothing"
        ) -> None:
            pending.append((area, fault, cases, outcome, lost))

    yield Deferred(request.node.nodeid)
    report = getattr(request.node, "report_call", None)
    if report is not None and report.passed:
        writer = Reliability(request.node.nodeid)
        for row in pending:
            writer.record(*row)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.report_call = report  # type: ignore[attr-defined]
    return report


def install_id_of(telemetry: Telemetry) -> str | None:
    """The install id the tool's config holds, as the library reads it (None: none, or not ours)."""
    from typer_telemetry._config import read_config

    return read_config(telemetry.settings.paths().config_file).install_id


NOTICE_MARK = "collects anonymous usage data"


def strip_notice(stderr: str) -> str:
    return "".join(line for line in stderr.splitlines(True) if NOTICE_MARK not in line)


def assert_unchanged_by_telemetry(
    tool: Tool,
    *arguments: str,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    debug_allowed: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run the tool with and without the library: same exit code, same stdout, stderr but the notice.

    With `debug_allowed`, the explanations the debug variable adds on stderr
    (lines starting with "[<tool> telemetry]") are ignored too.
    """
    bare = tool.run(*arguments, env={**(env or {}), "TOOL_WITHOUT_TELEMETRY": "1"}, input=input)
    instrumented = tool.run(*arguments, env=env, input=input)
    assert instrumented.returncode == bare.returncode, instrumented.stderr
    assert instrumented.stdout == bare.stdout
    stderr = strip_notice(instrumented.stderr)
    if debug_allowed:
        mark = f"[{tool.tool_name} telemetry]"
        stderr = "".join(line for line in stderr.splitlines(True) if not line.startswith(mark))
    assert stderr == bare.stderr
    return instrumented
