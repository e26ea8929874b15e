"""What a short invocation loads: the few modules of the library that recording needs.

Import time is most of what the library costs a short run (see
docs/performance.md), so the set of modules is pinned here: a change that
pulls the schema's tables, the store, the sender's delivery code, a back
end, httpx or rich onto the hot path fails this test, not only the benchmark.
"""

from __future__ import annotations

import pytest

from tests.conftest import Tool

# What every instrumented run loads, telemetry on or off.
ALWAYS = {
    "typer_telemetry",
    "typer_telemetry._telemetry",
    "typer_telemetry._consent",
    "typer_telemetry._hook",
    "typer_telemetry._sender",
    "typer_telemetry._checks",
}
# What a run that records loads besides.
RECORDING = {"typer_telemetry._files", "typer_telemetry._config", "typer_telemetry._journal"}


def loaded_modules(tool: Tool, env: dict[str, str]) -> set[str]:
    """The modules a warm `hello World` run imports, from `python -X importtime`."""
    result = tool.run("hello", "World", env={**env, "PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, World!\n"
    return {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    } - {"package"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, ALWAYS | RECORDING), ({"DO_NOT_TRACK": "1"}, ALWAYS)],
    ids=["recording", "do-not-track"],
)
def test_a_short_run_loads_only_the_hot_path_modules(
    tool: Tool, env: dict[str, str], expected: set[str]
) -> None:
    tool.run("hello", "World")  # the first run writes the config and shows the notice
    without = loaded_modules(tool, {"TOOL_WITHOUT_TELEMETRY": "1"})
    added = loaded_modules(tool, env) - without
    assert added == expected
    recorded = tool.counts()
    assert sum(recorded.values()) == (2 if env == {} else 1)  # the warm-up, and this run if on
