"""A real PostHog-compatible capture endpoint on 127.0.0.1 whose answers a test scripts.

    with PostHogReceiver() as posthog:
        posthog.script(Answer(503, retry_after="0"), Answer(503))   # then 200s
        ... Forwarder(..., host=posthog.url) ...
        requests = posthog.wait_for(3)

It answers `POST /batch/` as PostHog does (200 `{"status": 1}`) unless a
scripted answer is due; `hang` reads the request and never answers.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int = 200
    retry_after: str | None = None
    hang: bool = False


@dataclass
class Captured:
    path: str
    headers: dict[str, str]
    body: bytes
    answer: Answer
    arrived: float = 0.0  # time.monotonic() when the request was read

    def json(self) -> Any:
        content = self.body
        if self.headers.get("content-encoding", "").lower() == "gzip":
            content = gzip.decompress(content)
        return json.loads(content)


@dataclass
class PostHogReceiver:
    requests: list[Captured] = field(default_factory=list)
    scripted: list[Answer] = field(default_factory=list)
    hang_all: bool = False
    _condition: threading.Condition = field(default_factory=threading.Condition)
    _release: threading.Event = field(default_factory=threading.Event)

    def script(self, *answers: Answer) -> None:
        with self._condition:
            self.scripted.extend(answers)

    def __enter__(self) -> PostHogReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._condition:
                    if receiver.hang_all:
                        answer = Answer(hang=True)
                    else:
                        answer = receiver.scripted.pop(0) if receiver.scripted else Answer()
                    receiver.requests.append(
                        Captured(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            answer,
                            time.monotonic(),
                        )
                    )
                    receiver._condition.notify_all()
                if answer.hang:
                    receiver._release.wait(timeout=60)
                    return
                reply = b'{"status": 1}'
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                if answer.retry_after is not None:
                    self.send_header("Retry-After", answer.retry_after)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Captured]:
        """Block until `count` requests have arrived (the real condition, no sleeps)."""
        with self._condition:
            if not self._condition.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise TimeoutError(f"{len(self.requests)} of {count} requests arrived")
            return list(self.requests)
