"""Consent: the precedence table of TELEMETRY.md ("Turning it off"), in one function.

Hot path: standard library only, no I/O (the stored choice is read by the caller).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

# For the type checker only: building `Literal` aliases at import costs more
# than the rest of this module, on every run of the tool.
if TYPE_CHECKING:
    from typing import Literal, TypeAlias

    Policy: TypeAlias = Literal["opt-out", "opt-in"]
    StoredChoice: TypeAlias = Literal["enabled", "disabled", "unset", "unreadable"]
    Source: TypeAlias = Literal[
        "sandbox", "do_not_track", "env_disabled", "env", "unsafe_files", "ci", "config", "default"
    ]

# The library-wide switch of a test session (the pytest plugin sets it): every
# tool that uses the library records nothing and keeps its files in that folder.
SANDBOX_VARIABLE = "TYPER_TELEMETRY_SANDBOX"

_OFF_WORDS = frozenset({"", "0", "false", "no", "off"})
_ON_WORDS = frozenset({"1", "true", "yes", "on"})

# Variables whose presence means "this runs in CI". `CI` itself is read like a
# boolean (CI=false is not CI); the providers' own variables count when non-empty.
CI_PROVIDER_VARIABLES = (
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "CIRCLECI",
    "TRAVIS",
    "JENKINS_URL",
    "BUILDKITE",
    "TEAMCITY_VERSION",
    "TF_BUILD",
    "BITBUCKET_BUILD_NUMBER",
    "CODEBUILD_BUILD_ID",
    "APPVEYOR",
    "DRONE",
    "SEMAPHORE",
    "CIRRUS_CI",
    "BUDDY_WORKSPACE_ID",
    "HEROKU_TEST_RUN_ID",
    "CF_BUILD_ID",
    "SCREWDRIVER",
    "WOODPECKER",
    "CONTINUOUS_INTEGRATION",
    "RUN_ID",
)
CI_VARIABLES = ("CI", *CI_PROVIDER_VARIABLES)


class Decision:
    """Whether telemetry is on, which row of the table decided, and why, in words."""

    __slots__ = ("enabled", "reason", "source")

    def __init__(self, enabled: bool, source: Source, reason: str) -> None:
        self.enabled = enabled
        self.source: Source = source
        self.reason = reason

    def __repr__(self) -> str:
        return f"Decision(enabled={self.enabled}, source={self.source!r}, reason={self.reason!r})"


def env_prefix(tool_name: str) -> str:
    """`my-tool` -> `MY_TOOL`: the prefix of the tool's telemetry variables."""
    return "".join(char if char.isascii() and char.isalnum() else "_" for char in tool_name.upper())


def is_set(value: str | None) -> bool:
    """A variable counts as set unless it is absent, empty, 0, false, no or off (any case)."""
    return value is not None and value.strip().lower() not in _OFF_WORDS


def ci_variable(environ: Mapping[str, str]) -> str | None:
    """The name of the variable that shows this runs in CI, if any."""
    if is_set(environ.get("CI")):
        return "CI"
    for name in CI_PROVIDER_VARIABLES:
        if environ.get(name, "").strip():
            return name
    return None


def decided_by_environment(prefix: str, environ: Mapping[str, str]) -> Decision | None:
    """The rows of the table that need no file: the decision, or None to read on.

    An "off" it returns is final (rows 1 to 4). An "on" (row 6, the switch)
    and CI (row 7) still yield to unsafe files (row 5), which `decide` checks.
    A test session's sandbox comes first: no variable a test sets for its
    tool, nor a stored choice, may make a test run record.
    """
    if environ.get(SANDBOX_VARIABLE, "").strip():
        return Decision(False, "sandbox", f"a test session's sandbox ({SANDBOX_VARIABLE} is set)")
    if is_set(environ.get("DO_NOT_TRACK")):
        return Decision(False, "do_not_track", "DO_NOT_TRACK is set")

    disabled_variable = f"{prefix}_TELEMETRY_DISABLED"
    if is_set(environ.get(disabled_variable)):
        return Decision(False, "env_disabled", f"{disabled_variable} is set")

    switch_variable = f"{prefix}_TELEMETRY"
    switch = environ.get(switch_variable, "").strip().lower()
    if switch in _OFF_WORDS - {""}:
        return Decision(False, "env", f"{switch_variable}={environ[switch_variable].strip()}")
    if switch in _ON_WORDS:
        return Decision(True, "env", f"{switch_variable}={environ[switch_variable].strip()}")

    ci = ci_variable(environ)
    if ci is not None:
        return Decision(False, "ci", f"running in CI ({ci} is set)")
    return None


def decide(
    prefix: str,
    environ: Mapping[str, str],
    stored: StoredChoice,
    policy: Policy,
    unsafe: str | None = None,
) -> Decision:
    """Apply the consent table; the first matching row wins.

    `unsafe` says why the telemetry files cannot be trusted (a folder or file
    another user owns or others may write to), else None. It turns telemetry
    off whatever the stored choice, the default or `<NAME>_TELEMETRY=1` say:
    nothing can be stored or recorded safely there. An opt-out in the
    environment still reports as itself.
    """
    by_environment = decided_by_environment(prefix, environ)
    if by_environment is not None and not by_environment.enabled and by_environment.source != "ci":
        return by_environment
    if unsafe is not None:
        return Decision(False, "unsafe_files", unsafe)
    if by_environment is not None:
        return by_environment

    if stored == "enabled":
        return Decision(True, "config", "enabled by your stored choice")
    if stored == "disabled":
        return Decision(False, "config", "disabled by your stored choice")
    if stored == "unreadable":
        # The stored choice might have been "disabled": never guess it was not.
        return Decision(False, "config", "the telemetry config file cannot be read")

    if policy == "opt-in":
        return Decision(False, "default", "off until enabled (the tool asks for opt-in)")
    return Decision(True, "default", "on by default (opt-out)")
