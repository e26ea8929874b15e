"""Send rollups to PostHog (cloud or self-hosted) as its own Python client would.

The request is the one `posthog-python` sends in its default capture mode:
`POST {host}/batch/` with a JSON body `{"batch": [...], "historical_migration":
false, "sent_at": ..., "api_key": ...}`, gzipped with `Content-Encoding: gzip`
when large. Speaking the client's exact dialect keeps the back end working
wherever the client works, without depending on it.

Each rollup record becomes one event: `cli_command_rollup` for a command's,
the event's own name for the tool's own events, with the record's
properties, counts and durations as event properties. Events are personless and skip GeoIP,
and their uuids are derived from the batch's idempotency key, so a batch sent
twice (the first reply was lost) is deduplicated by PostHog rather than
counted twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, time, timedelta, timezone
from typing import TYPE_CHECKING

from . import _http
from .base import Batch, Record

if TYPE_CHECKING:
    from .._records import JSONDocument

DEFAULT_HOST = "https://us.i.posthog.com"
BATCH_PATH = "/batch/"
ROLLUP_EVENT = "cli_command_rollup"
DELETION_EVENT = "telemetry_deletion_requested"
# Names a tool's own event may not take: they would mix with these.
RESERVED_EVENT_NAMES = frozenset({ROLLUP_EVENT, DELETION_EVENT})
LIBRARY_NAME = "typer-telemetry"

# PostHog's app hosts do not ingest; its client sends to the ingestion hosts instead.
_INGESTION_HOST_FOR = {
    "https://app.posthog.com": "https://us.i.posthog.com",
    "https://us.posthog.com": "https://us.i.posthog.com",
    "https://eu.posthog.com": "https://eu.i.posthog.com",
}

# Fixed, so that event uuids are a pure function of (idempotency key, record index)
# on every machine and every run.
_EVENT_UUID_NAMESPACE = uuid.UUID("6f0c5d2e-3b1a-4c8e-9d47-2a5b8e1f7c30")

# Keeps PostHog from creating a person profile per install and from
# geolocating the sender's IP address.
_PRIVACY_PROPERTIES: JSONDocument = {
    "$process_person_profile": False,
    "$geoip_disable": True,
}


def event_uuid(idempotency_key: str, index: int) -> str:
    """The uuid of a batch's `index`-th event: the same on every send of that batch."""
    return str(uuid.uuid5(_EVENT_UUID_NAMESPACE, f"{idempotency_key}/{index}"))


def end_of_day(day: str) -> str:
    """The last millisecond of a UTC day, ISO-8601, as PostHog's client formats timestamps.

    Rollups are stamped at their day's end so that PostHog files each under
    the day it counts, and the same batch always carries the same timestamps.
    """
    midnight = datetime.combine(datetime.strptime(day, "%Y-%m-%d").date(), time(), timezone.utc)
    return (midnight + timedelta(days=1, milliseconds=-1)).isoformat()


def _now_to_the_second() -> str:
    """This machine's clock, to the whole second: PostHog's `sent_at` and a deletion's time.

    PostHog corrects event times by the gap between `sent_at` and its own
    clock; finer than a second would only tell it more about this machine's
    clock, which nothing needs.
    """
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def event_name(record: Record) -> str:
    """The PostHog event a record becomes: `cli_command_rollup`, or the tool's own event name."""
    return ROLLUP_EVENT if record.event == "command" else record.event


def record_properties(record: Record) -> JSONDocument:
    """A record's fields as event properties: its own properties flattened to the top.

    No clash is possible: the schema reserves every field name of the record
    (and the envelope) from the names a tool's event may declare.
    """
    fields = record.to_json()
    properties = fields.pop("properties")
    del fields["event"]  # the PostHog event's own name says it
    return {"day": fields.pop("day"), **properties, **fields}


class PostHogBackend:
    """Deliver each completed day as one PostHog batch capture request."""

    def __init__(self, api_key: str, host: str = DEFAULT_HOST) -> None:
        if not api_key:
            raise ValueError("a PostHog project API key is required")
        trimmed_host = host.strip().removesuffix("/")
        ingestion_host = _INGESTION_HOST_FOR.get(trimmed_host, trimmed_host)
        self.api_key = api_key
        self.batch_url = _http.check_endpoint(ingestion_host + BATCH_PATH)

    def send(self, batch: Batch, *, timeout: float) -> None:
        """Capture one event per rollup record, or raise DeliveryError."""
        envelope = batch.envelope.to_json()
        install_id = str(envelope.pop("install_id"))
        events: list[JSONDocument] = []
        for index, record in enumerate(batch.records):
            events.append(
                {
                    "event": event_name(record),
                    "distinct_id": install_id,
                    "properties": {
                        **record_properties(record),
                        **envelope,
                        **_PRIVACY_PROPERTIES,
                        "$lib": LIBRARY_NAME,
                        "$lib_version": batch.envelope.library_version,
                    },
                    "timestamp": end_of_day(record.day),
                    "uuid": event_uuid(batch.idempotency_key, index),
                }
            )
        self._post(events, timeout=timeout)

    def request_deletion(self, install_id: str, *, timeout: float) -> None:
        """Record a deletion request under the old install id, or raise DeliveryError.

        PostHog offers no deletion a client could call with a project key; the
        event lets the project's owner find the request and delete that person's
        events.
        """
        event: JSONDocument = {
            "event": DELETION_EVENT,
            "distinct_id": install_id,
            "properties": {**_PRIVACY_PROPERTIES, "$lib": LIBRARY_NAME},
            "timestamp": _now_to_the_second(),
            "uuid": str(uuid.uuid5(_EVENT_UUID_NAMESPACE, f"deletion/{install_id}")),
        }
        self._post([event], timeout=timeout)

    def _post(self, events: list[JSONDocument], *, timeout: float) -> None:
        body: Mapping[str, object] = {
            "batch": events,
            "historical_migration": False,
            "sent_at": _now_to_the_second(),
            "api_key": self.api_key,
        }
        headers = {"Content-Type": "application/json"}
        content = _http.gzip_if_large(json.dumps(body).encode("utf-8"), headers)
        _http.post(self.batch_url, content, headers, timeout=timeout)
