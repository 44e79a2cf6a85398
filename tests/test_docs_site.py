"""The documentation site builds offline with warnings as errors, and holds what it promises.

Runs ``mkdocs build --strict`` (mkdocs.yml) into a temporary folder: the README
guide, docs/ODD.md, the API reference from the docstrings, the scenario
reference from the pydantic schema, the notebooks executed with their outputs,
and the benchmark and calibration reports. Marked slow: the notebooks run
(about two minutes).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sim.scenario.schema import Scenario

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason="the site needs the docs extra: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-5000:]}"
    return out


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
    for module in ["sim", "sim.model", "sim.scenario", "sim.experiments.ensemble", "sim.inference.prim",
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
