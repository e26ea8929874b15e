"""One tool's telemetry contract: everything it could ever send, from its own code.

`tool_schema` describes one `Telemetry` object as a versioned JSON document:
the tool's name, its consent policy and variables, the exact first-run
notice, every command path the hook can record with the option names it can
record there, every event the tool declared with each field's allowed
values, the signals and sample rate the author turned on, where data goes,
and the record and envelope fields. It is the tool's published allowlist:
a receiver may refuse anything outside it. `telemetry_md` renders it as the
tool's own TELEMETRY.md for its users, `check_telemetry_md` says whether a
checked-in copy is current (for CI), and `load_target` finds the Telemetry
object of `pkg.module:attribute` for `python -m typer_telemetry`.

The commands are found the way the hook meets them: on the Click tree Typer
builds (`typer.main.get_command`), walked with `list_commands` and
`get_command` under a context, so a custom group class, aliases, lazily
loaded sub-commands and vendored Click (`typer._click`) are all seen as a
run sees them. Loaded only when asked (never on a run of the tool).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._checks import MAX_COMMAND_DEPTH, OUTCOMES, RUNNERS, is_command_path, is_flag
from ._hook import _NOT_RECORDED_PARAMETERS, TELEMETRY_MARKER, canonical_flag
from ._notice import notice_text
from ._paths import CONFIG_FILE_NAME, STORE_DIR_NAME
from ._schema import (
    ENVELOPE_FIELD_NAMES,
    ROLLUP_FIELD_NAMES,
    SCHEMA_VERSION,
    field_tables_markdown,
)

if TYPE_CHECKING:
    from ._settings import Settings
    from ._telemetry import Telemetry

FORMAT = "typer-telemetry-schema"
FORMAT_VERSION = 1
PYPI_PAGE = "https://pypi.org/project/typer-telemetry/"
# The attribute `instrument` sets on an app (the Mount that instruments it);
# `_telemetry._INSTRUMENTED_BY`, which this module sits below (a test holds them equal).
INSTRUMENTED_BY = "_typer_telemetry_instrumented_by"
# Deeper than this, nothing can be recorded (see MAX_COMMAND_DEPTH); the walk
# stops a little further down, past anything a real tool builds.
_MAX_WALK_DEPTH = MAX_COMMAND_DEPTH + 4
DIFF_LINES = 40
# A group that lists itself among its commands would be walked without end:
# past this many paths the contract is refused (no real tool comes near it).
MAX_PATHS = 10_000


class NoCommands(ValueError):
    """The Telemetry object instruments no app: a contract would list no commands."""


class TargetError(Exception):
    """`pkg.module:attribute` cannot be loaded as a Telemetry object (the message says why)."""


# -- the commands the hook can record ------------------------------------------------


class _OffSide:
    """What `canonical_flag` reads of a context: the on/off option given on its off side."""

    __slots__ = ("params",)

    def __init__(self, name: str | None) -> None:
        self.params = {name: False}


def _recordable_flags(command: Any, help_names: set[str]) -> list[str]:
    """Every option name the hook can record for `command`'s own options (both sides of on/off)."""
    flags: set[str] = set()
    for option in getattr(command, "params", ()):
        if getattr(option, "param_type_name", None) != "option":
            continue
        opts, secondary = list(option.opts), list(option.secondary_opts)
        if option.name in _NOT_RECORDED_PARAMETERS or not help_names.isdisjoint(opts + secondary):
            continue  # completion or help: the invocation is not recorded at all
        if opts:
            flags.add(canonical_flag(option))
        if secondary:
            flags.add(canonical_flag(option, _OffSide(option.name)))
    return sorted(flags)


def _context(command: Any, name: str | None, parent: Any) -> Any:
    """A context for `command` as Click would make it (its own settings), without parsing."""
    settings = dict(getattr(command, "context_settings", None) or {})
    try:
        return command.context_class(command, info_name=name, parent=parent, **settings)
    except TypeError:  # a setting this Click does not take
        return command.context_class(command, info_name=name, parent=parent)


def _root_command(telemetry: Telemetry) -> Any:
    """The Click command a run of the tool starts from (a one-command app's own command)."""
    import typer

    mount = telemetry._mount
    host = mount.host
    if host is None:
        raise NoCommands(
            f"Telemetry({telemetry.settings.name!r}) instruments no app: call"
            " telemetry.instrument(app) where the app is made, so that its commands are known"
        )
    single = mount.single_command([])
    if single is not None:
        return single
    root = typer.main.get_command(host)
    # What a run does first: find where the author mounted `telemetry.app` (its
    # words go into the notice), and refuse a clash that would fail every run.
    mount.prepare_mount(root)
    return root


def _walk(
    command: Any,
    context: Any,
    names: list[str],
    inherited: list[str],
    found: list[dict[str, Any]],
    dropped: list[str],
) -> None:
    if len(found) + len(dropped) >= MAX_PATHS:
        raise ValueError(
            f"more than {MAX_PATHS} command paths: does a group list itself among its commands?"
        )
    help_names = set(context.help_option_names or ())
    own = _recordable_flags(command, help_names)
    flags = sorted(set(inherited) | set(own))
    # The hook writes a name with a space with a tab: outside the schema, so dropped.
    path = " ".join(name.replace(" ", "\t") for name in names)
    subcommands = _subcommands(command, context)
    if is_command_path(path):
        recorded = [flag for flag in flags if is_flag(flag)]
        found.append(
            {
                "path": path,
                "group": subcommands is not None,
                "hidden": bool(getattr(command, "hidden", False)),
                "options": recorded,
                "options_left_out": [flag for flag in flags if flag not in recorded],
            }
        )
    else:
        dropped.append(path)
    if subcommands is None or len(names) >= _MAX_WALK_DEPTH:
        return
    for name, subcommand in subcommands:
        child_names = [*names, str(subcommand.name or "")]
        _walk(subcommand, _context(subcommand, name, context), child_names, flags, found, dropped)


def _subcommands(command: Any, context: Any) -> list[tuple[str, Any]] | None:
    """A group's sub-commands as its own `list_commands`/`get_command` give them; None: not a group."""
    if not hasattr(command, "resolve_command"):
        return None
    found = []
    seen: set[int] = set()
    for name in command.list_commands(context):
        subcommand = command.get_command(context, name)
        if subcommand is None or id(subcommand) in seen:
            continue  # an alias listed beside its command is the same command
        if getattr(subcommand, TELEMETRY_MARKER, False):
            continue  # the `telemetry` group: never recorded
        seen.add(id(subcommand))
        found.append((name, subcommand))
    return found


def recordable_commands(telemetry: Telemetry) -> tuple[list[dict[str, Any]], list[str]]:
    """(each command path the hook can record, with its options), (paths only counted as dropped)."""
    root = _root_command(telemetry)
    found: list[dict[str, Any]] = []
    dropped: list[str] = []
    _walk(root, _context(root, telemetry.settings.name, None), [], [], found, dropped)
    by_path: dict[str, dict[str, Any]] = {}
    for entry in found:  # one entry per path (a command reached twice is one command)
        earlier = by_path.setdefault(entry["path"], entry)
        if earlier is not entry:
            earlier["options"] = sorted(set(earlier["options"]) | set(entry["options"]))
            earlier["options_left_out"] = sorted(
                set(earlier["options_left_out"]) | set(entry["options_left_out"])
            )
            earlier["group"] = earlier["group"] or entry["group"]
            earlier["hidden"] = earlier["hidden"] and entry["hidden"]
    return [by_path[path] for path in sorted(by_path)], sorted(set(dropped))


# -- the whole description ------------------------------------------------------------


def _destination(settings: Settings) -> dict[str, str | None]:
    """Where the author sends data (the environment's override aside): kind and address."""
    from ._status import describe_destination

    if settings.backend is not None:
        described = describe_destination(settings.backend)
        return {
            "kind": str(described["kind"]),
            "address": described["address"],
            "class": described["class"] if described["kind"] == "custom" else None,
        }
    if settings.endpoint:
        return {"kind": "http", "address": settings.endpoint, "class": None}
    return {"kind": "none", "address": None, "class": None}


def _added_properties(settings: Settings) -> dict[str, dict[str, Any]]:
    """The properties the author's signals and sample rate add to every record, with their values."""
    added: dict[str, dict[str, Any]] = {}
    if "runner" in settings.signals:
        from ._runner import AGENTS

        added["runner"] = {"kind": "choice", "values": sorted(RUNNERS)}
        added["agent"] = {
            "kind": "choice",
            "values": sorted({*AGENTS, "other"}),
            "only_with": {"runner": "agent"},
        }
    if "project" in settings.signals:
        added["project_id"] = {"kind": "hash", "pattern": "^[0-9a-f]{32}$"}
    if settings.sample_rate < 1.0:
        added["sample_rate"] = {"kind": "number", "values": [settings.sample_rate]}
    return dict(sorted(added.items()))


def _event_fields(event: Any) -> dict[str, dict[str, Any]]:
    from ._events import Bucket, Choice

    fields: dict[str, dict[str, Any]] = {}
    for field, spec in sorted(event.declaration.fields.items()):
        if isinstance(spec, Choice):
            fields[field] = {"kind": "choice", "values": list(spec.allowed())}
        elif isinstance(spec, Bucket):
            fields[field] = {
                "kind": "bucket",
                "bounds": list(spec.bounds),
                "values": list(spec.allowed()),
            }
        else:
            fields[field] = {"kind": "flag", "values": [True, False]}
    return fields


def tool_schema(telemetry: Telemetry) -> dict[str, Any]:
    """The tool's telemetry contract as a JSON-able document, sorted, the same on every machine.

    Raises `NoCommands` when `telemetry` instruments no app (call
    `telemetry.instrument(app)` first): a contract listing no commands
    would be wrong, not empty. Every key is described in
    docs/your-telemetry-md.md.
    """
    commands, dropped = recordable_commands(telemetry)
    settings = telemetry.settings  # after the walk: the group's words, as a run finds them
    prefix = settings.env_prefix
    words = settings.group_words
    opt_out = settings.opt_out_command()
    events = {
        name: {"fields": _event_fields(event)} for name, event in sorted(telemetry._events.items())
    }
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "schema_version": SCHEMA_VERSION,
        "tool": settings.name,
        "tool_version": settings.version,
        "consent": settings.consent,
        "variables": {
            "debug": f"{prefix}_TELEMETRY_DEBUG",
            "disabled": f"{prefix}_TELEMETRY_DISABLED",
            "do_not_track": "DO_NOT_TRACK",
            "endpoint": f"{prefix}_TELEMETRY_ENDPOINT",
            "switch": f"{prefix}_TELEMETRY",
        },
        "telemetry_command": None if words is None else f"{settings.name} {words}",
        "notice": notice_text(settings.name, prefix, opt_out),
        "outcomes": list(OUTCOMES),
        "commands": commands,
        "dropped_commands": dropped,
        "events": events,
        "signals": sorted(settings.signals),
        "sample_rate": settings.sample_rate,
        "added_properties": _added_properties(settings),
        "destination": _destination(settings),
        "record_fields": list(ROLLUP_FIELD_NAMES),
        "command_properties": ["command", "flags"],
        "envelope_fields": list(ENVELOPE_FIELD_NAMES),
    }


def schema_json(schema: dict[str, Any]) -> str:
    """The document as `--json` prints it: indented, keys sorted, ASCII only, one final newline."""
    import json

    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


# -- what a person reads: `telemetry schema` ----------------------------------------


def _wrapped(text: str, width: int, indent: str = "", hanging: str = "") -> list[str]:
    """`text` wrapped between words to `width`; a word wider than that stays whole on its line."""
    import textwrap

    return textwrap.wrap(
        text,
        max(width, 20),
        initial_indent=indent,
        subsequent_indent=hanging or indent,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [indent.rstrip()]


def _command_label(path: str) -> str:
    return path.replace("\t", " ") if path else "(the tool itself, no command)"


def _shown_value(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def destination_sentence(schema: dict[str, Any]) -> str:
    """Where the author's configuration sends data, in words (the environment's override aside)."""
    destination = schema["destination"]
    kind, address = destination["kind"], destination["address"]
    if kind == "http":
        return f"to {address} (the typer-telemetry JSON format)"
    if kind == "posthog":
        return f"to PostHog at {address}"
    if kind == "otlp":
        return f"to the OpenTelemetry (OTLP/HTTP) receiver at {address}"
    if kind == "file":
        return f"into the file {address} on this machine"
    if kind == "debug":
        return "nowhere: they are printed on standard error instead"
    if kind == "custom":
        return f"to the tool's own destination (its class {destination['class']})"
    return "nowhere: the tool configures no destination"


def schema_lines(schema: dict[str, Any], width: int) -> list[str]:
    """`telemetry schema` for a person: every record and field the tool could send, within `width`.

    Nothing is cut: prose wraps between words, lists between items, and a
    single word wider than `width` (a long command path) stays whole.
    """
    tool = schema["tool"]
    variables = schema["variables"]
    lines = _wrapped(
        f"{tool} {schema['tool_version']} can send, per day, counts of the records below and"
        " nothing else (schema version"
        f" {schema['schema_version']}). Values you type are never recorded.",
        width,
    )
    lines += [
        "",
        *_wrapped("Commands (the command path and the names of the options given):", width),
    ]
    for command in schema["commands"]:
        lines += _wrapped(_command_label(command["path"]), width, "  ", "    ")
        if command["options"]:
            lines += _wrapped("options: " + " ".join(command["options"]), width, "    ", "      ")
        if command["options_left_out"]:
            lines += _wrapped(
                "recorded without: " + " ".join(command["options_left_out"]),
                width,
                "    ",
                "      ",
            )
    if schema["dropped_commands"]:
        lines += _wrapped(
            "Only counted as dropped (names outside the allowlist): "
            + ", ".join(_command_label(path) for path in schema["dropped_commands"]),
            width,
            "  ",
            "    ",
        )
    lines += _wrapped(
        "Each with its outcome (" + ", ".join(schema["outcomes"]) + "), the class name of the"
        " error that ended it, and its duration.",
        width,
    )
    lines.append("")
    if schema["events"]:
        lines += _wrapped(f"Events of {tool}'s own (each field only as listed):", width)
        for name, event in schema["events"].items():
            lines += _wrapped(name, width, "  ", "    ")
            for field, spec in event["fields"].items():
                values = ", ".join(_shown_value(value) for value in spec["values"])
                lines += _wrapped(f"{field} ({spec['kind']}): {values}", width, "    ", "      ")
    else:
        lines += _wrapped(f"{tool} declares no events of its own.", width)
    lines.append("")
    added = schema["added_properties"]
    if added:
        lines += _wrapped("Added to every record: " + ", ".join(added) + ".", width)
    else:
        lines += _wrapped("Nothing is added to the records (no signals, no sampling).", width)
    lines += _wrapped(
        "Sent with each day's batch: " + ", ".join(schema["envelope_fields"]) + ".", width
    )
    lines += _wrapped(
        f"Completed days go {destination_sentence(schema)}; {variables['endpoint']}=URL sends"
        " them to that URL instead.",
        width,
    )
    lines += _wrapped(
        f"Turn it off: {variables['switch']}=0"
        + (f" or {schema['telemetry_command']} disable" if schema["telemetry_command"] else "")
        + f". {variables['debug']}=1 explains each decision on standard error.",
        width,
    )
    return lines


# -- the tool's own TELEMETRY.md ------------------------------------------------------


def _code(text: str) -> str:
    """`text` as inline code in a table cell: pipes escaped, backticks fenced."""
    text = text.replace("\t", " ").replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _folders(tool: str) -> list[str]:
    """Where the files are, as platformdirs puts them for `tool` on each system."""
    toml, store = CONFIG_FILE_NAME, STORE_DIR_NAME
    return [
        "| system | settings file | data folder |",
        "|---|---|---|",
        f"| Linux and other Unix | `~/.config/{tool}/{toml}` (`$XDG_CONFIG_HOME/{tool}/{toml}`"
        f" if set) | `~/.local/state/{tool}/{store}/` (`$XDG_STATE_HOME/{tool}/{store}/`"
        " if set) |",
        f"| macOS | `~/Library/Application Support/{tool}/{toml}` |"
        f" `~/Library/Application Support/{tool}/{store}/` |",
        f"| Windows | `%LOCALAPPDATA%\\{tool}\\{toml}` | `%LOCALAPPDATA%\\{tool}\\{store}\\` |",
    ]


def _consent_table(schema: dict[str, Any]) -> list[str]:
    tool, variables = schema["tool"], schema["variables"]
    switch, disabled = variables["switch"], variables["disabled"]
    group = schema["telemetry_command"]
    stored = (
        f"`{group} disable` / `{group} enable`"
        if group
        else f"(none: {tool} offers no telemetry commands)"
    )
    default = (
        "on, with the one-line notice below"
        if schema["consent"] == "opt-out"
        else f"off until you turn it on (`{switch}=1`"
        + (f" or `{group} enable`" if group else "")
        + ")"
    )
    values = "(any value but empty, `0`, `false`, `no`, `off`)"
    return [
        "| # | what you do | effect |",
        "|---|---|---|",
        "| 1 | `TYPER_TELEMETRY_SANDBOX` is set (any value but empty): a test session's"
        " sandbox, which typer-telemetry's pytest plugin sets while a tool's tests run"
        " | off, for every tool that uses typer-telemetry; its files are kept in that folder |",
        f"| 2 | `export DO_NOT_TRACK=1` {values} | off, for every tool that honours it |",
        f"| 3 | `export {disabled}=1` (same values) | off, for {tool} |",
        f"| 4 | `export {switch}=0` (`0`, `false`, `off`, `no`) | off, for {tool} |",
        f"| 5 | nothing: {tool}'s telemetry folders or files are not yours alone (owned by"
        " another user, or writable by others) | off, whatever rows 6 to 9 say |",
        f"| 6 | `export {switch}=1` (`1`, `true`, `on`, `yes`) | on, for {tool} |",
        "| 7 | running in CI (`CI` or a CI provider's own variable is set) | off |",
        f"| 8 | {stored} | your stored choice, off / on |",
        f"| 9 | nothing | {tool}'s default: {default} |",
    ]


def _commands_table(schema: dict[str, Any]) -> list[str]:
    rows = ["| command | option names it can record |", "|---|---|"]
    for command in schema["commands"]:
        path = _code(command["path"]) if command["path"] else f"(`{schema['tool']}` alone)"
        options = ", ".join(_code(flag) for flag in command["options"]) or "none"
        if command["options_left_out"]:
            left = ", ".join(_code(flag) for flag in command["options_left_out"])
            options += f"; recorded without {left} (a name outside the allowlist)"
        rows.append(f"| {path} | {options} |")
    return rows


def _events_section(schema: dict[str, Any]) -> list[str]:
    tool = schema["tool"]
    if not schema["events"]:
        return [f"{tool} declares no events of its own: only its commands are recorded.", ""]
    lines = [
        f"Besides its commands, {tool} records these events of its own. Each field takes only",
        "the values listed: a choice among fixed words (any other is recorded as `other`),",
        "a number only as the range it falls in, or true/false. There is no free text.",
        "Each event also carries how it ended (the same outcomes and error class names as",
        "commands) and, if it was timed, how long it took.",
        "",
    ]
    kinds = {"choice": "choice", "bucket": "number range", "flag": "true or false"}
    for name, event in schema["events"].items():
        lines += [f"### `{name}`", ""]
        if not event["fields"]:
            lines += ["No fields: only that it happened, how it ended and how long it took.", ""]
            continue
        lines += ["| field | kind | recorded as one of |", "|---|---|---|"]
        for field, spec in event["fields"].items():
            values = ", ".join(_code(_shown_value(value)) for value in spec["values"])
            lines.append(f"| `{field}` | {kinds[spec['kind']]} | {values} |")
        lines.append("")
    return lines


def _added_section(schema: dict[str, Any]) -> list[str]:
    added = schema["added_properties"]
    tool = schema["tool"]
    if not added:
        return [
            f"Nothing: {tool} turned on none of the optional signals and records every run",
            "(no sampling).",
            "",
        ]
    lines = [f"{tool}'s author turned these on; each is added to every record:", ""]
    if "runner" in added:
        lines += [
            "- **who ran the command** (`runner`): `terminal`, `script` or `agent` (a coding",
            "  agent or an MCP client), and which agent (`agent`), named from a fixed list by",
            "  the environment variables such agents set (`other` if not on the list). The",
            "  variables' values are never recorded.",
        ]
    if "project_id" in added:
        lines += [
            "- **which project** (`project_id`): a hash of the project folder you ran the",
            "  tool in, mixed with a random salt made on your machine and never sent; it",
            "  tells projects apart without naming them. `reset` makes a new salt.",
        ]
    if "sample_rate" in added:
        rate = added["sample_rate"]["values"][0]
        lines += [
            f"- **the sample rate** (`sample_rate`): {tool} records only a share of its runs",
            f"  ({rate}, decided once per run), kept with each record to scale counts back.",
        ]
    return [*lines, ""]


def _sending(schema: dict[str, Any]) -> list[str]:
    tool, endpoint = schema["tool"], schema["variables"]["endpoint"]
    if schema["destination"]["kind"] == "none":
        return [
            f"{tool} configures no destination: nothing is sent, unless you set `{endpoint}`",
            "to a URL. Then records are sent only for **completed days** (UTC days before",
            f"today), only while {tool} is doing something that takes a while anyway.",
        ]
    return [
        "Records are sent only for **completed days** (UTC days before today). They go",
        f"{destination_sentence(schema)}, only while {tool} is doing something that takes a",
        f"while anyway. Setting `{endpoint}` to a URL sends them there instead.",
    ]


def telemetry_md(telemetry: Telemetry) -> str:
    """The tool's own TELEMETRY.md for its users, from its code: the same on every machine."""
    return render_markdown(tool_schema(telemetry))


def render_markdown(schema: dict[str, Any]) -> str:
    """TELEMETRY.md from a `tool_schema` document."""
    tool, variables = schema["tool"], schema["variables"]
    group = schema["telemetry_command"]
    switch = variables["switch"]
    opt_in = schema["consent"] == "opt-in"
    where = destination_sentence(schema)
    policy = (
        f"Telemetry is **off** until you turn it on (`{switch}=1`"
        + (f" or `{group} enable`" if group else "")
        + ")."
        if opt_in
        else f"Telemetry is **on** by default: the first time {tool} records anything on your"
        " machine it prints a one-line notice on standard error. You can turn it off at any time."
    )
    lines = [
        f"# Telemetry in {tool}",
        "",
        f"This page is for the **users** of `{tool}` ({schema['tool_version']}). It lists",
        f"exactly what {tool} records about its own use, what it never records, when anything",
        "leaves your machine, and how to turn it off. It is generated from the tool's code by",
        f"the typer-telemetry package ({PYPI_PAGE}); the typer-telemetry TELEMETRY.md, found",
        "through that page, gives the details that do not depend on the tool (the consent",
        "rules, every request that is made, the limits).",
        "",
        "## In short",
        "",
        f"- {policy}",
        f"- {tool} counts **which of its commands run, how long they take, whether they",
        "  succeed, and which option names were given**"
        + (", and the events of its own listed below" if schema["events"] else "")
        + ". It never records the values you type, file paths, names or messages.",
        "- The counts are kept per day on your machine."
        + (
            f" Nothing is sent: {tool} configures no destination (unless you set"
            f" `{variables['endpoint']}`)."
            if schema["destination"]["kind"] == "none"
            else f" Only completed days are sent: they go {where}."
        ),
    ]
    if group:
        lines += [
            f"- `{group} status --json` shows everything waiting to be sent, exactly as it would",
            f"  be sent; `{group} schema` lists everything {tool} could ever send.",
        ]
    lines += [
        "",
        "## Turning it off",
        "",
        "Any one of these decides; the first that applies wins:",
        "",
    ]
    lines += _consent_table(schema)
    lines.append("")
    if group:
        lines += [
            f"`{group} status` says whether telemetry is on and which row decided it.",
            f"`{group} disable` also deletes at once everything recorded and not yet sent.",
            "",
        ]
    else:
        lines += [
            f"{tool} offers no telemetry commands: rows 1 to 3 turn it off.",
            "",
        ]
    lines += [
        "## The first-run notice",
        "",
        f"The first time {tool} records anything on your machine"
        + (f" (unless you turned it on yourself with `{group} enable`)" if group else "")
        + " it prints this line on standard error (never on standard output), once per machine"
        " and user:",
        "",
        "```text",
        schema["notice"],
        "```",
        "",
        "## What is recorded",
        "",
        f"Each time you run one of {tool}'s commands (not a request for help, not shell",
        "completion"
        + (f", not `{group} ...`" if group else "")
        + "), it notes the **command path**,",
        "its **duration**, its **outcome** ("
        + ", ".join(f"`{o}`" for o in schema["outcomes"])
        + "),",
        "the **class name of the error** that ended it (never its message), and **which",
        "options were given**, by their long name (never their values). These are all the",
        "command paths and option names it can record. A group's options are recorded with",
        "each command under it, so each row lists them too; for an on/off option either",
        "side can be recorded.",
        "",
        *_commands_table(schema),
        "",
    ]
    if schema["dropped_commands"]:
        dropped = ", ".join(_code(path) for path in schema["dropped_commands"])
        lines += [
            "These command paths are outside the allowlist: running them records nothing but a",
            f"count of dropped invocations for the day: {dropped}.",
            "",
        ]
    lines += ["## Events of the tool's own", "", *_events_section(schema)]
    lines += ["## What is added to every record", "", *_added_section(schema)]
    lines += [
        "## The records, field by field",
        "",
        "Nothing is kept one by one: everything is added up **per day** into one record per",
        "day, event, properties, outcome and error class, with a count and duration",
        "statistics (at most 256 different records a day). The records and the envelope",
        "sent with them look exactly like this:",
        "",
        # The library's tables point at its own docs/ folder, which a tool's copy lacks.
        field_tables_markdown()
        .rstrip("\n")
        .replace("docs/signals.md", "typer-telemetry's signals page (docs/signals.md)"),
        "",
        "## What is never recorded",
        "",
        "- the values of arguments and options, and anything else you typed that is not the",
        f"  name of one of {tool}'s commands or options;",
        "- file names and paths, host names, user names, e-mail addresses;",
        "- the values of environment variables;",
        "- error messages, tracebacks, or the output of the tool;",
        "- anything that is not in the tables above.",
        "",
        "## When anything is sent, and where",
        "",
        *_sending(schema),
        "A short command never opens a network connection and never waits for one.",
        f"`{variables['debug']}=1` prints what would be sent instead of sending it, and",
        "explains each decision about telemetry on standard error.",
        "",
        "## Where the files are, and limits",
        "",
        *_folders(tool),
        "",
        "Folders are readable by you alone (0700), files likewise (0600). At most 30 days wait",
        "to be sent (older days are deleted) and at most 256 different records a day are kept",
        "(further ones are only counted as dropped).",
        "",
        "## Deleting it",
        "",
    ]
    if group:
        lines += [
            f"`{group} reset` deletes the local data, draws a new install id, and asks the",
            "receiver to delete what it received under the earlier ones. If nothing was ever",
            "sent, it connects nowhere.",
        ]
    else:
        lines += [
            f"Delete the settings file and the data folder above. {tool} offers no telemetry",
            "commands, so it cannot ask the receiver to delete what it already received.",
        ]
    return "\n".join(lines) + "\n"


def check_telemetry_md(telemetry: Telemetry, path: Any) -> str | None:
    """None when the file at `path` is `telemetry_md(telemetry)`; else what differs and the fix.

    The answer is a short unified diff (at most `DIFF_LINES` lines) and the
    command that writes the file afresh.
    """
    import difflib
    from pathlib import Path

    wanted = telemetry_md(telemetry)
    file = Path(path)
    try:
        current: str | None = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    except (OSError, UnicodeDecodeError) as error:
        return f"{file} cannot be read ({error}).\n{_regenerate(telemetry, file)}"
    if current == wanted:
        return None
    if current is None:
        return f"{file} does not exist.\n{_regenerate(telemetry, file)}"
    diff = list(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            f"{file} (checked in)",
            f"{file} (from the code)",
        )
    )
    shown = "".join(line if line.endswith("\n") else line + "\n" for line in diff[:DIFF_LINES])
    more = f"... ({len(diff) - DIFF_LINES} more lines)\n" if len(diff) > DIFF_LINES else ""
    return f"{file} is out of date:\n{shown}{more}{_regenerate(telemetry, file)}"


def _regenerate(telemetry: Telemetry, file: Any) -> str:
    target = target_of(telemetry) or "MODULE:ATTRIBUTE"
    return f"Write it afresh with: python -m typer_telemetry docs {target} > {file}"


def target_of(telemetry: object) -> str | None:
    """`module:attribute` of an imported module that holds `telemetry`, if one does.

    The tool's own module is preferred to a test module that imported the
    object from it.
    """
    import sys

    found: list[str] = []
    for name, module in sorted(sys.modules.items()):
        if name == "__main__" or module is None:
            continue
        try:
            members = list(vars(module).items())
        except TypeError:
            continue
        found += [f"{name}:{attribute}" for attribute, value in members if value is telemetry]
    found.sort(
        key=lambda where: any(part.startswith(("test", "conftest")) for part in where.split("."))
    )
    return found[0] if found else None


# -- `pkg.module:attribute` -------------------------------------------------------------


def _is_telemetry(value: object) -> bool:
    """A Telemetry object (by its class, which lives above this module)."""
    return any(
        cls.__name__ == "Telemetry" and cls.__module__ == f"{__package__}._telemetry"
        for cls in type(value).__mro__
    )


def _telemetry_of_app(app: object) -> Any | None:
    """The Telemetry object instrumenting a Typer app, else None."""
    mount = getattr(app, INSTRUMENTED_BY, None)
    owner = getattr(getattr(mount, "describe", None), "__self__", None)
    return owner if _is_telemetry(owner) else None


def load_target(target: str) -> Telemetry:
    """The Telemetry object named by `pkg.module:attribute` (or found alone in `pkg.module`).

    The module is imported with the current folder first on `sys.path`, as
    uvicorn does, and what it prints meanwhile is discarded. The attribute may be the Telemetry object or the Typer app
    it instruments. Every failure is a `TargetError` with a one-line message.
    """
    import contextlib
    import importlib
    import io
    import os
    import sys

    if not isinstance(target, str) or not target.strip():
        raise TargetError("give the tool as MODULE:ATTRIBUTE, e.g. mytool.cli:telemetry")
    module_name, _, attribute = target.strip().partition(":")
    if not module_name:
        raise TargetError(f"{target!r}: the module is missing; write MODULE:ATTRIBUTE")
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        # What the module prints as it loads is not the document: it would
        # end up inside a TELEMETRY.md written with `docs > TELEMETRY.md`.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name == error.name or module_name.startswith(error.name + ".")):
            raise TargetError(
                f"no module named {error.name!r} (run this from the folder that holds it,"
                " or install the tool's package)"
            ) from None
        raise TargetError(f"importing {module_name!r} failed: {error}") from None
    except SystemExit as error:
        raise TargetError(
            f"importing {module_name!r} exited (code {error.code!r}): does it run the app at"
            ' import? Keep that under `if __name__ == "__main__":`'
        ) from None
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            raise
        first = str(error).splitlines()[0] if str(error) else ""
        raise TargetError(
            f"importing {module_name!r} failed: {type(error).__name__}: {first}"
        ) from None
    if not attribute:
        found = [name for name, value in sorted(vars(module).items()) if _is_telemetry(value)]
        if len(found) != 1:
            raise TargetError(
                f"{module_name!r} holds {len(found)} Telemetry objects"
                + (f" ({', '.join(found)})" if found else "")
                + f": name one, as {module_name}:ATTRIBUTE"
            )
        attribute = found[0]
    value: object = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise TargetError(f"{module_name!r} has no attribute {attribute!r}") from None
    if _is_telemetry(value):
        return value  # type: ignore[return-value]
    if type(value).__name__ == "Typer" or any(
        cls.__name__ == "Typer" for cls in type(value).__mro__
    ):
        owner = _telemetry_of_app(value)
        if owner is not None:
            return owner  # type: ignore[no-any-return]
        raise TargetError(
            f"{target!r} is a Typer app that no Telemetry object instruments: call"
            " telemetry.instrument(app) in that module, or name the Telemetry object"
        )
    raise TargetError(
        f"{target!r} is a {type(value).__name__}, not a Telemetry object (or the Typer app"
        " it instruments)"
    )
