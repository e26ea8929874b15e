"""Print each payload to stderr instead of sending it (`<NAME>_TELEMETRY_DEBUG=1`)."""

from __future__ import annotations

import json
import sys

from .base import Batch


class DebugBackend:
    """Shows exactly what would be sent, and sends nothing."""

    def __init__(self, label: str = "telemetry") -> None:
        self.label = label

    def _show(self, document: dict[str, object]) -> None:
        text = json.dumps(document, indent=2)
        sys.stderr.write(f"[{self.label}] would send:\n{text}\n")

    def send(self, batch: Batch, *, timeout: float) -> None:
        self._show(batch.to_json())

    def request_deletion(self, install_id: str, *, timeout: float) -> None:
        self._show({"deletion_requested_for": install_id})
