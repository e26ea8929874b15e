"""Real collectors for the collector's tests: `serve` as a subprocess, SQLite files, a real PostgreSQL.

PostgreSQL's server binaries are found on PATH, then in
/usr/lib/postgresql/*/bin; without them the tests that need them FAIL with
a message saying what to install (a skipped test would pass vacuously).
`initdb` refuses root, so the server runs as nobody (65534) in a folder it
owns, on a free port of 127.0.0.1, once per session.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# docs/reliability.md's rows, as the hardening suite reports them (`reliability.record`).
from tests.hardening.conftest import (  # noqa: F401  (a fixture and the hook it needs)
    pytest_runtest_makereport,
    reliability,
)

NOBODY = 65534
_databases = itertools.count()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Answer:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> object:
        return json.loads(self.body)


def post(url: str, body: bytes, headers: Mapping[str, str] | None = None) -> Answer:
    request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return Answer(
                reply.status, reply.read(), {k.lower(): v for k, v in reply.headers.items()}
            )
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read(), {k.lower(): v for k, v in error.headers.items()})


@dataclass
class Collector:
    """`typer-telemetry-collector serve` running as a real process on a free port."""

    db: str
    folder: Path
    args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.folder / f"collector-{self.port}.log"

    def url(self, path: str = "/v1") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Collector:
        command = [sys.executable, "-m", "typer_telemetry.collector", "serve", "--db", self.db]
        command += ["--port", str(self.port), *self.args]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the collector exited:\n{self.log.read_text()}")
            # The app is up, and so is the socket: with one worker, uvicorn binds it only
            # after the app's startup (the "running on" line); with more, the parent binds
            # it first and a worker's app then starts.
            started = self.log.read_text()
            if "Application startup complete" in started and "Uvicorn running on" in started:
                return self
            time.sleep(0.05)  # polling the log for the real condition: app and socket are up
        raise AssertionError(f"the collector did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def post(self, path: str, body: bytes, headers: Mapping[str, str] | None = None) -> Answer:
        return post(self.url(path), body, headers)


def find_postgres_binaries() -> Path:
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return Path(folder)
    pytest.fail(
        "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: install Debian's"
        " `postgresql` package (or put initdb and pg_ctl on PATH); the collector's PostgreSQL"
        " tests do not skip",
        pytrace=False,
    )


@dataclass
class Postgres:
    host: str
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://collector@{self.host}:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"collector_{os.getpid()}_{next(_databases)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}".encode())
        return self.url(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    binaries = find_postgres_binaries()
    folder = Path(tempfile.mkdtemp(prefix="collector-pg-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    for path in (folder, sockets):
        os.chown(path, NOBODY, NOBODY)
    as_nobody = {"user": NOBODY, "group": NOBODY, "cwd": folder, "capture_output": True}
    initdb = subprocess.run(
        [binaries / "initdb", "-D", data, "-U", "collector", "--auth=trust", "-E", "UTF8"],
        **as_nobody,  # type: ignore[call-overload]
    )
    assert initdb.returncode == 0, initdb.stderr.decode()
    port = free_port()
    options = f"-p {port} -k {sockets} -h 127.0.0.1 -c max_connections=200 -c fsync=off"
    started = subprocess.run(
        [
            binaries / "pg_ctl",
            "-D",
            data,
            "-o",
            options,
            "-l",
            folder / "server.log",
            "-w",
            "start",
        ],
        **as_nobody,  # type: ignore[call-overload]
    )
    assert started.returncode == 0, (folder / "server.log").read_text()
    try:
        yield Postgres("127.0.0.1", port)
    finally:
        subprocess.run(
            [binaries / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"],
            **as_nobody,  # type: ignore[call-overload]
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind the collector supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'telemetry.sqlite'}"
    postgres: Postgres = request.getfixturevalue("postgres")
    return postgres.new_database()


@pytest.fixture
def replicas(database: str, tmp_path: Path) -> Iterator[tuple[Collector, Collector]]:
    """Two collector processes on one database, as behind a load balancer (rate 5 an hour)."""
    running = [Collector(database, tmp_path, ("--rate", "5")) for _ in range(2)]
    try:
        first, second = (collector.start() for collector in running)
        yield first, second
    finally:
        for collector in running:
            collector.stop()


def stored_rows(database: str) -> list[tuple[object, ...]]:
    """Every row of the records table, read straight from the database."""
    query = "SELECT * FROM records ORDER BY day, idempotency_key, position"
    if database.startswith("sqlite:///"):
        with sqlite3.connect(database.removeprefix("sqlite:///")) as connection:
            return list(connection.execute(query))
    import psycopg

    with psycopg.connect(database) as connection:
        return list(connection.execute(query.encode()))


def stored_batches(database: str) -> int:
    query = "SELECT count(*) FROM batches"
    if database.startswith("sqlite:///"):
        with sqlite3.connect(database.removeprefix("sqlite:///")) as connection:
            return int(connection.execute(query).fetchone()[0])
    import psycopg

    with psycopg.connect(database) as connection:
        row = connection.execute(query.encode()).fetchone()
        assert row is not None
        return int(row[0])  # type: ignore[call-overload]


def published_schema(folder: Path, target: str, cwd: Path | None = None) -> Path:
    """The tool's contract as its author publishes it (`python -m typer_telemetry schema --json`)."""
    path = folder / f"{target.partition('.')[0].partition(':')[0]}.json"
    printed = subprocess.run(
        [sys.executable, "-m", "typer_telemetry", "schema", target, "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
    )
    path.write_text(printed.stdout)
    return path


def sqlite_collector_with(folder: Path, schema: Path) -> Collector:
    """A collector started on a fresh SQLite file in `folder`, checking against `schema`."""
    database = f"sqlite:///{folder / 'telemetry.sqlite'}"
    return Collector(database, folder, ("--schema", str(schema))).start()
