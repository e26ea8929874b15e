"""Section 9: the reference collector under load, beside the bare server stack it runs on.

    python bench/collector.py [--quick]     # this section alone, printed

Three targets on 127.0.0.1, each started fresh as a real server process:
(a) the trivial endpoint (bench/tools/collector_ceiling.py: the same uvicorn
and Starlette, the same workers and log settings, a route that reads the body
and answers `{"accepted": true}`), the ceiling of the stack; (b) the collector
on a fresh SQLite file; (c) the collector on a fresh PostgreSQL database of a
server this section starts (as nobody when run as root, since initdb refuses
root). The load comes from another process (bench/tools/collector_load.py):
N keep-alive connections posting real batches, each of its own install, then
the same batches again (duplicates, the idempotent path). After each run the
store is counted: it must hold exactly the batches and records sent.

CPU split on 2 CPUs: with one worker, the server side (the server, and for
(c) PostgreSQL) is pinned to the first CPU and the load to the second; with
two workers, both sides share both CPUs (said on the page).
"""

from __future__ import annotations

import argparse
import datetime
import glob
import itertools
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness import PYTHON, TOOLS_DIR, child_environment

NOBODY = 65534
TARGETS = ("trivial endpoint", "collector, SQLite", "collector, PostgreSQL")
MAX_RECORDS = 24  # records per batch: 10 to 24, a busy user's completed day
STARTUP_SECONDS = 60
# What bench/tools/collector_parts.py leaves out, and how the page names each variant.
PARTS = (
    ("none", "the whole collector"),
    ("store", "without storing"),
    ("store,records", "without storing or checking the records"),
    ("store,records,parse", "without storing, checking the records or parsing the body"),
)
PARTS_CONNECTIONS = 16


@dataclass(frozen=True)
class CollectorSettings:
    batches: int  # distinct batches per run
    duplicates: int  # then this many of them sent again
    connections: tuple[int, ...]
    workers: tuple[int, ...]
    repeats: int = 1  # runs of each configuration, the targets in turn; the median is shown


FULL_SETTINGS = CollectorSettings(
    batches=3000, duplicates=1000, connections=(16, 64), workers=(1, 2), repeats=3
)
QUICK_SETTINGS = CollectorSettings(batches=600, duplicates=200, connections=(16, 64), workers=(1,))
TINY_SETTINGS = CollectorSettings(batches=100, duplicates=30, connections=(16,), workers=(1,))


@dataclass(frozen=True)
class Phase:
    """One phase of one run, from the client's side."""

    requests: int
    accepted: int
    errors: dict[str, int]  # every answer that was not 200 {"accepted": true}, by kind
    seconds: float
    p50_ms: float
    p99_ms: float
    body_bytes: int

    @property
    def per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Run:
    target: str
    workers: int
    connections: int
    fresh: Phase
    duplicates: Phase
    records_sent: int
    stored_batches: int | None  # None for the trivial endpoint, which stores nothing
    stored_records: int | None

    @property
    def store_exact(self) -> bool:
        return self.stored_batches is None or (
            self.stored_batches == self.fresh.requests and self.stored_records == self.records_sent
        )


@dataclass(frozen=True)
class Storage:
    """What a run added to a fresh store: on disk (SQLite) or in its tables (PostgreSQL)."""

    target: str
    batches: int
    records: int
    bytes: int


@dataclass
class CollectorFigures:
    runs: list[Run] = field(default_factory=list)
    storage: list[Storage] = field(default_factory=list)
    not_measured: dict[str, str] = field(default_factory=dict)  # target -> why
    # Milliseconds per batch of each step, in one process without HTTP: target -> step -> ms
    steps_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    # The collector on SQLite with parts left out (PARTS), and the trivial endpoint:
    # label -> accepted batches/s of each run (one worker, PARTS_CONNECTIONS connections)
    parts: dict[str, list[float]] = field(default_factory=dict)
    cpu_split: str = ""
    load: str = ""
    settings: str = ""

    def all_runs(self, target: str, workers: int, connections: int) -> list[Run]:
        return [
            run
            for run in self.runs
            if (run.target, run.workers, run.connections) == (target, workers, connections)
        ]

    def run(self, target: str, workers: int, connections: int) -> Run | None:
        """The median run of a configuration (by accepted batches per second; the lower middle)."""
        runs = sorted(
            self.all_runs(target, workers, connections), key=lambda run: run.fresh.per_second
        )
        return runs[(len(runs) - 1) // 2] if runs else None

    def configurations(self) -> list[tuple[str, int, int]]:
        """Each (target, workers, connections) measured, in the order first measured."""
        return list(dict.fromkeys((run.target, run.workers, run.connections) for run in self.runs))

    def ratio(self, target: str, workers: int, connections: int) -> float | None:
        """The target's accepted batches per second as a share of the trivial endpoint's."""
        run, ceiling = (
            self.run(target, workers, connections),
            self.run(TARGETS[0], workers, connections),
        )
        if run is None or ceiling is None or not ceiling.fresh.per_second:
            return None
        return run.fresh.per_second / ceiling.fresh.per_second

    def worst_ratio(self, target: str) -> tuple[float, int, int] | None:
        ratios = [
            (ratio, workers, connections)
            for measured, workers, connections in self.configurations()
            if measured == target
            and (ratio := self.ratio(target, workers, connections)) is not None
        ]
        return min(ratios) if ratios else None


# -- servers ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_sets(workers: int) -> tuple[set[int] | None, set[int] | None]:
    """The CPUs of the server side and of the load: apart with one worker, where there are two."""
    cpus = sorted(os.sched_getaffinity(0))
    if workers > 1 or len(cpus) < 2:
        return None, None
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


def _pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


@contextmanager
def server(
    command: list[str], folder: Path, workers: int, cpus: set[int] | None, cwd: Path
) -> Iterator[None]:
    """A server process, up once every worker has said so, stopped (SIGTERM) at the end."""
    log_path = folder / f"server-{time.monotonic_ns()}.log"
    environment = child_environment(folder / "home", {"DO_NOT_TRACK": "1"})
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=environment,
            preexec_fn=_pinned(cpus),
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        # Every worker's app is up, and the socket: with one worker uvicorn binds it only
        # after the app's startup (its "running on" line comes then).
        while log_path.read_text(errors="replace").count(
            "Application startup complete"
        ) < workers or "Uvicorn running on" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log_path.read_text()}")
            time.sleep(0.05)  # polling the log for the real condition: every worker is up
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def find_postgres_binaries() -> Path | None:
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return Path(folder)
    return None


class Postgres:
    """A PostgreSQL server of this section's own, on a free port of 127.0.0.1 (as nobody if root)."""

    def __init__(self, binaries: Path, folder: Path, cpus: set[int] | None) -> None:
        self.binaries, self.folder, self.cpus = binaries, folder, cpus
        self.data, self.sockets = folder / "data", folder / "sockets"
        self.port = free_port()
        self.databases = 0

    def _run(self, *command: str | Path) -> subprocess.CompletedProcess[bytes]:
        as_user: dict[str, int] = {"user": NOBODY, "group": NOBODY} if os.geteuid() == 0 else {}
        return subprocess.run(
            [str(part) for part in command],
            cwd=self.folder,
            capture_output=True,
            preexec_fn=_pinned(self.cpus),
            **as_user,  # type: ignore[call-overload]
        )

    def start(self) -> None:
        self.sockets.mkdir(parents=True)
        if os.geteuid() == 0:
            for path in (self.folder, self.sockets):
                os.chown(path, NOBODY, NOBODY)
        made = self._run(
            self.binaries / "initdb",
            "-D",
            self.data,
            "-U",
            "collector",
            "--auth=trust",
            "-E",
            "UTF8",
        )
        if made.returncode:
            raise RuntimeError(f"initdb failed: {made.stderr.decode(errors='replace')}")
        # Durable as configured by default (fsync on): the figures are those of a real server.
        options = f"-p {self.port} -k {self.sockets} -h 127.0.0.1 -c max_connections=200"
        started = self._run(
            self.binaries / "pg_ctl", "-D", self.data, "-o", options, "-l",
            self.folder / "server.log", "-w", "start",
        )  # fmt: skip
        if started.returncode:
            raise RuntimeError(f"pg_ctl start failed: {(self.folder / 'server.log').read_text()}")

    def stop(self) -> None:
        self._run(self.binaries / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://collector@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        self.databases += 1
        name = f"bench_{self.databases}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}".encode())
        return self.url(name)


# -- what the stores hold -----------------------------------------------------


def _sqlite_counts(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as connection:
        batches = connection.execute("SELECT count(*) FROM batches").fetchone()[0]
        records = connection.execute("SELECT count(*) FROM records").fetchone()[0]
    return int(batches), int(records)


def _sqlite_bytes(path: Path) -> int:
    """The file's size once its write-ahead log is folded in: what it takes on disk."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return sum(
        Path(f"{path}{suffix}").stat().st_size
        for suffix in ("", "-wal")
        if Path(f"{path}{suffix}").exists()
    )


def _store_bytes(database: str | None, sqlite_path: Path | None) -> int:
    """The size of a store as it is now (its empty size, before the load)."""
    if database is None:
        return 0
    if sqlite_path is not None:
        return _sqlite_bytes(sqlite_path)
    return _postgres_counts(database)[2]


def _postgres_counts(url: str) -> tuple[int, int, int]:
    """Batches, records, and the bytes of every table of the database with its indexes and TOAST."""
    import psycopg

    with psycopg.connect(url) as connection:
        batches = connection.execute(b"SELECT count(*) FROM batches").fetchone()
        records = connection.execute(b"SELECT count(*) FROM records").fetchone()
        total = connection.execute(
            b"SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            b" JOIN pg_namespace n ON n.oid = c.relnamespace"
            b" WHERE n.nspname = 'public' AND c.relkind = 'r'"
        ).fetchone()
    assert batches is not None
    assert records is not None
    assert total is not None
    return int(batches[0]), int(records[0]), int(total[0])  # type: ignore[call-overload]


# -- one run ------------------------------------------------------------------


def _percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return 0.0
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def _phase(raw: dict[str, object]) -> Phase:
    answers: dict[str, int] = raw["answers"]  # type: ignore[assignment]
    latencies: list[float] = raw["latencies_ms"]  # type: ignore[assignment]
    return Phase(
        requests=sum(answers.values()),
        accepted=answers.get("accepted", 0),
        errors={kind: count for kind, count in answers.items() if kind != "accepted"},
        seconds=float(raw["seconds"]),  # type: ignore[arg-type]
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        body_bytes=int(raw["body_bytes"]),  # type: ignore[call-overload]
    )


def _expected_records(batches: int) -> int:
    """The records the load process sends in `batches` batches (see collector_load.request)."""
    sys.path.insert(0, str(TOOLS_DIR))
    try:
        from collector_load import records
    finally:
        sys.path.remove(str(TOOLS_DIR))
    day = "2026-01-01"
    return sum(len(records(day, 10 + seed % (MAX_RECORDS - 9), seed)) for seed in range(batches))


def load(
    port: int, connections: int, settings: CollectorSettings, cpus: set[int] | None, folder: Path
) -> tuple[Phase, Phase]:
    day = (
        datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=1)
    ).isoformat()
    command = [
        PYTHON, str(TOOLS_DIR / "collector_load.py"), str(port), "/v1/batches", str(connections),
        str(settings.batches), str(MAX_RECORDS), day, str(settings.duplicates),
    ]  # fmt: skip
    finished = subprocess.run(
        command,
        capture_output=True,
        env=child_environment(folder / "load-home", {"DO_NOT_TRACK": "1"}),
        preexec_fn=_pinned(cpus),
        timeout=1800,
    )
    if finished.returncode:
        raise RuntimeError(f"the load process failed: {finished.stderr.decode(errors='replace')}")
    raw = json.loads(finished.stdout)
    return _phase(raw["fresh"]), _phase(raw["duplicates"])


def measure_steps(database: str, batches: int) -> dict[str, float]:
    """A batch's own work, step by step, in this process: what the collector adds to the stack.

    The same bodies as the load (collector_load.request), each inflated and
    parsed as the app does, checked by one `BatchChecker` (a running
    collector's: what records share is checked once) and stored
    (`Store.ingest`) one after the other on `database`, fresh; no HTTP, no
    threads, a commit per batch.
    """
    sys.path.insert(0, str(TOOLS_DIR))
    try:
        from collector_load import request
    finally:
        sys.path.remove(str(TOOLS_DIR))
    from typer_telemetry.collector.app import MAX_BODY_BYTES, _document, _inflated
    from typer_telemetry.collector.rows import RateLimit
    from typer_telemetry.collector.store import open_store
    from typer_telemetry.collector.validation import BatchChecker

    day = (
        datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=1)
    ).isoformat()
    bodies = []
    for seed in range(batches):
        head, body = request("127.0.0.1", 1, "/v1/batches", day, MAX_RECORDS, seed).split(
            b"\r\n\r\n", 1
        )
        fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
        bodies.append((body, "Content-Encoding" in fields, fields["Idempotency-Key"]))
    spent = {"inflate and parse": 0.0, "check": 0.0, "store": 0.0}
    checker = BatchChecker({})
    store = open_store(database)
    try:
        for body, gzipped, key in bodies:
            started = time.perf_counter()
            document = _document(_inflated(body, MAX_BODY_BYTES) if gzipped else body)
            parsed = time.perf_counter()
            batch = checker.check(document, header_key=key, now=time.time())
            checked = time.perf_counter()
            store.ingest(batch, now=time.time(), limit=RateLimit())
            stored = time.perf_counter()
            spent["inflate and parse"] += parsed - started
            spent["check"] += checked - parsed
            spent["store"] += stored - checked
    finally:
        store.close()
    return {step: seconds * 1000 / batches for step, seconds in spent.items()}


def measure_parts(
    folder: Path, settings: CollectorSettings, progress: Callable[[str], None]
) -> dict[str, list[float]]:
    """The collector on SQLite with parts of its work left out, beside the trivial endpoint.

    One worker (server and load each on a CPU of its own), PARTS_CONNECTIONS
    connections, fresh batches only; the variants in turn, `settings.repeats`
    times.
    """
    server_side, load_side = cpu_sets(1)
    fresh_only = CollectorSettings(
        settings.batches, 0, (PARTS_CONNECTIONS,), (1,), settings.repeats
    )
    variants = [(None, TARGETS[0]), *PARTS]
    rates: dict[str, list[float]] = {label: [] for _, label in variants}
    for repeat in range(settings.repeats):
        for parts, label in variants:
            progress(f"9. where the time goes: {label} ({repeat + 1}/{settings.repeats})")
            port = free_port()
            if parts is None:
                command = [PYTHON, str(TOOLS_DIR / "collector_ceiling.py"), str(port), "1"]
            else:
                database = (
                    f"sqlite:///{folder / f'parts-{repeat}-{len(rates[label])}-{port}.sqlite'}"
                )
                command = [
                    PYTHON,
                    str(TOOLS_DIR / "collector_parts.py"),
                    str(port),
                    database,
                    parts,
                ]
            with server(command, folder, 1, server_side, TOOLS_DIR):
                fresh, _ = load(port, PARTS_CONNECTIONS, fresh_only, load_side, folder)
            if fresh.errors:
                raise RuntimeError(f"{label}: answers other than accepted: {fresh.errors}")
            rates[label].append(fresh.per_second)
    return rates


def measure_collector(
    root: Path,
    settings: CollectorSettings,
    progress: Callable[[str], None] = print,
) -> CollectorFigures:
    folder = root / "collector"
    folder.mkdir(parents=True, exist_ok=True)
    figures = CollectorFigures(
        load=f"{os.getloadavg()[0]:.2f} at the start of the section",
        settings=(
            f"{settings.batches:,} distinct batches then {settings.duplicates:,} duplicates per run;"
            f" {', '.join(map(str, settings.connections))} connections;"
            f" {' and '.join(map(str, settings.workers))} worker(s)"
            + (
                f"; each configuration run {settings.repeats} times, the three targets in turn,"
                " the median run shown"
                if settings.repeats > 1
                else ""
            )
        ),
    )
    server_cpus, load_cpus = cpu_sets(1)
    figures.cpu_split = (
        f"one worker: server side on CPU {sorted(server_cpus)}, load on CPU {sorted(load_cpus)};"
        " two workers: both sides on every CPU"
        if server_cpus and load_cpus
        else "not pinned (fewer than 2 CPUs)"
    )
    records_sent = _expected_records(settings.batches)
    binaries = find_postgres_binaries()
    postgres: Postgres | None = None
    if binaries is None:
        figures.not_measured[TARGETS[2]] = (
            "PostgreSQL's server binaries (initdb, pg_ctl) are not installed"
            " (Debian's `postgresql` package)"
        )
    else:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            figures.not_measured[TARGETS[2]] = "psycopg is not installed (the collector extra)"
            binaries = None
    if binaries is not None:
        # Not under `root`: the server's user (nobody, when run as root) must reach its folder.
        pg_folder = Path(tempfile.mkdtemp(prefix="typer-telemetry-bench-pg-"))
        postgres = Postgres(binaries, pg_folder, server_cpus)
        try:
            postgres.start()
        except RuntimeError as error:
            figures.not_measured[TARGETS[2]] = str(error).splitlines()[0]
            postgres = None
    try:
        progress("9. a batch's own work, step by step (one process, no HTTP)")
        figures.steps_ms[TARGETS[1]] = measure_steps(
            f"sqlite:///{folder / 'steps.sqlite'}", settings.duplicates
        )
        if postgres is not None:
            figures.steps_ms[TARGETS[2]] = measure_steps(
                postgres.new_database(), settings.duplicates
            )
        figures.parts = measure_parts(folder, settings, progress)
        for workers in settings.workers:
            server_side, load_side = cpu_sets(workers)
            for connections, _repeat in itertools.product(
                settings.connections, range(settings.repeats)
            ):
                for target in TARGETS:
                    if target in figures.not_measured:
                        continue
                    progress(f"9. {target}: {workers} worker(s), {connections} connections")
                    port = free_port()
                    database: str | None = None
                    sqlite_path = folder / f"run-{workers}-{connections}-{_repeat}.sqlite"
                    if target == TARGETS[0]:
                        command = [
                            PYTHON,
                            str(TOOLS_DIR / "collector_ceiling.py"),
                            str(port),
                            str(workers),
                        ]
                    else:
                        if target == TARGETS[1]:
                            database = f"sqlite:///{sqlite_path}"
                        else:
                            assert postgres is not None
                            database = postgres.new_database()
                        command = [
                            PYTHON, "-m", "typer_telemetry.collector", "serve", "--db", database,
                            "--port", str(port), "--workers", str(workers),
                        ]  # fmt: skip
                    cwd = TOOLS_DIR if target == TARGETS[0] else folder
                    with server(command, folder, workers, server_side, cwd):
                        empty = _store_bytes(
                            database, sqlite_path if target == TARGETS[1] else None
                        )
                        fresh, duplicates = load(port, connections, settings, load_side, folder)
                    stored_batches = stored_records = None
                    if database is not None and target == TARGETS[1]:
                        stored_batches, stored_records = _sqlite_counts(sqlite_path)
                        storage = _sqlite_bytes(sqlite_path)
                    elif database is not None:
                        stored_batches, stored_records, storage = _postgres_counts(database)
                    if database is not None:
                        assert stored_batches is not None
                        assert stored_records is not None
                        figures.storage.append(
                            Storage(target, stored_batches, stored_records, storage - empty)
                        )
                    figures.runs.append(
                        Run(target, workers, connections, fresh, duplicates, records_sent,
                            stored_batches, stored_records)
                    )  # fmt: skip
    finally:
        if postgres is not None:
            postgres.stop()
            shutil.rmtree(postgres.folder, ignore_errors=True)
    figures.load += f", {os.getloadavg()[0]:.2f} at its end"
    return figures


# -- the page -----------------------------------------------------------------


def _errors(runs: Sequence[Run]) -> str:
    """Every answer other than 200 accepted, in all the runs of a configuration."""
    errors = sum(
        sum(run.fresh.errors.values()) + sum(run.duplicates.errors.values()) for run in runs
    )
    return f"{errors:,}" if errors else "0"


def collector_lines(figures: CollectorFigures) -> list[str]:
    from report import size, table

    lines = [
        "## 9. The reference collector under load",
        "",
        "`typer-telemetry-collector serve` on 127.0.0.1, driven by many concurrent",
        "clients in another process (raw keep-alive HTTP/1.1 connections): real",
        "batches as the library's HTTP back end sends them (format 2, one day, 10",
        "to 24 records, gzip from 1 KiB), each of its own install, so none is a",
        "duplicate and no install nears the per-install rate; then some of the same",
        "batches sent again (duplicates: acknowledged, nothing stored). Beside it,",
        "in the same run, the trivial endpoint: the same uvicorn and Starlette, the",
        "same workers and log settings, a route that reads the body and answers",
        '`{"accepted": true}` without parsing or storing anything, the ceiling of',
        "the server stack. Every server starts fresh (a new SQLite file, a new",
        "PostgreSQL database of a server the suite starts, default durability);",
        "after each run the store is counted and must hold exactly the batches and",
        "records sent. Errors count every answer that was not 200",
        '`{"accepted": true}`.',
        "",
        f"- {figures.settings}",
        f"- CPUs: {figures.cpu_split}",
        f"- load average: {figures.load}",
        "",
    ]
    rows = []
    for target, workers, connections in figures.configurations():
        run = figures.run(target, workers, connections)
        assert run is not None
        every = figures.all_runs(target, workers, connections)
        ratio = figures.ratio(run.target, run.workers, run.connections)
        exact = sum(not measured.store_exact for measured in every)
        stored = (
            "—"
            if run.stored_batches is None
            else (
                f"{run.stored_batches:,} / {run.stored_records:,} "
                + (f"(NOT exact in {exact} of {len(every)} runs)" if exact else "(exact)")
            )
        )
        rows.append(
            [
                run.target,
                run.workers,
                run.connections,
                f"{run.fresh.per_second:,.0f}",
                "—" if run.target == TARGETS[0] or ratio is None else f"{ratio:.0%}",
                ms(run.fresh.p50_ms),
                ms(run.fresh.p99_ms),
                f"{run.duplicates.per_second:,.0f}",
                ms(run.duplicates.p99_ms),
                _errors(every),
                stored,
            ]
        )
    lines += table(
        [
            "target",
            "workers",
            "connections",
            "accepted batches/s",
            "of the trivial endpoint",
            "p50 ms",
            "p99 ms",
            "duplicates/s",
            "duplicates p99 ms",
            "errors (all runs)",
            "stored batches / records",
        ],
        rows,
        "lrrrrrrrrrl",
    )
    lines.append("")
    for target, why in figures.not_measured.items():
        lines += [f"{target}: not measured: {why}.", ""]
    if figures.runs:
        sent = figures.runs[0]
        lines += [
            f"A batch on the wire: {size(sent.fresh.body_bytes / max(sent.fresh.requests, 1))}"
            f" on average ({sent.records_sent / max(sent.fresh.requests, 1):.1f} records, gzipped).",
            "",
        ]
    if figures.storage:
        by_target: dict[str, Storage] = {}
        for storage in figures.storage:
            by_target.setdefault(storage.target, storage)  # the first run of each: a fresh store
        lines += table(
            ["store", "batches", "records", "size", "per batch", "per record"],
            [
                [
                    storage.target.removeprefix("collector, "),
                    f"{storage.batches:,}",
                    f"{storage.records:,}",
                    _size(storage.bytes),
                    size(storage.bytes / max(storage.batches, 1)),
                    size(storage.bytes / max(storage.records, 1)),
                ]
                for storage in by_target.values()
            ],
            "lrrrrr",
        )
        lines += [
            "",
            "Sizes: what the first run of each store added to it, empty at the start:",
            "the SQLite file with its write-ahead log checkpointed; for PostgreSQL,",
            "`pg_total_relation_size` of every table (indexes and TOAST included).",
            "docs/collector.md (Capacity) turns these figures into what a tool with",
            "many installs needs.",
            "",
        ]
    ceiling = figures.run(TARGETS[0], 1, figures.runs[0].connections) if figures.runs else None
    if figures.steps_ms:
        steps = list(next(iter(figures.steps_ms.values())))
        lines += [
            "A batch's own work, step by step, in one process without HTTP (the same",
            "bodies, stored one after the other in a fresh store), in ms per batch;",
            "beside it, the whole of a request to the trivial endpoint (one worker,",
            "the inverse of its throughput):",
            "",
        ]
        lines += table(
            ["store", *steps, "total", "trivial endpoint, whole request"],
            [
                [
                    target.removeprefix("collector, "),
                    *(f"{spent[step]:.2f}" for step in steps),
                    f"{sum(spent.values()):.2f}",
                    f"{1000 / ceiling.fresh.per_second:.2f}" if ceiling else "—",
                ]
                for target, spent in figures.steps_ms.items()
            ],
        )
        lines.append("")
    if figures.parts:
        trivial = statistics.median(figures.parts[TARGETS[0]])
        lines += [
            "Where the time goes under load: the collector on SQLite served with parts",
            "of its work left out (bench/tools/collector_parts.py: a store that writes",
            "nothing, records taken as checked unread, a body read but not parsed),",
            f"one worker, {PARTS_CONNECTIONS} connections, fresh batches, beside the trivial endpoint;",
            "the variants in turn, the median of the runs:",
            "",
        ]
        rows = []
        for label, rates in figures.parts.items():
            rate = statistics.median(rates)
            per_request = 1000 / rate if rate else 0.0
            rows.append(
                [
                    label,
                    f"{rate:,.0f}",
                    "—" if label == TARGETS[0] else f"{rate / trivial:.0%}",
                    f"{per_request:.3f}",
                    "—" if label == TARGETS[0] else f"+{per_request - 1000 / trivial:.3f}",
                ]
            )
        lines += table(
            [
                "served",
                "accepted batches/s",
                "of the trivial endpoint",
                "ms per request",
                "over the trivial endpoint, ms",
            ],
            rows,
        )
        lines += [
            "",
            "Read from the last row up: what remains when nothing is parsed, checked",
            "or stored (reading and inflating the body, checking the envelope, handing",
            "the batch to the writer and back) is the first share of the collector's",
            "own time; parsing, checking the records and storing each add theirs. Half",
            "the trivial endpoint's rate needs all of it together to cost no more than",
            "the stack's own handling of a request (the last column against the",
            "trivial endpoint's ms per request).",
            "",
        ]
    lines += [
        "What they mean: the trivial endpoint is what uvicorn and Starlette cost per",
        "request here; the collector adds inflating and parsing the body, checking",
        "every record against the schema, and storing the batch (the idempotency",
        "key and the per-install rate read, and one row with the records as one",
        "JSON array written, in the database). Records alike (the same command,",
        "outcome and options, from any install) have their schema checks done",
        "once; after that a record costs a check of its numbers and its text. A",
        "process's concurrent batches share one transaction and one commit (a",
        "group commit), so under load the commits are few and the server's CPU",
        "goes to Python work per batch (and, for PostgreSQL, to the database",
        "server's own work, on the same CPU here). A duplicate costs the same",
        "parsing and checks, and a look-up that finds its key. With two workers",
        "on SQLite, the two processes take turns at the file's one writer lock.",
        "",
    ]
    return lines


def _size(value: float) -> str:
    from report import size

    return f"{value / 1024 / 1024:.1f} MiB" if value >= 10 * 1024 * 1024 else size(value)


def ms(value: float) -> str:
    return f"{value:.1f}"


def main(arguments: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer batches, one worker count")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # developing it
    options = parser.parse_args(arguments)
    settings = TINY_SETTINGS if options.tiny else QUICK_SETTINGS if options.quick else FULL_SETTINGS
    root = Path(tempfile.mkdtemp(prefix="typer-telemetry-bench-"))
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)

    try:
        figures = measure_collector(root, settings, progress)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\n".join(collector_lines(figures)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
