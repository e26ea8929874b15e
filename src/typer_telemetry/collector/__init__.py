"""The reference collector: an ingest service for the library's own JSON format.

`pip install "typer-telemetry[collector]"` (Starlette, uvicorn, psycopg);
`typer-telemetry-collector serve --db ./telemetry.sqlite`; docs/collector.md
says what it accepts, answers, stores and never stores. Nothing in the
library imports this package: a tool that records never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .store import IngestOutcome, RateLimit, ReportRow, Store, open_store
    from .validation import ToolSchema, ValidBatch

__all__ = [
    "IngestOutcome",
    "RateLimit",
    "ReportRow",
    "Store",
    "ToolSchema",
    "ValidBatch",
    "create_app",
    "open_store",
]

_HOMES = {
    "create_app": "app",
    "IngestOutcome": "store",
    "RateLimit": "store",
    "ReportRow": "store",
    "Store": "store",
    "open_store": "store",
    "ToolSchema": "validation",
    "ValidBatch": "validation",
}


def __getattr__(name: str) -> Any:
    """Each public name loaded on first use: `python -m ...collector --help` needs no Starlette."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{home}"), name)
