"""The layering written in docs/internals.md is the layering of the imports.

Each unit (a top-level module of `gitteam`, or one of its packages) sits on one floor of the `layers` block
in docs/internals.md; a unit may import only units on lower floors. That rules out import cycles between
packages, and a new module that is not on the map fails here until someone places it.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "gitteam"
DOC = ROOT / "docs" / "internals.md"


def floors(text: str) -> list[list[str]]:
    """The `layers` block: one floor a line, top first, units separated by spaces or commas."""
    block = re.search(r"```layers\n(.*?)```", text, re.S)
    assert block, "docs/internals.md has no ```layers block"
    lines = [line.split("#", 1)[0] for line in block.group(1).splitlines()]
    return [re.findall(r"[\w.]+", line) for line in lines if line.strip()]


def unit_of(module: str) -> str | None:
    """`gitteam.run.subtask` -> "run"; `gitteam.cli` -> "cli"; the package root itself -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "gitteam" else None


def units() -> set[str]:
    found = {path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    return found | {path.parent.name for path in PACKAGE.glob("*/__init__.py")}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every gitteam import in a file, those under TYPE_CHECKING and inside functions too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "gitteam":  # from gitteam import ui, terminal
                found += [(node.lineno, f"gitteam.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, module) for line, module in found if module.startswith("gitteam.")]


def violations(layers: list[list[str]]) -> list[str]:
    floor = {unit: number for number, names in enumerate(layers) for unit in names}
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        here = unit_of(".".join(rel.parts).removesuffix(".__init__"))
        for line, module in imports(path):
            there = unit_of(module)
            if here is None or there is None or there == here or there == "__version__":
                continue
            if here not in floor or there not in floor:
                continue  # reported by the test of the map itself
            if floor[there] <= floor[here]:
                problems.append(f"{rel}.py:{line} imports {module}: {there} is not below {here} in the layers")
    return problems


def test_every_unit_is_on_exactly_one_floor() -> None:
    layers = floors(DOC.read_text())
    placed = [unit for names in layers for unit in names]
    assert sorted(set(placed)) == sorted(placed), "a unit is on two floors"
    assert set(placed) == units(), (f"missing from the map: {sorted(units() - set(placed))}; "
                                    f"on the map but not in the code: {sorted(set(placed) - units())}")


def test_imports_only_go_down() -> None:
    assert violations(floors(DOC.read_text())) == []


@pytest.mark.parametrize(("source", "expected"), [
    ("from gitteam.run.context import RunContext\n", "imports gitteam.run.context: run is not below journal"),
    ("from gitteam import ui\n", "imports gitteam.ui: ui is not below journal"),
])
def test_an_upward_import_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str,
                                    expected: str) -> None:
    """The check itself: an import from a low unit (the journal) up into the run or the UI fails."""
    copy = tmp_path / "src" / "gitteam"
    copy.mkdir(parents=True)
    (copy / "journal.py").write_text(source)
    (copy / "ui.py").write_text("")
    (copy / "run").mkdir()
    (copy / "run" / "__init__.py").write_text("")
    (copy / "run" / "context.py").write_text("from gitteam.journal import Journal\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", copy)
    problems = violations([["ui"], ["run"], ["journal"]])
    assert len(problems) == 1 and expected in problems[0]
