"""Regenerate docs/images/collector-report.png: the collector's HTML report of the example data.

    python tools/collector_screenshot.py [OUTPUT.png]

The example data (tests/collector/report_example.py) is deterministic, so the
page is the same on every run; the picture differs only by the fonts of the
machine's Chromium. Needs Debian's `chromium` (or one on PATH).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.collector.report_chromium import screenshot  # noqa: E402
from tests.collector.report_example import FakeStore, example_rows  # noqa: E402

from typer_telemetry.collector.report import aggregate, render_html  # noqa: E402

DEFAULT_OUTPUT = ROOT / "docs" / "images" / "collector-report.png"


def main(argv: list[str]) -> int:
    output = Path(argv[0]) if argv else DEFAULT_OUTPUT
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "report.html"
        page.write_text(
            render_html(aggregate(FakeStore(example_rows()).report_rows())), encoding="utf-8"
        )
        screenshot(page, output, width=1280, height=2000)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
