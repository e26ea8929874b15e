"""The ceiling of the collector's server stack: the same uvicorn and Starlette, storing nothing.

    python collector_ceiling.py PORT WORKERS

Served exactly as `typer-telemetry-collector serve` serves the collector
(uvicorn, the same worker count, no access log, no server header, no proxy
headers), with one route that reads the whole body and answers
`{"accepted": true}` without inflating, parsing or storing it: what any
collector on this stack could at best reach on this machine.
"""

from __future__ import annotations

import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def batches(request: Request) -> Response:
    await request.body()
    return JSONResponse({"accepted": True})


def app() -> Starlette:
    return Starlette(routes=[Route("/v1/batches", batches, methods=["POST"])])


def main(arguments: list[str]) -> int:
    import uvicorn

    port, workers = (int(argument) for argument in arguments)
    uvicorn.run(
        "collector_ceiling:app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
