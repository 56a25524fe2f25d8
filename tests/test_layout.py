"""The package's plan, enforced: which package may import which, and how large a piece may grow.

docs/architecture.md explains the layers; this test keeps them from rotting. It reads
the source with ``ast`` (every import, including those inside functions and under
``TYPE_CHECKING``), so an upward import fails here before it becomes a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "pytest_netcopy"

#: what each part of the package may import from the package (besides itself)
ALLOWED: dict[str, set[str]] = {
    "sink": set(),
    "results": set(),
    "send": {"sink", "results"},
    "instruments": {"results"},
    "transport": {"send", "instruments", "sink", "results"},
    "bench": {"send", "transport", "instruments", "sink", "results"},
    "gate": {"results"},
    "report": {"results"},
    "cli": {"gate", "report", "results"},
    "plugin": {"bench", "send", "transport", "instruments", "sink", "results", "gate", "report"},
    "__init__": {"send"},
    "__main__": {"cli"},
}

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _part(path: Path) -> str:
    """The part a module belongs to: ``bench`` for bench/runner.py, ``sink`` for sink/tcp.py."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imported_parts(path: Path, root: Path = PACKAGE) -> set[str]:
    """The package parts a module imports, absolute or relative, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = path.relative_to(root.parent).with_suffix("").parts[:-1]
    parts: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module == "pytest_netcopy":
                names = [f"pytest_netcopy.{alias.name}" for alias in node.names]
            else:
                names = [module]
        for name in names:
            dotted = name.split(".")
            if dotted[0] == "pytest_netcopy" and len(dotted) > 1:
                parts.add(dotted[1])
    return parts


def test_the_package_has_the_planned_parts() -> None:
    found = {_part(p) for p in _modules()}
    assert found == set(ALLOWED), f"unplanned parts: {found ^ set(ALLOWED)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_one_way(path: Path) -> None:
    part = _part(path)
    wrong = sorted(_imported_parts(path) - ALLOWED[part] - {part})
    assert not wrong, f"{path.relative_to(PACKAGE)} ({part}) imports {wrong}"


def test_nothing_imports_the_plugin() -> None:
    importers = [
        str(p.relative_to(PACKAGE))
        for p in _modules()
        if _part(p) != "plugin" and "plugin" in _imported_parts(p)
    ]
    assert importers == []


def test_the_import_check_sees_upward_imports(tmp_path: Path) -> None:
    """The checker itself: a relative, a lazy and a TYPE_CHECKING import are all seen."""
    root = tmp_path / "pytest_netcopy"
    (root / "send").mkdir(parents=True)
    module = root / "send" / "probe.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from ..results import schema\n"
        "if TYPE_CHECKING:\n"
        "    from pytest_netcopy.bench.runner import Netcopy\n"
        "def f():\n"
        "    from pytest_netcopy import plugin\n",
        encoding="utf-8",
    )
    assert _imported_parts(module, root) == {"results", "bench", "plugin"}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.count("\n")
    assert lines <= MAX_MODULE_LINES, f"{lines} lines: split it by role"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []
