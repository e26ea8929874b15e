"""Ending a send under way before the interpreter exits, so that exiting never crashes.

A long-running invocation sends from a daemon thread that the tool never
waits for (`_hook.Trigger`). A daemon thread that wakes while the
interpreter is being finalized (a reply arriving, a certificate bundle
loaded, a lock wait polled) can crash the whole process: CPython has known
races there (segfaults in `PyEval_RestoreThread`, pthread_exit unwinding),
and a tool that dies of SIGSEGV after printing its output has changed its
exit code. So once a thread starts sending, `at_exit` is registered with
`atexit` (which runs before finalization) and, at exit:

1. no further batch or deletion request starts (`exiting`), and a sending
   thread's lock waits give up (`_files.abandon_lock_waits`);
2. every network wait that can be cut is cut: the sockets of exchanges under
   way are shut down (`cut_on_exit`). A batch cut off stays noted in flight
   and goes out again, under its idempotency key, on a later run;
3. the sending threads are waited for, EXIT_WAIT_SECONDS at most, so that
   none is left running Python code. A thread blocked in name resolution or
   in connecting (`uncuttable`), which nothing can cut, is not waited for: it
   wakes only at its own timeout, long after the process has ended.

The time this adds to an exit is measured with the other exit delays
(docs/performance.md, section 5).
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from ._files import abandon_lock_waits

# The longest an exit waits for a sending thread that cutting did not end at
# once: loading httpx and a certificate bundle, a custom back end's call.
EXIT_WAIT_SECONDS = 0.1

exiting = False
_changed = threading.Condition()
_senders: dict[int, threading.Thread] = {}
_uncuttable: set[int] = set()
_cuts: dict[int, Callable[[], None]] = {}
_registered = False


def start_sending() -> bool:
    """Note the calling thread as sending, to be ended before exit; False if exit has begun."""
    global _registered
    with _changed:
        if exiting:
            return False
        if not _registered:
            atexit.register(at_exit)
            _registered = True
        thread = threading.current_thread()
        _senders[threading.get_ident()] = thread
    return True


def stop_sending() -> None:
    """The calling thread's send is over (it returns next)."""
    with _changed:
        _senders.pop(threading.get_ident(), None)
        _uncuttable.discard(threading.get_ident())
        _changed.notify_all()


@contextlib.contextmanager
def cut_on_exit(cut: Callable[[], None]) -> Iterator[None]:
    """Call `cut` if the interpreter exits during the block (at once, if it already does)."""
    token = id(cut)
    with _changed:
        _cuts[token] = cut
        now = exiting
    try:
        if now:
            cut()
        yield
    finally:
        with _changed:
            _cuts.pop(token, None)


def uncuttable(blocked: bool) -> None:
    """Note that the calling thread enters (True) or leaves a wait nothing can cut."""
    with _changed:
        if blocked:
            _uncuttable.add(threading.get_ident())
        else:
            _uncuttable.discard(threading.get_ident())
        _changed.notify_all()


def at_exit() -> None:
    """End the sends under way (see the module docstring); never raises."""
    global exiting
    with _changed:
        exiting = True
        cuts = list(_cuts.values())
        # Alive only: in a child forked during a send, the parent's thread is not.
        senders = {ident: thread for ident, thread in _senders.items() if thread.is_alive()}
    abandon_lock_waits(senders)
    for cut in cuts:
        with contextlib.suppress(Exception):
            cut()
    deadline = time.monotonic() + EXIT_WAIT_SECONDS

    def settled() -> bool:
        return all(
            ident not in _senders or ident in _uncuttable or not thread.is_alive()
            for ident, thread in senders.items()
        )

    with _changed:
        _changed.wait_for(settled, timeout=EXIT_WAIT_SECONDS)
        waited_for = [thread for ident, thread in senders.items() if ident not in _uncuttable]
    for thread in waited_for:  # past `stop_sending`: its last steps, and the thread's end
        thread.join(max(0.0, deadline - time.monotonic()))
