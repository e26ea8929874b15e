"""What leaves the machine, and how: proxies, the environment, failures, deletion, the allowlist.

Real parts only: a recording proxy and receivers on 127.0.0.1 (tests/hardening/servers.py,
tests/receiver.py), the library in this process (`flush`, `reset`, `request_deletions`)
and the tools as real processes (`telemetry reset`, long-running runs).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tool, enter_clean_environment, in_process_telemetry, tool_script
from tests.hardening.conftest import install_id_of
from tests.hardening.servers import RawServer, replying
from tests.receiver import ReceivedRequest, Receiver
from typer_telemetry._controls import pending_deletions, request_deletions
from typer_telemetry._recording import record_command

DAY_1 = 1773144000  # 2026-03-10 12:00 UTC
DAY_2 = DAY_1 + 86400  # 2026-03-11
DAY_3 = DAY_2 + 86400  # 2026-03-12
ACCEPTED = b'{"accepted": true}'
ELSEWHERE = "https://telemetry.example.test/v1"  # never resolved: a proxy or a DNS failure
PROXY_VARIABLES = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
]
ALL_PROXY_SETTINGS = [*PROXY_VARIABLES, "no_proxy", "NO_PROXY"]
TRACEBACK = "Traceback"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def proxy() -> Iterator[RawServer]:
    """A proxy that records whatever reaches it and answers 200 `{"accepted": true}`."""
    with RawServer(replying("200 OK", ACCEPTED)) as running:
        yield running


def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_PROXY_SETTINGS:
        monkeypatch.delenv(name, raising=False)


def flushed(telemetry: Any, day: int) -> Any:
    """Record one invocation on the day before `day`, then flush on `day`."""
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(day - 86400))
    record_command(telemetry.settings, "sync", "success", "", ("--all",), 40.0)
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(day))
    return telemetry.flush(timeout=10)


def pending(telemetry: Any) -> list[dict[str, object]]:
    records = telemetry.status()["pending"]
    assert isinstance(records, list)
    return records


# -- 1. proxies: never for loopback, CONNECT for https elsewhere ---------------------


@pytest.mark.parametrize("variable", PROXY_VARIABLES)
def test_a_loopback_endpoint_never_goes_through_a_proxy(
    variable: str,
    home: Path,
    receiver: Receiver,
    proxy: RawServer,
    monkeypatch: pytest.MonkeyPatch,
    reliability: Any,
) -> None:
    port = receiver.server.server_address[1]
    for host in ("127.0.0.1", "localhost"):
        folder = home / host
        folder.mkdir()
        telemetry = in_process_telemetry(
            monkeypatch, folder, "proxy-tool", f"http://{host}:{port}/v1"
        )
        no_proxy_settings(monkeypatch)
        monkeypatch.setenv(variable, proxy.url())
        report = flushed(telemetry, DAY_2)
        assert report.days_sent == ("2026-03-10",), report
        old_id, _ = telemetry.reset()
        report = request_deletions(telemetry.settings, timeout=10)
        assert report.deletions_sent == (old_id,), report
        assert pending_deletions(telemetry.settings) == []
    # The proxy would have answered "accepted" to both: nothing reached it at all.
    assert (proxy.connections, proxy.requests) == (0, [])
    assert [request.path for request in receiver] == ["/v1/batches", "/v1/deletions"] * 2
    reliability.record(
        area="Network",
        fault=f"{variable} points at a recording proxy (answers 200 accepted); endpoint on "
        "127.0.0.1 and localhost",
        cases=2,
        outcome="batch and deletion go straight to the receiver; no connection reaches the proxy",
    )


@pytest.mark.parametrize("variable", ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"])
def test_an_https_endpoint_elsewhere_goes_through_the_proxy_with_connect_only(
    variable: str,
    home: Path,
    proxy: RawServer,
    monkeypatch: pytest.MonkeyPatch,
    reliability: Any,
) -> None:
    telemetry = in_process_telemetry(monkeypatch, home, "proxy-tool", ELSEWHERE)
    no_proxy_settings(monkeypatch)
    monkeypatch.setenv(variable, proxy.url())
    report = flushed(telemetry, DAY_2)
    # The proxy opened a tunnel and then spoke no TLS: a clean failure, the day stays.
    assert report.error is not None, report
    assert report.days_sent == (), report
    assert [record["day"] for record in pending(telemetry)] == ["2026-03-10"]
    (request,) = proxy.requests
    assert (request.method, request.path) == ("CONNECT", "telemetry.example.test:443")
    # All a proxy sees of an https request: where it goes, nothing of the data.
    assert set(request.headers) <= {"host", "accept", "user-agent"}, request.headers
    assert request.body == b""

    # NO_PROXY naming the host, or a parent domain, or `*`, bypasses the proxy.
    for excluded in ("telemetry.example.test", ".example.test", "example.test:443", "*"):
        monkeypatch.setenv("NO_PROXY", excluded)
        assert telemetry.flush(timeout=10).error is not None
        assert len(proxy.requests) == 1, excluded
    reliability.record(
        area="Network",
        fault=f"{variable} set, https endpoint elsewhere; NO_PROXY naming it 4 ways",
        cases=5,
        outcome="the proxy gets only `CONNECT telemetry.example.test:443` (no body); NO_PROXY "
        "is honoured; the failed tunnel is a report error, the day stays pending",
    )


def test_nothing_from_netrc_is_sent(
    home: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, reliability: Any
) -> None:
    credentials = "machine 127.0.0.1 login someone password hunter2\ndefault login a password b\n"
    (home / ".netrc").write_text(credentials)
    (home / ".netrc").chmod(0o600)
    telemetry = in_process_telemetry(monkeypatch, home, "netrc-tool", receiver.url("/v1"))
    monkeypatch.setenv("NETRC", str(home / ".netrc"))
    assert flushed(telemetry, DAY_2).days_sent == ("2026-03-10",)
    telemetry.reset()
    assert request_deletions(telemetry.settings, timeout=10).error is None
    assert [request.path for request in receiver] == ["/v1/batches", "/v1/deletions"]
    for request in receiver:
        assert "authorization" not in request.headers
        assert b"hunter2" not in request.body
    reliability.record(
        area="Network",
        fault="~/.netrc (and NETRC) holds credentials for the receiver's host and a default",
        cases=1,
        outcome="no Authorization header and no credential in any batch or deletion request",
    )


def test_ssl_cert_file_names_the_certificates_an_https_endpoint_is_checked_against(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reliability: Any
) -> None:
    with RawServer(replying("200 OK", ACCEPTED), tls_folder=tmp_path) as server:
        telemetry = in_process_telemetry(monkeypatch, home, "cert-tool", server.url("/v1", "https"))
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))
        # A corporate CA in SSL_CERT_FILE is trusted: the self-signed receiver is reached.
        assert flushed(telemetry, DAY_2).days_sent == ("2026-03-10",)
    reliability.record(
        area="Network",
        fault="SSL_CERT_FILE names the (self-signed) certificate of an https receiver",
        cases=1,
        outcome="the receiver is trusted and the day delivered, as for a corporate CA",
    )


def test_an_https_proxy_is_checked_against_the_certificates_ssl_cert_file_names(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reliability: Any
) -> None:
    with RawServer(replying("200 OK", b""), tls_folder=tmp_path) as proxy:
        telemetry = in_process_telemetry(monkeypatch, home, "proxy-tls-tool", ELSEWHERE)
        no_proxy_settings(monkeypatch)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url("", "https"))
        # The proxy's self-signed certificate is not trusted by default: it is told nothing.
        report = flushed(telemetry, DAY_2)
        assert report.days_sent == (), report
        assert report.error is not None
        assert "certificate" in report.error.lower(), report.error
        assert proxy.requests == []
        # Named by SSL_CERT_FILE (a corporate CA), the proxy is trusted as an endpoint would
        # be: it gets the CONNECT (then speaks no TLS itself, and the day stays pending).
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))
        assert telemetry.flush(timeout=10).error is not None
        (request,) = proxy.requests
        assert (request.method, request.path) == ("CONNECT", "telemetry.example.test:443")
        assert [record["day"] for record in pending(telemetry)] == ["2026-03-10"]
    reliability.record(
        area="Network",
        fault="HTTPS_PROXY=https:// (a TLS proxy, self-signed), with and without SSL_CERT_FILE",
        cases=2,
        outcome="untrusted: a report error, the proxy is told nothing; named by SSL_CERT_FILE: "
        "the proxy is trusted and gets the CONNECT",
    )


# -- 2. the library's own failures never reach the tool ------------------------------


class Custom(Exception):
    pass


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message")


class Raising:
    """A custom back end that fails with the given exception."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def send(self, batch: object, *, timeout: float) -> None:
        raise self.error

    def request_deletion(self, install_id: str, *, timeout: float) -> None:
        raise self.error


def raw_http_backend(url: str) -> Any:
    """The library's HTTP back end aimed at `url` as given, past the endpoint check."""
    from typer_telemetry.backends import HTTPBackend

    backend = HTTPBackend("http://127.0.0.1/")
    backend.endpoint = url.rstrip("/")
    return backend


# name -> (environment, endpoint kind, what the report names)
CASES: dict[str, tuple[dict[str, str], str, str]] = {
    "SSL_CERT_FILE=/nonexistent": ({"SSL_CERT_FILE": "/nonexistent"}, "tls", "FileNotFoundError"),
    "SSL_CERT_FILE=/etc/passwd": ({"SSL_CERT_FILE": "/etc/passwd"}, "tls", "SSLError"),
    "ALL_PROXY=socks5:// without socksio": (
        {"ALL_PROXY": "socks5://127.0.0.1:9"},
        "elsewhere",
        "ImportError",
    ),
    "HTTPS_PROXY=ftp://": ({"HTTPS_PROXY": "ftp://127.0.0.1:9"}, "elsewhere", "ValueError"),
    "a tab in the endpoint's userinfo": ({}, "tab", "InvalidURL"),
    "a custom back end raising ConnectionError": ({}, "raising", "ConnectionError"),
}


def faulty_destination(kind: str, tls: RawServer) -> tuple[str | None, Any]:
    """(endpoint, back end) for a case: exactly one of them is set."""
    if kind == "tls":
        return tls.url("/v1", "https"), None
    if kind == "elsewhere":
        return ELSEWHERE, None
    if kind == "tab":
        return None, raw_http_backend(f"http://us\ter@127.0.0.1:{tls.port}/v1")
    return None, Raising(ConnectionError("the back end failed"))


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[RawServer]:
    folder = tmp_path / "tls"
    folder.mkdir()
    with RawServer(replying("200 OK", ACCEPTED), tls_folder=folder) as server:
        yield server


@pytest.mark.parametrize("name", list(CASES))
def test_flush_and_deletion_report_every_failure_and_never_raise(
    name: str,
    home: Path,
    receiver: Receiver,
    tls_server: RawServer,
    monkeypatch: pytest.MonkeyPatch,
    reliability: Any,
) -> None:
    from typer_telemetry import Telemetry

    environment, kind, named = CASES[name]
    enter_clean_environment(monkeypatch, home)
    no_proxy_settings(monkeypatch)
    endpoint, backend = faulty_destination(kind, tls_server)
    telemetry = Telemetry("fault-tool", version="1.0", endpoint=endpoint, backend=backend)
    # Day 1 goes to a working receiver (the endpoint variable wins), so that an id was sent.
    monkeypatch.setenv("FAULT_TOOL_TELEMETRY_ENDPOINT", receiver.url("/v1"))
    assert flushed(telemetry, DAY_2).days_sent == ("2026-03-10",)
    monkeypatch.delenv("FAULT_TOOL_TELEMETRY_ENDPOINT")
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)

    report = flushed(telemetry, DAY_3)
    assert report.days_sent == (), report
    assert named in str(report.error), report
    assert [record["day"] for record in pending(telemetry)] == ["2026-03-11"]
    old_id, new_id = telemetry.reset()
    assert old_id is not None
    assert install_id_of(telemetry) == new_id
    assert pending(telemetry) == []
    report = request_deletions(telemetry.settings, timeout=5)
    assert report.deletions_sent == (), report
    assert named in str(report.error), report
    assert pending_deletions(telemetry.settings) == [old_id]

    # Once the fault is gone, the kept request goes out.
    for variable in environment:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("FAULT_TOOL_TELEMETRY_ENDPOINT", receiver.url("/v1"))
    assert telemetry.flush(timeout=10).deletions_sent == (old_id,)
    assert [
        request.json()["install_id"] for request in receiver if "deletions" in request.path
    ] == [old_id]
    reliability.record(
        area="Network",
        fault=f"{name}: telemetry.flush() and a reset's deletion request in process",
        cases=1,
        outcome=f"no exception; the report's error names {named}; the day and the deletion "
        "stay pending and go out once the fault is gone",
    )


CUSTOM_ERRORS: list[Exception] = [
    ConnectionError("refused"),
    OSError(28, "No space left on device"),
    ValueError("bad"),
    TypeError("wrong type"),
    KeyError("missing"),
    AttributeError("no such attribute"),
    RuntimeError("broken"),
    NotImplementedError(),
    RecursionError("too deep"),
    ZeroDivisionError("division by zero"),
    UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    Custom("the vendor's own"),
    Unprintable(),
]


def test_a_custom_back_end_raising_any_exception_never_reaches_the_tool(
    home: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, reliability: Any
) -> None:
    from typer_telemetry import Telemetry

    enter_clean_environment(monkeypatch, home)
    raising = Raising(ValueError())
    telemetry = Telemetry("custom-tool", version="1.0", backend=raising)
    monkeypatch.setenv("CUSTOM_TOOL_TELEMETRY_ENDPOINT", receiver.url("/v1"))
    assert flushed(telemetry, DAY_2).days_sent == ("2026-03-10",)
    monkeypatch.delenv("CUSTOM_TOOL_TELEMETRY_ENDPOINT")
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_2))
    record_command(telemetry.settings, "sync", "success", "", (), 40.0)
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_3))
    old_id = install_id_of(telemetry)
    for error in CUSTOM_ERRORS:
        raising.error = error
        report = telemetry.flush(timeout=5)
        assert report.days_sent == (), report
        assert type(error).__name__ in str(report.error), report
        assert [record["day"] for record in pending(telemetry)] == ["2026-03-11"]
    telemetry.reset()
    for error in CUSTOM_ERRORS:
        raising.error = error
        report = request_deletions(telemetry.settings, timeout=5)
        assert type(error).__name__ in str(report.error), report
        assert pending_deletions(telemetry.settings) == [old_id]
    reliability.record(
        area="Network",
        fault="a custom back end raises (from send and request_deletion) "
        + ", ".join(sorted({type(error).__name__ for error in CUSTOM_ERRORS}))
        + " (one whose message itself raises)",
        cases=2 * len(CUSTOM_ERRORS),
        outcome="flush() and request_deletions() return a report naming the class; the day "
        "and the deletion stay pending",
    )


def network_tool(home: Path) -> Tool:
    return Tool(tool_script("network_tool"), home)


def read_if_there(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def traced(trace: Path, line: str) -> Callable[[], bool]:
    return lambda: line in read_if_there(trace).splitlines()


def until(condition: Callable[[], bool]) -> None:
    """Poll real state (a file the tool writes) until it holds.

    The pause between looks only leaves the core to the tool being watched.
    """
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.005)


def long_running(
    tool: Tool, env: dict[str, str], done: Callable[[], bool]
) -> subprocess.CompletedProcess[str]:
    process = tool.popen("wait", env=env)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    until(done)
    stdout, stderr = process.communicate(input="", timeout=30)
    return subprocess.CompletedProcess(process.args, process.returncode, "ready\n" + stdout, stderr)


@pytest.mark.parametrize("name", list(CASES))
def test_reset_and_long_running_runs_survive_every_failure_as_real_processes(
    name: str,
    home: Path,
    tmp_path: Path,
    receiver: Receiver,
    tls_server: RawServer,
    reliability: Any,
) -> None:
    environment, kind, named = CASES[name]
    tool = network_tool(home)
    trace = tmp_path / "trace.log"
    good = {"NETWORK_RAW_URL": receiver.url("/v1"), "NETWORK_TRACE": str(trace)}
    tool.run("hello", "x", env={**good, "TOOL_NOW": str(DAY_1)})
    result = long_running(tool, {**good, "TOOL_NOW": str(DAY_2)}, traced(trace, "send ok"))
    assert result.returncode == 0
    trace.unlink()

    endpoint, backend = faulty_destination(kind, tls_server)
    faulty = {
        **environment,
        "NETWORK_TRACE": str(trace),
        **(
            {"NETWORK_RAISE": "ConnectionError"}
            if kind == "raising"
            else {"NETWORK_RAW_URL": endpoint or backend.endpoint}
        ),
    }
    bare = tool.run("wait", input="", env={"TOOL_WITHOUT_TELEMETRY": "1"})
    # The first whole line the back end's tracer wrote: the send has ended.
    result = long_running(
        tool, {**faulty, "TOOL_NOW": str(DAY_3)}, lambda: "\n" in read_if_there(trace)
    )
    assert (result.returncode, result.stdout) == (bare.returncode, bare.stdout)
    assert TRACEBACK not in result.stderr
    assert trace.read_text().split()[0] == "send"
    # The failed day stays for a later run.
    days = {record["day"] for record in tool.pending({**faulty, "TOOL_NOW": str(DAY_3)})}
    # (Day 1 may still be noted in flight: its run ended as its answer came.)
    assert {"2026-03-11", "2026-03-12"} <= days
    assert named in trace.read_text() or kind != "raising"

    result = tool.run("telemetry", "reset", env=faulty)
    assert result.returncode == 0, result.stderr
    assert TRACEBACK not in result.stderr
    assert "Local telemetry data of network-tool was deleted." in result.stdout
    assert "Could not ask the receiver to delete" in result.stderr
    assert named in result.stderr, result.stderr
    status = tool.status(faulty)
    assert status["pending"] == []
    assert len(status["pending_deletions"]) == 1  # type: ignore[arg-type]

    result = tool.run("telemetry", "reset", env=good)
    assert result.returncode == 0, result
    assert "asked to delete" in result.stdout, result
    reliability.record(
        area="Network",
        fault=f"{name}: a long-running run and `telemetry reset` of the real tool",
        cases=1,
        outcome="exit code and stdout as without the library, no traceback; reset deletes the "
        f"local data, exits 0 and says on stderr that the receiver was not reached ({named}); "
        "the deletion stays pending and goes out with the next working reset",
    )


# -- 3. deletion covers every id ever sent, and only those ------------------------------


def on(day: int, endpoint: str, **extra: str) -> dict[str, str]:
    return {
        "TOOL_NOW": str(day),
        "OUTSIDE_TOOL_TELEMETRY_ENDPOINT": endpoint,
        "TOOL_LONG_RUNNING_AFTER": "0.05",
        **extra,
    }


def send_one_day(tool: Tool, endpoint: str, day: int) -> str:
    """Record on the day before `day` and send it from a long-running run on `day`."""
    tool.run("hello", "x", env=on(day - 86400, endpoint))
    env = on(day, endpoint)
    sent_day = time.strftime("%Y-%m-%d", time.gmtime(day - 86400))
    process = tool.popen("wait", "--until-stdin-closes", env=env)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    until(lambda: sent_day not in {record["day"] for record in tool.pending(env)})
    assert process.communicate(input="", timeout=30)[0] == "waited\n"
    install_id = tool.status(env)["install_id"]
    assert isinstance(install_id, str)
    return install_id


def deletions(receiver: Receiver) -> list[str]:
    return [
        request.json()["install_id"] for request in receiver if request.path.endswith("/deletions")
    ]


def batch_ids(receiver: Receiver) -> list[str]:
    return [
        request.json()["envelope"]["install_id"]
        for request in receiver
        if request.path.endswith("/batches")
    ]


@pytest.mark.parametrize("consent", ["opt-out", "opt-in"])
def test_reset_of_a_tool_that_never_sent_makes_no_connection(
    consent: str, tool: Tool, receiver: Receiver, reliability: Any
) -> None:
    env = on(DAY_1, receiver.url("/v1"), TOOL_CONSENT=consent)
    for _ in range(2):
        assert tool.run("hello", "x", env=env).returncode == 0
        result = tool.run("telemetry", "reset", env=env)
        assert result.returncode == 0, result
        assert result.stderr == "", result
        assert "asked to delete" not in result.stdout
    assert list(receiver) == []  # the reset waits for any reply: none was ever asked
    assert tool.status(env)["pending_deletions"] == []
    reliability.record(
        area="Network",
        fault=f"`telemetry reset` ({consent}) on a tool that recorded but never sent",
        cases=2,
        outcome="no connection; no deletion queued",
    )


def test_reset_asks_to_delete_every_id_ever_sent_even_one_set_aside_with_its_config(
    tool: Tool, receiver: Receiver, reliability: Any
) -> None:
    endpoint = receiver.url("/v1")
    first = send_one_day(tool, endpoint, DAY_2)
    config = tool.config_dir / "telemetry.toml"
    config.write_text("enabled = [not toml\n")  # unreadable: set aside by the next change
    result = tool.run("telemetry", "enable", env=on(DAY_2, endpoint))
    assert result.returncode == 0
    assert list(tool.config_dir.glob("telemetry.toml.unreadable-*"))
    second = send_one_day(tool, endpoint, DAY_3)
    assert second != first
    assert batch_ids(receiver) == [first, second]

    config.write_text("enabled = [not toml\n")  # and once more, right before the reset
    result = tool.run("telemetry", "reset", env=on(DAY_3, endpoint))
    assert result.returncode == 0, result
    assert "asked to delete" in result.stdout, result
    assert sorted(deletions(receiver)) == sorted([first, second])
    # Accepted deletions leave the ledger: the next reset has nothing to ask for.
    result = tool.run("telemetry", "reset", env=on(DAY_3, endpoint))
    assert result.returncode == 0
    assert "asked to delete" not in result.stdout
    assert len(deletions(receiver)) == 2
    reliability.record(
        area="Network",
        fault="the config holding the sent install id is set aside as unreadable (twice), "
        "then `telemetry reset`",
        cases=1,
        outcome="the receiver is asked to delete both ids ever sent under; a second reset "
        "asks for nothing",
    )


@pytest.mark.parametrize("off", ["telemetry disable", "DO_NOT_TRACK=1"])
def test_reset_while_telemetry_is_off_only_asks_for_deletion(
    off: str, tool: Tool, receiver: Receiver, reliability: Any
) -> None:
    endpoint = receiver.url("/v1")
    sent = send_one_day(tool, endpoint, DAY_2)
    tool.run("hello", "x", env=on(DAY_2, endpoint))  # today's record, never to be sent
    extra = {}
    if off == "telemetry disable":
        assert tool.run("telemetry", "disable", env=on(DAY_2, endpoint)).returncode == 0
    else:
        extra = {"DO_NOT_TRACK": "1"}
    before = len(receiver.requests)
    result = tool.run("telemetry", "reset", env=on(DAY_3, endpoint, **extra))
    assert result.returncode == 0, result
    assert "asked to delete" in result.stdout, result
    assert [request.path for request in receiver.requests[before:]] == ["/v1/deletions"]
    assert deletions(receiver) == [sent]
    reliability.record(
        area="Network",
        fault=f"`telemetry reset` while telemetry is off ({off}) after data was sent",
        cases=1,
        outcome="exactly one request, the deletion of the sent id; nothing else leaves",
    )


def test_an_install_from_before_the_ledger_asks_to_delete_its_current_id(
    tool: Tool, receiver: Receiver, reliability: Any
) -> None:
    endpoint = receiver.url("/v1")
    sent = send_one_day(tool, endpoint, DAY_2)
    (tool.store_dir / "sent-ids.json").unlink()  # as a version without the ledger left it
    result = tool.run("telemetry", "reset", env=on(DAY_2, endpoint))
    assert result.returncode == 0, result
    assert "asked to delete" in result.stdout, result
    assert deletions(receiver) == [sent]
    reliability.record(
        area="Network",
        fault="an install upgraded from a version without sent-ids.json (send.lock present)",
        cases=1,
        outcome="reset asks to delete the config's install id",
    )


# -- 4. what leaves the machine: every header and field, per back end ------------------

# Headers every request carries; `content-encoding: gzip` is added for bodies of 1 KiB or more.
COMMON_HEADERS = {
    "host",
    "accept",
    "accept-encoding",
    "connection",
    "user-agent",
    "content-length",
    "content-type",
}
OPTIONAL_HEADERS = {"content-encoding"}
ENVELOPE = {
    "schema_version",
    "tool",
    "tool_version",
    "library_version",
    "python_version",
    "os",
    "os_release",
    "arch",
    "install_id",
}
RECORD = {
    "day",
    "event",
    "outcome",
    "error_class",
    "count",
    "duration_ms_sum",
    "duration_ms_min",
    "duration_ms_max",
    "duration_ms_buckets",
}
COMMAND_PROPERTIES = {"command", "flags"}  # a command record's properties (no signal is on here)
POSTHOG_PRIVACY = {"$process_person_profile", "$geoip_disable", "$lib"}
ALLOWED: dict[tuple[str, str], tuple[set[str], set[str]]] = {
    # (back end, request) -> (headers beyond COMMON_HEADERS, JSON field paths)
    ("http", "batch"): (
        {"idempotency-key"},
        {"format", "version", "idempotency_key", "day"}
        | {f"envelope.{name}" for name in ENVELOPE}
        | {f"records[].{name}" for name in RECORD}
        | {f"records[].properties.{name}" for name in COMMAND_PROPERTIES},
    ),
    ("http", "deletion"): ({"idempotency-key"}, {"format", "version", "install_id"}),
    ("posthog", "batch"): (
        set(),
        {"api_key", "historical_migration", "sent_at"}
        | {f"batch[].{name}" for name in ("event", "distinct_id", "timestamp", "uuid")}
        | {
            f"batch[].properties.{name}"
            # The record's properties flattened to the top; the event's name says "event".
            for name in (
                RECORD | COMMAND_PROPERTIES | ENVELOPE | POSTHOG_PRIVACY | {"$lib_version"}
            )
            - {"install_id", "event"}
        },
    ),
    ("posthog", "deletion"): (
        set(),
        {"api_key", "historical_migration", "sent_at"}
        | {f"batch[].{name}" for name in ("event", "distinct_id", "timestamp", "uuid")}
        | {f"batch[].properties.{name}" for name in POSTHOG_PRIVACY},
    ),
}
OTLP_METRIC_POINT = {"attributes[]", "startTimeUnixNano", "timeUnixNano"}
OTLP_SCOPE = {"scope.name", "scope.version"}
ALLOWED_OTLP: dict[str, tuple[set[str], set[str]]] = {
    # request -> (JSON field paths, attribute keys); attribute values are checked below
    "batch": (
        {"resourceMetrics[].resource.attributes[]"}
        | {f"resourceMetrics[].scopeMetrics[].{name}" for name in OTLP_SCOPE}
        | {
            f"resourceMetrics[].scopeMetrics[].metrics[].{name}"
            for name in ("name", "description", "unit")
        }
        | {
            f"resourceMetrics[].scopeMetrics[].metrics[].sum.{name}"
            for name in ("aggregationTemporality", "isMonotonic")
        }
        | {
            f"resourceMetrics[].scopeMetrics[].metrics[].sum.dataPoints[].{name}"
            for name in OTLP_METRIC_POINT | {"asInt"}
        }
        | {"resourceMetrics[].scopeMetrics[].metrics[].histogram.aggregationTemporality"}
        | {
            f"resourceMetrics[].scopeMetrics[].metrics[].histogram.dataPoints[].{name}"
            for name in OTLP_METRIC_POINT
            | {"count", "sum", "bucketCounts", "explicitBounds", "min", "max"}
        },
        {
            "service.name",
            "service.version",
            "telemetry.sdk.name",
            "telemetry.sdk.language",
            "telemetry.sdk.version",
            "os.type",
            "os.version",
            "host.arch",
            "process.runtime.name",
            "process.runtime.version",
            "typer_telemetry.schema_version",
            "typer_telemetry.install_id",
            "cli.command",
            "cli.outcome",
            "cli.error_class",
            "cli.flags",
        },
    ),
    "deletion": (
        {"resourceLogs[].resource.attributes[]"}
        | {f"resourceLogs[].scopeLogs[].{name}" for name in OTLP_SCOPE}
        | {
            f"resourceLogs[].scopeLogs[].logRecords[].{name}"
            for name in (
                "timeUnixNano",
                "observedTimeUnixNano",
                "severityNumber",
                "severityText",
                "body.stringValue",
                "attributes[]",
            )
        },
        {
            "service.name",
            "telemetry.sdk.name",
            "telemetry.sdk.version",
            "typer_telemetry.event",
            "typer_telemetry.install_id",
        },
    ),
}


def field_paths(value: object, prefix: str = "") -> set[str]:
    """Every field of a JSON document as a dotted path; lists of objects as `[]`, OTLP attributes as leaves."""
    if isinstance(value, dict):
        paths: set[str] = set()
        for key, item in value.items():
            paths |= field_paths(item, f"{prefix}.{key}" if prefix else key)
        return paths
    if isinstance(value, list):
        if prefix.endswith("attributes"):
            return {f"{prefix}[]"}
        paths = set()
        for item in value:
            if isinstance(item, (dict, list)):
                paths |= field_paths(item, f"{prefix}[]")
        return paths or {prefix}  # a list of plain values is one field
    return {prefix}


def attribute_keys(value: object) -> set[str]:
    if isinstance(value, dict):
        keys: set[str] = set()
        for name, item in value.items():
            if name == "attributes" and isinstance(item, list):
                keys |= {attribute["key"] for attribute in item}
            else:
                keys |= attribute_keys(item)
        return keys
    if isinstance(value, list):
        return set().union(*(attribute_keys(item) for item in value)) if value else set()
    return set()


def capture(kind: str, home: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Send one batch and one deletion through the back end `kind`; return the two requests."""
    from typer_telemetry import Telemetry
    from typer_telemetry.backends import OTLPBackend, PostHogBackend

    enter_clean_environment(monkeypatch, home)
    if kind == "http":
        telemetry = Telemetry("leave-tool", version="3.1", endpoint=receiver.url("/v1"))
    elif kind == "posthog":
        backend = PostHogBackend("phc_project_key", host=receiver.url("/ph"))
        telemetry = Telemetry("leave-tool", version="3.1", backend=backend)
    else:  # an OTLPBackend built as before service_name existed
        telemetry = Telemetry(
            "leave-tool", version="3.1", backend=OTLPBackend(receiver.url("/otlp"))
        )
    assert flushed(telemetry, DAY_2).days_sent == ("2026-03-10",)
    old_id, _ = telemetry.reset()
    if kind == "otlp":  # a fresh process: the back end never saw a batch
        fresh = OTLPBackend(receiver.url("/otlp"))
        telemetry.settings = telemetry.settings.replace(backend=fresh)
    assert request_deletions(telemetry.settings, timeout=10).deletions_sent == (old_id,)
    batch, deletion = receiver.wait_for(2)
    return batch, deletion, old_id


@pytest.mark.parametrize("kind", ["http", "posthog", "otlp"])
def test_what_leaves_the_machine_is_exactly_the_documented_headers_and_fields(
    kind: str,
    home: Path,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    reliability: Any,
) -> None:
    from typer_telemetry import __version__

    batch, deletion, old_id = capture(kind, home, receiver, monkeypatch)
    for request, which in ((batch, "batch"), (deletion, "deletion")):
        assert isinstance(request, ReceivedRequest)
        extra_headers = ALLOWED[(kind, which)][0] if kind != "otlp" else set()
        headers = set(request.headers)
        assert COMMON_HEADERS | extra_headers <= headers, (which, headers)
        assert headers - COMMON_HEADERS - extra_headers <= OPTIONAL_HEADERS, (which, headers)
        assert request.headers["user-agent"] == f"typer-telemetry/{__version__}"
        assert request.headers["accept-encoding"] == "identity"
        document = request.json()
        if kind == "otlp":
            paths, keys = ALLOWED_OTLP[which]
            assert field_paths(document) == paths, (which, field_paths(document) ^ paths)
            assert attribute_keys(document) == keys, (which, attribute_keys(document) ^ keys)
        else:
            assert field_paths(document) == ALLOWED[(kind, which)][1], (
                which,
                field_paths(document) ^ ALLOWED[(kind, which)][1],
            )
    text = batch.content.decode()
    release = json.loads(text)
    if kind == "http":
        assert release["envelope"]["os_release"] == os_release_of_this_machine()
        assert deletion.json()["install_id"] == old_id
    elif kind == "posthog":
        for document in (release, deletion.json()):
            assert "." not in document["sent_at"]  # to the whole second
        assert deletion.json()["batch"][0]["timestamp"].endswith("+00:00")
        assert "." not in deletion.json()["batch"][0]["timestamp"]
        [event] = release["batch"]
        assert event["properties"]["os_release"] == os_release_of_this_machine()
    else:
        resource = release["resourceMetrics"][0]["resource"]["attributes"]
        assert {"key": "os.version", "value": {"stringValue": os_release_of_this_machine()}} in (
            resource
        )
        logs = deletion.json()["resourceLogs"][0]
        service = [a for a in logs["resource"]["attributes"] if a["key"] == "service.name"]
        assert service == [{"key": "service.name", "value": {"stringValue": "leave-tool"}}]
        assert int(logs["scopeLogs"][0]["logRecords"][0]["timeUnixNano"]) % 10**9 == 0
    reliability.record(
        area="Network",
        fault=f"{kind} back end: every header and JSON field of a batch and a deletion request "
        "checked against the documented allowlist",
        cases=2,
        outcome="nothing outside the allowlist; one User-Agent (typer-telemetry/<version>); "
        "os_release reduced to its leading version; times to the whole second"
        + ("; the deletion names the tool as service.name" if kind == "otlp" else ""),
    )


def os_release_of_this_machine() -> str:
    import platform
    import re

    found = re.search(r"[0-9]+(?:\.[0-9]+){0,2}", platform.release())
    return found.group() if found else "unknown"


@pytest.mark.parametrize(
    ("release", "sent"),
    [
        ("6.1.0-18-amd64", "6.1.0"),
        ("5.15.153.1-microsoft-standard-WSL2", "5.15.153"),
        ("6.8.0-1015-aws", "6.8.0"),
        ("23.4.0", "23.4.0"),
        ("10", "10"),
        ("4.19.0+mycorp-build.host42", "4.19.0"),
        ("", "unknown"),
        ("generic", "unknown"),
    ],
)
def test_os_release_is_reduced_to_its_leading_numeric_version(release: str, sent: str) -> None:
    from typer_telemetry._checks import SchemaError
    from typer_telemetry._delivery import os_release_version
    from typer_telemetry._schema import check_envelope

    assert os_release_version(release) == sent
    envelope = {
        "schema_version": 2,
        "tool": "t",
        "tool_version": "1",
        "library_version": "0.1.0",
        "python_version": "3.12.4",
        "os": "Linux",
        "os_release": sent,
        "arch": "x86_64",
        "install_id": "83db9eca-ab55-4afa-8904-7a018b0f3852",
    }
    check_envelope(envelope)  # the reduced release passes the allowlist
    with pytest.raises(SchemaError):  # a full kernel release never passes the allowlist
        check_envelope({**envelope, "os_release": "6.1.0-18-amd64"})


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("127.1", True),  # legacy spellings the resolver accepts
        ("2130706433", True),
        ("0x7f.1", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("api.localhost", True),
        ("128.0.0.1", False),
        ("10.0.0.1", False),
        ("::2", False),
        ("localhost.example.com", False),
        ("telemetry.example.test", False),
    ],
)
def test_which_hosts_count_as_this_machine_and_skip_every_proxy(
    host: str, loopback: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer_telemetry.backends._http import is_loopback_host, proxy_for

    no_proxy_settings(monkeypatch)
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    assert is_loopback_host(host) is loopback
    assert proxy_for("https", host) == (None if loopback else "http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("no_proxy", "host", "bypassed"),
    [
        ("example.test", "telemetry.example.test", True),
        (".example.test", "telemetry.example.test", True),
        ("*.example.test", "telemetry.example.test", True),
        ("telemetry.example.test:443", "telemetry.example.test", True),
        ("other.test, example.test", "telemetry.example.test", True),
        ("*", "telemetry.example.test", True),
        ("10.0.0.0/8", "10.1.2.3", True),
        ("10.0.0.0/8", "11.1.2.3", False),
        ("ample.test", "telemetry.example.test", False),
        ("telemetry.example.test.evil", "telemetry.example.test", False),
        ("", "telemetry.example.test", False),
    ],
)
def test_no_proxy_names_hosts_domains_ports_and_ranges(
    no_proxy: str, host: str, bypassed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer_telemetry.backends._http import proxy_for

    no_proxy_settings(monkeypatch)
    monkeypatch.setenv("https_proxy", "http://proxy.example.test:3128")
    monkeypatch.setenv("no_proxy", no_proxy)
    assert proxy_for("https", host) == (None if bypassed else "http://proxy.example.test:3128")
