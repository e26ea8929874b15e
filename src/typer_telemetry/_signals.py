"""The built-in signals an author turned on, as properties of every recorded event.

`runner` (who ran the tool: a terminal, a script, or a coding agent or MCP
client), `project` (a salted hash of the project folder) and the sample rate
(see docs/signals.md). Loaded only when the author turned one on.

Hot path: standard library only (it runs inside a recorded run).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._config import Config
    from ._paths import Paths
    from ._records import Properties
    from ._settings import Settings


def _is_terminal(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):  # closed, replaced, or no stream at all
        return False


def signal_properties(settings: Settings, config: Config, paths: Paths) -> Properties:
    """The properties the settings' signals add to an event recorded now."""
    properties: list[tuple[str, str | float]] = []
    if "runner" in settings.signals:
        from ._runner import detect_runner

        if settings.mcp_agent is not None:
            runner, agent = "agent", settings.mcp_agent
        else:
            runner, agent = detect_runner(
                os.environ,
                stdin_is_terminal=_is_terminal(sys.stdin),
                stderr_is_terminal=_is_terminal(sys.stderr),
            )
        properties.append(("runner", runner))
        if runner == "agent":
            properties.append(("agent", agent))
    if "project" in settings.signals:
        project = _project_id(settings, config, paths)
        if project is not None:
            properties.append(("project_id", project))
    if settings.sample_rate < 1.0:
        properties.append(("sample_rate", settings.sample_rate))
    return tuple(properties)


def _project_id(settings: Settings, config: Config, paths: Paths) -> str | None:
    """The salted id of the project folder the tool runs in; None if it cannot be had."""
    from ._identity import project_folder, project_id

    salt = config.project_salt
    if salt is None:
        from ._config import ConfigUnwritable, update_config, with_project_salt

        try:
            salt = update_config(
                paths, settings.name, with_project_salt, command=settings.group_command()
            ).project_salt
        except ConfigUnwritable as error:
            settings.debug(f"no project id: the salt cannot be stored ({error})")
            return None
    try:
        folder = project_folder(Path("."))
    except OSError as error:  # the working folder was deleted
        settings.debug(f"no project id: {error}")
        return None
    return None if salt is None else project_id(salt, folder)
