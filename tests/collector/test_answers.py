"""What a client can rely on: the answers, the checks against the schemas, what is never stored.

One collector (SQLite) with the example tool's published contract
(`python -m typer_telemetry schema inventory.cli:telemetry --json`).
"""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collector.batches import (
    batch,
    command_record,
    days_ago,
    encoded,
    event_record,
    install_id,
    yesterday,
)
from tests.collector.conftest import (
    Collector,
    published_schema,
    sqlite_collector_with,
    stored_rows,
)
from typer_telemetry.collector.app import MAX_BODY_BYTES

JSON_ERROR = {"accepted": False}


@pytest.fixture(scope="module")
def inventory_schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return published_schema(tmp_path_factory.mktemp("schemas"), "inventory.cli:telemetry")


@pytest.fixture
def collector(tmp_path: Path, inventory_schema: Path) -> Iterator[Collector]:
    running = sqlite_collector_with(tmp_path, inventory_schema)
    yield running
    running.stop()


def stored_properties(collector: Collector) -> list[tuple[str, dict[str, object]]]:
    return [(str(row[10]), json.loads(str(row[11]))) for row in stored_rows(collector.db)]


def test_every_refusal_is_a_json_answer_with_its_documented_status(collector: Collector) -> None:
    body, headers = encoded(batch(install_id(), [command_record(yesterday())]))
    cases = {
        "not json": (collector.post("/v1/batches", b"{not json", {}), 400),
        "wrong format": (collector.post("/v1/batches", b'{"format": "x"}', {}), 400),
        "no such path": (collector.post("/v2/batches", body, headers), 404),
        "over the cap": (collector.post("/v1/batches", b" " * (64 * 1024 + 1), {}), 413),
        "not gzip": (collector.post("/v1/batches", body, {"Content-Encoding": "gzip"}), 400),
        "brotli": (collector.post("/v1/batches", body, {"Content-Encoding": "br"}), 415),
        "key differs": (
            collector.post("/v1/batches", body, {"Idempotency-Key": "another"}),
            400,
        ),
    }
    for name, (answer, status) in cases.items():
        assert answer.status == status, name
        document = answer.json()
        assert isinstance(document, dict), name
        assert document["accepted"] is False, name
        assert document["error"], name
    with socket.create_connection(("127.0.0.1", collector.port)) as connection:
        connection.sendall(b"GET /v1/batches HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = connection.makefile("rb").read()
    assert reply.startswith(b"HTTP/1.1 405")
    assert reply.endswith(b'{"accepted":false,"error":"method not allowed: use POST"}')
    assert stored_rows(collector.db) == []


def test_a_body_without_a_length_is_refused_with_411(collector: Collector) -> None:
    with socket.create_connection(("127.0.0.1", collector.port)) as connection:
        connection.sendall(b"POST /v1/batches HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n{}")
        connection.shutdown(socket.SHUT_WR)
        reply = connection.makefile("rb").read()
    assert reply.startswith(b"HTTP/1.1 411")


def test_a_chunked_body_is_read_up_to_the_cap(collector: Collector) -> None:
    document = batch(install_id(), [command_record(yesterday())])
    small = json.dumps(document).encode()

    def chunked(body: bytes) -> bytes:
        """The answer to `body` sent in chunks; past the cap the sending stops and the answer is read.

        The server answers 413 and closes as soon as the cap is crossed: any byte
        sent after that would lie unread on its side, and closing a socket with
        unread bytes resets the connection, losing the answer.
        """
        with socket.create_connection(("127.0.0.1", collector.port)) as connection:
            connection.sendall(
                b"POST /v1/batches HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            sent = 0
            for start in range(0, len(body), 4096):
                piece = body[start : start + 4096]
                connection.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                sent += len(piece)
                if sent > MAX_BODY_BYTES:
                    break
            else:
                connection.sendall(b"0\r\n\r\n")
            return connection.makefile("rb").read()

    assert chunked(small).startswith(b"HTTP/1.1 200")
    assert chunked(b" " * 70_000 + small).startswith(b"HTTP/1.1 413")
    assert len(stored_rows(collector.db)) == 1


def test_a_gzip_bomb_is_refused_without_inflating_it_whole(collector: Collector) -> None:
    # 60 MB of JSON in 60 KB of gzip, cut short: the inflation stops at the cap.
    bomb = gzip.compress(b"[" + b" " * 60_000_000 + b"]", compresslevel=9)[: 60 * 1024]
    answer = collector.post("/v1/batches", bomb, {"Content-Encoding": "gzip"})
    assert answer.status == 413
    assert answer.json() == {
        "accepted": False,
        "error": "the body is over 65536 bytes once inflated",
    }


def test_unknown_events_and_fields_are_dropped_and_the_rest_of_the_batch_kept(
    collector: Collector,
) -> None:
    day = yesterday()
    command = command_record(day)
    command["properties"]["path"] = "/home/someone/secret"  # not a command's property
    command["hostname"] = "laptop.example.com"  # not a record's field
    declared = event_record(
        day,
        {
            "file_format": "csv",
            "rows": "10-100",
            "dry_run": False,
            "customer": "acme",  # not declared
        },
    )
    command["properties"]["runner"] = "script"  # a signal inventory does not turn on
    undeclared_value = event_record(day, {"file_format": "xlsx", "rows": "<10"})
    undeclared_event = event_record(day, {"anything": "x"}, event="secret_event")
    document = batch(install_id(), [command, declared, undeclared_value, undeclared_event])
    document["envelope"]["ip"] = "203.0.113.7"
    document["client"] = {"ip": "203.0.113.7"}
    body, headers = encoded(document)
    answer = collector.post("/v1/batches", body, headers)
    assert (answer.status, answer.json()) == (200, {"accepted": True})
    assert stored_properties(collector) == [
        ("command", {"command": "db migrate", "flags": ["--force"]}),
        (
            "ingest_completed",
            {"dry_run": False, "file_format": "csv", "rows": "10-100"},
        ),
        ("ingest_completed", {"rows": "<10"}),
    ]
    stored = json.dumps(stored_rows(collector.db))
    for secret in ("secret", "laptop", "203.0.113.7", "acme"):
        assert secret not in stored


def test_wrong_types_and_values_outside_the_limits_refuse_the_whole_batch(
    collector: Collector,
) -> None:
    day = yesterday()
    wrong = [
        {**command_record(day), "count": "2"},
        {**command_record(day), "count": 0},
        {**command_record(day), "outcome": "exploded"},
        {**command_record(day), "properties": {"command": "x" * 100, "flags": []}},
        {**command_record(day), "properties": []},
        event_record(day, {"rows": 12}),
        event_record(day, {"file_format": ["csv"]}),
        {**command_record(day), "error_class": "not a class name"},
    ]
    for record in wrong:
        body, headers = encoded(batch(install_id(), [command_record(day), record]))
        answer = collector.post("/v1/batches", body, headers)
        assert answer.status == 400, record
        assert answer.json()["accepted"] is False  # type: ignore[index]
    # A signal outside its list, from a tool whose signals the collector cannot know.
    body, headers = encoded(
        batch(install_id(), [event_record(day, {"runner": "robot"})], tool="unknown-tool")
    )
    assert collector.post("/v1/batches", body, headers).status == 400
    envelope = batch(install_id(), [command_record(day)])
    envelope["envelope"]["install_id"] = "not-a-uuid"
    body, headers = encoded(envelope)
    assert collector.post("/v1/batches", body, headers).status == 400
    assert stored_rows(collector.db) == []


def test_days_outside_the_window_are_dropped_and_the_batch_acknowledged(
    collector: Collector,
) -> None:
    install = install_id()
    for day in (days_ago(401), days_ago(-2)):
        body, headers = encoded(batch(install, [command_record(day)], day=day))
        answer = collector.post("/v1/batches", body, headers)
        assert (answer.status, answer.json()) == (200, {"accepted": True})
    inside = days_ago(399)
    body, headers = encoded(batch(install, [command_record(inside)], day=inside))
    assert collector.post("/v1/batches", body, headers).status == 200
    assert [row[2] for row in stored_rows(collector.db)] == [inside]


def test_a_version_1_batch_is_read_as_version_2(collector: Collector) -> None:
    record = command_record(yesterday())
    properties = record.pop("properties")
    record.pop("event")
    old = batch(install_id(), [{**record, **properties}])
    old["version"] = 1
    old["envelope"]["schema_version"] = 1
    body, headers = encoded(old)
    assert collector.post("/v1/batches", body, headers).status == 200
    assert stored_properties(collector) == [
        ("command", {"command": "db migrate", "flags": ["--force"]})
    ]


def test_a_tool_without_a_schema_keeps_only_events_that_pass_the_generic_checks(
    collector: Collector,
) -> None:
    day = yesterday()
    records = [
        event_record(day, {"driver": "postgres", "Bad Name": "x", "note": "a b c"}, "other_event")
    ]
    body, headers = encoded(batch(install_id(), records, tool="unknown-tool"))
    assert collector.post("/v1/batches", body, headers).status == 200
    assert stored_properties(collector) == [("other_event", {"driver": "postgres"})]


def test_neither_the_database_nor_the_log_holds_the_client_address(collector: Collector) -> None:
    forwarded = {"X-Forwarded-For": "198.51.100.23", "X-Real-IP": "198.51.100.23"}
    for _ in range(3):
        body, headers = encoded(batch(install_id(), [command_record(yesterday())]))
        assert collector.post("/v1/batches", body, {**headers, **forwarded}).status == 200
    assert collector.post("/v1/nowhere", b"{}", forwarded).status == 404
    collector.stop()
    database = Path(collector.db.removeprefix("sqlite:///"))
    files = [database, *database.parent.glob("telemetry.sqlite-*"), collector.log]
    for path in files:
        content = path.read_bytes()
        assert b"127.0.0.1" not in content.replace(f"127.0.0.1:{collector.port}".encode(), b""), (
            path
        )
        assert b"198.51.100.23" not in content, path
    assert len(stored_rows(collector.db)) == 3


def test_the_api_is_served_under_the_prefix_given_and_nowhere_else(tmp_path: Path) -> None:
    running = Collector(
        f"sqlite:///{tmp_path / 'telemetry.sqlite'}", tmp_path, ("--prefix", "/ingest/v2/")
    ).start()
    try:
        body, headers = encoded(batch(install_id(), [command_record(yesterday())]))
        assert running.post("/v1/batches", body, headers).status == 404
        answer = running.post("/ingest/v2/batches", body, headers)
        assert (answer.status, answer.json()) == (200, {"accepted": True})
    finally:
        running.stop()
    assert len(stored_rows(running.db)) == 1
