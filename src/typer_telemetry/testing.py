"""The pytest plugin: a tool's test suite records nothing, unless a test asks to see it.

Installed with the library as the `typer_telemetry` pytest plugin (a
`pytest11` entry point), so a tool author's tests get it without a line of
configuration:

- **The session's sandbox.** When the session starts, unless
  `TYPER_TELEMETRY_SANDBOX` is already set (an outer session, or the xdist
  controller that started this worker), the plugin makes a private
  temporary folder and sets the variable to it in `os.environ`. Every tool
  that uses the library is then off (the first row of TELEMETRY.md's
  consent table) and keeps its files in that folder: `CliRunner` tests and
  every subprocess the tests start record nothing, print no notice, open
  no socket and leave the real home alone. The folder and the variable go
  when the session ends, if this process made them. The ini option
  `typer_telemetry_sandbox = false` or `-p no:typer_telemetry` turns it off.
- **`telemetry_capture`**, a fixture for the tests that do want to see
  their tool's telemetry: an isolated home with telemetry on, the tool's
  back end swapped for a `MockBackend`, the pending records as typed
  `Record`s, what a completed day would send, and an environment for
  subprocesses whose sends land in the same mock back end.
- **`assert_telemetry_md_current`**, which fails with a diff when the
  tool's TELEMETRY.md is not what the library would generate now.

This module is loaded by every test session of every project that installs
the library: it imports pytest and a few small modules of the standard
library at the top, and everything else inside the code that needs it.
docs/testing.md is the guide.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._consent import CI_VARIABLES, SANDBOX_VARIABLE

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

    from ._delivery import SendReport
    from ._records import Batch, Record
    from ._settings import Settings
    from ._telemetry import Telemetry
    from .backends.mock import MockBackend

__all__ = ["SANDBOX_VARIABLE", "TelemetryCapture", "assert_telemetry_md_current"]

# The ini option that turns the session's sandbox off (the fixture stays available).
SANDBOX_OPTION = "typer_telemetry_sandbox"
SECONDS_PER_DAY = 86400.0
# The receiver's wait for a request body it was promised (a sender that hangs up).
RECEIVER_TIMEOUT_SECONDS = 10.0

_made_sandbox = pytest.StashKey[str]()


# -- the session's sandbox -------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        SANDBOX_OPTION,
        type="bool",
        default=True,
        help="typer-telemetry: keep every tool's telemetry off and out of the real home"
        " for the whole session (default: true)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Set the sandbox for the session, unless one is set or the ini option says no."""
    if not config.getini(SANDBOX_OPTION):
        return
    if os.environ.get(SANDBOX_VARIABLE, "").strip():
        return  # an outer session's, or the xdist controller's: its workers share it
    import tempfile

    folder = tempfile.mkdtemp(prefix="typer-telemetry-sandbox-")  # 0700, ours
    os.environ[SANDBOX_VARIABLE] = folder
    config.stash[_made_sandbox] = folder


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the sandbox folder and the variable, if this process made them."""
    folder = config.stash.get(_made_sandbox, None)
    if folder is None:
        return
    del config.stash[_made_sandbox]
    if os.environ.get(SANDBOX_VARIABLE) == folder:
        del os.environ[SANDBOX_VARIABLE]
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


# -- the fixture ---------------------------------------------------------------------


class TelemetryCapture:
    """One tool's telemetry in one test: on, in an isolated home, sent into `backend`.

    Made by the `telemetry_capture` fixture, undone when the test ends: the
    tool's settings get their back end and clock back, and the receiver for
    subprocesses (if one was started) stops.
    """

    __slots__ = ("_days_moved", "_original", "_receiver", "backend", "home", "report", "telemetry")

    def __init__(self, telemetry: Telemetry, home: Path, *, show_notice: bool = False) -> None:
        from .backends.mock import MockBackend

        self.telemetry = telemetry
        self.home = home
        self.backend: MockBackend = MockBackend()
        # What the last `send_completed_days` achieved (`error`, `skipped`).
        self.report: SendReport | None = None
        self._days_moved = 0
        self._receiver: ThreadingHTTPServer | None = None
        self._original: Settings = telemetry.settings
        original_clock = self._original.clock

        def clock() -> float:
            return original_clock() + self._days_moved * SECONDS_PER_DAY

        telemetry.settings = telemetry.settings.replace(backend=self.backend, clock=clock)
        self._turn_on(show_notice)

    def _turn_on(self, show_notice: bool) -> None:
        """Store the choice "on", as `mytool telemetry enable` would; the notice as asked."""
        from ._config import Config, update_config, with_identity

        settings = self.telemetry.settings

        def change(current: Config) -> Config:
            chosen = current.replace(choice="enabled")
            return chosen if show_notice else with_identity(chosen)

        update_config(settings.paths(), settings.name, change, command=settings.group_command())

    # -- what was recorded ---------------------------------------------------------

    def records(self, event: str | None = None) -> list[Record]:
        """The records waiting to be sent (today's included), only `event`'s if given.

        Read from the isolated home's store, so what subprocesses run with
        `environment()` recorded is here too.
        """
        from ._store import RollupStore

        settings = self.telemetry.settings
        store = RollupStore(settings.paths().store_dir, settings.debug)
        return [
            record
            for record in store.pending(today=settings.today())
            if event is None or record.event == event
        ]

    def dropped(self) -> dict[str, int]:
        """Events that could not be recorded (a value the declaration refuses), per day."""
        from ._store import RollupStore

        settings = self.telemetry.settings
        return RollupStore(settings.paths().store_dir, settings.debug).dropped()

    # -- what is sent --------------------------------------------------------------

    def send_completed_days(self, timeout: float = 10.0) -> list[Batch]:
        """Move the tool's clock a day on and send, as a long-running run would; the new batches.

        The day that was today is then completed: its records go to the mock
        back end as one batch, through the real sender (idempotency keys,
        bookkeeping). The clock stays moved, as if the day had ended: later
        records fall on the next day. `report` says what the send achieved
        (`skipped` while telemetry is off, `error` when the back end refused).
        """
        from ._delivery import flush

        self._days_moved += 1
        before = len(self.backend.batches)
        self.report = flush(self.telemetry.settings, timeout=timeout)
        return list(self.backend.batches[before:])

    def wait_for_batches(self, count: int = 1, timeout: float = 30.0) -> tuple[Batch, ...]:
        """Wait until `count` batches arrived and their sender saw them accepted; all batches.

        For a long-running subprocess, whose send runs on a thread of its
        own: a process stopped before the acceptance reached it leaves the
        batch in flight, to be sent again (docs/design.md, "Sending").
        Raises TimeoutError when that does not happen within `timeout` seconds.
        """
        import time

        from ._store import RollupStore

        deadline = time.monotonic() + timeout
        batches = self.backend.wait_for(count, timeout)
        settings = self.telemetry.settings
        store = RollupStore(settings.paths().store_dir, settings.debug)
        # The sender notes a batch in flight before sending it and clears the
        # note when the acceptance arrives: the store is the only shared state.
        while store.in_flight() is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sender did not see its batch accepted in {timeout} s")
            time.sleep(0.01)
        return batches

    @property
    def batches(self) -> tuple[Batch, ...]:
        """Every batch the mock back end accepted, from this process or a subprocess."""
        return self.backend.batches

    def sent_records(self, event: str | None = None) -> list[Record]:
        """The records of every accepted batch, only `event`'s if given."""
        return self.backend.records(event)

    # -- subprocesses ----------------------------------------------------------------

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for `subprocess.run` of the tool: this home, telemetry on.

        `<NAME>_TELEMETRY_ENDPOINT` points at a receiver on 127.0.0.1 (started
        on first use) that hands each batch to the mock back end, so a
        long-running run's real send lands in `batches`.
        """
        environment = dict(os.environ)
        environment[f"{self.telemetry.settings.env_prefix}_TELEMETRY_ENDPOINT"] = self.endpoint
        environment.update(extra or {})
        return environment

    @property
    def endpoint(self) -> str:
        """The loopback receiver's URL (starting it if needed)."""
        if self._receiver is None:
            self._receiver = _start_receiver(self.backend)
        host, port = self._receiver.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        """Give the tool its back end and clock back; stop the receiver."""
        if self._receiver is not None:
            self._receiver.shutdown()
            self._receiver.server_close()
            self._receiver = None
        self.telemetry.settings = self.telemetry.settings.replace(
            backend=self._original.backend, clock=self._original.clock
        )

    def __repr__(self) -> str:
        return f"TelemetryCapture({self.telemetry.settings.name!r}, home={str(self.home)!r})"


def _isolate(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """This process's environment as a fresh user's: own home, no sandbox, opt-out or CI."""
    for name in list(os.environ):
        if name in (SANDBOX_VARIABLE, "DO_NOT_TRACK") or name in CI_VARIABLES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    for variable, folder in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CACHE_HOME", ".cache"),
    ):
        monkeypatch.setenv(variable, str(home / folder))
    if sys.platform == "win32":  # pragma: no cover - where platformdirs reads these
        monkeypatch.setenv("USERPROFILE", str(home))
        monkeypatch.setenv("APPDATA", str(home / "AppData" / "Roaming"))
        monkeypatch.setenv("LOCALAPPDATA", str(home / "AppData" / "Local"))


def _forget_tool_variables(monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    """Drop the tool's own switch, opt-out, endpoint and debug variables."""
    for name in list(os.environ):
        if name.startswith(f"{prefix}_TELEMETRY"):
            monkeypatch.delenv(name)


@pytest.fixture
def telemetry_capture(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., TelemetryCapture]]:
    """`telemetry_capture(telemetry, show_notice=False)`: see the tool's telemetry in this test.

    Every capture of one test shares one isolated home; all is undone at teardown.
    """
    captures: list[TelemetryCapture] = []
    homes: list[Path] = []

    def capture(telemetry: Telemetry, *, show_notice: bool = False) -> TelemetryCapture:
        if not homes:
            homes.append(tmp_path_factory.mktemp("telemetry-home"))
            _isolate(monkeypatch, homes[0])
        _forget_tool_variables(monkeypatch, telemetry.settings.env_prefix)
        made = TelemetryCapture(telemetry, homes[0], show_notice=show_notice)
        captures.append(made)
        return made

    yield capture
    for made in reversed(captures):
        made.close()


# -- the loopback receiver -------------------------------------------------------------


def _start_receiver(backend: MockBackend) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 that speaks the library's format into `backend`.

    It answers as a receiver does (docs/backends.md): `{"accepted": true}`
    for a batch or a deletion the back end kept, 503 (with `Retry-After`
    when given) for one its handler refused, 400 for anything it cannot read.
    """
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from .backends.base import DeliveryError

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = RECEIVER_TIMEOUT_SECONDS

        def do_POST(self) -> None:
            status, headers = 200, {}
            try:
                document = _request_document(
                    self.rfile.read(int(self.headers.get("Content-Length") or 0)),
                    self.headers.get("Content-Encoding", ""),
                )
                path = self.path.rstrip("/")
                if path.endswith("/batches"):
                    backend.send(_batch_from_json(document), timeout=RECEIVER_TIMEOUT_SECONDS)
                elif path.endswith("/deletions"):
                    install_id = document.get("install_id")
                    if not isinstance(install_id, str):
                        raise ValueError("a deletion request without an install id")
                    backend.request_deletion(install_id, timeout=RECEIVER_TIMEOUT_SECONDS)
                else:
                    raise ValueError(f"no such path: {self.path}")
                body = b'{"accepted": true}'
            except DeliveryError as refusal:
                status, body = 503, b'{"accepted": false}'
                if refusal.retry_after is not None:
                    headers["Retry-After"] = str(max(0, round(refusal.retry_after)))
            except Exception as error:
                status, body = 400, repr(error).encode("utf-8", "replace")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a test's output is the test's

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a sender that hangs up (its process ended) is no error of the test's

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="telemetry-capture", daemon=True).start()
    return server


def _request_document(body: bytes, encoding: str) -> dict[str, Any]:
    import json

    if encoding.strip().lower() == "gzip":
        import gzip

        body = gzip.decompress(body)
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("the request body is not a JSON object")
    return document


def _batch_from_json(document: Mapping[str, Any]) -> Batch:
    """A batch of the HTTP format, version 2, checked against the schema as it is read."""
    from ._records import Batch, Envelope, Record
    from .backends.http import BATCH_FORMAT, BATCH_FORMAT_VERSION

    if (document.get("format"), document.get("version")) != (BATCH_FORMAT, BATCH_FORMAT_VERSION):
        raise ValueError(f"not a {BATCH_FORMAT} version {BATCH_FORMAT_VERSION} document")
    records = document.get("records")
    if not isinstance(records, list):
        raise ValueError("a batch without a list of records")
    return Batch(
        str(document["day"]),
        Envelope(document["envelope"]),
        [Record.from_json(record) for record in records],
        str(document["idempotency_key"]),
    )


# -- the tool's TELEMETRY.md -------------------------------------------------------------


def assert_telemetry_md_current(telemetry: Telemetry, path: str | os.PathLike[str]) -> None:
    """Fail, with a short diff, if the file at `path` is not the tool's generated TELEMETRY.md.

    The message names the command that writes the file afresh
    (`python -m typer_telemetry docs module:attribute > TELEMETRY.md`).
    """
    # Loaded here: the generator loads the schema's tables, which a test
    # session that never calls this must not pay for.
    from ._contract import check_telemetry_md

    problem = check_telemetry_md(telemetry, path)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
