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


def shipped_scenarios() -> list[str]:
    """Names of the shipped scenarios (``baseline``, ``china``, ...), sorted."""
    return sorted(p.stem for p in SCENARIOS_DIR.glob("*.yaml"))


def scenario_path(argument: str | Path) -> Path:
    """The scenario file a command-line argument names: a file path, or the name of a shipped scenario.

    ``modu run baseline`` runs the shipped baseline when no file ``baseline``
    exists here; a path that exists is always taken as given. Anything else is
    returned unchanged, for the loader to refuse in one line.
    """
    path = Path(argument)
    if path.exists() or path.suffix or len(path.parts) != 1:
        return path
    candidate = SCENARIOS_DIR / f"{path.name}.yaml"
    return candidate if candidate.is_file() else path
