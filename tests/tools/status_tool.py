"""A tool whose author picked a back end (tests of `telemetry status`, run as a real process).

STATUS_BACKEND chooses what the author passed to Telemetry:
    posthog:<host>   backend=PostHogBackend("phc_test", host=<host>)
    otlp:<url>       backend=OTLPBackend(<url>)
    file:<path>      backend=FileBackend(<path>)
    http:<url>       backend=HTTPBackend(<url>)
    custom           backend=an object of the tool's own class, KeepItLocal
    endpoint:<url>   endpoint=<url>, no back end
    (unset)          neither
TOOL_NOW=<epoch seconds> pins the clock that decides the UTC day.
"""

from __future__ import annotations

import os
from typing import Any

import typer

from typer_telemetry import Telemetry

app = typer.Typer()


class KeepItLocal:
    """A custom back end: the author's own class."""

    def send(self, batch: Any, *, timeout: float) -> None:
        pass

    def request_deletion(self, install_id: str, *, timeout: float) -> None:
        pass


def author_settings() -> dict[str, Any]:
    kind, _, value = os.environ.get("STATUS_BACKEND", "").partition(":")
    from typer_telemetry import backends

    if kind == "posthog":
        return {"backend": backends.PostHogBackend("phc_test", host=value)}
    if kind == "otlp":
        return {"backend": backends.OTLPBackend(value)}
    if kind == "file":
        return {"backend": backends.FileBackend(value)}
    if kind == "http":
        return {"backend": backends.HTTPBackend(value)}
    if kind == "custom":
        return {"backend": KeepItLocal()}
    if kind == "endpoint":
        return {"endpoint": value}
    return {}


telemetry = Telemetry("status-tool", version="3.1.4", **author_settings())
if os.environ.get("TOOL_NOW"):
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(os.environ["TOOL_NOW"]))
telemetry.instrument(app)


@app.command()
def hello(name: str = "world") -> None:
    typer.echo(f"Hello, {name}!")


@app.command()
def other() -> None:
    typer.echo("other")


if __name__ == "__main__":
    app()
