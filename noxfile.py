"""Development sessions: `nox` runs the tests on every Python, the linters, the type check and the docs."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck", "compat", "docs", "collector"]

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


def _find_pyenv_pythons() -> None:
    """Let nox find every pyenv-installed Python, whichever one pyenv has selected."""
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    folders = [
        str(folder / "bin")
        for python in PYTHONS
        for folder in sorted(versions.glob(f"{python}.*"), reverse=True)[:1]
    ]
    if folders:
        os.environ["PATH"] = os.pathsep.join([*folders, os.environ.get("PATH", "")])


_find_pyenv_pythons()
# Oldest supported, the last Click-based release, and the newest (vendored Click).
TYPER_VERSIONS = ["0.12.5", "0.25.1", "latest"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite (real processes, real files, real sockets on 127.0.0.1)."""
    session.install(".[dev]", "./examples/inventory")
    # tests/docs needs MkDocs: the docs session runs it.
    session.run(
        "pytest", "-n", "2", "--ignore=tests/docs", "--ignore=tests/collector", *session.posargs
    )
    # The example tool's own suite, as its author runs it: the plugin and nothing else.
    session.run("pytest", "-p", "no:cacheprovider", "examples/inventory")


@nox.session(python="3.12")
@nox.parametrize("typer", TYPER_VERSIONS)
def compat(session: nox.Session, typer: str) -> None:
    """The suite against the oldest supported, the last Click-based and the newest Typer."""
    session.install(".[dev]")
    if typer == "latest":
        session.install("--upgrade", "typer")
    elif typer == "0.12.5":
        # Typer before 0.16 does not support Click 8.2 and later (its boolean
        # flags misbehave, with or without this library): test it on the Click it ran on.
        session.install(f"typer=={typer}", "click<8.2")
    else:
        session.install(f"typer=={typer}")
    session.run("python", "-c", "import typer; print('typer', typer.__version__)")
    # The hardening suite runs in `tests` on every Python; here the hook meets each Typer.
    session.run(
        "pytest",
        "-n",
        "2",
        "-m",
        "not hardening",
        "--ignore=tests/docs",
        "--ignore=tests/collector",
        *session.posargs,
    )


@nox.session(python=["3.10", "3.13"])
def collector(session: nox.Session) -> None:
    """The reference collector: real servers, SQLite and PostgreSQL (docs/collector.md).

    On the oldest and the newest Python supported (the benchmark runs it on 3.12).

    PostgreSQL's server binaries must be installed (`initdb`, `pg_ctl` on PATH
    or in /usr/lib/postgresql/*/bin): the tests fail, never skip, without them.
    """
    session.install(".[dev,collector]", "./examples/inventory")
    session.run("pytest", "-n", "2", "tests/collector", *session.posargs)


@nox.session(python="3.12")
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "examples", "noxfile.py", "tools")
    session.run("ruff", "format", "--check", "src", "tests", "examples", "noxfile.py", "tools")


@nox.session(python="3.12")
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the library."""
    # The collector's extra and pytest too: the collector and the pytest plugin are checked
    # against their types.
    session.install(".[collector]", "mypy", "tomli", "pytest")
    session.run("mypy", "--strict", "src")


@nox.session(python="3.12")
def hardening(session: nox.Session) -> None:
    """The hardening suite with every case, then docs/reliability.md's table from its results.

    `nox -s tests` runs the same tests with a few cases each; this runs hundreds
    (kill -9 at random points, a minute of 16 concurrent processes, generated input).
    """
    session.install(".[dev,collector]", "./examples/inventory")
    results = Path(session.create_tmp()) / "reliability"
    if results.exists():
        for rows in results.iterdir():
            rows.unlink()
    session.run(
        "pytest",
        "-n",
        "2",
        "-m",
        "hardening",
        *session.posargs,
        env={"HARDENING_FULL": "1", "HARDENING_RESULTS": str(results)},
    )
    # The collector's faults (hostile bodies, replicas, the rate, forwarding) add their rows.
    session.run(
        "pytest",
        "-n",
        "2",
        "tests/collector",
        env={"HARDENING_FULL": "1", "HARDENING_RESULTS": str(results)},
    )
    session.run("python", "tools/write_reliability_md.py", str(results))


@nox.session(python="3.12")
def demo(session: nox.Session) -> None:
    """The example tool taken through a scripted tour in a temporary home."""
    session.install(".")
    session.run("python", "examples/demo.py")


@nox.session(python="3.12")
def docs(session: nox.Session) -> None:
    """The documentation site, built strictly, then tested: every Python block runs, every page is served.

    TELEMETRY.md's field tables must match the schema (`python
    tools/generate_telemetry_md.py` rewrites them). `mkdocs serve` shows the
    site while you write it.
    """
    # The example tool package too: the README's and testing guide's examples import it.
    session.install(".[docs]", "./examples/inventory")
    session.run("python", "tools/generate_telemetry_md.py", "--check")
    site = Path(session.create_tmp()).resolve() / "site"
    session.run("mkdocs", "build", "--strict", "-d", str(site), env={"NO_MKDOCS_2_WARNING": "1"})
    session.run("pytest", "tests/docs", *session.posargs, env={"DOCS_SITE_DIR": str(site)})


@nox.session(python="3.12")
def bench(session: nox.Session) -> None:
    """Benchmarks against a bare Typer tool, PostHog's client and the OpenTelemetry SDK.

    Not part of the default sessions: it takes minutes and its figures depend on the
    machine. It writes docs/performance.md; `nox -s bench -- --quick` is a shorter run.
    Section 9 drives the reference collector, hence the `collector` extra.
    """
    # Installed, not editable, so that every module has its bytecode cached as for users.
    session.install(
        ".[collector]", "posthog", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"
    )
    session.run("python", "bench/run.py", *session.posargs)
