"""What `telemetry status` reports: the choice in force, where data goes, what waits to be sent.

Loaded only by the `status` command (and `Telemetry.status()`), never on a
recorded run. The JSON report is documented in docs/configuration.md
("What `telemetry status --json` shows").
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from ._schema import DURATION_BUCKET_BOUNDS_MS

if TYPE_CHECKING:
    from ._telemetry import Telemetry

# The library's back ends, by module: (class name, kind, how to read its address).
# A back end's module is looked up among those already loaded: an object can
# only be an instance of a class whose module is loaded, and status need not
# load the others.
_KNOWN_BACKENDS: tuple[tuple[str, str, str, str], ...] = (
    ("debug", "DebugBackend", "debug", ""),
    ("http", "HTTPBackend", "http", "endpoint"),
    ("posthog", "PostHogBackend", "posthog", "batch_url"),
    ("otlp", "OTLPBackend", "otlp", "metrics_url"),
    ("file", "FileBackend", "file", "path"),
)
_POSTHOG_BATCH_PATH = "/batch/"


def describe_destination(backend: object | None) -> dict[str, str | None]:
    """Where `backend` delivers, from its public attributes: kind, address, class.

    Kinds: http, posthog, otlp, file, debug, custom (any other back end: its
    class name says which), none (nothing is sent). The address is the URL
    requests go to (PostHog: its host; OTLP: the metrics URL, logs go beside
    it), the file appended to, or "stderr" for the debug printer; None for a
    custom back end, whose destination only its author knows.
    """
    if backend is None:
        return {"kind": "none", "address": None, "class": None}
    class_name = type(backend).__name__
    for module_name, known_class, kind, attribute in _KNOWN_BACKENDS:
        module = sys.modules.get(f"{__package__}.backends.{module_name}")
        known = getattr(module, known_class, None)
        if isinstance(known, type) and isinstance(backend, known):
            if kind == "debug":
                return {"kind": kind, "address": "stderr", "class": class_name}
            value = getattr(backend, attribute, None)
            address = None if value is None else str(value)
            if kind == "posthog" and address is not None:
                address = address.removesuffix(_POSTHOG_BATCH_PATH)
            return {"kind": kind, "address": address, "class": class_name}
    return {"kind": "custom", "address": None, "class": class_name}


def http_endpoint(telemetry: Telemetry) -> str | None:
    """The HTTP endpoint in force, if data goes to one (the `endpoint` key of the report).

    `<NAME>_TELEMETRY_ENDPOINT` wins; else the author's back end decides
    (an endpoint only if it is an HTTPBackend), else the author's endpoint.
    Under `<NAME>_TELEMETRY_DEBUG` this is still the endpoint that would be
    used once debugging is off.
    """
    override = os.environ.get(f"{telemetry.env_prefix}_TELEMETRY_ENDPOINT")
    if override:
        return override
    backend = telemetry._backend
    if backend is None:
        return telemetry._endpoint
    described = describe_destination(backend)
    return described["address"] if described["kind"] == "http" else None


def percentile_bucket(buckets: list[int], fraction: float) -> int | None:
    """The index of the duration bucket holding the `fraction` percentile; None if empty."""
    total = sum(buckets)
    if total <= 0:
        return None
    running = 0
    for index, count in enumerate(buckets):
        running += count
        if running >= fraction * total:
            return index
    return len(buckets) - 1  # pragma: no cover - the running sum reaches the total


def bucket_bounds(index: int) -> dict[str, int | None]:
    """The bucket's bounds in ms: durations above `above_ms`, at most `at_most_ms` (None: open)."""
    above = 0 if index == 0 else DURATION_BUCKET_BOUNDS_MS[index - 1]
    at_most = DURATION_BUCKET_BOUNDS_MS[index] if index < len(DURATION_BUCKET_BOUNDS_MS) else None
    return {"above_ms": above, "at_most_ms": at_most}


def estimate(buckets: list[int], fraction: float) -> dict[str, int | None] | None:
    index = percentile_bucket(buckets, fraction)
    return None if index is None else bucket_bounds(index)


def status_report(telemetry: Telemetry) -> dict[str, Any]:
    """Everything `telemetry status --json` shows (see docs/configuration.md)."""
    from ._config import read_config

    config = read_config(telemetry.paths.config_file)
    decision = telemetry.decide(config)
    today = telemetry.today()
    try:
        rollup = telemetry.store.pending_rollup(today=today)
        pending = rollup.records()
        dropped = dict(sorted(rollup.dropped.items()))
    except OSError as error:
        telemetry.debug(f"cannot read pending data: {error}")
        pending, dropped = [], {}
    from ._checks import is_day

    # Only completed days go out with the next send: days before today (a day
    # after it, recorded under a clock set ahead, waits); with an unusable
    # clock, none (nothing is pruned or sent until the clock is right).
    completed_before = today if is_day(today) else ""
    details = [_details(record, completed_before) for record in pending]
    return {
        "tool": telemetry.name,
        "tool_version": telemetry.version,
        "enabled": decision.enabled,
        "source": decision.source,
        "reason": decision.reason,
        "policy": telemetry.consent,
        "install_id": config.install_id,
        "config_path": str(telemetry.paths.config_file),
        "data_dir": str(telemetry.paths.store_dir),
        "destination": describe_destination(telemetry.destination()),
        "endpoint": http_endpoint(telemetry),
        "backend": None if telemetry._backend is None else type(telemetry._backend).__name__,
        "envelope": _envelope(telemetry, config.install_id),
        "today": today,
        "pending": pending,
        "pending_details": details,
        "duration_bucket_bounds_ms": list(DURATION_BUCKET_BOUNDS_MS),
        "dropped": dropped,
        "pending_deletions": telemetry.pending_deletions(),
        "send_not_before": telemetry.send_not_before(),
    }


def _details(record: dict[str, object], completed_before: str) -> dict[str, object]:
    """What `pending_details` says of one pending record (aligned with `pending`).

    `completed_before` is today, or "" when the clock is unusable (no day is before it).
    """
    buckets = record["duration_ms_buckets"]
    assert isinstance(buckets, list)
    return {
        "sendable": str(record["day"]) < completed_before,
        "p50_ms": estimate(buckets, 0.5),
        "p95_ms": estimate(buckets, 0.95),
    }


def _envelope(telemetry: Telemetry, install_id: str | None) -> dict[str, object] | None:
    """The envelope that would go with the pending records; None before the first recorded run."""
    if install_id is None:
        return None
    from ._delivery import build_envelope

    try:
        return build_envelope(telemetry.name, telemetry.version, install_id)
    except ValueError as error:  # SchemaError included: nothing outside the schema is shown as sent
        telemetry.debug(f"cannot build the envelope: {error}")
        return None
