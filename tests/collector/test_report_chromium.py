"""The HTML report as a browser shows it: headless Chromium renders it, its numbers match the JSON's."""

from __future__ import annotations

import io
import json
import struct
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from tests.collector.report_chromium import dump_dom, screenshot
from tests.collector.report_example import FakeStore, example_rows, row
from tests.collector.test_report import HOSTILE_FIELD, hostile_store
from typer_telemetry.collector.report import run_report

# Numbers the JSON has for scripts that the page does not show as such.
NOT_ON_THE_PAGE = {"version", "recorded", "errors"}


class NumberCells(HTMLParser):
    """Every element that names its place in the JSON document, with what it shows."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str]] = []
        self._open: dict[str, str] | None = None
        self.attributes: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.attributes.append(found)
        if "data-json" in found:
            self._open = {
                "pointer": str(found["data-json"]),
                "value": str(found["data-value"]),
                "text": "",
            }

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if self._open is not None and tag == "td":
            self.cells.append(self._open)
            self._open = None


def resolve(document: Any, pointer: str) -> Any:
    for escaped in pointer.strip("/").split("/"):
        part = escaped.replace("~1", "/").replace("~0", "~")
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def numbers_of(document: Any, at: str = "") -> dict[str, Any]:
    """Every number (or null duration) of the JSON document by its pointer."""
    found: dict[str, Any] = {}
    if isinstance(document, dict):
        for key, value in document.items():
            if key not in NOT_ON_THE_PAGE:
                part = key.replace("~", "~0").replace("/", "~1")
                found.update(numbers_of(value, f"{at}/{part}"))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found.update(numbers_of(value, f"{at}/{index}"))
    elif (isinstance(document, (int, float)) and not isinstance(document, bool)) or (
        document is None and at.endswith("_ms")
    ):
        found[at] = document
    return found


def render(store: FakeStore, folder: Path) -> tuple[Path, dict[str, Any]]:
    page = folder / "report.html"
    out = io.StringIO()
    run_report(store, tool=None, since=None, until=None, as_json=True, html=page, file=out)
    return page, json.loads(out.getvalue())


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_every_number_chromium_shows_is_the_json_reports_and_every_json_number_is_shown(
    tmp_path: Path,
) -> None:
    store = FakeStore(
        [
            *example_rows(days=4),
            row(tool="sampled", properties={"command": "x", "flags": (), "sample_rate": 0.5}),
            # A field name a validating collector would refuse: still its own pointer.
            row(tool="odd", event="e", properties={"a/b~c": "v"}),
        ]
    )
    page, document = render(store, tmp_path)
    cells = NumberCells()
    cells.feed(dump_dom(page))

    shown = {cell["pointer"]: cell for cell in cells.cells}
    assert len(shown) == len(cells.cells), "a number is shown under two names"
    for pointer, cell in shown.items():
        expected = resolve(document, pointer)
        assert (json.loads(cell["value"]) if cell["value"] else None) == expected, pointer
        if expected is None:
            assert cell["text"] == "-"
        elif pointer.rsplit("/", 1)[-1].startswith("error_rate") or "/error_rates/" in pointer:
            assert cell["text"] == f"{expected * 100:.1f}%", pointer
        else:
            assert cell["text"].replace(",", "") == str(expected) or float(
                cell["text"].replace(",", "")
            ) == round(float(expected), 2), pointer
    assert set(numbers_of(document)) == set(shown)

    picture = tmp_path / "report.png"
    screenshot(page, picture)
    assert png_size(picture) == (1280, 2000)
    assert picture.stat().st_size > 20_000  # charts were drawn, not a blank page


def test_a_script_stored_in_a_field_does_not_run_in_chromium(tmp_path: Path) -> None:
    page, _ = render(hostile_store(), tmp_path)
    dom = dump_dom(page)
    parsed = NumberCells()
    parsed.feed(dom)
    # The stored script would have marked the body; it is text on the page instead.
    assert not any("data-pwned" in attributes for attributes in parsed.attributes)
    assert HOSTILE_FIELD.replace("<", "&lt;").replace(">", "&gt;") in dom
