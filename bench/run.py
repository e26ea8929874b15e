"""The benchmark suite: typer-telemetry against a bare Typer tool, PostHog's client and OpenTelemetry.

    nox -s bench                  # the full run; rewrites docs/performance.md
    nox -s bench -- --quick       # fewer rounds, about 2 minutes

The suite is not part of CI and never fails a build: budget misses, and
sections that could not be measured at all, are reported on the console and
on the page, and the exit status is 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

from budgets import evaluate_budgets
from delivery import (
    Payload,
    measure_exit_delays,
    measure_payloads,
    pending_day,
    realistic_batch,
)
from events import measure_events
from harness import PROJECT_DIR, child_environment
from instructions import measure_instructions
from invocations import (
    audit_variants,
    build_variants,
    measure_phases,
    measure_short_invocations,
    profile_imports,
)
from local_receiver import Behaviour, Receiver, Unaccepting
from recording import (
    STORE_SIZES,
    StoreAtLimits,
    measure_concurrent_invocations,
    measure_store,
    measure_store_at_limits,
    measure_throughput,
)
from report import Results, RunInfo, limits_lines, render

from collector import FULL_SETTINGS, QUICK_SETTINGS, CollectorSettings, measure_collector
from typer_telemetry._store import MAX_KEYS_PER_DAY, MAX_PENDING_DAYS

T = TypeVar("T")

DEFAULT_OUTPUT = PROJECT_DIR / "docs" / "performance.md"
RAW_RESULTS = PROJECT_DIR / ".bench" / "results.json"
THROUGHPUT_PROCESSES = (1, 4, 16)
CONCURRENT_PROCESSES = 16
CONCURRENT_INVOCATIONS = 200


@dataclasses.dataclass(frozen=True)
class Settings:
    """How many times to repeat each measurement: more rounds, steadier medians."""

    rounds: int
    warmup_rounds: int
    import_runs: int
    phase_runs: int
    exit_rounds: int
    records_per_process: int
    instruction_runs: int
    cpu_runs: int
    event_rounds: int
    collector: CollectorSettings
    mode: str


FULL = Settings(
    rounds=100,
    warmup_rounds=3,
    import_runs=7,
    phase_runs=15,
    exit_rounds=10,
    records_per_process=2000,
    instruction_runs=3,
    cpu_runs=20,
    event_rounds=3000,
    collector=FULL_SETTINGS,
    mode="full",
)
QUICK = Settings(
    rounds=15,
    warmup_rounds=2,
    import_runs=3,
    phase_runs=5,
    exit_rounds=3,
    records_per_process=500,
    instruction_runs=1,
    cpu_runs=10,
    event_rounds=500,
    collector=QUICK_SETTINGS,
    mode="quick",
)


def parse_arguments(arguments: Sequence[str]) -> tuple[Settings, Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: about 2 minutes")
    parser.add_argument("--rounds", type=int, help="rounds of short invocations (default 100)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the page to write")
    parser.add_argument(
        "--only-limits",
        action="store_true",
        help="run only section 7 (a store at its limits) and print it; the page is not written",
    )
    parser.add_argument(
        "--only-collector",
        action="store_true",
        help="run only section 9 (the collector under load) and print it; the page is not written",
    )
    options = parser.parse_args(arguments)
    settings = QUICK if options.quick else FULL
    if options.rounds:
        settings = dataclasses.replace(settings, rounds=options.rounds)
    if options.only_limits:
        settings = dataclasses.replace(settings, mode="limits")
    if options.only_collector:
        settings = dataclasses.replace(settings, mode="collector")
    return settings, options.output


def measure_limits(root: Path, today: datetime.date, rounds: int) -> list[StoreAtLimits]:
    """Section 7: the same tool with a small store, then with one at the store's limits."""
    days = [(today - datetime.timedelta(days=back)).isoformat() for back in range(MAX_PENDING_DAYS)]
    return [
        measure_store_at_limits(root, [today.isoformat()], 10, "small (1 day, 10 records)", rounds),
        measure_store_at_limits(
            root,
            days,
            MAX_KEYS_PER_DAY,
            f"at the limits ({MAX_PENDING_DAYS} days, {MAX_KEYS_PER_DAY} records each)",
            rounds,
        ),
    ]


class Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", flush=True)


def attempt(name: str, results: Results, progress: Progress, action: Callable[[], T]) -> T | None:
    """Run one section; a failure is recorded and shown, and the other sections still run."""
    progress(name)
    try:
        return action()
    except Exception as error:
        traceback.print_exc()
        results.failures.append(f"{name}: {type(error).__name__}: {error}")
        return None


def measure(settings: Settings, root: Path, progress: Progress) -> Results:
    results = Results()
    now = datetime.datetime.now(datetime.timezone.utc)
    today = now.date().isoformat()
    yesterday = (now.date() - datetime.timedelta(days=1)).isoformat()
    yesterday_noon = now.replace(hour=12, minute=0, second=0, microsecond=0).timestamp() - 86400

    with ExitStack() as stack:

        def receiver(behaviour: Behaviour = "healthy") -> Receiver:
            return stack.enter_context(Receiver(behaviour))

        short_receivers = {
            key: receiver() for key in ("telemetry", "disabled", "posthog", "opentelemetry")
        }
        variants = build_variants(short_receivers)
        homes = {variant.key: root / "short" / variant.key for variant in variants}
        results.short = attempt(
            "1. short invocations",
            results,
            progress,
            lambda: measure_short_invocations(
                variants,
                homes,
                rounds=settings.rounds,
                warmup_rounds=settings.warmup_rounds,
                progress=progress,
            ),
        )
        by_key = {variant.key: variant for variant in variants}
        results.phases = attempt(
            "1. where the added time goes",
            results,
            progress,
            lambda: measure_phases(
                by_key["bare"], by_key["telemetry"], homes, root, runs=settings.phase_runs
            ),
        )
        results.instructions = attempt(
            "1. instructions executed (load-independent)",
            results,
            progress,
            lambda: measure_instructions(
                root,
                runs=settings.instruction_runs,
                cpu_runs=settings.cpu_runs,
                bare_cpu_ms=[run.cpu_ms for run in results.short.raw["bare"]]
                if results.short
                else None,
                progress=progress,
            ),
        )
        results.imports = attempt(
            "2. imports on the hot path",
            results,
            progress,
            lambda: profile_imports(
                by_key["bare"], by_key["telemetry"], homes, runs=settings.import_runs
            ),
        )
        results.audits = attempt(
            "2. sockets and modules at exit",
            results,
            progress,
            lambda: audit_variants(variants, homes, root),
        )

        store_environment = child_environment(root / "store-home")
        results.stores = attempt(
            "3. recording cost and store size",
            results,
            progress,
            lambda: [
                measure_store(root, yesterday, records, store_environment)
                for records in STORE_SIZES
            ],
        )
        results.throughput = attempt(
            "4. recording throughput",
            results,
            progress,
            lambda: [
                measure_throughput(
                    root, yesterday, processes, settings.records_per_process, store_environment
                )
                for processes in THROUGHPUT_PROCESSES
            ],
        )
        send_receiver = receiver()
        results.concurrent = attempt(
            f"4. {CONCURRENT_PROCESSES} x {CONCURRENT_INVOCATIONS} concurrent invocations",
            results,
            progress,
            lambda: measure_concurrent_invocations(
                root / "concurrent-home",
                send_receiver,
                processes=CONCURRENT_PROCESSES,
                invocations_per_process=CONCURRENT_INVOCATIONS,
                yesterday_noon=yesterday_noon,
                today=today,
            ),
        )
        exit_receivers: dict[str, Receiver | Unaccepting] = {
            behaviour: receiver(behaviour) for behaviour in ("healthy", "slow", "hung")
        }
        exit_receivers["unaccepting"] = stack.enter_context(Unaccepting())
        results.exit_delays = attempt(
            "5. exit delay of a long-running invocation",
            results,
            progress,
            lambda: measure_exit_delays(
                root,
                exit_receivers,
                rounds=settings.exit_rounds,
                yesterday_noon=yesterday_noon,
                today=today,
                progress=progress,
            ),
        )
        payload_receiver = receiver()

        def payloads() -> list[Payload]:
            store = next(figures for figures in results.stores or [] if figures.records == 1_000)
            batch = realistic_batch(pending_day(store.directory, yesterday), "1.0.0")
            return measure_payloads(batch, payload_receiver, root)

        results.payloads = attempt("6. payload per completed day", results, progress, payloads)
        results.limits = attempt(
            "7. a store at its limits",
            results,
            progress,
            lambda: measure_limits(root, now.date(), settings.exit_rounds),
        )
        results.events = attempt(
            "8. recording the tool's own events",
            results,
            progress,
            lambda: measure_events(settings.event_rounds),
        )
        results.collector = attempt(
            "9. the reference collector under load",
            results,
            progress,
            lambda: measure_collector(root, settings.collector, progress),
        )
        progress("closing the receivers")
    return results


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def _installation_note() -> str:
    """Start-up figures mean something only for a regular install with cached bytecode."""
    import typer_telemetry

    location = Path(typer_telemetry.__file__).resolve()
    if PROJECT_DIR / "src" in location.parents:
        return "Warning: typer-telemetry is installed editable; start-up figures are not users'."
    if not Path(importlib.util.cache_from_source(str(location))).exists():
        return "Warning: typer-telemetry's bytecode is not cached; start-up figures are too high."
    return "typer-telemetry installed from source, not editable, bytecode cached"


def run_info(settings: Settings, arguments: Sequence[str]) -> RunInfo:
    if os.environ.get("NOX_CURRENT_SESSION"):
        command = " ".join(["nox -s bench", *(["--", *arguments] if arguments else [])])
    else:
        command = " ".join(["python bench/run.py", *arguments])
    return RunInfo(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        command=command,
        mode=f"{settings.mode} run, {settings.rounds} rounds of short invocations",
        machine=f"{len(os.sched_getaffinity(0))} CPUs",
        cpu_model=_cpu_model(),
        kernel=platform.release(),
        python=platform.python_version(),
        versions={
            name: _version(name)
            for name in (
                "typer",
                "typer-telemetry",
                "platformdirs",
                "posthog",
                "opentelemetry-sdk",
                "opentelemetry-exporter-otlp-proto-http",
            )
        },
        bytecode_note=_installation_note(),
    )


def main_limits(settings: Settings) -> int:
    """Run section 7 alone and print its Markdown (for docs/performance.md, section 7)."""
    progress = Progress()
    root = Path(tempfile.mkdtemp(prefix="typer-telemetry-bench-"))
    try:
        progress(f"7. a store at its limits; load average {os.getloadavg()[0]:.2f}")
        today = datetime.datetime.now(datetime.timezone.utc).date()
        figures = measure_limits(root, today, max(settings.exit_rounds, 5))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\n".join(limits_lines(figures)))
    progress(f"done; load average {os.getloadavg()[0]:.2f}")
    return 0


def main(arguments: Sequence[str]) -> int:
    settings, output = parse_arguments(arguments)
    if settings.mode == "limits":
        return main_limits(settings)
    if settings.mode == "collector":
        from collector import main as main_collector

        return main_collector(["--quick"] if settings.collector == QUICK_SETTINGS else [])
    progress = Progress()
    info = run_info(settings, arguments)
    progress(f"{info.mode}; {info.bytecode_note}")
    load_before = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="typer-telemetry-bench-"))
    try:
        results = measure(settings, root, progress)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    info = dataclasses.replace(
        info, load=f"{load_before:.2f} before the run, {os.getloadavg()[0]:.2f} after it"
    )
    budgets = evaluate_budgets(results)
    page = render(info, results, budgets)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf-8")
    RAW_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RAW_RESULTS.write_text(json.dumps(dataclasses.asdict(results), indent=1, default=str))
    print("\n" + page[page.index("## Budgets") :], flush=True)
    progress(f"wrote {output} (raw figures in {RAW_RESULTS})")
    for failure in results.failures:
        progress(f"NOT MEASURED: {failure}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
