"""The collector's report: the numbers, the text that fits, the JSON for scripts, an inert HTML page."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.collector.report_example import INSTALL_PREFIX, FakeStore, example_rows, row
from typer_telemetry.collector.report import render_html, run_report

ROOT = Path(__file__).resolve().parents[2]
I1, I2 = INSTALL_PREFIX + "00000000a001", INSTALL_PREFIX + "00000000a002"


def hand_made_rows() -> FakeStore:
    """Numbers small enough to check by hand (see each test's arithmetic)."""
    return FakeStore(
        [
            row(
                tool="t",
                install_id=I1,
                tool_version="1.0",
                properties={"command": "deploy", "flags": ("--force",), "runner": "terminal"},
                durations=[3, 7, 20, 40],
            ),
            row(
                tool="t",
                install_id=I2,
                tool_version="1.0",
                properties={"command": "deploy", "flags": (), "runner": "terminal"},
                outcome="error",
                error_class="ValueError",
                durations=[400],
            ),
            row(
                tool="t",
                install_id=I2,
                tool_version="1.1",
                python_version="3.13.0",
                os="Darwin",
                properties={
                    "command": "deploy",
                    "flags": (),
                    "runner": "agent",
                    "agent": "claude-code",
                },
                outcome="usage_error",
                error_class="UsageError",
                durations=[2],
            ),
            row(
                tool="t",
                install_id=I1,
                tool_version="1.1",
                day="2026-11-24",
                properties={"command": "deploy", "flags": ()},
                outcome="aborted",
                durations=[60],
            ),
            row(
                tool="t",
                install_id=I1,
                event="ingest",
                properties={"driver": "postgres", "demo": False},
                durations=[1000, 1000],
            ),
            row(
                tool="t",
                install_id=I2,
                event="ingest",
                properties={"driver": "sqlite", "demo": False},
                durations=[],
                count=1,
            ),
            row(
                tool="s",
                install_id=I1,
                properties={"command": "check", "flags": (), "sample_rate": 0.25},
                durations=[10, 10],
            ),
            row(
                tool="s",
                install_id=I2,
                properties={"command": "check", "flags": ()},
                durations=[10],
            ),
        ]
    )


def report(store: FakeStore, **options: Any) -> dict[str, Any]:
    out = io.StringIO()
    run_report(
        store,
        tool=options.get("tool"),
        since=options.get("since"),
        until=options.get("until"),
        as_json=True,
        html=None,
        file=out,
    )
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


def text(store: FakeStore, width: int | None) -> str:
    out = io.StringIO()
    run_report(
        store,
        tool=None,
        since=None,
        until=None,
        as_json=False,
        html=None,
        console_width=width,
        file=out,
    )
    return out.getvalue()


def by_name(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in entries}


def test_invocations_installs_and_error_rates_per_command_all_and_by_outcome() -> None:
    tool = report(hand_made_rows())["tools"][1]
    assert tool["tool"] == "t"
    deploy = by_name(tool["subjects"])["deploy"]
    # 4 successes, 1 error, 1 usage error, 1 aborted, by two installs.
    assert (deploy["invocations"], deploy["installs"], deploy["errors"]) == (7, 2, 3)
    assert deploy["error_rate"] == round(3 / 7, 4)
    assert deploy["error_rates"] == {
        "error": round(1 / 7, 4),
        "usage_error": round(1 / 7, 4),
        "aborted": round(1 / 7, 4),
    }
    assert [(day["day"], day["invocations"]) for day in deploy["days"]] == [
        ("2026-11-23", 6),
        ("2026-11-24", 1),
    ]
    assert deploy["error_classes"] == [
        {"name": "UsageError", "invocations": 1},
        {"name": "ValueError", "invocations": 1},
    ]
    assert deploy["options"] == [{"name": "--force", "invocations": 4, "installs": 1}]
    assert (tool["invocations"], tool["installs"]) == (10, 2)


def test_percentiles_interpolate_inside_the_bucket_and_stay_within_the_observed_range() -> None:
    deploy = by_name(report(hand_made_rows())["tools"][1]["subjects"])["deploy"]
    # Buckets of 2, 3, 7, 20, 40, 60, 400 ms: <=5: 2, <=10: 1, <=25: 1, <=50: 1, <=100: 1, <=500: 1.
    # p50: rank 3.5 falls half-way into the 10-25 bucket -> 17.5.
    assert deploy["p50_ms"] == 17.5
    # p95: rank 6.65 is in the 250-500 bucket at 0.65 -> 412.5, above the slowest seen: 400.
    assert deploy["p95_ms"] == 400.0
    ingest = by_name(report(hand_made_rows())["tools"][1]["subjects"])["ingest"]
    # Only timed events count: two of 1000 ms (in the 500-1000 bucket), clamped to 1000.
    assert (ingest["p50_ms"], ingest["p95_ms"]) == (1000.0, 1000.0)


def test_sampled_records_are_reweighted_and_the_output_says_so() -> None:
    document = report(hand_made_rows())
    sampled = document["tools"][0]
    assert sampled["tool"] == "s"
    # 2 recorded at a sample rate of 0.25 stand for 8, plus 1 unsampled.
    assert (sampled["recorded"], sampled["invocations"], sampled["sampled"]) == (3, 9, True)
    assert document["weighting"] == "counts of sampled records are re-weighted: count / sample_rate"
    assert "re-weighted: count / sample_rate" in text(hand_made_rows(), 80)
    assert "Some records were sampled" in render_html(document)
    assert document["tools"][1]["sampled"] is False


def test_custom_event_fields_versions_platforms_and_runners_are_counted() -> None:
    tool = report(hand_made_rows())["tools"][1]
    ingest = by_name(tool["subjects"])["ingest"]
    assert ingest["event"] == "ingest"
    assert "command" not in ingest
    assert ingest["fields"] == {
        "demo": [{"name": "false", "invocations": 3, "installs": 2}],
        "driver": [
            {"name": "postgres", "invocations": 2, "installs": 1},
            {"name": "sqlite", "invocations": 1, "installs": 1},
        ],
    }
    assert by_name(tool["versions"]) == {
        "1.0": {"name": "1.0", "invocations": 5, "installs": 2},
        "1.1": {"name": "1.1", "invocations": 2, "installs": 2},
        "2.4.1": {"name": "2.4.1", "invocations": 3, "installs": 2},
    }
    assert [(e["name"], e["invocations"]) for e in tool["python"]] == [("3.12", 9), ("3.13", 1)]
    assert [(e["name"], e["invocations"]) for e in tool["os"]] == [("Linux", 9), ("Darwin", 1)]
    assert [(e["name"], e["invocations"]) for e in tool["runners"]] == [
        ("terminal", 5),
        ("(not recorded)", 4),
        ("agent", 1),
    ]
    assert [(e["name"], e["invocations"]) for e in tool["agents"]] == [("claude-code", 1)]


def test_the_selection_is_passed_to_the_store_and_stated_in_the_document() -> None:
    store = hand_made_rows()
    document = report(store, tool="t", since="2026-11-24", until="2026-11-30")
    assert store.asked == [("t", "2026-11-24", "2026-11-30")]
    assert document["filters"] == {"tool": "t", "since": "2026-11-24", "until": "2026-11-30"}
    assert [tool["invocations"] for tool in document["tools"]] == [1]


def test_the_json_is_stable_sorted_and_documented() -> None:
    first, second = (json.dumps(report(FakeStore(example_rows()))) for _ in range(2))
    assert first == second
    out = io.StringIO()
    run_report(
        FakeStore(example_rows()),
        tool=None,
        since=None,
        until=None,
        as_json=True,
        html=None,
        file=out,
    )
    document = json.loads(out.getvalue())
    assert (
        out.getvalue() == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )
    assert (document["format"], document["version"]) == ("typer-telemetry-report", 1)
    documented = (ROOT / "docs" / "collector.md").read_text(encoding="utf-8")
    for key in sorted(_keys(document)):
        assert f"`{key}`" in documented, f"the docs do not explain the report's {key!r}"


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        found = set()
        for key, inner in value.items():
            if key not in {"fields"}:
                found.add(key)
                found |= _keys(inner)
            else:
                for entries in inner.values():
                    found |= _keys(entries)
                found.add(key)
        return found
    if isinstance(value, list):
        return set().union(*(_keys(item) for item in value)) if value else set()
    return set()


def test_the_install_id_is_never_printed_in_any_view(tmp_path: Path) -> None:
    store = FakeStore(example_rows() + hand_made_rows().rows)
    page = tmp_path / "report.html"
    outputs = []
    for as_json in (True, False):
        out = io.StringIO()
        run_report(store, tool=None, since=None, until=None, as_json=as_json, html=page, file=out)
        outputs.append(out.getvalue())
    outputs.append(page.read_text(encoding="utf-8"))
    for output in outputs:
        assert INSTALL_PREFIX[:8] not in output
        assert "00000000a001" not in output


@pytest.mark.parametrize("width", [80, 40])
def test_the_text_fits_the_width_and_never_cuts_a_number(width: int) -> None:
    store = FakeStore(example_rows())
    document = report(store)
    output = text(store, width)
    lines = output.splitlines()
    assert max(len(line) for line in lines) <= width
    assert "\u2026" not in output
    tokens = set(re.findall(r"[0-9][0-9,.]*%?", output))
    for tool in document["tools"]:
        for subject in tool["subjects"]:
            assert f"{subject['invocations']:,}" in tokens
            assert f"{subject['p95_ms']:,.1f}" in tokens
            assert f"{subject['error_rates']['error'] * 100:.1f}%" in tokens
        for day in tool["days"]:
            assert day["day"] in output
    # Every name is whole: a 40-column console stacks rather than folds the tables.
    assert "ingest_completed" in output
    assert "claude-code" in output


def test_piped_text_is_never_cut() -> None:
    program = (
        "from tests.collector.report_example import FakeStore, example_rows\n"
        "from typer_telemetry.collector.report import run_report\n"
        "run_report(FakeStore(example_rows()), tool=None, since=None, until=None,"
        " as_json=False, html=None)\n"
    )
    environment = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES"}}
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**environment, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert result.stderr == ""
    assert "\u2026" not in result.stdout
    assert "\x1b[" not in result.stdout  # no colour codes into a pipe
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "Commands and events" in result.stdout


HOSTILE_FIELD = '<script>document.body.setAttribute("data-pwned", "1")</script>'
HOSTILE_MARKUP = "[bold red]x[/bold red]"


def hostile_store() -> FakeStore:
    """Strings a validating collector would refuse, stored anyway (a hostile database)."""
    return FakeStore(
        [
            row(
                tool='acme"><img src=x onerror=alert(1)>',
                event="ingest",
                properties={"driver": HOSTILE_FIELD, "mode": HOSTILE_MARKUP},
                error_class="</table><script>alert(2)</script>",
                outcome="error",
            ),
            row(properties={"command": "<b>deploy</b>", "flags": ("--x'\"<>",)}),
        ]
    )


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_hostile_strings_are_inert_in_the_html_and_literal_in_the_text() -> None:
    store = hostile_store()
    page = render_html(report(store))
    parsed = Elements()
    parsed.feed(page)
    tags = [tag for tag, _ in parsed.tags]
    assert "script" not in tags
    assert "img" not in tags
    assert "b" not in tags
    assert not any(name.startswith("on") for _, attrs in parsed.tags for name in attrs)
    shown = "".join(parsed.text)
    assert HOSTILE_FIELD in shown
    assert "<b>deploy</b>" in shown
    assert "</table><script>alert(2)</script>" in shown

    output = text(store, 200)
    assert HOSTILE_MARKUP in output  # rich markup in data is shown, not interpreted
    assert HOSTILE_FIELD in output


def test_the_page_is_self_contained_under_a_strict_content_security_policy() -> None:
    page = render_html(report(FakeStore(example_rows())))
    parsed = Elements()
    parsed.feed(page)
    policies = [
        attrs.get("content")
        for tag, attrs in parsed.tags
        if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"
    ]
    assert policies == ["default-src 'none'; style-src 'unsafe-inline'; img-src data:"]
    assert {tag for tag, _ in parsed.tags} & {"script", "link", "img", "iframe", "object"} == set()
    # The only URL is SVG's namespace name, which is never fetched.
    assert set(re.findall(r"https?://[^\"' )]+", page)) == {"http://www.w3.org/2000/svg"}
    assert page.count("<svg") >= 6


def test_an_empty_selection_says_so_in_every_view(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    out = io.StringIO()
    run_report(
        FakeStore(), tool="nothing", since=None, until=None, as_json=True, html=page, file=out
    )
    assert json.loads(out.getvalue())["tools"] == []
    assert "No telemetry stored for this selection." in page.read_text(encoding="utf-8")
    assert "No telemetry stored for this selection." in text(FakeStore(), 80)
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
