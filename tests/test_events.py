"""Custom event declarations: the declaration is the allowlist of what an event may record.

Every refusal of a declaration names the fix; every value at record time is
resolved to a declared string, a bucket label or a bool, or refused with an
error that names the event, the field and the value's type, never the value.
"""

from __future__ import annotations

import bisect
import copy
import enum
import math
import pickle
import subprocess
import sys
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from typer_telemetry._events import (
    MAX_FIELDS,
    RESERVED_EVENT_NAMES,
    RESERVED_FIELD_NAMES,
    Bucket,
    Choice,
    EventType,
    FieldTypeError,
    Flag,
    UnknownFieldError,
    is_event_name,
    is_field_name,
    is_property_value,
)

EVENTS_MODULE = Path(__file__).parent.parent / "src" / "typer_telemetry" / "_events.py"


def ingest() -> EventType:
    return EventType(
        "ingest_completed",
        {
            "driver": Choice("postgres", "sqlite", "snowflake"),
            "table_count": Bucket(10, 100, 1000),
            "demo": Flag(),
        },
    )


# -- hostile values: what a tool may hand over at record time --------------------------


class Shouting:
    """An object whose every text says LEAKED and that claims to equal everything."""

    def __str__(self) -> str:
        return "LEAKED"

    def __repr__(self) -> str:
        return "LEAKED"

    def __format__(self, spec: str) -> str:
        return "LEAKED"

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash("postgres")


class PretendsToBeStr(Shouting):
    """Claims to be a str (isinstance believes __class__) without being one."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        return str


class PretendsToBeInt(Shouting):
    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        return int


class PretendsToBeBool(Shouting):
    @property  # type: ignore[misc]
    def __class__(self) -> type:  # type: ignore[override]
        return bool


class Unprintable:
    """Raises from everything a careless error message would call."""

    def __str__(self) -> str:
        raise RuntimeError("LEAKED by str")

    def __repr__(self) -> str:
        raise RuntimeError("LEAKED by repr")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("LEAKED by eq")

    def __hash__(self) -> int:
        return 7

    def __bool__(self) -> bool:
        raise RuntimeError("LEAKED by bool")

    def __index__(self) -> int:
        raise RuntimeError("LEAKED by index")

    def __float__(self) -> float:
        raise RuntimeError("LEAKED by float")


class SlyStr(str):
    """A str that equals and hashes like a declared value and prints as something else."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash("postgres")

    def __str__(self) -> str:
        return "LEAKED"

    def __repr__(self) -> str:
        return "LEAKED"


class SlyInt(int):
    """An int whose comparisons, conversions and text all lie."""

    def __lt__(self, other: object) -> bool:
        return True

    def __ge__(self, other: object) -> bool:
        return False

    def __int__(self) -> int:
        return -1

    def __index__(self) -> int:
        return -1

    def __str__(self) -> str:
        return "LEAKED"

    def __repr__(self) -> str:
        return "LEAKED"


class SlyFloat(float):
    def __lt__(self, other: object) -> bool:
        return True

    def __float__(self) -> float:
        return math.nan

    def __repr__(self) -> str:
        return "LEAKED"


class Driver(str, enum.Enum):
    POSTGRES = "postgres"
    MYSQL = "mysql"


class PlainDriver(enum.Enum):
    POSTGRES = "postgres"


class Size(enum.IntEnum):
    SMALL = 5
    LARGE = 5000


# -- declaring a Choice ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "error", "fix"),
    [
        ((), ValueError, "Choice('postgres', 'sqlite')"),
        ((["a", "b"],), TypeError, "Choice(*values)"),
        ((("a", "b"),), TypeError, "Choice(*values)"),
        (tuple(f"v{index}" for index in range(65)), ValueError, "at most 64 values"),
        (("a", 1), TypeError, "value 2 must be a str, not int"),
        ((None,), TypeError, "must be a str, not NoneType"),
        ((b"postgres",), TypeError, "must be a str, not bytes"),
        (("",), ValueError, "1 to 64 characters of letters, digits"),
        (("two words",), ValueError, "1 to 64 characters of letters, digits"),
        (("-leading",), ValueError, "starting with a letter or digit"),
        (("_leading",), ValueError, "starting with a letter or digit"),
        (("café",), ValueError, "1 to 64 characters of letters, digits"),
        (("a/b",), ValueError, "1 to 64 characters of letters, digits"),
        (("line\nbreak",), ValueError, "1 to 64 characters of letters, digits"),
        (("x" * 65,), ValueError, "1 to 64 characters"),
        (("postgres", "other"), ValueError, "recorded as 'other' already; remove it"),
        (("postgres", "sqlite", "postgres"), ValueError, "value 3 'postgres' is declared twice"),
    ],
)
def test_a_wrong_choice_declaration_is_refused_naming_the_fix(
    values: tuple[object, ...], error: type[Exception], fix: str
) -> None:
    with pytest.raises(error) as raised:
        Choice(*values)  # type: ignore[arg-type]
    assert fix in str(raised.value)
    assert type(raised.value) in (TypeError, ValueError)  # not a record-time error


def test_a_choice_takes_its_limits_and_every_character_of_its_charset() -> None:
    assert len(Choice(*(f"v{index}" for index in range(64))).values) == 64
    assert Choice("x" * 64).values == ("x" * 64,)
    assert Choice("eu-west-1", "v2.1", "ns:name", "A_b", "9lives", "Other").values == (
        "eu-west-1",
        "v2.1",
        "ns:name",
        "A_b",
        "9lives",
        "Other",
    )


# -- declaring a Bucket ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "error", "fix"),
    [
        ((), ValueError, "Bucket(10, 100, 1000)"),
        (([10, 100],), TypeError, "Bucket(*bounds)"),
        ((range(3),), TypeError, "Bucket(*bounds)"),
        (tuple(range(1, 18)), ValueError, "at most 16 bounds"),
        ((True,), TypeError, "bound 1 must be a number (int or float), not bool"),
        ((10, "100"), TypeError, "bound 2 must be a number (int or float), not str"),
        ((None,), TypeError, "not NoneType"),
        ((Decimal(10),), TypeError, "not Decimal"),
        ((Fraction(1, 2),), TypeError, "not Fraction"),
        ((1j,), TypeError, "not complex"),
        ((math.nan,), ValueError, "must be a finite number"),
        ((10, math.inf), ValueError, "bound 2 must be a finite number"),
        ((-1,), ValueError, "must be 0 or more"),
        ((-0.5,), ValueError, "must be 0 or more"),
        ((100, 10), ValueError, "strictly increasing: bound 2 (10) does not follow 100"),
        ((10, 10), ValueError, "sort them and remove repeats"),
        ((10, 10.0), ValueError, "strictly increasing"),
        ((0, -0.0), ValueError, "strictly increasing"),
        ((10**400,), ValueError, "too large: a bound must be below 1.8e308"),
        ((10**16, 10**16 + 1), ValueError, "must differ as floats"),
        ((10**17, 10**17 + 1), ValueError, "use bounds further apart"),
    ],
)
def test_a_wrong_bucket_declaration_is_refused_naming_the_fix(
    bounds: tuple[object, ...], error: type[Exception], fix: str
) -> None:
    with pytest.raises(error) as raised:
        Bucket(*bounds)  # type: ignore[arg-type]
    assert fix in str(raised.value)
    assert type(raised.value) in (TypeError, ValueError)


@pytest.mark.parametrize(
    ("bounds", "labels"),
    [
        ((10, 100, 1000), ("<10", "10-100", "100-1000", "1000+")),
        ((10.0, 100.0), ("<10", "10-100", "100+")),
        ((0,), ("<0", "0+")),
        ((-0.0, 1), ("<0", "0-1", "1+")),
        ((0.5, 2.5), ("<0.5", "0.5-2.5", "2.5+")),
        ((0.1, 0.2), ("<0.1", "0.1-0.2", "0.2+")),
        ((1e-05, 0.0001), ("<1e-05", "1e-05-0.0001", "0.0001+")),
        ((5e-324,), ("<5e-324", "5e-324+")),
        ((10**15, 10**16), ("<1000000000000000", "1000000000000000-1e+16", "1e+16+")),
        ((9999999999999999,), ("<9999999999999999", "9999999999999999+")),
        ((1e20, 10**21), ("<1e+20", "1e+20-1e+21", "1e+21+")),
        ((1.5e17,), ("<1.5e+17", "1.5e+17+")),
        ((Size.SMALL, Size.LARGE), ("<5", "5-5000", "5000+")),
        ((1.7976931348623157e308,), ("<1.7976931348623157e+308", "1.7976931348623157e+308+")),
    ],
)
def test_bucket_labels_write_each_bound_short_and_the_same_for_equal_numbers(
    bounds: tuple[float, ...], labels: tuple[str, ...]
) -> None:
    bucket = Bucket(*bounds)
    assert bucket.labels == labels
    assert all(is_property_value(label) for label in bucket.labels)
    assert all(type(label) is str and len(label) <= 64 for label in bucket.labels)


def test_the_longest_bucket_labels_stay_within_64_characters() -> None:
    bucket = Bucket(2.2250738585072014e-308, 1.2345678901234567e-300, 1.2345678901234567e300)
    assert max(len(label) for label in bucket.labels) <= 47
    assert all(is_property_value(label) for label in bucket.labels)


def test_a_bucket_takes_sixteen_bounds_and_keeps_big_ints_as_the_float_its_label_shows() -> None:
    assert len(Bucket(*range(16)).labels) == 17
    big = Bucket(10**20 + 1)
    assert big.labels == ("<1e+20", "1e+20+")
    # Compared with the number the label shows, not with the int as given.
    assert big.resolve(10**20) == "1e+20+"
    assert big.resolve(10**20 - 1) == "<1e+20"


# -- declaring an event ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "error", "fix"),
    [
        (None, TypeError, "event name must be a str such as 'ingest_completed'"),
        (b"ingest", TypeError, "not bytes"),
        ("", ValueError, "lower-case letters, digits and '_', starting with a letter"),
        ("Ingest", ValueError, "lower-case letters"),
        ("1ingest", ValueError, "starting with a letter"),
        ("_ingest", ValueError, "starting with a letter"),
        ("ingest-completed", ValueError, "lower-case letters, digits and '_'"),
        ("ingest completed", ValueError, "lower-case letters, digits and '_'"),
        ("x" * 65, ValueError, "1 to 64 characters"),
        ("command", ValueError, "reserved for the library's own events"),
        ("typer_telemetry", ValueError, "choose another name"),
        ("typer_telemetry_signal", ValueError, "names starting with 'typer_telemetry'"),
    ],
)
def test_a_wrong_event_name_is_refused_naming_the_fix(
    name: object, error: type[Exception], fix: str
) -> None:
    with pytest.raises(error) as raised:
        EventType(name, {})  # type: ignore[arg-type]
    assert fix in str(raised.value)


@pytest.mark.parametrize(
    ("fields", "error", "fix"),
    [
        ([("driver", Flag())], TypeError, "fields must be a mapping of field name"),
        (
            {f"field_{index}": Flag() for index in range(MAX_FIELDS + 1)},
            ValueError,
            "declares 17 fields; at most 16 are allowed: split it into several events",
        ),
        ({1: Flag()}, TypeError, "field names must be str, not int"),
        ({"Driver": Flag()}, ValueError, "field 'Driver': its name must be 1 to 64 characters"),
        ({"": Flag()}, ValueError, "its name must be 1 to 64 characters"),
        ({"table-count": Flag()}, ValueError, "lower-case letters, digits and '_'"),
        ({"y" * 65: Flag()}, ValueError, "its name must be 1 to 64"),
        ({"outcome": Flag()}, ValueError, "field 'outcome': the name is reserved"),
        ({"duration_ms": Bucket(1)}, ValueError, "rename it (e.g. duration_ms_kind)"),
        (
            {"driver": Choice},
            TypeError,
            "is the class Choice, not a declaration: write Choice(...)",
        ),
        ({"table_count": Bucket}, TypeError, "write Bucket(...) with parentheses"),
        ({"demo": Flag}, TypeError, "write Flag() with parentheses"),
        (
            {"driver": "postgres"},
            TypeError,
            "must be declared as Choice(...), Bucket(...) or Flag()",
        ),
        ({"count_of": 10}, TypeError, "count_of=Bucket(10, 100) for numbers"),
        ({"demo": bool}, TypeError, "demo=Flag() for booleans"),
        ({"demo": None}, TypeError, "not NoneType"),
        ({"driver": ["a", "b"]}, TypeError, "driver=Choice('a', 'b') for strings"),
    ],
)
def test_a_wrong_field_declaration_is_refused_naming_event_field_and_fix(
    fields: object, error: type[Exception], fix: str
) -> None:
    with pytest.raises(error) as raised:
        EventType("ingest_completed", fields)  # type: ignore[arg-type]
    message = str(raised.value)
    assert fix in message
    assert "'ingest_completed'" in message


@pytest.mark.parametrize("reserved", sorted(RESERVED_FIELD_NAMES))
def test_every_reserved_field_name_is_refused(reserved: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        EventType("ingest_completed", {reserved: Flag()})
    assert not is_field_name(reserved)


def test_a_subclass_of_a_field_kind_is_refused_since_its_resolve_could_store_anything() -> None:
    class FreeText(Choice):
        def resolve(self, value: object) -> str:
            return str(value)

    with pytest.raises(TypeError, match=r"a subclass: declare it with Choice\(...\)"):
        EventType("ingest_completed", {"path": FreeText("a")})


def test_an_event_takes_no_fields_sixteen_fields_and_64_character_names() -> None:
    assert EventType("bare", {}).properties({}) == ()
    sixteen = EventType("e" * 64, {f"f{index}_" + "x" * 60: Flag() for index in range(16)})
    assert len(sixteen.fields) == 16


# -- resolving values -----------------------------------------------------------------------


def test_a_choice_keeps_declared_strings_and_turns_every_other_string_into_other() -> None:
    driver = Choice("postgres", "sqlite", "snowflake")
    assert driver.resolve("postgres") == "postgres"
    assert driver.resolve("sqlite") == "sqlite"
    for typed in ("Postgres", "postgres ", "", "other", "/home/alice/secret.db", "\x00", "é"):
        assert driver.resolve(typed) == "other"


@pytest.mark.parametrize(
    "value", [True, False, 0, 1, 2.5, None, b"postgres", ["postgres"], PlainDriver.POSTGRES]
)
def test_a_choice_refuses_what_is_not_a_string(value: object) -> None:
    with pytest.raises(FieldTypeError, match=f"takes a str, not {type(value).__name__}"):
        Choice("postgres").resolve(value)


def test_a_str_enum_member_counts_as_its_value_and_the_declared_plain_string_is_stored() -> None:
    driver = Choice("postgres", "sqlite")
    stored = driver.resolve(Driver.POSTGRES)
    assert stored == "postgres"
    assert type(stored) is str
    assert stored is driver.values[0]
    assert driver.resolve(Driver.MYSQL) == "other"
    if sys.version_info >= (3, 11):
        strenum = enum.StrEnum("Engine", {"SQLITE": "sqlite"})  # type: ignore[attr-defined]
        assert driver.resolve(strenum.SQLITE) == "sqlite"


def test_a_str_subclass_is_matched_by_its_characters_not_by_its_eq_or_hash() -> None:
    driver = Choice("postgres")
    assert driver.resolve(SlyStr("anything a user typed")) == "other"
    stored = driver.resolve(SlyStr("postgres"))
    assert stored == "postgres"
    assert type(stored) is str


def test_an_object_claiming_to_be_a_str_int_or_bool_is_refused() -> None:
    with pytest.raises(FieldTypeError, match="not PretendsToBeStr"):
        Choice("postgres").resolve(PretendsToBeStr())
    with pytest.raises(FieldTypeError, match="not PretendsToBeInt"):
        Bucket(10).resolve(PretendsToBeInt())
    with pytest.raises(FieldTypeError, match="not PretendsToBeBool"):
        Flag().resolve(PretendsToBeBool())


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (-1, "<10"),
        (-(10**400), "<10"),
        (-math.pi, "<10"),
        (0, "<10"),
        (-0.0, "<10"),
        (9, "<10"),
        (9.999999999999998, "<10"),
        (10, "10-100"),
        (10.0, "10-100"),
        (99, "10-100"),
        (99.99999999999999, "10-100"),
        (100, "100-1000"),
        (412, "100-1000"),
        (1000, "1000+"),
        (1000.0, "1000+"),
        (10**400, "1000+"),
        (1.7976931348623157e308, "1000+"),
        (Size.SMALL, "<10"),
        (Size.LARGE, "1000+"),
        (enum.IntFlag("Bits", {"A": 64})(64), "10-100"),
    ],
)
def test_a_bucket_puts_a_number_equal_to_a_bound_in_the_range_that_starts_there(
    value: float, label: str
) -> None:
    assert Bucket(10, 100, 1000).resolve(value) == label


def test_a_bucket_compares_ints_and_floats_exactly_at_its_edges() -> None:
    zero = Bucket(0, 1)
    assert zero.resolve(-0.0) == "0-1"  # -0.0 counts as 0
    assert zero.resolve(-5e-324) == "<0"
    fine = Bucket(0.1)
    assert fine.resolve(0.1) == "0.1+"
    assert fine.resolve(0.09999999999999999) == "<0.1"
    edge = Bucket(2**53)  # 9007199254740992, exact as a float
    assert edge.resolve(2**53 - 1) == "<9007199254740992"
    assert edge.resolve(float(2**53)) == "9007199254740992+"
    assert edge.resolve(2**53) == "9007199254740992+"
    huge = Bucket(1e16)
    assert huge.resolve(10**16 - 1) == "<1e+16"  # no rounding of the int to a float
    assert huge.resolve(10**16) == "1e+16+"


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (True, "bool"),
        (False, "bool"),
        ("412", "str"),
        (None, "NoneType"),
        (b"1", "bytes"),
        (Decimal(5), "Decimal"),
        (Fraction(1, 2), "Fraction"),
        (1j, "complex"),
        ([1], "list"),
    ],
)
def test_a_bucket_refuses_what_is_not_an_int_or_float(value: object, kind: str) -> None:
    with pytest.raises(FieldTypeError, match=f"takes a number \\(int or float\\), not {kind}"):
        Bucket(10).resolve(value)


@pytest.mark.parametrize("value", [math.nan, -math.nan, math.inf, -math.inf])
def test_a_bucket_refuses_nan_and_infinities(value: float) -> None:
    with pytest.raises(FieldTypeError, match="finite number"):
        Bucket(10).resolve(value)


def test_an_int_or_float_subclass_is_bucketed_by_the_number_it_holds_not_by_its_methods() -> None:
    bucket = Bucket(10, 100)
    assert bucket.resolve(SlyInt(50)) == "10-100"
    assert bucket.resolve(SlyFloat(500.0)) == "100+"
    assert bucket.resolve(SlyFloat(5.0)) == "<10"


def test_a_flag_takes_only_true_and_false() -> None:
    flag = Flag()
    assert flag.resolve(True) is True
    assert flag.resolve(False) is False
    for value in (0, 1, 0.0, "true", "", None, [], b"", Shouting()):
        with pytest.raises(FieldTypeError, match="takes a bool"):
            flag.resolve(value)


# -- properties -----------------------------------------------------------------------------


def test_properties_are_resolved_sorted_by_field_and_leave_out_fields_not_given() -> None:
    event = ingest()
    assert event.properties({"driver": "postgres", "table_count": 412, "demo": False}) == (
        ("demo", False),
        ("driver", "postgres"),
        ("table_count", "100-1000"),
    )
    assert event.properties({"table_count": 3, "driver": "mysql"}) == (
        ("driver", "other"),
        ("table_count", "<10"),
    )
    assert event.properties({}) == ()


@pytest.mark.parametrize("field", ["drivers", "outcome", "duration_ms", "Driver", "command"])
def test_a_field_the_event_does_not_declare_is_an_unknown_field_error(field: str) -> None:
    with pytest.raises(UnknownFieldError) as raised:
        ingest().properties({"driver": "postgres", field: "x"})
    message = str(raised.value)
    assert "event 'ingest_completed' has no field" in message
    assert "its fields: demo, driver, table_count" in message
    assert "declare it in the event or stop recording it" in message


def test_an_unknown_field_name_that_is_not_a_name_is_described_not_echoed() -> None:
    typed = "/home/alice/Client Secrets.xlsx"
    with pytest.raises(UnknownFieldError) as raised:
        ingest().properties({typed: True})
    assert typed not in str(raised.value)
    assert "a str of 31 characters that is not a field name" in str(raised.value)
    with pytest.raises(UnknownFieldError, match="a Shouting that is not a field name"):
        ingest().properties({Shouting(): True})


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("demo", "SECRET-typed-by-user", "str"),
        ("table_count", "SECRET-typed-by-user", "str"),
        ("driver", 12345678, "int"),
        ("demo", Shouting(), "Shouting"),
        ("table_count", Unprintable(), "Unprintable"),
        ("driver", Unprintable(), "Unprintable"),
    ],
)
def test_a_wrong_value_names_event_field_and_type_but_never_the_value(
    field: str, value: object, kind: str
) -> None:
    with pytest.raises(FieldTypeError) as raised:
        ingest().properties({field: value})
    message = str(raised.value)
    assert message.startswith(f"event 'ingest_completed' field {field!r} takes ")
    assert message.endswith(f"not {kind}")
    assert "SECRET" not in message
    assert "12345678" not in message
    assert "LEAKED" not in message
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_record_time_errors_are_type_errors_and_not_each_other() -> None:
    assert issubclass(FieldTypeError, TypeError)
    assert issubclass(UnknownFieldError, TypeError)
    assert not issubclass(FieldTypeError, UnknownFieldError)
    assert not issubclass(UnknownFieldError, FieldTypeError)


# -- identity, immutability and the generated doc -------------------------------------------


def test_the_same_declaration_made_twice_is_equal_and_hashes_alike() -> None:
    first = ingest()
    again = EventType(
        "ingest_completed",
        {
            "demo": Flag(),
            "table_count": Bucket(10.0, 100.0, 1000.0),
            "driver": Choice("snowflake", "postgres", "sqlite"),
        },
    )
    assert first == again
    assert hash(first) == hash(again)
    assert len({first, again}) == 1


@pytest.mark.parametrize(
    "other",
    [
        EventType("ingest_started", {"demo": Flag()}),
        EventType("ingest_completed", {"demo": Flag()}),
        EventType("ingest_completed", {"driver": Choice("postgres"), "demo": Flag()}),
        EventType(
            "ingest_completed",
            {
                "driver": Choice("postgres", "sqlite", "snowflake"),
                "table_count": Bucket(10, 100, 1001),
                "demo": Flag(),
            },
        ),
        EventType(
            "ingest_completed",
            {
                "driver": Choice("postgres", "sqlite", "snowflake"),
                "table_count": Bucket(10, 100, 1000),
                "is_demo": Flag(),
            },
        ),
    ],
)
def test_a_different_declaration_of_an_event_is_not_equal(other: EventType) -> None:
    assert ingest() != other


def test_field_kinds_compare_by_what_they_store() -> None:
    assert Choice("a", "b") == Choice("b", "a")
    assert Choice("a") != Choice("a", "b")
    assert Bucket(10, 100) == Bucket(10.0, 100.0)
    assert hash(Bucket(10, 100)) == hash(Bucket(10.0, 100.0))
    assert Bucket(10) != Bucket(11)
    assert Flag() == Flag()
    assert Choice("a") != Flag()
    assert Bucket(1) != Choice("1")


def test_a_declaration_cannot_be_changed_once_made() -> None:
    fields: dict[str, Choice | Bucket | Flag] = {"driver": Choice("postgres")}
    event = EventType("ingest_completed", fields)
    fields["path"] = Flag()  # the caller's dict, changed afterwards
    assert list(event.fields) == ["driver"]
    with pytest.raises(TypeError):
        event.fields["path"] = Flag()  # type: ignore[index]
    with pytest.raises(AttributeError):
        event.name = "other_name"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Choice("a").values = ("LEAKED",)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Bucket(1).labels = ("LEAKED",)  # type: ignore[misc]


def test_a_declaration_copies_and_pickles_as_an_equal_declaration() -> None:
    event = EventType(
        "ingest_completed",
        {
            "driver": Choice("postgres", "sqlite"),
            "table_count": Bucket(0.5, 10, 10**20),
            "demo": Flag(),
        },
    )
    for copied in (copy.copy(event), copy.deepcopy(event), pickle.loads(pickle.dumps(event))):
        assert copied == event
        assert copied.fields["table_count"].labels == event.fields["table_count"].labels  # type: ignore[union-attr]
        assert copied.properties({"driver": "sqlite", "table_count": 11}) == (
            ("driver", "sqlite"),
            ("table_count", "10-1e+20"),
        )


def test_describe_gives_each_field_its_kind_and_every_value_it_may_be_stored_with() -> None:
    assert ingest().describe() == [
        ("demo", "flag", "true, false"),
        ("driver", "choice", "postgres, sqlite, snowflake, other"),
        ("table_count", "bucket", "<10, 10-100, 100-1000, 1000+"),
    ]
    assert EventType("mixed", {"region": Choice("EU-West", "us")}).describe() == [
        ("region", "choice", "EU-West, us, other")
    ]


# -- the name and value checks the store and the back ends use ------------------------------


def test_event_and_field_names_have_the_declared_form_and_are_not_reserved() -> None:
    assert is_event_name("ingest_completed")
    assert is_event_name("e" * 64)
    assert is_field_name("table_count")
    for name in ("", "Ingest", "1x", "_x", "a-b", "a b", "é", "x" * 65, None, 1, b"x"):
        assert not is_event_name(name)
        assert not is_field_name(name)
    for reserved in (*RESERVED_EVENT_NAMES, "typer_telemetry", "typer_telemetry_signal"):
        assert not is_event_name(reserved)
    assert is_field_name("command_kind")


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        "postgres",
        "other",
        "eu-west-1",
        "v2.1",
        "<10",
        "10-100",
        "1000+",
        "0.5-2.5",
        "1e+20+",
        "<1e-05",
        "1e-05-0.0001",
        "1e+16-1.5e+17",
        "x" * 64,
    ],
)
def test_what_a_declaration_can_store_is_a_property_value(value: object) -> None:
    assert is_property_value(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        0,
        1.5,
        b"x",
        ["a"],
        "",
        "x" * 65,
        "a b",
        "-x",
        "é",
        "/home/alice",
        "<",
        "+",
        "<10+",
        "10+-5",
        "1e+",
        "<1e",
        "1e+20",
        "1e+2-3-4",
        "<<1",
        "1..2+",
        ".5+",
        "1e+05-",
        "1ee5+",
        "1e+-5+",
        "LEAKED\n",
    ],
)
def test_anything_else_is_not_a_property_value(value: object) -> None:
    assert not is_property_value(value)


def test_an_object_claiming_to_be_a_str_is_not_a_property_value() -> None:
    assert not is_property_value(PretendsToBeStr())


# What an isolated interpreter has loaded before anything is imported (`abc`, `types`...).
BASELINE_MODULES = set(
    subprocess.run(
        [sys.executable, "-I", "-c", "import sys, importlib.util; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
)


def test_the_module_loads_only_the_small_standard_library_modules_it_needs() -> None:
    """It loads in the tool's process at every run: no regex, typing, enum or dataclasses."""
    probe = (
        "import sys, importlib.util\n"
        "before = set(sys.modules)\n"
        f"spec = importlib.util.spec_from_file_location('events_alone', {str(EVENTS_MODULE)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=True
    )
    loaded = set(result.stdout.split())
    # What `collections` itself pulls in differs between Python versions (a tool
    # has it loaded long before); the heavy modules must never come with it.
    assert {name.split(".")[0] for name in loaded} <= set(sys.stdlib_module_names), loaded
    heavy = {"re", "typing", "enum", "dataclasses", "json", "inspect", "functools", "abc"}
    assert not loaded & (heavy - BASELINE_MODULES), loaded
    assert {"math", "types"} <= loaded | BASELINE_MODULES, loaded


# -- whatever a tool hands over, only the declaration reaches the record ---------------------

_CHOICE_FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_NAME_FIRST = "abcdefghijklmnopqrstuvwxyz"

choice_values = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(_CHOICE_FIRST),
    st.text(alphabet=_CHOICE_FIRST + "_.:-", max_size=24),
).filter(lambda value: value != "other")

field_names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(_NAME_FIRST),
    st.text(alphabet=_NAME_FIRST + "0123456789_", max_size=12),
).filter(lambda name: name not in RESERVED_FIELD_NAMES)

bound_numbers = st.one_of(
    st.integers(min_value=0, max_value=10**30),
    st.floats(min_value=0, max_value=1e308, allow_nan=False, allow_infinity=False),
)


@st.composite
def buckets(draw: st.DrawFn) -> Bucket:
    bounds = sorted(set(draw(st.lists(bound_numbers, min_size=1, max_size=16))))
    try:
        return Bucket(*bounds)
    except ValueError:  # equal after conversion (0 and -0.0, big ints equal as floats)
        assume(False)
        raise


field_specs = st.one_of(
    st.lists(choice_values, min_size=1, max_size=6, unique=True).map(lambda v: Choice(*v)),
    buckets(),
    st.just(Flag()),
)


PRIMITIVES = st.one_of(
    st.text(),  # unicode, control characters, empty
    st.text().map(lambda text: "LEAK" + text),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 2.0**53 + 1, 10**400]),
    st.booleans(),
    st.none(),
    st.binary(),
    st.lists(st.text(max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
HOSTILE_OBJECTS = st.one_of(
    st.integers().map(SlyInt),
    st.text().map(SlyStr),
    st.builds(Shouting),
    st.builds(Unprintable),
    st.builds(PretendsToBeStr),
    st.builds(PretendsToBeInt),
    st.builds(PretendsToBeBool),
    st.sampled_from([Driver.POSTGRES, PlainDriver.POSTGRES, Size.LARGE, Decimal("1")]),
)


def hostile_values(spec: Choice | Bucket | Flag) -> st.SearchStrategy[object]:
    """Values of every kind, and the near-misses of what this field declares."""
    near: list[st.SearchStrategy[object]] = []
    if isinstance(spec, Choice):
        declared = st.sampled_from(spec.values)
        near = [
            declared,
            declared.map(lambda value: value.upper()),
            declared.map(SlyStr),
            declared.map(lambda value: value + "\x00"),
        ]
    elif isinstance(spec, Bucket):
        bound = st.sampled_from(spec.bounds)
        near = [
            bound,
            bound.map(lambda value: math.nextafter(float(value), -math.inf)),
            bound.map(int),
            bound.map(lambda value: SlyFloat(float(value))),
        ]
    # Three groups drawn about equally often (a mapped strategy is not merged
    # into the one_of around it): near misses, plain values, hostile objects.
    groups = [PRIMITIVES.map(_same), HOSTILE_OBJECTS.map(_same)]
    if near:
        groups.append(st.one_of(*near).map(_same))
    return st.one_of(*groups)


def _same(value: object) -> object:
    return value


@st.composite
def declarations_and_values(draw: st.DrawFn) -> tuple[EventType, dict[object, object]]:
    fields = draw(st.dictionaries(field_names, field_specs, max_size=MAX_FIELDS))
    event = EventType("hypothesis_event", fields)
    values: dict[object, object] = {}
    for field, spec in fields.items():
        if draw(st.booleans()):
            values[field] = draw(hostile_values(spec))
    if draw(st.integers(0, 9)) == 0:  # now and then a field it does not declare
        stray = draw(st.one_of(st.text(), st.sampled_from(sorted(RESERVED_FIELD_NAMES))))
        values[stray] = draw(hostile_values(Flag()))
    return event, values


def assert_only_the_declaration_reaches(event: EventType, values: Mapping[object, object]) -> None:
    try:
        properties = event.properties(values)  # type: ignore[arg-type]
    except (FieldTypeError, UnknownFieldError) as error:
        message = str(error)
        assert "LEAK" not in message
        assert message.startswith(f"event {event.name!r} ")
        return
    assert [field for field, _ in properties] == sorted(field for field, _ in properties)
    assert {field for field, _ in properties} == set(values)
    for field, stored in properties:
        spec = event.fields[field]
        assert type(field) is str
        assert is_property_value(stored)
        if isinstance(spec, Flag):
            assert stored is True or stored is False
        else:
            # One of the declaration's own strings, never text built from the value.
            assert type(stored) is str
            assert any(stored is allowed for allowed in spec.allowed())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(declarations_and_values())
def test_whatever_a_tool_hands_over_only_declared_values_reach_the_properties(
    case: tuple[EventType, Mapping[object, object]],
) -> None:
    event, values = case
    # Each value alone (so that one refused value hides no other), then all together.
    for field, value in values.items():
        assert_only_the_declaration_reaches(event, {field: value})
        spec = event.fields.get(field)  # type: ignore[call-overload]
        expected = expected_property(spec, value)
        if expected is not None:
            assert event.properties({field: value}) == ((field, expected),)  # type: ignore[dict-item]
        if must_be_refused(spec, value):
            with pytest.raises((FieldTypeError, UnknownFieldError)):
                event.properties({field: value})  # type: ignore[dict-item]
    assert_only_the_declaration_reaches(event, values)


def expected_property(spec: Choice | Bucket | Flag | None, value: object) -> str | bool | None:
    """What a plain str, int, float or bool must be stored as, worked out another way."""
    if isinstance(spec, Choice) and type(value) is str:
        return value if value in spec.values else "other"
    if isinstance(spec, Bucket) and (
        type(value) is int or (type(value) is float and math.isfinite(value))
    ):
        return spec.labels[bisect.bisect_right(spec.bounds, value)]
    if isinstance(spec, Flag) and type(value) is bool:
        return value
    return None


def must_be_refused(spec: Choice | Bucket | Flag | None, value: object) -> bool:
    """A value that is certainly of a type its field does not take."""
    if isinstance(spec, Bucket):
        return (type(value) is float and not math.isfinite(value)) or type(value) in (bool, str)
    if isinstance(spec, Choice):
        return type(value) in (int, float, bool, bytes, type(None))
    if isinstance(spec, Flag):
        return type(value) in (int, float, str, bytes, type(None))
    return spec is None and type(value) is str  # a field the event does not declare
