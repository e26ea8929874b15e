"""Run outside_tool.py as an account whose passwd entry is given by the test.

HOME is unset in these tests, so the account's passwd entry decides where
files go; the test machines run as root, whose entry points at the real
/root, which a test must not touch. FILES_PASSWD_HOME=<folder> makes that
folder the entry's home; without it the account has no passwd entry at all
(as for an arbitrary uid in a container).
"""

from __future__ import annotations

import os
import pwd
import runpy
import sys
from pathlib import Path

_real_getpwuid = pwd.getpwuid


def _getpwuid(uid: int) -> pwd.struct_passwd:
    home = os.environ.get("FILES_PASSWD_HOME")
    if home is None:
        raise KeyError(f"getpwuid(): uid not found: {uid}")
    entry = _real_getpwuid(uid)
    return pwd.struct_passwd((*entry[:5], home, entry[6]))


pwd.getpwuid = _getpwuid
tool = Path(__file__).with_name("outside_tool.py")
sys.argv[0] = str(tool)
sys.path.insert(0, str(tool.parent))
runpy.run_path(str(tool), run_name="__main__")
