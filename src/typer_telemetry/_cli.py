"""The `telemetry` command group: status, enable, disable, reset."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ._config import ConfigUnwritable, DisableIncomplete
from ._consent import Decision
from ._schema import DURATION_BUCKET_BOUNDS_MS

DELETION_TIMEOUT_SECONDS = 3.0

if TYPE_CHECKING:
    from ._telemetry import Telemetry


def _warn(message: str) -> None:
    typer.echo(message, err=True)


def _how_to_change(decision: Decision, telemetry: Telemetry) -> str:
    prefix = telemetry.env_prefix
    toggle = telemetry.user_command("disable" if decision.enabled else "enable")
    hints = {
        "do_not_track": "unset DO_NOT_TRACK to let the other settings apply",
        "env_disabled": f"unset {prefix}_TELEMETRY_DISABLED to let the other settings apply",
        "env": f"unset {prefix}_TELEMETRY to let the stored choice apply",
        "ci": f"set {prefix}_TELEMETRY=1 to record in CI",
        "unsafe_files": "make the path above yours alone (or remove it)",
        "config": f"run `{toggle}`",
        "default": f"run `{toggle}`",
    }
    return hints[decision.source]


def _estimate_percentile(buckets: list[int], fraction: float) -> str:
    total = sum(buckets)
    if total == 0:
        return "-"
    running = 0
    for index, count in enumerate(buckets):
        running += count
        if running >= fraction * total:
            if index < len(DURATION_BUCKET_BOUNDS_MS):
                return f"<={DURATION_BUCKET_BOUNDS_MS[index]} ms"
            return f">{DURATION_BUCKET_BOUNDS_MS[-1]} ms"
    return "-"  # pragma: no cover


def _print_status(telemetry: Telemetry, status: dict[str, Any]) -> None:
    # rich loads only here, for a person reading the status.
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    state = "[bold green]on[/]" if status["enabled"] else "[bold red]off[/]"
    decision = Decision(status["enabled"], status["source"], status["reason"])
    console.print(f"Telemetry for [bold]{telemetry.name}[/] is {state}: {status['reason']}.")
    console.print(f"  To change it: {_how_to_change(decision, telemetry)}.")
    console.print(f"  Install id:   {status['install_id'] or '(none yet)'}")
    console.print(f"  Config file:  {status['config_path']}")
    console.print(f"  Data folder:  {status['data_dir']}")
    console.print(f"  Endpoint:     {status['endpoint'] or '(none: nothing is sent)'}")
    for install_id in status["pending_deletions"]:
        console.print(f"  Deletion of data sent under {install_id} is pending (retried later).")
    pending = status["pending"]
    if not pending:
        console.print("  Pending:      nothing")
        return
    days = sorted({record["day"] for record in pending})
    invocations = sum(record["count"] for record in pending)
    console.print(
        f"  Pending:      {invocations} invocations over {len(days)} day(s), "
        f"{len(pending)} records (`{telemetry.user_command('status --json')}` shows them exactly)"
    )
    table = Table(box=None, pad_edge=False)
    for column in ("day", "command", "outcome", "error", "flags", "count", "p50", "p95"):
        table.add_column(column)
    for record in pending:
        table.add_row(
            record["day"],
            record["command"] or "(root)",
            record["outcome"],
            record["error_class"] or "-",
            " ".join(record["flags"]) or "-",
            str(record["count"]),
            _estimate_percentile(record["duration_ms_buckets"], 0.5),
            _estimate_percentile(record["duration_ms_buckets"], 0.95),
        )
    console.print(table)


def _report_incomplete_disable(telemetry: Telemetry, incomplete: DisableIncomplete) -> NoReturn:
    """Say what `disable` did and did not do, and whether telemetry is off all the same.

    Exit code 1 only when the choice could not be stored: then a later run
    may record again, and the user must know.
    """
    name = telemetry.name
    if incomplete.data_problem is None:
        _warn(f"Pending telemetry data of {name} was deleted.")
    else:
        _warn(f"Pending telemetry data of {name} was not deleted: {incomplete.data_problem}.")
    if incomplete.choice_problem is None:
        _warn(f"The choice is stored: telemetry for {name} is disabled.")
        raise typer.Exit(0)
    _warn(f"The choice to turn telemetry off could not be stored: {incomplete.choice_problem}.")
    decision = telemetry.decide()
    if decision.enabled:
        _warn(
            f"Telemetry for {name} is still on: later runs record again. Fix the above and run"
            f" `{telemetry.user_command('disable')}` again, or set"
            f" {telemetry.env_prefix}_TELEMETRY=0 to turn it off meanwhile."
        )
    else:
        _warn(f"Telemetry for {name} is off for now nonetheless, because {decision.reason}.")
    raise typer.Exit(1)


def commands_app(telemetry: Telemetry) -> typer.Typer:
    """The status, enable, disable and reset commands, made when the group is invoked."""
    app = typer.Typer(add_completion=False)

    @app.command()
    def status(
        as_json: Annotated[
            bool, typer.Option("--json", help="Print one JSON object, pending records included.")
        ] = False,
    ) -> None:
        """Show whether telemetry is on, why, and what is waiting to be sent."""
        report = telemetry.status()
        if as_json:
            import json  # only for this command, never on the hot path

            sys.stdout.write(json.dumps(report, indent=2) + "\n")
        else:
            _print_status(telemetry, report)

    @app.command()
    def enable() -> None:
        """Turn telemetry on for this user."""
        try:
            decision = telemetry.enable()
        except ConfigUnwritable as error:
            _warn(f"Could not save the choice: {error}")
            raise typer.Exit(1) from None
        typer.echo(f"Telemetry for {telemetry.name} is enabled.")
        if not decision.enabled:
            _warn(f"Note: it stays off for now, because {decision.reason}.")

    @app.command()
    def disable() -> None:
        """Turn telemetry off for this user and delete everything not yet sent."""
        try:
            decision = telemetry.disable()
        except DisableIncomplete as incomplete:
            _report_incomplete_disable(telemetry, incomplete)
        typer.echo(f"Telemetry for {telemetry.name} is disabled; pending data was deleted.")
        if decision.enabled:
            _warn(f"Note: it stays on for now, because {decision.reason}.")

    @app.command()
    def reset() -> None:
        """Delete local telemetry data and start over with a new install id."""
        # Requests left from an earlier reset count too: this process's own
        # long-running trigger may send them while the reset runs.
        earlier = telemetry.pending_deletions()
        try:
            old_id, new_id = telemetry.reset()
        except OSError as error:  # ConfigUnwritable, or a data folder that is not ours alone
            _warn(f"Could not reset: {error}")
            raise typer.Exit(1) from None
        typer.echo(f"Local telemetry data of {telemetry.name} was deleted.")
        typer.echo(f"Install id: {old_id or '(none)'} -> {new_id}")
        # Only ids data was sent under are queued: a tool that never sent connects nowhere.
        queued = [*earlier, *telemetry._queued_deletions]
        if not queued:
            return
        # Never raises; the local part is done whatever happens here (exit code 0).
        report = telemetry.request_deletions(timeout=DELETION_TIMEOUT_SECONDS)
        left = [install_id for install_id in telemetry.pending_deletions() if install_id in queued]
        if not left:
            typer.echo("The receiver was asked to delete the data sent under the old install id.")
        else:
            ids = ", ".join(left)
            _warn(
                f"Could not ask the receiver to delete the data sent under {ids}"
                f" ({report.error or report.skipped or 'not sent'}); the request is kept and"
                f" made again by the next `{telemetry.user_command('reset')}` or long-running"
                " run while telemetry is on."
            )

    return app
