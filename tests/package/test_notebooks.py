"""The notebooks never rot: each runs top to bottom and is committed without outputs.

Each notebook is read into memory and executed there with nbclient (the kernel's
working directory is notebooks/, as in Jupyter); nothing is written back, so
the committed files stay clean. That they use only public names is test_api.py's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = ["01-quickstart", "02-winner-take-all", "03-policy-levers", "04-calibration", "05-policy-design"]

nbformat = pytest.importorskip("nbformat", reason="the test extra installs nbformat: pip install -e '.[test]'")


def test_the_five_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear outputs before committing"


@pytest.mark.slow  # about 40 s for the five: CI's slow job runs them, and the docs job executes them again
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path):
    nbclient = pytest.importorskip("nbclient", reason="the test extra installs nbclient: pip install -e '.[test]'")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails
    errors = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs
              if out.output_type == "error"]
    assert not errors
    warned = [out.text for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs
              if out.output_type == "stream" and out.name == "stderr"]
    assert not warned, f"{path.name} writes to stderr (a warning shows on the site): {warned}"


def test_a_kernel_without_ipywidgets_imports_sim_and_mesa_without_warning():
    """There tqdm.auto, which sim and Mesa import, would warn "IProgress not found" with the path of tqdm's file."""
    nbclient = pytest.importorskip("nbclient", reason="the test extra installs nbclient: pip install -e '.[test]'")
    hide = ("import sys\n"
            "class Hidden:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'ipywidgets':\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
            "sys.meta_path.insert(0, Hidden())\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ipywidgets', 'tqdm', 'mesa')))")
    load = ("from sim import ModuModel\n"
            "ModuModel\n"
            "import mesa\n"
            "import sim.experiments.ensemble\n"
            "from tqdm.auto import tqdm\n"
            "print('notebook' in str(tqdm.__mro__))")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(hide), nbformat.v4.new_code_cell(load)])
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}).execute()
    assert [(out.name, out.text) for out in notebook.cells[0].outputs] == [("stdout", "[]\n")]  # nothing loaded yet
    assert [(out.name, out.text) for out in notebook.cells[1].outputs] == [("stdout", "False\n")]  # text bars, no warning
