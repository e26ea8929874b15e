"""Append batches as JSON lines to a local file: for air-gapped tools and for debugging."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .._files import PRIVATE_FILE_MODE
from .base import Batch, DeliveryError


class FileBackend:
    """Each batch and each deletion request becomes one JSON line appended to `path`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _append(self, document: dict[str, object]) -> None:
        line = json.dumps(document, separators=(",", ":")).encode() + b"\n"
        try:
            descriptor = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE
            )
            try:
                os.write(descriptor, line)
            finally:
                os.close(descriptor)
        except OSError as error:
            raise DeliveryError(f"cannot append to {self.path}: {error}") from None

    def send(self, batch: Batch, *, timeout: float) -> None:
        self._append(
            {
                "kind": "batch",
                "idempotency_key": batch.idempotency_key,
                "day": batch.day,
                "envelope": dict(batch.envelope),
                "records": [dict(record) for record in batch.records],
            }
        )

    def request_deletion(self, install_id: str, *, timeout: float) -> None:
        self._append({"kind": "deletion", "install_id": install_id})
