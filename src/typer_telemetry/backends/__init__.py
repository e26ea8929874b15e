"""Where telemetry goes: one small interface, several implementations.

    from typer_telemetry.backends import HTTPBackend, PostHogBackend, OTLPBackend, FileBackend
    from typer_telemetry.backends import MockBackend   # keeps what it is sent: for tests

Each class is loaded on first use, so that importing the library stays cheap
for the tool's ordinary commands.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import Backend, Batch, DeliveryError, Envelope, Record

if TYPE_CHECKING:
    from .debug import DebugBackend
    from .file import FileBackend
    from .http import HTTPBackend
    from .mock import MockBackend
    from .otlp import OTLPBackend
    from .posthog import PostHogBackend

_LAZY = {
    "DebugBackend": ".debug",
    "FileBackend": ".file",
    "HTTPBackend": ".http",
    "MockBackend": ".mock",
    "OTLPBackend": ".otlp",
    "PostHogBackend": ".posthog",
}

__all__ = [
    "Backend",
    "Batch",
    "DebugBackend",
    "DeliveryError",
    "Envelope",
    "FileBackend",
    "HTTPBackend",
    "MockBackend",
    "OTLPBackend",
    "PostHogBackend",
    "Record",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
