"""Mounting the telemetry group, clashes with the tool's own names, and the author's mistakes.

Real tools run as real processes (`tests/tools/named_group_tool.py`,
`typer_cli_tool.py` on Typer's own `typer` CLI, `typer_run_tool.py`,
`callback_class_tool.py`); the author's mistakes are made in this process on
fresh apps, and each must raise a TypeError or ValueError that names the
argument and what it takes, before anything is changed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import Tool, enter_clean_environment, tool_script
from tests.hardening.conftest import assert_unchanged_by_telemetry, strip_notice
from typer_telemetry import Telemetry
from typer_telemetry._checks import check_endpoint

NOTICE = "collects anonymous usage data"


def named_tool(home: Path, **env: str) -> Tool:
    return Tool(tool_script("named_group_tool"), home, env=dict(env))


def notice_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if NOTICE in line]
    assert len(lines) == 1, stderr
    return lines[0]


def config_text(tool: Tool) -> str:
    return (tool.config_dir / "telemetry.toml").read_text(encoding="utf-8")


def commands_in_help(tool: Tool, *args: str) -> set[str]:
    result = tool.run(*args, "--help")
    assert result.returncode == 0, result.stderr
    section = result.stdout.split("Commands")[-1]
    return set(re.findall(r"^[│ ]\s*([a-z][\w-]*)\s", section, flags=re.MULTILINE))


# -- item 1: a group class given to the root callback --------------------------------


@pytest.mark.parametrize("order", ["before", "after"])
def test_a_group_class_given_to_the_root_callback_is_instrumented_in_either_order(
    home: Path, order: str, reliability: Any
) -> None:
    tool = Tool(tool_script("callback_class_tool"), home, env={"TOOL_ORDER": order})
    result = assert_unchanged_by_telemetry(tool, "hi", "Ada")  # the class's alias still works
    assert result.stdout == "hello Ada\n"
    assert "Opt out: callback-class-tool telemetry disable" in notice_line(result.stderr)
    assert [(record["properties"]["command"], record["count"]) for record in tool.pending()] == [
        ("hello", 1)
    ]
    reliability.record(
        area="Hook",
        fault=(
            f"the group class given to `@app.callback(cls=...)` ({order} `instrument`), "
            "which Typer prefers to `typer.Typer(cls=...)`"
        ),
        cases=1,
        outcome="the class is wrapped too: invocations recorded, the notice shown, the class works",
    )


def test_typers_own_cli_is_instrumented_and_records_a_script_it_runs(
    home: Path, monkeypatch: pytest.MonkeyPatch, reliability: Any
) -> None:
    (home / "mymain.py").write_text(
        "import typer\n"
        "app = typer.Typer()\n"
        "@app.command()\n"
        "def hello(name: str = 'World') -> None:\n"
        "    print(f'Hello {name}')\n"
        "@app.command()\n"
        "def bye() -> None:\n"
        "    print('Bye')\n",
        encoding="utf-8",
    )
    tool = Tool(tool_script("typer_cli_tool"), home)
    result = assert_unchanged_by_telemetry(tool, "mymain.py", "run", "hello", "--name", "Ada")
    assert result.stdout == "Hello Ada\n"
    # No group is mounted (its positional PATH_OR_MODULE would swallow it):
    # the notice names only what the user can do.
    assert notice_line(result.stderr).endswith("Opt out: TYPER_CLI_TOOL_TELEMETRY=0.")
    assert "telemetry disable" not in config_text(tool)
    assert tool.run("mymain.py", "run", "bye").stdout == "Bye\n"

    enter_clean_environment(monkeypatch, home)
    pending = Telemetry("typer-cli-tool", version="1.0").status()["pending"]
    assert sum(record["count"] for record in pending) == 2
    assert {record["outcome"] for record in pending} == {"success"}
    # The `run` group is built lazily while parsing: recorded as Click resolved it,
    # the script path (an argument) never.
    assert {
        (record["properties"]["command"], tuple(record["properties"]["flags"]))
        for record in pending
    } == {
        ("run hello", ("--name",)),
        ("run bye", ()),
    }
    assert "mymain" not in json.dumps(pending)
    reliability.record(
        area="Hook",
        fault=(
            "Typer's own `typer` CLI (root callback with `cls=` and an optional positional "
            "argument), instrumented with `mount=False`, running a script"
        ),
        cases=2,
        outcome=(
            "invocations recorded under the path Click resolved (`run hello`, `--name`), output "
            "unchanged; the notice names the environment "
            "variable only, as no telemetry command is mounted"
        ),
    )


def test_mounting_on_typers_own_cli_is_refused_and_leaves_it_as_it_was() -> None:
    import typer.cli

    app = typer.cli.app
    before = (app.info.cls, app.registered_callback.cls, list(app.registered_groups))  # type: ignore[union-attr]
    with pytest.raises(ValueError, match=r"'path_or_module'.*mount=False"):
        Telemetry("typer-cli", version="1.0").instrument(app)
    after = (app.info.cls, app.registered_callback.cls, list(app.registered_groups))  # type: ignore[union-attr]
    assert after == before
    assert not hasattr(app, "_typer_telemetry_instrumented_by")


# -- item 2: clashes -----------------------------------------------------------------


def _command_named_telemetry() -> typer.Typer:
    app = typer.Typer()

    @app.command("telemetry")
    def report() -> None: ...

    @app.command()
    def other() -> None: ...

    return app


def _command_derived_telemetry() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def telemetry() -> None: ...

    @app.command()
    def other() -> None: ...

    return app


def _group_named_telemetry() -> typer.Typer:
    app = typer.Typer()
    sub = typer.Typer()
    sub.command()(lambda: None)
    app.add_typer(sub, name="telemetry")
    app.command("other")(lambda: None)
    return app


def _sub_app_named_by_itself() -> typer.Typer:
    app = typer.Typer()
    sub = typer.Typer(name="telemetry")

    @sub.command()
    def show() -> None: ...

    app.add_typer(sub)
    return app


def _callback_argument(kind: str) -> typer.Typer:
    app = typer.Typer()
    if kind == "Argument()":

        @app.callback()
        def root(target: str = typer.Argument(None)) -> None: ...

    elif kind == "Annotated":

        @app.callback()
        def root(
            ctx: typer.Context, target: Annotated[str | None, typer.Argument()] = None
        ) -> None: ...

    else:

        @app.callback()
        def root(target: str) -> None: ...

    app.command("hello")(lambda: None)
    return app


CLASHES = {
    "a command named telemetry": (_command_named_telemetry, r"command 'telemetry'.*group_name="),
    "a command whose function is telemetry": (
        _command_derived_telemetry,
        r"command 'telemetry'.*group_name=",
    ),
    "a group added as telemetry": (_group_named_telemetry, r"group 'telemetry'.*group_name="),
    "a sub-app named telemetry": (_sub_app_named_by_itself, r"group 'telemetry'.*group_name="),
    "a root callback with an Argument()": (
        lambda: _callback_argument("Argument()"),
        r"positional argument 'target'.*mount=False",
    ),
    "a root callback with an Annotated Argument": (
        lambda: _callback_argument("Annotated"),
        r"positional argument 'target'.*mount=False",
    ),
    "a root callback with a parameter without default": (
        lambda: _callback_argument("plain"),
        r"positional argument 'target'.*mount=False",
    ),
}


@pytest.mark.parametrize("case", list(CLASHES))
def test_a_clash_is_refused_at_instrument_and_the_app_is_left_as_it_was(
    case: str, reliability: Any
) -> None:
    make, message = CLASHES[case]
    app = make()
    groups, cls = list(app.registered_groups), app.info.cls
    with pytest.raises(ValueError, match=message):
        Telemetry("clashing-tool", version="1.0").instrument(app)
    assert (list(app.registered_groups), app.info.cls) == (groups, cls)
    if "callback" not in case:  # another name is the way out
        Telemetry("clashing-tool", version="1.0").instrument(make(), group_name="privacy")
    Telemetry("clashing-tool", version="1.0").instrument(make(), mount=False)
    if case == "a command whose function is telemetry":  # in a one-command app it is never typed
        single = typer.Typer()
        single.registered_commands = make().registered_commands[:1]
        Telemetry("clashing-tool", version="1.0").instrument(single)
    reliability.record(
        area="Author mistakes",
        fault=f"{case}, where the telemetry group would be mounted",
        cases=1,
        outcome=(
            "instrument() raises ValueError naming the clash and the way out "
            "(group_name=, or mount=False); nothing of the app is changed"
        ),
    )


@pytest.mark.parametrize("mistake", ["clash-after", "twice"])
def test_a_clash_made_after_instrument_fails_the_first_run_and_names_it(
    home: Path, mistake: str, reliability: Any
) -> None:
    tool = named_tool(home, TOOL_MOUNT=mistake)
    for arguments in (("greet", "x"), ("--help",)):
        result = tool.run(*arguments)
        assert result.returncode == 1
        expected = "command 'telemetry'" if mistake == "clash-after" else "a second time"
        assert "ValueError" in result.stderr
        assert expected in " ".join(result.stderr.split())
        assert result.stdout == ""
    reliability.record(
        area="Author mistakes",
        fault=(
            "a command named like the group registered after `instrument`"
            if mistake == "clash-after"
            else "`telemetry.app` mounted again after `instrument(app)` mounted it"
        ),
        cases=2,
        outcome="every run raises ValueError naming the clash before anything runs",
    )


def test_a_root_callback_argument_added_after_instrument_fails_the_first_run() -> None:
    app = typer.Typer()
    Telemetry("late-callback", version="1.0").instrument(app)

    @app.callback()
    def root(target: str = typer.Argument(None)) -> None: ...

    app.command("hello")(lambda: None)
    with pytest.raises(ValueError, match=r"positional argument 'target'.*mount=False"):
        app(["hello"], standalone_mode=False)


# -- item 2: choosing the name, hiding, not mounting, mounting it yourself ---------------


def test_group_name_is_what_the_notice_the_status_the_config_and_help_say(
    home: Path, reliability: Any
) -> None:
    tool = named_tool(home, TOOL_GROUP_NAME="privacy")
    first = tool.run("greet", "Ada")
    assert first.stdout == "hi Ada\n"
    assert "Opt out: named-group-tool privacy disable or NAMED_GROUP_TOOL_TELEMETRY=0." in (
        notice_line(first.stderr)
    )
    assert "`named-group-tool privacy enable|disable|reset`" in config_text(tool)
    status = tool.run("privacy", "status")
    assert "run `named-group-tool privacy disable`" in status.stdout
    assert "`named-group-tool privacy status --json`" in " ".join(status.stdout.split())
    assert json.loads(tool.run("privacy", "status", "--json").stdout)["pending"][0]["properties"][
        "command"
    ] == ("greet")
    assert tool.run("telemetry", "status").returncode == 2  # no such command
    assert commands_in_help(tool) == {"greet", "bye", "privacy"}
    assert tool.run("privacy", "disable").returncode == 0
    assert "named-group-tool privacy enable" in config_text(tool)
    reliability.record(
        area="Hook",
        fault="the group mounted under another name (`group_name=`)",
        cases=1,
        outcome="the notice, status hints, config header and --help all name the chosen group",
    )


def test_hidden_leaves_the_group_out_of_help_and_it_still_works(home: Path) -> None:
    tool = named_tool(home, TOOL_HIDDEN="1")
    assert commands_in_help(tool) == {"greet", "bye"}
    assert tool.run("greet", "x").returncode == 0
    assert tool.status()["pending"]


def test_mount_false_changes_nothing_the_user_sees_and_records(home: Path) -> None:
    tool = named_tool(home, TOOL_MOUNT="none")
    result = assert_unchanged_by_telemetry(tool, "greet", "Ada", "--loud")
    assert notice_line(result.stderr).endswith("Opt out: NAMED_GROUP_TOOL_TELEMETRY=0.")
    assert_unchanged_by_telemetry(tool, "--help")
    assert_unchanged_by_telemetry(tool, "telemetry", "status")  # not a command of this tool
    assert "named-group-tool telemetry" not in config_text(tool)
    assert "enabled = false" in config_text(tool)  # the header says what can be done


def test_telemetry_app_mounted_before_instrument_is_used_and_not_mounted_again(
    home: Path,
) -> None:
    tool = named_tool(home, TOOL_MOUNT="before")
    assert commands_in_help(tool) == {"greet", "bye", "privacy"}
    first = tool.run("greet", "x")
    assert "Opt out: named-group-tool privacy disable" in notice_line(first.stderr)
    assert json.loads(tool.run("privacy", "status", "--json").stdout)["pending"]


def test_telemetry_app_mounted_under_a_sub_app_after_instrument_is_named_by_its_path(
    home: Path, reliability: Any
) -> None:
    tool = named_tool(home, TOOL_MOUNT="sub-app")
    assert commands_in_help(tool) == {"greet", "bye", "admin"}
    first = tool.run("greet", "x")
    assert "Opt out: named-group-tool admin telemetry disable" in notice_line(first.stderr)
    assert "`named-group-tool admin telemetry enable|disable|reset`" in config_text(tool)
    status = tool.run("admin", "telemetry", "status")
    assert "run `named-group-tool admin telemetry disable`" in status.stdout
    assert json.loads(tool.run("admin", "telemetry", "status", "--json").stdout)["pending"]
    reliability.record(
        area="Hook",
        fault="`telemetry.app` mounted by the author (before `instrument`, or under a sub-app after `instrument(app, mount=False)`)",
        cases=2,
        outcome="one group, no second mount; the messages name the path the user types",
    )


@pytest.mark.parametrize(
    ("env", "group"),
    [
        ({"TOOL_GROUP_NAME": "privacy"}, "privacy"),
        ({"TOOL_GROUP_NAME": "privacy", "TOOL_HIDDEN": "1"}, "privacy"),
        ({"TOOL_MOUNT": "before"}, "privacy"),
        ({"TOOL_MOUNT": "none"}, None),
    ],
)
def test_a_one_command_app_behaves_as_before_with_every_mounting_option(
    home: Path, env: dict[str, str], group: str | None, reliability: Any
) -> None:
    tool = named_tool(home, TOOL_SINGLE="1", **env)
    for arguments in (("Ada", "--loud"), ("--help",), ("telemetry",), ()):
        assert_unchanged_by_telemetry(tool, *arguments)
    if group is None:
        assert_unchanged_by_telemetry(tool, "privacy")
        return
    report = json.loads(tool.run(group, "status", "--json").stdout)
    assert {
        (record["properties"]["command"], record["outcome"]) for record in report["pending"]
    } == {
        ("", "success"),
        ("", "usage_error"),
    }
    assert sum(record["count"] for record in report["pending"]) == 3
    reliability.record(
        area="Hook",
        fault=f"a one-command app with {', '.join(f'{k}={v}' for k, v in env.items())}",
        cases=4,
        outcome="output, exit codes and help unchanged; invocations recorded, the group reachable",
    )


def test_a_one_command_app_with_mount_false_records_exactly_once(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = named_tool(home, TOOL_SINGLE="1", TOOL_MOUNT="none")
    for _ in range(2):
        assert tool.run("Ada").returncode == 0
    enter_clean_environment(monkeypatch, home)
    pending = Telemetry("named-group-tool", version="1.0").status()["pending"]
    assert [(record["properties"]["command"], record["count"]) for record in pending] == [("", 2)]


def test_typer_run_becomes_telemetry_run_and_behaves_as_before(
    home: Path, reliability: Any
) -> None:
    tool = Tool(tool_script("typer_run_tool"), home)
    for arguments in (("Ada", "--loud"), ("--help",), ()):
        assert_unchanged_by_telemetry(tool, *arguments)
    report = json.loads(tool.run("telemetry", "status", "--json").stdout)
    assert {
        (record["properties"]["command"], tuple(record["properties"]["flags"]))
        for record in report["pending"]
    } == {
        ("", ("--loud",)),
        ("", ()),
    }
    reliability.record(
        area="Hook",
        fault="a `typer.run(main)` tool changed to `telemetry.run(main)`",
        cases=3,
        outcome="output, exit codes and help unchanged; invocations recorded, `telemetry` reachable",
    )


# -- item 3: the author's other mistakes ----------------------------------------------


class _Backend:
    def send(self, batch: Any, *, timeout: float) -> None: ...

    def request_deletion(self, install_id: str, *, timeout: float) -> None: ...


SETTINGS_MISTAKES: dict[str, tuple[dict[str, Any], type[Exception], str]] = {
    "endpoint=42": ({"endpoint": 42}, TypeError, r"endpoint must be a URL string.*int 42"),
    "endpoint with a space in its host": (
        {"endpoint": "https://t.exa mple.com/v1"},
        ValueError,
        r"refusing endpoint.*' '",
    ),
    "endpoint with a tab in its user name": (
        {"endpoint": "https://us\ter:pw@t.example.com/v1"},
        ValueError,
        r"refusing endpoint.*'\\t'",
    ),
    "endpoint with a bad host": (
        {"endpoint": "https://-t.example.com/v1"},
        ValueError,
        r"refusing endpoint.*host",
    ),
    "long_running_after='2'": (
        {"long_running_after": "2"},
        TypeError,
        r"long_running_after must be a number.*str '2'",
    ),
    "long_running_after=True": (
        {"long_running_after": True},
        TypeError,
        r"long_running_after must be a number.*bool True",
    ),
    "a back-end class": ({"backend": _Backend}, TypeError, r"backend must be .*class _Backend"),
    "a back-end without send": ({"backend": object()}, TypeError, r"backend must be an object"),
    "name=None": ({"name": None}, TypeError, r"name must be a str"),
    "version=1.4": ({"version": 1.4}, TypeError, r"version must be a str"),
    "consent=True": ({"consent": True}, TypeError, r"consent must be"),
    "consent='opt_out'": ({"consent": "opt_out"}, ValueError, r"consent must be .*'opt_out'"),
}


@pytest.mark.parametrize("case", list(SETTINGS_MISTAKES))
def test_a_wrong_setting_raises_an_error_that_names_the_argument(
    case: str, reliability: Any
) -> None:
    overrides, error, message = SETTINGS_MISTAKES[case]
    arguments: dict[str, Any] = {"name": "mytool", "version": "1.0", **overrides}
    name = arguments.pop("name")
    with pytest.raises(error, match=message):
        Telemetry(name, **arguments)
    reliability.record(
        area="Author mistakes",
        fault=f"`Telemetry(..., {case})`",
        cases=1,
        outcome=f"{error.__name__} naming the argument and what it takes, when the object is made",
    )


def _function() -> None: ...


def _one_command_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(_function)
    return app


INSTRUMENT_MISTAKES: dict[str, tuple[Any, dict[str, Any], type[Exception], str]] = {
    "a function": (_function, {}, TypeError, r"not the function '_function'.*telemetry\.run"),
    "a Click group built from the app": (
        typer.main.get_group(_group_named_telemetry()),
        {},
        TypeError,
        r"not a Click TyperGroup",
    ),
    "a Click command": (
        typer.main.get_command(_one_command_app()),
        {},
        TypeError,
        r"takes the typer.Typer app, not a Click",
    ),
    "group_name=3": (typer.Typer(), {"group_name": 3}, TypeError, r"group_name must be a str"),
    "group_name='two words'": (
        typer.Typer(),
        {"group_name": "two words"},
        ValueError,
        r"group_name 'two words' must be one command word",
    ),
    "group_name='--x'": (typer.Typer(), {"group_name": "--x"}, ValueError, r"group_name"),
    "hidden='yes'": (typer.Typer(), {"hidden": "yes"}, TypeError, r"hidden must be True or False"),
    "mount=None": (typer.Typer(), {"mount": None}, TypeError, r"mount must be True or False"),
    "group_name with mount=False": (
        typer.Typer(),
        {"group_name": "privacy", "mount": False},
        ValueError,
        r"with mount=False, give them to your own add_typer",
    ),
}


@pytest.mark.parametrize("case", list(INSTRUMENT_MISTAKES))
def test_instrument_refuses_what_it_cannot_instrument_with_the_way_out(
    case: str, reliability: Any
) -> None:
    target, options, error, message = INSTRUMENT_MISTAKES[case]
    with pytest.raises(error, match=message):
        Telemetry("mytool", version="1.0").instrument(target, **options)
    reliability.record(
        area="Author mistakes",
        fault=f"`instrument()` given {case}",
        cases=1,
        outcome=f"{error.__name__} naming what it takes (and `telemetry.run` for a function)",
    )


def test_two_telemetry_objects_on_one_app_are_refused() -> None:
    app = typer.Typer()
    Telemetry("first", version="1.0").instrument(app)
    with pytest.raises(ValueError, match=r"already instrumented by Telemetry\('first'\)"):
        Telemetry("second", version="1.0").instrument(app)
    assert sum(1 for info in app.registered_groups) == 1


def test_one_telemetry_object_on_two_apps_is_refused() -> None:
    telemetry = Telemetry("first", version="1.0")
    telemetry.instrument(typer.Typer())
    with pytest.raises(ValueError, match="already instruments an app"):
        telemetry.instrument(typer.Typer())


def test_group_name_and_hidden_for_a_group_the_author_mounted_are_refused() -> None:
    telemetry = Telemetry("mytool", version="1.0")
    app = typer.Typer()
    app.add_typer(telemetry.app, name="privacy")
    with pytest.raises(ValueError, match=r"already mounted on this app as 'privacy'"):
        telemetry.instrument(app, group_name="settings")


# -- the endpoint check agrees with the HTTP client ----------------------------------

_PIECES = st.sampled_from(
    [
        "https://", "http://", "t.example.com", "127.0.0.1", "[::1]", "localhost", ":443",
        ":0", ":99999", "/v1", "?q=1", "#f", "user:pw@", "a b", "\t", "\x00", "\x7f", "é",
        "%20", "-", ".", "..", "[", "]", "@", "\\", "_", "xn--bcher-kva.de", "127.00.0.1",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=6).map("".join))
def test_an_endpoint_the_check_accepts_is_one_httpx_can_send_to(url: str) -> None:
    try:
        check_endpoint(url)
    except ValueError:
        return
    parsed = httpx.URL(url)  # raises InvalidURL for what it cannot send to
    assert parsed.scheme in ("http", "https")
    assert parsed.host
    assert " " not in parsed.host
    assert "%" not in parsed.host
    httpx.Request("POST", url)


def test_the_first_run_of_a_mistaken_tool_shows_the_error_not_a_traceback_of_ours(
    home: Path,
) -> None:
    result = named_tool(home, TOOL_MOUNT="clash-after").run("bye")
    assert "Traceback" in result.stderr or "ValueError" in result.stderr
    assert "cannot mount the telemetry group as 'telemetry'" in " ".join(
        strip_notice(result.stderr).split()
    )
