"""The collector's HTTP service: the library's JSON format in, `{"accepted": ...}` out.

    POST {prefix}/batches     a completed day of one install (docs/backends.md)
    POST {prefix}/deletions   forget an install id

Every answer is JSON: `{"accepted": true}` (200) for a batch stored or seen
before and for a deletion done; `{"accepted": false, "error": "..."}` with
400 (not the format, a wrong type, a value outside its limits), 404, 405,
411 (no length), 413 (over `MAX_BODY_BYTES`, before or after gzip), 415 (an
encoding other than gzip), 429 with `Retry-After` (over the per-install
rate), 503 with `Retry-After` (the database cannot be reached). Bad input
never makes a 500.

The service reads the body and four headers (Content-Length,
Transfer-Encoding, Content-Encoding, Idempotency-Key) and nothing else: never
the client's address (`request.client`) nor any forwarding header, and its
log lines carry neither.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .group import MAX_GROUP
from .store import IngestOutcome, RateLimit, Store, StoreUnavailable, open_store
from .validation import (
    BatchChecker,
    Refused,
    ToolSchema,
    ValidBatch,
    check_deletion,
    schemas_by_tool,
)

if TYPE_CHECKING:
    from .._records import Batch

MAX_BODY_BYTES = 64 * 1024
# How often a running collector reads the contracts registered in the store again.
SCHEMA_RELOAD_SECONDS = 60.0
STORE_RETRY_AFTER_SECONDS = 60
log = logging.getLogger("typer_telemetry.collector")


class Forwarder(Protocol):
    """What the app needs of a forwarder (forward.py): a queue it hands stored batches to."""

    def enqueue(self, batch: Batch) -> bool: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


class _Answer(Exception):
    """An answer decided while reading the request (status, error, extra headers)."""

    def __init__(self, status: int, error: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.headers = dict(headers or {})


def _refused(status: int, error: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"accepted": False, "error": error}, status_code=status, headers=headers)


async def _body(request: Request, limit: int) -> bytes:
    """The request's body, inflated if gzipped, at most `limit` bytes either way (or `_Answer`)."""
    length = request.headers.get("content-length")
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    if length is None and not chunked:
        raise _Answer(411, "a Content-Length is required")
    if length is not None:
        if not length.isdigit() or len(length) > 12:
            raise _Answer(400, "Content-Length is not a number")
        if int(length) > limit:
            raise _Answer(413, f"the body is over {limit} bytes")
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise _Answer(413, f"the body is over {limit} bytes")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        return _inflated(bytes(received), limit)
    if encoding not in ("identity", ""):
        raise _Answer(415, "Content-Encoding must be gzip or none")
    return bytes(received)


def _inflated(data: bytes, limit: int) -> bytes:
    """Gzip inflated to at most `limit` bytes: a bomb is stopped at the limit, never inflated whole."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise _Answer(400, "the body is not valid gzip") from None
    if len(inflated) > limit or inflater.unconsumed_tail:
        raise _Answer(413, f"the body is over {limit} bytes once inflated")
    if not inflater.eof or inflater.unused_data:
        raise _Answer(400, "the body is not one complete gzip stream")
    return inflated


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _document(body: bytes) -> object:
    try:
        # UTF-8 (what the format sends) decoded strictly first: json.loads reads str
        # faster than bytes, whose decoding it does with error handlers; other
        # encodings JSON allows are still read as json.loads reads them.
        try:
            text: str | bytes = body.decode("utf-8")
        except UnicodeDecodeError:
            text = body
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise _Answer(400, "the body is not a JSON document") from None


class GroupWriter:
    """Stores the batches of one process's requests in groups: one transaction and one thread per group.

    A request's batch waits in a list; while a group is being written (in a
    worker thread), the batches that come in wait for the next, so a group
    gathers as many as came during one write, up to `max_group` (the same
    group commit as group.py, without a thread per waiting request). Each
    request is answered once the transaction that holds its batch has
    committed.
    """

    def __init__(
        self,
        store: Callable[[], Store],
        limit: RateLimit,
        clock: Callable[[], float],
        max_group: int = MAX_GROUP,
    ) -> None:
        self._store, self._limit, self._clock, self._max_group = store, limit, clock, max_group
        self._waiting: list[tuple[ValidBatch, asyncio.Future[IngestOutcome]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def ingest(self, batch: ValidBatch) -> IngestOutcome:
        """The batch's outcome, once stored with the others waiting, or the error that failed it."""
        future: asyncio.Future[IngestOutcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((batch, future))
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_task(self._write_waiting())
        return await future

    async def _write_waiting(self) -> None:
        try:
            while self._waiting:
                group = self._waiting[: self._max_group]
                del self._waiting[: self._max_group]
                try:
                    results: list[IngestOutcome | Exception] = await run_in_threadpool(
                        self._write, [batch for batch, _ in group]
                    )
                except Exception as error:  # the transaction: no batch of the group is stored
                    results = [error] * len(group)
                for (_, future), result in zip(group, results, strict=True):
                    if future.done():  # the request went away; its batch is stored all the same
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._drain = None

    def _write(self, batches: list[ValidBatch]) -> list[IngestOutcome | Exception]:
        return self._store().ingest_many(batches, now=self._clock(), limit=self._limit)


def create_app(
    store: Store | str,
    *,
    schemas: Iterable[ToolSchema | Path | str] = (),
    prefix: str = "/v1",
    rate_limit: RateLimit | None = None,
    forwarder: Forwarder | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    clock: Callable[[], float] = time.time,
    schema_reload_seconds: float = SCHEMA_RELOAD_SECONDS,
) -> Starlette:
    """The collector as an ASGI app; `store` a Store, or a URL opened when the app starts.

    `schemas` are tools' published contracts (`ToolSchema`, or paths of
    `telemetry schema --json` files), one per tool; for other tools, the
    contracts registered in the store (`serve --schema` registers them) are
    read when the app starts, and again every `schema_reload_seconds` while
    batches come in, so a contract another replica registers is used here
    within that time without a restart. The access log of the
    server that runs it should be off: its lines carry the client's address.
    """
    by_tool = schemas_by_tool(
        schema if isinstance(schema, ToolSchema) else ToolSchema.load(Path(schema))
        for schema in schemas
    )
    given = frozenset(by_tool)  # the contracts given here; the others come from the store
    limit = rate_limit or RateLimit()
    checker = BatchChecker(by_tool)
    loaded_at = [clock()]
    reloads: set[asyncio.Task[None]] = set()
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    opened: list[Store] = [] if isinstance(store, str) else [store]

    def current_store() -> Store:
        if not opened:
            raise StoreUnavailable("the store is not open")
        return opened[0]

    async def reload_registered() -> None:
        try:
            await run_in_threadpool(load_registered)
        except Exception as error:  # kept as they were; tried again after the interval
            log.error("cannot read the registered schemas: %s", type(error).__name__)

    async def batches(request: Request) -> Response:
        if clock() - loaded_at[0] >= schema_reload_seconds:
            loaded_at[0] = clock()
            task = asyncio.get_running_loop().create_task(reload_registered())
            reloads.add(task)  # a reference until done (the loop keeps only a weak one)
            task.add_done_callback(reloads.discard)
        try:
            document = _document(await _body(request, max_body_bytes))
            batch = checker.check(
                document, header_key=request.headers.get("idempotency-key"), now=clock()
            )
        except _Answer as answer:
            return _refused(answer.status, answer.error, answer.headers)
        except Refused as error:
            return _refused(400, str(error))
        return await _store_batch(batch)

    writer = GroupWriter(current_store, limit, clock)

    async def _store_batch(batch: ValidBatch) -> Response:
        try:
            outcome = await writer.ingest(batch)
        except Exception as error:  # the database, not the input
            log.error("cannot store a batch: %s", type(error).__name__)
            return _refused(
                503,
                "the collector cannot store batches now",
                {"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
            )
        if outcome.status == "rate_limited":
            return _refused(
                429,
                f"over {limit.batches} batches in {int(limit.window_seconds)} s for this install",
                {"Retry-After": str(outcome.retry_after)},
            )
        if outcome.status == "stored" and forwarder is not None:
            try:
                await run_in_threadpool(forwarder.enqueue, batch.batch())
            except Exception as error:  # stored all the same: the client must not send it again
                log.error("cannot queue a batch for forwarding: %s", type(error).__name__)
        return JSONResponse({"accepted": True})

    async def deletions(request: Request) -> Response:
        try:
            install_id = check_deletion(_document(await _body(request, max_body_bytes)))
        except _Answer as answer:
            return _refused(answer.status, answer.error, answer.headers)
        except Refused as error:
            return _refused(400, str(error))
        try:
            removed = await run_in_threadpool(current_store().forget, install_id)
        except Exception as error:
            log.error("cannot carry out a deletion: %s", type(error).__name__)
            return _refused(
                503,
                "the collector cannot delete now",
                {"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
            )
        # Said without the id: the log is no record of who asked.
        log.info("deletion request carried out: %d records removed", removed)
        return JSONResponse({"accepted": True})

    async def http_error(request: Request, error: Exception) -> Response:
        status = error.status_code if isinstance(error, HTTPException) else 500
        reasons = {404: "no such path", 405: "method not allowed: use POST"}
        headers = error.headers if isinstance(error, HTTPException) else None
        return _refused(status, reasons.get(status, "request refused"), headers)

    async def server_error(request: Request, error: Exception) -> Response:
        log.error("unexpected %s while answering", type(error).__name__)
        return _refused(500, "internal error")

    def load_registered() -> None:
        """The contracts registered in the store, for the tools not given here (the newest wins)."""
        for text in current_store().registered_schemas():
            try:
                schema = ToolSchema.from_json(json.loads(text))
            except ValueError as error:
                log.error("a registered schema cannot be read: %s", error)
                continue
            if schema.tool not in given and by_tool.get(schema.tool) != schema:
                by_tool[schema.tool] = schema

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if isinstance(store, str):
            opened.append(await run_in_threadpool(open_store, store))
        await run_in_threadpool(load_registered)
        loaded_at[0] = clock()
        if forwarder is not None:
            forwarder.start()
        try:
            yield
        finally:
            if forwarder is not None:
                forwarder.stop()
            if isinstance(store, str):
                opened.pop().close()

    routes = [
        Route(f"{prefix}/batches", batches, methods=["POST"]),
        Route(f"{prefix}/deletions", deletions, methods=["POST"]),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Any]] = {
        HTTPException: http_error,
        Exception: server_error,
    }
    return Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)


# -- the app `serve` runs in each worker process --------------------------------

CONFIG_VARIABLE = "TYPER_TELEMETRY_COLLECTOR_CONFIG"


def app_from_environment() -> Starlette:
    """The app that `serve` configured (JSON in CONFIG_VARIABLE): uvicorn's factory, per worker."""
    import os

    config = json.loads(os.environ[CONFIG_VARIABLE])
    forwarder: Forwarder | None = None
    if config.get("forward_posthog"):
        from .forward import Forwarder as PostHogForwarder  # type: ignore[import-not-found,unused-ignore]

        forwarder = PostHogForwarder(
            Path(config["forward_queue"]),
            host=config["forward_posthog"],
            api_key=config["posthog_key"],
        )
    return create_app(
        config["db"],
        schemas=[Path(path) for path in config["schemas"]],
        prefix=config["prefix"],
        rate_limit=RateLimit(config["rate_batches"], config["rate_window_seconds"]),
        forwarder=forwarder,
        schema_reload_seconds=config.get("schema_reload_seconds", SCHEMA_RELOAD_SECONDS),
    )
