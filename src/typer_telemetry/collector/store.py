"""Where accepted batches are kept: the `Store` interface, and `open_store(url)` to pick one.

Two stores implement it: SQLite (one file, WAL; the default, no set-up) and
PostgreSQL (several collector replicas on one database). In both, a batch is
stored in one transaction, and the idempotency key and the per-install rate
are held by the database (a primary key; a per-install lock taken inside the
transaction), never by one process's memory, so they hold across replicas.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .rows import IngestOutcome, RateLimit, ReportRow

if TYPE_CHECKING:
    from .validation import ValidBatch

__all__ = ["IngestOutcome", "RateLimit", "ReportRow", "Store", "StoreUnavailable", "open_store"]


class StoreUnavailable(RuntimeError):
    """The database cannot be reached or written now (answered 503: the client keeps its data)."""


class Store(Protocol):
    def ingest(self, batch: ValidBatch, *, now: float, limit: RateLimit) -> IngestOutcome:
        """Store a batch in one transaction (see `IngestOutcome`): duplicates and the rate first."""

    def ingest_many(
        self, batches: Sequence[ValidBatch], *, now: float, limit: RateLimit
    ) -> list[IngestOutcome | Exception]:
        """Store batches in one transaction, in order, as if one by one; per batch its outcome
        or the error that failed it alone. Raises when the transaction fails (none is stored)."""

    def forget(self, install_id: str) -> int:
        """Remove every row of `install_id` in one transaction; how many records were removed."""

    def register_schema(self, tool: str, document: str) -> None:
        """Keep a tool's published contract (JSON text) for every replica; replaces the tool's last."""

    def registered_schemas(self) -> list[str]:
        """The contracts registered, one JSON text per tool."""

    def report_rows(
        self, *, tool: str | None = None, since: str | None = None, until: str | None = None
    ) -> Iterator[ReportRow]:
        """The stored records, with their envelopes, of `tool` from `since` to `until` (days, inclusive)."""

    def close(self) -> None: ...


def open_store(url: str) -> Store:
    """`sqlite:///path/db.sqlite` (or a bare path) or `postgresql://...`; tables made if missing."""
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url)
    path = url.removeprefix("sqlite://") if url.startswith("sqlite://") else url
    if "://" in path:
        raise ValueError(f"unknown database URL {url!r}: use sqlite:///PATH or postgresql://...")
    from .sqlite import SQLiteStore

    return SQLiteStore(Path(path))
