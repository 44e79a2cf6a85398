"""The package's layers: imports go one way, nothing cycles, and the command line starts light.

The layer contract itself is import-linter's (``lint-imports``, configured in
pyproject.toml, run in CI); these tests check what it does not: cycles between
modules, and that starting the command line imports none of the heavy layers.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

grimp = pytest.importorskip("grimp", reason="the test extra installs import-linter (and grimp)")


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph("sim", exclude_type_checking_imports=True)
    modules = sorted(graph.modules)
    cycles = [(a, b) for a in modules for b in modules
              if a < b and graph.chain_exists(importer=a, imported=b) and graph.chain_exists(importer=b, imported=a)]
    assert cycles == []


def test_click_is_imported_only_under_cli():
    graph = grimp.build_graph("sim", "click", exclude_type_checking_imports=True)
    importers = {m for m in graph.find_modules_that_directly_import("click")}
    assert importers and all(m.startswith("sim.cli") for m in importers), importers


def test_the_command_line_starts_without_the_model_or_the_experiments():
    code = ("import sys; from sim.cli import main\n"
            "heavy = [m for m in ('mesa', 'pandas', 'matplotlib', 'scipy', 'sim.model', 'sim.experiments.ensemble')"
            " if m in sys.modules]\nprint(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
