"""The `telemetry` command group: status, enable, disable, reset, schema."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from . import _controls as controls
from ._config import ConfigUnwritable, DisableIncomplete
from ._consent import Decision
from ._status import status_report

DELETION_TIMEOUT_SECONDS = 3.0

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._settings import Settings


def _warn(message: str) -> None:
    typer.echo(message, err=True)


def _how_to_change(decision: Decision, settings: Settings) -> str:
    prefix = settings.env_prefix
    toggle = settings.user_command("disable" if decision.enabled else "enable")
    hints = {
        "sandbox": "unset TYPER_TELEMETRY_SANDBOX (a test session sets it) to let the other settings apply",
        "do_not_track": "unset DO_NOT_TRACK to let the other settings apply",
        "env_disabled": f"unset {prefix}_TELEMETRY_DISABLED to let the other settings apply",
        "env": f"unset {prefix}_TELEMETRY to let the stored choice apply",
        "ci": f"set {prefix}_TELEMETRY=1 to record in CI",
        "unsafe_files": "make the path above yours alone (or remove it)",
        "config": f"run `{toggle}`",
        "default": f"run `{toggle}`",
    }
    return hints[decision.source]


# Above this many pending records, text status summarises: totals per day and
# the busiest records; `status --json` always lists every record.
MAX_LISTED_RECORDS = 20
COLUMN_GAP = "  "
# Columns of the records table (under a line per day); cells of the flags
# column may wrap between flags, no other cell is ever cut or wrapped.
RECORD_COLUMNS = ("command", "outcome", "error", "flags", "count", "p50", "p95")
WRAPPING_COLUMN = RECORD_COLUMNS.index("flags")


def _estimate_percentile(buckets: list[int], fraction: float) -> str:
    """The duration bucket holding the percentile, as people read it: `<=100 ms`."""
    from ._status import estimate

    bounds = estimate(buckets, fraction)
    if bounds is None:
        return "-"
    if bounds["at_most_ms"] is None:
        return f">{bounds['above_ms']} ms"
    return f"<={bounds['at_most_ms']} ms"


def _describe_destination(destination: dict[str, Any], settings: Settings) -> str:
    kind, address = destination["kind"], destination["address"]
    if kind == "none":
        return "nowhere: no endpoint or back end is configured, nothing is sent"
    if kind == "debug":
        return (
            f"stderr: {settings.env_prefix}_TELEMETRY_DEBUG is set, "
            "payloads are printed instead of sent"
        )
    if kind == "custom":
        return f"the tool's own back end ({destination['class']})"
    names = {"http": "HTTP endpoint", "posthog": "PostHog at", "otlp": "OTLP at", "file": "file"}
    return f"{names.get(kind, kind)} {address}"


def _record_cells(record: dict[str, Any]) -> list[str]:
    """A record as the table shows it: a command's path and options given, or the tool's
    own event's name (marked as an event) and field values; the signals with either."""
    properties = dict(record["properties"])
    if record["event"] == "command":
        what = properties.pop("command") or "(root)"
        details = list(properties.pop("flags"))
    else:
        what = f"event {record['event']}"
        details = []
    details += [f"{name}={_shown(value)}" for name, value in properties.items()]
    return [
        what,
        record["outcome"],
        record["error_class"] or "-",
        " ".join(details) or "-",
        str(record["count"]),
        _estimate_percentile(record["duration_ms_buckets"], 0.5),
        _estimate_percentile(record["duration_ms_buckets"], 0.95),
    ]


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _table(
    header: tuple[str, ...], rows: list[list[str]], width: int, wrapping: int | None = None
) -> list[list[str]] | None:
    """The header and each row as lines of aligned columns within `width`.

    None if they cannot fit without cutting a value: only the `wrapping`
    column may wrap, and only between words (flags); no value is ever cut
    or shortened.
    """
    import textwrap

    columns = list(zip(header, *rows, strict=True))
    widths = [max(len(cell) for cell in column) for column in columns]
    room = width - len(COLUMN_GAP) * (len(header) - 1)
    if sum(widths) > room and wrapping is not None:
        longest_word = max(len(word) for cell in columns[wrapping] for word in cell.split(" "))
        widths[wrapping] = max(longest_word, room - (sum(widths) - widths[wrapping]))
    if sum(widths) > room:
        return None
    blocks = []
    for row in [list(header), *rows]:
        lines = []
        cells = [
            textwrap.wrap(cell, widths[index], break_long_words=False, break_on_hyphens=False)
            if index == wrapping
            else [cell]
            for index, cell in enumerate(row)
        ]
        for height in range(max(len(cell) for cell in cells)):
            parts = [
                (cell[height] if height < len(cell) else "").ljust(widths[index])
                for index, cell in enumerate(cells)
            ]
            lines.append(COLUMN_GAP.join(parts).rstrip())
        blocks.append(lines)
    return blocks


def _prose(text: str, width: int) -> list[str]:
    """A sentence wrapped between words to `width`."""
    import textwrap

    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)


def _stacked(row: list[str], width: int) -> list[str]:
    """One record as a block, for screens too narrow for the table: nothing is cut.

    Flags wrap between flags; a single value wider than the screen (a long
    command path) stays whole on its line, for the terminal to wrap.
    """
    import textwrap

    command, outcome, error, flags, count, p50, p95 = row
    lines = [f"  {command}", *_packed([outcome, *([] if error == "-" else [error])], width)]
    if flags != "-":
        lines += textwrap.wrap(
            f"flags: {flags}",
            max(width, 24),
            initial_indent="    ",
            subsequent_indent="      ",
            break_long_words=False,
            break_on_hyphens=False,
        )
    lines += _packed([f"count {count}", f"p50 {p50}", f"p95 {p95}"], width)
    return lines


def _packed(parts: list[str], width: int, indent: str = "    ") -> list[str]:
    """Parts on as few indented lines as fit in `width`, never split within a part."""
    lines = [indent + parts[0]]
    for part in parts[1:]:
        if len(lines[-1]) + 2 + len(part) <= width:
            lines[-1] += f"  {part}"
        else:
            lines.append(indent + part)
    return lines


def _records_lines(records: list[dict[str, Any]], width: int, today: object) -> list[str]:
    """Records under a line per day: a table if it fits `width` whole, else a block per record."""
    rows = [_record_cells(record) for record in records]
    blocks = _table(RECORD_COLUMNS, rows, width - 2, WRAPPING_COLUMN)
    lines = [] if blocks is None else ["  " + line for line in blocks[0]]
    day = None
    for index, record in enumerate(records):
        if record["day"] != day:
            day = record["day"]
            lines.append(f"{day}" + (" (today)" if day == today else "") + ":")
        if blocks is None:
            lines += _stacked(rows[index], width)
        else:
            lines += ["  " + line for line in blocks[index + 1]]
    return lines


def _pending_lines(settings: Settings, status: dict[str, Any], width: int) -> list[str]:
    """The pending records for people: all of them, or per-day totals and the busiest ones."""
    pending: list[dict[str, Any]] = status["pending"]
    json_command = settings.user_command("status --json")
    lines = []
    today = status.get("today")
    if any(record["day"] == today for record in pending):
        lines += _prose(f"Records of today ({today}) are sent once the day is over (UTC).", width)
    if len(pending) <= MAX_LISTED_RECORDS:
        return lines + _records_lines(pending, width, today)
    totals: dict[str, list[int]] = {}
    for record in pending:
        day_totals = totals.setdefault(record["day"], [0, 0])
        day_totals[0] += 1
        day_totals[1] += record["count"]
    day_rows = [
        [day, str(records), str(invocations), "today" if day == today else ""]
        for day, (records, invocations) in sorted(totals.items())
    ]
    day_header = ("day", "records", "invocations", "")
    lines += ["By day:"]
    day_blocks = _table(day_header, day_rows, width)
    lines += (
        [line for block in day_blocks for line in block]
        if day_blocks is not None
        else [
            f"{day}: {records} records, {invocations} invocations {note}".rstrip()
            for day, records, invocations, note in day_rows
        ]
    )
    # The busiest records, shown in the order of `pending` (by day, then key).
    busiest = sorted(
        sorted(range(len(pending)), key=lambda index: -pending[index]["count"])[:MAX_LISTED_RECORDS]
    )
    lines += ["", *_prose(f"The {len(busiest)} records with the most invocations:", width)]
    lines += _records_lines([pending[index] for index in busiest], width, today)
    more = len(pending) - len(busiest)
    lines += _prose(f"... and {more} more records; all of them, exactly as sent:", width)
    lines.append(f"  {json_command}")
    return lines


def _json_text(report: dict[str, Any]) -> str:
    """The report as JSON: a key per line, and each record of a list (`pending`) on one.

    The same JSON value as `json.dumps(report, indent=2)`, laid out so that a
    full store (thousands of records) prints in a fraction of a second rather
    than seconds, and a record can be found with grep. Lists of objects are
    encoded whole and then broken after each `}, {"`, which cannot occur
    inside an encoded string (its quotes are escaped there): only whitespace
    between tokens is added.
    """
    import json  # only for this command, never on the hot path

    encode = json.JSONEncoder(ensure_ascii=True).encode
    lines = []
    for name, value in report.items():
        text = encode(value)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            text = "[\n    " + text[1:-1].replace('}, {"', '},\n    {"') + "\n  ]"
        lines.append(f"  {encode(name)}: {text}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _print_status(settings: Settings, status: dict[str, Any]) -> None:
    # rich loads only here, for a person reading the status.
    from rich.console import Console

    console = Console(highlight=False)
    width = max(console.width, 20)

    def say(text: str, *, markup: bool = False) -> None:
        # Never wrapped by rich: a path or an id stays whole on its line
        # (a terminal narrower than it wraps it, without cutting anything); no
        # emoji codes either: `:name:` may be part of a command path.
        console.print(text, markup=markup, emoji=False, soft_wrap=True)

    state = "[bold green]on[/]" if status["enabled"] else "[bold red]off[/]"
    decision = Decision(status["enabled"], status["source"], status["reason"])
    name = settings.name.replace("[", r"\[")
    reason = str(status["reason"]).replace("[", r"\[")
    say(f"Telemetry for [bold]{name}[/] is {state}: {reason}.", markup=True)
    say(f"  To change it: {_how_to_change(decision, settings)}.")
    say(f"  Install id:   {status['install_id'] or '(none yet)'}")
    say(f"  Config file:  {status['config_path']}")
    say(f"  Data folder:  {status['data_dir']}")
    say(f"  Sent to:      {_describe_destination(status['destination'], settings)}")
    for install_id in status["pending_deletions"]:
        say(f"  Deletion of data sent under {install_id} is pending (retried later).")
    pending = status["pending"]
    if not pending:
        say("  Pending:      nothing")
        return
    days = {record["day"] for record in pending}
    invocations = sum(record["count"] for record in pending if record["event"] == "command")
    events = sum(record["count"] for record in pending if record["event"] != "command")
    counted = f"{invocations} invocations" + (f" and {events} events" if events else "")
    say(
        f"  Pending:      {counted} over {len(days)} day(s), "
        f"{len(pending)} records (`{settings.user_command('status --json')}` shows them exactly)"
    )
    for line in _pending_lines(settings, status, width):
        say(line)


def _report_incomplete_disable(settings: Settings, incomplete: DisableIncomplete) -> NoReturn:
    """Say what `disable` did and did not do, and whether telemetry is off all the same.

    Exit code 1 only when the choice could not be stored: then a later run
    may record again, and the user must know.
    """
    name = settings.name
    if incomplete.data_problem is None:
        _warn(f"Pending telemetry data of {name} was deleted.")
    else:
        _warn(f"Pending telemetry data of {name} was not deleted: {incomplete.data_problem}.")
    if incomplete.choice_problem is None:
        _warn(f"The choice is stored: telemetry for {name} is disabled.")
        raise typer.Exit(0)
    _warn(f"The choice to turn telemetry off could not be stored: {incomplete.choice_problem}.")
    decision = controls.decision(settings)
    if decision.enabled:
        _warn(
            f"Telemetry for {name} is still on: later runs record again. Fix the above and run"
            f" `{settings.user_command('disable')}` again, or set"
            f" {settings.env_prefix}_TELEMETRY=0 to turn it off meanwhile."
        )
    else:
        _warn(f"Telemetry for {name} is off for now nonetheless, because {decision.reason}.")
    raise typer.Exit(1)


def _print_schema(schema: dict[str, Any]) -> None:
    """The tool's contract for a person, never wider than the terminal, nothing cut when piped."""
    from rich.console import Console

    from ._contract import schema_lines

    console = Console(highlight=False)
    # Names outside the allowlist may be any text: on a console that cannot
    # show a character, it is written as an escape rather than fail the command.
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    for line in schema_lines(schema, max(console.width, 20)):
        try:
            shown = line.encode(encoding, "backslashreplace").decode(encoding)
        except LookupError:
            shown = line.encode("ascii", "backslashreplace").decode("ascii")
        console.print(shown, markup=False, emoji=False, soft_wrap=True)


def commands_app(
    settings: Settings, describe: Callable[[], dict[str, Any]] | None = None
) -> typer.Typer:
    """The status, enable, disable, reset and schema commands, made when the group is invoked.

    `describe` gives the tool's contract (`_contract.tool_schema` of its
    Telemetry object, which this group cannot see); without it there is no
    `schema` command.
    """
    app = typer.Typer(add_completion=False)

    if describe is not None:
        contract = describe

        @app.command()
        def schema(
            as_json: Annotated[
                bool, typer.Option("--json", help="Print the machine-readable document.")
            ] = False,
        ) -> None:
            """List every event and field this tool could ever send."""
            try:
                document = contract()
            except Exception as error:  # never a traceback from the library
                text = str(error).strip()
                reason = text.splitlines()[0] if text else type(error).__name__
                _warn(f"Could not describe {settings.name}'s telemetry: {reason}")
                raise typer.Exit(1) from None
            if as_json:
                from ._contract import schema_json

                sys.stdout.write(schema_json(document))
            else:
                _print_schema(document)

    @app.command()
    def status(
        as_json: Annotated[
            bool, typer.Option("--json", help="Print one JSON object, pending records included.")
        ] = False,
    ) -> None:
        """Show whether telemetry is on, why, and what is waiting to be sent."""
        report = status_report(settings)
        if as_json:
            sys.stdout.write(_json_text(report))
        else:
            _print_status(settings, report)

    @app.command()
    def enable() -> None:
        """Turn telemetry on for this user."""
        try:
            decision = controls.enable(settings)
        except ConfigUnwritable as error:
            _warn(f"Could not save the choice: {error}")
            raise typer.Exit(1) from None
        typer.echo(f"Telemetry for {settings.name} is enabled.")
        if not decision.enabled:
            _warn(f"Note: it stays off for now, because {decision.reason}.")

    @app.command()
    def disable() -> None:
        """Turn telemetry off for this user and delete everything not yet sent."""
        try:
            decision = controls.disable(settings)
        except DisableIncomplete as incomplete:
            _report_incomplete_disable(settings, incomplete)
        typer.echo(f"Telemetry for {settings.name} is disabled; pending data was deleted.")
        if decision.enabled:
            _warn(f"Note: it stays on for now, because {decision.reason}.")

    @app.command()
    def reset() -> None:
        """Delete local telemetry data and start over with a new install id."""
        # Requests left from an earlier reset count too: this process's own
        # long-running trigger may send them while the reset runs.
        earlier = controls.pending_deletions(settings)
        try:
            done = controls.reset(settings)
        except OSError as error:  # ConfigUnwritable, or a data folder that is not ours alone
            _warn(f"Could not reset: {error}")
            raise typer.Exit(1) from None
        typer.echo(f"Local telemetry data of {settings.name} was deleted.")
        typer.echo(f"Install id: {done.old_id or '(none)'} -> {done.new_id}")
        # Only ids data was sent under are queued: a tool that never sent connects nowhere.
        queued = [*earlier, *done.pending_deletions]
        if not queued:
            return
        # Never raises; the local part is done whatever happens here (exit code 0).
        report = controls.request_deletions(settings, timeout=DELETION_TIMEOUT_SECONDS)
        left = [
            install_id
            for install_id in controls.pending_deletions(settings)
            if install_id in queued
        ]
        if not left:
            typer.echo("The receiver was asked to delete the data sent under the old install id.")
        else:
            ids = ", ".join(left)
            _warn(
                f"Could not ask the receiver to delete the data sent under {ids}"
                f" ({report.error or report.skipped or 'not sent'}); the request is kept and"
                f" made again by the next `{settings.user_command('reset')}` or long-running"
                " run while telemetry is on."
            )

    return app
