"""The library's own JSON format over HTTPS: what `Telemetry(endpoint=...)` sends.

    POST {endpoint}/batches      one completed day (format "typer-telemetry-batch", version 2)
    POST {endpoint}/deletions    a deletion request (format "typer-telemetry-deletion", version 1)

Both carry an `Idempotency-Key` header; a batch's key is also in its body.
The receiver acknowledges with a 2xx status and the JSON body
`{"accepted": true}`; any other reply counts as not delivered, so the data
stays pending (a proxy's error page with status 200 must not lose data).
docs/backends.md documents the format, and what changed from version 1 (every
record names its `event`; a command's `command` and `flags` moved under `properties`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ._http import check_endpoint, gzip_if_large, post
from .base import Batch, DeliveryError

BATCH_FORMAT = "typer-telemetry-batch"
DELETION_FORMAT = "typer-telemetry-deletion"
BATCH_FORMAT_VERSION = 2
DELETION_FORMAT_VERSION = 1


class HTTPBackend:
    """Send batches as JSON to a receiver that speaks the library's documented format."""

    def __init__(self, endpoint: str, headers: Mapping[str, str] | None = None) -> None:
        self.endpoint = check_endpoint(endpoint).rstrip("/")
        self.headers = dict(headers or {})

    def _headers(self, idempotency_key: str) -> dict[str, str]:
        return {
            **self.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
        }

    def send(self, batch: Batch, *, timeout: float) -> None:
        document = {"format": BATCH_FORMAT, "version": BATCH_FORMAT_VERSION, **batch.to_json()}
        headers = self._headers(batch.idempotency_key)
        body = gzip_if_large(json.dumps(document, separators=(",", ":")).encode(), headers)
        _check_acknowledged(post(f"{self.endpoint}/batches", body, headers, timeout=timeout))

    def request_deletion(self, install_id: str, *, timeout: float) -> None:
        document = {
            "format": DELETION_FORMAT,
            "version": DELETION_FORMAT_VERSION,
            "install_id": install_id,
        }
        body = json.dumps(document, separators=(",", ":")).encode()
        reply = post(
            f"{self.endpoint}/deletions",
            body,
            self._headers(f"delete-{install_id}"),
            timeout=timeout,
        )
        _check_acknowledged(reply)


def _check_acknowledged(reply: bytes) -> None:
    try:
        document = json.loads(reply)
    except ValueError:
        raise DeliveryError("the receiver's reply is not JSON") from None
    if not isinstance(document, dict) or document.get("accepted") is not True:
        raise DeliveryError("the receiver did not acknowledge the request")
