"""Variant (e): the sample tool instrumented by hand with the OpenTelemetry metrics SDK.

What a tool author would write: a MeterProvider exporting over OTLP/HTTP
through a PeriodicExportingMetricReader, a counter incremented as each command
ends, and the provider shut down (which exports) as the process exits.
BENCH_RECEIVER_URL is the runner's local receiver, standing in for a collector.
"""

from __future__ import annotations

import os

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from sample_app import build_app

TOOL_VERSION = "1.0.0"

exporter = OTLPMetricExporter(endpoint=f"{os.environ['BENCH_RECEIVER_URL']}/v1/metrics")
provider = MeterProvider(
    metric_readers=[PeriodicExportingMetricReader(exporter)],
    resource=Resource.create({"service.name": "benchtool", "service.version": TOOL_VERSION}),
    shutdown_on_exit=False,  # shut down explicitly below
)
invocations = provider.get_meter("benchtool", TOOL_VERSION).create_counter(
    "cli.command.invocations", unit="{invocation}"
)


def count(command: str) -> None:
    invocations.add(1, {"cli.command": command})


app = build_app(count)

if __name__ == "__main__":
    try:
        app()
    finally:
        provider.shutdown()
