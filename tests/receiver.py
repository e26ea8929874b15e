"""A real HTTP server on 127.0.0.1 that records what it receives (no HTTP mocking).

    with Receiver() as receiver:
        ... POST to receiver.url("/v1/batch") ...
        request = receiver.wait_for(1)[0]

`receiver.respond(status, body, hang=False, reset=False)` sets how it answers
the next requests: `hang=True` reads the request and never answers,
`reset=True` closes the connection without answering.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes  # as sent (possibly gzipped)
    reply: Reply | None = None  # how the server answered it (None: not known)

    @property
    def content(self) -> bytes:
        """The body, un-gzipped if it was sent gzipped."""
        if self.headers.get("content-encoding", "").lower() == "gzip":
            return gzip.decompress(self.body)
        return self.body

    def json(self) -> Any:
        return json.loads(self.content)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"accepted": true}'
    content_type: str = "application/json"
    hang: bool = False
    reset: bool = False


@dataclass
class Receiver:
    requests: list[ReceivedRequest] = field(default_factory=list)
    reply: Reply = field(default_factory=Reply)
    _condition: threading.Condition = field(default_factory=threading.Condition)
    _release: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                reply = receiver.reply
                request = ReceivedRequest(
                    "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body, reply
                )
                with receiver._condition:
                    receiver.requests.append(request)
                    receiver._condition.notify_all()
                if reply.hang:
                    receiver._release.wait(timeout=60)
                    return
                if reply.reset:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hangs up mid-request is part of what is tested

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "/") -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def respond(
        self,
        status: int = 200,
        body: bytes = b'{"accepted": true}',
        *,
        hang: bool = False,
        reset: bool = False,
    ) -> None:
        self.reply = Reply(status=status, body=body, hang=hang, reset=reset)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[ReceivedRequest]:
        """Block until at least `count` requests have arrived (the real condition, no sleeps)."""
        with self._condition:
            if not self._condition.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise TimeoutError(f"{len(self.requests)} of {count} requests arrived")
            return list(self.requests)

    def __iter__(self) -> Iterator[ReceivedRequest]:
        return iter(list(self.requests))
