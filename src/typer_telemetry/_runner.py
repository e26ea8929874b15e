"""Who ran the command: a person at a terminal, a script, or a coding agent.

A tool author who opts in to the "runner" signal learns which share of their
tool's use comes from coding agents, and from which ones. Coding agents mark
the commands they run with an environment variable of their own; this module
holds the table of those variables (each entry cites where the variable is
documented or set) and maps a matching run onto a fixed list of agent names.
Nothing the environment or an MCP client says is ever passed through: the
result is always one of `RUNNERS` and one of `AGENTS` (or ""), so a variable's
value, however odd or long, cannot leave the machine (see docs/signals.md).

When the signal is on this runs on every recorded invocation: one look-up
per row of the table, no imports, no system calls (the caller says whether
stdin and stderr are terminals). Against `os.environ` that is about 50 us
(CPython 3.11: each absent name raises and catches a KeyError inside
`os.environ`), against a plain dict about 5 us.

Hot path: standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping

RUNNERS = ("terminal", "script", "agent")

AGENTS: tuple[str, ...] = (
    "claude_code",
    "claude_desktop",
    "codex",
    "gemini_cli",
    "qwen_code",
    "copilot",
    "cursor",
    "opencode",
    "crush",
    "amp",
    "goose",
    "augment",
    "pi",
    "cline",
    "roo_code",
    "kilo_code",
    "continue",
    "windsurf",
    "zed",
    "antigravity",
    "warp",
    "amazon_q",
    "factory_droid",
    "chatgpt",
    "other",
)

# (environment variable, required value or None for "set and not empty",
# agent), checked in this order; the first match names the agent.
#
# Order: agents that run in a terminal of their own come before agents that
# live in an editor, and the generic AGENT / AI_AGENT conventions come last.
# When two agents' variables are both set, one agent was started from inside
# the other (an agent's command inherits the environment it was started in),
# and the environment cannot say which is the inner one. A terminal agent is
# commonly started from an editor's terminal, whose variables it inherits,
# while an editor is practically never started by a terminal agent; so the
# terminal agent is the likelier one to have run the command. A named variable
# beats the generic ones because those are also inherited by everything an
# agent starts, and say less.
#
# A required value is compared after stripping blanks and lower-casing, and
# for AGENT / AI_AGENT with any "@version" suffix removed (the AI_AGENT
# convention allows "name@version").
#
# Left out on purpose: variables an editor sets in every integrated terminal,
# a person's included (CURSOR_TRACE_ID, TERM_PROGRAM=vscode|zed|kiro, Windsurf's
# CODEIUM_EDITOR_APP_ROOT, Replit's REPL_ID): they would count people as
# agents. Aider, Devin and Factory's Droid set no variable in the commands
# they run (https://github.com/ascorbic/am-i-vibing/blob/main/packages/am-i-vibing/src/providers.ts).
AGENT_VARIABLES: tuple[tuple[str, str | None, str], ...] = (
    # Claude Code sets CLAUDECODE=1 in the shell commands it runs, and (since
    # 2.1.172) CLAUDE_CODE_CHILD_SESSION=1 in what its own tools and hooks spawn:
    # https://code.claude.com/docs/en/env-vars
    # https://github.com/anthropics/claude-code/issues/24838
    ("CLAUDECODE", "1", "claude_code"),
    ("CLAUDE_CODE_CHILD_SESSION", "1", "claude_code"),
    # Codex CLI puts the session's thread id into every shell command, and
    # CODEX_SANDBOX=seatbelt / CODEX_SANDBOX_NETWORK_DISABLED=1 on sandboxed ones:
    # https://github.com/openai/codex/blob/main/codex-rs/core/src/spawn.rs
    # https://github.com/openai/codex/blob/main/codex-rs/protocol/src/shell_environment.rs
    ("CODEX_THREAD_ID", None, "codex"),
    ("CODEX_SANDBOX", None, "codex"),
    ("CODEX_SANDBOX_NETWORK_DISABLED", "1", "codex"),
    # Codex cloud tasks: https://github.com/vercel/detect-agent/blob/main/agents.json
    ("CODEX_CI", "1", "codex"),
    # Qwen Code, a fork of Gemini CLI, sets QWEN_CODE=1 on every shell command
    # (checked before Gemini CLI in case a fork keeps GEMINI_CLI too):
    # https://github.com/ascorbic/am-i-vibing/blob/main/packages/am-i-vibing/src/providers.ts
    ("QWEN_CODE", "1", "qwen_code"),
    # Gemini CLI sets GEMINI_CLI=1 for shell commands and MCP servers it starts:
    # https://github.com/google-gemini/gemini-cli/blob/main/packages/core/src/services/shellExecutionService.ts
    ("GEMINI_CLI", "1", "gemini_cli"),
    # GitHub Copilot CLI (and the Copilot SDK that VS Code's agent shares) sets
    # COPILOT_CLI=1 in every subprocess; the cloud coding agent sets
    # COPILOT_AGENT_SESSION_ID: https://github.com/dynatrace-oss/dtctl/pull/289
    # https://github.com/Azure/azure-dev/pull/8249 https://github.com/watson/is-ci/issues/28
    ("COPILOT_CLI", "1", "copilot"),
    ("COPILOT_AGENT_SESSION_ID", None, "copilot"),
    # Cursor's agent CLI sets CURSOR_AGENT=1: https://cursor.com/docs/agent/tools/terminal
    ("CURSOR_AGENT", "1", "cursor"),
    # Cursor's editor agent runs commands with this extension-host role:
    # https://github.com/vercel/detect-agent/blob/main/agents.json
    ("CURSOR_EXTENSION_HOST_ROLE", "agent-exec", "cursor"),
    # opencode: https://github.com/vercel/detect-agent/blob/main/agents.json
    # https://github.com/ascorbic/am-i-vibing/blob/main/packages/am-i-vibing/src/providers.ts
    ("OPENCODE", "1", "opencode"),
    ("OPENCODE_CLIENT", None, "opencode"),
    # Crush sets CRUSH=1, AGENT=crush and AI_AGENT=crush on every shell command:
    # https://github.com/charmbracelet/crush/blob/main/internal/shell/shell.go
    ("CRUSH", "1", "crush"),
    ("AGENT", "crush", "crush"),
    ("AI_AGENT", "crush", "crush"),
    # Amp sets AGENT=amp and AMP_CURRENT_THREAD_ID in its shell tool:
    # https://ampcode.com/manual/appendix#permissions-delegation
    # https://github.com/vercel/vercel/pull/15350
    ("AMP_CURRENT_THREAD_ID", None, "amp"),
    ("AGENT", "amp", "amp"),
    # Goose sets GOOSE_TERMINAL=1 and AGENT=goose for the commands it runs:
    # https://github.com/aaif-goose/goose/pull/4205 https://github.com/aaif-goose/goose/pull/7017
    ("GOOSE_TERMINAL", "1", "goose"),
    ("AGENT", "goose", "goose"),
    # Augment's Auggie CLI sets AUGMENT_AGENT=1: https://docs.augmentcode.com/cli/reference
    ("AUGMENT_AGENT", "1", "augment"),
    # Pi sets PI_CODING_AGENT=true and passes it to its shell commands:
    # https://github.com/ascorbic/am-i-vibing/blob/main/packages/am-i-vibing/src/providers.ts
    ("PI_CODING_AGENT", "true", "pi"),
    # Editor agents. VS Code's Copilot agent terminals: COPILOT_AGENT=1 and
    # AI_AGENT=github_copilot_vscode_agent:
    # https://github.com/microsoft/vscode/pull/316267 https://github.com/microsoft/vscode/pull/320129
    ("COPILOT_AGENT", "1", "copilot"),
    ("AI_AGENT", "github_copilot_vscode_agent", "copilot"),
    # Cline sets CLINE_ACTIVE (non-empty) in the terminals it opens to run
    # commands (Cline's documentation, "Disable terminal pagers during Cline
    # sessions", https://docs.cline.bot): https://github.com/cline/cline/discussions/5366
    ("CLINE_ACTIVE", None, "cline"),
    # Google Antigravity's agent: https://github.com/vercel/detect-agent/blob/main/agents.json
    ("ANTIGRAVITY_AGENT", None, "antigravity"),
    # Warp's agent sets OZ_RUN_ID for the commands it runs:
    # https://github.com/ascorbic/am-i-vibing/blob/main/packages/am-i-vibing/src/providers.ts
    ("OZ_RUN_ID", None, "warp"),
    # The generic conventions. A value that is one of AGENTS (with "-" for
    # "_" allowed, e.g. AI_AGENT=claude-code) names that agent; any other
    # value is an agent this table does not know: "other".
    # AGENT=<name>: https://github.com/agentsmd/agents.md/issues/136
    # AI_AGENT=<name>: https://github.com/vercel/detect-agent/blob/main/README.md
    ("AGENT", None, "other"),
    ("AI_AGENT", None, "other"),
)

# The generic variables: their value may name an agent, with an "@version"
# suffix to ignore.
_GENERIC = frozenset({"AGENT", "AI_AGENT"})
_KNOWN_AGENTS = frozenset(AGENTS)

# MCP clients: `clientInfo.name` of the `initialize` request, as the client
# sends it, and the agent it belongs to. Sources: the registries of observed
# names https://github.com/apify/mcp-client-capabilities (mcp-clients.json) and
# https://github.com/TianqiZhang/mcp-client-registry (clients.json).
# Names are matched after `_client_key` folds case and punctuation, so
# "Visual-Studio-Code" and "visual studio code" match "Visual Studio Code".
MCP_CLIENT_NAMES: tuple[tuple[str, str], ...] = (
    ("claude-code", "claude_code"),
    ("claude-ai", "claude_desktop"),
    ("claude-desktop", "claude_desktop"),
    ("codex-mcp-client", "codex"),
    ("Codex", "codex"),
    ("codex-cli", "codex"),
    ("gemini-cli-mcp-client", "gemini_cli"),
    ("gemini-cli", "gemini_cli"),
    ("Visual Studio Code", "copilot"),
    ("Visual Studio Code - Insiders", "copilot"),
    ("github-copilot-developer", "copilot"),
    ("JetBrains-IU/copilot-intellij", "copilot"),
    ("Xcode-copilot-xcode", "copilot"),
    ("cursor-vscode", "cursor"),
    ("Cursor", "cursor"),
    ("opencode", "opencode"),
    ("crush", "crush"),
    ("amp-mcp-client", "amp"),
    ("goose", "goose"),
    ("Cline", "cline"),
    ("Roo Code", "roo_code"),
    ("Kilo-Code", "kilo_code"),
    ("continue-client", "continue"),
    ("continue-cli-client", "continue"),
    ("windsurf-client", "windsurf"),
    ("Windsurf", "windsurf"),
    ("Zed", "zed"),
    ("antigravity-client", "antigravity"),
    ("warp", "warp"),
    ("Q-DEV-CLI", "amazon_q"),
    ("q-cli", "amazon_q"),
    ("factory-cli", "factory_droid"),
    ("ChatGPT", "chatgpt"),
    ("openai-mcp", "chatgpt"),
)

# Longer than any real client name; a longer value is not looked at.
MAX_CLIENT_NAME_LENGTH = 200

_by_client_key: dict[str, str] = {}


def _client_key(name: str) -> str:
    """`name` case-folded, with every run of non-alphanumerics made one space."""
    folded = "".join(char if char.isalnum() else " " for char in name.casefold())
    return " ".join(folded.split())


def _normalised(value: str, variable: str) -> str:
    value = value.strip().lower()
    if variable in _GENERIC:
        value = value.partition("@")[0].strip()
    return value


def detect_runner(
    environ: Mapping[str, str], *, stdin_is_terminal: bool, stderr_is_terminal: bool
) -> tuple[str, str]:
    """(runner, agent) for this run.

    ("agent", <one of AGENTS>) when a coding agent's variable is set (the first
    match in `AGENT_VARIABLES`); else ("terminal", "") when stdin and stderr are
    both terminals (a person typing: stdout alone may be piped, as in
    `tool | less`); else ("script", "") (cron, CI, a pipeline, a subprocess).
    """
    for variable, wanted, agent in AGENT_VARIABLES:
        value = environ.get(variable)
        if not isinstance(value, str) or not value.strip():
            continue
        if wanted is None and agent == "other" and variable in _GENERIC:
            named = _normalised(value, variable).replace("-", "_")
            return "agent", named if named in _KNOWN_AGENTS else "other"
        if wanted is None or _normalised(value, variable) == wanted:
            return "agent", agent
    if stdin_is_terminal and stderr_is_terminal:
        return "terminal", ""
    return "script", ""


def agent_from_client_name(name: object) -> str:
    """The agent behind an MCP client, from `clientInfo.name` of its `initialize`.

    A known client's agent name; "other" for any other string, a wrong type,
    an empty or an overlong value. Never returns the given text itself: it is
    free-form, typed by whoever wrote the client.
    """
    if not isinstance(name, str) or not 0 < len(name) <= MAX_CLIENT_NAME_LENGTH:
        return "other"
    if not _by_client_key:
        _by_client_key.update((_client_key(client), agent) for client, agent in MCP_CLIENT_NAMES)
    return _by_client_key.get(_client_key(name), "other")


def _cell(items: list[str]) -> str:
    return ", ".join(items) if items else "-"


def agent_table_markdown() -> str:
    """A Markdown table: agent | how it is detected (variable=value) | MCP client names."""
    rows = [
        "| Agent | Detected by (environment variable) | MCP `clientInfo.name` |",
        "| --- | --- | --- |",
    ]
    for agent in AGENTS:
        variables = [
            f"`{variable}`" if wanted is None else f"`{variable}={wanted}`"
            for variable, wanted, named in AGENT_VARIABLES
            if named == agent
        ]
        clients = [f"`{client}`" for client, named in MCP_CLIENT_NAMES if named == agent]
        if agent == "other":
            variables = [", ".join(variables) + " set to anything but an agent name above"]
            clients = ["any other name"]
        rows.append(f"| `{agent}` | {_cell(variables)} | {_cell(clients)} |")
    return "\n".join(rows) + "\n"
