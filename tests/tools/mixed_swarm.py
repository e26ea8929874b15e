"""One process of a swarm running the example warehouse tool: commands that record events too.

    python mixed_swarm.py PLAN_JSON

PLAN_JSON is a list of command lines run one after the other through the
example's app, in this process, with its real hook, recorder and store.
After each one a line goes to stdout: `ack <exit code>`, once the
invocation (and the event it recorded) is in the journal.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "warehouse.py"


def main() -> None:
    warehouse = runpy.run_path(str(EXAMPLE), run_name="warehouse")
    app = warehouse["app"]
    for arguments in json.loads(sys.argv[1]):
        try:
            app(arguments, prog_name="warehouse")
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        sys.stdout.write(f"ack {code}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
