"""The collector on SQLite with parts of its work left out: where its time goes, under load.

    python collector_parts.py PORT DATABASE_URL PARTS

PARTS says what is left out, comma-separated (or "none"):

- `store`: the store answers "stored" at once, writing nothing;
- `records`: every record is taken as checked (a fixed text), unread;
- `parse`: the body is read and inflated, then a fixed document stands for
  it (one real batch, parsed once at start), its envelope still checked.

Served as `serve` serves the collector, with one worker (uvicorn in this
process, so that the parts replaced here are the ones it runs). A benchmark
only: the answers stay `{"accepted": true}`, but what is left out is not done.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import zlib
from typing import Any

from collector_load import request  # beside this script


def leave_out(parts: set[str]) -> None:
    from typer_telemetry.collector import app, sqlite, validation
    from typer_telemetry.collector.rows import IngestOutcome

    if "store" in parts:

        def ingest_many(self: Any, batches: Any, *, now: float, limit: Any) -> list[Any]:
            return [IngestOutcome("stored", rows=batch.record_count) for batch in batches]

        sqlite.SQLiteStore.ingest_many = ingest_many  # type: ignore[method-assign]
    if "records" in parts:
        validation.BatchChecker._record_text = staticmethod(  # type: ignore[method-assign]
            lambda values, day, opening, schema, verdicts: "{}"
        )
    if "parse" in parts:
        day = (
            datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=1)
        ).isoformat()
        head, body = request("127.0.0.1", 1, "/v1/batches", day, 24, 1).split(b"\r\n\r\n", 1)
        if b"Content-Encoding: gzip" in head:
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        document = json.loads(body)
        app._document = lambda _body: document  # type: ignore[assignment]
        check = validation.BatchChecker.check

        def check_fixed(self: Any, document: object, *, header_key: Any, now: float) -> Any:
            return check(self, document, header_key=None, now=now)  # its key is not the header's

        validation.BatchChecker.check = check_fixed  # type: ignore[method-assign]


def main(arguments: list[str]) -> int:
    import uvicorn

    from typer_telemetry.collector.app import CONFIG_VARIABLE
    from typer_telemetry.collector.rows import RateLimit
    from typer_telemetry.collector.store import open_store

    port, database, parts = int(arguments[0]), arguments[1], arguments[2]
    leave_out(set(parts.split(",")) - {"none"})
    open_store(database).close()  # the tables, as `serve` makes them before its workers start
    os.environ[CONFIG_VARIABLE] = json.dumps(
        {
            "db": database,
            "schemas": [],
            "prefix": "/v1",
            "forward_posthog": None,
            "posthog_key": None,
            "forward_queue": "",
            "rate_batches": RateLimit().batches,
            "rate_window_seconds": RateLimit().window_seconds,
        }
    )
    uvicorn.run(
        "typer_telemetry.collector.app:app_from_environment",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=1,
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
