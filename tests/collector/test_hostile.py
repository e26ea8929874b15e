"""Hostile bodies against a real collector: never a 500, never a stored field outside the schema.

Hypothesis posts malformed, oversized, deeply nested, wrong-typed,
extra-field and gzip-bomb bodies (and valid batches with one part of them
replaced by any JSON) to one SQLite collector given the example tool's
contract; afterwards the database is read back, row by row.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collector.batches import batch, command_record, event_record, install_id, yesterday
from tests.collector.conftest import Collector, stored_rows
from tests.collector.test_answers import inventory_schema  # noqa: F401  (a fixture)
from tests.hardening.conftest import Reliability, cases

ALLOWED_STATUSES = {200, 400, 411, 413, 415, 429}
SIGNALS = {"runner", "agent", "project_id", "sample_rate"}
DECLARED = {"command": {"command", "flags"}, "ingest_completed": {"file_format", "rows", "dry_run"}}
COLUMNS = [
    "idempotency_key",
    "position",
    "day",
    "tool",
    "tool_version",
    "install_id",
    "python_version",
    "os",
    "os_release",
    "arch",
    "event",
    "properties",
    "outcome",
    "error_class",
    "count",
    "duration_ms_sum",
    "duration_ms_min",
    "duration_ms_max",
    "duration_ms_buckets",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=30,
)


def valid_document() -> dict[str, Any]:
    day = yesterday()
    records = [
        command_record(day),
        event_record(day, {"file_format": "json", "rows": "100-1000", "dry_run": True}),
    ]
    return batch(install_id(), records)


def paths(document: object, prefix: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    """Every place in `document` one value could be replaced or added."""
    yield prefix
    if isinstance(document, dict):
        for key, value in document.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from paths(value, (*prefix, index))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    document = valid_document()
    places = list(paths(document))
    for _ in range(draw(st.integers(1, 3))):
        place = draw(st.sampled_from(places))
        value = draw(json_values)
        if not place:
            document = value  # type: ignore[assignment]
            break
        parent: Any = document
        try:
            for key in place[:-1]:
                parent = parent[key]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent[draw(st.text(max_size=12))] = value  # an extra field beside it
            else:
                parent[place[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    return json.dumps(document).encode()


@st.composite
def with_extra_fields(draw: st.DrawFn) -> bytes:
    """A valid batch with fields the format does not name, at any level: stored without them."""
    document = valid_document()
    records = document["records"]
    targets = [document, document["envelope"], *records, *(r["properties"] for r in records)]
    for _ in range(draw(st.integers(1, 4))):
        target = draw(st.sampled_from(targets))
        name = draw(st.text(min_size=1, max_size=12))
        if name not in target:
            target[name] = draw(json_values)
    return json.dumps(document).encode()


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


bodies = st.one_of(
    st.binary(max_size=2000),
    json_values.map(lambda value: json.dumps(value).encode()),
    mutated(),
    with_extra_fields(),
    st.integers(10, 100_000).map(nested),
    st.integers(64 * 1024 - 200, 64 * 1024 + 200).map(
        lambda size: json.dumps(valid_document()).encode().ljust(size)
    ),
)


@pytest.fixture
def hostile_collector(
    tmp_path: Path,
    inventory_schema: Path,  # noqa: F811
) -> Iterator[Collector]:
    folder = tmp_path
    running = Collector(
        f"sqlite:///{folder / 'telemetry.sqlite'}",
        folder,
        ("--schema", str(inventory_schema), "--rate", "100000"),
    ).start()
    yield running
    running.stop()


SETTINGS = settings(
    max_examples=cases(300, 3000),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
GIVEN = given(
    body=bodies,
    compress=st.sampled_from(["none", "gzip", "truncated gzip", "bomb"]),
    path=st.sampled_from(["/v1/batches", "/v1/deletions"]),
)


def post_hostile(collector: Collector, body: bytes, compress: str, path: str) -> None:
    headers = {}
    if compress != "none":
        headers["Content-Encoding"] = "gzip"
        if compress == "bomb":
            body = body + b" " * 3_000_000  # inflates 1000-fold
        body = gzip.compress(body, compresslevel=9)
        if compress == "truncated gzip":
            body = body[: max(1, len(body) // 2)]
    answer = collector.post(path, body, headers)
    assert answer.status in ALLOWED_STATUSES, answer
    document = answer.json()
    assert isinstance(document, dict)
    assert document["accepted"] is (answer.status == 200)


def test_hostile_bodies_never_make_a_500_nor_store_a_field_outside_the_schema(
    hostile_collector: Collector, reliability: Reliability
) -> None:
    import sqlite3

    @SETTINGS
    @GIVEN
    def hostile(body: bytes, compress: str, path: str) -> None:
        post_hostile(hostile_collector, body, compress, path)

    hostile()
    # Valid batches among them, so that there is something to read back.
    for _ in range(3):
        post_hostile(
            hostile_collector, json.dumps(valid_document()).encode(), "gzip", "/v1/batches"
        )

    with sqlite3.connect(hostile_collector.db.removeprefix("sqlite:///")) as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(records)")]
    assert columns == COLUMNS
    rows = stored_rows(hostile_collector.db)
    assert rows, "the valid batches among the hostile ones were stored"
    for row in rows:
        event, properties = str(row[10]), json.loads(str(row[11]))
        assert event in DECLARED, row
        assert set(properties) <= DECLARED[event] | SIGNALS, row
        assert str(row[3]) == "inventory"
        assert len(json.loads(str(row[18]))) == 16
    log = hostile_collector.log.read_text()
    assert "Traceback" not in log
    assert "unexpected" not in log
    reliability.record(
        "Collector",
        "malformed, oversized, deeply nested, wrong-typed, extra-field and gzip-bomb bodies"
        " posted to the collector",
        cases(300, 3000),
        "answered 400/411/413/415 as JSON, never 500; extra fields dropped, nothing outside"
        " the schema stored",
    )
