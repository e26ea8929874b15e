"""What `telemetry status` reports: the choice in force, where data goes, what waits to be sent.

Loaded only by the `status` command (and `Telemetry.status()`), never on a
recorded run. The JSON report is documented in docs/configuration.md
("What `telemetry status --json` shows").
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from ._schema import DURATION_BUCKET_BOUNDS_MS

if TYPE_CHECKING:
    from ._records import JSONDocument, Record
    from ._settings import Settings

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


def http_endpoint(settings: Settings) -> str | None:
    """The HTTP endpoint in force, if data goes to one (the `endpoint` key of the report).

    `<NAME>_TELEMETRY_ENDPOINT` wins; else the author's back end decides
    (an endpoint only if it is an HTTPBackend), else the author's endpoint.
    Under `<NAME>_TELEMETRY_DEBUG` this is still the endpoint that would be
    used once debugging is off.
    """
    override = settings.endpoint_override()
    if override:
        return override
    backend = settings.backend
    if backend is None:
        return settings.endpoint
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


def status_report(settings: Settings) -> dict[str, Any]:
    """Everything `telemetry status --json` shows (see docs/configuration.md)."""
    from ._config import decision_for, read_config
    from ._controls import pending_deletions, send_not_before
    from ._delivery import destination
    from ._store import RollupStore

    paths = settings.paths()
    config = read_config(paths.config_file)
    decision = decision_for(settings, config, paths)
    today = settings.today()
    try:
        rollup = RollupStore(paths.store_dir, settings.debug).pending_rollup(today=today)
        pending = rollup.records()
        dropped = dict(sorted(rollup.dropped.items()))
    except OSError as error:
        settings.debug(f"cannot read pending data: {error}")
        pending, dropped = [], {}
    from ._checks import is_day

    # Only completed days go out with the next send: days before today (a day
    # after it, recorded under a clock set ahead, waits); with an unusable
    # clock, none (nothing is pruned or sent until the clock is right).
    completed_before = today if is_day(today) else ""
    return {
        "tool": settings.name,
        "tool_version": settings.version,
        "enabled": decision.enabled,
        "source": decision.source,
        "reason": decision.reason,
        "policy": settings.consent,
        "install_id": config.install_id,
        "config_path": str(paths.config_file),
        "data_dir": str(paths.store_dir),
        "destination": describe_destination(destination(settings)),
        "endpoint": http_endpoint(settings),
        "backend": None if settings.backend is None else type(settings.backend).__name__,
        "envelope": _envelope(settings, config.install_id),
        "today": today,
        "pending": [record.to_json() for record in pending],
        "pending_details": [_details(record, completed_before) for record in pending],
        "duration_bucket_bounds_ms": list(DURATION_BUCKET_BOUNDS_MS),
        "dropped": dropped,
        "pending_deletions": pending_deletions(settings),
        "send_not_before": send_not_before(settings),
    }


def _details(record: Record, completed_before: str) -> JSONDocument:
    """What `pending_details` says of one pending record (aligned with `pending`).

    `completed_before` is today, or "" when the clock is unusable (no day is before it).
    """
    buckets = list(record.duration_ms_buckets)
    return {
        "sendable": record.day < completed_before,
        "p50_ms": estimate(buckets, 0.5),
        "p95_ms": estimate(buckets, 0.95),
    }


def _envelope(settings: Settings, install_id: str | None) -> JSONDocument | None:
    """The envelope that would go with the pending records; None before the first recorded run."""
    if install_id is None:
        return None
    from ._delivery import build_envelope

    try:
        return build_envelope(settings.name, settings.version, install_id).to_json()
    except ValueError as error:  # SchemaError included: nothing outside the schema is shown as sent
        settings.debug(f"cannot build the envelope: {error}")
        return None
