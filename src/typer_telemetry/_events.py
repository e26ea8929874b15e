"""Custom events: the author's declaration is the allowlist of what may be recorded.

A tool declares an event once, at import, with one typed field per property:

    ingest = telemetry.event(
        "ingest_completed",
        driver=Choice("postgres", "sqlite", "snowflake"),
        table_count=Bucket(10, 100, 1000),
        demo=Flag(),
    )

and records it with values computed at run time. No field takes a free-form
string: a `Choice` keeps only the strings declared (any other becomes
"other"), a `Bucket` keeps only the label of the range a number falls in, a
`Flag` keeps only a bool. Whatever a user typed into the tool can therefore
reach the store only as one of the declared strings, so it cannot leak.

Two kinds of mistakes are told apart:

- a wrong declaration (bad name, too many fields, `Choice` without
  parentheses...) raises TypeError/ValueError when the event is declared,
  at import of the tool, naming the event, the field and the fix: the author
  sees it on the first run;
- a wrong value at record time raises `FieldTypeError` (a value of a type
  its field does not take) or `UnknownFieldError` (a field the event does not
  declare). Their messages name the event, the field and the value's type,
  never the value itself: it may be something a user typed.

This module loads in the tool's process when the tool declares its events,
on every run, so it imports only the standard library, compiles nothing and
defines plain classes: the character classes are sets, not regular
expressions (as in `_checks.py`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

MAX_FIELDS = 16
MAX_CHOICES = 64
MAX_BOUNDS = 16
MAX_NAME_LENGTH = 64
MAX_VALUE_LENGTH = 64

# The value every string a Choice does not declare becomes.
OTHER = "other"

# The built-in event; and every name starting with this prefix, kept for
# events the library itself may record.
RESERVED_EVENT_NAMES = frozenset({"command"})
RESERVED_EVENT_PREFIX = "typer_telemetry"
# The names the stored and sent records already use around the properties of
# an event: a field with one of these names would be mistaken for them.
RESERVED_FIELD_NAMES = frozenset(
    {
        "day",
        "event",
        "outcome",
        "error_class",
        "count",
        "duration_ms",
        "duration_ms_sum",
        "duration_ms_min",
        "duration_ms_max",
        "duration_ms_buckets",
        "command",
        "flags",
        "runner",
        "agent",
        "project_id",
        "sample_rate",
        "properties",
        # The envelope's: the PostHog back end puts them beside the properties.
        "schema_version",
        "tool",
        "tool_version",
        "library_version",
        "python_version",
        "os",
        "os_release",
        "arch",
        "install_id",
    }
)

_DIGITS = frozenset("0123456789")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_LETTERS = _LOWER | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ALPHANUMERIC = _LETTERS | _DIGITS
# Event and field names: [a-z][a-z0-9_]*
_NAME_REST = _LOWER | _DIGITS | {"_"}
# Choice values: [A-Za-z0-9][A-Za-z0-9_.:-]*
_CHOICE_REST = _ALPHANUMERIC | frozenset("_.:-")
# Bucket labels: "<10", "10-100", "1000+", "0.5-2.5", "1e+20+", "1e-05-0.001".
_LABEL_CHARACTERS = _DIGITS | frozenset(".e+-<")

# Integral bounds below this are written as plain digits; larger ones in the
# shortest float form ("1e+16"), as Python itself switches there.
_PLAIN_DIGITS_BELOW = 10**16

_NAME_RULE = (
    "1 to 64 characters of lower-case letters, digits and '_', starting with a letter"
    " (e.g. 'ingest_completed')"
)
_CHOICE_RULE = (
    "1 to 64 characters of letters, digits, '_', '.', ':' and '-', starting with a letter"
    " or digit (e.g. 'postgres', 'v2.1', 'eu-west-1')"
)


class FieldTypeError(TypeError):
    """A value of a type its field does not take: the author's mistake, found at record time."""


class UnknownFieldError(TypeError):
    """A value for a field the event does not declare: the author's mistake, found at record time."""


# The checks take exact str only: a subclass can make len(), [] and
# iteration show other characters than the ones it holds.


def _is_name(value: object) -> bool:
    return (
        type(value) is str
        and 0 < len(value) <= MAX_NAME_LENGTH
        and value[0] in _LOWER
        and all(char in _NAME_REST for char in value)
    )


def _is_reserved_event_name(value: str) -> bool:
    return value in RESERVED_EVENT_NAMES or value.startswith(RESERVED_EVENT_PREFIX)


def is_event_name(value: object) -> bool:
    """A name a tool may give its own event (so neither "command" nor "typer_telemetry...")."""
    return type(value) is str and _is_name(value) and not _is_reserved_event_name(value)


def is_field_name(value: object) -> bool:
    """A name a tool may give a field of its event (none of `RESERVED_FIELD_NAMES`)."""
    return _is_name(value) and value not in RESERVED_FIELD_NAMES


def _is_choice_value(value: object) -> bool:
    return (
        type(value) is str
        and 0 < len(value) <= MAX_VALUE_LENGTH
        and value[0] in _ALPHANUMERIC
        and all(char in _CHOICE_REST for char in value)
    )


def _is_number_text(text: str) -> bool:
    """A bound as `_number_text` writes it: digits, maybe a fraction, maybe an exponent."""
    mantissa, has_exponent, exponent = text.partition("e")
    whole, has_point, fraction = mantissa.partition(".")
    if not whole or any(char not in _DIGITS for char in whole):
        return False
    if has_point and (not fraction or any(char not in _DIGITS for char in fraction)):
        return False
    if has_exponent:
        digits = exponent[1:]
        return exponent[:1] in ("+", "-") and bool(digits) and all(c in _DIGITS for c in digits)
    return True


def _is_bucket_label(value: str) -> bool:
    if value.startswith("<"):
        return _is_number_text(value[1:])
    if value.endswith("+"):
        return _is_number_text(value[:-1])
    # "low-high": the separator is the one '-' that does not follow an 'e'.
    separators = [
        index for index, char in enumerate(value) if char == "-" and value[index - 1 : index] != "e"
    ]
    if len(separators) != 1:
        return False
    index = separators[0]
    return _is_number_text(value[:index]) and _is_number_text(value[index + 1 :])


def is_property_value(value: object) -> bool:
    """What may appear as the value of a custom property, on disk or on the wire.

    A bool (a Flag), or a string of 1 to 64 characters that a Choice could
    declare ("other" included) or that a Bucket writes as a label. A check
    of the form, not of any declaration: it is what the store and the back
    ends can verify about a record read back from a file.
    """
    if value is True or value is False:
        return True
    if type(value) is not str or not 0 < len(value) <= MAX_VALUE_LENGTH:
        return False
    if _is_choice_value(value):
        return True
    return all(char in _LABEL_CHARACTERS for char in value) and _is_bucket_label(value)


def _shown(value: object) -> str:
    """A declaration's own value in an error message: short, and never failing."""
    try:
        text = repr(value)
    except Exception:
        return f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: object) -> str:
    return type(value).__name__


def _frozen(self: object, name: str, value: object) -> None:
    raise AttributeError(f"{type(self).__name__} is immutable once declared")


class Choice:
    """One of the strings the author declares; any other string is recorded as "other".

    `Choice("postgres", "sqlite")` takes "postgres" and "sqlite" as they are
    and turns every other string into "other" (which is always allowed, so it
    may not be declared). Matching is exact: "Postgres" is "other".

    A str subclass counts as its string value: a member of a `StrEnum` or of
    a `(str, Enum)` class whose value is "postgres" resolves to "postgres".
    What is stored is always the declared plain string, never the object
    given. A plain `Enum` member is not a string: pass `member.value`.
    """

    __slots__ = ("_index", "values")
    values: tuple[str, ...]
    _index: dict[str, str]

    def __init__(self, *values: str) -> None:
        if not values:
            raise ValueError(
                "Choice() needs the values it allows, e.g. Choice('postgres', 'sqlite')"
            )
        if len(values) == 1 and isinstance(values[0], (list, tuple, set, frozenset)):
            raise TypeError(
                "Choice takes its values as separate arguments: write Choice(*values),"
                " not Choice([...])"
            )
        if len(values) > MAX_CHOICES:
            raise ValueError(
                f"Choice allows at most {MAX_CHOICES} values, not {len(values)}: bucket the rest"
                " into fewer values (any undeclared string is recorded as 'other')"
            )
        plain: list[str] = []
        for position, given in enumerate(values, start=1):
            if not issubclass(type(given), str):
                raise TypeError(
                    f"Choice value {position} must be a str, not {_type_name(given)}"
                    f" {_shown(given)}: declare the strings the field may take"
                )
            # A plain str copy: a str subclass given here keeps no behaviour.
            value = str.__str__(given)
            if not _is_choice_value(value):
                raise ValueError(f"Choice value {position} {_shown(value)} must be {_CHOICE_RULE}")
            if value == OTHER:
                raise ValueError(
                    "Choice may not declare 'other': every undeclared string is recorded as"
                    " 'other' already; remove it"
                )
            if value in plain:
                raise ValueError(f"Choice value {position} {value!r} is declared twice; remove one")
            plain.append(value)
        object.__setattr__(self, "values", tuple(plain))
        # Each declared value to itself: what is stored is the declared object.
        object.__setattr__(self, "_index", {value: value for value in plain})

    __setattr__ = _frozen

    def resolve(self, value: object) -> str:
        """A declared value as itself, any other string as "other"; not a string is an error."""
        # The type itself, not isinstance (an object can claim any class through
        # __class__); and the str's own characters, whatever a subclass does to
        # ==, hash or str().
        if not issubclass(type(value), str):
            raise FieldTypeError(f"takes a str, not {_type_name(value)}")
        text = str.__str__(value)
        return self._index.get(text, OTHER)

    def allowed(self) -> tuple[str, ...]:
        """Every value this field may be stored with: the declared ones, then "other"."""
        return (*self.values, OTHER)

    def __eq__(self, other: object) -> bool:
        # Equal when they store the same things: the order of the values
        # changes nothing that is recorded.
        return type(other) is Choice and self._index.keys() == other._index.keys()

    def __hash__(self) -> int:
        return hash(("choice", frozenset(self.values)))

    def __reduce__(self) -> tuple[type[Choice], tuple[str, ...]]:
        # Copied and pickled by declaring it again (its attributes are read-only).
        return (Choice, self.values)

    def __repr__(self) -> str:
        return f"Choice({', '.join(repr(value) for value in self.values)})"


def _pairs(texts: list[str]) -> list[tuple[str, str]]:
    return [(texts[index], texts[index + 1]) for index in range(len(texts) - 1)]


def _number_text(bound: int | float) -> str:
    """A bound written short, the same way for equal numbers of either type.

    Integral values below 10**16 as plain digits (10, 10.0 -> "10"; 0 and
    -0.0 -> "0"); others in Python's shortest round-trip float form, without
    a trailing ".0" (2.5 -> "2.5", 0.00001 -> "1e-05", 10**20 -> "1e+20",
    1.5e17 -> "1.5e+17").
    """
    if bound == 0:
        return "0"
    if isinstance(bound, int) and bound < _PLAIN_DIGITS_BELOW:
        return str(bound)
    if isinstance(bound, float) and bound.is_integer() and bound < _PLAIN_DIGITS_BELOW:
        return str(int(bound))
    text = repr(float(bound))
    return text[:-2] if text.endswith(".0") else text


class Bucket:
    """A number, recorded only as the label of the range it falls in.

    `Bucket(10, 100, 1000)` has the labels "<10", "10-100", "100-1000" and
    "1000+": "10-100" holds 10 <= x < 100, so a number equal to a bound goes
    to the range that starts there. A negative number goes to the first
    label, -0.0 counts as 0, and numbers far past the last bound (huge ints
    included) to the last; ints are compared with float bounds exactly.

    Bounds are 1 to 16 finite numbers, 0 or more, strictly increasing, and
    are written in their shortest form: 10 and 10.0 both as "10", 2.5 as
    "2.5", 0.00001 as "1e-05", `10**20` and 1e20 as "1e+20". So a label holds
    only digits, '.', 'e', '+', '-' and '<', and is at most 47 characters.
    An int bound of `10**16` or more is taken as the nearest float, the number
    its label shows.

    Ints and floats are taken, and their subclasses as the number they hold
    (an `IntEnum` member counts as its int value, a numpy float64 is a
    float); NaN and infinities are errors, and so is a bool (True is not a
    count) and a number-like object that is neither (Decimal, Fraction, a
    numpy int): convert it with int() or float().
    """

    __slots__ = ("bounds", "labels")
    bounds: tuple[int | float, ...]
    labels: tuple[str, ...]

    def __init__(self, *bounds: float) -> None:
        if not bounds:
            raise ValueError("Bucket() needs its bounds, e.g. Bucket(10, 100, 1000)")
        if len(bounds) == 1 and isinstance(bounds[0], (list, tuple, set, frozenset, range)):
            raise TypeError(
                "Bucket takes its bounds as separate arguments: write Bucket(*bounds),"
                " not Bucket([...])"
            )
        if len(bounds) > MAX_BOUNDS:
            raise ValueError(
                f"Bucket allows at most {MAX_BOUNDS} bounds, not {len(bounds)}: use fewer,"
                " wider ranges"
            )
        plain: list[int | float] = []
        for position, bound in enumerate(bounds, start=1):
            kind = type(bound)
            if kind is bool or not issubclass(kind, (int, float)):
                raise TypeError(
                    f"Bucket bound {position} must be a number (int or float), not"
                    f" {_type_name(bound)} {_shown(bound)}"
                )
            # The number a subclass holds (an IntEnum's int), not the subclass.
            number = int.__int__(bound) if isinstance(bound, int) else float.__float__(bound)
            if isinstance(number, int):
                try:
                    float(number)
                except OverflowError:
                    raise ValueError(
                        f"Bucket bound {position} is too large: a bound must be below 1.8e308"
                    ) from None
            if not math.isfinite(number):
                raise ValueError(f"Bucket bound {position} must be a finite number, not {number!r}")
            if number < 0:
                raise ValueError(
                    f"Bucket bound {position} must be 0 or more, not {number!r}: negative"
                    " numbers are recorded with the first label"
                )
            if plain and not number > plain[-1]:
                raise ValueError(
                    f"Bucket bounds must be strictly increasing: bound {position} ({number!r})"
                    f" does not follow {plain[-1]!r}; sort them and remove repeats"
                )
            # A bound of 10**16 or more is kept as the float its label shows,
            # so that what is compared is what the label says.
            big = isinstance(number, int) and number >= _PLAIN_DIGITS_BELOW
            plain.append(float(number) if big else number)
        texts = [_number_text(bound) for bound in plain]
        if len(set(texts)) != len(texts):
            raise ValueError(
                "Bucket bounds must differ as floats (bounds of 10**16 or more are taken as"
                " floats, with 17 significant digits; they are"
                f" written as {', '.join(texts)}): use bounds further apart"
            )
        labels = [f"<{texts[0]}"]
        labels += [f"{low}-{high}" for low, high in _pairs(texts)]
        labels.append(f"{texts[-1]}+")
        object.__setattr__(self, "bounds", tuple(plain))
        object.__setattr__(self, "labels", tuple(labels))

    __setattr__ = _frozen

    def resolve(self, value: object) -> str:
        """The label of the range `value` falls in; a value that is not a finite number is an error."""
        # The type itself, and the number a subclass holds (see Choice.resolve).
        kind = type(value)
        if kind is bool:
            raise FieldTypeError("takes a number (int or float), not bool")
        if issubclass(kind, int):
            number: int | float = int.__int__(value)  # type: ignore[arg-type]
        elif issubclass(kind, float):
            number = float.__float__(value)  # type: ignore[arg-type]
            if not math.isfinite(number):
                raise FieldTypeError("takes a finite number, not a float that is NaN or infinite")
        else:
            raise FieldTypeError(f"takes a number (int or float), not {_type_name(value)}")
        # int against float compares exactly in Python, whatever the size of the int.
        index = 0
        for bound in self.bounds:
            if number < bound:
                break
            index += 1
        return self.labels[index]

    def allowed(self) -> tuple[str, ...]:
        """Every value this field may be stored with: its labels, lowest first."""
        return self.labels

    def __eq__(self, other: object) -> bool:
        return type(other) is Bucket and self.labels == other.labels and self.bounds == other.bounds

    def __hash__(self) -> int:
        return hash(("bucket", self.bounds))

    def __reduce__(self) -> tuple[type[Bucket], tuple[int | float, ...]]:
        return (Bucket, self.bounds)

    def __repr__(self) -> str:
        return f"Bucket({', '.join(repr(bound) for bound in self.bounds)})"


class Flag:
    """A bool, recorded as it is. Only True and False: 0, 1, "yes" or None are errors."""

    __slots__ = ()

    __setattr__ = _frozen

    def resolve(self, value: object) -> bool:
        # Identity, not isinstance: an object can claim any class through __class__.
        if value is True:
            return True
        if value is False:
            return False
        raise FieldTypeError(f"takes a bool (True or False), not {_type_name(value)}")

    def allowed(self) -> tuple[bool, ...]:
        return (True, False)

    def __eq__(self, other: object) -> bool:
        return type(other) is Flag

    def __hash__(self) -> int:
        return hash("flag")

    def __reduce__(self) -> tuple[type[Flag], tuple[()]]:
        return (Flag, ())

    def __repr__(self) -> str:
        return "Flag()"


FieldSpec = Choice | Bucket | Flag
_FIELD_KINDS = {Choice: "choice", Bucket: "bucket", Flag: "flag"}


def _field_spec_problem(event: str, field: str, spec: object) -> str | None:
    """Why `spec` is not a field declaration, and what to write instead; None if it is one."""
    where = f"event {event!r} field {field!r}"
    if type(spec) in _FIELD_KINDS:
        return None
    kind = next((kind for kind in _FIELD_KINDS if spec is kind), None)
    if kind is not None:
        example = "Flag()" if kind is Flag else f"{kind.__name__}(...)"
        return f"{where} is the class {kind.__name__}, not a declaration: write {example} with parentheses"
    if isinstance(spec, (Choice, Bucket, Flag)):
        return (
            f"{where} is a {_type_name(spec)}, a subclass: declare it with Choice(...),"
            " Bucket(...) or Flag() themselves, whose values are the allowlist"
        )
    return (
        f"{where} must be declared as Choice(...), Bucket(...) or Flag(), not"
        f" {_type_name(spec)} {_shown(spec)}: e.g. {field}=Choice('a', 'b') for strings,"
        f" {field}=Bucket(10, 100) for numbers, {field}=Flag() for booleans"
    )


def _shown_field(name: object) -> str:
    """A field name given at record time in a message: as it is if it has the form of one."""
    if type(name) is str and _is_name(name):
        return repr(name)
    length = f" of {len(name)} characters" if type(name) is str else ""
    return f"(a {_type_name(name)}{length} that is not a field name)"


class EventType:
    """One declared event: its name and its typed fields, the allowlist of its properties.

    Two declarations with the same name and equal fields are equal (and hash
    alike), whatever the order of the fields, so the same declaration made
    twice (a module imported twice, a test) is recognisable as such.
    """

    __slots__ = ("fields", "name")
    name: str
    fields: Mapping[str, FieldSpec]

    def __init__(self, name: str, fields: Mapping[str, FieldSpec]) -> None:
        if not issubclass(type(name), str):
            raise TypeError(
                f"the event name must be a str such as 'ingest_completed', not"
                f" {_type_name(name)} {_shown(name)}"
            )
        name = str.__str__(name)  # its own characters, whatever a subclass shows
        if not _is_name(name):
            raise ValueError(f"event name {_shown(name)} must be {_NAME_RULE}")
        if _is_reserved_event_name(name):
            raise ValueError(
                f"event name {name!r} is reserved for the library's own events ('command' and"
                f" names starting with {RESERVED_EVENT_PREFIX!r}): choose another name"
            )
        if not isinstance(fields, Mapping):
            raise TypeError(
                f"event {name!r}: fields must be a mapping of field name to Choice(...),"
                f" Bucket(...) or Flag(), not {_type_name(fields)}"
            )
        if len(fields) > MAX_FIELDS:
            raise ValueError(
                f"event {name!r} declares {len(fields)} fields; at most {MAX_FIELDS} are"
                " allowed: split it into several events"
            )
        declared: dict[str, FieldSpec] = {}
        for given, spec in fields.items():
            if not issubclass(type(given), str):
                raise TypeError(
                    f"event {name!r}: field names must be str, not {_type_name(given)}"
                    f" {_shown(given)}"
                )
            field = str.__str__(given)
            if not _is_name(field):
                raise ValueError(
                    f"event {name!r} field {_shown(field)}: its name must be {_NAME_RULE}"
                )
            if field in RESERVED_FIELD_NAMES:
                raise ValueError(
                    f"event {name!r} field {field!r}: the name is reserved for what every event"
                    f" record carries ({', '.join(sorted(RESERVED_FIELD_NAMES))}): rename it"
                    f" (e.g. {field}_kind)"
                )
            problem = _field_spec_problem(name, field, spec)
            if problem is not None:
                raise TypeError(problem)
            declared[field] = spec
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "fields", MappingProxyType(declared))

    __setattr__ = _frozen

    def properties(self, values: Mapping[str, object]) -> tuple[tuple[str, str | bool], ...]:
        """The given fields resolved to what is stored, sorted by field name.

        A declared field not given is left out. A field the event does not
        declare raises `UnknownFieldError`, a value its field does not take
        `FieldTypeError`; both name the event and the field, and of the value
        only its type.
        """
        resolved: list[tuple[str, str | bool]] = []
        for field, value in values.items():
            spec = self.fields.get(field) if type(field) is str else None
            if spec is None:
                declared = ", ".join(sorted(self.fields)) or "none"
                raise UnknownFieldError(
                    f"event {self.name!r} has no field {_shown_field(field)} (its fields:"
                    f" {declared}): declare it in the event or stop recording it"
                )
            try:
                stored = spec.resolve(value)
            except FieldTypeError as error:
                raise FieldTypeError(f"event {self.name!r} field {field!r} {error}") from None
            resolved.append((field, stored))
        resolved.sort(key=_by_field)
        return tuple(resolved)

    def describe(self) -> list[tuple[str, str, str]]:
        """(field, kind, the values it may be stored with) rows, by field name, for a generated doc."""
        return [
            (
                field,
                _FIELD_KINDS[type(spec)],
                ", ".join(_written(value) for value in spec.allowed()),
            )
            for field, spec in sorted(self.fields.items())
        ]

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is EventType
            and self.name == other.name
            and dict(self.fields) == dict(other.fields)
        )

    def __hash__(self) -> int:
        return hash((self.name, frozenset(self.fields.items())))

    def __reduce__(self) -> tuple[type[EventType], tuple[str, dict[str, FieldSpec]]]:
        return (EventType, (self.name, dict(self.fields)))

    def __repr__(self) -> str:
        fields = ", ".join(f"{field}={spec!r}" for field, spec in self.fields.items())
        return f"EventType({self.name!r}{', ' if fields else ''}{fields})"


def _written(value: str | bool) -> str:
    """A stored value as a doc shows it: a bool as JSON writes it."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _by_field(item: tuple[str, str | bool]) -> str:
    return item[0]
