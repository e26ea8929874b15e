"""What every measurement shares: isolated environments, timed child processes, statistics.

Child processes get an environment built from nothing (see
`child_environment`), so that nothing from the shell that started the
benchmark (CI variables, DO_NOT_TRACK, *TELEMETRY* settings, PYTHON* flags
such as PYTHONDONTWRITEBYTECODE, OTEL_* or POSTHOG_* settings) changes what
is measured.
"""

from __future__ import annotations

import os
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from typer_telemetry._paths import STORE_DIR_NAME

BENCH_DIR = Path(__file__).resolve().parent
TOOLS_DIR = BENCH_DIR / "tools"
PROJECT_DIR = BENCH_DIR.parent
PYTHON = sys.executable
TOOL_NAME = "benchtool"
ENDPOINT_VARIABLE = "BENCHTOOL_TELEMETRY_ENDPOINT"


def child_environment(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a user on a fresh machine: their own HOME and XDG folders, nothing else.

    Built from nothing rather than filtered from the runner's own environment,
    so no CI variable, opt-out, telemetry setting or Python flag leaks in.
    """
    # A user's home exists: the library records nothing into a home that does not.
    home.mkdir(parents=True, exist_ok=True)
    environment = {
        "PATH": os.pathsep.join([str(Path(PYTHON).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "LANG": "C.UTF-8",
    }
    environment.update(extra or {})
    return environment


def tool_command(script: str, *arguments: str, python_options: Sequence[str] = ()) -> list[str]:
    return [PYTHON, *python_options, str(TOOLS_DIR / script), *arguments]


def store_directory(home: Path) -> Path:
    """Where the bench tool's rollup store lives for a child run with this home (Linux XDG)."""
    return home / ".local" / "state" / TOOL_NAME / STORE_DIR_NAME


def discard(message: str) -> None:
    """For the store's debug channel, where nothing needs to be said here."""


@dataclass(frozen=True)
class Timed:
    """One finished child process: its wall time, and the CPU time it used (user + system).

    `after_line_ms`: when asked to watch for a line on stdout, the time from
    that line's arrival to the process's end.
    """

    wall_ms: float
    cpu_ms: float
    exit_code: int
    after_line_ms: float | None = None


_DEVNULL_STDIN = (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)
_DEVNULL_STDERR = (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)
_DISCARD_OUTPUT = [
    _DEVNULL_STDIN,
    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
    _DEVNULL_STDERR,
]


def run_timed(
    command: Sequence[str],
    environment: Mapping[str, str],
    *,
    watch_for: bytes | None = None,
    timeout: float = 120.0,
) -> Timed:
    """Run a process to its end with its input and output on /dev/null, and time it.

    posix_spawn and wait4 keep the runner's own cost out of the figures as far
    as possible, and wait4 reports the child's CPU time, threads included.
    With `watch_for`, stdout goes to a pipe instead, and the time from that
    line's arrival to the end of the process is measured too.
    """
    if watch_for is None:
        started = time.perf_counter()
        pid = os.posix_spawn(
            command[0], list(command), dict(environment), file_actions=_DISCARD_OUTPUT
        )
        line_seen_at = None
    else:
        reader, writer = os.pipe()
        try:
            actions = [_DEVNULL_STDIN, (os.POSIX_SPAWN_DUP2, writer, 1), _DEVNULL_STDERR]
            started = time.perf_counter()
            pid = os.posix_spawn(command[0], list(command), dict(environment), file_actions=actions)
            os.close(writer)
            line_seen_at = _read_until_closed(reader, watch_for, started + timeout)
        finally:
            os.close(reader)
    _, status, usage = os.wait4(pid, 0)
    ended = time.perf_counter()
    return Timed(
        wall_ms=(ended - started) * 1000.0,
        cpu_ms=(usage.ru_utime + usage.ru_stime) * 1000.0,
        exit_code=os.waitstatus_to_exitcode(status),
        after_line_ms=None if line_seen_at is None else (ended - line_seen_at) * 1000.0,
    )


def _read_until_closed(reader: int, line: bytes, deadline: float) -> float | None:
    """Read a pipe until every writer has closed it; when `line` arrived, if it did."""
    received = b""
    seen_at = None
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0 or not select.select([reader], [], [], remaining)[0]:
            raise TimeoutError("the child process kept its output open too long")
        chunk = os.read(reader, 65536)
        if not chunk:
            return seen_at
        received += chunk
        if seen_at is None and line in received.splitlines():
            seen_at = time.perf_counter()


def run_checked(
    command: Sequence[str],
    environment: Mapping[str, str],
    *,
    stdin: str = "",
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """Run a process with `stdin` as its input and capture its output; raise if it failed."""
    result = subprocess.run(
        list(command),
        env=dict(environment),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited with {result.returncode}:\n{result.stderr.strip()}"
        )
    return result


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    """The 25th and 75th percentiles: how far the middle half of the values spreads."""
    if len(values) < 2:
        return (median(values), median(values))
    first, _, third = statistics.quantiles(values, n=4, method="inclusive")
    return first, third
