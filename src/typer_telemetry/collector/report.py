"""What the collected telemetry says: one aggregation, shown as text, JSON or a self-contained HTML page.

`aggregate` folds the store's rows into one document (the `--json` output,
documented in docs/collector.md "Report"); the text and HTML views only
render that document, so the three always show the same numbers.

Rules the numbers follow (each view says so where it matters):
- Counts are re-weighted where a record carries `sample_rate`: a record
  of count 3 sampled at 0.25 stands for 12 invocations. `recorded` keeps the
  raw sum.
- Distinct installs count install ids; the id itself never leaves this
  module (no view prints it, not even hashed).
- p50/p95 are estimates from the summed duration buckets: a linear
  interpolation inside the bucket that holds the rank, clamped to the
  observed minimum and maximum (the open last bucket ends at the maximum).
- Every string came from clients: the text view never reads it as rich
  markup, the HTML view escapes it everywhere.
"""

from __future__ import annotations

import html
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from .._checks import COMMAND_EVENT
from .._schema import DURATION_BUCKET_BOUNDS_MS
from .store import ReportRow

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

REPORT_FORMAT = "typer-telemetry-report"
REPORT_VERSION = 1
ERROR_OUTCOMES = ("error", "usage_error", "aborted")
# Properties that are signals or sampling, not a custom event's own fields.
SIGNAL_PROPERTIES = frozenset({"runner", "agent", "project_id", "sample_rate"})
COMMAND_PROPERTIES = frozenset({"command", "flags"})
# How many entries a "top" list keeps.
TOP = 10
PERCENTILE_METHOD = (
    "estimated from the duration buckets: linear interpolation inside the bucket holding the"
    " rank, clamped to the observed minimum and maximum"
)
WEIGHTING_NOTE = "counts of sampled records are re-weighted: count / sample_rate"
# A table is stacked (one metric a line) unless its numbers and this much of its names fit.
NAME_COLUMN_AT_LEAST = 12


class ReportSource(Protocol):
    """What the report needs of a store."""

    def report_rows(
        self, *, tool: str | None = None, since: str | None = None, until: str | None = None
    ) -> Iterator[ReportRow]: ...


# ---------------------------------------------------------------------------- aggregation


@dataclass
class _Tally:
    """Sums of one group of rows: weighted counts, outcomes, installs, durations."""

    recorded: int = 0
    invocations: float = 0.0
    outcomes: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    installs: set[str] = field(default_factory=set)
    buckets: list[float] = field(
        default_factory=lambda: [0.0] * (len(DURATION_BUCKET_BOUNDS_MS) + 1)
    )
    duration_min: float | None = None
    duration_max: float | None = None

    def add(self, row: ReportRow, weight: float) -> None:
        self.recorded += row.count
        self.invocations += row.count * weight
        self.outcomes[row.outcome] += row.count * weight
        self.installs.add(row.install_id)
        timed = sum(row.duration_ms_buckets)
        for index, bucket in enumerate(row.duration_ms_buckets[: len(self.buckets)]):
            self.buckets[index] += bucket * weight
        if timed:
            low, high = row.duration_ms_min, row.duration_ms_max
            self.duration_min = low if self.duration_min is None else min(self.duration_min, low)
            self.duration_max = high if self.duration_max is None else max(self.duration_max, high)

    def summary(self) -> dict[str, Any]:
        errors = sum(self.outcomes.get(outcome, 0.0) for outcome in ERROR_OUTCOMES)
        return {
            "recorded": self.recorded,
            "invocations": _count(self.invocations),
            "installs": len(self.installs),
            "errors": _count(errors),
            "error_rate": _rate(errors, self.invocations),
            "error_rates": {
                outcome: _rate(self.outcomes.get(outcome, 0.0), self.invocations)
                for outcome in ERROR_OUTCOMES
            },
            "p50_ms": self.percentile(0.50),
            "p95_ms": self.percentile(0.95),
        }

    def percentile(self, quantile: float) -> float | None:
        """The estimated duration below which `quantile` of the timed events fall (None: none timed)."""
        total = sum(self.buckets)
        if total <= 0 or self.duration_min is None or self.duration_max is None:
            return None
        rank = quantile * total
        before = 0.0
        for index, weight in enumerate(self.buckets):
            if weight <= 0:
                continue
            if before + weight >= rank:
                lower = float(DURATION_BUCKET_BOUNDS_MS[index - 1]) if index else 0.0
                upper = (
                    float(DURATION_BUCKET_BOUNDS_MS[index])
                    if index < len(DURATION_BUCKET_BOUNDS_MS)
                    else max(self.duration_max, lower)
                )
                estimate = lower + (upper - lower) * (rank - before) / weight
                return round(min(max(estimate, self.duration_min), self.duration_max), 1)
            before += weight
        return round(self.duration_max, 1)


def _count(value: float) -> float | int:
    """A re-weighted count: an integer when whole, else two decimals."""
    rounded = round(value, 2)
    return int(rounded) if rounded == int(rounded) else rounded


def _rate(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole > 0 else 0.0


def _weight(row: ReportRow) -> float:
    for name, value in row.properties:
        if name == "sample_rate" and isinstance(value, float) and 0 < value <= 1:
            return 1 / value
    return 1.0


def _property(row: ReportRow, name: str) -> Any:
    for found, value in row.properties:
        if found == name:
            return value
    return None


def _display(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def _python_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


class _Mix:
    """How invocations and installs split over the values of one attribute."""

    def __init__(self) -> None:
        self.tallies: dict[str, _Tally] = defaultdict(_Tally)

    def add(self, value: str, row: ReportRow, weight: float) -> None:
        self.tallies[value].add(row, weight)

    def top(self, limit: int | None = TOP) -> list[dict[str, Any]]:
        ranked = sorted(self.tallies.items(), key=lambda item: (-item[1].invocations, item[0]))
        entries: list[dict[str, Any]] = [
            {
                "name": name,
                "invocations": _count(tally.invocations),
                "installs": len(tally.installs),
            }
            for name, tally in ranked
        ]
        return entries if limit is None else entries[:limit]


class _Subject:
    """One command (by path) or one custom event of a tool."""

    def __init__(self, event: str, command: str | None) -> None:
        self.event = event
        self.command = command
        self.total = _Tally()
        self.days: dict[str, _Tally] = defaultdict(_Tally)
        self.error_classes: dict[str, float] = defaultdict(float)
        self.options = _Mix()
        self.fields: dict[str, _Mix] = defaultdict(_Mix)

    @property
    def name(self) -> str:
        if self.command is None:
            return self.event
        return self.command or "(root)"

    def add(self, row: ReportRow, weight: float) -> None:
        self.total.add(row, weight)
        self.days[row.day].add(row, weight)
        if row.error_class:
            self.error_classes[row.error_class] += row.count * weight
        for name, value in row.properties:
            if self.command is not None:
                if name == "flags" and isinstance(value, tuple):
                    for flag in value:
                        self.options.add(flag, row, weight)
            elif name not in SIGNAL_PROPERTIES:
                self.fields[name].add(_display(value), row, weight)

    def document(self) -> dict[str, Any]:
        top_errors = sorted(self.error_classes.items(), key=lambda item: (-item[1], item[0]))
        document: dict[str, Any] = {
            "event": self.event,
            "name": self.name,
            **self.total.summary(),
            "days": [{"day": day, **self.days[day].summary()} for day in sorted(self.days)],
            "error_classes": [
                {"name": name, "invocations": _count(count)} for name, count in top_errors[:TOP]
            ],
        }
        if self.command is not None:
            document["command"] = self.command
            document["options"] = self.options.top()
        else:
            document["fields"] = {name: self.fields[name].top() for name in sorted(self.fields)}
        return document


class _ToolReport:
    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.total = _Tally()
        self.days: dict[str, _Tally] = defaultdict(_Tally)
        self.subjects: dict[tuple[str, str | None], _Subject] = {}
        self.mixes = {
            name: _Mix() for name in ("versions", "python", "os", "arch", "runners", "agents")
        }
        self.projects: set[str] = set()
        self.sampled = False

    def add(self, row: ReportRow) -> None:
        weight = _weight(row)
        self.sampled = self.sampled or weight != 1.0
        self.total.add(row, weight)
        self.days[row.day].add(row, weight)
        command: str | None = None
        if row.event == COMMAND_EVENT:
            path = _property(row, "command")
            command = path if isinstance(path, str) else ""
        key = (row.event, command)
        if key not in self.subjects:
            self.subjects[key] = _Subject(row.event, command)
        self.subjects[key].add(row, weight)
        self.mixes["versions"].add(row.tool_version, row, weight)
        self.mixes["python"].add(_python_minor(row.python_version), row, weight)
        self.mixes["os"].add(row.os, row, weight)
        self.mixes["arch"].add(row.arch, row, weight)
        runner = _property(row, "runner")
        self.mixes["runners"].add(
            runner if isinstance(runner, str) else "(not recorded)", row, weight
        )
        agent = _property(row, "agent")
        if isinstance(agent, str) and agent:
            self.mixes["agents"].add(agent, row, weight)
        project = _property(row, "project_id")
        if isinstance(project, str):
            self.projects.add(project)

    def document(self) -> dict[str, Any]:
        subjects = sorted(
            self.subjects.values(),
            key=lambda subject: (subject.event != COMMAND_EVENT, subject.event, subject.name),
        )
        return {
            "tool": self.tool,
            "sampled": self.sampled,
            **self.total.summary(),
            "projects": len(self.projects),
            "days": [{"day": day, **self.days[day].summary()} for day in sorted(self.days)],
            "subjects": [subject.document() for subject in subjects],
            **{name: mix.top(limit=None) for name, mix in self.mixes.items()},
        }


def aggregate(
    rows: Iterable[ReportRow],
    *,
    tool: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, Any]:
    """The report document (`--json`): every number the text and HTML views show."""
    tools: dict[str, _ToolReport] = {}
    for row in rows:
        if row.tool not in tools:
            tools[row.tool] = _ToolReport(row.tool)
        tools[row.tool].add(row)
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "filters": {"tool": tool, "since": since, "until": until},
        "percentiles": PERCENTILE_METHOD,
        "weighting": WEIGHTING_NOTE,
        "tools": [tools[name].document() for name in sorted(tools)],
    }


def run_report(
    store: ReportSource,
    *,
    tool: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
    html: Path | None,
    console_width: int | None = None,
    file: IO[str] | None = None,
) -> None:
    """Print the report (text, or JSON with `as_json`); with `html`, also write the HTML page there."""
    document = aggregate(
        store.report_rows(tool=tool, since=since, until=until), tool=tool, since=since, until=until
    )
    out = sys.stdout if file is None else file
    if html is not None:
        _write_whole(html, render_html(document))
    if as_json:
        out.write(render_json(document))
    else:
        render_text(document, file=out, width=console_width)


def _write_whole(path: Path, text: str) -> None:
    """Write `path` through a temporary file: a reader never sees half a page."""
    import os
    import tempfile

    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with open(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def render_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------- text


def _number(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 1 or value == 0 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def render_text(document: dict[str, Any], *, file: IO[str], width: int | None = None) -> None:
    """Rich tables, never cut: a table too wide for the console is stacked, one metric a line."""
    from rich.console import Console

    console = Console(
        file=file, width=width, highlight=False, emoji=False, markup=False, soft_wrap=False
    )
    if not document["tools"]:
        console.print("No telemetry stored for this selection.")
        return
    for tool in document["tools"]:
        _print_tool(console, tool, console.width)
    console.print(f"p50/p95 are {PERCENTILE_METHOD}.")
    if any(tool["sampled"] for tool in document["tools"]):
        console.print(f"Sampled data: {WEIGHTING_NOTE}.")


def _print_tool(console: Console, tool: dict[str, Any], width: int) -> None:
    from rich.text import Text

    console.print()
    title = Text(tool["tool"], style="bold")
    if tool["sampled"]:
        title.append(" (sampled: counts re-weighted, count / sample_rate)", style="")
    console.print(title)
    console.print(
        f"{_number(tool['invocations'])} invocations, {_number(tool['installs'])} installs,"
        f" {_percent(tool['error_rate'])} errors, p50 {_ms(tool['p50_ms'])},"
        f" p95 {_ms(tool['p95_ms'])}"
    )
    columns = ("runs", "installs", "error%", "usage%", "abort%", "p50 ms", "p95 ms")

    def cells(entry: dict[str, Any]) -> list[str]:
        return [
            _number(entry["invocations"]),
            _number(entry["installs"]),
            _percent(entry["error_rates"]["error"]),
            _percent(entry["error_rates"]["usage_error"]),
            _percent(entry["error_rates"]["aborted"]),
            _number(entry["p50_ms"]),
            _number(entry["p95_ms"]),
        ]

    console.print(
        _table(
            "Per day", ("day", *columns), [[day["day"], *cells(day)] for day in tool["days"]], width
        )
    )
    subject_rows = []
    for subject in tool["subjects"]:
        label = subject["name"] if subject["event"] == COMMAND_EVENT else f"event {subject['name']}"
        subject_rows.append([label, *cells(subject)])
    console.print(_table("Commands and events", ("name", *columns), subject_rows, width))
    for subject in tool["subjects"]:
        label = subject["name"] if subject["event"] == COMMAND_EVENT else f"event {subject['name']}"
        per_day = [[day["day"], *cells(day)] for day in subject["days"]]
        if len(per_day) > 1:
            console.print(_table(f"{label}: per day", ("day", *columns), per_day, width))
        lists: list[tuple[str, str, list[dict[str, Any]]]] = [
            ("error classes", "error class", subject["error_classes"])
        ]
        if "options" in subject:
            lists.append(("options", "option", subject["options"]))
        for name, values in subject.get("fields", {}).items():
            lists.append((f"values of {name}", name, values))
        for heading, column, entries in lists:
            if entries:
                console.print(
                    _table(
                        f"{label}: top {heading}",
                        (column, "runs"),
                        [[entry["name"], _number(entry["invocations"])] for entry in entries],
                        width,
                    )
                )
    for key, heading in MIX_HEADINGS:
        if tool[key]:
            console.print(
                _table(
                    heading,
                    ("value", "invocations", "installs"),
                    [
                        [entry["name"], _number(entry["invocations"]), _number(entry["installs"])]
                        for entry in tool[key]
                    ],
                    width,
                )
            )


MIX_HEADINGS = (
    ("versions", "Tool versions"),
    ("python", "Python"),
    ("os", "Operating systems"),
    ("arch", "Architectures"),
    ("runners", "Who ran it"),
    ("agents", "Agents"),
)


def _table(
    title: str, headers: tuple[str, ...], rows: list[list[str]], width: int
) -> RenderableType:
    """A table of `rows`, or, where its columns would not fit `width` whole, a stacked one.

    Stacked: one (column, value) pair a line under each row's heading, so
    that a number is never folded or cut, however narrow the console.
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    widths = [
        max([len(header), *(len(row[n]) for row in rows)]) for n, header in enumerate(headers)
    ]
    needed = min(widths[0], NAME_COLUMN_AT_LEAST) + sum(widths[1:]) + 2 * len(headers) + 2
    if needed > width:
        table = Table(title=Text(title), show_header=False, box=box.SIMPLE, show_edge=False)
        table.add_column(overflow="fold")
        table.add_column(overflow="fold", justify="right")
        for row in rows:
            table.add_row(Text(row[0], style="bold"), Text(""))
            for header, value in zip(headers[1:], row[1:], strict=True):
                table.add_row(Text(f"  {header}"), Text(value))
        return table
    table = Table(title=Text(title), box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column(
        Text(headers[0]), overflow="fold", min_width=min(widths[0], NAME_COLUMN_AT_LEAST)
    )
    for header in headers[1:]:
        table.add_column(Text(header), justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


# ---------------------------------------------------------------------------- HTML

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}
h3{font-size:15px;margin-top:20px}
table{border-collapse:collapse;margin:8px 0}
td,th{padding:2px 10px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:16px}
.chart{border:1px solid #ddd;padding:8px;margin:0}
.note{color:#555;font-size:12px}
svg text{font:11px sans-serif;fill:#333}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


class _Page:
    """The HTML page being written; every number cell names its place in the JSON document."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def cell(self, pointer: str, value: object, shown: str) -> str:
        raw = "" if value is None else json.dumps(value)
        return f'<td data-json="{_e(pointer)}" data-value="{_e(raw)}">{_e(shown)}</td>'

    def table(self, caption: str, headers: Iterable[str], rows: Iterable[list[str]]) -> None:
        self.add(f"<table><caption>{_e(caption)}</caption><thead><tr>")
        self.add("".join(f"<th>{_e(header)}</th>" for header in headers))
        self.add("</tr></thead><tbody>")
        for row in rows:
            self.add("<tr>" + "".join(row) + "</tr>")
        self.add("</tbody></table>")


def _summary_cells(page: _Page, pointer: str, entry: dict[str, Any]) -> list[str]:
    return [
        page.cell(f"{pointer}/invocations", entry["invocations"], _number(entry["invocations"])),
        page.cell(f"{pointer}/installs", entry["installs"], _number(entry["installs"])),
        page.cell(f"{pointer}/error_rate", entry["error_rate"], _percent(entry["error_rate"])),
        *(
            page.cell(f"{pointer}/error_rates/{outcome}", rate, _percent(rate))
            for outcome, rate in ((o, entry["error_rates"][o]) for o in ERROR_OUTCOMES)
        ),
        page.cell(f"{pointer}/p50_ms", entry["p50_ms"], _number(entry["p50_ms"])),
        page.cell(f"{pointer}/p95_ms", entry["p95_ms"], _number(entry["p95_ms"])),
    ]


SUMMARY_HEADERS = (
    "invocations",
    "installs",
    "error rate",
    "error",
    "usage error",
    "aborted",
    "p50 ms (est.)",
    "p95 ms (est.)",
)


def render_html(document: dict[str, Any]) -> str:
    """One self-contained page: inline SVG charts, tables of every number, no script, no fetch."""
    page = _Page()
    page.add(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CONTENT_SECURITY_POLICY)}">'
        '<meta name="viewport" content="width=device-width">'
        f"<title>Telemetry report</title><style>{STYLE}</style></head><body>"
        "<h1>Telemetry report</h1>"
    )
    filters = document["filters"]
    chosen = ", ".join(f"{name} {value}" for name, value in sorted(filters.items()) if value)
    page.add(f'<p class="note">Selection: {_e(chosen or "everything stored")}. ')
    page.add(f"p50/p95 are {_e(PERCENTILE_METHOD)}. ")
    page.add(f"Where records were sampled, {_e(WEIGHTING_NOTE)}.</p>")
    if not document["tools"]:
        page.add("<p>No telemetry stored for this selection.</p>")
    for index, tool in enumerate(document["tools"]):
        _html_tool(page, f"/tools/{index}", tool)
    page.add("</body></html>\n")
    return "".join(page.parts)


def _html_tool(page: _Page, pointer: str, tool: dict[str, Any]) -> None:
    page.add(f'<section data-tool="{_e(tool["tool"])}"><h2>{_e(tool["tool"])}</h2>')
    if tool["sampled"]:
        page.add(f'<p class="note">Some records were sampled: {_e(WEIGHTING_NOTE)}.</p>')
    days = [day["day"] for day in tool["days"]]
    series = [
        (subject["name"], {day["day"]: float(day["invocations"]) for day in subject["days"]})
        for subject in tool["subjects"]
    ]
    page.add('<div class="charts">')
    page.add(_chart("Invocations per day", _stacked_bars(days, series)))
    page.add(
        _chart(
            "Error rate per day (%)",
            _lines(days, [("error rate", {d["day"]: d["error_rate"] * 100 for d in tool["days"]})]),
        )
    )
    page.add(
        _chart(
            "p50 / p95 per day (ms, estimated)",
            _lines(
                days,
                [
                    (
                        "p50",
                        {d["day"]: d["p50_ms"] for d in tool["days"] if d["p50_ms"] is not None},
                    ),
                    (
                        "p95",
                        {d["day"]: d["p95_ms"] for d in tool["days"] if d["p95_ms"] is not None},
                    ),
                ],
            ),
        )
    )
    page.add(
        _chart(
            "Top commands and events",
            _hbars(
                sorted(
                    ((_label(s), float(s["invocations"])) for s in tool["subjects"]),
                    key=lambda item: (-item[1], item[0]),
                )[:TOP]
            ),
        )
    )
    options: dict[str, float] = defaultdict(float)
    for subject in tool["subjects"]:
        for option in subject.get("options", []):
            options[option["name"]] += float(option["invocations"])
    if options:
        top_options = sorted(options.items(), key=lambda item: (-item[1], item[0]))[:TOP]
        page.add(_chart("Top options", _hbars(top_options)))
    for key, heading in MIX_HEADINGS:
        if tool[key]:
            page.add(
                _chart(
                    f"{heading} mix",
                    _hbars([(e["name"], float(e["invocations"])) for e in tool[key]][:TOP]),
                )
            )
    page.add("</div>")

    page.add("<h3>Totals</h3>")
    page.table(
        "All invocations",
        ("tool", *SUMMARY_HEADERS, "projects"),
        [
            [
                f"<td>{_e(tool['tool'])}</td>",
                *_summary_cells(page, pointer, tool),
                page.cell(f"{pointer}/projects", tool["projects"], _number(tool["projects"])),
            ]
        ],
    )
    page.table(
        "Per day",
        ("day", *SUMMARY_HEADERS),
        [
            [f"<td>{_e(day['day'])}</td>", *_summary_cells(page, f"{pointer}/days/{n}", day)]
            for n, day in enumerate(tool["days"])
        ],
    )
    page.table(
        "Commands and events",
        ("name", *SUMMARY_HEADERS),
        [
            [
                f"<td>{_e(_label(subject))}</td>",
                *_summary_cells(page, f"{pointer}/subjects/{n}", subject),
            ]
            for n, subject in enumerate(tool["subjects"])
        ],
    )
    for n, subject in enumerate(tool["subjects"]):
        at = f"{pointer}/subjects/{n}"
        page.add(f"<h3>{_e(_label(subject))}</h3>")
        page.table(
            "Per day",
            ("day", *SUMMARY_HEADERS),
            [
                [f"<td>{_e(day['day'])}</td>", *_summary_cells(page, f"{at}/days/{d}", day)]
                for d, day in enumerate(subject["days"])
            ],
        )
        lists: list[tuple[str, str, list[dict[str, Any]]]] = [
            ("Top error classes", f"{at}/error_classes", subject["error_classes"])
        ]
        if "options" in subject:
            lists.append(("Top options", f"{at}/options", subject["options"]))
        for name, values in subject.get("fields", {}).items():
            lists.append((f"Top values of {name}", f"{at}/fields/{_pointer_part(name)}", values))
        for caption, list_pointer, entries in lists:
            if entries:
                page.table(
                    caption,
                    ("value", "invocations", *(("installs",) if "installs" in entries[0] else ())),
                    [
                        _entry_cells(page, f"{list_pointer}/{e}", entry)
                        for e, entry in enumerate(entries)
                    ],
                )
    for key, heading in MIX_HEADINGS:
        if tool[key]:
            page.table(
                heading,
                ("value", "invocations", "installs"),
                [
                    _entry_cells(page, f"{pointer}/{key}/{e}", entry)
                    for e, entry in enumerate(tool[key])
                ],
            )
    page.add("</section>")


def _pointer_part(name: str) -> str:
    """A key as one JSON Pointer (RFC 6901) segment: `~` and `/` escaped."""
    return name.replace("~", "~0").replace("/", "~1")


def _label(subject: dict[str, Any]) -> str:
    return subject["name"] if subject["event"] == COMMAND_EVENT else f"event {subject['name']}"


def _entry_cells(page: _Page, pointer: str, entry: dict[str, Any]) -> list[str]:
    cells = [
        f"<td>{_e(entry['name'])}</td>",
        page.cell(f"{pointer}/invocations", entry["invocations"], _number(entry["invocations"])),
    ]
    if "installs" in entry:
        cells.append(
            page.cell(f"{pointer}/installs", entry["installs"], _number(entry["installs"]))
        )
    return cells


def _chart(title: str, svg: str) -> str:
    return f'<figure class="chart"><figcaption>{_e(title)}</figcaption>{svg}</figure>'


def _scale(maximum: float) -> float:
    """A round axis maximum at or above `maximum`."""
    if maximum <= 0:
        return 1.0
    step = 1.0
    while step * 10 < maximum:
        step *= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= maximum:
            return step * factor
    return step * 10


def _stacked_bars(days: list[str], series: list[tuple[str, dict[str, float]]]) -> str:
    width, height, left, bottom = 560, 240, 48, 40
    plot_w, plot_h = width - left - 150, height - bottom - 10
    totals = [sum(values.get(day, 0.0) for _, values in series) for day in days]
    top = _scale(max(totals, default=0.0))
    slot = plot_w / max(len(days), 1)
    parts = [_svg_open(width, height), _axis(left, plot_h, top)]
    for d, day in enumerate(days):
        x = left + d * slot + slot * 0.15
        y = 10.0 + plot_h
        for s, (_, values) in enumerate(series):
            value = values.get(day, 0.0)
            if value <= 0:
                continue
            h = plot_h * value / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}"'
                f' fill="{PALETTE[s % len(PALETTE)]}"><title>{_e(day)}: {_e(_number(value))}</title></rect>'
            )
        parts.append(
            f'<text x="{left + d * slot + slot / 2:.1f}" y="{height - bottom + 24}"'
            f' text-anchor="middle">{_e(day[5:])}</text>'
        )
    parts.append(_legend(width - 145, [name for name, _ in series]))
    parts.append("</svg>")
    return "".join(parts)


def _lines(days: list[str], series: list[tuple[str, dict[str, float]]]) -> str:
    width, height, left, bottom = 560, 240, 56, 40
    plot_w, plot_h = width - left - 110, height - bottom - 10
    top = _scale(max((v for _, values in series for v in values.values()), default=0.0))
    slot = plot_w / max(len(days), 1)
    parts = [_svg_open(width, height), _axis(left, plot_h, top)]
    for s, (_, values) in enumerate(series):
        color = PALETTE[s % len(PALETTE)]
        points = [
            (left + d * slot + slot / 2, 10 + plot_h - plot_h * values[day] / top)
            for d, day in enumerate(days)
            if day in values
        ]
        if len(points) > 1:
            joined = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(
                f'<polyline points="{joined}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
        for x, y in points:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>')
    for d, day in enumerate(days):
        parts.append(
            f'<text x="{left + d * slot + slot / 2:.1f}" y="{height - bottom + 24}"'
            f' text-anchor="middle">{_e(day[5:])}</text>'
        )
    parts.append(_legend(width - 105, [name for name, _ in series]))
    parts.append("</svg>")
    return "".join(parts)


def _hbars(entries: list[tuple[str, float]]) -> str:
    row, label_w, width = 22, 170, 560
    height = max(len(entries), 1) * row + 10
    top = max((value for _, value in entries), default=0.0) or 1.0
    plot_w = width - label_w - 70
    parts = [_svg_open(width, height)]
    for n, (name, value) in enumerate(entries):
        y = 5 + n * row
        shown = name if len(name) <= 26 else name[:25] + "\u2026"
        bar = plot_w * value / top
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_e(shown)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{bar:.1f}" height="{row - 6}"'
            f' fill="{PALETTE[n % len(PALETTE)]}"><title>{_e(name)}</title></rect>'
            f'<text x="{label_w + bar + 4:.1f}" y="{y + 15}">{_e(_number(_count(value)))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _svg_open(width: int, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img">'
    )


def _axis(left: int, plot_h: float, top: float) -> str:
    parts = []
    for tick in range(5):
        value = top * tick / 4
        y = 10 + plot_h - plot_h * tick / 4
        parts.append(
            f'<line x1="{left}" x2="{left + 400}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{_e(_number(_count(value)))}</text>'
        )
    return "".join(parts)


def _legend(x: int, names: list[str]) -> str:
    parts = []
    for n, name in enumerate(names[: len(PALETTE)]):
        shown = name if len(name) <= 18 else name[:17] + "\u2026"
        parts.append(
            f'<rect x="{x}" y="{12 + n * 16}" width="10" height="10" fill="{PALETTE[n]}"/>'
            f'<text x="{x + 14}" y="{21 + n * 16}">{_e(shown)}</text>'
        )
    return "".join(parts)
