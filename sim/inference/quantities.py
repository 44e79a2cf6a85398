"""What calibration and policy design draw: the priors of the calibrated quantities and the deep uncertainties.

Each is a :class:`sim.scenario.factors.Factor` (a scenario field, a range, a distribution), or one of the kinds
only a calibration has: a constant shared by several cities (:class:`SharedFactor`), the split of a pool's firms
between named cities (:class:`SplitFactor`), and the share of potential entrants that stay out
(:class:`OutsideShare`, which sets the outside option V₀). priors.yaml (:class:`PriorFile`) and
``assumptions.yaml`` (:class:`AssumptionFile`) list them, each with the reason for its range.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from sim.inference.data import CalibrationFiles
from sim.scenario import Scenario
from sim.scenario.factors import Factor
from sim.scenario.paths import set_path
from sim.scenario.reading import load_model
from sim.scenario.resources import CALIBRATION_DIR
from sim.scenario.schema import Strict as _Strict

PRIORS_PATH = CALIBRATION_DIR / "priors.yaml"
"""The shipped priors of the calibrated quantities."""


ASSUMPTIONS_PATH = CALIBRATION_DIR / "assumptions.yaml"
"""The shipped deep uncertainties: the quantities no data pin, with ranges and reasons."""


# ----------------------------------------------------------------------------- priors
class SharedFactor(Factor):
    """One value for a field of several cities (e.g. a common constant of cities no datum tells apart).

    ``target`` names the field for the first city (checked like any factor); ``cities`` lists them all.
    """

    cities: list[str] = Field(min_length=1)
    field: str = Field(min_length=1)

    def apply(self, data: dict[str, Any], value: float) -> None:
        """Set ``field`` of every listed city to ``value``, in place."""
        for city in self.cities:
            set_path(data, ("cities", city, self.field), float(value))


class SplitFactor(Factor):
    """The share of a group's firms held by named cities, a pool absorbing the rest.

    The group is ``group`` when given, else ``pool`` plus ``weights``' cities; its total is
    what the scenario gives them together (kept constant). The value (a share in [0, 1]) goes
    to the named cities in proportion to their weights; the pool takes what the group's other
    places leave. With an explicit group, several splits of one group (each naming its own
    cities, all sharing the pool) are independent of the order they are applied in.
    """

    pool: str = Field(min_length=1)
    weights: dict[str, float] = Field(min_length=1)
    group: list[str] | None = None

    def members(self) -> list[str]:
        """The places whose total the split keeps."""
        return list(self.group) if self.group is not None else [self.pool, *self.weights]

    def total(self, data: dict[str, Any]) -> int:
        """Firms of the group's places together in plain scenario data."""
        names = set(self.members())
        return sum(int(c["firms"]) for c in data["cities"] if c.get("name") in names)

    def split(self, total: int, value: float, others: int = 0) -> dict[str, int]:
        """Firms per named city and the pool for a share ``value`` of ``total`` (rounded; the group keeps ``total``).

        ``others`` is what the group's places other than the pool and the named cities hold.
        """
        weight = sum(self.weights.values())
        counts = {city: int(round(total * value * w / weight)) for city, w in self.weights.items()}
        counts[self.pool] = total - others - sum(counts.values())
        return counts

    def apply(self, data: dict[str, Any], value: float) -> None:
        """Set the named cities' and the pool's firms for the share ``value``, in place.

        Raises:
            ValueError: the group's other places leave the pool fewer than zero firms.
        """
        named = {self.pool, *self.weights}
        others = sum(int(c["firms"]) for c in data["cities"] if c.get("name") in set(self.members()) - named)
        counts = self.split(self.total(data), value, others)
        if counts[self.pool] < 0:
            raise ValueError(f"{self.label} = {value:.4g} leaves {self.pool} {counts[self.pool]:,} firms")
        for city, firms in counts.items():
            set_path(data, ("cities", city, "firms"), firms)


class OutsideShare(Factor):
    """The share of potential entrants that enter no city at the scenario's start: the outside option V₀.

    V₀ (``parameters.outside_option``) is solved for at the start's utilities, so that an
    entrant-weighted ``value`` of potential entrants stay out (docs/ODD.md §3.4); the birth
    rate (or ``births_per_step``) is divided by ``1 − value``, so that national entry at the
    start is what it was without the outside option. 0 turns the outside option off. Apply it
    after every other factor: V₀ depends on the utilities they set.
    """

    kind: Literal["outside_share"]

    @model_validator(mode="after")
    def _a_share(self) -> OutsideShare:
        if not 0 <= self.low < self.high < 1:
            raise ValueError(f"an outside share lies in [0, 1), got [{self.low}, {self.high}]")
        return self

    def apply(self, data: dict[str, Any], value: float) -> None:
        """Set V₀ for the share ``value`` at the start of the scenario ``data``, and raise entry to match, in place."""
        data["parameters"]["outside_option"] = None
        if value <= 0:
            return
        V0 = outside_option_for(Scenario.model_validate(data), float(value))
        p = data["parameters"]
        p["outside_option"] = V0
        if p.get("births_per_step") is not None:
            p["births_per_step"] = int(round(p["births_per_step"] / (1 - value)))
        else:
            p["birth_rate"] = min(float(p["birth_rate"]) / (1 - value), 1.0)


def outside_option_for(scenario: Scenario, share: float) -> float:
    """The V₀ at which an entrant-weighted ``share`` of potential entrants stay out at the scenario's start.

    By bisection on the entry probabilities of the start's state (:func:`sim.model.utility.entry_utility`).
    """
    from sim.model.model import ModuModel
    from sim.model.utility import entry_utility

    model = ModuModel(scenario.model_copy(update={"engine": "counts"}), rng=0, record_events=False)
    V = entry_utility(model.compiled, model.N, model.lever_stocks(), model.state.constant)   # [city, sector]
    V = np.where(np.isfinite(V), V, -np.inf)
    top = float(np.max(V[np.isfinite(V)])) if np.isfinite(V).any() else 0.0

    def stay_out(V0: float) -> float:
        with np.errstate(over="ignore"):
            return float(model.compiled.sector_mix @ (1.0 / (1.0 + np.exp(V - V0).sum(axis=0))))

    lo, hi = top - 60.0, top + 60.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if stay_out(mid) < share else (lo, mid)
    return (lo + hi) / 2


class AssumptionFile(_Strict):
    """The assumptions file (``assumptions.yaml``): deep uncertainties as factors, outside shares last."""

    assumptions: list[OutsideShare | Factor] = Field(min_length=1)

    @model_validator(mode="after")
    def _outside_last(self) -> AssumptionFile:
        kinds = [isinstance(f, OutsideShare) for f in self.assumptions]
        if any(kinds) and (kinds.count(True) > 1 or not kinds[-1]):
            raise ValueError("one outside_share at most, and last: it is solved for at the utilities the others set")
        return self


class PriorFile(_Strict):
    """The priors file (``priors.yaml``)."""

    steps_per_year: int = Field(ge=1)
    priors: list[SplitFactor | SharedFactor | Factor] = Field(min_length=1)


def load_assumptions(path: Path = ASSUMPTIONS_PATH) -> AssumptionFile:
    """Read and check an assumptions file; bad input raises :class:`sim.scenario.ScenarioError` (one line)."""
    return load_model(path, AssumptionFile)


def load_priors(path: Path = PRIORS_PATH) -> PriorFile:
    """Read and check the priors file; bad input raises :class:`sim.scenario.ScenarioError` (one line)."""
    return load_model(path, PriorFile)


def default_priors(scenario: Scenario) -> Path:
    """The priors a calibration of ``scenario`` uses unless told: those beside the calibration it names, else the shipped ones."""
    if scenario.calibration is not None and (own := CalibrationFiles.of(scenario).priors).is_file():
        return own
    return PRIORS_PATH
