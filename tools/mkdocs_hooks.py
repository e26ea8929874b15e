"""MkDocs hooks: show README.md and TELEMETRY.md on the site, with links that work in both places.

The two files live at the repository's root, where GitHub and PyPI show
them, and link to `docs/configuration.md`; the pages under docs/ link back
to `../TELEMETRY.md`. Both are right on GitHub and wrong on the site, where
the root files are the pages `index.md` and `telemetry.md`. So that the one
source stays right for both, the site's pages say `--8<-- "README.md"` on a
line of their own, and this hook puts the file's text there with its links
moved to the site's layout, and moves the docs' links to the root files.
A link it does not know how to move is left alone, for `mkdocs build
--strict` to report.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# A root file and the site page that shows it.
ROOT_PAGES = {"README.md": "index.md", "TELEMETRY.md": "telemetry.md"}

INCLUDE = re.compile(r'^--8<-- "(?P<name>[^"]+)"[ \t]*$', re.MULTILINE)
# `[text](target)` and `[label]: target`, target without spaces.
LINK = re.compile(r"(?P<open>\]\(|^\[[^\]\n]+\]:[ \t]*)(?P<target>[^)\s]+)", re.MULTILINE)


def _split(target: str) -> tuple[str, str]:
    """`file.md#anchor` -> (`file.md`, `#anchor`)."""
    path, hash_sign, anchor = target.partition("#")
    return path, hash_sign + anchor


def root_link_for_site(target: str) -> str:
    """A link written in a root file, as a page of the site's top folder must say it."""
    path, anchor = _split(target)
    if path in ROOT_PAGES:
        return ROOT_PAGES[path] + anchor
    if path.startswith("docs/"):
        return path.removeprefix("docs/") + anchor
    return target


def docs_link_for_site(target: str) -> str:
    """A link written in a page under docs/, to a root file, as the site must say it."""
    path, anchor = _split(target)
    if path.startswith("../") and path.removeprefix("../") in ROOT_PAGES:
        return ROOT_PAGES[path.removeprefix("../")] + anchor
    return target


def _move_links(markdown: str, move: Any) -> str:
    return LINK.sub(lambda match: match.group("open") + move(match.group("target")), markdown)


def include_root_file(match: re.Match[str]) -> str:
    text = (ROOT / match.group("name")).read_text(encoding="utf-8")
    return _move_links(text, root_link_for_site)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Include the root files a page names, and point every link at the site's pages."""
    markdown = _move_links(markdown, docs_link_for_site)
    return INCLUDE.sub(include_root_file, markdown)
