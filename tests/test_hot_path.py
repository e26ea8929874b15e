"""What a short invocation costs in imports: the standard library and platformdirs only.

Import time is most of what the library costs a short run (see
docs/performance.md), so the library's own modules on that path are pinned
too: a change that pulls the schema's tables, the store, the delivery code or
a back end onto it fails here, not only in the benchmark.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import OUTSIDE_TOOL, TOOLS, Tool

HEAVY = (
    "httpx",
    "rich",
    "posthog",
    "opentelemetry",
    "json",
    "tomllib",
    "tomli",
    "tomli_w",
    "sqlite3",
    "socket",
    "ssl",
)

# The library's modules that every instrumented run loads, telemetry on or off.
ALWAYS = {
    "typer_telemetry",
    "typer_telemetry._telemetry",
    "typer_telemetry._consent",
    "typer_telemetry._settings",
    "typer_telemetry._hook",
    "typer_telemetry._checks",
}
# Those a run that records loads besides.
RECORDING = {"typer_telemetry._recording", "typer_telemetry._config", "typer_telemetry._paths"}


def modules_loaded(tool: Tool, tmp_path: Path, *arguments: str, env: dict[str, str]) -> set[str]:
    output = tmp_path / "modules.txt"
    tool.script = TOOLS / "modules_loaded.py"
    try:
        result = tool.run(str(OUTSIDE_TOOL), *arguments, env={**env, "MODULES_OUT": str(output)})
    finally:
        tool.script = OUTSIDE_TOOL
    assert result.returncode == 0, result.stderr
    return set(output.read_text().split())


def test_a_recorded_short_invocation_adds_only_stdlib_and_platformdirs(
    tool: Tool, tmp_path: Path
) -> None:
    tool.run("hello", "first")  # the first run writes the config; measure an ordinary one
    bare = modules_loaded(tool, tmp_path, "hello", "x", env={"TOOL_WITHOUT_TELEMETRY": "1"})
    instrumented = modules_loaded(tool, tmp_path, "hello", "x", env={})
    assert tool.counts()  # it did record
    added = instrumented - bare
    assert any(name.startswith("typer_telemetry") for name in added)
    for name in added:
        top = name.split(".")[0]
        assert top in ("typer_telemetry", "platformdirs") or top in sys.stdlib_module_names, name
        assert top not in HEAVY, name


def test_a_disabled_invocation_does_not_even_load_platformdirs(tool: Tool, tmp_path: Path) -> None:
    bare = modules_loaded(tool, tmp_path, "hello", "x", env={"TOOL_WITHOUT_TELEMETRY": "1"})
    disabled = modules_loaded(tool, tmp_path, "hello", "x", env={"DO_NOT_TRACK": "1"})
    added = {name.split(".")[0] for name in disabled - bare}
    assert added <= {"typer_telemetry"} | set(sys.stdlib_module_names)
    assert not added & set(HEAVY)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ALWAYS | RECORDING),
        ({"DO_NOT_TRACK": "1"}, ALWAYS),
        ({"TYPER_TELEMETRY_SANDBOX": "/nonexistent/sandbox"}, ALWAYS),
    ],
    ids=["recording", "do-not-track", "test-sandbox"],
)
def test_a_short_run_loads_only_the_library_modules_of_the_hot_path(
    tool: Tool, tmp_path: Path, env: dict[str, str], expected: set[str]
) -> None:
    tool.run("hello", "first")  # the first run writes the config and shows the notice
    loaded = modules_loaded(tool, tmp_path, "hello", "x", env=env)
    assert {name for name in loaded if name.startswith("typer_telemetry")} == expected
    assert sum(tool.counts().values()) == (2 if env == {} else 1)  # this run counted if on
