"""The built documentation site, served over real HTTP: its pages, headings, navigation and links.

`nox -s docs` builds the site with `mkdocs build --strict` and points
`DOCS_SITE_DIR` at it; without the variable this module builds the site
itself into a temporary folder, so that it never passes without a site.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from tests.conftest import ROOT

DOCS = ROOT / "docs"


class Page(HTMLParser):
    """What a test reads of a page: the title, the h1 and h2 texts, the links of the main nav and of the content."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.headings: dict[str, list[str]] = {"h1": [], "h2": []}
        self.nav_links: list[str] = []
        self.content_links: list[str] = []
        self._open: list[str] = []  # title, h1, h2 being read
        self._nav_depth = 0  # <nav> elements open inside the primary navigation
        self._in_headerlink = False
        self._article_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "nav" and (self._nav_depth or "md-nav--primary" in classes):
            self._nav_depth += 1
        if tag == "article":
            self._article_depth += 1
        if tag in ("title", "h1", "h2"):
            self._open.append(tag)
            if tag != "title":
                self.headings[tag].append("")
        if tag == "a":
            href = attributes.get("href")
            self._in_headerlink = "headerlink" in classes
            if href is not None and self._nav_depth:
                self.nav_links.append(href)
            elif href is not None and self._article_depth:
                self.content_links.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav" and self._nav_depth:
            self._nav_depth -= 1
        if tag == "article" and self._article_depth:
            self._article_depth -= 1
        if tag == "a":
            self._in_headerlink = False
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if not self._open or self._in_headerlink:
            return
        if self._open[-1] == "title":
            self.title += data
        else:
            self.headings[self._open[-1]][-1] += data


def page_url(markdown: Path) -> str:
    """`docs/configuration.md` -> `configuration/`; `docs/index.md` -> `` (the site's root)."""
    relative = markdown.relative_to(DOCS).with_suffix("").as_posix()
    if relative == "index":
        return ""
    return relative.removesuffix("/index") + "/"


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("DOCS_SITE_DIR")
    if given:
        site = Path(given)
        assert (site / "index.html").is_file(), f"DOCS_SITE_DIR={given} holds no built site"
        return site
    if importlib.util.find_spec("mkdocs") is None:
        pytest.fail("building the site needs MkDocs: run `nox -s docs`, or install `.[docs]`")
    site = tmp_path_factory.mktemp("docs") / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-q",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        check=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    return site


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base_url(site_dir: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site_dir))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def fetch(url: str) -> Page:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:
        assert response.status == 200, url
        assert response.headers.get_content_type() == "text/html", url
        page = Page()
        page.feed(response.read().decode("utf-8"))
    return page


def resolved(base: str, href: str) -> str:
    """The absolute URL of a link, without its fragment; index.html stands for its folder."""
    url = urljoin(base, href).split("#", 1)[0]
    return url.removesuffix("index.html")


def test_the_home_page_is_the_readme_with_its_quick_start(base_url: str) -> None:
    page = fetch(base_url)
    assert page.title.strip() == "typer-telemetry"
    assert [heading.strip() for heading in page.headings["h1"]] == ["typer-telemetry"]
    h2s = [heading.strip() for heading in page.headings["h2"]]
    assert {"Quick start", "Documentation", "Compatibility"} <= set(h2s), h2s
    # README's links to docs/configuration.md and TELEMETRY.md lead to the site's pages.
    links = {resolved(base_url, href) for href in page.content_links}
    assert {base_url + "configuration/", base_url + "telemetry/"} <= links


def test_the_configuration_guide_has_its_title_and_sections(base_url: str) -> None:
    page = fetch(base_url + "configuration/")
    assert page.title.strip() == "Configuration - typer-telemetry"
    assert [heading.strip() for heading in page.headings["h1"]] == ["Configuration"]
    h2s = [heading.strip() for heading in page.headings["h2"]]
    for section in (
        "What the tool author sets",
        "The tool's own events",
        "What the user sets",
        "Files",
    ):
        assert section in h2s, h2s
    links = {resolved(base_url + "configuration/", href) for href in page.content_links}
    assert base_url + "telemetry/" in links  # `../TELEMETRY.md` on GitHub


def test_the_users_contract_is_a_page_of_the_site(base_url: str) -> None:
    page = fetch(base_url + "telemetry/")
    first_heading = next(
        line
        for line in (ROOT / "TELEMETRY.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("# ")
    )
    assert [heading.strip() for heading in page.headings["h1"]] == [first_heading[2:].strip()]
    links = {resolved(base_url + "telemetry/", href) for href in page.content_links}
    assert base_url in links  # `README.md` on GitHub
    assert base_url + "configuration/" in links  # `docs/configuration.md` on GitHub


def test_the_api_reference_is_generated_from_the_docstrings(base_url: str, site_dir: Path) -> None:
    page = fetch(base_url + "reference/")
    assert [heading.strip() for heading in page.headings["h1"]] == ["API reference"]
    html = (site_dir / "reference" / "index.html").read_text(encoding="utf-8")
    for name in (
        "typer_telemetry.Telemetry",
        "typer_telemetry.Event",
        "typer_telemetry.backends.Batch",
    ):
        assert f'id="{name}"' in html, name
    assert "Record every invocation of" in html  # Telemetry.instrument's docstring


def test_the_navigation_lists_every_page(base_url: str) -> None:
    page = fetch(base_url + "configuration/")
    listed = {resolved(base_url + "configuration/", href) for href in page.nav_links}
    pages = sorted(DOCS.rglob("*.md"))
    assert len(pages) >= 10
    missing = [
        str(markdown.relative_to(ROOT))
        for markdown in pages
        if base_url + page_url(markdown) not in listed
    ]
    assert not missing, f"not in the site's navigation (add them to mkdocs.yml's nav): {missing}"


def test_every_link_between_the_sites_pages_leads_to_a_page(base_url: str, site_dir: Path) -> None:
    broken: list[str] = []
    for html in sorted(site_dir.rglob("index.html")):
        if html.parent.name in ("search", "assets"):
            continue
        url = base_url + html.parent.relative_to(site_dir).as_posix().removeprefix(".") + "/"
        url = url.replace("//", "/").replace("http:/", "http://")
        page = Page()
        page.feed(html.read_text(encoding="utf-8"))
        for href in page.content_links + page.nav_links:
            target = urljoin(url, href)
            if not target.startswith(base_url):
                continue
            path = site_dir / urlsplit(target).path.lstrip("/")
            if not (path.is_file() or (path / "index.html").is_file()):
                broken.append(f"{url}: {href}")
    assert not broken, broken


def test_every_relative_link_of_the_markdown_leads_to_a_file_on_github() -> None:
    # GitHub shows the Markdown itself: a link there is relative to the file's own folder.
    link = re.compile(r"\]\((?P<target>[^)\s#]+)(?:#[^)\s]*)?\)")
    broken: list[str] = []
    for markdown in [ROOT / "README.md", ROOT / "TELEMETRY.md", *sorted(DOCS.glob("*.md"))]:
        for match in link.finditer(markdown.read_text(encoding="utf-8")):
            target = match["target"]
            if re.match(r"[a-z]+:", target):
                continue
            if not (markdown.parent / target).exists():
                broken.append(f"{markdown.relative_to(ROOT)}: {target}")
    assert not broken, broken
