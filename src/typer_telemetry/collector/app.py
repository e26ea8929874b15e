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

from .store import RateLimit, Store, StoreUnavailable, open_store
from .validation import (
    Refused,
    ToolSchema,
    ValidBatch,
    check_batch,
    check_deletion,
    schemas_by_tool,
)

if TYPE_CHECKING:
    from .._records import Batch

MAX_BODY_BYTES = 64 * 1024
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
        return json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise _Answer(400, "the body is not a JSON document") from None


def create_app(
    store: Store | str,
    *,
    schemas: Iterable[ToolSchema | Path | str] = (),
    prefix: str = "/v1",
    rate_limit: RateLimit | None = None,
    forwarder: Forwarder | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The collector as an ASGI app; `store` a Store, or a URL opened when the app starts.

    `schemas` are tools' published contracts (`ToolSchema`, or paths of
    `telemetry schema --json` files), one per tool; for other tools, the
    contracts registered in the store (`serve --schema` registers them) are
    read when the app starts. The access log of the
    server that runs it should be off: its lines carry the client's address.
    """
    by_tool = schemas_by_tool(
        schema if isinstance(schema, ToolSchema) else ToolSchema.load(Path(schema))
        for schema in schemas
    )
    limit = rate_limit or RateLimit()
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    opened: list[Store] = [] if isinstance(store, str) else [store]

    def current_store() -> Store:
        if not opened:
            raise StoreUnavailable("the store is not open")
        return opened[0]

    async def batches(request: Request) -> Response:
        try:
            document = _document(await _body(request, max_body_bytes))
            batch = check_batch(
                document,
                header_key=request.headers.get("idempotency-key"),
                schemas=by_tool,
                now=clock(),
            )
        except _Answer as answer:
            return _refused(answer.status, answer.error, answer.headers)
        except Refused as error:
            return _refused(400, str(error))
        return await _store_batch(batch)

    async def _store_batch(batch: ValidBatch) -> Response:
        try:
            outcome = await run_in_threadpool(
                current_store().ingest, batch, now=clock(), limit=limit
            )
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
        """The contracts registered in the store, for the tools not given here."""
        for text in current_store().registered_schemas():
            try:
                schema = ToolSchema.from_json(json.loads(text))
            except ValueError as error:
                log.error("a registered schema cannot be read: %s", error)
                continue
            by_tool.setdefault(schema.tool, schema)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if isinstance(store, str):
            opened.append(await run_in_threadpool(open_store, store))
        await run_in_threadpool(load_registered)
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
    )
