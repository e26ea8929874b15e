"""Variant (a): the sample tool with no telemetry at all, the baseline."""

from __future__ import annotations

from sample_app import build_app

app = build_app()

if __name__ == "__main__":
    app()
