"""The Python blocks of a Markdown page, and a child process that runs them like a doctest session.

Kept apart from the test so that the runner's child imports nothing of pytest's.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

PYTHON_LANGUAGES = frozenset({"python", "py", "python3", "pycon"})
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
NOT_RUN = re.compile(r"^\s*<!--\s*not run:(?P<reason>.*?)-->\s*$")


@dataclass(frozen=True)
class Block:
    """A fenced block of Python: where its first line of code is on the page, and its code."""

    line: int
    code: str
    skipped_because: str | None = None


def python_blocks(text: str) -> list[Block]:
    """Every fenced Python block of `text`, in order, with the reason of any `<!-- not run: -->`.

    A `<!-- not run: <reason> -->` comment on the last non-blank line before a
    block skips it; an empty reason is an error, so that every skip says why.
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening.group("indent"), opening.group("fence")
        language = opening.group("info").strip().split(" ")[0].lstrip(".{").lower()
        end = index + 1
        closing = re.compile(rf"^{re.escape(indent)}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if language in PYTHON_LANGUAGES:
            body = "\n".join(line.removeprefix(indent) for line in lines[index + 1 : end])
            blocks.append(
                Block(index + 2, textwrap.dedent(body) + "\n", _skip_reason(lines, index))
            )
        index = end + 1
    return blocks


def _skip_reason(lines: list[str], fence_index: int) -> str | None:
    before = fence_index - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    marker = NOT_RUN.match(lines[before]) if before >= 0 else None
    if marker is None:
        return None
    reason = marker.group("reason").strip()
    if not reason:
        raise ValueError(
            f"line {before + 1}: `<!-- not run: -->` must say why the block cannot run"
        )
    return reason


# The child: runs the blocks of one page in order in one namespace, with the
# network cut off, and on the first error names the page, the block's line and
# the error (the traceback's line numbers are the page's own).
RUNNER = r"""
import json, socket, sys, traceback

def refuse(*args, **kwargs):
    raise OSError("a documentation example tried to use the network")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

page, blocks = json.load(sys.stdin)
namespace = {"__name__": "__docs__"}
for line, code in blocks:
    try:
        exec(compile("\n" * (line - 1) + code, page, "exec"), namespace)
    except BaseException as error:
        print(f"{page}: the block at line {line} failed: {type(error).__name__}: {error}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
"""


def blocks_of(path: Path) -> list[Block]:
    return python_blocks(path.read_text(encoding="utf-8"))
