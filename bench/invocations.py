"""Short invocations: wall and CPU time of five variants of one tool, imports, sockets.

The five variants of bench/tools/sample_app.py run as real processes,
round-robin (the order rotates each round so that no variant always runs
right after another), so that drifts of the machine's speed hit all of them
alike. The added time of a variant is the median over rounds of its time
minus the bare tool's time in the same round.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    ENDPOINT_VARIABLE,
    TOOLS_DIR,
    Timed,
    child_environment,
    median,
    quartiles,
    run_checked,
    run_timed,
    tool_command,
)
from local_receiver import Receiver

SHORT_COMMAND = ("hello", "World")
EXPECTED_OUTPUT = "Hello, World!\n"
# Module families a short invocation must not load: network, rich output, back-end SDKs.
FORBIDDEN_MODULES = ("httpx", "rich", "posthog", "opentelemetry", "socket", "ssl")


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    script: str
    environment: dict[str, str]
    receiver: Receiver | None  # where its requests go (the library's must see none)


@dataclass
class VariantFigures:
    key: str
    label: str
    wall_ms: float
    cpu_ms: float
    added_wall_ms: float
    added_wall_spread_ms: tuple[float, float]
    added_wall_percent: float
    added_cpu_ms: float
    ratio: float
    requests_per_run: float | None = None
    request_bytes: float | None = None


@dataclass
class ShortInvocations:
    rounds: int
    variants: list[VariantFigures]
    raw: dict[str, list[Timed]]
    notes: list[str] = field(default_factory=list)

    def figures(self, key: str) -> VariantFigures:
        return next(figures for figures in self.variants if figures.key == key)


def build_variants(receivers: Mapping[str, Receiver]) -> list[Variant]:
    """The five variants, each instrumented one with a local receiver of its own.

    `receivers` is keyed by variant ("telemetry", "disabled", "posthog",
    "opentelemetry"); the library's variants must send nothing to theirs.
    """

    def endpoint(key: str) -> dict[str, str]:
        return {ENDPOINT_VARIABLE: f"{receivers[key].url}/v1"}

    def receiver_url(key: str) -> dict[str, str]:
        return {"BENCH_RECEIVER_URL": receivers[key].url}

    return [
        Variant("bare", "(a) bare Typer", "bare.py", {}, None),
        Variant(
            "telemetry",
            "(b) typer-telemetry, recording",
            "instrumented.py",
            endpoint("telemetry"),
            receivers["telemetry"],
        ),
        Variant(
            "disabled",
            "(c) typer-telemetry, DO_NOT_TRACK=1",
            "instrumented.py",
            {**endpoint("disabled"), "DO_NOT_TRACK": "1"},
            receivers["disabled"],
        ),
        Variant(
            "posthog",
            "(d) PostHog client",
            "with_posthog.py",
            receiver_url("posthog"),
            receivers["posthog"],
        ),
        Variant(
            "opentelemetry",
            "(e) OpenTelemetry SDK",
            "with_opentelemetry.py",
            receiver_url("opentelemetry"),
            receivers["opentelemetry"],
        ),
    ]


def check_variants(variants: Sequence[Variant], homes: dict[str, Path]) -> list[str]:
    """Run each variant twice: right output, and (warm) nothing on stderr; returns notes.

    The first run of the instrumented tool writes its config and shows the
    first-run notice: every measured run after it is an ordinary, warm one.
    """
    notes = []
    for variant in variants:
        for attempt in ("first", "warm"):
            result = run_checked(
                tool_command(variant.script, *SHORT_COMMAND),
                child_environment(homes[variant.key], variant.environment),
            )
            if result.stdout != EXPECTED_OUTPUT:
                raise RuntimeError(f"{variant.label} printed {result.stdout!r}")
            if attempt == "warm" and result.stderr:
                notes.append(f"{variant.label} wrote to stderr: {result.stderr.strip()[:300]}")
    return notes


def measure_short_invocations(
    variants: Sequence[Variant],
    homes: dict[str, Path],
    *,
    rounds: int,
    warmup_rounds: int,
    progress: Callable[[str], None],
) -> ShortInvocations:
    notes = check_variants(variants, homes)

    def run_round(round_number: int) -> dict[str, Timed]:
        shift = round_number % len(variants)
        timings = {}
        for variant in [*variants[shift:], *variants[:shift]]:
            timed = run_timed(
                tool_command(variant.script, *SHORT_COMMAND),
                child_environment(homes[variant.key], variant.environment),
            )
            if timed.exit_code != 0:
                raise RuntimeError(f"{variant.label} exited with {timed.exit_code}")
            timings[variant.key] = timed
        return timings

    for round_number in range(warmup_rounds):
        run_round(round_number)
    requests_before = {
        variant.key: variant.receiver.count() for variant in variants if variant.receiver
    }
    raw: dict[str, list[Timed]] = {variant.key: [] for variant in variants}
    for round_number in range(rounds):
        for key, timed in run_round(round_number).items():
            raw[key].append(timed)
        if (round_number + 1) % 10 == 0:
            progress(f"  short invocations: {round_number + 1}/{rounds} rounds")

    figures = summarise(variants, raw)
    for variant, variant_figures in zip(variants, figures, strict=True):
        if variant.receiver is None:
            continue
        received = variant.receiver.requests[requests_before[variant.key] :]
        variant_figures.requests_per_run = len(received) / rounds
        variant_figures.request_bytes = median([len(request.body) for request in received])
    return ShortInvocations(rounds, figures, raw, notes)


def summarise(variants: Sequence[Variant], raw: dict[str, list[Timed]]) -> list[VariantFigures]:
    bare = raw["bare"]
    bare_wall = median([run.wall_ms for run in bare])
    figures = []
    for variant in variants:
        runs = raw[variant.key]
        added = [run.wall_ms - base.wall_ms for run, base in zip(runs, bare, strict=True)]
        added_cpu = [run.cpu_ms - base.cpu_ms for run, base in zip(runs, bare, strict=True)]
        wall = median([run.wall_ms for run in runs])
        figures.append(
            VariantFigures(
                key=variant.key,
                label=variant.label,
                wall_ms=wall,
                cpu_ms=median([run.cpu_ms for run in runs]),
                added_wall_ms=median(added),
                added_wall_spread_ms=quartiles(added),
                added_wall_percent=100.0 * median(added) / bare_wall,
                added_cpu_ms=median(added_cpu),
                ratio=wall / bare_wall,
            )
        )
    return figures


# -- what the hot path imports ---------------------------------------------------------

_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)")


@dataclass(frozen=True)
class ImportedModule:
    name: str
    self_us: float
    cumulative_us: float
    starts_chain: bool  # its importer is not among the added modules


@dataclass
class ImportProfile:
    runs: int
    added: list[ImportedModule]
    added_self_us: float
    bare_total_us: float
    instrumented_total_us: float
    forbidden_added: list[str]


def _parse_importtime(stderr: str) -> list[tuple[str, int, int, int]]:
    """(module, self us, cumulative us, depth) in the order -X importtime prints them."""
    parsed = []
    for line in stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            self_us, cumulative_us, indent, name = match.groups()
            parsed.append((name, int(self_us), int(cumulative_us), (len(indent) - 1) // 2))
    return parsed


def _parents(parsed: list[tuple[str, int, int, int]]) -> dict[str, str | None]:
    """Each module's importer: -X importtime prints a module after those it imported."""
    parents: dict[str, str | None] = {}
    for index, (name, _, _, depth) in enumerate(parsed):
        parent = next(
            (other for other, _, _, other_depth in parsed[index + 1 :] if other_depth < depth),
            None,
        )
        parents[name] = parent
    return parents


def is_forbidden(module: str) -> bool:
    top = module.split(".")[0].lstrip("_")
    return top in FORBIDDEN_MODULES


def profile_imports(
    bare: Variant, instrumented: Variant, homes: dict[str, Path], *, runs: int
) -> ImportProfile:
    """Run both variants with -X importtime; the modules only the instrumented one loads."""
    profiles: dict[str, list[list[tuple[str, int, int, int]]]] = {
        bare.key: [],
        instrumented.key: [],
    }
    for _ in range(runs):
        for variant in (bare, instrumented):
            result = run_checked(
                tool_command(variant.script, *SHORT_COMMAND, python_options=("-X", "importtime")),
                child_environment(homes[variant.key], variant.environment),
            )
            profiles[variant.key].append(_parse_importtime(result.stderr))

    bare_names = {name for profile in profiles[bare.key] for name, *_ in profile}
    instrumented_profiles = profiles[instrumented.key]
    parents = _parents(instrumented_profiles[0])
    added_names = [name for name, *_ in instrumented_profiles[0] if name not in bare_names]
    added = []
    for name in added_names:
        samples = [
            (self_us, cumulative_us)
            for profile in instrumented_profiles
            for module, self_us, cumulative_us, _ in profile
            if module == name
        ]
        added.append(
            ImportedModule(
                name=name,
                self_us=median([sample[0] for sample in samples]),
                cumulative_us=median([sample[1] for sample in samples]),
                starts_chain=parents.get(name) not in added_names,
            )
        )
    added.sort(key=lambda module: -module.cumulative_us)

    def total(profiles_of_variant: list[list[tuple[str, int, int, int]]]) -> float:
        return median(
            [sum(self_us for _, self_us, _, _ in profile) for profile in profiles_of_variant]
        )

    return ImportProfile(
        runs=runs,
        added=added,
        added_self_us=sum(module.self_us for module in added),
        bare_total_us=total(profiles[bare.key]),
        instrumented_total_us=total(instrumented_profiles),
        forbidden_added=[name for name in added_names if is_forbidden(name)],
    )


# -- sockets and modules at exit ---------------------------------------------------------


@dataclass(frozen=True)
class Audit:
    key: str
    label: str
    socket_events: dict[str, int]
    forbidden_loaded: list[str]


def audit_variants(
    variants: Sequence[Variant], homes: dict[str, Path], report_dir: Path
) -> list[Audit]:
    """One run of each variant under an audit hook: sockets used, forbidden modules loaded."""
    audits = []
    for variant in variants:
        report = report_dir / f"audit-{variant.key}.txt"
        run_checked(
            tool_command(
                "socket_audit.py", str(report), str(TOOLS_DIR / variant.script), *SHORT_COMMAND
            ),
            child_environment(homes[variant.key], variant.environment),
        )
        events: dict[str, int] = {}
        modules = []
        for line in report.read_text(encoding="utf-8").splitlines():
            kind, name, *count = line.split()
            if kind == "event":
                events[name] = int(count[0])
            else:
                modules.append(name)
        forbidden = sorted({name.split(".")[0] for name in modules if is_forbidden(name)})
        audits.append(Audit(variant.key, variant.label, events, forbidden))
    return audits


# -- where the added time goes -----------------------------------------------------------

REST_OF_PROCESS = "start-up and exit (the rest of the wall time)"
WHOLE_PROCESS = "whole process (wall time)"


@dataclass(frozen=True)
class Phase:
    name: str
    bare_ms: float | None
    instrumented_ms: float


@dataclass
class PhaseBreakdown:
    runs: int
    phases: list[Phase]


def measure_phases(
    bare: Variant, instrumented: Variant, homes: dict[str, Path], report_dir: Path, *, runs: int
) -> PhaseBreakdown:
    """Both variants' phases, timed from inside the process by tools/phases.py (medians)."""
    samples: dict[str, dict[str, list[float]]] = {"bare": {}, "instrumented": {}}
    for run in range(runs):
        for kind, variant in (("bare", bare), ("instrumented", instrumented)):
            report = report_dir / f"phases-{kind}-{run}.json"
            timed = run_timed(
                tool_command("phases.py", kind, str(report)),
                child_environment(homes[variant.key], variant.environment),
            )
            if timed.exit_code != 0:
                raise RuntimeError(f"phases.py {kind} exited with {timed.exit_code}")
            phases: dict[str, float] = json.loads(report.read_text(encoding="utf-8"))
            inside = sum(ms for name, ms in phases.items() if not name.startswith("of which"))
            phases[REST_OF_PROCESS] = timed.wall_ms - inside
            phases[WHOLE_PROCESS] = timed.wall_ms
            for name, ms in phases.items():
                samples[kind].setdefault(name, []).append(ms)
    return PhaseBreakdown(
        runs=runs,
        phases=[
            Phase(
                name=name,
                bare_ms=median(samples["bare"][name]) if name in samples["bare"] else None,
                instrumented_ms=median(values),
            )
            for name, values in samples["instrumented"].items()
        ],
    )
