"""Print each payload to stderr instead of sending it (`<NAME>_TELEMETRY_DEBUG=1`)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from .base import Batch

if TYPE_CHECKING:
    from .._records import JSONDocument


class DebugBackend:
    """Shows exactly what would be sent, and sends nothing."""

    def __init__(self, label: str = "telemetry") -> None:
        self.label = label

    def _show(self, document: JSONDocument) -> None:
        text = json.dumps(document, indent=2)
        sys.stderr.write(f"[{self.label}] would send:\n{text}\n")

    def send(self, batch: Batch, *, timeout: float) -> None:
        self._show(batch.to_json())

    def request_deletion(self, install_id: str, *, timeout: float) -> None:
        self._show({"deletion_requested_for": install_id})
