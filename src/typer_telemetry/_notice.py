"""The first-run notice: one line on stderr, once per machine, never on stdout."""

from __future__ import annotations

import sys


def notice_text(tool_name: str, env_prefix: str, opt_out_command: str | None) -> str:
    """The notice; `opt_out_command` is None when the tool mounts no telemetry commands."""
    opt_out = f"{opt_out_command} or " if opt_out_command else ""
    return (
        f"{tool_name} collects anonymous usage data (which commands run, how long they take, "
        f"whether they fail; never arguments, paths or messages). "
        f"Opt out: {opt_out}{env_prefix}_TELEMETRY=0."
    )


def show_notice(tool_name: str, env_prefix: str, opt_out_command: str | None) -> None:
    try:
        sys.stderr.write(notice_text(tool_name, env_prefix, opt_out_command) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # a closed or broken stderr must not break the tool
