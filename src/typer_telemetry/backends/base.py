"""The back-end interface: send one completed day, request deletion of an install's data.

A back end is any object with these two methods. It raises `DeliveryError`
when the receiver did not accept the request; the batch then stays pending
and goes out on a later long-running run. Back ends never retry on their
own and never sleep: the sender decides when to try again.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .._records import Batch, Envelope, Record

__all__ = ["Backend", "Batch", "DeliveryError", "Envelope", "Record"]


class DeliveryError(Exception):
    """The receiver did not accept the request (network error, timeout, refusal, garbage).

    `retry_after` is how many seconds the receiver asked to be left alone
    (a 429 or 503 reply's `Retry-After`); the sender then sends nothing to it
    before that time.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@runtime_checkable
class Backend(Protocol):
    """Where telemetry goes."""

    def send(self, batch: Batch, *, timeout: float) -> None:
        """Deliver the batch, or raise DeliveryError. Must give up within `timeout` seconds."""
        ...

    def request_deletion(self, install_id: str, *, timeout: float) -> None:
        """Ask the receiver to delete everything sent under `install_id`, or raise DeliveryError."""
        ...
