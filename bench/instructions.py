"""Instructions executed by a short invocation: a measure that the machine's load cannot move.

Wall time on a shared machine varies by about 10 ms from run to run, more than
the 5 ms budget. The number of instructions a process executes does not depend
on what else runs: `valgrind --tool=callgrind` counts every instruction of the
process (all its threads) and prints the total on stderr (`Collected : N`).

The count is deterministic, to within about 0.01%, only if every run does the
same work:

- PYTHONHASHSEED=0 (hash randomisation changes dict and set layouts);
- every run starts from a fresh copy of the same warm home (config written,
  notice already shown, a journal of two records): the journal grows with each
  run and every `FOLD_AT_BYTES` one run folds it, a large occasional cost,
  counted here separately as "a run that folds";
- the library's and the tools' bytecode is cached (an installed copy, never a
  source tree on PYTHONPATH);
- the long-running threshold is raised: under valgrind a process runs about 50
  times slower and would cross the default 2 s, which starts a send thread a
  native short run never starts.

Instructions become milliseconds at this machine's rate for the same workload:
the bare tool's instructions divided by its median CPU time (user + system).

    python bench/instructions.py [--quick]     # this section alone, printed
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import importlib.metadata
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    ENDPOINT_VARIABLE,
    PROJECT_DIR,
    PYTHON,
    TOOLS_DIR,
    child_environment,
    median,
    run_checked,
    run_timed,
    store_directory,
)
from invocations import EXPECTED_OUTPUT, SHORT_COMMAND, Variant

from typer_telemetry._paths import JOURNAL_NAME, ROLLUP_NAME
from typer_telemetry._recording import FOLD_AT_BYTES

# The last Click-based Typer: it does not import pydantic, so its start-up is
# lighter and the library's share of a short invocation larger.
OTHER_TYPER = "0.25.1"
VENV_DIR = PROJECT_DIR / ".bench"
# What makes the counts repeatable (see the module's docstring).
COUNTING_ENVIRONMENT = {"PYTHONHASHSEED": "0", "BENCH_LONG_RUNNING_AFTER": "1000"}
# A closed local port: nothing is sent on a short run, and a fixed URL keeps
# the environment, hence the count, the same from one benchmark run to the next.
FIXED_ENDPOINT = "http://127.0.0.1:9/v1"
PARALLEL_COUNTS = 2  # valgrind runs at a time (a run takes about 13 s on an idle core)
VALGRIND_TIMEOUT = 900.0
PIP_TIMEOUT = 600.0
_COLLECTED = re.compile(r"^==\d+== Collected : (\d+)\s*$", re.MULTILINE)
_DURATION = re.compile(rb'("duration_ms":\d+)\.\d+')

VARIANTS = [
    Variant("bare", "(a) bare Typer", "bare.py", {}, None),
    Variant(
        "telemetry",
        "(b) typer-telemetry, recording",
        "instrumented.py",
        {ENDPOINT_VARIABLE: FIXED_ENDPOINT},
        None,
    ),
    Variant(
        "disabled",
        "(c) typer-telemetry, DO_NOT_TRACK=1",
        "instrumented.py",
        {ENDPOINT_VARIABLE: FIXED_ENDPOINT, "DO_NOT_TRACK": "1"},
        None,
    ),
]
FOLDING = Variant(
    "folding",
    "(b) recording, a run that folds the journal",
    "instrumented.py",
    {ENDPOINT_VARIABLE: FIXED_ENDPOINT},
    None,
)


@dataclass
class CountedVariant:
    """One variant's instruction counts: every run, their median and their spread (max - min)."""

    key: str
    label: str
    counts: list[int]
    median: float
    spread: int

    @classmethod
    def of(cls, variant: Variant, counts: Sequence[int]) -> CountedVariant:
        return cls(
            variant.key, variant.label, list(counts), median(counts), max(counts) - min(counts)
        )


@dataclass
class TyperCounts:
    """The variants' counts on one Typer version, and the rate that turns them into time."""

    typer_version: str
    packages: str
    python: str
    variants: list[CountedVariant]
    folding: CountedVariant | None = None
    journal_line_bytes: int = 0
    bare_cpu_ms: float | None = None  # median
    bare_cpu_fastest_ms: float | None = None
    cpu_source: str = ""

    def figures(self, key: str) -> CountedVariant:
        return next(figures for figures in self.variants if figures.key == key)

    def added(self, key: str) -> float:
        return self.figures(key).median - self.figures("bare").median

    def added_percent(self, key: str) -> float:
        return 100.0 * self.added(key) / self.figures("bare").median

    def ratio(self, key: str) -> float:
        return self.figures(key).median / self.figures("bare").median

    def rate(self, fastest: bool = False) -> float | None:
        """Instructions per millisecond: the bare tool's count over its median CPU time.

        With `fastest`, over its fastest run's: the rate least slowed by the load.
        """
        cpu_ms = self.bare_cpu_fastest_ms if fastest else self.bare_cpu_ms
        if not cpu_ms:
            return None
        return self.figures("bare").median / cpu_ms

    def to_ms(self, instructions: float, fastest: bool = False) -> float | None:
        rate = self.rate(fastest)
        return None if rate is None else instructions / rate

    def added_ms(self, key: str) -> float | None:
        return self.to_ms(self.added(key))

    def added_ms_fastest(self, key: str) -> float | None:
        return self.to_ms(self.added(key), fastest=True)

    def fold_every(self) -> int | None:
        """About how many invocations apart the runs that fold the journal are."""
        if not self.journal_line_bytes:
            return None
        return FOLD_AT_BYTES // self.journal_line_bytes


@dataclass
class InstructionCounts:
    runs: int
    versions: list[TyperCounts]
    seconds: float
    notes: list[str] = field(default_factory=list)
    not_measured: str = ""  # why nothing was counted (valgrind not installed)

    @property
    def current(self) -> TyperCounts | None:
        """The Typer version the rest of the suite measures (this environment's)."""
        return self.versions[0] if self.versions else None


# -- environments ---------------------------------------------------------------------

_LIBRARY_DIR = (
    "import pathlib, typer_telemetry; print(pathlib.Path(typer_telemetry.__file__).parent)"
)
_VERSIONS = """
import importlib.metadata as metadata
for name in ("typer", "click", "pydantic"):
    try:
        print(name, metadata.version(name))
    except metadata.PackageNotFoundError:
        pass
"""


def _ask(python: Path | str, script: str) -> str:
    return run_checked([str(python), "-c", script], {"PATH": "/usr/bin:/bin"}).stdout.strip()


def _fingerprint(package: Path) -> str:
    """A digest of a copy of the library's source files: equal digests, same library."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _installed_fingerprint(python: Path | str) -> str:
    try:
        return _fingerprint(Path(_ask(python, _LIBRARY_DIR)))
    except (OSError, RuntimeError):
        return ""


def _packages(python: Path | str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in _ask(python, _VERSIONS).splitlines())


def _pip(python: Path, *arguments: str) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *arguments],
        check=True,
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
    )


def other_typer_python(version: str, progress: Callable[[str], None]) -> tuple[Path, list[str]]:
    """A venv with Typer `version` and the library installed from PROJECT_DIR (not editable).

    Made once under .bench/ and reused while it holds that Typer and the same
    library files as this environment; when the library differs (and the
    source differs from what it holds), it is reinstalled. Returns the venv's
    python and notes for the page.
    """
    venv = VENV_DIR / f"venv-typer-{version}"
    python = venv / "bin" / "python"
    wanted = _installed_fingerprint(PYTHON)
    source = _fingerprint(PROJECT_DIR / "src" / "typer_telemetry")
    notes = []

    def typer_version() -> str | None:
        try:
            return _packages(python).get("typer")
        except (OSError, RuntimeError):
            return None

    if not python.exists() or typer_version() != version:
        progress(f"  creating {venv.relative_to(PROJECT_DIR)} (typer=={version})")
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True, capture_output=True)
        _pip(python, f"typer=={version}", str(PROJECT_DIR))
    else:
        installed = _installed_fingerprint(python)
        if installed not in (wanted, source):
            progress(f"  reinstalling typer-telemetry in {venv.relative_to(PROJECT_DIR)}")
            _pip(python, "--force-reinstall", "--no-deps", str(PROJECT_DIR))
    # pip compiles what it installs; make sure of it, as the counts need cached bytecode.
    site_packages = _ask(python, "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    run_checked([str(python), "-m", "compileall", "-q", "-j", "0", site_packages], {})
    if _installed_fingerprint(python) != wanted:
        notes.append(
            f"The library installed with Typer {version} (from the source in {PROJECT_DIR}, "
            "as it is now) differs from the one installed in the benchmark's environment: "
            "the source changed in between, and the two versions' figures are of "
            "different library code."
        )
    return python, notes


# -- counting ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    version: int
    variant: Variant
    python: str
    home: Path


def _warm_home(python: str, variant: Variant, home: Path) -> None:
    """Run the tool twice natively: the first run writes the config and shows the notice."""
    home.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        result = run_checked(
            [python, str(TOOLS_DIR / variant.script), *SHORT_COMMAND],
            child_environment(home, {**variant.environment, **COUNTING_ENVIRONMENT}),
        )
        if result.stdout != EXPECTED_OUTPUT:
            raise RuntimeError(f"{variant.label} printed {result.stdout!r}")


def _journal_before_fold(home: Path) -> int:
    """Fill the warm journal with copies of its last record until the next one folds it."""
    journal = store_directory(home) / JOURNAL_NAME
    content = journal.read_bytes()
    line = content.splitlines(keepends=True)[-1]
    # Copies with the duration rounded to whole ms: the record the run under
    # valgrind appends (a run some 50 times slower, so a duration with at least
    # as many digits) is no shorter than them, and so takes the journal past
    # the threshold.
    filler = _DURATION.sub(rb"\1", line)
    copies = (FOLD_AT_BYTES - 1 - len(content)) // len(filler)
    journal.write_bytes(content + filler * copies)
    return len(line)


def count_instructions(valgrind: str, job: _Job, run_home: Path) -> int:
    """One run under callgrind from a fresh copy of the job's home: the instructions executed."""
    shutil.rmtree(run_home, ignore_errors=True)
    shutil.copytree(job.home, run_home, symlinks=True)
    try:
        result = subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                job.python,
                str(TOOLS_DIR / job.variant.script),
                *SHORT_COMMAND,
            ],
            env=child_environment(run_home, {**job.variant.environment, **COUNTING_ENVIRONMENT}),
            capture_output=True,
            text=True,
            timeout=VALGRIND_TIMEOUT,
            check=False,
        )
        if result.returncode != 0 or result.stdout != EXPECTED_OUTPUT:
            raise RuntimeError(
                f"{job.variant.label} under valgrind exited with {result.returncode}, "
                f"printed {result.stdout!r}:\n{result.stderr.strip()[-1000:]}"
            )
        if job.variant is FOLDING and not (store_directory(run_home) / ROLLUP_NAME).exists():
            raise RuntimeError("the run meant to fold the journal did not fold it")
        collected = _COLLECTED.findall(result.stderr)
        if len(collected) != 1:
            raise RuntimeError(
                f"no instruction count in valgrind's output:\n{result.stderr[-1000:]}"
            )
        return int(collected[0])
    finally:
        shutil.rmtree(run_home, ignore_errors=True)


def _bare_cpu_ms(python: str, home: Path, runs: int) -> list[float]:
    """The bare tool's CPU times (user + system), natively, `runs` runs."""
    environment = child_environment(home, COUNTING_ENVIRONMENT)
    command = [python, str(TOOLS_DIR / "bare.py"), *SHORT_COMMAND]
    times = []
    for _ in range(runs):
        timed = run_timed(command, environment)
        if timed.exit_code != 0:
            raise RuntimeError(f"bare.py exited with {timed.exit_code}")
        times.append(timed.cpu_ms)
    return times


def measure_instructions(
    root: Path,
    *,
    runs: int,
    cpu_runs: int,
    bare_cpu_ms: Sequence[float] | None,
    progress: Callable[[str], None],
    other_typer: str | None = OTHER_TYPER,
) -> InstructionCounts:
    """Count (a), (b) and (c) `runs` times each, on this Typer and on `other_typer`.

    `bare_cpu_ms`: the bare tool's CPU times in section 1, whose median gives
    this Typer's instructions-per-ms rate; other versions' are measured here
    natively (`cpu_runs` runs), as is this one's when section 1 failed.
    """
    started = time.monotonic()
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return InstructionCounts(runs, [], 0.0, not_measured="valgrind not installed")
    notes = []
    pythons = [(importlib.metadata.version("typer"), PYTHON)]
    if other_typer and other_typer != pythons[0][0]:
        try:
            venv_python, venv_notes = other_typer_python(other_typer, progress)
            pythons.append((other_typer, str(venv_python)))
            notes += venv_notes
        except (OSError, RuntimeError, subprocess.SubprocessError) as error:
            detail = getattr(error, "stderr", None) or ""
            notes.append(
                f"Typer {other_typer} not measured: its environment could not be made "
                f"({type(error).__name__}: {error} {str(detail).strip()[-300:]})".strip()
            )

    base = root / "instructions"
    versions: list[TyperCounts] = []
    jobs: list[_Job] = []
    for index, (typer_version, python) in enumerate(pythons):
        homes = {}
        for variant in VARIANTS:
            homes[variant.key] = base / f"typer-{typer_version}" / variant.key
            _warm_home(python, variant, homes[variant.key])
        jobs += [_Job(index, variant, python, homes[variant.key]) for variant in VARIANTS] * runs
        line_bytes = 0
        if index == 0:  # one run that folds, on the Typer the rest of the suite measures
            folding_home = base / f"typer-{typer_version}" / FOLDING.key
            shutil.copytree(homes["telemetry"], folding_home, symlinks=True)
            line_bytes = _journal_before_fold(folding_home)
            jobs.append(_Job(index, FOLDING, python, folding_home))
        packages = _packages(python)
        versions.append(
            TyperCounts(
                typer_version=typer_version,
                packages=", ".join(f"{name} {version}" for name, version in packages.items()),
                python=python,
                variants=[],
                journal_line_bytes=line_bytes,
            )
        )
        if index == 0 and bare_cpu_ms:
            cpu_times = list(bare_cpu_ms)
            source = f"its median over section 1's {len(cpu_times)} rounds"
        else:
            cpu_times = _bare_cpu_ms(python, homes["bare"], cpu_runs)
            source = f"its median over {cpu_runs} native runs in this section"
        versions[-1].bare_cpu_ms = median(cpu_times)
        versions[-1].bare_cpu_fastest_ms = min(cpu_times)
        versions[-1].cpu_source = source

    counts: dict[tuple[int, str], list[int]] = {}
    done = 0
    lock = threading.Lock()

    def run(number: int, job: _Job) -> None:
        nonlocal done
        count = count_instructions(valgrind, job, base / f"run-{number:03d}")
        with lock:
            counts.setdefault((job.version, job.variant.key), []).append(count)
            done += 1
            progress(
                f"  instructions: {done}/{len(jobs)} runs "
                f"(Typer {versions[job.version].typer_version}, {job.variant.key}: {count:,})"
            )

    with concurrent.futures.ThreadPoolExecutor(PARALLEL_COUNTS) as pool:
        futures = [pool.submit(run, number, job) for number, job in enumerate(jobs)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:  # do not wait for the runs not started yet
                future.cancel()
            raise

    for index, figures in enumerate(versions):
        figures.variants = [CountedVariant.of(v, counts[(index, v.key)]) for v in VARIANTS]
        if (index, FOLDING.key) in counts:
            figures.folding = CountedVariant.of(FOLDING, counts[(index, FOLDING.key)])
    shutil.rmtree(base, ignore_errors=True)
    return InstructionCounts(runs, versions, time.monotonic() - started, notes)


if __name__ == "__main__":
    import tempfile

    from report import instruction_lines

    def say(message: str) -> None:
        print(f"[{time.monotonic() - begun:6.1f}s] {message}", flush=True)

    begun = time.monotonic()
    quick = "--quick" in sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="typer-telemetry-instructions-") as directory:
        result = measure_instructions(
            Path(directory),
            runs=1 if quick else 3,
            cpu_runs=10 if quick else 20,
            bare_cpu_ms=None,
            progress=say,
        )
    print("\n".join(instruction_lines(result)))
