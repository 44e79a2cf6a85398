"""The documentation site builds offline with warnings as errors, and holds what it promises.

Runs ``mkdocs build --strict`` (mkdocs.yml) into a temporary folder: the README
guide, docs/ODD.md, the API reference from the docstrings, the scenario
reference from the pydantic schema, the notebooks executed with their outputs,
and the benchmark and calibration reports. Marked slow: the notebooks run
(about two minutes). The site must not show a table row whose cells differ from
its header's (the build's own check, docs/tooling/site_hooks.py, fails it under
``--strict``), a local path of the machine that built it, or a notebook's stderr.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

from sim.scenario.schema import Scenario

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason="the site needs the docs extra: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    result = build(ROOT / "mkdocs.yml", out)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-5000:]}"
    return out


def build(config: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of ``config`` into ``out`` with this repository's ``sim``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "--site-dir", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True)


def hooks():
    """docs/tooling/site_hooks.py, the site's hooks, as a module."""
    spec = importlib.util.spec_from_file_location("site_hooks", ROOT / "docs" / "tooling" / "site_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LOCAL = re.compile(r"/(?:work|root|home|tmp)/")
"""A local path of the building machine (none may reach the site)."""


def page(site: Path, path: str) -> str:
    return (site / path / "index.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_guide_is_the_readme_and_the_odd_and_reports_are_pages(site):
    first_heading = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("# "))
    assert first_heading[2:].strip() in (site / "index.html").read_text(encoding="utf-8")
    assert "ODD" in page(site, "ODD")
    assert "posterior" in page(site, "calibration/report") and (site / "calibration/figures/fit.png").exists()
    assert "<table>" in page(site, "benchmarks/RESULTS")


@pytest.mark.slow
def test_the_scenario_reference_lists_every_key_of_the_schema(site):
    text = page(site, "reference/scenario")
    schema = Scenario.model_json_schema()
    for section in [schema, *schema["$defs"].values()]:
        for key in section.get("properties", {}):
            assert f"<code>{key}</code>" in text, f"{section['title']}.{key} is missing from the scenario reference"
    assert "utility per log-firm" in text  # the unit of network_effect, from the schema


@pytest.mark.slow
def test_the_api_reference_is_the_docstrings_of_the_public_modules(site):
    for module in ["sim", "sim.model", "sim.scenario", "sim.experiments.ensemble", "sim.analysis.prim", "sim.policy.optimisation",
                   "sim.reporting.figures"]:
        assert (site / "reference/api" / module / "index.html").exists(), module
    assert "Firms per city over time" in page(site, "reference/api/sim.reporting.figures")  # plot_counts' docstring


@pytest.mark.slow
def test_the_notebooks_are_rendered_with_their_outputs(site):
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        text = page(site, f"notebooks/{notebook.stem}")
        assert "jp-OutputArea-output" in text, f"{notebook.name} has no outputs on the site"
    assert "data:image/png;base64" in page(site, "notebooks/02-winner-take-all")


@pytest.mark.slow
def test_the_site_loads_no_script_or_style_from_another_host(site):
    """Offline: every script and stylesheet is the site's own (MathJax of the notebook pages aside, see below)."""
    found = set()
    for html in site.rglob("*.html"):
        found |= set(re.findall(r"<(?:script|link)[^>]+(?:src|href)=\"(https?://[^\"]+)\"", html.read_text(encoding="utf-8")))
    assert not {url for url in found if "mathjax" not in url}, found


def cells(row_html: str) -> list[str]:
    """The text of each cell of one ``<tr>`` of the built HTML."""
    return [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row_html, re.S)]


@pytest.mark.slow
def test_the_scenario_reference_keeps_choices_in_their_cell(site):
    """An enum's `a | b` is one type cell (an unescaped | made a stray cell and pushed the meaning out)."""
    text = page(site, "reference/scenario")
    header = cells(re.search(r"<tr>\s*<th.*?</tr>", text, re.S).group())
    rows = {cells(row)[0]: cells(row) for row in re.findall(r"<tr>\s*<td.*?</tr>", text, re.S)}
    assert header == ["key", "type", "unit", "default", "constraints", "meaning", "source"]
    assert rows["engine"][1] == "agents | counts" and rows["engine"][5].startswith("agents: every firm an individual")
    assert rows["strategy"][1].startswith("fixed | imitate | best_response")


@pytest.mark.slow
def test_the_site_shows_no_local_path_and_no_notebook_stderr(site):
    """No page names a folder of the machine that built it (a warning's file, a report's resume file)."""
    found = {str(f.relative_to(site)): LOCAL.findall(f.read_text(encoding="utf-8")) for f in site.rglob("*.html")}
    assert not {name: hits for name, hits in found.items() if hits}, "local paths on the site"
    index = (site / "search" / "search_index.json").read_text(encoding="utf-8")
    assert not LOCAL.search(index), LOCAL.search(index)
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        text = page(site, f"notebooks/{notebook.stem}")
        assert not re.search(r'<div[^>]+data-mime-type="application/vnd.jupyter.stderr"', text), notebook.name


@pytest.mark.slow
def test_a_broken_table_fails_the_strict_build(tmp_path):
    """A row with a cell too many (the scenario reference's old `a \\| b`) stops the build, naming the page."""
    pytest.importorskip("mkdocs", reason="the site needs the docs extra: pip install -e '.[docs]'")
    site_hooks = hooks()
    broken = "| key | type |\n|---|---|\n| `engine` | `agents` \\\\| `counts` |\n"
    fine = ("| key | type |\n|:--|--:|\n| `engine` | `agents` \\| `counts` |\n| `a|b` | `x` |\n\n"
            "```\n| not | a | table |\n|---|\n```\n")
    assert site_hooks.broken_table_rows(broken) == [
        "line 3: 3 cells, its header 2: | `engine` | `agents` \\\\| `counts` |"]
    assert site_hooks.broken_table_rows(fine) == []
    assert site_hooks.broken_table_rows(site_hooks.scenario_reference()) == []
    for name, table in (("fine", fine), ("broken", broken)):  # only the table differs: links are not checked
        docs = tmp_path / name / "docs"
        docs.mkdir(parents=True)
        (docs / "page.md").write_text(f"# A table\n\n{table}", encoding="utf-8")
        config = tmp_path / name / "mkdocs.yml"
        config.write_text(f"site_name: t\ndocs_dir: {docs}\nhooks:\n  - {ROOT / 'docs' / 'tooling' / 'site_hooks.py'}\n"
                          "nav:\n  - page.md\nvalidation:\n  links:\n    not_found: info\n", encoding="utf-8")
        result = build(config, tmp_path / name / "site")
        if name == "fine":
            assert result.returncode == 0, result.stderr[-3000:]
        else:
            assert result.returncode != 0
            assert "page.md: a table row does not fit its header, line 5: 3 cells, its header 2" in result.stderr
            assert result.stderr.count("WARNING") == 1, result.stderr[-3000:]
