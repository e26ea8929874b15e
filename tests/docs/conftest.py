"""The documentation tests: the summary says how many of the docs' Python blocks ran."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    totals = {"docs_blocks_run": 0, "docs_blocks_skipped": 0}
    seen = False
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if name in totals and getattr(report, "when", "call") == "call":
                    totals[name] += value
                    seen = True
    if seen:
        terminalreporter.write_line(
            f"documentation code blocks: {totals['docs_blocks_run']} ran,"
            f" {totals['docs_blocks_skipped']} skipped (<!-- not run: ... -->)"
        )
