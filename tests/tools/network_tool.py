"""A tool whose back end the network tests choose (tests/hardening/test_network_trust.py).

NETWORK_RAISE=<name> gives it a custom back end whose `send` and `request_deletion`
raise that built-in exception (or `Custom`, an exception class of the back end's own).
NETWORK_RAW_URL=<url> gives it the library's HTTP back end aimed at <url> as given,
past the endpoint check (which the tests of the check cover), so that what httpx
itself refuses (a tab in the userinfo) reaches the sender.
NETWORK_TRACE=<path>: after each call of the back end (returned or raised), one line
"<method> <exception class or ok>" is appended there, for a test to wait on.
TOOL_NOW=<epoch seconds> pins the clock; TOOL_WITHOUT_TELEMETRY=1 runs without the library.
"""

from __future__ import annotations

import builtins
import os
import sys
from typing import Any

import typer

app = typer.Typer(help="A tool for the network tests.")


class Custom(Exception):
    """An exception class only this back end knows."""


class Raising:
    """A custom back end that fails with the named exception, every time."""

    def __init__(self, name: str) -> None:
        self.kind: type[BaseException] = Custom if name == "Custom" else getattr(builtins, name)

    def send(self, batch: Any, *, timeout: float) -> None:
        raise self.kind("the back end failed while sending")

    def request_deletion(self, install_id: str, *, timeout: float) -> None:
        raise self.kind("the back end failed while deleting")


class Traced:
    """Passes every call on, and notes in NETWORK_TRACE that it ended and how."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        outcome = "ok"
        try:
            getattr(self.inner, method)(*args, **kwargs)
        except BaseException as error:
            outcome = type(error).__name__
            raise
        finally:
            with open(os.environ["NETWORK_TRACE"], "a", encoding="utf-8") as trace:
                trace.write(f"{method} {outcome}\n")

    def send(self, batch: Any, *, timeout: float) -> None:
        self._call("send", batch, timeout=timeout)

    def request_deletion(self, install_id: str, *, timeout: float) -> None:
        self._call("request_deletion", install_id, timeout=timeout)


def backend() -> Any:
    if os.environ.get("NETWORK_RAISE"):
        chosen: Any = Raising(os.environ["NETWORK_RAISE"])
    else:
        from typer_telemetry.backends import HTTPBackend

        chosen = HTTPBackend("http://127.0.0.1/")
        chosen.endpoint = os.environ["NETWORK_RAW_URL"].rstrip("/")
    return Traced(chosen) if os.environ.get("NETWORK_TRACE") else chosen


if not os.environ.get("TOOL_WITHOUT_TELEMETRY"):
    from typer_telemetry import Telemetry

    telemetry = Telemetry("network-tool", version="1.0", backend=backend(), long_running_after=0.05)
    if os.environ.get("TOOL_NOW"):
        telemetry.settings = telemetry.settings.replace(clock=lambda: float(os.environ["TOOL_NOW"]))
    telemetry.instrument(app)


@app.command()
def hello(name: str) -> None:
    typer.echo(f"Hello, {name}!")


@app.command()
def wait() -> None:
    """Say "ready", then wait for stdin to close."""
    typer.echo("ready")
    sys.stdout.flush()
    sys.stdin.read()
    typer.echo("waited")


if __name__ == "__main__":
    app()
