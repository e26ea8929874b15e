"""An outside tool written only against the public API (the tests run it as a real process).

TOOL_WITHOUT_TELEMETRY=1 runs the same app without the library, for side-by-side checks.
TOOL_NOW=<epoch seconds> pins the clock that decides the UTC day.
TOOL_LONG_RUNNING_AFTER=<seconds> sets when a running command counts as long-running.
TOOL_FILE_BACKEND=<path> sends to a FileBackend instead of an endpoint.
TOOL_SLOW_BACKEND=1 makes that back end's `send` first create `<path>.sending`, then write
only once the main thread has ended (the tool is exiting): a send still under way at exit.
TOOL_THREAD_CENSUS=<path>: the number of the process's Python threads (those with a
thread state, bare `_thread` ones included) is written there as
"returned N" the moment the app returns, and as "exit N" at exit, after the library's own
exit hook (registered later, so run first).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Annotated, Any

import typer

app = typer.Typer(help="An outside tool.")

if os.environ.get("TOOL_THREAD_CENSUS"):
    import atexit

    def census(moment: str) -> None:
        with open(os.environ["TOOL_THREAD_CENSUS"], "a", encoding="utf-8") as out:
            out.write(f"{moment} {len(sys._current_frames())}\n")

    atexit.register(census, "exit")


def file_backend(path: str) -> Any:
    from typer_telemetry.backends import FileBackend

    if not os.environ.get("TOOL_SLOW_BACKEND"):
        return FileBackend(path)

    class Slow(FileBackend):
        def send(self, batch: Any, *, timeout: float) -> None:
            import threading

            with open(f"{path}.sending", "w", encoding="utf-8"):
                pass
            while threading.main_thread().is_alive():
                time.sleep(0.001)
            super().send(batch, timeout=timeout)

    return Slow(path)


if not os.environ.get("TOOL_WITHOUT_TELEMETRY"):
    from typer_telemetry import Telemetry

    telemetry = Telemetry(
        "outside-tool",
        version="2.0.1",
        consent=os.environ.get("TOOL_CONSENT", "opt-out"),  # type: ignore[arg-type]
        long_running_after=float(os.environ.get("TOOL_LONG_RUNNING_AFTER", "2.0")),
        backend=file_backend(os.environ["TOOL_FILE_BACKEND"])
        if os.environ.get("TOOL_FILE_BACKEND")
        else None,
    )
    long_running = telemetry.long_running
    if os.environ.get("TOOL_NOW"):
        telemetry.settings = telemetry.settings.replace(clock=lambda: float(os.environ["TOOL_NOW"]))
    telemetry.instrument(app)
else:

    def long_running(command: Any) -> Any:
        return command


db = typer.Typer(help="Database commands.")
app.add_typer(db, name="db")
remote = typer.Typer(help="Remote commands.")
db.add_typer(remote, name="remote")


@app.callback()
def root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    config: Annotated[str | None, typer.Option("--config", "-c")] = None,
) -> None:
    """Root callback with its own options."""
    if verbose:
        typer.echo("verbose on", err=True)


@app.command()
def hello(
    name: str,
    greeting: Annotated[str, typer.Option("--greeting", "-g")] = "Hello",
    count: Annotated[int, typer.Option("--count", "-n")] = 1,
) -> None:
    """Greet someone."""
    for _ in range(count):
        typer.echo(f"{greeting}, {name}!")


@app.command()
def fail(message: str = "boom") -> None:
    """Raise an exception with a message."""
    raise RuntimeError(message)


@app.command()
def leave(code: int = 3) -> None:
    typer.echo("leaving")
    raise typer.Exit(code)


@app.command("sys-exit")
def sys_exit(code: int = 5) -> None:
    sys.exit(code)


@app.command()
def interrupt() -> None:
    """Behave as if Ctrl-C arrived."""
    # A parent that ignores SIGINT (a test runner's worker) passes that on;
    # a terminal would not, so put back Python's own Ctrl-C handling.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)


@app.command()
def wait(
    seconds: Annotated[float, typer.Option("--seconds")] = 30.0,
    until_stdin_closes: Annotated[bool, typer.Option("--until-stdin-closes")] = False,
) -> None:
    """Say "ready" on stdout, then wait (to be signalled, or for stdin to close)."""
    typer.echo("ready")
    sys.stdout.flush()
    if until_stdin_closes:
        sys.stdin.read()
    else:
        time.sleep(seconds)
    typer.echo("waited")


@app.command()
@long_running
def serve() -> None:
    """A command marked long-running: it runs until stdin closes."""
    typer.echo("serving")
    sys.stdout.flush()
    sys.stdin.read()
    typer.echo("stopped")


@app.command()
def abort() -> None:
    typer.confirm("continue?", abort=True)


@db.command()
def migrate(
    force: Annotated[bool, typer.Option("--force", "-f")] = False,
    target: Annotated[str, typer.Option("--target", "-t")] = "head",
) -> None:
    typer.echo(f"migrated to {target}{' (forced)' if force else ''}")


@remote.command()
def push(dry_run: Annotated[bool, typer.Option("--dry-run")] = False) -> None:
    typer.echo(f"pushed{' (dry run)' if dry_run else ''}")


if __name__ == "__main__":
    try:
        app()
    finally:
        if os.environ.get("TOOL_THREAD_CENSUS"):
            census("returned")
