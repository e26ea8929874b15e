"""docs/configuration.md documents every argument, every option and every variable the library reads.

The lists are taken from the code itself (the signatures, and what the
source reads from the environment), so that a new argument or variable fails
here until the page explains it.
"""

from __future__ import annotations

import inspect
import re

from tests.conftest import ROOT
from typer_telemetry import Telemetry
from typer_telemetry._consent import CI_VARIABLES
from typer_telemetry._runner import AGENT_VARIABLES

PAGE = ROOT / "docs" / "configuration.md"
SOURCE = ROOT / "src" / "typer_telemetry"
EXAMPLE_PREFIX = "MYTOOL"

# How the source reads a variable by its literal name.
READ_BY_NAME = re.compile(
    r"""(?:environ\.get\(|environ\[|getenv\()\s*["'](?P<name>[A-Z_][A-Z0-9_]*)["']"""
)
# A tool's own variable: f"{prefix}_TELEMETRY_DEBUG", f"{self.env_prefix}_TELEMETRY".
TOOL_VARIABLE = re.compile(r"\}(?P<suffix>_TELEMETRY(?:_[A-Z]+)*)\b")
# A name looked up from a table of (variable, default) pairs, as the XDG folders are.
XDG_VARIABLE = re.compile(r"""["'](?P<name>XDG_[A-Z_]+)["']""")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def _documented(name: str, text: str) -> bool:
    """Written as code on the page: `NAME`, `NAME=...`, `NAME`/..., `name=`."""
    return re.search(rf"`{re.escape(name)}(?:[`=/ ]|\.\.\.)", text) is not None


def variables_the_library_reads() -> set[str]:
    names: set[str] = {*CI_VARIABLES, *(variable for variable, _, _ in AGENT_VARIABLES)}
    for path in SOURCE.rglob("*.py"):
        code = path.read_text(encoding="utf-8")
        names.update(match["name"] for match in READ_BY_NAME.finditer(code))
        names.update(EXAMPLE_PREFIX + match["suffix"] for match in TOOL_VARIABLE.finditer(code))
        names.update(match["name"] for match in XDG_VARIABLE.finditer(code))
        if "getproxies_environment" in code:
            names.update(PROXY_VARIABLES)
        if 'endswith("_COMPLETE")' in code:
            names.add("_MYTOOL_COMPLETE")
    return names


def test_the_scan_finds_the_variables_of_each_kind() -> None:
    # Guards the scan itself: each way of reading a variable is still recognised.
    found = variables_the_library_reads()
    for name in (
        "DO_NOT_TRACK",
        "MYTOOL_TELEMETRY",
        "MYTOOL_TELEMETRY_DISABLED",
        "MYTOOL_TELEMETRY_DEBUG",
        "MYTOOL_TELEMETRY_ENDPOINT",
        "GITHUB_ACTIONS",
        "CLAUDECODE",
        "SSL_CERT_FILE",
        "https_proxy",
    ):
        assert name in found


def test_every_environment_variable_the_library_reads_is_on_the_configuration_page() -> None:
    text = PAGE.read_text(encoding="utf-8")
    missing = sorted(name for name in variables_the_library_reads() if not _documented(name, text))
    assert not missing, f"docs/configuration.md does not document {missing}"


def test_every_telemetry_argument_is_on_the_configuration_page() -> None:
    text = PAGE.read_text(encoding="utf-8")
    arguments = [
        name for name in inspect.signature(Telemetry.__init__).parameters if name != "self"
    ]
    assert "endpoint" in arguments
    missing = [name for name in arguments if not _documented(name, text)]
    assert not missing, f"docs/configuration.md does not document Telemetry({missing})"


def test_every_instrument_option_is_on_the_configuration_page() -> None:
    text = PAGE.read_text(encoding="utf-8")
    options = [
        name for name in inspect.signature(Telemetry.instrument).parameters if name != "self"
    ]
    assert "group_name" in options
    missing = [name for name in options if not _documented(name, text)]
    assert not missing, f"docs/configuration.md does not document instrument({missing})"
