"""The OTLP back end: OTLP/HTTP JSON, parsed back with the official protobuf definitions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from google.protobuf.json_format import Parse
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from tests.receiver import ReceivedRequest, Receiver, Reply
from tests.sample_batch import DAY, ENVELOPE, INGESTS, INSTALL_ID, MIGRATIONS, ROOT_FAILURE
from typer_telemetry._checks import SchemaError
from typer_telemetry._schema import DURATION_BUCKET_BOUNDS_MS
from typer_telemetry.backends.base import Backend, Batch, DeliveryError, Envelope, Record
from typer_telemetry.backends.otlp import OTLPBackend

DAY_START_NS = int(datetime(2026, 11, 23, tzinfo=timezone.utc).timestamp()) * 10**9
DAY_END_NS = int(datetime(2026, 11, 24, tzinfo=timezone.utc).timestamp()) * 10**9
BATCH = Batch(DAY, ENVELOPE, [MIGRATIONS, ROOT_FAILURE, INGESTS], "acme-deploy/2026-11-23/3f2b8c1e")


@pytest.fixture(scope="module")
def server() -> Iterator[Receiver]:
    """One server for the module: stopping one takes up to half a second (its poll interval)."""
    with Receiver() as running:
        yield running


@pytest.fixture
def receiver(server: Receiver) -> Receiver:
    """The shared server, with no requests and a default reply."""
    with server._condition:
        server.requests.clear()
    server.reply = Reply()
    return server


def send(backend: OTLPBackend, receiver: Receiver, batch: Batch = BATCH) -> ReceivedRequest:
    backend.send(batch, timeout=5)
    return receiver.wait_for(1)[0]


def attribute_values(attributes: Any) -> dict[str, object]:
    """Protobuf KeyValue list to a plain dict (arrays of strings to lists)."""
    values: dict[str, object] = {}
    for attribute in attributes:
        kind = attribute.value.WhichOneof("value")
        if kind == "array_value":
            values[attribute.key] = [
                item.string_value for item in attribute.value.array_value.values
            ]
        else:
            values[attribute.key] = getattr(attribute.value, kind)
    return values


def parsed_metrics(request: ReceivedRequest) -> ExportMetricsServiceRequest:
    # Parse rejects unknown or misspelled field names, so this checks the JSON mapping too.
    return Parse(request.content, ExportMetricsServiceRequest())


def test_otlp_backend_satisfies_the_backend_protocol() -> None:
    assert isinstance(OTLPBackend("https://collector.example.com"), Backend)


def test_a_batch_is_one_otlp_json_metrics_export(receiver: Receiver) -> None:
    request = send(OTLPBackend(receiver.url()), receiver)

    assert (request.method, request.path) == ("POST", "/v1/metrics")
    assert request.headers["content-type"] == "application/json"
    exported = parsed_metrics(request)
    [resource_metrics] = exported.resource_metrics
    assert attribute_values(resource_metrics.resource.attributes) == {
        "service.name": "acme-deploy",
        "service.version": "2.4.1",
        "telemetry.sdk.name": "typer-telemetry",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": "0.1.0",
        "os.type": "linux",
        "os.version": "6.1.0",
        "host.arch": "x86_64",
        "process.runtime.name": "python",
        "process.runtime.version": "3.12.4",
        "typer_telemetry.schema_version": 2,
        "typer_telemetry.install_id": INSTALL_ID,
    }
    [scope_metrics] = resource_metrics.scope_metrics
    assert scope_metrics.scope.name == "typer_telemetry"
    assert [metric.name for metric in scope_metrics.metrics] == [
        "cli.command.invocations",
        "cli.command.duration",
        "cli.event.occurrences",
        "cli.event.duration",
    ]


def test_an_event_of_the_tools_own_is_counted_and_timed_under_its_name_and_fields(
    receiver: Receiver,
) -> None:
    exported = parsed_metrics(send(OTLPBackend(receiver.url()), receiver))
    metrics = exported.resource_metrics[0].scope_metrics[0].metrics
    occurrences, duration = metrics[2], metrics[3]
    expected_attributes = {
        "cli.event": "ingest_completed",
        "cli.event.demo": False,
        "cli.event.driver": "postgres",
        "cli.event.table_count": "100-1000",
        "cli.outcome": "success",
        "cli.error_class": "",
    }

    assert occurrences.name == "cli.event.occurrences"
    assert occurrences.WhichOneof("data") == "sum"
    assert occurrences.sum.is_monotonic is True
    assert (
        occurrences.sum.aggregation_temporality
        == AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    )
    [point] = occurrences.sum.data_points
    assert point.as_int == 3
    assert attribute_values(point.attributes) == expected_attributes
    assert (point.start_time_unix_nano, point.time_unix_nano) == (DAY_START_NS, DAY_END_NS)

    assert duration.name == "cli.event.duration"
    assert duration.WhichOneof("data") == "histogram"
    assert duration.unit == "ms"
    [timed] = duration.histogram.data_points
    # Three occurrences, two of them timed: the histogram counts only the timed.
    assert (timed.count, timed.sum, timed.min, timed.max) == (2, 1700.0, 700.0, 1000.0)
    assert list(timed.bucket_counts) == list(INGESTS.duration_ms_buckets)
    assert attribute_values(timed.attributes) == expected_attributes


def test_an_event_never_timed_has_occurrences_but_no_duration_histogram(
    receiver: Receiver,
) -> None:
    untimed = Record.from_json(
        {
            **INGESTS.to_json(),
            "duration_ms_sum": 0,
            "duration_ms_min": 0,
            "duration_ms_max": 0,
            "duration_ms_buckets": [0] * len(INGESTS.duration_ms_buckets),
        }
    )
    exported = parsed_metrics(
        send(OTLPBackend(receiver.url()), receiver, Batch(DAY, ENVELOPE, [untimed], "key"))
    )
    metrics = exported.resource_metrics[0].scope_metrics[0].metrics
    assert [metric.name for metric in metrics] == ["cli.event.occurrences"]
    assert metrics[0].sum.data_points[0].as_int == 3


def test_invocations_are_a_monotonic_delta_sum_with_one_point_per_record(
    receiver: Receiver,
) -> None:
    exported = parsed_metrics(send(OTLPBackend(receiver.url()), receiver))
    invocations = exported.resource_metrics[0].scope_metrics[0].metrics[0]

    assert invocations.WhichOneof("data") == "sum"
    assert invocations.unit == "{invocation}"
    assert (
        invocations.sum.aggregation_temporality
        == AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    )
    assert invocations.sum.is_monotonic is True
    points = invocations.sum.data_points
    assert [point.as_int for point in points] == [3, 1]
    assert [attribute_values(point.attributes) for point in points] == [
        {
            "cli.command": "db migrate",
            "cli.outcome": "success",
            "cli.error_class": "",
            "cli.flags": ["--dry-run", "--force"],
        },
        {
            "cli.command": "",
            "cli.outcome": "error",
            "cli.error_class": "ValueError",
            "cli.flags": [],
        },
    ]
    for point in points:
        assert (point.start_time_unix_nano, point.time_unix_nano) == (DAY_START_NS, DAY_END_NS)


def test_durations_are_a_delta_histogram_on_the_schemas_fixed_buckets(receiver: Receiver) -> None:
    exported = parsed_metrics(send(OTLPBackend(receiver.url()), receiver))
    duration = exported.resource_metrics[0].scope_metrics[0].metrics[1]

    assert duration.WhichOneof("data") == "histogram"
    assert duration.unit == "ms"
    assert duration.histogram.aggregation_temporality == (
        AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    )
    first, second = duration.histogram.data_points
    assert (first.count, first.sum, first.min, first.max) == (3, 1234.5, 12.0, 1100.25)
    assert list(first.bucket_counts) == list(MIGRATIONS.duration_ms_buckets)
    assert (second.count, second.sum, second.min, second.max) == (1, 4.5, 4.5, 4.5)
    assert list(second.bucket_counts) == list(ROOT_FAILURE.duration_ms_buckets)
    for point in (first, second):
        assert list(point.explicit_bounds) == [float(bound) for bound in DURATION_BUCKET_BOUNDS_MS]
        assert len(point.bucket_counts) == len(point.explicit_bounds) + 1
        assert (point.start_time_unix_nano, point.time_unix_nano) == (DAY_START_NS, DAY_END_NS)
    assert attribute_values(first.attributes)["cli.command"] == "db migrate"
    assert attribute_values(second.attributes)["cli.error_class"] == "ValueError"


def test_the_json_follows_otlp_encoding_rules_for_64_bit_integers_and_enums(
    receiver: Receiver,
) -> None:
    raw = send(OTLPBackend(receiver.url()), receiver).json()
    sum_metric, histogram_metric, *_events = raw["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
    sum_point = sum_metric["sum"]["dataPoints"][0]
    histogram_point = histogram_metric["histogram"]["dataPoints"][0]

    assert sum_point["asInt"] == "3"
    assert sum_point["startTimeUnixNano"] == str(DAY_START_NS)
    assert sum_point["timeUnixNano"] == str(DAY_END_NS)
    assert histogram_point["count"] == "3"
    assert histogram_point["bucketCounts"][:3] == ["0", "0", "1"]
    assert all(isinstance(count, str) for count in histogram_point["bucketCounts"])
    assert all(isinstance(bound, float) for bound in histogram_point["explicitBounds"])
    assert sum_metric["sum"]["aggregationTemporality"] == 1
    assert histogram_metric["histogram"]["aggregationTemporality"] == 1
    assert sum_metric["sum"]["isMonotonic"] is True
    resource = raw["resourceMetrics"][0]["resource"]["attributes"]
    schema_version = next(a for a in resource if a["key"] == "typer_telemetry.schema_version")
    assert schema_version["value"] == {"intValue": "2"}


@pytest.mark.parametrize(
    ("endpoint_path", "expected_path"),
    [
        ("", "/v1/metrics"),
        ("/", "/v1/metrics"),
        ("/otlp", "/otlp/v1/metrics"),
        ("/otlp/", "/otlp/v1/metrics"),
        ("/custom/v1/metrics", "/custom/v1/metrics"),
    ],
)
def test_metrics_go_to_the_v1_metrics_path_under_the_endpoint(
    receiver: Receiver, endpoint_path: str, expected_path: str
) -> None:
    request = send(OTLPBackend(receiver.url(endpoint_path)), receiver)
    assert request.path == expected_path


def test_configured_headers_are_sent_but_cannot_change_the_content_type(
    receiver: Receiver,
) -> None:
    backend = OTLPBackend(
        receiver.url(),
        headers={"Authorization": "Bearer collector-token", "content-type": "text/plain"},
    )
    request = send(backend, receiver)
    assert request.headers["authorization"] == "Bearer collector-token"
    assert request.headers["content-type"] == "application/json"


def test_large_exports_are_gzipped(receiver: Receiver) -> None:
    records = [
        Record.from_json(
            {
                **MIGRATIONS.to_json(),
                "properties": {"command": f"deploy region-{n}", "flags": ["--force"]},
            }
        )
        for n in range(20)
    ]
    request = send(OTLPBackend(receiver.url()), receiver, Batch(DAY, ENVELOPE, records, "key"))

    assert request.headers["content-encoding"] == "gzip"
    assert request.body[:2] == b"\x1f\x8b"
    points = parsed_metrics(request).resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points
    assert len(points) == 20


@pytest.mark.parametrize("status", [400, 429, 500, 503])
def test_a_refusal_raises_delivery_error(receiver: Receiver, status: int) -> None:
    receiver.respond(status, b'{"code": 14, "message": "unavailable"}')
    with pytest.raises(DeliveryError, match=str(status)):
        OTLPBackend(receiver.url()).send(BATCH, timeout=5)


def test_a_collector_that_never_answers_fails_within_the_timeout(receiver: Receiver) -> None:
    receiver.respond(hang=True)
    started = time.monotonic()
    with pytest.raises(DeliveryError):
        OTLPBackend(receiver.url()).send(BATCH, timeout=0.5)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "endpoint", ["http://collector.example.com:4318", "ftp://127.0.0.1/", "collector:4318"]
)
def test_plain_http_to_another_machine_is_refused_at_construction(endpoint: str) -> None:
    with pytest.raises(ValueError, match="https"):
        OTLPBackend(endpoint)


def test_https_and_loopback_http_endpoints_are_accepted() -> None:
    assert OTLPBackend("https://collector.example.com").metrics_url == (
        "https://collector.example.com/v1/metrics"
    )
    assert OTLPBackend("http://localhost:4318/").metrics_url == "http://localhost:4318/v1/metrics"


def test_a_field_outside_the_schema_never_reaches_the_back_end(receiver: Receiver) -> None:
    # Envelopes and records reach back ends typed, checked when made, and hold nothing else.
    with pytest.raises(SchemaError):
        Envelope({**ENVELOPE.to_json(), "hostname": "alice-laptop"})
    with pytest.raises(AttributeError):
        ENVELOPE.hostname = "alice-laptop"  # type: ignore[attr-defined]
    with pytest.raises(SchemaError):
        Record.from_json({**MIGRATIONS.to_json(), "cwd": "/home/alice/secret"})
    request = send(OTLPBackend(receiver.url()), receiver)
    assert b"alice" not in request.content


def deletion_log(request: ReceivedRequest) -> ExportLogsServiceRequest:
    return Parse(request.content, ExportLogsServiceRequest())


def test_deletion_is_an_otlp_log_record_naming_the_old_install_id(receiver: Receiver) -> None:
    old_install_id = "9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f"
    before_ns = time.time_ns()
    OTLPBackend(receiver.url("/otlp/v1/metrics")).request_deletion(old_install_id, timeout=5)

    request = receiver.wait_for(1)[0]
    assert (request.method, request.path) == ("POST", "/otlp/v1/logs")
    assert request.headers["content-type"] == "application/json"
    [resource_logs] = deletion_log(request).resource_logs
    resource = attribute_values(resource_logs.resource.attributes)
    assert resource["service.name"] == "unknown_service"
    assert resource["telemetry.sdk.name"] == "typer-telemetry"
    assert "typer_telemetry.install_id" not in resource
    [scope_logs] = resource_logs.scope_logs
    assert scope_logs.scope.name == "typer_telemetry"
    [log] = scope_logs.log_records
    assert log.body.string_value == "telemetry deletion requested"
    assert log.severity_text == "INFO"
    assert attribute_values(log.attributes) == {
        "typer_telemetry.event": "deletion_requested",
        "typer_telemetry.install_id": old_install_id,
    }
    # To the whole second: the collector needs no finer time of this machine's clock.
    assert before_ns // 10**9 * 10**9 <= log.time_unix_nano <= time.time_ns()
    assert log.time_unix_nano % 10**9 == 0
    [raw_log] = request.json()["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    assert raw_log["timeUnixNano"] == str(log.time_unix_nano)
    assert raw_log["severityNumber"] == 9


def test_deletion_after_a_send_names_the_tool_as_the_service(receiver: Receiver) -> None:
    backend = OTLPBackend(receiver.url())
    backend.send(BATCH, timeout=5)
    backend.request_deletion(INSTALL_ID, timeout=5)

    request = receiver.wait_for(2)[1]
    assert request.path == "/v1/logs"
    resource = attribute_values(deletion_log(request).resource_logs[0].resource.attributes)
    assert resource["service.name"] == "acme-deploy"


def test_a_refused_deletion_raises_delivery_error(receiver: Receiver) -> None:
    receiver.respond(502)
    with pytest.raises(DeliveryError):
        OTLPBackend(receiver.url()).request_deletion(INSTALL_ID, timeout=5)
