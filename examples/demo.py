"""A scripted tour of an instrumented tool, in a throw-away home folder (`nox -s demo`).

It runs examples/mytool.py as a real process, as a new user would: the
first-run notice, a few commands, `telemetry status`; then, the next day, a
long-running command delivers the completed day to a receiver on 127.0.0.1;
finally `telemetry disable`.
"""

from __future__ import annotations

import gzip
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class Receiver(BaseHTTPRequestHandler):
    """A receiver of the library's JSON format that prints what arrives."""

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        body = json.loads(raw)
        print(f"  [receiver] {self.path}: day {body.get('day')}, records:")
        for record in body.get("records", []):
            print(
                f"  [receiver]   {record['command'] or '(root)'} {record['outcome']}"
                f" x{record['count']} {' '.join(record['flags'])}"
            )
        reply = b'{"accepted": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


def run(home: Path, *arguments: str, env: dict[str, str] | None = None) -> None:
    print(f"\n$ mytool {shlex.join(arguments)}", flush=True)
    result = subprocess.run(
        [sys.executable, str(TOOL), *arguments],
        env={**environment(home), **(env or {})},
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

        server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1"
        tomorrow = {
            "MYTOOL_DEMO_NOW": str(time.time() + 86400),
            "MYTOOL_TELEMETRY_ENDPOINT": endpoint,
        }
        print(f"\nThe next day, with a receiver at {endpoint}. A short command sends nothing:")
        run(home, "hello", "tomorrow", env=tomorrow)
        print("\nA command that runs past 1 second sends the completed day in the background:")
        run(home, "wait", "--seconds", "2", env=tomorrow)
        server.shutdown()
        print("\nYesterday is gone from what is pending; today's runs wait for tomorrow:")
        run(home, "telemetry", "status", env=tomorrow)
        print("\nOff is off: disabling deletes everything pending.")
        run(home, "telemetry", "disable")
        run(home, "hello", "again")
        run(home, "telemetry", "status")


if __name__ == "__main__":
    main()
