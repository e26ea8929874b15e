"""One careful HTTP POST, shared by the HTTP-based back ends.

httpx is imported here, and this module only when something is sent: never
on a short invocation.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._endpoint import check_endpoint
from .base import DeliveryError

__all__ = ["check_endpoint", "gzip_if_large", "post"]

# Bodies at least this large are gzipped when the receiver is known to accept it.
GZIP_FROM_BYTES = 1024
MAX_RESPONSE_BYTES = 64 * 1024


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
    to MAX_RESPONSE_BYTES; anything longer is refused unread.
    """
    import time

    import httpx  # only when sending

    deadline = time.monotonic() + timeout
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream("POST", url, content=body, headers=dict(headers)) as response,
        ):
            received = bytearray()
            for chunk in response.iter_bytes():
                received += chunk
                if len(received) > MAX_RESPONSE_BYTES:
                    raise DeliveryError("the reply is larger than expected")
                if time.monotonic() > deadline:
                    raise DeliveryError("the reply took longer than the timeout")
            if not 200 <= response.status_code < 300:
                raise DeliveryError(f"the receiver answered {response.status_code}")
            return bytes(received)
    except httpx.HTTPError as error:
        raise DeliveryError(f"{type(error).__name__}: {error}") from None
