"""The scenarios and calibration shipped with Modu, found however it was installed (package data)."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path


def shipped(*parts: str) -> Path:
    """A path inside the shipped data, e.g. ``shipped("scenarios", "baseline.yaml")``.

    The data are the package ``sim.shipped`` (the repository's ``scenarios/`` and
    ``calibration/`` folders), installed as regular files.
    """
    with as_file(files("sim.shipped").joinpath(*parts)) as path:  # a real file for a regular install
        return Path(path)


SCENARIOS_DIR = shipped("scenarios")
"""The shipped scenario files."""

CALIBRATION_DIR = shipped("calibration")
"""The shipped calibration: its data (targets, priors, documented counts) and estimates."""

BASELINE_CALIBRATION = "baseline"
"""The name of the calibration in ``calibration/`` itself (the baseline's); the others are named by their folder."""

def shown(path: Path | str) -> str:
    """A path as a reader would type it: relative to the working folder, else to the shipped data's parent.

    ``calibration/china/populations.csv`` for a shipped file however Modu was installed; the path as
    given when it is under neither.
    """
    path = Path(path)
    for root in (Path.cwd(), CALIBRATION_DIR.resolve().parent, SCENARIOS_DIR.resolve().parent):
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            continue
    return str(path)


def shipped_scenarios() -> dict[str, Path]:
    """The shipped scenarios by name (``baseline`` → ``.../scenarios/baseline.yaml``), sorted by name."""
    return {p.stem: p for p in sorted(SCENARIOS_DIR.glob("*.yaml"))}


def shipped_calibrations() -> dict[str, Path]:
    """The shipped calibration files by name, sorted by name.

    ``baseline`` is ``calibration/calibrated.yaml`` (the baseline's estimates);
    every folder of ``calibration/`` holding a ``calibrated.yaml`` is another,
    named by the folder (``china``: ``calibration/china/calibrated.yaml``).
    """
    found = {BASELINE_CALIBRATION: CALIBRATION_DIR / "calibrated.yaml"}
    found |= {d.name: d / "calibrated.yaml" for d in CALIBRATION_DIR.iterdir() if (d / "calibrated.yaml").is_file()}
    return dict(sorted(found.items()))


def is_name(text: str | Path) -> bool:
    """Whether an argument reads as a shipped file's name (``baseline``) rather than a path (``baseline.yaml``, ``a/b``).

    A name has no suffix and no folder.
    """
    path = Path(text)
    return not path.suffix and len(path.parts) == 1


def scenario_path(argument: str | Path) -> Path:
    """The scenario file a command-line argument names: a file path, or the name of a shipped scenario.

    ``modu run baseline`` runs the shipped baseline when no file ``baseline``
    exists here; a path that exists is always taken as given. Anything else is
    returned unchanged, for the loader to refuse in one line.
    """
    path = Path(argument)
    if path.exists() or not is_name(path):
        return path
    return shipped_scenarios().get(path.name, path)
