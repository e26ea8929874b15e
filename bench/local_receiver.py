"""A local HTTP receiver on 127.0.0.1 that records every request and answers as told.

It stands in for the library's endpoint, PostHog and an OpenTelemetry
collector alike. Three behaviours:

- "healthy" answers at once: `{"accepted": true}` to JSON (the library's
  acknowledgement, which PostHog's client also takes), an empty protobuf
  message to protobuf (a valid OTLP response);
- "slow" answers the same, but only after `slow_seconds`;
- "hung" reads the request and never answers.

Every wait is bounded: a connection idle for `IDLE_TIMEOUT_SECONDS` is closed,
and slow or hung handlers are released when the receiver closes.

`Unaccepting` is an endpoint whose connections are never accepted: a client's
connect waits until its own timeout, as behind a firewall that drops packets.
"""

from __future__ import annotations

import gzip
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Behaviour = Literal["healthy", "slow", "hung"]

LISTEN_ADDRESS = "127.0.0.1"  # this machine only
SLOW_ANSWER_SECONDS = 3.0
IDLE_TIMEOUT_SECONDS = 30.0
HUNG_AT_MOST_SECONDS = 120.0
MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes  # as sent on the wire, possibly compressed

    @property
    def content(self) -> bytes:
        """The body, decompressed if it was sent gzipped."""
        if self.headers.get("content-encoding", "").lower() == "gzip":
            return gzip.decompress(self.body)
        return self.body


class Receiver:
    """Use as a context manager; `url` is where to send, `requests` what arrived."""

    def __init__(
        self, behaviour: Behaviour = "healthy", *, slow_seconds: float = SLOW_ANSWER_SECONDS
    ) -> None:
        self.behaviour = behaviour
        self.slow_seconds = slow_seconds
        self.requests: list[ReceivedRequest] = []
        self._arrived = threading.Condition()
        self._closing = threading.Event()

    def __enter__(self) -> Receiver:
        self._server = ThreadingHTTPServer((LISTEN_ADDRESS, 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.handle_error = _ignore_error  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://{LISTEN_ADDRESS}:{self._server.server_port}"

    def count(self) -> int:
        with self._arrived:
            return len(self.requests)

    def wait_for(self, count: int, *, timeout: float) -> list[ReceivedRequest]:
        """Block until `count` requests have arrived (or raise TimeoutError)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise TimeoutError(f"{len(self.requests)} of {count} requests arrived")
            return list(self.requests)

    def _record(self, request: ReceivedRequest) -> None:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = IDLE_TIMEOUT_SECONDS

            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length", "0")), MAX_BODY_BYTES)
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver._record(ReceivedRequest(self.path, headers, self.rfile.read(length)))
                if receiver.behaviour == "hung":
                    receiver._closing.wait(HUNG_AT_MOST_SECONDS)
                    self.close_connection = True
                    return
                if receiver.behaviour == "slow" and receiver._closing.wait(receiver.slow_seconds):
                    self.close_connection = True
                    return
                if "protobuf" in headers.get("content-type", ""):
                    self._answer(b"", "application/x-protobuf")
                else:
                    self._answer(b'{"accepted": true}', "application/json")

            def _answer(self, body: bytes, content_type: str) -> None:
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (it exited): nothing to answer
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _ignore_error(request: object, client_address: object) -> None:
    """A client that went away mid-request is expected here, not an error to print."""


class Unaccepting:
    """A listening socket whose one-connection queue is kept full: every new connect hangs.

    Linux drops a SYN while the accept queue is full, so the client retries
    until its own connect timeout. Nothing ever arrives (`count()` is 0).
    """

    def __enter__(self) -> Unaccepting:
        self._listener = socket.socket()
        self._listener.bind((LISTEN_ADDRESS, 0))
        self._listener.listen(0)
        self._fillers: list[socket.socket] = []
        address = self._listener.getsockname()
        while True:  # fill the queue: the first connect that does not complete in time
            filler = socket.socket()
            filler.settimeout(0.5)
            self._fillers.append(filler)
            try:
                filler.connect(address)
            except TimeoutError:
                break
        return self

    def __exit__(self, *exc_info: object) -> None:
        for filler in self._fillers:
            filler.close()
        self._listener.close()

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()
        return f"http://{host}:{port}"

    def count(self) -> int:
        return 0
