"""Misbehaving HTTP servers on 127.0.0.1, written on raw sockets (no HTTP mocking).

    with RawServer(behaviour) as server:
        ... POST to server.url("/v1") ...
        server.wait_for(1)

Each connection is served by `behaviour(connection, request)` in its own
daemon thread, after the request (headers and body) has been read. The
behaviours below cover what tests/receiver.py cannot: a reset mid-body, a
slow drip, a reply of 100 MB, redirects, raw status lines, TLS.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# A self-signed certificate for 127.0.0.1 and localhost (EC P-256, valid until
# 2126), for a TLS server that no client trusts. Generated once with openssl;
# kept here so the tests need no openssl and no network.
SELF_SIGNED_CERT = """-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUNZ3k9KE3U9rOwspAs4pmIU48yGYwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyNDIzMTU1NVoYDzIxMjYxMDMx
MjMxNTU1WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASvE5yOIktNfpvYTnNHlqSv6dYmeahyfGs3Zn2Hd9zrM8dCAh2yaHL4
xxVs2SOsaPGf7tjHnuhykNO657MC76l0o28wbTAdBgNVHQ4EFgQUpR1arLGIdY8J
DYehl8FyawysZwgwHwYDVR0jBBgwFoAUpR1arLGIdY8JDYehl8FyawysZwgwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwCgYIKoZI
zj0EAwIDSAAwRQIhAKoS+WeKvKgmWldFDbDjKWiEegh90yiVPsSS4G5obh1DAiBv
h1ZdT4kkQCEkLNLzHg8udo30snq9zhDCVae95+WZWA==
-----END CERTIFICATE-----
"""
SELF_SIGNED_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgGBmkuRvsw5BRHN+4
uC3D3uK4FogLCBEQfejoffl77hyhRANCAASvE5yOIktNfpvYTnNHlqSv6dYmeahy
fGs3Zn2Hd9zrM8dCAh2yaHL4xxVs2SOsaPGf7tjHnuhykNO657MC76l0
-----END PRIVATE KEY-----
"""


@dataclass
class RawRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Behaviour = Callable[[socket.socket, RawRequest, "RawServer"], None]


@dataclass
class RawServer:
    behaviour: Behaviour
    tls_folder: Path | None = None  # serve TLS with the self-signed certificate
    requests: list[RawRequest] = field(default_factory=list)
    handshake_failures: int = 0
    connections: int = 0
    bytes_sent: int = 0
    stopped: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)  # a behaviour returned
    _condition: threading.Condition = field(default_factory=threading.Condition)

    def __enter__(self) -> RawServer:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.context: ssl.SSLContext | None = None
        if self.tls_folder is not None:
            cert, key = self.tls_folder / "cert.pem", self.tls_folder / "key.pem"
            cert.write_text(SELF_SIGNED_CERT)
            key.write_text(SELF_SIGNED_KEY)
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(cert, key)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[RawRequest]:
        with self._condition:
            if not self._condition.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise TimeoutError(f"{len(self.requests)} of {count} requests arrived")
            return list(self.requests)

    def wait_connections(self, count: int, timeout: float = 30.0) -> None:
        with self._condition:
            if not self._condition.wait_for(lambda: self.connections >= count, timeout=timeout):
                raise TimeoutError(f"{self.connections} of {count} connections arrived")

    def wait_handshake_failures(self, count: int, timeout: float = 30.0) -> None:
        with self._condition:
            if not self._condition.wait_for(
                lambda: self.handshake_failures >= count, timeout=timeout
            ):
                raise TimeoutError(f"{self.handshake_failures} of {count} handshakes failed")

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            if self.context is not None:
                try:
                    connection = self.context.wrap_socket(connection, server_side=True)
                except (ssl.SSLError, OSError):
                    with self._condition:
                        self.handshake_failures += 1
                        self._condition.notify_all()
                    return
            with self._condition:
                self.connections += 1
                self._condition.notify_all()
            request = read_request(connection)
            if request is None:
                # Not HTTP (a TLS hello to a plain server): answer as real servers do.
                server_error = head("400 Bad Request", {"Content-Length": "0"})
                connection.sendall(server_error)
                return
            with self._condition:
                self.requests.append(request)
                self._condition.notify_all()
            self.behaviour(connection, request, self)
        except OSError:
            pass  # the client went away: that is what most of these tests provoke
        finally:
            self.finished.set()
            with contextlib.suppress(OSError):
                connection.close()

    def send(self, connection: socket.socket, data: bytes) -> None:
        connection.sendall(data)
        with self._condition:
            self.bytes_sent += len(data)


def read_request(connection: socket.socket) -> RawRequest | None:
    connection.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk or not (data or chunk[:1].isalpha()):
            return None  # closed, or not an HTTP request (a TLS hello starts with 0x16)
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        body += chunk
    return RawRequest(method, path, headers, body)


def head(status: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [
        f"HTTP/1.1 {status}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def replying(status: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Behaviour:
    """Answer with this status line, headers and body, then close."""

    def behaviour(connection: socket.socket, request: RawRequest, server: RawServer) -> None:
        server.send(
            connection,
            head(status, {"Content-Length": str(len(body)), **(headers or {})}) + body,
        )

    return behaviour


def reset_mid_body(connection: socket.socket, request: RawRequest, server: RawServer) -> None:
    """Headers promising 200 bytes, 100 of them, then a TCP reset (SO_LINGER 0)."""
    body = b'{"accepted": true' + b" " * 83
    server.send(connection, head("200 OK", {"Content-Length": "200"}) + body)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def dripping(prefix: bytes = b"", interval: float = 0.5) -> Behaviour:
    """Send `prefix` at once, then one byte every `interval` seconds until the client leaves."""

    def behaviour(connection: socket.socket, request: RawRequest, server: RawServer) -> None:
        if prefix:
            server.send(connection, prefix)
        # Waiting between bytes is the fault itself; the stop event ends it with the test.
        while not server.stopped.wait(interval):
            server.send(connection, b" ")

    return behaviour


def huge(total: int, chunk: int = 1 << 16) -> Behaviour:
    """A 200 reply announcing `total` bytes and streaming them until done or the client leaves."""

    def behaviour(connection: socket.socket, request: RawRequest, server: RawServer) -> None:
        server.send(connection, head("200 OK", {"Content-Length": str(total)}))
        block = b"{" * chunk
        sent = 0
        while sent < total and not server.stopped.is_set():
            server.send(connection, block)
            sent += chunk

    return behaviour
