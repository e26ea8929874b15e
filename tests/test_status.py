"""`telemetry status`: readable at any width, the destination in force, the JSON beside `pending`."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Tool, append_event, tool_script
from typer_telemetry._delivery import build_envelope
from typer_telemetry._recording import Observation
from typer_telemetry._schema import DURATION_BUCKET_BOUNDS_MS, ROLLUP_FIELD_NAMES
from typer_telemetry._store import RollupStore

NOON = datetime.datetime(2026, 3, 10, 12, tzinfo=datetime.timezone.utc).timestamp()
TODAY = "2026-03-10"
YESTERDAY = "2026-03-09"

# Records whose cells a truncating table cut: long outcomes, error classes and flag lists.
WIDE_RECORDS = [
    Observation.of_command(
        YESTERDAY,
        "database remote synchronise-everything",
        "usage_error",
        "MissingParameter",
        ("--configuration-file", "--dry-run", "--verbose"),
        3.0,
    ),
    Observation.of_command(
        TODAY,
        "export",
        "error",
        "FileNotFoundError",
        ("--destination-folder", "--overwrite-existing"),
        40.0,
    ),
    Observation.of_command(TODAY, "", "aborted", "KeyboardInterrupt", (), 2_000_000.0),
    # An event of the tool's own: its name marked as an event, its fields as name=value.
    Observation(
        TODAY,
        "ingest_completed",
        (("demo", False), ("driver", "postgres"), ("table_count", "100-1000")),
        "success",
        "",
        700.0,
    ),
]


def status_tool(home: Path, backend: str = "") -> Tool:
    return Tool(
        tool_script("status_tool"),
        home,
        env={"STATUS_BACKEND": backend} if backend else {},
    )


def plant(tool: Tool, observations: list[Observation], today: str = TODAY) -> None:
    """Record invocations into the tool's store through the store itself (journal lines)."""
    store = RollupStore(tool.store_dir, lambda message: None)
    for observation in observations:
        append_event(store, observation)


def values_of(observation: Observation) -> list[str]:
    """Every value a person must find whole in the status of this record."""
    properties = dict(observation.properties)
    if observation.event == "command":
        shown = [str(properties["command"]) or "(root)", *properties["flags"]]  # type: ignore[misc]
    else:
        shown = [f"event {observation.event}"] + [
            f"{name}={str(value).lower() if isinstance(value, bool) else value}"
            for name, value in observation.properties
        ]
    return [
        *shown,
        observation.outcome,
        *([observation.error_class] if observation.error_class else []),
    ]


@pytest.mark.parametrize("columns", ["200", "80", "40", None])
def test_status_text_shows_every_value_whole_at_any_width_and_when_piped(
    home: Path, columns: str | None
) -> None:
    tool = status_tool(home)
    plant(tool, WIDE_RECORDS)
    env = {"TOOL_NOW": str(NOON)}
    environment = tool.environment(env)
    if columns is None:
        del environment["COLUMNS"]  # piped, no width given: the library must pick one
    else:
        environment["COLUMNS"] = columns
    result = subprocess.run(
        [sys.executable, str(tool.script), "telemetry", "status"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=home,
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "…" not in text  # nothing cut with an ellipsis
    assert "..." not in text
    lines = text.splitlines()
    for observation in WIDE_RECORDS:
        for value in values_of(observation):
            assert any(value in line for line in lines), (value, text)
    assert str(tool.store_dir) in lines[4]  # paths are never folded into pieces either
    if columns is not None:
        width = int(columns)
        pending_line = next(index for index, line in enumerate(lines) if "Pending:" in line)
        for line in lines[pending_line + 1 :]:
            # Only a single value wider than the screen may overflow it (not here).
            assert len(line) <= width, (line, width)


def test_status_json_keeps_pending_as_sent_and_adds_estimates_envelope_and_today(
    home: Path,
) -> None:
    tool = status_tool(home)
    tool.run("hello", env={"TOOL_NOW": str(NOON)})  # mints the install id
    plant(tool, WIDE_RECORDS)
    status = tool.status({"TOOL_NOW": str(NOON)})
    pending = status["pending"]
    details = status["pending_details"]
    assert isinstance(pending, list)
    assert isinstance(details, list)
    assert all(tuple(record) == ROLLUP_FIELD_NAMES for record in pending)
    assert len(details) == len(pending)
    assert status["duration_bucket_bounds_ms"] == list(DURATION_BUCKET_BOUNDS_MS)
    assert status["today"] is not None
    by_command = {
        record["properties"].get("command", record["event"]): detail
        for record, detail in zip(pending, details, strict=True)
    }
    slow = by_command[""]  # 2,000,000 ms: past the last bound, in the open bucket
    assert slow["p50_ms"] == slow["p95_ms"] == {"above_ms": 1_800_000, "at_most_ms": None}
    assert by_command["export"]["p50_ms"] == {"above_ms": 25, "at_most_ms": 50}
    assert by_command["database remote synchronise-everything"]["p95_ms"] == {
        "above_ms": 0,
        "at_most_ms": 5,
    }
    assert by_command["ingest_completed"]["p50_ms"] == {"above_ms": 500, "at_most_ms": 1000}
    today = status["today"]
    for record, detail in zip(pending, details, strict=True):
        assert detail["sendable"] is (record["day"] < today)
    install_id = status["install_id"]
    assert isinstance(install_id, str)
    assert status["envelope"] == build_envelope("status-tool", "3.1.4", install_id).to_json()


def test_status_json_has_no_envelope_before_an_install_id_exists(home: Path) -> None:
    status = status_tool(home).status()
    assert status["install_id"] is None
    assert status["envelope"] is None
    assert status["pending"] == status["pending_details"] == []


def test_status_json_says_records_of_today_wait_and_past_days_go(home: Path) -> None:
    tool = status_tool(home)
    plant(tool, WIDE_RECORDS)
    status = tool.status({"TOOL_NOW": str(NOON + 86400)})  # the day after: both days completed
    details = status["pending_details"]
    assert isinstance(details, list)
    assert [detail["sendable"] for detail in details] == [True] * len(WIDE_RECORDS)


@pytest.mark.parametrize(
    ("backend", "kind", "address", "class_name", "endpoint"),
    [
        (
            "posthog:https://eu.posthog.com",
            "posthog",
            "https://eu.i.posthog.com",
            "PostHogBackend",
            None,
        ),
        (
            "otlp:https://otel.example.com",
            "otlp",
            "https://otel.example.com/v1/metrics",
            "OTLPBackend",
            None,
        ),
        ("custom", "custom", None, "KeepItLocal", None),
        (
            "http:https://t.example.com/v1",
            "http",
            "https://t.example.com/v1",
            "HTTPBackend",
            "https://t.example.com/v1",
        ),
        (
            "endpoint:https://t.example.com/v1",
            "http",
            "https://t.example.com/v1",
            "HTTPBackend",
            "https://t.example.com/v1",
        ),
        ("", "none", None, None, None),
    ],
)
def test_status_names_the_destination_the_author_configured(
    home: Path,
    backend: str,
    kind: str,
    address: str | None,
    class_name: str | None,
    endpoint: str | None,
) -> None:
    tool = status_tool(home, backend)
    status = tool.status()
    assert status["destination"] == {"kind": kind, "address": address, "class": class_name}
    assert status["endpoint"] == endpoint
    text = tool.run("telemetry", "status").stdout
    (line,) = [line for line in text.splitlines() if line.startswith("  Sent to:")]
    assert (address or class_name or "nothing is sent") in line
    assert "nothing is sent" not in line or kind == "none"


def test_status_names_the_file_a_file_backend_writes_to(home: Path) -> None:
    target = home / "telemetry.jsonl"
    tool = status_tool(home, f"file:{target}")
    status = tool.status()
    assert status["destination"] == {"kind": "file", "address": str(target), "class": "FileBackend"}
    assert status["endpoint"] is None  # no HTTP endpoint is in force


def test_the_endpoint_variable_overrides_the_authors_back_end_in_status(home: Path) -> None:
    tool = status_tool(home, "posthog:https://eu.posthog.com")
    status = tool.status({"STATUS_TOOL_TELEMETRY_ENDPOINT": "https://mine.example/v1"})
    assert status["destination"] == {
        "kind": "http",
        "address": "https://mine.example/v1",
        "class": "HTTPBackend",
    }
    assert status["endpoint"] == "https://mine.example/v1"


def test_status_under_debug_says_payloads_are_printed_not_sent(home: Path) -> None:
    tool = status_tool(home, "posthog:https://eu.posthog.com")
    status = tool.status({"STATUS_TOOL_TELEMETRY_DEBUG": "1"})
    assert status["destination"] == {"kind": "debug", "address": "stderr", "class": "DebugBackend"}
    text = tool.run("telemetry", "status", env={"STATUS_TOOL_TELEMETRY_DEBUG": "1"}).stdout
    assert "printed instead of sent" in text


def test_status_json_is_one_json_document_with_a_record_per_line(home: Path) -> None:
    tool = status_tool(home)
    plant(tool, WIDE_RECORDS)
    result = tool.run("telemetry", "status", "--json", env={"TOOL_NOW": str(NOON)})
    report = json.loads(result.stdout)
    record_lines = [line for line in result.stdout.splitlines() if line.startswith('    {"day"')]
    assert [json.loads(line.rstrip(",")) for line in record_lines] == report["pending"]


def test_status_text_prints_command_names_verbatim_never_as_emoji_or_markup(home: Path) -> None:
    tool = status_tool(home)
    plant(tool, [Observation.of_command(TODAY, "ship:rocket:now", "success", "", ("--tag",), 1.0)])
    text = tool.run("telemetry", "status", env={"TOOL_NOW": str(NOON)}).stdout
    assert "ship:rocket:now" in text
    assert "\N{ROCKET}" not in text
