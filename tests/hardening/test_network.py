"""Network faults between the sender and the receiver, on real sockets on 127.0.0.1.

Each fault is tried twice over: in-process with `telemetry.flush(timeout=...)`
(the report says what failed, the time is bounded, nothing leaves the store),
and as a long-running run of the real tool (same exit code and stdout as
without the library, the exit not held up by the endpoint). Then a receiver
that behaves gets every pending day exactly once.
"""

from __future__ import annotations

import gzip
import json
import resource
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import pytest

from tests.conftest import Tool, enter_clean_environment, in_process_telemetry
from tests.hardening.conftest import FULL, assert_unchanged_by_telemetry, cases
from tests.hardening.servers import (
    RawServer,
    dripping,
    head,
    huge,
    replying,
    reset_mid_body,
)
from tests.receiver import Receiver, Reply
from typer_telemetry._recording import record_command

DAY_1 = 1773144000  # 2026-03-10 12:00 UTC
DAY_2 = DAY_1 + 86400  # 2026-03-11
ACCEPTED = b'{"accepted": true}'
# Generous: the exit of a run whose endpoint hangs or drips is measured
# precisely (50 ms) by the benchmark; here it only must not wait for the endpoint.
EXIT_BOUND_SECONDS = 3.0
FLUSH_TIMEOUT = 1.5


@dataclass
class Fault:
    """A misbehaving endpoint: its URL, and how to wait until the sender has met it."""

    endpoint: str
    met: Callable[[], None]
    server: RawServer | None = None
    elsewhere: Receiver | None = None  # where a redirect points: must get nothing


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def nothing_to_wait_for() -> None:
    """No server to watch (refused, DNS): the attempt fails at once, or the run ends first."""


def redirecting(status: str, location: str) -> Callable[..., None]:
    return replying(status, b"moved", {"Location": location})


def make_fault(name: str, stack: ExitStack, tmp: Path) -> Fault:
    def serve(behaviour: Callable[..., None], **options: object) -> RawServer:
        return stack.enter_context(RawServer(behaviour, **options))  # type: ignore[arg-type]

    if name == "refused":
        return Fault(f"http://127.0.0.1:{free_port()}/v1", nothing_to_wait_for)
    if name == "dns-invalid":
        return Fault("https://telemetry.invalid/v1", nothing_to_wait_for)
    if name == "tls-self-signed":
        server = serve(replying("200 OK", ACCEPTED), tls_folder=tmp)
        return Fault(
            server.url("/v1", scheme="https"),
            lambda: server.wait_handshake_failures(1),
            server,
        )
    if name == "https-to-plain-http":
        server = serve(replying("200 OK", ACCEPTED))
        return Fault(server.url("/v1", scheme="https"), lambda: server.wait_connections(1), server)
    if name.startswith("redirect-"):
        _, code, where = name.split("-")
        target = stack.enter_context(Receiver())
        location = (
            target.url("/v1/batches").replace("127.0.0.1", "localhost")
            if where == "other"
            else "/v2/batches"
        )
        status = {"301": "301 Moved Permanently", "302": "302 Found"}.get(code, f"{code} Redirect")
        server = serve(redirecting(status, location))
        return Fault(server.url("/v1"), lambda: server.wait_for(1), server, target)
    behaviours: dict[str, Callable[..., None]] = {
        "reset-mid-body": reset_mid_body,
        "drip-headers": dripping(b"HTTP/1.1 200 OK\r\n"),
        "drip-body": dripping(head("200 OK", {"Content-Length": "100000"}) + b'{"accepted"'),
        "huge-100MB": huge(100 * 1024 * 1024),
        "gzip-bomb": replying(
            "200 OK",
            gzip.compress(b" " * (64 * 1024 * 1024), mtime=0),
            {"Content-Encoding": "gzip", "Content-Type": "application/json"},
        ),
        "400": replying("400 Bad Request", b'{"error": "bad"}'),
        "404": replying("404 Not Found", b"<html>not here</html>"),
        "500": replying("500 Internal Server Error", b"oops"),
        "502": replying("502 Bad Gateway", b"<html>proxy</html>"),
        "503": replying("503 Service Unavailable", b""),
        "429": replying("429 Too Many Requests", b'{"error": "slow down"}'),
        "200-not-json": replying("200 OK", b"<html>captive portal says hi</html>"),
        "200-not-accepted": replying("200 OK", b'{"accepted": false}'),
        "200-json-list": replying("200 OK", b"[true]"),
        "200-accepted-string": replying("200 OK", b'{"accepted": "true"}'),
        "200-empty": replying("200 OK", b""),
        "201-truncated-json": replying("201 Created", b'{"accepted": tr'),
    }
    server = serve(behaviours[name])
    return Fault(server.url("/v1"), lambda: server.wait_for(1), server)


FAULTS = {
    "refused": "connection refused",
    "reset-mid-body": "connection reset mid-body (headers, half the body, then RST)",
    "tls-self-signed": "https to a server with a self-signed certificate",
    "https-to-plain-http": "https to a plain-http server",
    "dns-invalid": "DNS failure (a .invalid host name)",
    "drip-headers": "slow drip of the status line and headers (one byte per 0.5 s)",
    "drip-body": "slow drip of the body (one byte per 0.5 s)",
    "redirect-301-other": "301 redirect to another host",
    "redirect-302-other": "302 redirect to another host",
    "redirect-307-other": "307 redirect to another host",
    "redirect-308-other": "308 redirect to another host",
    "redirect-307-same": "307 redirect to the same host",
    "redirect-308-same": "308 redirect to the same host",
    "400": "400 Bad Request",
    "404": "404 Not Found",
    "500": "500 Internal Server Error",
    "502": "502 Bad Gateway",
    "503": "503 Service Unavailable without Retry-After",
    "429": "429 Too Many Requests without Retry-After",
    "huge-100MB": "a 200 reply of 100 MB, streamed",
    "gzip-bomb": "a 200 reply gzipped from 64 MB (Content-Encoding: gzip)",
    "200-not-json": "200 with a body that is not JSON (captive portal)",
    "200-not-accepted": 'JSON but not {"accepted": true}: {"accepted": false}',
    "200-json-list": "JSON but not an object: [true]",
    "200-accepted-string": 'JSON with "accepted": "true" (a string)',
    "200-empty": "200 with an empty body",
    "201-truncated-json": "201 with truncated JSON",
}
# The long-running runs of the real tool: a representative few in `nox -s tests`.
PROCESS_FAULTS = list(FAULTS) if FULL else ["drip-headers"]
# In-process flushes: every fault in `nox -s hardening`, one of each kind in `nox -s tests`.
FLUSH_FAULTS = (
    list(FAULTS)
    if FULL
    else [
        "refused",
        "reset-mid-body",
        "tls-self-signed",
        "https-to-plain-http",
        "dns-invalid",
        "drip-headers",
        "redirect-307-other",
        "redirect-308-same",
        "404",
        "503",
        "huge-100MB",
        "gzip-bomb",
        "200-not-json",
        "200-not-accepted",
    ]
)


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    folder = tmp_path / "tls"
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def good_server() -> Iterator[Receiver]:
    """One for the module: stopping a receiver takes up to half a second."""
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def good(good_server: Receiver) -> Receiver:
    with good_server._condition:
        good_server.requests.clear()
    good_server.reply = Reply()
    return good_server


def batches(receiver: Receiver) -> list[dict[str, object]]:
    return [request.json() for request in receiver if request.path.endswith("/batches")]


def counts_by_day(sent: list[dict[str, object]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for batch in sent:
        records = batch["records"]
        assert isinstance(records, list)
        day = str(batch["day"])
        totals[day] = totals.get(day, 0) + sum(int(record["count"]) for record in records)
    return totals


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# -- in-process: flush(timeout) against each fault, then a good receiver --------


@pytest.mark.parametrize("name", FLUSH_FAULTS)
def test_flush_against_a_faulty_endpoint_keeps_the_data_and_is_bounded(
    name: str,
    home: Path,
    tmp: Path,
    good: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    reliability: object,
) -> None:
    from typer_telemetry import Telemetry

    enter_clean_environment(monkeypatch, home)
    tries = cases(1, 6)
    with ExitStack() as stack:
        fault = make_fault(name, stack, tmp)
        telemetry = Telemetry("net-tool", version="1.0", endpoint=fault.endpoint)
        telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_1))
        record_command(telemetry.settings, "sync", "success", "", ("--all",), 40.0)
        telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_2))
        before = telemetry.status()["pending"]
        rss_before = peak_rss_kib()
        for _ in range(tries):
            started = time.monotonic()
            report = telemetry.flush(timeout=FLUSH_TIMEOUT)
            elapsed = time.monotonic() - started
            assert report.error is not None, report
            assert report.days_sent == ()
            # Bounded by its own timeout (plus scheduling slack), drip or not.
            assert elapsed < FLUSH_TIMEOUT + 2.0, (name, elapsed)
            assert telemetry.status()["pending"] == before
        if fault.elsewhere is not None:
            assert list(fault.elsewhere) == []  # the redirect was not followed
        if fault.server is not None and name.startswith("redirect-"):
            # Same host or not: only the original URL was asked, once per try.
            assert [r.path for r in fault.server.requests] == ["/v1/batches"] * tries
        if name == "huge-100MB":
            assert fault.server is not None
            # The reader stopped at its cap; what the server got out is what
            # the socket buffers took, far from 100 MB.
            assert fault.server.bytes_sent < 32 * 1024 * 1024
        # Memory stayed bounded whatever the reply (100 MB body, gzip bomb).
        assert peak_rss_kib() - rss_before < 48 * 1024

    # A receiver that behaves gets the day once, and only once.
    monkeypatch.setenv("NET_TOOL_TELEMETRY_ENDPOINT", good.url("/v1"))
    report = telemetry.flush(timeout=10)
    assert report.days_sent == ("2026-03-10",), report
    assert telemetry.flush(timeout=10).days_sent == ()
    assert counts_by_day(batches(good)) == {"2026-03-10": 1}
    assert telemetry.status()["pending"] == []
    reliability.record(  # type: ignore[attr-defined]
        area="Network",
        fault=f"{FAULTS[name]}: telemetry.flush(timeout={FLUSH_TIMEOUT})",
        cases=tries,
        outcome=f"flush reports the error within {FLUSH_TIMEOUT} s + scheduling; "
        "nothing followed elsewhere; day stays pending; delivered once by the next flush",
    )


# -- the real tool: a long-running run against each fault ------------------------


def long_running_run(
    tool: Tool, env: dict[str, str], met: Callable[[], None]
) -> tuple[subprocess.CompletedProcess[str], float]:
    """`wait --until-stdin-closes`; once the sender met the fault, close stdin and time the exit."""
    process = tool.popen("wait", "--until-stdin-closes", env=env)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    met()
    started = time.monotonic()
    stdout, stderr = process.communicate(input="", timeout=30)
    exit_seconds = time.monotonic() - started
    return (
        subprocess.CompletedProcess(process.args, process.returncode, "ready\n" + stdout, stderr),
        exit_seconds,
    )


def meeting(name: str, fault: Fault, count: int) -> Callable[[], None]:
    """How to wait until the sender has met the fault `count` times."""
    server = fault.server
    if server is None:
        return nothing_to_wait_for
    if name == "tls-self-signed":
        return lambda: server.wait_handshake_failures(count)
    if name == "https-to-plain-http":
        return lambda: server.wait_connections(count)
    return lambda: server.wait_for(count) and None  # type: ignore[func-returns-value]


def on(day: int, endpoint: str) -> dict[str, str]:
    return {
        "TOOL_NOW": str(day),
        "OUTSIDE_TOOL_TELEMETRY_ENDPOINT": endpoint,
        "TOOL_LONG_RUNNING_AFTER": "0.05",
    }


def pending_days(tool: Tool, env: dict[str, str]) -> list[str]:
    return sorted({str(record["day"]) for record in tool.pending(env)})


def until_sent(tool: Tool, env: dict[str, str], day: str = "2026-03-10") -> None:
    """Poll the real store until `day` has left it (accepted and removed)."""
    deadline = time.monotonic() + 30
    while day in pending_days(tool, env):
        assert time.monotonic() < deadline, f"{day} was never sent"


@pytest.mark.parametrize("name", PROCESS_FAULTS)
def test_a_long_running_run_against_a_faulty_endpoint_is_unaffected(
    name: str, tool: Tool, tmp: Path, good: Receiver, reliability: object
) -> None:
    bare = tool.run("wait", "--until-stdin-closes", input="", env={"TOOL_WITHOUT_TELEMETRY": "1"})
    rounds = 1  # every fault has its own run in `nox -s hardening`; flushes repeat
    slowest = 0.0
    with ExitStack() as stack:
        fault = make_fault(name, stack, tmp)
        faulty = on(DAY_2, fault.endpoint)
        # A short run records day 1, unchanged by telemetry.
        assert_unchanged_by_telemetry(tool, "hello", "x", env=on(DAY_1, fault.endpoint))
        for round_number in range(rounds):
            met = meeting(name, fault, round_number + 1)
            result, exit_seconds = long_running_run(tool, faulty, met)
            assert (result.returncode, result.stdout) == (bare.returncode, bare.stdout)
            assert exit_seconds < EXIT_BOUND_SECONDS, exit_seconds
            slowest = max(slowest, exit_seconds)
        assert pending_days(tool, faulty) == ["2026-03-10", "2026-03-11"]
        if fault.elsewhere is not None:
            assert list(fault.elsewhere) == []

    working = on(DAY_2, good.url("/v1"))
    result, _ = long_running_run(tool, working, lambda: until_sent(tool, working))
    assert result.returncode == 0
    assert pending_days(tool, working) == ["2026-03-11"]
    assert counts_by_day(batches(good)) == {"2026-03-10": 1}
    reliability.record(  # type: ignore[attr-defined]
        area="Network",
        fault=f"{FAULTS[name]}: long-running run of the real tool",
        cases=rounds,
        outcome="exit code and stdout as without the library; exit within "
        f"{slowest:.2f} s of stdin closing (bound {EXIT_BOUND_SECONDS} s); day stays "
        "pending; delivered once by the next run",
    )


# -- PostHog and OTLP: a representative subset ---------------------------------


BACKEND_FAULTS = ["refused", "500", "200-not-json", "huge-100MB"] if FULL else ["500", "huge-100MB"]


def backend_for(kind: str, endpoint: str) -> object:
    from typer_telemetry.backends import OTLPBackend, PostHogBackend

    base = endpoint.removesuffix("/v1")
    if kind == "posthog":
        return PostHogBackend("phc_hardening", host=base)
    return OTLPBackend(base)


@pytest.mark.parametrize("kind", ["posthog", "otlp"])
@pytest.mark.parametrize("name", BACKEND_FAULTS)
def test_posthog_and_otlp_back_ends_against_faulty_endpoints(
    kind: str,
    name: str,
    home: Path,
    tmp: Path,
    good: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    reliability: object,
) -> None:
    from typer_telemetry import Telemetry

    enter_clean_environment(monkeypatch, home)
    tries = cases(1, 5)
    with ExitStack() as stack:
        fault = make_fault(name, stack, tmp)
        telemetry = Telemetry("net-tool", version="1.0", backend=backend_for(kind, fault.endpoint))  # type: ignore[arg-type]
        telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_1))
        record_command(telemetry.settings, "sync", "success", "", (), 40.0)
        telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_2))
        before = telemetry.status()["pending"]
        for _ in range(tries):
            started = time.monotonic()
            report = telemetry.flush(timeout=FLUSH_TIMEOUT)
            assert time.monotonic() - started < FLUSH_TIMEOUT + 2.0
            if name == "200-not-json":
                break
            assert report.error is not None, report
            assert report.days_sent == ()
            assert telemetry.status()["pending"] == before
        if name == "200-not-json":
            # Like their official clients, these back ends read success from the
            # status alone: a 2xx is delivery, so the day left exactly once.
            assert report.days_sent == ("2026-03-10",), report
            assert telemetry.status()["pending"] == []
            assert telemetry.flush(timeout=5).days_sent == ()
            outcome = "2xx counts as delivered, as in the official clients; sent once, not again"
        else:
            telemetry.settings = telemetry.settings.replace(
                backend=backend_for(kind, good.url("/v1"))
            )
            assert telemetry.flush(timeout=10).days_sent == ("2026-03-10",)
            assert telemetry.flush(timeout=10).days_sent == ()
            assert len(list(good)) == 1
            outcome = "flush reports the error in bounded time; delivered once by the next flush"
    reliability.record(  # type: ignore[attr-defined]
        area="Network",
        fault=f"{'PostHogBackend' if kind == 'posthog' else 'OTLPBackend'}: {FAULTS[name]}",
        cases=tries,
        outcome=outcome,
    )


# -- Retry-After ------------------------------------------------------------------


def status_not_before(tool: Tool, env: dict[str, str]) -> object:
    return tool.status(env)["send_not_before"]


def iso(timestamp: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


@pytest.mark.parametrize(
    ("status", "form"),
    [("429 Too Many Requests", "seconds")]
    + ([("503 Service Unavailable", "http-date")] if FULL else []),
)
def test_retry_after_is_honoured_across_runs(
    status: str,
    form: str,
    tool: Tool,
    good: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    reliability: object,
) -> None:
    wait = 3600 if form == "seconds" else 7200

    def answer(connection: socket.socket, request: object, server: RawServer) -> None:
        # The HTTP-date is measured against the reply's own Date, so the
        # pinned clock of the tool does not matter.
        now = time.time()
        value = str(wait) if form == "seconds" else formatdate(now + wait, usegmt=True)
        headers = {"Retry-After": value, "Date": formatdate(now, usegmt=True)}
        server.send(connection, head(status, {"Content-Length": "0", **headers}))

    with RawServer(answer) as server:
        tool.run("hello", "x", env=on(DAY_1, server.url("/v1")))
        state = tool.store_dir / "not-before.json"

        def noted() -> None:
            deadline = time.monotonic() + 30
            while not state.exists():  # the sender wrote down the receiver's wish
                assert time.monotonic() < deadline

        result, exit_seconds = long_running_run(tool, on(DAY_2, server.url("/v1")), noted)
        assert result.returncode == 0
        assert exit_seconds < EXIT_BOUND_SECONDS
        server_requests = len(server.requests)

    working = on(DAY_2, good.url("/v1"))
    assert status_not_before(tool, working) == iso(DAY_2 + wait)
    assert state.stat().st_mode & 0o777 == 0o600

    # Before the time, nothing is sent: checked in-process on the same store
    # (flush says why), and by the real tool, whose run the receiver never sees.
    enter_clean_environment(monkeypatch, tool.home)
    from typer_telemetry import Telemetry

    inside = Telemetry("outside-tool", version="2.0.1", endpoint=good.url("/v1"))
    checks = cases(3, 10)
    for step in range(checks):
        inside.settings = inside.settings.replace(
            clock=lambda s=step: float(DAY_2 + (wait - 1) * s // max(checks - 1, 1))
        )
        report = inside.flush(timeout=5)
        assert report.skipped is not None
        assert "asked for nothing before" in report.skipped
    tool.run("wait", "--seconds", "0.5", env={**working, "TOOL_NOW": str(DAY_2 + wait - 60)})
    assert list(good) == []
    assert server_requests == 1

    # After it, the next long-running run sends the day once and forgets the wait.
    after = {**working, "TOOL_NOW": str(DAY_2 + wait + 1)}
    long_running_run(tool, after, lambda: until_sent(tool, after))
    assert counts_by_day(batches(good)) == {"2026-03-10": 1}
    assert status_not_before(tool, after) is None
    assert not state.exists()
    reliability.record(  # type: ignore[attr-defined]
        area="Network",
        fault=f"{status.split()[0]} with Retry-After ({form} form, {wait} s)",
        cases=checks + 1,
        outcome="no request before the time (status --json shows it); the first run "
        "after it delivers the day once",
    )


def test_retry_after_is_capped_and_a_clock_going_back_does_not_strand_it(
    home: Path, good: Receiver, monkeypatch: pytest.MonkeyPatch, reliability: object
) -> None:
    from typer_telemetry import Telemetry
    from typer_telemetry.backends._http import retry_after_seconds

    enter_clean_environment(monkeypatch, home)
    day = 86400
    date = "Tue, 10 Mar 2026 12:00:00 GMT"
    assert retry_after_seconds({"retry-after": "120"}) == 120
    assert retry_after_seconds({"retry-after": "99999999999999999999"}) == day
    assert (
        retry_after_seconds({"retry-after": "Tue, 10 Mar 2026 12:30:00 GMT", "date": date}) == 1800
    )
    assert retry_after_seconds({"retry-after": "Tue, 10 Mar 2026 11:00:00 GMT", "date": date}) == 0
    assert (
        retry_after_seconds({"retry-after": "Fri, 01 Jan 2100 00:00:00 GMT", "date": date}) == day
    )
    for junk in ("", "-5", "1.5", "soon", "Tue, 99 Foo 2026", "\u0661\u0662"):
        assert retry_after_seconds({"retry-after": junk}) is None, junk

    def answer(connection: socket.socket, request: object, server: RawServer) -> None:
        server.send(
            connection,
            head("429 Too Many Requests", {"Content-Length": "0", "Retry-After": "864000000"}),
        )

    with RawServer(answer) as server:
        telemetry = Telemetry("net-tool", version="1.0", endpoint=server.url("/v1"))
        telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_1))
        record_command(telemetry.settings, "sync", "success", "", (), 40.0)
        telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_2))
        assert telemetry.flush(timeout=5).error is not None
        # Ten thousand days asked, one honoured.
        assert telemetry.status()["send_not_before"] == iso(DAY_2 + day)
        telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_2 + day - 1))
        assert telemetry.flush(timeout=5).skipped is not None
    # The clock went back two days: a wait longer than any receiver may ask is
    # a stale one, and does not strand the data.
    monkeypatch.setenv("NET_TOOL_TELEMETRY_ENDPOINT", good.url("/v1"))
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_2 - 2 * day))
    assert telemetry.status()["send_not_before"] is None
    first = telemetry.flush(timeout=5)  # not held back by the stale wait
    assert first.skipped is None, first
    assert first.error is None, first
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_2))
    second = telemetry.flush(timeout=5)
    assert second.skipped is None, second
    assert second.error is None, second
    assert first.days_sent + second.days_sent == ("2026-03-10",)
    assert counts_by_day(batches(good)) == {"2026-03-10": 1}
    reliability.record(  # type: ignore[attr-defined]
        area="Network",
        fault="Retry-After of 10,000 days, junk values, then the clock set back 2 days",
        cases=9,
        outcome="wait capped at 24 h; junk ignored; a wait beyond 24 h of the clock is "
        "forgotten; delivered once",
    )


def test_the_not_before_file_is_ignored_when_damaged(
    home: Path, good: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    telemetry = in_process_telemetry(monkeypatch, home, "net-tool", good.url("/v1"), now=DAY_1)
    record_command(telemetry.settings, "sync", "success", "", (), 40.0)
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_2))
    state = telemetry.settings.paths().store_dir / "not-before.json"
    for damage in (
        b"",
        b"{",
        b"[]",
        b'{"not_before": "soon"}',
        b'{"not_before": NaN}',
        b"\xff" * 10,
    ):
        state.write_bytes(damage)
        assert telemetry.status()["send_not_before"] is None
    assert telemetry.flush(timeout=5).days_sent == ("2026-03-10",)
    assert json.loads(good.requests[0].content)["day"] == "2026-03-10"
