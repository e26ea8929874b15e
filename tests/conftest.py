"""Shared fixtures: isolated homes, a clean environment, and the outside tool as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from typer_telemetry._consent import CI_VARIABLES, SANDBOX_VARIABLE

if TYPE_CHECKING:
    from typer_telemetry import Telemetry

# Nothing this test session spawns may send real telemetry: the opt-out is set
# for every child process, and tests that exercise recording build their
# environment explicitly with `clean_environment`. `CI` is set too, so that a
# test which forgets to build its environment fails on every machine alike.
os.environ["DO_NOT_TRACK"] = "1"
os.environ["CI"] = "true"
# The pytest plugin's session sandbox is off for this suite (pyproject.toml):
# the suite opts out by itself, as above, and tests the per-user folders and
# the consent table, which the sandbox would replace. One set by an outer
# session (a developer's shell, a suite that runs ours) is dropped here too.
os.environ.pop(SANDBOX_VARIABLE, None)

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(__file__).resolve().parent / "tools"
OUTSIDE_TOOL = TOOLS / "outside_tool.py"


def clean_environment(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a user on a fresh machine: own HOME, XDG folders, no CI, no opt-out."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in CI_VARIABLES
        and name != "DO_NOT_TRACK"
        and "TELEMETRY" not in name
        and not name.startswith("XDG_")
        and not (name.startswith("_") and name.endswith("_COMPLETE"))
    }
    environment.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        PYTHONDONTWRITEBYTECODE="1",
        COLUMNS="200",
    )
    environment.update(extra or {})
    return environment


def enter_clean_environment(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Make this test process's own environment `clean_environment(home)`, CI variables removed."""
    wanted = clean_environment(home)
    for name in list(os.environ):
        if name not in wanted:
            monkeypatch.delenv(name)
    for name, value in wanted.items():
        monkeypatch.setenv(name, value)


def in_process_telemetry(
    monkeypatch: pytest.MonkeyPatch,
    home: Path,
    name: str,
    endpoint: str | None,
    *,
    now: float | None = None,
) -> Telemetry:
    """A Telemetry object in this test process, as on a clean user's machine (as in a server).

    With `now`, its clock is pinned there (epoch seconds).
    """
    from typer_telemetry import Telemetry

    enter_clean_environment(monkeypatch, home)
    telemetry = Telemetry(name, version="1.0", endpoint=endpoint)
    if now is not None:
        telemetry.settings = telemetry.settings.replace(clock=lambda: float(now))
    return telemetry


RecordKey = tuple[str, str, str, str, tuple[str, ...]]


@dataclass
class Tool:
    """A tool script run as a real process in an isolated home."""

    script: Path
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return clean_environment(self.home, {**self.env, **(extra or {})})

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(self.script), *args],
            env=self.environment(env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home,
        )

    def popen(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(self.script), *args],
            env=self.environment(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.home,
        )

    def status(self, env: Mapping[str, str] | None = None) -> dict[str, object]:
        result = self.run("telemetry", "status", "--json", env=env)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert isinstance(report, dict)
        return report

    def pending(self, env: Mapping[str, str] | None = None) -> list[dict[str, object]]:
        pending = self.status(env)["pending"]
        assert isinstance(pending, list)
        return pending

    def counts(self, env: Mapping[str, str] | None = None) -> dict[RecordKey, int]:
        return {
            (
                str(record["day"]),
                str(record["properties"]["command"]),
                str(record["outcome"]),
                str(record["error_class"]),
                tuple(record["properties"]["flags"]),  # type: ignore[arg-type]
            ): int(record["count"])  # type: ignore[call-overload]
            for record in self.pending(env)
        }

    @property
    def config_dir(self) -> Path:
        return self.home / ".config" / self.tool_name

    @property
    def store_dir(self) -> Path:
        return self.home / ".local" / "state" / self.tool_name / "telemetry"

    @property
    def tool_name(self) -> str:
        return "outside-tool" if self.script == OUTSIDE_TOOL else self.script.stem.replace("_", "-")

    def files(self) -> Iterator[Path]:
        for path in sorted(self.home.rglob("*")):
            if path.is_file():
                yield path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def tool(home: Path) -> Tool:
    """The outside tool, with telemetry able to record (no CI, no opt-out)."""
    return Tool(OUTSIDE_TOOL, home)


def run_burst(home: Path, count: int, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start tests/tools/burst.py: `count` recorded invocations in one process."""
    return subprocess.Popen(
        [sys.executable, str(TOOLS / "burst.py"), str(count)],
        env=clean_environment(home, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def tool_script(name: str) -> Path:
    return TOOLS / f"{name}.py"


def append_event(store: RollupStore, observation: Observation) -> None:
    """Append one event to the store's journal, as a recorded run does (folding when it has grown)."""
    from typer_telemetry import _recording

    _recording.append(store.directory, observation, lambda message: None)


if TYPE_CHECKING:
    from typer_telemetry._recording import Observation
    from typer_telemetry._store import RollupStore
