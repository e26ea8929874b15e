"""The spec's budgets, each with what this run measured and PASS or MISS."""

from __future__ import annotations

from collections.abc import Callable

from report import Budget, Results

MAX_ADDED_MS = 5.0
MAX_ADDED_PERCENT = 5.0
STRETCH_ADDED_MS = 3.0
MAX_EXIT_DELAY_MS = 50.0
MAX_STORE_BYTES = 64 * 1024
MIN_COLLECTOR_SHARE = 0.5  # of the trivial endpoint's accepted batches per second

# What a check returns: the figure measured, and whether it is within budget;
# None when the section it needs failed.
Outcome = tuple[str, bool] | None
# The same, for a check that may also find its measurement too noisy to judge
# (then the verdict is a sentence that says so).
Verdict = tuple[str, bool | str] | None


# A wall-clock comparison whose middle half of paired differences is wider than
# this cannot tell a few milliseconds apart: it neither passes nor misses.
NOISE_LIMIT_MS = 2 * MAX_ADDED_MS
INCONCLUSIVE = "NOT CONCLUSIVE"


def _wall_noise(results: Results) -> float:
    assert results.short is not None
    low, high = results.short.figures("telemetry").added_wall_spread_ms
    return high - low


def _wall_verdict(results: Results, passed: bool) -> str | bool:
    noise = _wall_noise(results)
    if noise > NOISE_LIMIT_MS:
        return f"{INCONCLUSIVE}: the middle half of the paired differences spans {noise:.0f} ms"
    return passed


def _added_time(results: Results) -> Verdict:
    if results.short is None:
        return None
    added = results.short.figures("telemetry")
    return (
        f"{added.added_wall_ms:+.1f} ms ({added.added_wall_percent:+.1f}%)",
        _wall_verdict(
            results,
            added.added_wall_ms <= MAX_ADDED_MS and added.added_wall_percent <= MAX_ADDED_PERCENT,
        ),
    )


def _instruction_estimate(results: Results) -> tuple[str, float, float] | None:
    """The added instructions of a recorded short invocation, and the ms and % they come to.

    The milliseconds are those of an uncontended run: the instructions at the
    rate of the bare tool's fastest run. On a shared machine the median run
    is slowed by others' load, every instruction of it alike, Typer's and
    Python's as much as the library's; the same instructions at this run's
    median rate are shown beside.
    """
    counts = results.instructions.current if results.instructions else None
    if counts is None:
        return None
    uncontended_ms = counts.added_ms_fastest("telemetry")
    median_ms = counts.added_ms("telemetry")
    if uncontended_ms is None or median_ms is None:
        return None
    percent = counts.added_percent("telemetry")
    measured = (
        f"{counts.added('telemetry') / 1e6:+.1f} M instructions ({percent:+.1f}%): "
        f"≈ {uncontended_ms:+.1f} ms at the uncontended rate "
        f"({(counts.rate(fastest=True) or 0.0) / 1e6:.2f} M instructions per ms, the bare "
        f"tool's fastest run), ≈ {median_ms:+.1f} ms at this run's median rate "
        f"({(counts.rate() or 0.0) / 1e6:.2f} M per ms, slowed by the machine's load)"
    )
    return measured, uncontended_ms, percent


def _added_instructions(results: Results) -> Verdict:
    """The same budget judged on instructions executed, which the machine's load does not move.

    The percentage is that of instructions; the milliseconds an estimate at
    the bare tool's own instructions-per-ms rate (see report.instruction_lines).
    """
    estimate = _instruction_estimate(results)
    if estimate is None:
        return None
    measured, added_ms, percent = estimate
    return measured, added_ms <= MAX_ADDED_MS and percent <= MAX_ADDED_PERCENT


def _added_instructions_stretch(results: Results) -> Verdict:
    estimate = _instruction_estimate(results)
    if estimate is None:
        return None
    _, added_ms, _ = estimate
    return f"≈ {added_ms:+.1f} ms (uncontended)", added_ms <= STRETCH_ADDED_MS


def _added_time_stretch(results: Results) -> Verdict:
    if results.short is None:
        return None
    added = results.short.figures("telemetry")
    return (
        f"{added.added_wall_ms:+.1f} ms",
        _wall_verdict(results, added.added_wall_ms <= STRETCH_ADDED_MS),
    )


def _imports(results: Results) -> Outcome:
    """Forbidden modules the library brings in: in its import profile, or loaded by exit."""
    if results.imports is None or results.audits is None:
        return None
    loaded = {audit.key: set(audit.forbidden_loaded) for audit in results.audits}
    added = sorted(
        {name.split(".")[0] for name in results.imports.forbidden_added}
        | (loaded["telemetry"] - loaded["bare"])
    )
    return (", ".join(added) or "none beyond the bare tool's"), not added


def _network(results: Results) -> Outcome:
    if results.short is None or results.audits is None:
        return None
    audit = next(audit for audit in results.audits if audit.key == "telemetry")
    sockets = audit.socket_events.get("socket.__new__", 0)
    requests = results.short.figures("telemetry").requests_per_run or 0.0
    return (
        f"{sockets} sockets created; {requests:.0f} requests per run",
        sockets == 0 and requests == 0,
    )


def _exit_delay(results: Results) -> Outcome:
    """The delay at exit: from the command's last output to the end of the process.

    Measured against the same command with telemetry off. The whole run's
    wall-time difference is shown too; it also holds the recording and the
    first run's config write, which happen before the command ends.
    """
    if results.exit_delays is None:
        return None
    hung, slow, healthy, unaccepting = (
        results.exit_delays.delay(name) for name in ("hung", "slow", "healthy", "unaccepting")
    )
    return (
        f"{hung.after_command_delay_ms:+.1f} ms after the command (whole run "
        f"{hung.delay_ms:+.1f} ms); slow endpoint {slow.after_command_delay_ms:+.1f} ms, "
        f"healthy {healthy.after_command_delay_ms:+.1f} ms, never accepting "
        f"{unaccepting.after_command_delay_ms:+.1f} ms",
        hung.after_command_delay_ms <= MAX_EXIT_DELAY_MS and hung.sends_seen == hung.runs,
    )


def _store_size(results: Results) -> Outcome:
    if not results.stores:
        return None
    largest = max(results.stores, key=lambda figures: figures.records)
    on_disk = max(largest.allocated_after_appends, largest.allocated_folded)
    return (
        f"{on_disk / 1024:.1f} KiB on disk at most ({largest.records:,} invocations)",
        on_disk <= MAX_STORE_BYTES,
    )


def _concurrency(results: Results) -> Outcome:
    concurrent = results.concurrent
    if concurrent is None:
        return None
    return (
        f"{concurrent.counted:,} counted (exact: {'yes' if concurrent.counts_exact else 'no'}); "
        f"{concurrent.counted_in_batches:,} sent in {concurrent.batches_received} batch(es); "
        f"{concurrent.second_send_days} day(s) sent again",
        concurrent.passed,
    )


def _collector_share(results: Results, target: str) -> Outcome:
    """The worst share of the trivial endpoint's throughput, over every worker and connection count.

    A run whose store does not hold exactly what was sent, or with any answer
    other than 200 accepted, misses whatever its throughput.
    """
    figures = results.collector
    if figures is None or (worst := figures.worst_ratio(target)) is None:
        return None
    ratio, workers, connections = worst
    runs = [run for run in figures.runs if run.target == target]
    errors = sum(
        sum(run.fresh.errors.values()) + sum(run.duplicates.errors.values()) for run in runs
    )
    exact = all(run.store_exact for run in runs)
    return (
        f"{ratio:.0%} at worst ({workers} worker(s), {connections} connections); "
        f"{errors} errors; store {'exact' if exact else 'NOT exact'}",
        ratio >= MIN_COLLECTOR_SHARE and errors == 0 and exact,
    )


def _collector_sqlite(results: Results) -> Outcome:
    return _collector_share(results, "collector, SQLite")


def _collector_postgres(results: Results) -> Outcome:
    return _collector_share(results, "collector, PostgreSQL")


CHECKS: list[tuple[str, str, Callable[[Results], Verdict]]] = [
    (
        "added wall time of a short invocation vs the same Typer app without the library",
        f"<= {MAX_ADDED_MS:.0f} ms median and <= {MAX_ADDED_PERCENT:.0f}%",
        _added_time,
    ),
    (
        "the same, from instructions executed (load-independent; section 1)",
        f"<= {MAX_ADDED_MS:.0f} ms and <= {MAX_ADDED_PERCENT:.0f}%",
        _added_instructions,
    ),
    ("the same, stretch goal (wall time)", f"<= {STRETCH_ADDED_MS:.0f} ms", _added_time_stretch),
    (
        "the same, stretch goal (from instructions)",
        f"<= {STRETCH_ADDED_MS:.0f} ms",
        _added_instructions_stretch,
    ),
    ("imports on the hot path", "no httpx, rich, or back-end SDKs", _imports),
    ("network on a short invocation", "none (no socket created)", _network),
    (
        "exit delay of a long-running invocation with a hung endpoint",
        f"<= {MAX_EXIT_DELAY_MS:.0f} ms",
        _exit_delay,
    ),
    (
        "rollup store for 100,000 invocations of 10 distinct commands",
        f"<= {MAX_STORE_BYTES // 1024} KiB",
        _store_size,
    ),
    (
        "concurrent processes (16 x 200 invocations)",
        "every count exact, nothing duplicated after sending",
        _concurrency,
    ),
    (
        "collector on SQLite: accepted batches/s vs the trivial endpoint (section 9)",
        f">= {MIN_COLLECTOR_SHARE:.0%}, every answer accepted, store exact",
        _collector_sqlite,
    ),
    (
        "collector on PostgreSQL: the same",
        f">= {MIN_COLLECTOR_SHARE:.0%}, every answer accepted, store exact",
        _collector_postgres,
    ),
]


def evaluate_budgets(results: Results) -> list[Budget]:
    budgets = []
    for what, budget, check in CHECKS:
        outcome = check(results)
        if outcome is None:
            budgets.append(Budget(what, budget, "", "not measured"))
        else:
            measured, passed = outcome
            verdict = passed if isinstance(passed, str) else ("PASS" if passed else "MISS")
            budgets.append(Budget(what, budget, measured, verdict))
    return budgets
