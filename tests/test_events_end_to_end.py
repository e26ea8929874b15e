"""The example tool's own events, recorded by real processes and sent through each back end.

examples/warehouse.py declares two events (`ingest_completed`, timed, with a
choice, a bucket and a flag; `connection_test`, recorded with its outcome)
and turns on the `runner` and `project` signals. Its runs on one day arrive,
on the next, at a real server on 127.0.0.1 through the library's HTTP
format, PostHog's batch API (checked against posthog-python's own request)
and OTLP (parsed with the OTLP protobuf definitions), with exact counts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import posthog
import pytest
from google.protobuf.json_format import Parse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from tests.conftest import Tool
from tests.receiver import ReceivedRequest, Receiver
from typer_telemetry._runner import AGENT_VARIABLES

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "warehouse.py"
DAY_1 = 1_773_100_800  # 2026-03-10 00:00 UTC
DAY_2 = DAY_1 + 86_400
AGENT_NAMES = {variable for variable, _value, _agent in AGENT_VARIABLES}


@pytest.fixture
def warehouse(tmp_path: Path) -> Tool:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    tool = Tool(script=EXAMPLE, home=tmp_path)
    # The tests may themselves run under a coding agent: its variables are not the tool's.
    tool.env = {"TERM": "dumb"}
    return tool


def run(tool: Tool, *args: str, now: int, **env: str) -> None:
    environment = {"WAREHOUSE_NOW": str(now), **env}
    result = tool.run(*args, env=environment)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def without_agents(tool: Tool) -> None:
    """Drop the agents' variables this test process may have from what the tool sees."""
    import os

    for name in AGENT_NAMES & set(os.environ):
        tool.env[name] = ""


def a_day_of_use(tool: Tool) -> None:
    without_agents(tool)
    run(tool, "ingest", "postgres", "--tables", "412", now=DAY_1)
    run(tool, "ingest", "postgres", "--tables", "500", now=DAY_1)
    run(tool, "ingest", "oracle", "--tables", "3", "--demo", now=DAY_1)
    run(tool, "check", "sqlite", now=DAY_1)
    run(tool, "check", "mysql", now=DAY_1, CLAUDECODE="1")


def sync_until_received(tool: Tool, receiver: Receiver, requests: int, **env: str) -> None:
    """Run the long-running `sync` on the next day until the receiver has `requests` requests."""
    process = tool.popen("sync", env={"WAREHOUSE_NOW": str(DAY_2), **env})
    assert process.stdout is not None
    assert process.stdout.readline() == "syncing\n"
    receiver.wait_for(requests)
    _stdout, stderr = process.communicate(input="", timeout=30)
    assert process.returncode == 0, stderr


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def events_of(records: list[dict[str, Any]]) -> Counter[tuple[str, ...]]:
    """Counts per (event, the event's own fields as name=value), signals aside."""
    counts: Counter[tuple[str, ...]] = Counter()
    for record in records:
        if record["event"] == "command":
            continue
        properties = record["properties"]
        fields = tuple(
            f"{name}={json.dumps(value)}"
            for name, value in sorted(properties.items())
            if name not in ("runner", "agent", "project_id", "sample_rate")
        )
        counts[(record["event"], record["outcome"], record["error_class"], *fields)] += record[
            "count"
        ]
    return counts


EXPECTED = Counter(
    {
        (
            "ingest_completed",
            "success",
            "",
            "demo=false",
            'driver="postgres"',
            'table_count="100-1000"',
        ): 2,
        ("ingest_completed", "success", "", "demo=true", 'driver="other"', 'table_count="<10"'): 1,
        ("connection_test", "success", "", 'driver="sqlite"'): 1,
        ("connection_test", "error", "ConnectionRefused", 'driver="other"'): 1,
    }
)


def test_events_reach_the_http_receiver_in_format_2_with_exact_counts(
    warehouse: Tool, receiver: Receiver
) -> None:
    a_day_of_use(warehouse)
    warehouse.env["WAREHOUSE_ENDPOINT"] = receiver.url("/v1")
    shown = warehouse.status(env={"WAREHOUSE_NOW": str(DAY_2)})
    sync_until_received(warehouse, receiver, 1)
    [request] = receiver.wait_for(1)
    assert request.path == "/v1/batches"
    batch = request.json()
    # What `status --json` showed is exactly what was sent: records and envelope.
    assert shown["pending"] == batch["records"]
    assert shown["envelope"] == batch["envelope"]
    assert (batch["format"], batch["version"], batch["envelope"]["schema_version"]) == (
        "typer-telemetry-batch",
        2,
        2,
    )
    assert events_of(batch["records"]) == EXPECTED
    commands = Counter(
        (record["properties"]["command"], record["outcome"])
        for record in batch["records"]
        if record["event"] == "command"
        for _ in range(record["count"])
    )
    assert commands == Counter(
        {("ingest", "success"): 3, ("check", "success"): 1, ("check", "error"): 1}
    )
    # Every record carries the signals the tool turned on; the agent only where one ran it.
    runners = Counter(
        (record["properties"]["runner"], record["properties"].get("agent"))
        for record in batch["records"]
    )
    assert set(runners) == {("script", None), ("agent", "claude_code")}
    project_ids = {record["properties"]["project_id"] for record in batch["records"]}
    assert len(project_ids) == 1
    [project_id] = project_ids
    assert len(project_id) == 32
    assert str(warehouse.home) not in json.dumps(batch)
    ingests = [r for r in batch["records"] if r["event"] == "ingest_completed"]
    assert all(sum(r["duration_ms_buckets"]) == r["count"] for r in ingests)  # timed
    tests = [r for r in batch["records"] if r["event"] == "connection_test"]
    assert all(sum(r["duration_ms_buckets"]) == 0 for r in tests)  # recorded without a duration


def official_posthog_request(receiver: Receiver) -> dict[str, Any]:
    """What posthog-python itself puts on the wire for one captured event."""
    client = posthog.Posthog("phc_official", host=receiver.url("/"), sync_mode=True, gzip=False)
    client.capture("some_event", distinct_id="someone", properties={"a": 1})
    client.shutdown()
    return receiver.wait_for(1)[-1].json()


def test_events_reach_posthog_as_events_named_after_them(
    warehouse: Tool, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_day_of_use(warehouse)
    warehouse.env["WAREHOUSE_POSTHOG_HOST"] = receiver.url("")
    sync_until_received(warehouse, receiver, 1)
    [ours] = receiver.wait_for(1)
    assert ours.path == "/batch/"
    body = ours.json()
    with Receiver() as official_receiver:
        monkeypatch.delenv("POSTHOG_CAPTURE_MODE", raising=False)
        official = official_posthog_request(official_receiver)
    assert set(body) == set(official)
    assert {key for event in body["batch"] for key in event} == set(official["batch"][0])
    counts: Counter[tuple[str, str]] = Counter()
    for event in body["batch"]:
        properties = event["properties"]
        assert properties["$process_person_profile"] is False
        if event["event"] == "cli_command_rollup":
            continue
        counts[(event["event"], str(properties.get("driver")))] += properties["count"]
        assert "properties" not in properties  # taken up one level
    assert counts == Counter(
        {
            ("ingest_completed", "postgres"): 2,
            ("ingest_completed", "other"): 1,
            ("connection_test", "sqlite"): 1,
            ("connection_test", "other"): 1,
        }
    )


def points(request: ReceivedRequest) -> dict[str, list[Any]]:
    export = Parse(request.content, ExportMetricsServiceRequest())
    found: dict[str, list[Any]] = {}
    for resource in export.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                data = metric.sum if metric.HasField("sum") else metric.histogram
                found.setdefault(metric.name, []).extend(data.data_points)
    return found


def attributes(point: Any) -> dict[str, object]:
    values: dict[str, object] = {}
    for attribute in point.attributes:
        kind = attribute.value.WhichOneof("value")
        values[attribute.key] = getattr(attribute.value, kind)
    return values


def test_events_reach_an_otlp_collector_as_metrics_the_protobuf_definitions_read(
    warehouse: Tool, receiver: Receiver
) -> None:
    a_day_of_use(warehouse)
    warehouse.env["WAREHOUSE_OTLP_ENDPOINT"] = receiver.url("")
    sync_until_received(warehouse, receiver, 1)
    [request] = receiver.wait_for(1)
    assert request.path == "/v1/metrics"
    found = points(request)
    occurrences: Counter[tuple[object, object]] = Counter()
    for point in found["cli.event.occurrences"]:
        values = attributes(point)
        occurrences[(values["cli.event"], values["cli.event.driver"])] += point.as_int
    assert occurrences == Counter(
        {
            ("ingest_completed", "postgres"): 2,
            ("ingest_completed", "other"): 1,
            ("connection_test", "sqlite"): 1,
            ("connection_test", "other"): 1,
        }
    )
    durations = found["cli.event.duration"]
    assert {attributes(point)["cli.event"] for point in durations} == {"ingest_completed"}
    assert sum(point.count for point in durations) == 3
    demo = {attributes(point)["cli.event.demo"] for point in durations}
    assert demo == {True, False}  # a flag is a boolean attribute
    assert sum(point.as_int for point in found["cli.command.invocations"]) == 5
