"""Delivery: completed days go out on long-running runs only, once, to a real local receiver."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import OUTSIDE_TOOL, TOOLS, Tool, in_process_telemetry, run_burst
from tests.receiver import Receiver
from typer_telemetry._recording import record_command

DAY_1 = 1773144000  # 2026-03-10 12:00 UTC
DAY_2 = DAY_1 + 86400  # 2026-03-11
DAY_3 = DAY_2 + 86400  # 2026-03-12


def on(day: int, endpoint: str, **extra: str) -> dict[str, str]:
    return {
        "TOOL_NOW": str(day),
        "OUTSIDE_TOOL_TELEMETRY_ENDPOINT": endpoint,
        "TOOL_LONG_RUNNING_AFTER": "0.05",
        **extra,
    }


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def batches(receiver: Receiver) -> list[dict[str, object]]:
    return [r.json() for r in receiver if r.path == "/v1/batches"]


def pending_days(tool: Tool, env: dict[str, str]) -> list[str]:
    return sorted({str(record["day"]) for record in tool.pending(env)})


def long_running_run(
    tool: Tool, env: dict[str, str], until: object
) -> subprocess.CompletedProcess[str]:
    """Run `wait --until-stdin-closes` and end it once `until()` is true (polled on real state)."""
    process = tool.popen("wait", "--until-stdin-closes", env=env)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    deadline = time.monotonic() + 30
    while not until():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the condition never came true"
    stdout, stderr = process.communicate(input="", timeout=30)
    return subprocess.CompletedProcess(process.args, process.returncode, "ready\n" + stdout, stderr)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_short_runs_never_send_even_with_completed_days_pending(
    tool: Tool, receiver: Receiver
) -> None:
    endpoint = receiver.url("/v1")
    tool.run("hello", "x", env=on(DAY_1, endpoint))
    for _ in range(3):
        result = tool.run("hello", "y", env=on(DAY_2, endpoint))
        assert result.returncode == 0
    assert list(receiver) == []
    assert pending_days(tool, on(DAY_2, endpoint)) == ["2026-03-10", "2026-03-11"]


def test_a_long_running_run_sends_exactly_the_completed_days_once(
    tool: Tool, receiver: Receiver
) -> None:
    endpoint = receiver.url("/v1")
    tool.run("hello", "x", env=on(DAY_1, endpoint))
    tool.run("db", "migrate", "-f", env=on(DAY_1, endpoint))
    tool.run("hello", "x", env=on(DAY_2, endpoint))
    tool.run("hello", "x", env=on(DAY_3, endpoint))
    env = on(DAY_3, endpoint)

    result = long_running_run(tool, env, lambda: pending_days(tool, env) == ["2026-03-12"])
    assert result.returncode == 0
    assert result.stdout == "ready\nwaited\n"
    sent = batches(receiver)
    assert [batch["day"] for batch in sent] == ["2026-03-10", "2026-03-11"]
    first = sent[0]
    assert (first["format"], first["version"]) == ("typer-telemetry-batch", 2)
    records = first["records"]
    assert isinstance(records, list)
    assert sorted(
        (r["event"], r["properties"]["command"], r["properties"]["flags"], r["count"])
        for r in records
    ) == [
        ("command", "db migrate", ["--force"], 1),
        ("command", "hello", [], 1),
    ]
    envelope = first["envelope"]
    assert isinstance(envelope, dict)
    assert (envelope["tool"], envelope["tool_version"]) == ("outside-tool", "2.0.1")
    assert envelope["install_id"] == tool.status(env)["install_id"]
    headers = [r.headers for r in receiver if r.path == "/v1/batches"]
    assert [h["idempotency-key"] for h in headers] == [b["idempotency_key"] for b in sent]

    # Nothing is sent twice: a second long-running run finds nothing completed.
    long_running_run(tool, env, lambda: True)
    assert len(batches(receiver)) == 2


def test_a_command_marked_long_running_sends_at_once(tool: Tool, receiver: Receiver) -> None:
    endpoint = receiver.url("/v1")
    tool.run("hello", "x", env=on(DAY_1, endpoint))
    env = on(DAY_2, endpoint, TOOL_LONG_RUNNING_AFTER="3600")
    process = tool.popen("serve", env=env)
    assert process.stdout is not None
    assert process.stdout.readline() == "serving\n"
    receiver.wait_for(1)
    process.communicate(input="", timeout=30)
    assert [batch["day"] for batch in batches(receiver)] == ["2026-03-10"]


def send_to_a_hung_endpoint(
    tool: Tool, receiver: Receiver
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """A day pending, then a long-running run whose send is under way and never answered."""
    endpoint = receiver.url("/v1")
    tool.run("hello", "x", env=on(DAY_1, endpoint))
    receiver.respond(hang=True)
    env = on(DAY_2, endpoint)
    process = tool.popen("wait", "--until-stdin-closes", env=env)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    receiver.wait_for(1)
    return process, env


def test_a_hung_endpoint_does_not_hold_up_the_exit_and_data_goes_out_later(
    tool: Tool, receiver: Receiver, tmp_path: Path
) -> None:
    census = tmp_path / "threads"
    tool.env["TOOL_THREAD_CENSUS"] = str(census)
    process, env = send_to_a_hung_endpoint(tool, receiver)
    started = time.monotonic()
    process.communicate(input="", timeout=30)
    exit_seconds = time.monotonic() - started
    assert process.returncode == 0
    # The process ended while its request was still unanswered (it did not wait
    # for the 10 s request timeout). The precise exit delay is measured in bench/.
    assert exit_seconds < 5
    # The exchange was cut, not left running: no thread of ours lived on into
    # the interpreter's finalization, where a waking daemon thread can crash it.
    assert census.read_text().splitlines()[-1] == "exit 1"
    assert pending_days(tool, env) == ["2026-03-10", "2026-03-11"]

    receiver.respond()
    long_running_run(tool, env, lambda: pending_days(tool, env) == ["2026-03-11"])
    accepted = [r for r in receiver if r.path == "/v1/batches"]
    assert len(accepted) == 2  # the hung one, then the accepted one
    assert accepted[0].json()["idempotency_key"] == accepted[1].json()["idempotency_key"]


@pytest.mark.parametrize(
    "failure",
    ["500", "429", "garbage", "not-acknowledged", "reset", "refused"],
)
def test_a_failed_send_keeps_the_data_pending(tool: Tool, receiver: Receiver, failure: str) -> None:
    endpoint = receiver.url("/v1")
    if failure == "refused":
        endpoint = f"http://127.0.0.1:{free_port()}/v1"
    tool.run("hello", "x", env=on(DAY_1, endpoint))
    replies = {
        "500": {"status": 500},
        "429": {"status": 429, "body": b'{"error": "slow down"}'},
        "garbage": {"status": 200, "body": b"<html>proxy says hi</html>"},
        "not-acknowledged": {"status": 200, "body": b'{"accepted": false}'},
        "reset": {"reset": True},
    }
    receiver.respond(**replies.get(failure, {}))  # type: ignore[arg-type]
    env = on(DAY_2, endpoint, OUTSIDE_TOOL_TELEMETRY_DEBUG="0")
    if failure == "refused":  # nothing to see arrive: a run long enough to try
        process = tool.popen("wait", "--seconds", "0.6", env=env)
        process.communicate(timeout=30)
    else:  # the run lasts until the failing request has arrived
        process = tool.popen("wait", "--until-stdin-closes", env=env)
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        receiver.wait_for(1)
        process.communicate(input="", timeout=30)
    assert process.returncode == 0
    assert pending_days(tool, env) == ["2026-03-10", "2026-03-11"]

    receiver.respond()
    working = on(DAY_2, receiver.url("/v1"))
    long_running_run(tool, working, lambda: pending_days(tool, working) == ["2026-03-11"])
    assert [batch["day"] for batch in batches(receiver)][-1] == "2026-03-10"


@pytest.mark.slow
def test_sixteen_long_running_processes_deliver_every_record_exactly_once(
    tool: Tool, receiver: Receiver
) -> None:
    endpoint = receiver.url("/v1")
    day_1 = on(DAY_1, endpoint, TOOL_LONG_RUNNING_AFTER="3600")
    recorders = [run_burst(tool.home, 25, day_1) for _ in range(4)]
    for process in recorders:
        process.communicate(timeout=120)
        assert process.returncode == 0
    env = on(DAY_2, endpoint)
    processes = [tool.popen("wait", "--until-stdin-closes", env=env) for _ in range(16)]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
    deadline = time.monotonic() + 60
    while "2026-03-10" in pending_days(tool, env):
        assert time.monotonic() < deadline
    for process in processes:
        process.communicate(input="", timeout=30)
        assert process.returncode == 0
    sent = batches(receiver)
    assert len(sent) == 1
    records = sent[0]["records"]
    assert isinstance(records, list)
    assert sum(record["count"] for record in records) == 100


def sent_day_one(tool: Tool, endpoint: str) -> object:
    """Record day 1 and send it from a long-running run on day 2; return the install id."""
    tool.run("hello", "x", env=on(DAY_1, endpoint))
    later = on(DAY_2, endpoint)
    long_running_run(tool, later, lambda: "2026-03-10" not in pending_days(tool, later))
    return tool.status(later)["install_id"]


def test_reset_asks_the_receiver_to_delete_the_old_id(tool: Tool, receiver: Receiver) -> None:
    endpoint = receiver.url("/v1")
    env = on(DAY_2, endpoint)
    old_id = sent_day_one(tool, endpoint)
    result = tool.run("telemetry", "reset", env=env)
    assert result.returncode == 0
    assert "asked to delete" in result.stdout
    (request,) = [r for r in receiver if r.path == "/v1/deletions"]
    assert request.json() == {
        "format": "typer-telemetry-deletion",
        "version": 1,
        "install_id": old_id,
    }
    assert tool.status(env)["pending_deletions"] == []


def test_a_deletion_request_that_fails_is_retried_by_a_later_long_running_run(
    tool: Tool, receiver: Receiver
) -> None:
    down = on(DAY_2, f"http://127.0.0.1:{free_port()}/v1")
    old_id = sent_day_one(tool, receiver.url("/v1"))
    result = tool.run("telemetry", "reset", env=down)
    assert result.returncode == 0
    assert "made again by the next" in result.stderr
    status = tool.status(down)
    assert status["pending_deletions"] == [old_id]
    assert "Deletion of data sent under" in tool.run("telemetry", "status", env=down).stdout

    up = on(DAY_2, receiver.url("/v1"))
    long_running_run(tool, up, lambda: tool.status(up)["pending_deletions"] == [])
    deletions = [r.json() for r in receiver if r.path == "/v1/deletions"]
    assert [d["install_id"] for d in deletions] == [old_id]


def test_debug_prints_the_payload_instead_of_sending_and_keeps_it(
    tool: Tool, receiver: Receiver
) -> None:
    endpoint = receiver.url("/v1")
    tool.run("hello", "x", env=on(DAY_1, endpoint))
    env = on(DAY_2, endpoint, OUTSIDE_TOOL_TELEMETRY_DEBUG="1")
    process = tool.popen("wait", "--until-stdin-closes", env=env)
    assert process.stderr is not None
    shown_so_far = ""
    while "would send" not in shown_so_far:  # the run lasts until the payload is shown
        line = process.stderr.readline()
        assert line, "the payload was never shown"
        shown_so_far += line
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.close()
    # Read on through the same buffered streams (communicate() would skip what they hold).
    stdout, stderr = process.stdout.read(), process.stderr.read()
    assert process.wait(timeout=30) == 0
    assert stdout == "ready\nwaited\n"
    shown = (shown_so_far + stderr).split("would send:\n", 1)[1]
    document = json.JSONDecoder().raw_decode(shown)[0]
    assert document["day"] == "2026-03-10"
    assert list(receiver) == []
    assert pending_days(tool, env) == ["2026-03-10", "2026-03-11"]


def test_plain_http_to_another_host_is_refused(tool: Tool) -> None:
    env = on(DAY_1, "http://telemetry.example.com/v1", OUTSIDE_TOOL_TELEMETRY_DEBUG="0")
    tool.run("hello", "x", env=env)
    result = tool.run("wait", "--seconds", "0.5", env=on(DAY_2, "http://telemetry.example.com/v1"))
    assert result.returncode == 0
    assert pending_days(tool, env) == ["2026-03-10", "2026-03-11"]


def test_a_short_run_leaves_no_thread_of_ours_at_exit(
    tool: Tool, receiver: Receiver, tmp_path: Path
) -> None:
    census = tmp_path / "threads"
    env = on(DAY_1, receiver.url("/v1"), TOOL_THREAD_CENSUS=str(census))
    env["TOOL_LONG_RUNNING_AFTER"] = "3600"  # the trigger waits, and is ended with the run
    result = tool.run("hello", "x", env=env)
    assert (result.returncode, result.stdout) == (0, "Hello, x!\n")
    # Its thread was ended with the run, not left to wake during the exit.
    assert census.read_text() == "returned 1\nexit 1\n"
    assert list(receiver) == []


def test_an_exit_during_a_slow_back_end_send_waits_for_it_and_nothing_goes_twice(
    tool: Tool, tmp_path: Path
) -> None:
    sink = tmp_path / "telemetry.jsonl"
    census = tmp_path / "threads"
    env = {
        "TOOL_NOW": str(DAY_1),
        "TOOL_FILE_BACKEND": str(sink),
        "TOOL_SLOW_BACKEND": "1",
        "TOOL_LONG_RUNNING_AFTER": "0.05",
        "TOOL_THREAD_CENSUS": str(census),
    }
    tool.run("hello", "x", env=env)
    later = {**env, "TOOL_NOW": str(DAY_2)}
    sending = Path(f"{sink}.sending")
    # The command ends as soon as the back end has begun to send, which it ends only
    # once the main thread has ended: the send is under way as the tool exits.
    result = long_running_run(tool, later, sending.exists)
    assert (result.returncode, result.stdout) == (0, "ready\nwaited\n")
    assert census.read_text().splitlines()[-1] == "exit 1"
    # The exit waited for the send: it was written, and taken out of the store.
    (line,) = sink.read_text().splitlines()
    assert json.loads(line)["day"] == "2026-03-10"
    assert "2026-03-10" not in pending_days(tool, {**later, "TOOL_LONG_RUNNING_AFTER": "3600"})
    sending.unlink()
    long_running_run(tool, later, lambda: True)
    assert len(sink.read_text().splitlines()) == 1


def test_a_send_loads_httpx_without_its_command_line_client(
    tool: Tool, receiver: Receiver, tmp_path: Path
) -> None:
    endpoint = receiver.url("/v1")
    tool.run("hello", "x", env=on(DAY_1, endpoint))

    def modules_loaded(day: int, *, sends: bool) -> set[str]:
        modules = tmp_path / f"modules-{day}.txt"
        process = tool.popen(
            str(OUTSIDE_TOOL),
            "wait",
            "--until-stdin-closes",
            env=on(day, endpoint, MODULES_OUT=str(modules)),
        )
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        if sends:
            receiver.wait_for(1)
        process.communicate(input="", timeout=30)
        assert process.returncode == 0
        return set(modules.read_text().split())

    tool.script = TOOLS / "modules_loaded.py"
    try:
        # The same command on the same day has nothing to send: what the tool loads
        # anyway (an older Typer imports rich's tracebacks, and pygments, by itself).
        without_sending = modules_loaded(DAY_1, sends=False)
        assert list(receiver) == []
        sending = modules_loaded(DAY_2, sends=True)
    finally:
        tool.script = OUTSIDE_TOOL
    assert [batch["day"] for batch in batches(receiver)] == ["2026-03-10"]
    assert "httpx" in sending  # it did send with httpx
    assert "httpx" not in without_sending
    # httpx's own command (and with it click, rich's syntax and pygments) was not
    # imported: httpx would import them wherever click is installed.
    assert "httpx._main" not in sending
    added = {name.split(".")[0] for name in sending - without_sending}
    assert not added & {"click", "pygments", "rich"}, sorted(added)


def test_httpx_loaded_for_sending_still_runs_its_own_command_as_httpx_would(
    tmp_path: Path,
) -> None:
    def httpx_help(loading: str) -> subprocess.CompletedProcess[str]:
        script = (
            f"import sys\n{loading}\nimport httpx\nsys.argv = ['httpx', '--help']\nhttpx.main()\n"
        )
        return subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "100", "NO_COLOR": "1"},
        )

    as_httpx_loads_it = httpx_help("import httpx")
    for_sending = httpx_help(
        "from typer_telemetry.backends._http import load_httpx\n"
        "load_httpx()\n"
        "assert 'httpx._main' not in sys.modules"
    )
    # The same answer either way: the command's help where click is installed (the
    # compat sessions' older Typers bring it), httpx's own message where it is not.
    assert for_sending.returncode == as_httpx_loads_it.returncode, for_sending.stderr
    assert for_sending.stdout == as_httpx_loads_it.stdout
    assert "httpx" in for_sending.stdout


def test_an_httpx_that_needs_its_command_line_client_is_loaded_whole(tmp_path: Path) -> None:
    package = tmp_path / "httpx"
    package.mkdir()
    (package / "__init__.py").write_text("from ._main import main\n")  # no fallback
    (package / "_main.py").write_text("main = 'the command'\n")
    script = (
        "from typer_telemetry.backends._http import load_httpx\n"
        "load_httpx()\n"
        "import httpx\n"
        "print(httpx.main)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "the command\n"


def test_a_custom_back_end_receives_completed_days(tool: Tool, tmp_path: Path) -> None:
    sink = tmp_path / "telemetry.jsonl"
    env = {
        "TOOL_NOW": str(DAY_1),
        "TOOL_FILE_BACKEND": str(sink),
        "TOOL_LONG_RUNNING_AFTER": "0.05",
    }
    tool.run("db", "migrate", env=env)
    later = {**env, "TOOL_NOW": str(DAY_2)}
    assert tool.status(later)["backend"] == "FileBackend"
    long_running_run(tool, later, lambda: "2026-03-10" not in pending_days(tool, later))
    (line,) = sink.read_text().splitlines()
    document = json.loads(line)
    assert document["kind"] == "batch"
    assert document["day"] == "2026-03-10"
    assert [r["properties"]["command"] for r in document["records"]] == ["db migrate"]


def test_flush_sends_from_a_server_without_waiting_for_a_long_run(
    home: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    telemetry = in_process_telemetry(
        monkeypatch, home, "flush-tool", receiver.url("/v1"), now=DAY_1
    )
    record_command(telemetry.settings, "serve", "success", "", ("--port",), 12.0)
    assert telemetry.flush(timeout=5).days_sent == ()  # the day is not over yet
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_2))
    report = telemetry.flush(timeout=5)
    assert report.days_sent == ("2026-03-10",)
    assert report.error is None
    assert [batch["day"] for batch in batches(receiver)] == ["2026-03-10"]
    assert telemetry.status()["pending"] == []


def test_a_sender_killed_mid_send_releases_its_claim_at_once(
    tool: Tool, receiver: Receiver
) -> None:
    import signal

    process, env = send_to_a_hung_endpoint(tool, receiver)  # it holds the send claim
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)

    # No stale claim: the very next long-running run sends the day.
    receiver.respond()
    long_running_run(tool, env, lambda: "2026-03-10" not in pending_days(tool, env))
    sent = [r.json() for r in receiver if r.path == "/v1/batches"]
    assert [batch["day"] for batch in sent] == ["2026-03-10", "2026-03-10"]
    assert sent[0]["idempotency_key"] == sent[1]["idempotency_key"]


def test_temporary_files_of_killed_writers_are_cleaned_up_by_the_next_send(
    home: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    telemetry = in_process_telemetry(
        monkeypatch, home, "flush-tool", receiver.url("/v1"), now=DAY_1
    )
    record_command(telemetry.settings, "serve", "success", "", (), 12.0)
    store_dir = telemetry.settings.paths().store_dir
    # What a writer killed between creating its temporary file and renaming it leaves.
    leftovers = [store_dir / ".deletions.json.4242.tmp", store_dir / ".not-before.json.4243.tmp"]
    for leftover in leftovers:
        leftover.write_bytes(b'["9c1d2e3f-')
    telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_2))
    assert telemetry.flush(timeout=5).days_sent == ("2026-03-10",)
    assert [path for path in leftovers if path.exists()] == []
    assert telemetry.status()["pending_deletions"] == []
