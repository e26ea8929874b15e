"""Built-in signals under hostile input: environments, MCP client names, file systems.

The runner and project signals read what others wrote (environment variables,
an MCP client's self-description, the folders above the working folder) on
every recorded run. Whatever those hold, the result is one of the documented
names or a 32-hex id, nothing raises, and nothing of the input comes out.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hardening.conftest import cases
from typer_telemetry import _identity, _runner
from typer_telemetry._identity import is_project_id, mint_salt, project_folder, project_id
from typer_telemetry._runner import (
    AGENT_VARIABLES,
    AGENTS,
    MCP_CLIENT_NAMES,
    RUNNERS,
    agent_from_client_name,
    detect_runner,
)

VARIABLES = sorted({variable for variable, _, _ in AGENT_VARIABLES})
KNOWN_VALUES = sorted({wanted for _, wanted, _ in AGENT_VARIABLES if wanted} | set(AGENTS))


def hostile_text(rng: random.Random) -> str:
    """Text of the kinds that break naive code: huge, control, unicode, undecodable, near-misses."""
    kind = rng.randrange(8)
    if kind == 0:
        return ""
    if kind == 1:
        return rng.choice(KNOWN_VALUES) + rng.choice(["", " ", "\x00", "@9", "\n", "ß", "-x"])
    if kind == 2:
        return "".join(chr(rng.randrange(0, 0x20)) for _ in range(rng.randrange(1, 50)))
    if kind == 3:
        return "".join(chr(rng.randrange(0x80, 0x2FFFF)) for _ in range(rng.randrange(1, 200)))
    if kind == 4:
        return "\udc80\udcff" * rng.randrange(1, 20)  # undecodable bytes, as os.environ has them
    if kind == 5:
        return rng.choice("ab -_@") * rng.randrange(1, 100_000)
    if kind == 6:
        return rng.choice(KNOWN_VALUES).upper().center(rng.randrange(1, 40))
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz-_@ 0123456789") for _ in range(20))


def test_hostile_agent_variables_give_only_documented_names(reliability: object) -> None:
    rng = random.Random(20260310)
    count = cases(300, 20_000)
    for _ in range(count):
        environ = {
            rng.choice([*VARIABLES, "PATH", "TERM"]): hostile_text(rng)
            for _ in range(rng.randrange(1, 6))
        }
        stdin, stderr = rng.random() < 0.5, rng.random() < 0.5
        runner, agent = detect_runner(environ, stdin_is_terminal=stdin, stderr_is_terminal=stderr)
        assert runner in RUNNERS
        assert agent in AGENTS if runner == "agent" else agent == ""
    reliability.record(  # type: ignore[attr-defined]
        area="Signals",
        fault="agents' environment variables holding empty, huge (100 kB), control, "
        "unicode, undecodable or near-miss values, alone and together",
        cases=count,
        outcome="runner is terminal, script or agent and the agent one of the documented "
        "names; no value is ever part of the result",
    )


def test_undecodable_bytes_in_a_real_processs_environment(
    tmp_path: Path, reliability: object
) -> None:
    """Bytes that are not UTF-8 reach os.environ as surrogates: still only documented names."""
    out = tmp_path / "result.txt"
    script = (
        "import importlib.util, os, sys\n"
        "spec = importlib.util.spec_from_file_location('runner', sys.argv[1])\n"
        "runner = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(runner)\n"
        "result = runner.detect_runner(os.environ, stdin_is_terminal=False, stderr_is_terminal=False)\n"
        "open(sys.argv[2], 'w').write(' '.join(result).strip())\n"
    )
    environments = [
        {b"AGENT": b"\xff\xfe\x80"},
        {b"AI_AGENT": b"claude-code\xff"},
        {b"CLAUDECODE": b"1\xc3"},
        {b"CODEX_THREAD_ID": b"\xe9" * 4096},
    ]
    expected = ["agent other", "agent other", "script", "agent codex"]
    for environment, wanted in zip(environments, expected, strict=True):
        base = {b"PATH": os.environb.get(b"PATH", b"/usr/bin:/bin")}
        result = subprocess.run(
            [sys.executable, "-c", script, str(Path(_runner.__file__)), str(out)],
            env={**base, **environment},
            capture_output=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert out.read_text() == wanted
    reliability.record(  # type: ignore[attr-defined]
        area="Signals",
        fault="bytes that are not UTF-8 in an agent's variable, in a real process",
        cases=len(environments),
        outcome="read as the interpreter decodes them; a near-miss is not that agent; "
        "the result is a documented name",
    )


def test_hostile_mcp_client_names_give_only_documented_agents(reliability: object) -> None:
    rng = random.Random(7)
    count = cases(300, 20_000)
    known = [client for client, _ in MCP_CLIENT_NAMES]
    for _ in range(count):
        kind = rng.randrange(4)
        name: object
        if kind == 0:
            name = hostile_text(rng)
        elif kind == 1:
            name = rng.choice([None, 0, -1, 3.5, True, b"cursor-vscode", ["Zed"], {"name": "Zed"}])
        elif kind == 2:
            client = rng.choice(known)
            name = client + rng.choice(["", " ", "-", "x", "\x00", "\u200b"]) * rng.randrange(
                1, 300
            )
        else:
            name = "".join(rng.choice(known))
        agent = agent_from_client_name(name)
        assert agent in AGENTS
    reliability.record(  # type: ignore[attr-defined]
        area="Signals",
        fault="MCP clientInfo.name of any type and content (hostile text, bytes, lists, "
        "near-misses of known names, overlong)",
        cases=count,
        outcome="a documented agent name or `other`; the client's text is never returned",
    )


def test_hostile_folders_never_stop_a_project_id(tmp_path: Path, reliability: object) -> None:
    """Loops, dead links, fifos named as markers, a path too long to use, odd bytes in names."""
    base = tmp_path / "hostile"
    base.mkdir()
    (base / "loop-a").symlink_to(base / "loop-b")
    (base / "loop-b").symlink_to(base / "loop-a")
    (base / "dead").symlink_to(base / "nowhere")
    fifo_project = base / "fifo-project"
    (fifo_project / "sub").mkdir(parents=True)
    os.mkfifo(fifo_project / ".git")
    odd = base / os.fsdecode(b"caf\xe9 \x1b[31m")
    (odd / "x").mkdir(parents=True)
    deep = base
    for _ in range(cases(40, 400)):
        deep = deep / ("d" * 50)
    starts = [
        base / "loop-a",
        base / "loop-b" / "x" / "y",
        base / "dead",
        base / "dead" / "under",
        fifo_project / "sub",
        odd / "x",
        deep,  # longer than PATH_MAX: never created, cannot be looked at
        Path("\x00"),
        Path(""),
    ]
    salt = mint_salt()
    for start in starts:
        folder = project_folder(start)
        assert folder.is_absolute()
        assert is_project_id(project_id(salt, folder))
    assert project_folder(fifo_project / "sub") == fifo_project.resolve()
    reliability.record(  # type: ignore[attr-defined]
        area="Signals",
        fault="the project folder search from symlink loops, dead links, a fifo named .git, "
        "names with undecodable bytes and escapes, a path longer than PATH_MAX, NUL, empty",
        cases=len(starts),
        outcome="never raises; an absolute folder and a 32-hex id every time; a marker "
        "counts whatever kind of file it is",
    )


@pytest.mark.parametrize("salt", ["", "0" * 63, "Z" * 64, "0" * 64 + "\n"])
def test_a_malformed_salt_is_refused_never_used(salt: str, reliability: object) -> None:
    with pytest.raises(ValueError):
        project_id(salt, Path("/srv/x"))
    assert not _identity.is_salt(salt)
    reliability.record(  # type: ignore[attr-defined]
        area="Signals",
        fault="a salt that is empty, short, not lower-case hex or with a trailing newline",
        cases=1,
        outcome="refused with ValueError: no id is ever made from a guessable salt",
    )
