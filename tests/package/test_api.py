"""One public API: docs/api.md, the packages' ``__all__`` and what the notebooks and README examples import agree.

A public name is ``sim.NAME`` or ``sim.PACKAGE.NAME`` with NAME in that package's
``__all__``; docs/api.md lists each in the first cell of a table row, in backticks.
Every listed name imports from its package, every exported name is listed, and the
notebooks and the README's Python examples use no other ``sim`` name (no module path,
nothing private).
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "docs" / "api.md"
PACKAGES = ["sim", "sim.model", "sim.scenario", "sim.experiments", "sim.inference", "sim.policy", "sim.analysis",
            "sim.reporting", "sim.app"]
"""The packages whose ``__all__`` is the public API."""

NEEDS_EXTRA = {"sim.app.page": "solara"}
"""Names whose value needs an optional extra (made on first use): checked in ``__all__``, imported if it is installed."""


def documented() -> set[str]:
    """Every ``sim...`` name in backticks in the first cell of a table row of docs/api.md."""
    names = set()
    for line in API.read_text(encoding="utf-8").splitlines():
        cells = line.strip().strip("|").split("|")
        if line.startswith("|") and len(cells) >= 2:
            names.update(re.findall(r"`(sim(?:\.\w+)+)`", cells[0]))
    return names


def split(name: str) -> tuple[str, str]:
    """``sim.policy.optimise`` → (``sim.policy``, ``optimise``); ``sim.ModuModel`` → (``sim``, ``ModuModel``)."""
    package, _, attr = name.rpartition(".")
    return package, attr


def test_the_api_page_lists_names_of_every_public_package():
    packages = {split(name)[0] for name in documented()}
    assert packages == set(PACKAGES), f"docs/api.md lists names of {sorted(packages)}; public packages: {PACKAGES}"


@pytest.mark.parametrize("name", sorted(documented()))
def test_every_documented_name_imports_from_its_package(name):
    package, attr = split(name)
    assert package in PACKAGES, f"docs/api.md lists {name}, which is not in a public package ({', '.join(PACKAGES)})"
    module = importlib.import_module(package)
    assert attr in module.__all__, f"docs/api.md lists {name}, but {package}.__all__ does not export {attr}"
    if name in NEEDS_EXTRA:
        pytest.importorskip(NEEDS_EXTRA[name], reason=f"{name} needs an optional extra")
    assert getattr(module, attr) is not None
    assert not isinstance(getattr(module, attr), type(importlib)), f"{name} is a module, not the documented name"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_is_documented(package):
    listed = documented()
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not name.startswith("__") and f"{package}.{name}" not in listed]
    assert not missing, f"{package}.__all__ exports names docs/api.md does not list: {missing}"


def sim_names(source: str) -> set[str]:
    """Every ``sim`` name a piece of code imports or reaches by attribute, fully qualified (``sim.policy.optimise``)."""
    names: set[str] = set()
    aliases: dict[str, str] = {}
    tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sim":
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sim":
                    aliases[alias.asname or alias.name] = alias.name
                    names.add(alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            parts, inner = [node.attr], node.value
            while isinstance(inner, ast.Attribute):
                parts.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id in aliases:
                names.add(".".join([aliases[inner.id], *reversed(parts)]))
    return names


def not_public(names: set[str]) -> list[str]:
    """The names that are neither a public package nor a name its ``__all__`` exports."""
    bad = []
    for name in sorted(names):
        package, attr = split(name)
        if name in PACKAGES:
            continue
        if package not in PACKAGES or attr not in importlib.import_module(package).__all__:
            bad.append(name)
    return bad


def test_the_rule_tells_public_names_from_module_paths():
    used = sim_names("from sim.policy import optimise\nfrom sim.policy.optimisation import optimise\n"
                     "import sim.analysis as a\na.prim\nfrom sim.reporting.text import _x")
    assert not_public(used) == ["sim.policy.optimisation.optimise", "sim.reporting.text._x"]


def code_cells(path: Path) -> list[str]:
    nbformat = pytest.importorskip("nbformat", reason="the test extra installs nbformat: pip install -e '.[test]'")
    notebook = nbformat.read(path, as_version=4)
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebooks_use_only_public_names(path):
    used = set().union(*(sim_names(source) for source in code_cells(path)))
    assert used, f"{path.name} does not use the sim package"
    assert not not_public(used), f"{path.name} imports names that no package exports: {not_public(used)}"


def test_readme_python_examples_use_only_public_names():
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)
    used = set().union(*(sim_names(block) for block in blocks))
    assert used, "README has no Python example using sim"
    assert not not_public(used), f"README's Python examples import names no package exports: {not_public(used)}"
