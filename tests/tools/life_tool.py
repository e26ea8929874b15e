"""The outside tool, with knobs for the process-life tests (tests/hardening/test_process_life.py).

    python life_tool.py ARGS...        the outside tool itself, plus the `exit-now` command
    python life_tool.py --burst COUNT  COUNT recorded `hello` invocations in one process,
                                       one byte on stdout after each (like burst.py)
    python life_tool.py --each         one invocation per line of stdin, "EPOCH ARGS..." (the
                                       clock pinned to EPOCH), all in one process
    python life_tool.py --flush        send pending completed days now (`telemetry.flush()`),
                                       print the report as JSON

LIFE_SIGINT=ignore|default and LIFE_SIGTERM=ignore|default set the disposition a
parent process hands down, then re-execute this script (Python decides at start-up
whether Ctrl-C raises KeyboardInterrupt, from the disposition it inherited).
LIFE_KILL_IN=<target>:<n> sends SIGKILL to this process at the n-th Python trace
event counted inside <target> (the events of all its calls added up; only lines of
the library itself count, except for the request, where httpx's count), after
writing "life-kill <target> <n> <functions of the library on the stack>" on
stderr; without :<n> it only writes "life-count <target> <events so far>" after
each call. Several comma-separated targets count separately. Targets: record (the
recording of an invocation), claim (a first run minting the install id and showing
the notice), fold-before-send
(the fold that gathers completed days), request (httpx's `Client.send`: connecting,
writing the request, reading the reply's head), remove-sent
(taking accepted records out of the store).
LIFE_COMPACT_AT=<bytes> makes the store fold that often.
LIFE_LOCK_WAIT=<seconds> makes a fold wait that long for a writer stuck on the
journal (the library waits half a second): it stands for a slow or stuck file
system, so that a test can signal the process while it is still recording.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

for _variable, _number in (("LIFE_SIGINT", signal.SIGINT), ("LIFE_SIGTERM", signal.SIGTERM)):
    _wanted = os.environ.pop(_variable, None)
    if _wanted:
        signal.signal(_number, signal.SIG_IGN if _wanted == "ignore" else signal.SIG_DFL)
        os.execv(sys.executable, [sys.executable, *sys.argv])

sys.path.insert(0, str(Path(__file__).parent))

import outside_tool  # noqa: E402
import typer  # noqa: E402

app = outside_tool.app


@app.command("exit-now")
def exit_now(code: Annotated[int, typer.Option("--code")] = 0) -> None:
    """Leave through os._exit: no exception, no finally, no atexit."""
    typer.echo("leaving now")
    sys.stdout.flush()
    os._exit(code)


def _library_frames(frame: FrameType | None) -> list[str]:
    names = []
    while frame is not None:
        if "typer_telemetry" in frame.f_code.co_filename:
            names.append(frame.f_code.co_name)
        frame = frame.f_back
    return names


_events: dict[str, int] = {}


def _kill_inside(owner: Any, attribute: str, target: str, kill_at: int | None) -> None:
    original = getattr(owner, attribute)
    _events[target] = 0

    # Inside httpx every line counts; elsewhere only the library's own lines, so that
    # a kill lands on one of its steps rather than deep inside the standard library.
    everything = target == "request"

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        if not everything and "typer_telemetry" not in frame.f_code.co_filename:
            return tracer
        _events[target] += 1
        if kill_at is not None and _events[target] >= kill_at:
            stack = ",".join(_library_frames(frame)) or "-"
            os.write(2, f"\nlife-kill {target} {_events[target]} {stack}\n".encode())
            os.kill(os.getpid(), signal.SIGKILL)
        return tracer

    def traced(*args: Any, **kwargs: Any) -> Any:
        previous = sys.gettrace()
        sys.settrace(tracer)
        try:
            return original(*args, **kwargs)
        finally:
            sys.settrace(previous)
            if kill_at is None:
                os.write(2, f"\nlife-count {target} {_events[target]}\n".encode())

    setattr(owner, attribute, traced)


def _install_knobs() -> None:
    from typer_telemetry import _config, _recording, _store

    if os.environ.get("LIFE_COMPACT_AT"):
        _recording.FOLD_AT_BYTES = int(os.environ["LIFE_COMPACT_AT"])
    if os.environ.get("LIFE_LOCK_WAIT"):
        _store.SEGMENT_LOCK_TIMEOUT_SECONDS = float(os.environ["LIFE_LOCK_WAIT"])
    if not os.environ.get("LIFE_KILL_IN") or os.environ.get("TOOL_WITHOUT_TELEMETRY"):
        return
    import httpx

    owners = {
        # Both looked up when called (the hook's and the recorder's imports).
        "record": (_recording, "record_command"),
        "claim": (_config, "claim_identity"),
        "fold-before-send": (_store.RollupStore, "completed_days"),
        "request": (httpx.Client, "send"),
        "remove-sent": (_store.RollupStore, "remove_sent"),
    }
    for spec in os.environ["LIFE_KILL_IN"].split(","):
        target, _, count = spec.partition(":")
        owner, attribute = owners[target]
        _kill_inside(owner, attribute, target, int(count) if count else None)


def each(lines: list[str]) -> None:
    import shlex

    for line in lines:
        now, *arguments = shlex.split(line)
        os.environ["TOOL_NOW"] = now
        # SystemExit, or the `fail` command's own error (recorded by the hook).
        with contextlib.suppress(SystemExit, Exception):
            app(arguments, prog_name="outside_tool.py")


def flush() -> None:
    """Send pending completed days now, as a server would (`telemetry.flush()`)."""
    report = outside_tool.telemetry.flush(timeout=30)
    print(json.dumps(report._asdict()))


def burst(count: int) -> None:
    for _ in range(count):
        try:
            app(["hello", "burst", "-n", "0"], prog_name="outside_tool.py")
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                raise
        os.write(1, b".")


if __name__ == "__main__":
    _install_knobs()
    if sys.argv[1:2] == ["--burst"]:
        burst(int(sys.argv[2]))
    elif sys.argv[1:2] == ["--each"]:
        each(sys.stdin.read().splitlines())
    elif sys.argv[1:2] == ["--flush"]:
        flush()
    else:
        app(prog_name="outside_tool.py")
