"""The pytest plugin (typer_telemetry.testing), as a tool author's test suite meets it.

Inner sessions run with `pytester.runpytest_subprocess`, so the plugin loads
from its entry point exactly as in an author's project, in a fresh home with
CI and DO_NOT_TRACK removed: without the plugin they WOULD record, which the
control runs (`-p no:typer_telemetry`) show. The fixture's own tests run in
this session (the plugin is installed here too; pyproject.toml turns only
its session sandbox off).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import TOOLS
from tests.receiver import Receiver
from typer_telemetry._consent import CI_VARIABLES
from typer_telemetry.testing import TelemetryCapture

sys.path.insert(0, str(TOOLS))
import capture_tool as cli

pytest_plugins = ["pytester"]

Capture = Callable[..., TelemetryCapture]
NOTICE = "collects anonymous usage data"
CAPTURE_TOOL = TOOLS / "capture_tool.py"


def tree(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry below `folder`: its path, mode, size and mtime (what "untouched" means)."""
    return {
        str(path.relative_to(folder)): (info.st_mode, info.st_size, info.st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        for info in [path.lstat()]
    }


def fresh_user(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """This process's environment (inherited by inner sessions) as a user's on a fresh machine."""
    for name in list(os.environ):
        if (
            name in CI_VARIABLES
            or name == "DO_NOT_TRACK"
            or "TELEMETRY" in name
            or name.startswith(("XDG_", "PYTEST_"))
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")


# -- the session's sandbox: a tool author's suite that knows nothing of telemetry -------

INNER_APP = '''
"""An instrumented tool with an endpoint; its clock starts a day back."""
import os
import sys
import time

import typer

from typer_telemetry import Telemetry

app = typer.Typer()
telemetry = Telemetry("inner-tool", version="1.0", endpoint=os.environ["INNER_ENDPOINT"])
NOW = [time.time() - 86400]
telemetry.settings = telemetry.settings.replace(clock=lambda: NOW[0])
telemetry.instrument(app)


@app.command()
def hello(name: str, loud: bool = typer.Option(False, "--loud")) -> None:
    typer.echo(f"Hello {name}" + ("!" if loud else ""))


@app.command()
@telemetry.long_running
def sync() -> None:
    """Long-running: the send runs on a thread while this runs; wait until it is done."""
    today = time.strftime("%Y-%m-%d", time.gmtime(NOW[0]))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(
        record["day"] < today for record in telemetry.status()["pending"]
    ):
        time.sleep(0.02)
    typer.echo("synced")


if __name__ == "__main__":
    app()
'''

INNER_CONFTEST = """
import os
import sys

_log = open(os.environ["SOCKET_LOG"], "a", buffering=1)


def _audit(event, args):
    if event.startswith("socket."):
        _log.write(f"{event} {args!r}\\n")


sys.addaudithook(_audit)
"""

INNER_TESTS = """
import os
import subprocess
import sys
import time

from typer.testing import CliRunner

import inner_app

runner = CliRunner()


def test_a_day_of_invocations_then_a_long_running_one():
    with open(os.environ["SANDBOX_SEEN"], "w") as seen:
        seen.write(os.environ.get("TYPER_TELEMETRY_SANDBOX", ""))
    for number in range(199):
        arguments = ["hello", f"user{number}"] + (["--loud"] if number % 2 else [])
        result = runner.invoke(inner_app.app, arguments)
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"Hello user{number}")
    inner_app.NOW[0] = time.time()  # the day ends
    result = runner.invoke(inner_app.app, ["sync"])
    assert result.exit_code == 0, result.output


def test_the_tool_as_a_subprocess():
    result = subprocess.run(
        [sys.executable, inner_app.__file__, "hello", "sub"], capture_output=True, text=True
    )
    assert (result.returncode, result.stdout) == (0, "Hello sub\\n"), result.stderr
"""


@pytest.fixture
def author_suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., tuple[pytest.RunResult, Path, str, Receiver]]:
    """Run the inner suite in a fresh home against a real receiver; what it did."""
    pytester.makepyfile(inner_app=INNER_APP, conftest=INNER_CONFTEST, test_suite=INNER_TESTS)
    runs: list[Receiver] = []

    def run(
        *arguments: str, env: dict[str, str] | None = None
    ) -> tuple[pytest.RunResult, Path, str, Receiver]:
        number = len(runs)
        home = tmp_path / f"home-{number}"
        home.mkdir(mode=0o700)
        (home / ".profile").write_text("# the user's own file\n")
        temporary = tmp_path / f"tmp-{number}"
        temporary.mkdir()
        socket_log = tmp_path / f"sockets-{number}.log"
        socket_log.touch()
        receiver = Receiver().__enter__()
        runs.append(receiver)
        fresh_user(monkeypatch, home)
        monkeypatch.setenv("TMPDIR", str(temporary))
        monkeypatch.setenv("SOCKET_LOG", str(socket_log))
        monkeypatch.setenv("SANDBOX_SEEN", str(tmp_path / f"sandbox-{number}.txt"))
        monkeypatch.setenv("INNER_ENDPOINT", receiver.url())
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        before = tree(home)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *arguments)
        assert tree(temporary) == {}, "the session left its sandbox behind"
        home_changed = tree(home) != before
        return result, home if home_changed else Path(), socket_log.read_text(), receiver

    yield run
    for receiver in runs:
        receiver.__exit__()


def test_a_suite_of_200_cli_runner_invocations_leaves_the_home_untouched_and_opens_no_socket(
    author_suite: Callable[..., tuple[pytest.RunResult, Path, str, Receiver]], tmp_path: Path
) -> None:
    result, changed_home, sockets, receiver = author_suite()
    result.assert_outcomes(passed=2)
    assert changed_home == Path(), "the plugin let the suite write into the home"
    assert sockets == ""
    assert receiver.requests == []
    seen = (tmp_path / "sandbox-0.txt").read_text()
    assert seen.startswith(str(tmp_path / "tmp-0"))  # the session's own sandbox, gone after

    # Control: the same suite without the plugin records into the home and sends.
    result, changed_home, sockets, receiver = author_suite("-p", "no:typer_telemetry")
    result.assert_outcomes(passed=2)
    journal_or_rollup = [
        path.name for path in (changed_home / ".local" / "state" / "inner-tool").rglob("*")
    ]
    assert "rollup.json" in journal_or_rollup or "journal.log" in journal_or_rollup
    assert "socket.connect" in sockets
    (request,) = [request for request in receiver.requests if request.path.endswith("/batches")]
    records = request.json()["records"]
    assert sum(record["count"] for record in records) == 199
    assert (tmp_path / "sandbox-1.txt").read_text() == ""


def test_the_ini_option_turns_the_sessions_sandbox_off(
    author_suite: Callable[..., tuple[pytest.RunResult, Path, str, Receiver]],
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\ntyper_telemetry_sandbox = false\n")
    result, changed_home, _, _ = author_suite("-k", "subprocess")
    result.assert_outcomes(passed=1, deselected=1)
    assert (changed_home / ".local" / "state" / "inner-tool" / "telemetry").is_dir()


def test_an_outer_sandbox_is_kept_and_left_in_place(
    author_suite: Callable[..., tuple[pytest.RunResult, Path, str, Receiver]], tmp_path: Path
) -> None:
    outer = tmp_path / "outer-sandbox"
    outer.mkdir(mode=0o700)
    result, changed_home, sockets, _ = author_suite(
        "-k", "invocations", env={"TYPER_TELEMETRY_SANDBOX": str(outer)}
    )
    result.assert_outcomes(passed=1, deselected=1)
    assert changed_home == Path()
    assert sockets == ""
    assert (tmp_path / "sandbox-0.txt").read_text() == str(outer)
    assert outer.is_dir()


def test_under_xdist_the_workers_share_the_controllers_sandbox_and_nothing_leaks(
    author_suite: Callable[..., tuple[pytest.RunResult, Path, str, Receiver]], tmp_path: Path
) -> None:
    result, changed_home, _, receiver = author_suite("-n", "2")
    result.assert_outcomes(passed=2)
    assert changed_home == Path()
    assert receiver.requests == []
    assert (tmp_path / "sandbox-0.txt").read_text().startswith(str(tmp_path / "tmp-0"))


# -- the fixture, in process -------------------------------------------------------------


def test_the_capture_sees_exactly_what_the_cli_runner_runs_recorded(
    telemetry_capture: Capture, tmp_path: Path
) -> None:
    capture = telemetry_capture(cli.telemetry)
    runner = CliRunner()
    assert runner.invoke(cli.app, ["count", "a", "b"]).exit_code == 0
    assert runner.invoke(cli.app, ["count", "c"]).exit_code == 0
    assert runner.invoke(cli.app, ["count", "--help"]).exit_code == 0  # help is not recorded
    failed = runner.invoke(cli.app, ["ingest", "--source", str(tmp_path / "missing.csv")])
    assert failed.exit_code == 1
    commands = {
        (record.property("command"), record.property("flags"), record.outcome, record.count)
        for record in capture.records("command")
    }
    assert commands == {("count", (), "success", 2), ("ingest", ("--source",), "error", 1)}
    (ingest,) = capture.records("ingest_completed")
    assert (ingest.outcome, ingest.error_class, ingest.count) == ("error", "FileNotFoundError", 1)
    assert dict(ingest.properties) == {"source": "csv", "dry": False}
    assert len(capture.records()) == 3
    assert capture.dropped() == {}


def test_a_completed_day_is_one_batch_in_the_mock_back_end(
    telemetry_capture: Capture, tmp_path: Path
) -> None:
    capture = telemetry_capture(cli.telemetry)
    data = tmp_path / "rows.json"
    data.write_text("1\n" * 42)
    result = CliRunner().invoke(cli.app, ["ingest", "--source", str(data), "--dry-run"])
    assert result.exit_code == 0, result.output
    pending = capture.records()
    (batch,) = capture.send_completed_days()
    assert capture.report is not None
    assert capture.report.error is None
    assert (batch.envelope.tool, batch.envelope.tool_version) == ("inventory", "1.0.0")
    assert sorted(batch.records, key=repr) == sorted(pending, key=repr)
    (ingest,) = capture.sent_records("ingest_completed")
    assert dict(ingest.properties) == {"source": "json", "dry": True, "rows": "10-100"}
    assert capture.records() == []  # sent: no longer pending
    assert capture.send_completed_days() == []


def test_telemetry_disable_deletes_the_captured_data_and_stops_recording(
    telemetry_capture: Capture,
) -> None:
    capture = telemetry_capture(cli.telemetry)
    runner = CliRunner()
    runner.invoke(cli.app, ["count", "a"])
    assert capture.records()
    result = runner.invoke(cli.app, ["telemetry", "disable"])
    assert result.exit_code == 0, result.output
    assert capture.records() == []
    runner.invoke(cli.app, ["count", "a"])
    assert capture.records() == []
    assert capture.send_completed_days() == []
    assert capture.report is not None
    assert "disabled" in (capture.report.skipped or "")


def test_the_notice_is_kept_out_of_output_unless_asked_for(telemetry_capture: Capture) -> None:
    telemetry_capture(cli.telemetry)
    result = CliRunner().invoke(cli.app, ["count", "a"])
    assert NOTICE not in result.output
    assert result.output == "1\n"


def test_a_test_that_asks_for_the_notice_sees_it_on_its_first_run(
    telemetry_capture: Capture,
) -> None:
    capture = telemetry_capture(cli.telemetry, show_notice=True)
    runner = CliRunner()
    first, second = runner.invoke(cli.app, ["count", "a"]), runner.invoke(cli.app, ["count", "b"])
    assert NOTICE in first.output
    assert "inventory telemetry disable" in first.output
    assert NOTICE not in second.output
    (record,) = capture.records()
    assert record.count == 2


def test_a_refusing_back_end_keeps_the_day_pending(telemetry_capture: Capture) -> None:
    from typer_telemetry.backends import DeliveryError

    capture = telemetry_capture(cli.telemetry)
    CliRunner().invoke(cli.app, ["count", "a"])

    def refuse(batch: object) -> None:
        raise DeliveryError("the receiver is down")

    capture.backend.handler = refuse
    assert capture.send_completed_days() == []
    assert capture.report is not None
    assert capture.report.error == "the receiver is down"
    assert [record.count for record in capture.records()] == [1]


# -- the fixture's teardown, and two tests in a row ----------------------------------------

TEARDOWN_TESTS = """
import os
import sys

from typer.testing import CliRunner

sys.path.insert(0, {tools!r})
import capture_tool as cli

def environment():
    return {{k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}}


BEFORE = environment()
SETTINGS = cli.telemetry.settings


def test_first(telemetry_capture):
    capture = telemetry_capture(cli.telemetry)
    assert "TYPER_TELEMETRY_SANDBOX" not in os.environ
    assert os.environ["HOME"] == str(capture.home)
    assert cli.telemetry.settings.backend is capture.backend
    CliRunner().invoke(cli.app, ["count", "first"])
    assert len(capture.records()) == 1
    assert len(capture.send_completed_days()) == 1


def test_second(telemetry_capture):
    assert environment() == BEFORE
    assert cli.telemetry.settings.backend is SETTINGS.backend
    assert cli.telemetry.settings.clock is SETTINGS.clock
    capture = telemetry_capture(cli.telemetry)
    assert capture.records() == [] and capture.batches == ()
    CliRunner().invoke(cli.app, ["count", "second", "again"])
    (record,) = capture.records()
    assert record.count == 1


def test_third():
    assert environment() == BEFORE
    assert cli.telemetry.settings.backend is SETTINGS.backend
    assert cli.telemetry.settings.clock is SETTINGS.clock
"""


def test_teardown_restores_the_environment_and_settings_and_tests_do_not_see_each_other(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    fresh_user(monkeypatch, home)
    monkeypatch.setenv("CI", "true")  # the fixture removes it for its test, and puts it back
    monkeypatch.setenv("INVENTORY_TELEMETRY_DEBUG", "1")
    pytester.makepyfile(test_teardown=TEARDOWN_TESTS.format(tools=str(TOOLS)))
    before = tree(home)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert tree(home) == before


# -- the fixture with a subprocess -------------------------------------------------------


def test_a_subprocess_run_of_the_tool_is_recorded_in_the_capture(
    telemetry_capture: Capture,
) -> None:
    capture = telemetry_capture(cli.telemetry)
    result = subprocess.run(
        [sys.executable, str(CAPTURE_TOOL), "count", "x", "y"],
        env=capture.environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "2\n", "")
    (record,) = capture.records()
    assert (record.property("command"), record.count) == ("count", 1)


def test_a_long_running_subprocess_sends_into_the_captures_mock_back_end(
    telemetry_capture: Capture,
) -> None:
    capture = telemetry_capture(cli.telemetry)
    yesterday = str(time.time() - 86400)
    recorded = subprocess.run(
        [sys.executable, str(CAPTURE_TOOL), "count", "x"],
        env=capture.environment({"CAPTURE_TOOL_NOW": yesterday}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert recorded.returncode == 0, recorded.stderr
    syncing = subprocess.Popen(
        [sys.executable, str(CAPTURE_TOOL), "sync", "--until-stdin-closes"],
        env=capture.environment(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        (batch,) = capture.wait_for_batches(1, timeout=30)
    finally:
        output, errors = syncing.communicate("", timeout=30)
    assert (syncing.returncode, output) == (0, "synced\n"), errors
    ((record,),) = [batch.records]
    assert (record.property("command"), record.count) == ("count", 1)
    assert batch.envelope.tool == "inventory"
    # The sync itself is today's: still pending, in the same home.
    assert [record.property("command") for record in capture.records()] == ["sync"]


# -- the tool's TELEMETRY.md ----------------------------------------------------------------


def test_a_current_telemetry_md_passes_and_a_stale_one_fails_with_the_diff_and_the_fix(
    tmp_path: Path,
) -> None:
    from typer_telemetry._contract import telemetry_md
    from typer_telemetry.testing import assert_telemetry_md_current

    current = tmp_path / "TELEMETRY.md"
    current.write_text(telemetry_md(cli.telemetry), encoding="utf-8")
    assert_telemetry_md_current(cli.telemetry, current)

    stale = tmp_path / "STALE.md"
    stale.write_text(
        current.read_text(encoding="utf-8").replace("| `count` |", "| `count-old` |"),
        encoding="utf-8",
    )
    with pytest.raises(pytest.fail.Exception) as failure:
        assert_telemetry_md_current(cli.telemetry, stale)
    message = str(failure.value)
    assert "-| `count-old` |" in message
    assert "+| `count` |" in message
    assert f"python -m typer_telemetry docs capture_tool:telemetry > {stale}" in message

    with pytest.raises(pytest.fail.Exception, match="does not exist"):
        assert_telemetry_md_current(cli.telemetry, tmp_path / "missing.md")
