"""Write docs/reliability.md's table from the rows the hardening suite reported.

    python tools/write_reliability_md.py RESULTS_FOLDER
    python tools/write_reliability_md.py --add RESULTS_FOLDER

Each row says what was tried, in how many cases, what happened and what was
lost; rows of the same fault reported by several tests are kept apart.
With `--add`, the rows of a run of some tests only (new ones) join the rows
already on the page instead of replacing them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"
START = "<!-- reliability-table:start -->"
END = "<!-- reliability-table:end -->"
AREAS = [
    "Local files",
    "Other users",
    "Process life",
    "Time",
    "Network",
    "Hook",
    "Author mistakes",
    "Bounds",
    "Concurrency",
    "Privacy",
    "Output",
]


def load_rows(folder: Path) -> list[dict[str, object]]:
    rows = []
    for path in sorted(folder.glob("rows-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def escape(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def merge(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """One row per area, outcome and loss: the faults that behaved alike are listed together."""
    merged: dict[tuple[str, str, str], dict[str, object]] = {}
    for row in rows:
        key = (str(row["area"]), str(row["outcome"]), str(row["lost"]))
        if key not in merged:
            merged[key] = {**row, "faults": [str(row["fault"])], "cases": 0}
        entry = merged[key]
        if str(row["fault"]) not in entry["faults"]:  # type: ignore[operator]
            entry["faults"].append(str(row["fault"]))  # type: ignore[attr-defined]
        entry["cases"] = int(entry["cases"]) + int(row["cases"])  # type: ignore[call-overload]
    for entry in merged.values():
        entry["fault"] = "; ".join(sorted(entry["faults"]))  # type: ignore[call-overload]
    return list(merged.values())


def render(rows: list[dict[str, object]]) -> str:
    def order(row: dict[str, object]) -> tuple[int, str, str]:
        area = str(row["area"])
        return (AREAS.index(area) if area in AREAS else len(AREAS), area, str(row["fault"]))

    lines = [
        "| area | fault or input tried | cases | what happened | lost |",
        "|---|---|---:|---|---|",
    ]
    total = 0
    merged = merge(rows)
    for row in sorted(merged, key=order):
        total += int(row["cases"])  # type: ignore[call-overload]
        lines.append(
            f"| {escape(row['area'])} | {escape(row['fault'])} | {int(row['cases']):,} "  # type: ignore[call-overload]
            f"| {escape(row['outcome'])} | {escape(row['lost'])} |"
        )
    lines.append("")
    faults = sum(int(row.get("fault_count", 1)) for row in rows)  # type: ignore[call-overload]
    lines.append(
        f"{faults} faults and inputs in {len(merged)} rows (faults that behaved alike share a"
        f" row), {total:,} cases in all."
    )
    return "\n".join(lines)


def rows_on_page(table: str) -> list[dict[str, object]]:
    """The rows of the table already on the page (each may list several faults)."""
    rows: list[dict[str, object]] = []
    for line in table.splitlines():
        if not line.startswith("| ") or line.startswith(("| area ", "|---")):
            continue
        cells = [cell.strip().replace("\\|", "|") for cell in line.strip("|").split(" | ")]
        area, fault, cases, outcome, lost = cells
        rows.append(
            {
                "area": area,
                "fault": fault,
                "cases": int(cases.replace(",", "")),
                "outcome": outcome,
                "lost": lost,
                "fault_count": len(fault.split("; ")),
            }
        )
    # A fault's own text may hold "; ": the page's footer has the true number.
    import re

    footer = re.search(r"^([0-9,]+) faults and inputs", table, re.MULTILINE)
    if footer and rows:
        counted = sum(int(row["fault_count"]) for row in rows)  # type: ignore[call-overload]
        rows[0]["fault_count"] = (
            int(rows[0]["fault_count"])
            + int(  # type: ignore[call-overload]
                footer.group(1).replace(",", "")
            )
            - counted
        )
    return rows


def main() -> None:
    add = sys.argv[1] == "--add"
    rows = load_rows(Path(sys.argv[-1]))
    if not rows:
        raise SystemExit("no rows: did the hardening suite run with HARDENING_RESULTS set?")
    page = PAGE.read_text(encoding="utf-8")
    head, rest = page.split(START, 1)
    table, tail = rest.split(END, 1)
    if add:
        rows = rows_on_page(table) + rows
    PAGE.write_text(f"{head}{START}\n{render(rows)}\n{END}{tail}", encoding="utf-8")
    print(f"wrote {len(rows)} rows to {PAGE}")


if __name__ == "__main__":
    main()
