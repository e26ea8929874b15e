"""Anonymous, privacy-first usage telemetry for Typer command-line tools.

from typer_telemetry import Telemetry

telemetry = Telemetry("mytool", version="1.4.0", endpoint="https://t.example.com/v1")
telemetry.instrument(app)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._telemetry import Telemetry

if TYPE_CHECKING:
    from ._checks import SchemaError
    from ._config import ConfigUnwritable
    from ._consent import Decision
    from ._event_recording import Event
    from ._events import Bucket, Choice, FieldTypeError, Flag, UnknownFieldError
    from ._schema import SCHEMA_VERSION
    from ._version import __version__

# Loaded on first use: importing the package must stay cheap for every run of the tool.
_LAZY = {
    "Bucket": "._events",
    "Choice": "._events",
    "Event": "._event_recording",
    "FieldTypeError": "._events",
    "Flag": "._events",
    "UnknownFieldError": "._events",
    "ConfigUnwritable": "._config",
    "Decision": "._consent",
    "SCHEMA_VERSION": "._schema",
    "SchemaError": "._checks",
    "__version__": "._version",
}

__all__ = [
    "SCHEMA_VERSION",
    "Bucket",
    "Choice",
    "ConfigUnwritable",
    "Decision",
    "Event",
    "FieldTypeError",
    "Flag",
    "SchemaError",
    "Telemetry",
    "UnknownFieldError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
