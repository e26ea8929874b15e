"""Run a tool script and write the names of the modules it loaded (at exit) to $MODULES_OUT.

python modules_loaded.py TOOL_SCRIPT [ARGS...]
"""

from __future__ import annotations

import atexit
import os
import runpy
import sys


def write_modules() -> None:
    with open(os.environ["MODULES_OUT"], "w") as output:
        output.write("\n".join(sorted(sys.modules)))


atexit.register(write_modules)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
