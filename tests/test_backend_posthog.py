"""The PostHog back end, checked against PostHog's own Python client on a real local server."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import posthog
import pytest
from posthog.request import determine_server_host

from tests.receiver import ReceivedRequest, Receiver, Reply
from tests.sample_batch import DAY, ENVELOPE, INGESTS, INSTALL_ID, MIGRATIONS, ROOT_FAILURE
from typer_telemetry._checks import SchemaError
from typer_telemetry._schema import ENVELOPE_FIELD_NAMES, ROLLUP_FIELD_NAMES
from typer_telemetry.backends.base import Backend, Batch, DeliveryError, Record
from typer_telemetry.backends.posthog import DELETION_EVENT, ROLLUP_EVENT, PostHogBackend

API_KEY = "phc_0123456789abcdefghijklmnopqrstuvwxyzABCDE"

# What posthog-python 7 sends to /batch/: the body's keys and each event's keys.
BODY_KEYS = {"api_key", "batch", "historical_migration", "sent_at"}
EVENT_KEYS = {"event", "distinct_id", "properties", "timestamp", "uuid"}
# The privacy properties this back end promises on every event.
PERSONLESS_WITHOUT_GEOIP = {"$process_person_profile": False, "$geoip_disable": True}


def batch(idempotency_key: str = "acme-deploy/2026-11-23/3f2b8c1e", records: int = 0) -> Batch:
    """The three realistic records of one day (two commands, one event of the tool's own),
    or `records` distinct command records for a large body."""
    rollups = [MIGRATIONS, ROOT_FAILURE, INGESTS]
    if records:
        rollups = [
            Record.from_json(
                {
                    **MIGRATIONS.to_json(),
                    "properties": {"command": f"deploy region-{n}", "flags": ["--force"]},
                }
            )
            for n in range(records)
        ]
    return Batch(DAY, ENVELOPE, rollups, idempotency_key)


def fresh(running: Receiver) -> Receiver:
    """A long-lived server with no requests and a default reply.

    Servers are shared within this module because stopping one takes up to half
    a second (the server's poll interval).
    """
    with running._condition:
        running.requests.clear()
    running.reply = Reply()
    return running


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Receiver, Receiver]]:
    with Receiver() as ours, Receiver() as official:
        yield ours, official


@pytest.fixture
def receiver(servers: tuple[Receiver, Receiver]) -> Receiver:
    """Where PostHogBackend sends."""
    return fresh(servers[0])


@pytest.fixture
def official_receiver(
    servers: tuple[Receiver, Receiver], monkeypatch: pytest.MonkeyPatch
) -> Receiver:
    """Where posthog-python sends, in its default capture protocol (POST /batch/)."""
    monkeypatch.delenv("POSTHOG_CAPTURE_MODE", raising=False)
    return fresh(servers[1])


def send(backend: PostHogBackend, receiver: Receiver, sent: Batch) -> ReceivedRequest:
    before = len(receiver.requests)
    backend.send(sent, timeout=5)
    return receiver.wait_for(before + 1)[before]


def official_client_request(receiver: Receiver, path: str = "/", **capture: Any) -> ReceivedRequest:
    """What posthog-python puts on the wire for one captured event."""
    gzip = capture.pop("gzip", False)
    client = posthog.Posthog(API_KEY, host=receiver.url(path), sync_mode=True, gzip=gzip)
    try:
        client.capture(capture.pop("event"), **capture)
        return receiver.wait_for(1)[0]
    finally:
        client.shutdown()


def test_posthog_backend_satisfies_the_backend_protocol() -> None:
    assert isinstance(PostHogBackend(API_KEY), Backend)


@pytest.mark.parametrize("index", [0, 2], ids=["command", "custom-event"])
def test_posthog_request_has_the_shape_of_posthogs_own_client(
    receiver: Receiver, official_receiver: Receiver, index: int
) -> None:
    ours = send(PostHogBackend(API_KEY, host=receiver.url()), receiver, batch())
    our_body = ours.json()
    our_event = our_body["batch"][index]

    theirs = official_client_request(
        official_receiver,
        event=our_event["event"],
        distinct_id=our_event["distinct_id"],
        properties=our_event["properties"],
        timestamp=our_event["timestamp"],
        uuid=our_event["uuid"],
        disable_geoip=True,
    )
    their_body = theirs.json()
    their_event = their_body["batch"][0]

    assert (ours.method, ours.path) == (theirs.method, theirs.path) == ("POST", "/batch/")
    assert ours.headers["content-type"] == theirs.headers["content-type"] == "application/json"
    assert set(our_body) == set(their_body) == BODY_KEYS
    assert our_body["api_key"] == their_body["api_key"] == API_KEY
    assert our_body["historical_migration"] is their_body["historical_migration"] is False
    datetime.fromisoformat(our_body["sent_at"])
    # No key is missing on either side: the client's event has exactly these five.
    assert set(our_event) == set(their_event) == EVENT_KEYS
    # The client normalizes timestamps and uuids; ours come out of it unchanged.
    for key in ("event", "distinct_id", "timestamp", "uuid"):
        assert our_event[key] == their_event[key]
    # The client adds its own context ($os, $python_version, $is_server, ...) and
    # names itself in $lib; every property we send reaches it as we sent it.
    ours_to_compare = {
        key: value
        for key, value in our_event["properties"].items()
        if key not in {"$lib", "$lib_version"}
    }
    assert {key: their_event["properties"][key] for key in ours_to_compare} == ours_to_compare


def test_each_record_becomes_one_personless_event_under_the_install_id(receiver: Receiver) -> None:
    events = send(PostHogBackend(API_KEY, host=receiver.url()), receiver, batch()).json()["batch"]
    ingests = events[2]["properties"]
    assert (ingests["driver"], ingests["table_count"], ingests["demo"]) == (
        "postgres",
        "100-1000",
        False,
    )
    assert (ingests["count"], ingests["duration_ms_sum"]) == (3, 1700.0)
    assert "command" not in ingests
    assert "flags" not in ingests

    # A command's record is a `cli_command_rollup`; the tool's own event keeps its name.
    assert [event["event"] for event in events] == [ROLLUP_EVENT, ROLLUP_EVENT, "ingest_completed"]
    assert [event["distinct_id"] for event in events] == [INSTALL_ID] * 3
    # The record's own fields, its properties flattened beside them.
    record_fields = set(ROLLUP_FIELD_NAMES) - {"event", "properties"}
    for event, record in zip(events, [MIGRATIONS, ROOT_FAILURE, INGESTS], strict=True):
        properties = event["properties"]
        flattened = record.to_json()["properties"]
        assert set(properties) == (
            record_fields
            | set(flattened)
            | (set(ENVELOPE_FIELD_NAMES) - {"install_id"})
            | {"$process_person_profile", "$geoip_disable", "$lib", "$lib_version"}
        )
        assert properties["$process_person_profile"] is False
        assert properties["$geoip_disable"] is True
        assert properties["$lib"] == "typer-telemetry"
        assert properties["$lib_version"] == ENVELOPE.library_version
        assert {name: properties[name] for name in flattened} == flattened
        assert {name: properties[name] for name in record_fields} == {
            name: value for name, value in record.to_json().items() if name in record_fields
        }
        assert properties["tool"] == "acme-deploy"
        assert properties["os_release"] == "6.1.0"
        assert event["timestamp"] == "2026-11-23T23:59:59.999000+00:00"


def test_event_uuids_are_stable_across_resends_and_distinct_per_record(receiver: Receiver) -> None:
    backend = PostHogBackend(API_KEY, host=receiver.url())

    first = [event["uuid"] for event in send(backend, receiver, batch()).json()["batch"]]
    again = [event["uuid"] for event in send(backend, receiver, batch()).json()["batch"]]
    other_day = [
        event["uuid"]
        for event in send(backend, receiver, batch("acme-deploy/2026-11-24/3f2b8c1e")).json()[
            "batch"
        ]
    ]

    assert first == again
    assert len(set(first)) == 3
    assert not set(first) & set(other_day)
    assert all(str(uuid.UUID(value)) == value for value in first)


def test_large_batches_are_gzipped_as_the_client_does_when_gzip_is_on(
    receiver: Receiver, official_receiver: Receiver
) -> None:
    ours = send(PostHogBackend(API_KEY, host=receiver.url()), receiver, batch(records=20))
    theirs = official_client_request(
        official_receiver,
        event=ROLLUP_EVENT,
        distinct_id=INSTALL_ID,
        properties={"padding": "x" * 2000},
        gzip=True,
    )

    assert ours.headers["content-encoding"] == theirs.headers["content-encoding"] == "gzip"
    assert ours.body[:2] == b"\x1f\x8b"
    assert [event["properties"]["command"] for event in ours.json()["batch"]] == [
        f"deploy region-{n}" for n in range(20)
    ]


def test_small_requests_are_sent_uncompressed(receiver: Receiver) -> None:
    PostHogBackend(API_KEY, host=receiver.url()).request_deletion(INSTALL_ID, timeout=5)
    request = receiver.wait_for(1)[0]
    assert "content-encoding" not in request.headers
    assert request.json()["batch"]


@pytest.mark.parametrize("prefix", ["/posthog", "/posthog/"])
def test_self_hosted_hosts_with_a_path_prefix_get_the_clients_path(
    receiver: Receiver, official_receiver: Receiver, prefix: str
) -> None:
    ours = send(PostHogBackend(API_KEY, host=receiver.url(prefix)), receiver, batch())
    theirs = official_client_request(official_receiver, prefix, event="probe", distinct_id="d")
    assert ours.path == theirs.path == "/posthog/batch/"


@pytest.mark.parametrize(
    "host",
    [
        "https://us.i.posthog.com",
        "https://eu.i.posthog.com",
        "https://app.posthog.com",
        "https://us.posthog.com/",
        "https://eu.posthog.com",
        "https://posthog.example.com/",
    ],
)
def test_app_hosts_are_mapped_to_ingestion_hosts_like_the_client(host: str) -> None:
    expected = determine_server_host(host).removesuffix("/") + "/batch/"
    assert PostHogBackend(API_KEY, host=host).batch_url == expected


def test_plain_http_to_another_machine_is_refused() -> None:
    with pytest.raises(ValueError, match="https"):
        PostHogBackend(API_KEY, host="http://posthog.example.com")


@pytest.mark.parametrize("status", [500, 429, 400, 401, 302])
def test_a_refusal_raises_delivery_error(receiver: Receiver, status: int) -> None:
    receiver.respond(status, b'{"type": "error", "detail": "no"}')
    with pytest.raises(DeliveryError, match=str(status)):
        PostHogBackend(API_KEY, host=receiver.url()).send(batch(), timeout=5)
    assert len(receiver.requests) == 1


def test_any_body_with_a_2xx_status_counts_as_accepted(receiver: Receiver) -> None:
    # Like posthog-python, success is read from the status alone: the body of
    # an accepted batch is not parsed, so an unexpected one is not a failure.
    receiver.respond(200, b"<html>definitely not json")
    PostHogBackend(API_KEY, host=receiver.url()).send(batch(), timeout=5)
    assert len(receiver.requests) == 1


def test_a_receiver_that_never_answers_fails_within_the_timeout(receiver: Receiver) -> None:
    receiver.respond(hang=True)
    started = time.monotonic()
    with pytest.raises(DeliveryError):
        PostHogBackend(API_KEY, host=receiver.url()).send(batch(), timeout=0.5)
    assert time.monotonic() - started < 3


def test_a_field_outside_the_schema_never_reaches_the_back_end(receiver: Receiver) -> None:
    # Records reach back ends typed: one is read only through the schema's check,
    # and holds nothing else; what is sent is exactly its fields.
    leaky = {**MIGRATIONS.to_json(), "cwd": "/home/alice/secret"}
    with pytest.raises(SchemaError):
        Record.from_json(leaky)
    with pytest.raises(SchemaError):
        Record.from_json({**MIGRATIONS.to_json(), "properties": {"cwd": "/home/alice/secret"}})
    with pytest.raises(AttributeError):
        MIGRATIONS.cwd = "/home/alice/secret"  # type: ignore[attr-defined]
    [event] = send(
        PostHogBackend(API_KEY, host=receiver.url()),
        receiver,
        Batch(DAY, ENVELOPE, [MIGRATIONS], "k"),
    ).json()["batch"]
    assert "/home/alice" not in json.dumps(event)


def test_deletion_is_requested_by_an_event_under_the_old_install_id(receiver: Receiver) -> None:
    old_install_id = "9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f"
    PostHogBackend(API_KEY, host=receiver.url()).request_deletion(old_install_id, timeout=5)

    request = receiver.wait_for(1)[0]
    body = request.json()
    assert (request.method, request.path) == ("POST", "/batch/")
    assert set(body) == BODY_KEYS
    assert body["api_key"] == API_KEY
    [event] = body["batch"]
    assert set(event) == EVENT_KEYS
    assert event["event"] == DELETION_EVENT
    assert event["distinct_id"] == old_install_id
    assert event["properties"] == {**PERSONLESS_WITHOUT_GEOIP, "$lib": "typer-telemetry"}
    uuid.UUID(event["uuid"])
    datetime.fromisoformat(event["timestamp"])


def test_a_refused_deletion_raises_delivery_error(receiver: Receiver) -> None:
    receiver.respond(503)
    with pytest.raises(DeliveryError):
        PostHogBackend(API_KEY, host=receiver.url()).request_deletion(INSTALL_ID, timeout=5)
