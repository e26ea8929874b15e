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

import _thread
import contextlib
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

    The thread is a bare `_thread` one: nothing here needs what
    `threading.Thread` adds (joining, names, excepthook), and a tool that has
    not imported `threading` is spared its import (about 1 ms) on every
    invocation that could send. Like a daemon thread, nothing waits for it
    at exit.
    """

    def __init__(self, telemetry: Telemetry, delay: float) -> None:
        self._telemetry = telemetry
        self._delay = delay
        self._cancelled = False
        # Held until `now()` or `cancel()` releases it; the thread waits on it.
        self._wake = _thread.allocate_lock()
        self._wake.acquire()
        _thread.start_new_thread(self._run, ())

    def now(self) -> None:
        with contextlib.suppress(RuntimeError):  # already released: once is enough
            self._wake.release()

    def cancel(self) -> None:
        self._cancelled = True
        self.now()

    def _run(self) -> None:
        try:
            self._wake.acquire(True, min(self._delay, _thread.TIMEOUT_MAX))
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
