"""A tool built the way real tools are: lazily loaded commands, on/off options, its own --help.

The root group builds some of its commands only when Click asks for them
(`get_command`, the LazyGroup pattern of Click's documentation): `lazy-hello`
is a command, `lazy-db` a group that is itself lazy, whose `remote` is a lazy
group again. Other commands call the app again from inside, prompt, declare
their own `--help`, take 40 options, sit 8 and 9 levels deep, or raise errors
whose class names the schema cannot hold.

TOOL_WITHOUT_TELEMETRY=1 runs the same app without the library.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperGroup


def _built(app: typer.Typer) -> Any:
    """A fresh Click command or group for `app`, as a lazy loader makes one on demand."""
    return typer.main.get_command(app)


class LazyGroup(TyperGroup):
    """A group whose `lazy` commands are built each time Click resolves them."""

    lazy: dict[str, Callable[[], Any]] = {}  # noqa: RUF012 - each subclass sets its own

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        make = self.lazy.get(cmd_name)
        return make() if make is not None else super().get_command(ctx, cmd_name)


def _lazy_push() -> Any:
    push = typer.Typer()

    @push.command("push")
    def push_command(dry_run: Annotated[bool, typer.Option("--dry-run", "-n")] = False) -> None:
        typer.echo(f"pushed dry_run={dry_run}")

    return _built(push)


class LazyRemote(LazyGroup):
    lazy = {"push": _lazy_push}  # noqa: RUF012


def _lazy_remote() -> Any:
    remote = typer.Typer(cls=LazyRemote, name="remote")

    @remote.callback()
    def remote_callback(
        timeout: Annotated[int, typer.Option("--timeout", "-t")] = 5,
    ) -> None:
        pass

    return _built(remote)


def _lazy_migrate() -> Any:
    migrate = typer.Typer()

    @migrate.command("migrate")
    def migrate_command(force: Annotated[bool, typer.Option("--force", "-f")] = False) -> None:
        typer.echo(f"migrated force={force}")

    return _built(migrate)


class LazyDb(LazyGroup):
    lazy = {"migrate": _lazy_migrate, "remote": _lazy_remote}  # noqa: RUF012


def _lazy_db() -> Any:
    db = typer.Typer(cls=LazyDb, name="lazy-db")

    @db.callback()
    def db_callback(url: Annotated[str, typer.Option("--url", "-u")] = "sqlite://") -> None:
        pass

    return _built(db)


def _lazy_hello() -> Any:
    hello = typer.Typer()

    @hello.command("lazy-hello")
    def hello_command(
        name: str, loud: Annotated[bool, typer.Option("--loud", "-l")] = False
    ) -> None:
        typer.echo(f"hello {name}{'!' if loud else ''}")

    return _built(hello)


class LazyRoot(LazyGroup):
    lazy = {"lazy-hello": _lazy_hello, "lazy-db": _lazy_db}  # noqa: RUF012


app = typer.Typer(cls=LazyRoot, help="A tool built like real ones.")
inner_app = typer.Typer()
telemetry: Any = None
if not os.environ.get("TOOL_WITHOUT_TELEMETRY"):
    from typer_telemetry import Telemetry

    telemetry = Telemetry("real-tool", version="1.0.0")
    telemetry.instrument(app)
    # Another instrumented app in the same process, called from inside a command.
    Telemetry("real-tool-inner", version="1.0.0").instrument(inner_app)


@inner_app.command()
def inner() -> None:
    typer.echo("inner")


@inner_app.command()
def inner_other() -> None:
    typer.echo("inner other")


@app.callback()
def root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False, quiet: bool = False
) -> None:
    """Root callback with boolean options; Typer makes `quiet` into --quiet/--no-quiet."""


@app.command()
def serve(
    reload: Annotated[bool, typer.Option("--reload/--no-reload", "-r/-R")] = True,
    accept: Annotated[bool, typer.Option("--accept/--reject")] = False,
    color: Annotated[bool, typer.Option(" /--no-color")] = True,
) -> None:
    """On/off options: Typer's --x/--no-x, short names on both sides, custom names."""
    typer.echo(f"serve reload={reload} accept={accept} color={color}")


@app.command()
def ask() -> None:
    """Prompt for a value (end of input there is Typer's "Aborted.")."""
    name = typer.prompt("name")
    typer.echo(f"got {name}")


@app.command()
def plain() -> None:
    typer.echo("plain")


@app.command()
def again(ctx: typer.Context, wait: Annotated[bool, typer.Option("--wait")] = False) -> None:
    """Run the app and another instrumented app again from inside this command."""
    app(["plain"], standalone_mode=False)
    app(["serve", "--no-reload"], standalone_mode=False)
    ctx.invoke(plain)
    inner_app(["inner"], standalone_mode=False)
    if telemetry is not None:
        telemetry_app = telemetry.app  # noqa: F841 - the mounted group exists
    typer.echo("again done")
    if wait:
        handler = signal.getsignal(signal.SIGTERM)
        typer.echo(f"sigterm handler set: {handler is not signal.SIG_DFL}", err=True)
        typer.echo("ready")
        sys.stdout.flush()
        sys.stdin.read()


@app.command("again-failing")
def again_failing() -> None:
    """An inner invocation that fails is no record of its own either."""
    try:
        app(["boom"], standalone_mode=False)
    except RuntimeError:
        typer.echo("inner failure caught")


@app.command()
def boom() -> None:
    raise RuntimeError("boom")


@app.command(
    "weasel-run",
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def weasel_run(
    subcommand: Annotated[str, typer.Argument()] = "",
    show_help: Annotated[bool, typer.Option("--help", help="Show help")] = False,
) -> None:
    """Like weasel's `run`: Click's help is off and the command handles --help itself."""
    if show_help:
        typer.echo("help of weasel-run")
        return
    typer.echo(f"ran {subcommand}")


@app.command(
    "short-help",
    add_help_option=False,
    context_settings={"help_option_names": ["-h"]},
)
def short_help(
    show_help: Annotated[bool, typer.Option("-h", "--show-help")] = False,
    force: Annotated[bool, typer.Option("--force")] = False,
) -> None:
    """Its help option name is -h, which it declares itself."""
    typer.echo("help of short-help" if show_help else f"short-help force={force}")


@app.command("h-help", context_settings={"help_option_names": ["-h", "--help"]})
def h_help() -> None:
    """Click's help option under the names -h and --help."""
    typer.echo("h-help")


def _many_options() -> Callable[..., None]:
    names = [f"o{index:02d}" for index in range(40)]
    source = (
        f"def many({', '.join(f'{name}: bool = False' for name in names)}) -> None:\n"
        "    typer.echo('many')\n"
    )
    namespace: dict[str, Any] = {"typer": typer}
    exec(source, namespace)  # a command with 40 options, written out by hand in real tools
    function: Callable[..., None] = namespace["many"]
    return function


app.command("many")(_many_options())


def _nest(parent: typer.Typer, depth: int) -> None:
    level = typer.Typer()
    parent.add_typer(level, name=f"l{depth}")

    @level.command()
    def leaf() -> None:
        typer.echo(f"leaf under l{depth}")

    if depth < 9:
        _nest(level, depth + 1)


_nest(app, 1)


@app.command("grüß")
def gruss() -> None:
    """A command name outside the schema's characters."""
    typer.echo("grüß")


@app.command("odd-option")
def odd_option(
    naive: Annotated[bool, typer.Option("--naïve")] = False,
    plain_one: Annotated[bool, typer.Option("--plain-one")] = False,
) -> None:
    """An option whose name is outside the schema's characters."""
    typer.echo(f"odd naive={naive} plain_one={plain_one}")


@app.command("two words")
def two_words() -> None:
    typer.echo("two words")


UnicodeError_ = type("Ошибка", (Exception,), {})
LongError = type("E" + "x" * 120, (Exception,), {})


@app.command("fail-unicode")
def fail_unicode() -> None:
    raise UnicodeError_("message")


@app.command("fail-long")
def fail_long() -> None:
    raise LongError("message")


if __name__ == "__main__":
    app()
