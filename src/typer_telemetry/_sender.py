"""When completed days are sent: only from a long-running invocation, never at exit.

Only a *long-running* invocation sends: one that has run for
`long_running_after` seconds, one whose command is marked
`@telemetry.long_running`, or an explicit `telemetry.flush()`. The hook
starts a `Trigger` per invocation that could send: a daemon thread that
sleeps until the command has run long enough (or is marked), and gives up as
soon as the command ends. Short commands therefore never import httpx, never
open a socket and never wait. The process never waits for the thread either:
it is a daemon, and nothing is registered to run at exit.

Hot path: standard library only.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ._consent import decided_by_environment

if TYPE_CHECKING:
    from ._telemetry import Telemetry

LONG_RUNNING_ATTRIBUTE = "__typer_telemetry_long_running__"
SEND_TIMEOUT_SECONDS = 30.0


class Trigger:
    """A daemon thread that sends once the invocation has run long enough.

    `now()` starts sending at once (a command marked long-running);
    `cancel()` (the invocation ended) makes a waiting thread give up.
    A send already under way is left to finish on its own: the process
    does not wait for it.
    """

    def __init__(self, telemetry: Telemetry, delay: float) -> None:
        self._telemetry = telemetry
        self._delay = delay
        self._wake = threading.Event()
        self._cancelled = False
        self._thread = threading.Thread(
            target=self._run, name="typer-telemetry-sender", daemon=True
        )
        self._thread.start()

    def now(self) -> None:
        self._wake.set()

    def cancel(self) -> None:
        self._cancelled = True
        self._wake.set()

    def _run(self) -> None:
        try:
            self._wake.wait(self._delay)
            if self._cancelled:
                return
            self._telemetry.send_now(timeout=SEND_TIMEOUT_SECONDS)
        except Exception as problem:  # a daemon thread's error must never surface
            self._telemetry.debug(f"sending failed: {problem!r}")


def sending_possible(environ: Mapping[str, str], prefix: str, has_destination: bool) -> bool:
    """Cheap check on the hot path: could this invocation send at all?"""
    if not has_destination:
        return False
    by_environment = decided_by_environment(prefix, environ)
    return by_environment is None or by_environment.enabled
