"""Other users and the file system: files that are not ours alone are never trusted or written.

The tool runs as a real process (as root here); "another user" is uid 65534
(nobody): either files chowned to it, or files it makes itself through a
real process run under its uid (`subprocess.run(..., user=65534)`), in a
shared folder like /tmp. The contract each time: the tool is unaffected, a
folder or file another user owns or others may write to is refused (nothing
recorded, read, sent or written; not even a chmod, a lock or a temporary
file), and `telemetry status` names the path and why.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import OUTSIDE_TOOL, Tool, in_process_telemetry
from tests.hardening.conftest import Reliability, assert_unchanged_by_telemetry, install_id_of
from tests.hardening.test_local_files import (
    ConfinedTool,
    file_size_limit,
    without_file_privileges,
)
from tests.receiver import Receiver
from typer_telemetry import Telemetry
from typer_telemetry._files import write_private_file
from typer_telemetry._recording import record_command
from typer_telemetry.backends import FileBackend
from typer_telemetry.backends.base import DeliveryError

OTHER = 65534
AREA = "Other users"
NOW = "1773100800"  # 2026-03-10 12:00 UTC
DAY_2 = 1773100800 + 86400
DEBUG = {"OUTSIDE_TOOL_TELEMETRY_DEBUG": "1"}
MARK = "[outside-tool telemetry]"
NOTICE = "collects anonymous usage data"
PLANTED_ID = "11111111-1111-4111-8111-111111111111"
PLANTED = f'enabled = true\ninstall_id = "{PLANTED_ID}"\nnotice_shown = true\n'


def snapshot(folder: Path) -> dict[str, tuple[bytes | None, int, int]]:
    """Every entry below `folder` (itself included): content, mode, owner."""
    found = {}
    for path in [folder, *sorted(folder.rglob("*"))]:
        info = path.lstat()
        content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
        found[str(path.relative_to(folder))] = (content, info.st_mode, info.st_uid)
    return found


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder every user may write to, like /tmp (sticky, 1777), outside root's own tmp."""
    folder = Path(tempfile.mkdtemp(prefix="shared-", dir="/tmp"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def as_other_user(script: str, cwd: Path) -> None:
    """Run a shell script as the other user (a real second user, not a chown)."""
    result = subprocess.run(
        ["/bin/sh", "-c", script],
        cwd=cwd,
        user=OTHER,
        group=OTHER,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def make_tool(home: Path, **env: str) -> Tool:
    return Tool(OUTSIDE_TOOL, home, env={"TOOL_NOW": NOW, **env})


def assert_refused(tool: Tool, path: Path, problem: str, role: str) -> dict[str, object]:
    """Status says off, from the unsafe files row, naming the path and the problem."""
    report = tool.status()
    assert report["enabled"] is False
    assert report["source"] == "unsafe_files"
    assert f"the {role} {path} {problem}" in str(report["reason"]), report["reason"]
    text = tool.run("telemetry", "status")
    assert text.returncode == 0, text.stderr
    assert "is owned by another user" in text.stdout or "writable by other" in text.stdout
    return report


def run_refused(tool: Tool, *args: str) -> list[str]:
    """A run of the tool, unaffected, that explains under DEBUG why nothing was recorded."""
    result = assert_unchanged_by_telemetry(
        tool, *(args or ("hello", "x")), env=DEBUG, debug_allowed=True
    )
    assert NOTICE not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith(MARK)]
    assert any("not recording" in line for line in lines), lines
    return lines


# -- the config folder and file ------------------------------------------------------------


def test_a_config_folder_another_user_made_with_a_planted_id_is_never_trusted_nor_written(
    home: Path, shared: Path, reliability: Reliability
) -> None:
    # The other user, for real, makes <XDG_CONFIG_HOME>/outside-tool with a
    # choice, an install id and "notice shown" of their choosing.
    as_other_user(
        f"mkdir outside-tool && printf '%s' '{PLANTED}' > outside-tool/telemetry.toml", shared
    )
    config_dir = shared / "outside-tool"
    assert config_dir.stat().st_uid == OTHER
    before = snapshot(config_dir)
    tool = make_tool(home, XDG_CONFIG_HOME=str(shared))

    run_refused(tool)
    assert tool.run("db", "migrate", "--force").returncode == 0
    # With the switch on as well: files that cannot be trusted win over it.
    switched = tool.run("hello", "y", env={"OUTSIDE_TOOL_TELEMETRY": "1"})
    assert NOTICE not in switched.stderr
    report = assert_refused(
        tool, config_dir, f"is owned by another user (uid {OTHER})", "config folder"
    )
    assert report["install_id"] is None  # the planted id is not even shown as ours
    assert report["pending"] == []
    assert tool.status({"OUTSIDE_TOOL_TELEMETRY": "1"})["source"] == "unsafe_files"
    # An opt-out in the environment still reports as itself.
    assert tool.status({"OUTSIDE_TOOL_TELEMETRY": "0"})["source"] == "env"
    assert not (tool.home / ".local/state/outside-tool/telemetry").exists()

    enable = tool.run("telemetry", "enable")
    assert enable.returncode == 1
    assert snapshot(config_dir) == before  # no chmod, no lock file, no temporary, no set-aside
    reliability.record(
        area=AREA,
        fault="config folder made by another user (a real second user, in a shared "
        "XDG_CONFIG_HOME) holding a planted install id, choice and notice_shown",
        cases=3,
        outcome="tool unaffected; telemetry off (status: the folder, its owner's uid); nothing "
        "recorded or sent, planted id never used; the folder is left exactly as it was",
    )


def test_the_planted_install_id_is_never_sent(
    home: Path, shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pending data of the user's own, then the config comes from a foreign folder: nothing leaves."""
    with Receiver() as receiver:
        telemetry = in_process_telemetry(
            monkeypatch, home, "planted", receiver.url("/v1"), now=float(NOW)
        )
        record_command(telemetry.settings, "hello", "success", "", (), 3.0)
        assert telemetry.status()["pending"]
        as_other_user(f"mkdir planted && printf '%s' '{PLANTED}' > planted/telemetry.toml", shared)
        # The next day, a run whose config folder is the other user's.
        monkeypatch.setenv("XDG_CONFIG_HOME", str(shared))
        telemetry = Telemetry("planted", version="1.0", endpoint=receiver.url("/v1"))
        telemetry.settings = telemetry.settings.replace(clock=lambda: float(DAY_2))
        assert telemetry.status()["pending"]  # the user's own data is still there
        report = telemetry.flush(timeout=5)
        assert report.days_sent == ()
        assert "owned by another user" in str(report.skipped)
        assert install_id_of(telemetry) is None
        assert receiver.requests == []


@pytest.mark.parametrize(
    ("what", "mode", "owner", "problem"),
    [
        ("config file of another user in our folder", 0o600, OTHER, "is owned by another user"),
        ("world-writable config file", 0o666, None, "is writable by other users (mode 0666)"),
        ("group-writable config file", 0o620, None, "is writable by other users (mode 0620)"),
    ],
)
def test_a_config_file_not_ours_alone_is_refused_and_left_as_it_is(
    home: Path,
    what: str,
    mode: int,
    owner: int | None,
    problem: str,
    reliability: Reliability,
) -> None:
    tool = make_tool(home)
    assert tool.run("hello", "first").returncode == 0  # our own folder, config and data
    config = tool.config_dir / "telemetry.toml"
    config.write_text(PLANTED)
    config.chmod(mode)
    if owner is not None:
        os.chown(config, owner, owner)
    elif mode & 0o020:
        os.chown(config, -1, OTHER)  # a group other users are in
    pending = tool.status()["pending"]
    before = snapshot(tool.config_dir)

    run_refused(tool)
    report = assert_refused(tool, config, problem, "config file")
    assert report["install_id"] is None
    assert report["pending"] == pending  # nothing added
    if mode & 0o022:
        assert f"`chmod 600 {config}` fixes it" in str(report["reason"])
    assert tool.run("telemetry", "enable").returncode == 1
    assert snapshot(tool.config_dir) == before
    reliability.record(
        area=AREA,
        fault=what,
        cases=1,
        outcome="tool unaffected; telemetry off, status names the file and the fix; the file "
        "is neither read nor changed",
        lost="the invocations run meanwhile",
    )


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777])
def test_a_config_folder_others_may_write_to_is_refused_and_not_chmodded(
    home: Path, mode: int, reliability: Reliability
) -> None:
    tool = make_tool(home)
    assert tool.run("hello", "first").returncode == 0
    tool.config_dir.chmod(mode)
    os.chown(tool.config_dir, -1, OTHER)  # a group other users are in
    before = snapshot(tool.config_dir)

    run_refused(tool)
    shown = f"{stat.S_IMODE(mode):04o}"
    report = assert_refused(
        tool, tool.config_dir, f"is writable by other users (mode {shown})", "config folder"
    )
    assert f"`chmod 700 {tool.config_dir}` fixes it" in str(report["reason"])
    disable = tool.run("telemetry", "disable")
    assert disable.returncode == 1  # the choice cannot be stored there
    assert snapshot(tool.config_dir) == before
    # The fix the message gives works.
    tool.config_dir.chmod(0o700)
    assert tool.status()["source"] == "default"
    reliability.record(
        area=AREA,
        fault=f"config folder of ours writable by others (mode {shown})",
        cases=1,
        outcome="tool unaffected; telemetry off, status names the folder and `chmod 700`; the "
        "mode is not changed behind the user's back",
        lost="the invocations run meanwhile",
    )


def test_group_write_is_accepted_when_the_group_is_the_users_own_private_group(
    home: Path, reliability: Reliability
) -> None:
    import grp
    import pwd

    user = pwd.getpwuid(os.geteuid()).pw_name
    own = grp.getgrgid(os.getegid())
    if own.gr_name != user or set(own.gr_mem) - {user}:
        pytest.skip("this user has no private group")
    tool = make_tool(home)
    assert tool.run("hello", "first").returncode == 0
    # What a tool that makes its own folder under umask 002 leaves (Debian, Ubuntu, Fedora).
    tool.config_dir.chmod(0o775)
    os.chown(tool.config_dir, -1, os.getegid())
    assert tool.run("hello", "second").returncode == 0
    report = tool.status()
    assert report["source"] == "default"
    assert sum(int(record["count"]) for record in report["pending"]) == 2  # type: ignore[union-attr,call-overload]
    reliability.record(
        area=AREA,
        fault="config folder writable by the user's own private group (umask 002)",
        cases=1,
        outcome="accepted: that group holds only the user; recording goes on",
    )


# -- the store folder and the journal ---------------------------------------------------------


@pytest.mark.parametrize(
    "case", ["store folder of another user", "0777 store folder, 0666 journal", "0666 journal"]
)
def test_a_store_not_ours_alone_gets_nothing_appended_and_nothing_deleted(
    home: Path, case: str, reliability: Reliability
) -> None:
    tool = make_tool(home)
    assert tool.run("hello", "first").returncode == 0
    store = tool.store_dir
    journal = store / "journal.log"
    assert journal.stat().st_size > 0
    if case == "store folder of another user":
        for path in (store, *store.iterdir()):
            os.chown(path, OTHER, OTHER)
        target, role, problem = store, "data folder", f"is owned by another user (uid {OTHER})"
    elif case == "0777 store folder, 0666 journal":
        store.chmod(0o777)
        journal.chmod(0o666)
        target, role, problem = store, "data folder", "is writable by other users (mode 0777)"
    else:
        journal.chmod(0o666)
        target, role, problem = journal, "data file", "is writable by other users (mode 0666)"
    before = snapshot(store)

    run_refused(tool)
    assert tool.run("db", "migrate", "--force", env={"OUTSIDE_TOOL_TELEMETRY": "1"}).returncode == 0
    assert snapshot(store) == before  # nothing appended, created, folded or chmodded
    assert_refused(tool, target, problem, role)
    # disable stores the choice (exit 0) and says the data there was left alone.
    disable = tool.run("telemetry", "disable")
    assert disable.returncode == 0, disable.stderr
    if target == store:
        assert "was not deleted" in disable.stderr
        assert snapshot(store) == before
    if target == store:  # still: the unsafe files row comes before the stored choice
        assert tool.status()["source"] == "unsafe_files"
    else:  # the journal was ours: deleted with the rest of the data
        assert tool.status()["source"] == "config"
        assert not journal.exists()
    reliability.record(
        area=AREA,
        fault=case,
        cases=1,
        outcome="tool unaffected; nothing appended to, created in or deleted from it; "
        "telemetry off, status names the path",
        lost="the invocations run meanwhile",
    )


def test_an_empty_store_folder_made_by_another_user_gets_no_file_of_ours(
    home: Path, shared: Path, reliability: Reliability
) -> None:
    as_other_user("mkdir -m 0777 -p outside-tool/telemetry", shared)
    store = shared / "outside-tool" / "telemetry"
    tool = make_tool(home, XDG_STATE_HOME=str(shared))
    run_refused(tool)
    assert list(store.iterdir()) == []
    assert_refused(tool, store, f"is owned by another user (uid {OTHER})", "data folder")
    reliability.record(
        area=AREA,
        fault="store folder pre-created by another user (a real second user) in a shared "
        "XDG_STATE_HOME",
        cases=1,
        outcome="tool unaffected; no journal, lock or temporary file created in it; "
        "telemetry off, status names the folder",
        lost="the invocations run meanwhile",
    )


def test_shared_helpers_refuse_a_folder_not_ours_alone(tmp_path: Path) -> None:
    """Every writer goes through these: nothing is written in a foreign or 0777 folder."""
    from typer_telemetry._files import locked_file, remove_leftover_temporaries
    from typer_telemetry._paths import (  # UnsafeFile: imported here, the module loads anywhere
        UnsafeFile,
        ensure_private_dir,
        read_small_file,
    )

    folder = tmp_path / "foreign"
    folder.mkdir(mode=0o700)
    (folder / "data.json").write_text("{}")
    (folder / ".data.json.99.tmp").write_text("left")
    os.chown(folder, OTHER, OTHER)
    before = snapshot(folder)
    for attempt in (
        lambda: ensure_private_dir(folder),
        lambda: write_private_file(folder / "data.json", b"[]"),
        lambda: read_small_file(folder / "data.json", 100),
        lambda: remove_leftover_temporaries(folder / "data.json"),
        lambda: locked_file(folder / "send.lock", timeout=0.1).__enter__(),
    ):
        with pytest.raises(UnsafeFile):
            attempt()
    assert snapshot(folder) == before


# -- the file back end -----------------------------------------------------------------------


def batch_line_count(path: Path) -> int:
    return len(path.read_bytes().splitlines())


@pytest.mark.parametrize("case", ["symlink", "another user's file", "named pipe"])
def test_the_file_back_end_refuses_what_is_not_a_regular_file_of_ours(
    tmp_path: Path, case: str, reliability: Reliability
) -> None:
    target = tmp_path / "sink.jsonl"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    if case == "symlink":
        target.symlink_to(victim)
    elif case == "another user's file":
        target.write_text("theirs\n")
        os.chown(target, OTHER, OTHER)
    else:
        os.mkfifo(target)
    finished = threading.Event()
    problems: list[BaseException] = []

    def deliver() -> None:
        try:
            FileBackend(target).request_deletion(PLANTED_ID, timeout=1)
        except BaseException as error:  # handed to the test thread
            problems.append(error)
        finished.set()

    worker = threading.Thread(target=deliver, daemon=True)
    worker.start()
    if case == "named pipe" and not finished.wait(5):
        # Hung on the pipe: open a reader so that the thread can end, then fail.
        os.close(os.open(target, os.O_RDONLY | os.O_NONBLOCK))
        pytest.fail("the file back end blocked on a named pipe")
    assert finished.wait(30)
    assert len(problems) == 1, problems
    assert isinstance(problems[0], DeliveryError), problems
    assert victim.read_text() == "precious\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    if case == "another user's file":
        assert target.read_text() == "theirs\n"
    reliability.record(
        area=AREA,
        fault=f"FileBackend path: {case}",
        cases=1,
        outcome="refused with DeliveryError at once (never blocks); nothing written through a "
        "link or to another user's file; the data stays pending",
    )


def test_the_file_back_end_creates_0600_and_tightens_a_wider_file_of_ours(tmp_path: Path) -> None:
    fresh = tmp_path / "new.jsonl"
    FileBackend(fresh).request_deletion(PLANTED_ID, timeout=1)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    wide = tmp_path / "wide.jsonl"
    wide.write_text("")
    wide.chmod(0o644)
    FileBackend(wide).request_deletion(PLANTED_ID, timeout=1)
    assert stat.S_IMODE(wide.stat().st_mode) == 0o600
    assert json.loads(wide.read_text()) == {"kind": "deletion", "install_id": PLANTED_ID}


# -- disable and reset delete a killed writer's temporaries ------------------------------------


def killed_writer_temporary(store: Path) -> Path:
    """A real writer of rollup.json killed mid-write: its temporary holds the pending records."""
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "import typer_telemetry._files as files\n"
        "real_replace = os.replace\n"
        "def die(*args, **kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "os.replace = die\n"
        "files.write_private_file(Path(sys.argv[1]) / 'rollup.json', b'{\"records\": 1}')\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(store)], timeout=60)
    assert result.returncode == -signal.SIGKILL
    (temporary,) = store.glob(".rollup.json.*.tmp")
    return temporary


@pytest.mark.parametrize("command", ["disable", "reset"])
def test_a_killed_writers_rollup_temporary_is_deleted_by_disable_and_reset(
    home: Path, command: str, reliability: Reliability
) -> None:
    tool = make_tool(home)
    endpoint = {"OUTSIDE_TOOL_TELEMETRY_ENDPOINT": "http://127.0.0.1:9/v1"}
    assert tool.run("hello", "x").returncode == 0
    store = tool.store_dir
    temporary = killed_writer_temporary(store)
    # A deletion request still to be made, and the receiver's last Retry-After.
    (store / "deletions.json").write_text(json.dumps([str(uuid.uuid4())]))
    (store / "not-before.json").write_text('{"not_before": 1}')
    (store / "compact.lock").touch(mode=0o600)
    kept = {"deletions.json", "not-before.json", "compact.lock"}
    assert kept <= {path.name for path in store.iterdir()}

    result = tool.run("telemetry", command, env=endpoint)
    assert result.returncode == 0, result.stderr
    assert not temporary.exists()
    left = {path.name for path in store.iterdir()}
    assert not {"journal.log", "rollup.json"} & left
    assert not [name for name in left if name.endswith(".tmp")]
    assert kept <= left, left  # pending deletion requests and Retry-After survive
    reliability.record(
        area="Local files",
        fault=f"a killed writer's .rollup.json.<pid>.tmp (all pending records) at `{command}`",
        cases=1,
        outcome="deleted with the rest of the usage data; deletion requests, Retry-After and "
        "locks kept",
    )


# -- disable when the choice cannot be stored --------------------------------------------------


def test_disable_deletes_the_data_first_even_when_the_choice_cannot_be_stored(
    home: Path, shared: Path, reliability: Reliability
) -> None:
    cases = 0
    # A read-only config folder of ours (root's file capabilities dropped in the child).
    tool = make_tool(home)
    assert tool.run("hello", "x").returncode == 0
    assert tool.pending()
    tool.config_dir.chmod(0o500)
    (tool.config_dir / "telemetry.toml").chmod(0o400)
    confined = ConfinedTool(tool.script, tool.home, tool.env, preexec=without_file_privileges)
    result = confined.run("telemetry", "disable")
    assert result.returncode == 1
    assert "Pending telemetry data of outside-tool was deleted." in result.stderr
    assert "could not be stored" in result.stderr
    assert "Permission denied" in result.stderr
    assert "still on" in result.stderr
    assert "OUTSIDE_TOOL_TELEMETRY=0" in result.stderr
    assert result.stdout == ""
    assert confined.pending() == []
    assert not list(tool.store_dir.glob("*.log"))
    assert not (tool.store_dir / "rollup.json").exists()
    cases += 1

    # A full disk: the config file cannot be written.
    tool.config_dir.chmod(0o700)
    (tool.config_dir / "telemetry.toml").unlink()
    assert tool.run("hello", "x").returncode == 0
    full = ConfinedTool(tool.script, tool.home, tool.env, preexec=file_size_limit(0))
    result = full.run("telemetry", "disable")
    assert result.returncode == 1, result.stderr
    assert "was deleted" in result.stderr
    assert "could not be stored" in result.stderr
    assert tool.pending() == []
    cases += 1

    # A foreign config folder: not stored, but off all the same (the files are unsafe).
    other_home = home.parent / "other-home"
    other_home.mkdir()
    other = make_tool(other_home, XDG_CONFIG_HOME=str(shared))
    as_other_user("mkdir outside-tool", shared)
    result = other.run("telemetry", "disable")
    assert result.returncode == 1
    assert "off for now nonetheless, because the config folder" in result.stderr
    assert f"is owned by another user (uid {OTHER})" in result.stderr
    cases += 1
    reliability.record(
        area=AREA,
        fault="`telemetry disable` when the choice cannot be stored (read-only config folder, "
        "full disk, another user's config folder)",
        cases=cases,
        outcome="pending data deleted first; stderr says what was deleted, what could not be "
        "stored and why, and whether telemetry is off nonetheless; exit code 1",
    )
