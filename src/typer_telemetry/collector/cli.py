"""`typer-telemetry-collector serve|forget|report`: run the collector, forget an install, report.

The command is itself a Typer tool instrumented with this library, with
telemetry off unless its operator turns it on (`consent="opt-in"`:
`typer-telemetry-collector telemetry enable`) and no endpoint unless they set
`TYPER_TELEMETRY_COLLECTOR_TELEMETRY_ENDPOINT` (the library's own variable
for this tool's name).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from typer_telemetry import Telemetry
from typer_telemetry._version import __version__

from .rows import RateLimit

if TYPE_CHECKING:
    from .store import Store

app = typer.Typer(
    help="The reference collector for typer-telemetry: ingest, forget, report.",
    no_args_is_help=True,
    add_completion=False,
)
telemetry = Telemetry("typer-telemetry-collector", version=__version__, consent="opt-in")
telemetry.instrument(app)

DB_HELP = "sqlite:///PATH (or a bare path) or postgresql://USER@HOST/DB"


@app.command()
def serve(
    db: Annotated[str, typer.Option("--db", help=DB_HELP)] = "telemetry.sqlite",
    host: Annotated[str, typer.Option("--host", help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8000,
    schema: Annotated[
        list[Path] | None,
        typer.Option(
            "--schema",
            help="A tool's `telemetry schema --json` file (repeat: one per tool).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    prefix: Annotated[str, typer.Option("--prefix", help="The path the API is under.")] = "/v1",
    forward_posthog: Annotated[
        str | None,
        typer.Option(
            "--forward-posthog",
            envvar="TYPER_TELEMETRY_COLLECTOR_FORWARD_POSTHOG",
            help="Also forward stored batches to this PostHog host.",
        ),
    ] = None,
    posthog_key: Annotated[
        str | None,
        typer.Option("--posthog-key", envvar="TYPER_TELEMETRY_COLLECTOR_POSTHOG_KEY"),
    ] = None,
    forward_queue: Annotated[
        Path,
        typer.Option("--forward-queue", help="Where batches wait to be forwarded."),
    ] = Path("forward-queue"),
    rate: Annotated[
        int, typer.Option("--rate", min=1, help="Batches per install id per hour.")
    ] = RateLimit().batches,
    workers: Annotated[int, typer.Option("--workers", min=1)] = 1,
    schema_reload: Annotated[
        float,
        typer.Option(
            "--schema-reload",
            min=0.0,
            help="Seconds between reads of the schemas other replicas registered.",
        ),
    ] = 60.0,
) -> None:
    """Serve the ingest API until interrupted."""
    import uvicorn

    from .app import CONFIG_VARIABLE
    from .store import open_store
    from .validation import ToolSchema, schemas_by_tool

    if forward_posthog and not posthog_key:
        raise typer.BadParameter(
            "--forward-posthog needs --posthog-key", param_hint="--posthog-key"
        )
    schemas = [path.resolve() for path in schema or ()]
    try:
        read = [ToolSchema.read(path) for path in schemas]
        schemas_by_tool(contract for contract, _text in read)
        store = open_store(db)  # the tables, made once before any worker starts
        try:
            for contract, text in read:  # for every replica, also those started without them
                store.register_schema(contract.tool, text)
        finally:
            store.close()
    except Exception as error:
        typer.echo(f"typer-telemetry-collector: {error}", err=True)
        raise typer.Exit(2) from None
    os.environ[CONFIG_VARIABLE] = json.dumps(
        {
            "db": db,
            "schemas": [str(path) for path in schemas],
            "prefix": prefix,
            "forward_posthog": forward_posthog,
            "posthog_key": posthog_key,
            "forward_queue": str(forward_queue.resolve()),
            "rate_batches": rate,
            "rate_window_seconds": RateLimit().window_seconds,
            "schema_reload_seconds": schema_reload,
        }
    )
    uvicorn.run(
        "typer_telemetry.collector.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # an access line carries the client's address
        proxy_headers=False,  # never read X-Forwarded-For
        server_header=False,
        log_config=_log_config(),
    )


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus the collector's own lines (deletions, store failures) on stderr."""
    from uvicorn.config import LOGGING_CONFIG

    config = json.loads(json.dumps(LOGGING_CONFIG))
    config["loggers"]["typer_telemetry.collector"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    return dict(config)


@app.command()
def forget(
    install_id: Annotated[str, typer.Argument(help="The install id to forget.")],
    db: Annotated[str, typer.Option("--db", help=DB_HELP)] = "telemetry.sqlite",
) -> None:
    """Remove every stored record of one install id (as its deletion request would)."""
    from .validation import Refused, check_deletion

    try:
        check_deletion(
            {"format": "typer-telemetry-deletion", "version": 1, "install_id": install_id}
        )
    except Refused as error:
        raise typer.BadParameter(str(error), param_hint="INSTALL_ID") from None
    store = _opened(db)
    try:
        removed = store.forget(install_id)
    finally:
        store.close()
    typer.echo(f"removed {removed} records", err=True)


@app.command()
def report(
    db: Annotated[str, typer.Option("--db", help=DB_HELP)] = "telemetry.sqlite",
    tool: Annotated[str | None, typer.Option("--tool")] = None,
    since: Annotated[str | None, typer.Option("--since", help="First day, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Last day, YYYY-MM-DD.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    html: Annotated[Path | None, typer.Option("--html", dir_okay=False)] = None,
) -> None:
    """What the stored data says: commands, events, versions, platforms, durations."""
    from .._checks import is_day
    from .report import run_report  # type: ignore[import-not-found,unused-ignore]

    for name, day in (("--since", since), ("--until", until)):
        if day is not None and not is_day(day):
            raise typer.BadParameter("use YYYY-MM-DD", param_hint=name)
    store = _opened(db)
    try:
        run_report(store, tool=tool, since=since, until=until, as_json=as_json, html=html)
    finally:
        store.close()


def _opened(db: str) -> Store:
    """The store at `db`, or exit 2 saying why it cannot be opened (no traceback)."""
    from .store import open_store

    try:
        return open_store(db)
    except Exception as error:
        typer.echo(f"typer-telemetry-collector: cannot open {db}: {error}", err=True)
        raise typer.Exit(2) from None


def main() -> None:
    app(prog_name="typer-telemetry-collector")


if __name__ == "__main__":  # pragma: no cover
    main()
