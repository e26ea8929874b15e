"""One careful HTTP POST, shared by the HTTP-based back ends.

httpx is imported here, and this module only when something is sent: never
on a short invocation.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._checks import check_endpoint
from .base import DeliveryError

__all__ = ["check_endpoint", "gzip_if_large", "post", "retry_after_seconds"]

# Bodies at least this large are gzipped when the receiver is known to accept it.
GZIP_FROM_BYTES = 1024
MAX_RESPONSE_BYTES = 64 * 1024
# The longest wait a receiver's Retry-After can impose; anything longer is cut to this.
MAX_RETRY_AFTER_SECONDS = 24 * 3600


def gzip_if_large(body: bytes, headers: dict[str, str]) -> bytes:
    import gzip

    if len(body) < GZIP_FROM_BYTES:
        return body
    headers["Content-Encoding"] = "gzip"
    return gzip.compress(body, mtime=0)


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
) -> bytes:
    """POST `body`; return the response body of a 2xx reply, else raise DeliveryError.

    Redirects are not followed (a receiver that moved must be reconfigured,
    and data never follows a redirect to another host). The reply is read up
    to MAX_RESPONSE_BYTES; anything longer is refused unread. A reply that is
    not 2xx is refused without reading its body; a 429 or 503 carries its
    `Retry-After` in the error. The whole exchange ends by `timeout`: httpx's
    timeouts bound each read, not their sum, so a server sending one byte at
    a time (even of its headers) is cut off by shutting its socket down.
    """
    import socket
    import threading
    import time

    import httpx  # only when sending

    sockets: list[socket.socket] = []
    expired = threading.Event()

    def trace(event: str, info: Mapping[str, object]) -> None:
        # httpx's public trace hook hands over the connected stream.
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            found = getattr(stream, "get_extra_info", lambda _name: None)("socket")
            if isinstance(found, socket.socket):
                sockets.append(found)
                if expired.is_set():
                    _shut(found)

    def expire() -> None:
        expired.set()
        for connected in sockets:
            _shut(connected)

    watchdog = threading.Timer(timeout, expire)
    watchdog.daemon = True
    deadline = time.monotonic() + timeout
    # Replies are never compressed: a small gzip body must not unpack to gigabytes.
    request_headers = {**headers, "Accept-Encoding": "identity"}
    try:
        watchdog.start()
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream(
                "POST", url, content=body, headers=request_headers, extensions={"trace": trace}
            ) as response,
        ):
            if not 200 <= response.status_code < 300:
                raise DeliveryError(
                    f"the receiver answered {response.status_code}",
                    retry_after=retry_after_seconds(response.headers)
                    if response.status_code in (429, 503)
                    else None,
                )
            received = bytearray()
            for chunk in response.iter_raw():
                received += chunk
                if len(received) > MAX_RESPONSE_BYTES:
                    raise DeliveryError("the reply is larger than expected")
                if time.monotonic() > deadline:
                    raise DeliveryError("the reply took longer than the timeout")
            return bytes(received)
    except httpx.HTTPError as error:
        if expired.is_set():
            raise DeliveryError("the reply took longer than the timeout") from None
        raise DeliveryError(f"{type(error).__name__}: {error}") from None
    finally:
        watchdog.cancel()


def _shut(connected: object) -> None:
    import contextlib
    import socket

    with contextlib.suppress(OSError):  # already closed
        connected.shutdown(socket.SHUT_RDWR)  # type: ignore[attr-defined]


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait a `Retry-After` header asks for, in seconds, capped at a day; None if absent.

    Both forms are understood: delay-seconds, and an HTTP-date, which is
    measured against the reply's own `Date` when it has one (so that a skewed
    clock on either side does not matter), else against this machine's clock.
    """
    import re
    import time
    from datetime import timezone
    from email.utils import parsedate_to_datetime

    value = headers.get("retry-after", "").strip()
    if re.fullmatch(r"[0-9]+", value):
        return float(
            MAX_RETRY_AFTER_SECONDS if len(value) > 9 else min(int(value), MAX_RETRY_AFTER_SECONDS)
        )

    def moment(text: str) -> float | None:
        try:
            parsed = parsedate_to_datetime(text)
            if parsed.tzinfo is None:  # "-0000": HTTP dates are GMT, never local time
                parsed = parsed.replace(tzinfo=timezone.utc)
            return parsed.timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None

    when = moment(value)
    if when is None:
        return None
    reference = moment(headers.get("date", "").strip())
    seconds = when - (reference if reference is not None else time.time())
    return min(max(seconds, 0.0), float(MAX_RETRY_AFTER_SECONDS))
