"""The outside tool with secrets everywhere, then its data through every back end.

    python privacy_tool.py PLAN_JSON_FILE

The plan holds `invocations` (command lines, each run as the process's own
`sys.argv` through the outside tool's app), `now` (epoch seconds of the day
they are recorded on), `receiver` (a base URL), `file_sink` (the FileBackend's
file), `status_out` and `report_out` (where this writes `telemetry status
--json` and the send reports). Run it with OUTSIDE_TOOL_TELEMETRY_DEBUG=1 and
OUTSIDE_TOOL_TELEMETRY_ENDPOINT set: after recording, the next day's clock
sends the completed day to a PostHogBackend, an OTLPBackend and a FileBackend
(keeping the data), prints it with the DebugBackend (`flush` under the debug
variable) and finally sends it with the HTTPBackend of the endpoint variable.

The `deploy` command added here takes a path, extra arguments, an option read
from the environment (PRIVACY_TOKEN) and, with --fail, raises an exception of
the tool's own class whose message, args and repr carry those values.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

sys.path.insert(0, str(Path(__file__).parent))

import outside_tool
import typer

import typer_telemetry
from typer_telemetry._delivery import SendReport, send_pending
from typer_telemetry.backends import FileBackend, OTLPBackend, PostHogBackend
from typer_telemetry.backends.base import Backend


class DeploymentProblem(Exception):
    """A tool's own error class: a fine name, a message full of user data."""

    def __init__(self, message: str, target: Path, token: str) -> None:
        super().__init__(message, str(target), token)
        self.target = target
        self.token = token

    def __repr__(self) -> str:
        return f"DeploymentProblem({self.args!r}, target={self.target!r}, token={self.token!r})"


@outside_tool.app.command()
def deploy(
    target: Path,
    extra: Annotated[list[str] | None, typer.Argument()] = None,
    token: Annotated[str, typer.Option("--token", envvar="PRIVACY_TOKEN")] = "",
    region: Annotated[str, typer.Option("--region", "-r")] = "eu",
    fail: Annotated[bool, typer.Option("--fail")] = False,
) -> None:
    """Deploy TARGET (prints nothing about it)."""
    if fail:
        raise DeploymentProblem(f"cannot deploy {target} to {region} with {token}", target, token)
    typer.echo(f"deployed {len(extra or [])} extra")


def send_keeping_the_data(telemetry: typer_telemetry.Telemetry, backend: Backend) -> SendReport:
    """Send the completed days to `backend`, then put the store back as it was for the next one."""
    store = telemetry.settings.paths().store_dir
    kept = store.with_name(store.name + ".kept")
    shutil.copytree(store, kept, symlinks=True)
    try:
        return send_pending(telemetry.settings, backend, timeout=20)
    finally:
        shutil.rmtree(store)
        kept.rename(store)


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    now = [float(plan["now"])]
    telemetry = outside_tool.telemetry
    telemetry.settings = telemetry.settings.replace(clock=lambda: now[0])
    program = sys.argv[0]
    for arguments in plan["invocations"]:
        sys.argv = [program, *arguments]
        with contextlib.suppress(SystemExit, Exception):
            outside_tool.app(prog_name="outside_tool.py")

    shown = io.StringIO()
    sys.argv = [program, "telemetry", "status", "--json"]
    with contextlib.redirect_stdout(shown):
        try:
            outside_tool.app(prog_name="outside_tool.py")
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                raise
    Path(plan["status_out"]).write_text(shown.getvalue(), encoding="utf-8")

    now[0] += 86400  # the recorded day is complete
    reports = {}
    for name, backend in (
        ("posthog", PostHogBackend("phc_privacy_test", host=plan["receiver"])),
        ("otlp", OTLPBackend(plan["receiver"])),
        ("file", FileBackend(plan["file_sink"])),
    ):
        reports[name] = send_keeping_the_data(telemetry, backend)
    reports["debug"] = telemetry.flush(timeout=20)
    del os.environ["OUTSIDE_TOOL_TELEMETRY_DEBUG"]
    reports["http"] = telemetry.flush(timeout=20)
    Path(plan["report_out"]).write_text(
        json.dumps({name: report._asdict() for name, report in reports.items()}), encoding="utf-8"
    )


if __name__ == "__main__":
    main()
