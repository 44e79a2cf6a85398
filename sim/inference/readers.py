"""Reading an earlier calibration's files back: its populations to resume from, its posterior under another reading."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sim.analysis.abc_smc import Population, Prior, populations_from_frame
from sim.inference.errors import InferenceError


def other_reading(folder: Path, reading: str) -> pd.DataFrame:
    """The posterior table of a calibration under the other reading (its ``posterior.csv``), for comparison.

    Raises:
        InferenceError: the folder holds no calibration, or one under the same reading.
    """
    try:
        recorded = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("reading")
        table = pd.read_csv(folder / "posterior.csv")
    except (OSError, ValueError) as exc:
        raise InferenceError(f"--other-reading: {folder}: not a calibration folder ({' '.join(str(exc).split())})") from None
    if recorded == reading:
        raise InferenceError(f"--other-reading: {folder}: calibrated under the same reading ({reading})")
    table.attrs["reading"] = recorded
    table.attrs["folder"] = str(folder)
    return table


def resume_populations(path: Path, prior: Prior, particles: int) -> list[Population]:
    """The populations of an earlier run, checked against this run's priors and particle count.

    Raises:
        InferenceError: unreadable file, other quantities or another number of particles.
    """
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InferenceError(f"--resume: {path}: cannot read: {' '.join(str(exc).split())}") from None
    try:
        populations = populations_from_frame(prior, frame, f"--resume: {path}")
    except ValueError as exc:
        raise InferenceError(str(exc)) from None
    sizes = {len(p.theta) for p in populations}
    if sizes != {particles}:
        raise InferenceError(f"--resume: {path}: generations of {sorted(sizes)} particles, but --particles is {particles}")
    return populations
