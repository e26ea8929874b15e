"""Send rollups to any OpenTelemetry collector as OTLP/HTTP metrics (JSON encoding).

A completed day maps onto delta metrics over that day's window, one data
point per rollup record: for commands, a sum of invocations and an
explicit-bucket histogram of their durations; for the tool's own events, a
sum of occurrences and, for those timed, a histogram of durations, with the
event's name and fields as attributes. The fixed duration buckets of the
schema are the histograms' bounds, so no precision is lost or invented on the way.

The JSON follows the OTLP encoding rules: lowerCamelCase field names, 64-bit
integers as decimal strings, enums as integers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from typing import Any

from .._schema import DURATION_BUCKET_BOUNDS_MS
from .._version import __version__
from . import _http
from .base import Batch, Envelope, Record

METRICS_PATH = "/v1/metrics"
LOGS_PATH = "/v1/logs"
SCOPE_NAME = "typer_telemetry"
SDK_NAME = "typer-telemetry"
INVOCATIONS_METRIC = "cli.command.invocations"
DURATION_METRIC = "cli.command.duration"
OCCURRENCES_METRIC = "cli.event.occurrences"
EVENT_DURATION_METRIC = "cli.event.duration"
DELETION_LOG_BODY = "telemetry deletion requested"
UNKNOWN_SERVICE = "unknown_service"

AGGREGATION_TEMPORALITY_DELTA = 1
SEVERITY_NUMBER_INFO = 9

_NANOSECONDS_PER_SECOND = 1_000_000_000
_SECONDS_PER_DAY = 24 * 3600

# One JSON object of the OTLP encoding; typed loosely because OTLP messages nest deeply.
JSONObject = dict[str, Any]

# Set by this back end whatever the caller's headers say: the body is its own.
_OWN_HEADERS = frozenset({"content-type", "content-encoding"})


AttributeValue = str | int | float | bool | Sequence[str]


def _any_value(value: AttributeValue) -> JSONObject:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    return {"arrayValue": {"values": [{"stringValue": item} for item in value]}}


def _attributes(values: Mapping[str, AttributeValue]) -> list[JSONObject]:
    return [{"key": key, "value": _any_value(value)} for key, value in values.items()]


def day_window_unix_nano(day: str) -> tuple[int, int]:
    """The start and end (the next midnight) of a UTC day, in nanoseconds since the epoch.

    Integer arithmetic throughout: a float would round nanoseconds away.
    """
    start = datetime.combine(date.fromisoformat(day), datetime.min.time(), timezone.utc)
    start_seconds = int(start.timestamp())
    return (
        start_seconds * _NANOSECONDS_PER_SECOND,
        (start_seconds + _SECONDS_PER_DAY) * _NANOSECONDS_PER_SECOND,
    )


def _sibling_url(metrics_url: str, path: str) -> str:
    return metrics_url.removesuffix(METRICS_PATH) + path


class OTLPBackend:
    """Deliver each completed day as one OTLP/HTTP JSON metrics export."""

    def __init__(
        self,
        endpoint: str,
        headers: Mapping[str, str] | None = None,
        *,
        service_name: str | None = None,
    ) -> None:
        endpoint = endpoint.strip()
        metrics_url = (
            endpoint if endpoint.endswith(METRICS_PATH) else endpoint.rstrip("/") + METRICS_PATH
        )
        self.metrics_url = _http.check_endpoint(metrics_url)
        self.logs_url = _sibling_url(self.metrics_url, LOGS_PATH)
        self.headers = {
            name: value
            for name, value in (headers or {}).items()
            if name.lower() not in _OWN_HEADERS
        }
        # A deletion request carries no envelope: its `service.name` is the tool's
        # name, given here or adopted from the Telemetry that sends through this
        # back end (see adopt_tool_name), so that no request says "unknown_service".
        self._named = service_name is not None
        self.service_name = service_name if service_name is not None else UNKNOWN_SERVICE

    def adopt_tool_name(self, name: str) -> None:
        """Take the sending tool's name as `service.name`, unless the constructor set one."""
        if not self._named:
            self.service_name = name

    def send(self, batch: Batch, *, timeout: float) -> None:
        """Export the day's records as metrics, or raise DeliveryError."""
        self.adopt_tool_name(batch.envelope.tool)
        commands = [record for record in batch.records if record.event == "command"]
        events = [record for record in batch.records if record.event != "command"]
        metrics: list[JSONObject] = []
        if commands:
            metrics.append(
                _sum_metric(
                    INVOCATIONS_METRIC,
                    "Invocations of a command, per day, outcome, error class and flag set.",
                    "{invocation}",
                    commands,
                )
            )
            metrics.append(
                _histogram_metric(DURATION_METRIC, "Wall time of command invocations.", commands)
            )
        if events:
            metrics.append(
                _sum_metric(
                    OCCURRENCES_METRIC,
                    "Occurrences of the tool's own events, per day, field values and outcome.",
                    "{event}",
                    events,
                )
            )
            timed = [record for record in events if record.timed]
            if timed:
                metrics.append(
                    _histogram_metric(
                        EVENT_DURATION_METRIC, "Durations of the tool's own timed events.", timed
                    )
                )
        request: JSONObject = {
            "resourceMetrics": [
                {
                    "resource": {"attributes": _attributes(_resource(batch.envelope))},
                    "scopeMetrics": [
                        {
                            "scope": {"name": SCOPE_NAME, "version": __version__},
                            "metrics": metrics,
                        }
                    ],
                }
            ]
        }
        self._post(self.metrics_url, request, timeout=timeout)

    def request_deletion(self, install_id: str, *, timeout: float) -> None:
        """Log a deletion request for the old install id, or raise DeliveryError.

        OTLP has no deletion; the log record tells whoever runs the collector
        which install's data to delete.
        """
        # The moment of the request, to the whole second: the collector needs no finer.
        now = str(int(time.time()) * _NANOSECONDS_PER_SECOND)
        request: JSONObject = {
            "resourceLogs": [
                {
                    "resource": {
                        "attributes": _attributes(
                            {
                                "service.name": self.service_name,
                                "telemetry.sdk.name": SDK_NAME,
                                "telemetry.sdk.version": __version__,
                            }
                        )
                    },
                    "scopeLogs": [
                        {
                            "scope": {"name": SCOPE_NAME, "version": __version__},
                            "logRecords": [
                                {
                                    "timeUnixNano": now,
                                    "observedTimeUnixNano": now,
                                    "severityNumber": SEVERITY_NUMBER_INFO,
                                    "severityText": "INFO",
                                    "body": {"stringValue": DELETION_LOG_BODY},
                                    "attributes": _attributes(
                                        {
                                            "typer_telemetry.event": "deletion_requested",
                                            "typer_telemetry.install_id": install_id,
                                        }
                                    ),
                                }
                            ],
                        }
                    ],
                }
            ]
        }
        self._post(self.logs_url, request, timeout=timeout)

    def _post(self, url: str, request: JSONObject, *, timeout: float) -> None:
        headers = {**self.headers, "Content-Type": "application/json"}
        body = _http.gzip_if_large(json.dumps(request).encode("utf-8"), headers)
        _http.post(url, body, headers, timeout=timeout)


def _resource(envelope: Envelope) -> dict[str, AttributeValue]:
    return {
        "service.name": envelope.tool,
        "service.version": envelope.tool_version,
        "telemetry.sdk.name": SDK_NAME,
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": envelope.library_version,
        "os.type": envelope.os.lower(),
        "os.version": envelope.os_release,
        "host.arch": envelope.arch,
        # The schema does not record the interpreter's implementation, so
        # the runtime is named only as far as is known.
        "process.runtime.name": "python",
        "process.runtime.version": envelope.python_version,
        "typer_telemetry.schema_version": envelope.schema_version,
        "typer_telemetry.install_id": envelope.install_id,
    }


# The built-in properties, as attributes (a command's own are `cli.command`, `cli.flags`).
_PROPERTY_ATTRIBUTES = {
    "command": "cli.command",
    "flags": "cli.flags",
    "runner": "cli.runner",
    "agent": "cli.agent",
    "project_id": "cli.project_id",
    "sample_rate": "cli.sample_rate",
}


def record_attributes(record: Record) -> dict[str, AttributeValue]:
    """A record's data point attributes: its event, properties, outcome and error class.

    A tool's own event's fields are `cli.event.<field>`.
    """
    attributes: dict[str, AttributeValue] = {}
    if record.event != "command":
        attributes["cli.event"] = record.event
    for name, value in record.properties:
        attributes[_PROPERTY_ATTRIBUTES.get(name, f"cli.event.{name}")] = value
    attributes["cli.outcome"] = record.outcome
    attributes["cli.error_class"] = record.error_class
    return attributes


def _point_base(record: Record) -> JSONObject:
    start, end = day_window_unix_nano(record.day)
    return {
        "attributes": _attributes(record_attributes(record)),
        "startTimeUnixNano": str(start),
        "timeUnixNano": str(end),
    }


def _sum_metric(name: str, description: str, unit: str, records: Sequence[Record]) -> JSONObject:
    return {
        "name": name,
        "description": description,
        "unit": unit,
        "sum": {
            "dataPoints": [
                {**_point_base(record), "asInt": str(record.count)} for record in records
            ],
            "aggregationTemporality": AGGREGATION_TEMPORALITY_DELTA,
            "isMonotonic": True,
        },
    }


def _histogram_metric(name: str, description: str, records: Sequence[Record]) -> JSONObject:
    bounds = [float(bound) for bound in DURATION_BUCKET_BOUNDS_MS]
    return {
        "name": name,
        "description": description,
        "unit": "ms",
        "histogram": {
            "dataPoints": [
                {
                    **_point_base(record),
                    "count": str(record.timed),
                    "sum": record.duration_ms_sum,
                    "bucketCounts": [str(count) for count in record.duration_ms_buckets],
                    "explicitBounds": bounds,
                    "min": record.duration_ms_min,
                    "max": record.duration_ms_max,
                }
                for record in records
            ],
            "aggregationTemporality": AGGREGATION_TEMPORALITY_DELTA,
        },
    }
