"""`typer-telemetry-collector` as its operator runs it: forget by hand, its own telemetry off."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.collector.batches import batch, command_record, encoded, install_id, yesterday
from tests.collector.conftest import Collector, stored_rows
from tests.conftest import clean_environment

# The console script installed beside this Python (the extra's entry point).
COMMAND = str(Path(sys.executable).parent / "typer-telemetry-collector")


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args],
        env=clean_environment(home),
        capture_output=True,
        text=True,
        cwd=home,
        timeout=60,
    )


def test_forget_removes_one_install_and_says_how_many_records(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'telemetry.sqlite'}"
    collector = Collector(database, tmp_path).start()
    leaving, staying = install_id(), install_id()
    try:
        for install in (leaving, staying):
            records = [command_record(yesterday()), command_record(yesterday(), "ls")]
            body, headers = encoded(batch(install, records))
            assert collector.post("/v1/batches", body, headers).status == 200
    finally:
        collector.stop()
    forgotten = run(tmp_path, "forget", leaving, "--db", database)
    assert forgotten.returncode == 0, forgotten.stderr
    assert forgotten.stderr == "removed 2 records\n"
    assert forgotten.stdout == ""
    assert [row[5] for row in stored_rows(database)] == [staying, staying]
    refused = run(tmp_path, "forget", "not-an-id", "--db", database)
    assert refused.returncode == 2
    assert "random (version 4) UUID" in refused.stderr


def test_the_collectors_own_telemetry_is_off_until_its_operator_opts_in(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'telemetry.sqlite'}"
    assert run(tmp_path, "forget", install_id(), "--db", database).returncode == 0
    status = run(tmp_path, "telemetry", "status", "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["enabled"] is False, shown
    assert shown["pending"] == []
    assert not (tmp_path / ".local" / "state" / "typer-telemetry-collector").exists()


def test_serve_refuses_a_schema_file_that_is_not_a_tools_contract(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"format": "something else"}')
    served = run(tmp_path, "serve", "--db", str(tmp_path / "t.sqlite"), "--schema", str(wrong))
    assert served.returncode == 2
    assert "not a tool's telemetry schema" in served.stderr


def test_a_database_made_by_a_newer_collector_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE collector_meta (name TEXT PRIMARY KEY, value TEXT)")
        connection.execute("INSERT INTO collector_meta VALUES ('schema_version', '99')")
    for command in (["serve", "--db", str(path)], ["forget", install_id(), "--db", str(path)]):
        refused = run(tmp_path, *command)
        assert refused.returncode == 2, refused.stderr
        assert "made by a newer collector" in refused.stderr
        assert "Traceback" not in refused.stderr
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "records" not in tables
