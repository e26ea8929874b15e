"""The collector's quick path for records alike gives the verdicts of the whole check, always.

`BatchChecker` keeps, per schema, the verdict on a record's day, event,
properties, outcome and error class, and checks a record alike only for its
numbers (quicker still when they are of the plain types). Whatever is sent,
a record must come out exactly as the whole check (a fresh checker, that has
seen nothing) makes it: the same stored text, or the same refusal, or the
same drop.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collector.batches import batch, command_record, event_record, install_id, yesterday
from typer_telemetry._records import Record
from typer_telemetry.collector.validation import BatchChecker, Refused, ToolSchema

SCHEMA = ToolSchema(
    "inventory",
    {"ingest_completed": {"format": frozenset({"csv", "json"}), "dry_run": frozenset({True})}},
)

NUMBERS = (
    st.integers(min_value=-3, max_value=2**53 + 2)
    | st.sampled_from([0, 1, 2, 3, 2**53, 2**53 + 1, -1])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0.0, -0.0, 1.0, 2.0, 6.0e23, 7 * 24 * 3600 * 1000.0 * 2**53, 1e308])
    | st.booleans()
    | st.none()
    | st.text(max_size=3)
)
BUCKETS = st.lists(NUMBERS, min_size=14, max_size=17) | NUMBERS | st.just([0] * 16)
# What a sender may put in the categories of a record alike to one seen: near the real ones.
PROPERTY_VALUES = st.sampled_from(["csv", "json", "xml", True, False, 1, 1.0, 0, None, ["csv"]])


def verdict(checker: BatchChecker, record: object, schema: ToolSchema | None) -> object:
    """What a checker makes of a batch holding only `record`: the stored text, or the refusal."""
    document = batch(install_id(), [record], tool="inventory" if schema else "othertool")  # type: ignore[list-item]
    try:
        checked = checker.check(document, header_key=None, now=time.time())
    except Refused as error:
        return ("refused", str(error))
    return (checked.records_json, checked.record_count, checked.dropped)


def warm_checker(seen: list[dict[str, Any]], schema: ToolSchema | None) -> BatchChecker:
    checker = BatchChecker({"inventory": SCHEMA} if schema else {})
    for record in seen:
        assert verdict(checker, record, schema)[0] != "refused", record
    return checker


def whole(record: object, schema: ToolSchema | None) -> object:
    return verdict(BatchChecker({"inventory": SCHEMA} if schema else {}), record, schema)


def mutated(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    record = copy.deepcopy(base)
    record.update(changes)
    return record


BOUND = 7 * 24 * 3600 * 1000.0 * 2**53  # the largest duration sum
EDGES = {
    "count": [0, -1, 2**53, 2**53 + 1, True, 2.0, "3", None],
    "duration_ms_sum": [-1.0, -0.0, BOUND, BOUND * 1.0000001, math.nan, math.inf, 5, True],
    "duration_ms_min": [-0.5, 0.0, math.nan, -math.inf, 7, False],
    "duration_ms_max": [BOUND, BOUND * 1.0000001, math.inf, math.nan, 9, 0.0],
    "duration_ms_buckets": [[0] * 15, [0] * 17, None, "[]", [0.0] * 16, [False] * 16],
}


@st.composite
def near_valid_numbers(draw: st.DrawFn) -> dict[str, object]:
    """A record's numbers that pass, then at most one of them moved to an edge of what is allowed."""
    count = draw(st.integers(1, 12) | st.just(2**53))
    buckets = [0] * 16
    timed = count if draw(st.booleans()) else draw(st.integers(0, min(count, 12)))
    buckets[draw(st.integers(0, 15))] = timed
    minimum = draw(st.floats(0.0, 1e6)) if timed else 0.0
    maximum = draw(st.floats(minimum, 2e6)) if timed else 0.0
    numbers: dict[str, object] = {
        "count": count,
        "duration_ms_sum": draw(st.floats(minimum, 1e9)) if timed else 0.0,
        "duration_ms_min": minimum,
        "duration_ms_max": maximum,
        "duration_ms_buckets": buckets,
    }
    edge = draw(st.sampled_from(["none", "value", "bucket", "timed", "order"]))
    if edge == "value":
        name = draw(st.sampled_from(sorted(EDGES)))
        numbers[name] = draw(st.sampled_from(EDGES[name]))
    elif edge == "bucket":  # one bucket negative, another making up for it; or a bucket of a bool
        moved = list(buckets)
        first, second = draw(st.integers(0, 15)), draw(st.integers(0, 15))
        moved[first] -= 1
        moved[second] += 1
        if draw(st.booleans()):
            moved[first] = draw(st.sampled_from([True, 1.0, -0, 2**53 + 1]))
        numbers["duration_ms_buckets"] = moved
    elif edge == "timed":  # one more or one fewer timed than the count allows
        moved = list(buckets)
        moved[draw(st.integers(0, 15))] += draw(st.sampled_from([1, -1, count]))
        numbers["duration_ms_buckets"] = moved
    elif edge == "order":  # the minimum over the maximum, or durations without timed events
        numbers["duration_ms_min"] = maximum + 1.0
        if draw(st.booleans()):
            numbers["duration_ms_buckets"] = [0] * 16
    return numbers


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(numbers=near_valid_numbers(), event=st.booleans())
def test_a_command_or_event_record_alike_in_all_but_its_numbers_gets_the_whole_checks_verdict(
    numbers: dict[str, object], event: bool
) -> None:
    day = yesterday()
    base = event_record(day, {"format": "csv"}) if event else command_record(day, count=3)
    record = mutated(base, numbers)
    for schema in (SCHEMA, None):
        assert verdict(warm_checker([base], schema), record, schema) == whole(record, schema)


@settings(max_examples=300, deadline=None)
@given(
    first=st.dictionaries(st.sampled_from(["format", "dry_run", "rows"]), PROPERTY_VALUES),
    second=st.dictionaries(st.sampled_from(["format", "dry_run", "rows"]), PROPERTY_VALUES),
    outcome=st.sampled_from(["success", "error", 1, True]),
    error_class=st.sampled_from(["", "ValueError", 0, False]),
)
def test_records_whose_categories_differ_only_in_type_never_share_a_verdict(
    first: dict[str, Any], second: dict[str, Any], outcome: object, error_class: object
) -> None:
    """`True`, `1` and `1.0` are equal in Python, and must never be taken for one another."""
    day = yesterday()
    seen = event_record(day, first)
    record = mutated(event_record(day, second), {"outcome": outcome, "error_class": error_class})
    for schema in (SCHEMA, None):
        checker = BatchChecker({"inventory": SCHEMA} if schema else {})
        verdict(checker, seen, schema)  # refused or not, whatever it keeps must not leak
        assert verdict(checker, record, schema) == whole(record, schema)


def test_the_plain_numbers_path_writes_what_the_whole_check_writes() -> None:
    day = yesterday()
    records = [command_record(day, command, count) for command in ("a", "b c") for count in (1, 7)]
    records.append(mutated(records[0], {"duration_ms_sum": 600, "duration_ms_min": 200}))  # ints
    records.append(mutated(records[0], {"duration_ms_max": 4.0e24}))  # near the bound
    checker = warm_checker(records[:1], SCHEMA)
    for record in records:
        assert verdict(checker, record, None) == whole(record, None)
    # And what the plain path writes reads back as the same records.
    document = batch(install_id(), records)
    checked = BatchChecker({}).check(document, header_key=None, now=time.time())
    assert checked.records == tuple(Record.from_json(record) for record in records)


def test_a_schema_replaced_while_serving_is_used_from_the_next_batch() -> None:
    day = yesterday()
    schemas: dict[str, ToolSchema] = {"inventory": SCHEMA}
    checker = BatchChecker(schemas)
    record = event_record(day, {"format": "xml"})
    assert verdict(checker, record, SCHEMA)[
        0
    ] == f'[{{"day":"{day}","event":"ingest_completed",' + (
        '"properties":{},"outcome":"success","error_class":"","count":1,"duration_ms_sum":0.0,'
        '"duration_ms_min":0.0,"duration_ms_max":0.0,"duration_ms_buckets":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}]'
    )
    schemas["inventory"] = ToolSchema(
        "inventory", {"ingest_completed": {"format": frozenset({"csv", "json", "xml"})}}
    )
    assert '"properties":{"format":"xml"}' in str(verdict(checker, record, SCHEMA)[0])


def test_numbers_python_allows_and_json_does_not_are_refused_as_by_the_whole_check() -> None:
    day = yesterday()
    base = command_record(day, count=2)
    checker = warm_checker([base], None)
    for value in (math.nan, math.inf, -math.inf):
        for name in ("duration_ms_sum", "duration_ms_min", "duration_ms_max"):
            record = mutated(base, {name: value})
            outcome = verdict(checker, record, None)
            assert outcome == whole(record, None)
            assert outcome[0] == "refused"


def edge_cases() -> list[tuple[str, dict[str, Any]]]:
    """Every edge value of EDGES in a record that otherwise passes, and the agreements between them."""
    day = yesterday()
    cases: list[tuple[str, dict[str, Any]]] = []
    for base in (command_record(day, count=1), event_record(day, {"format": "csv"})):
        base = mutated(base, {"count": 1})
        if base["event"] == "command":
            base["duration_ms_buckets"] = [0, 1] + [0] * 14
        for name, values in EDGES.items():
            cases += [
                (f"{base['event']} {name}={value!r}", mutated(base, {name: value}))
                for value in values
            ]
        zero = {"duration_ms_buckets": [0] * 16, "duration_ms_sum": 0.0, "duration_ms_min": 0.0}
        for name in ("duration_ms_sum", "duration_ms_min", "duration_ms_max"):
            cases.append(
                (
                    f"{base['event']} untimed with {name}",
                    mutated(base, {**zero, "duration_ms_max": 0.0, name: 1.0}),
                )
            )
        cases.append((f"{base['event']} count of 2**53+1", mutated(base, {"count": 2**53 + 1})))
        cases.append(
            (
                f"{base['event']} two timed of one",
                mutated(base, {"duration_ms_buckets": [2] + [0] * 15}),
            )
        )
    return cases


def test_every_edge_of_the_numbers_gets_the_whole_checks_verdict() -> None:
    for case, record in edge_cases():
        base = mutated(record, {})
        for schema in (SCHEMA, None):
            seen = (
                command_record(yesterday())
                if record["event"] == "command"
                else event_record(yesterday(), {"format": "csv"})
            )
            assert verdict(warm_checker([seen], schema), record, schema) == whole(base, schema), (
                case
            )
