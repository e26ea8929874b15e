"""The architecture as docs/design.md draws it: one way, no cycles, a module per line.

docs/design.md's module map lists every module of the library, each on one
line, from the top (the facade the tool author calls) to the bottom (plain
checks and values). A module imports only modules below it in that table
(imports for the type checker alone do not count: they run nowhere), so data
flows one way: hook -> recording -> journal -> store -> sending -> back end,
and nothing calls back up.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "typer_telemetry"
DESIGN = ROOT / "docs" / "design.md"


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE).with_suffix("")
    parts = [part for part in relative.parts if part != "__init__"]
    return ".".join(["typer_telemetry", *parts])


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The library modules `name` imports at run time, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in known else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    graph = {name: imports_of(name, path, known) for name, path in found.items()}
    # Importing `typer_telemetry.x` runs the package's __init__ first: not an edge of ours.
    return {name: edges - {"typer_telemetry"} for name, edges in graph.items()}


def mapped_modules() -> list[str]:
    """The modules of docs/design.md's module map, top to bottom."""
    text = DESIGN.read_text(encoding="utf-8")
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    names = []
    for line in section.splitlines():
        match = re.match(r"\| `([\w/]+)\.py` \|", line)
        if match:
            names.append(module_name(PACKAGE / f"{match.group(1)}.py"))
    return names


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    graph = import_graph()
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycle = [*path[path.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_module_map_lists_every_module_once() -> None:
    listed = mapped_modules()
    assert len(listed) == len(set(listed)), "a module is listed twice"
    assert sorted(listed) == sorted(modules()), "docs/design.md's module map is not the code's"


def test_every_module_imports_only_modules_below_it_in_the_map() -> None:
    order = {module: index for index, module in enumerate(mapped_modules())}
    graph = import_graph()
    upward = [
        f"{module} imports {target}"
        for module, targets in graph.items()
        for target in targets
        if order[target] <= order[module]
    ]
    assert not upward, upward


def test_records_are_typed_never_plain_dicts() -> None:
    """JSON documents are `JSONDocument`s where they are written or sent; a record is a `Record`."""
    loose = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in PACKAGE.rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "dict[str, object]" in line
    ]
    assert not loose, loose
