"""Variant (d): the sample tool instrumented by hand with PostHog's Python client.

What a tool author would write: a client, one event captured as each command
ends, and the client shut down (which sends what is queued) as the process
exits. BENCH_RECEIVER_URL is the runner's local receiver, standing in for PostHog.
"""

from __future__ import annotations

import os

from posthog import Posthog
from sample_app import build_app

TOOL_VERSION = "1.0.0"
# A real tool would store a random id per user; a constant keeps that cost out.
DISTINCT_ID = "5b0e1f3c-0d8e-4c9a-9f57-2b8f6f0c1a77"

posthog = Posthog("phc_benchmark", host=os.environ["BENCH_RECEIVER_URL"])


def capture(command: str) -> None:
    posthog.capture(
        "command_run",
        distinct_id=DISTINCT_ID,
        properties={"command": command, "tool_version": TOOL_VERSION},
    )


app = build_app(capture)

if __name__ == "__main__":
    try:
        app()
    finally:
        posthog.shutdown()
