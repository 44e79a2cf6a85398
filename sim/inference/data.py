"""The calibration's data: documented figures with their roles, and the priors (``calibration/*.yaml``).

Both files are read with the scenario layer's hardened loader
(:func:`sim.scenario.loading.load_model`); a bad file is one line naming the
file, the field and the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import Field, model_validator

from sim.scenario import Scenario
from sim.scenario.factors import Factor
from sim.scenario.loading import load_model
from sim.scenario.resources import CALIBRATION_DIR
from sim.scenario.schema import Strict as _Strict

TARGETS_PATH = CALIBRATION_DIR / "targets.yaml"
"""The shipped targets: the documented counts and their roles."""

PRIORS_PATH = CALIBRATION_DIR / "priors.yaml"
"""The shipped priors of the calibrated quantities."""


class Figure(_Strict):
    """One documented figure with its provenance (an entry of ``targets.yaml``)."""

    id: str
    city: str
    year: int
    quantity: Literal["firms", "gross_inflow", "overtake_by", "national_share"]
    value: float | None = None
    role: Literal["initial", "target", "validation"]
    source: str = Field(min_length=1)
    from_year: int | None = None
    other: str | None = None
    reading: Literal["gross", "misprint"] | None = None
    independent: bool = True

    @model_validator(mode="after")
    def _complete(self) -> Figure:
        if self.quantity != "overtake_by" and self.value is None:
            raise ValueError(f"{self.quantity} needs a value")
        if self.quantity == "overtake_by" and self.other is None:
            raise ValueError("overtake_by needs the other city")
        if self.quantity == "gross_inflow" and self.from_year is None:
            raise ValueError("gross_inflow needs from_year")
        if self.role == "target" and self.quantity not in ("firms", "gross_inflow"):
            raise ValueError(f"a {self.quantity} figure cannot be a fitted target")
        return self


class Targets(_Strict):
    """The calibration data file (``calibration/targets.yaml``)."""

    name: str
    figures: list[Figure] = Field(min_length=1)
    shenzhen_increment: dict[str, Any]

    def fitted(self, reading: str) -> list[Figure]:
        """The figures fitted under a reading of the Shenzhen increment (``gross`` or ``misprint``)."""
        return [f for f in self.figures if f.role == "target" and (f.reading is None or f.reading == reading)]

    def initial(self) -> list[Figure]:
        """The figures that set the initial state."""
        return [f for f in self.figures if f.role == "initial"]

    def validation(self) -> list[Figure]:
        """The figures held out of the fit."""
        return [f for f in self.figures if f.role == "validation"]


class PriorFile(_Strict):
    """The priors file (``calibration/priors.yaml``)."""

    steps_per_year: int = Field(ge=1)
    priors: list[Factor] = Field(min_length=1)


def load_targets(path: Path = TARGETS_PATH) -> Targets:
    """Read and check the targets file; bad input raises :class:`sim.scenario.ScenarioError` (one line)."""
    return load_model(path, Targets)


def load_priors(path: Path = PRIORS_PATH) -> PriorFile:
    """Read and check the priors file; bad input raises :class:`sim.scenario.ScenarioError` (one line)."""
    return load_model(path, PriorFile)


def documented_counts(scenario: Scenario, targets: Targets | None = None) -> pd.DataFrame:
    """The documented city counts (initial and fitted figures) that a scenario covers, as ``city, year, firms``.

    For drawing on a run's counts figure: figures of cities the scenario has,
    in years within its span. Reads ``calibration/targets.yaml`` when
    ``targets`` is None (no rows if that file is missing).
    """
    if targets is None:
        if not TARGETS_PATH.exists():
            return pd.DataFrame(columns=["city", "year", "firms"])
        targets = load_targets(TARGETS_PATH)
    names = {c.name for c in scenario.cities}
    rows = [{"city": f.city, "year": float(f.year), "firms": f.value} for f in targets.figures
            if f.quantity == "firms" and f.role in ("initial", "target") and f.city in names
            and scenario.time.start <= f.year <= scenario.time.end]
    return pd.DataFrame(rows, columns=["city", "year", "firms"])


