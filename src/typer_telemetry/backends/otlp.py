"""Send rollups to any OpenTelemetry collector as OTLP/HTTP metrics (JSON encoding).

A completed day maps onto two delta metrics over that day's window: a sum of
invocations and an explicit-bucket histogram of durations, with one data
point per rollup record. The fixed duration buckets of the schema are the
histogram's bounds, so no precision is lost or invented on the way.

The JSON follows the OTLP encoding rules: lowerCamelCase field names, 64-bit
integers as decimal strings, enums as integers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone

from .._schema import DURATION_BUCKET_BOUNDS_MS, validate_envelope, validate_rollup_record
from .._version import __version__
from . import _http
from .base import Batch

METRICS_PATH = "/v1/metrics"
LOGS_PATH = "/v1/logs"
SCOPE_NAME = "typer_telemetry"
SDK_NAME = "typer-telemetry"
INVOCATIONS_METRIC = "cli.command.invocations"
DURATION_METRIC = "cli.command.duration"
DELETION_LOG_BODY = "telemetry deletion requested"
UNKNOWN_SERVICE = "unknown_service"

AGGREGATION_TEMPORALITY_DELTA = 1
SEVERITY_NUMBER_INFO = 9

_NANOSECONDS_PER_SECOND = 1_000_000_000
_SECONDS_PER_DAY = 24 * 3600

# One JSON object of the OTLP encoding; typed loosely because OTLP messages nest deeply.
JSONObject = dict[str, object]

# Set by this back end whatever the caller's headers say: the body is its own.
_OWN_HEADERS = frozenset({"content-type", "content-encoding"})


def _any_value(value: str | int | Sequence[str]) -> JSONObject:
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, str):
        return {"stringValue": value}
    return {"arrayValue": {"values": [{"stringValue": item} for item in value]}}


def _attributes(values: Mapping[str, str | int | Sequence[str]]) -> list[JSONObject]:
    return [{"key": key, "value": _any_value(value)} for key, value in values.items()]


def _text(fields: Mapping[str, object], name: str) -> str:
    value = fields[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    return value


def _number(fields: Mapping[str, object], name: str) -> float:
    value = fields[name]
    if not isinstance(value, (int, float)):
        raise TypeError(f"{name} is not a number")
    return float(value)


def _integer(fields: Mapping[str, object], name: str) -> int:
    value = fields[name]
    if not isinstance(value, int):
        raise TypeError(f"{name} is not an integer")
    return value


def _list(fields: Mapping[str, object], name: str) -> list[object]:
    value = fields[name]
    if not isinstance(value, list):
        raise TypeError(f"{name} is not a list")
    return value


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
        """Export the day's records as metrics, or raise DeliveryError.

        Raises SchemaError, before anything is sent, if the batch holds a
        field outside the allowlist.
        """
        envelope = validate_envelope(batch.envelope)
        records = [validate_rollup_record(record) for record in batch.records]
        self.adopt_tool_name(_text(envelope, "tool"))
        request: JSONObject = {
            "resourceMetrics": [
                {
                    "resource": {"attributes": _attributes(self._resource(envelope))},
                    "scopeMetrics": [
                        {
                            "scope": {"name": SCOPE_NAME, "version": __version__},
                            "metrics": [
                                self._invocations_metric(records),
                                self._duration_metric(records),
                            ],
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

    @staticmethod
    def _resource(envelope: Mapping[str, object]) -> dict[str, str | int]:
        return {
            "service.name": _text(envelope, "tool"),
            "service.version": _text(envelope, "tool_version"),
            "telemetry.sdk.name": SDK_NAME,
            "telemetry.sdk.language": "python",
            "telemetry.sdk.version": _text(envelope, "library_version"),
            "os.type": _text(envelope, "os").lower(),
            "os.version": _text(envelope, "os_release"),
            "host.arch": _text(envelope, "arch"),
            # The schema does not record the interpreter's implementation, so
            # the runtime is named only as far as is known.
            "process.runtime.name": "python",
            "process.runtime.version": _text(envelope, "python_version"),
            "typer_telemetry.schema_version": _integer(envelope, "schema_version"),
            "typer_telemetry.install_id": _text(envelope, "install_id"),
        }

    @staticmethod
    def _point_base(record: Mapping[str, object]) -> JSONObject:
        start, end = day_window_unix_nano(_text(record, "day"))
        flags = [str(flag) for flag in _list(record, "flags")]
        return {
            "attributes": _attributes(
                {
                    "cli.command": _text(record, "command"),
                    "cli.outcome": _text(record, "outcome"),
                    "cli.error_class": _text(record, "error_class"),
                    "cli.flags": flags,
                }
            ),
            "startTimeUnixNano": str(start),
            "timeUnixNano": str(end),
        }

    def _invocations_metric(self, records: Sequence[Mapping[str, object]]) -> JSONObject:
        return {
            "name": INVOCATIONS_METRIC,
            "description": "Invocations of a command, per day, outcome, error class and flag set.",
            "unit": "{invocation}",
            "sum": {
                "dataPoints": [
                    {**self._point_base(record), "asInt": str(_integer(record, "count"))}
                    for record in records
                ],
                "aggregationTemporality": AGGREGATION_TEMPORALITY_DELTA,
                "isMonotonic": True,
            },
        }

    def _duration_metric(self, records: Sequence[Mapping[str, object]]) -> JSONObject:
        bounds = [float(bound) for bound in DURATION_BUCKET_BOUNDS_MS]
        return {
            "name": DURATION_METRIC,
            "description": "Wall time of command invocations.",
            "unit": "ms",
            "histogram": {
                "dataPoints": [
                    {
                        **self._point_base(record),
                        "count": str(_integer(record, "count")),
                        "sum": _number(record, "duration_ms_sum"),
                        "bucketCounts": [
                            str(count) for count in _list(record, "duration_ms_buckets")
                        ],
                        "explicitBounds": bounds,
                        "min": _number(record, "duration_ms_min"),
                        "max": _number(record, "duration_ms_max"),
                    }
                    for record in records
                ],
                "aggregationTemporality": AGGREGATION_TEMPORALITY_DELTA,
            },
        }

    def _post(self, url: str, request: JSONObject, *, timeout: float) -> None:
        headers = {**self.headers, "Content-Type": "application/json"}
        body = _http.gzip_if_large(json.dumps(request).encode("utf-8"), headers)
        _http.post(url, body, headers, timeout=timeout)
