"""A scripted tour of an instrumented tool, in a throw-away home folder (`nox -s demo`).

It runs examples/mytool.py as a real process, as a new user would: the
first-run notice, a few commands, `telemetry status`, then `telemetry disable`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

TOOL = Path(__file__).resolve().parent / "mytool.py"
CI_AND_OPT_OUT = ("CI", "DO_NOT_TRACK", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "TF_BUILD")


def environment(home: Path) -> dict[str, str]:
    """A user on a fresh machine: own home and XDG folders, not in CI, no opt-out."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in CI_AND_OPT_OUT and "TELEMETRY" not in name and not name.startswith("XDG_")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
    )
    return env


def run(home: Path, *arguments: str) -> None:
    print(f"\n$ mytool {shlex.join(arguments)}", flush=True)
    result = subprocess.run(
        [sys.executable, str(TOOL), *arguments],
        env=environment(home),
        capture_output=True,
        text=True,
    )
    for line in result.stdout.splitlines():
        print(f"  {line}")
    for line in result.stderr.splitlines():
        print(f"  [stderr] {line}")
    print(f"  (exit code {result.returncode})", flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="typer-telemetry-demo-") as folder:
        home = Path(folder)
        print(f"A new user, home folder {home}. The first run shows the notice on stderr:")
        run(home, "hello", "World")
        print("\nLater runs are silent; each is counted in today's rollup:")
        run(home, "hello", "Ada", "--greeting", "Hi", "--shout")
        run(home, "db", "migrate", "-f", "--target", "v2")
        run(home, "db", "migrate", "-f", "--target", "v3")
        run(home, "fail", "--message", "this message is never recorded")
        run(home, "hello", "--no-such-option")
        print("\nWhat is recorded, and why telemetry is on:")
        run(home, "telemetry", "status")
        print("\nThe same as JSON, exactly as it would be sent:")
        run(home, "telemetry", "status", "--json")
        print("\nOff is off: disabling deletes everything pending.")
        run(home, "telemetry", "disable")
        run(home, "hello", "again")
        run(home, "telemetry", "status")


if __name__ == "__main__":
    main()
