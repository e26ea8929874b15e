"""Run the outside tool's `hello` command many times in one process (real hook, real store).

    python burst.py COUNT

BURST_COMPACT_AT=<bytes> makes the store fold far more often than it normally
would, to put folding under load. After each invocation one byte goes to
stdout (the command itself prints nothing), so that a test that kills this
process knows how many invocations were acknowledged.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import outside_tool

from typer_telemetry import _recording

if os.environ.get("BURST_COMPACT_AT"):
    _recording.FOLD_AT_BYTES = int(os.environ["BURST_COMPACT_AT"])


def main() -> None:
    count = int(sys.argv[1])
    for _ in range(count):
        try:
            outside_tool.app(["hello", "burst", "-n", "0"], prog_name="outside_tool.py")
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                raise
        os.write(1, b".")


if __name__ == "__main__":
    main()
