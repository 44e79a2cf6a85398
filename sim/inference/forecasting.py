"""Forecasts of every city's firms (``modu forecast``), each flagged by what drives its interval.

Each draw joins the calibration posterior to the deep uncertainties of an assumptions file
(:func:`sim.inference.draws.parameter_draws`); every draw runs ``replications`` times to the
scenario's end. A city's forecast is the median and 90% interval of its yearly counts over all
runs. Over the draws, the Spearman correlation between each drawn quantity and a city's count
at the end says what drives its interval: a forecast is **prior-driven** when an estimate the
data leave at its prior (``not constrained`` in the calibration's ``posterior.csv``) drives it,
and **assumption-driven** when a deep uncertainty does (|ρ| ≥ :data:`DRIVER_CORRELATION`
either way); it is then what the model and those assumptions imply, not what the documents show.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from sim.inference.data import CalibrationFiles
from sim.inference.draws import Draws
from sim.model.metrics import BAND
from sim.scenario import Scenario

DRIVER_CORRELATION = 0.3
"""|Spearman ρ| from which a drawn quantity is said to drive a forecast (as in the calibration report)."""

NOT_CONSTRAINED = "not constrained"
"""The posterior table's verdict for an estimate the data leave at about its prior width."""


@dataclass
class Forecast:
    """Every city's firms over the years, over draws × replications.

    Attributes:
        scenario: the scenario run (to its end).
        draws: the draws, with their quantities and which are deep uncertainties.
        firms: ``[draw, replication, year, city]``, the year-start records (year y.0 = the end-(y − 1) stock).
        years: the model years of ``firms``' third axis.
        verdicts: the calibration's verdict per calibrated quantity (``constrained``, ``not constrained``, ...).
    """

    scenario: Scenario
    draws: Draws
    firms: np.ndarray
    years: list[int]
    verdicts: dict[str, str]

    @property
    def cities(self) -> list[str]:
        """The scenario's cities, in order."""
        return [c.name for c in self.scenario.cities]

    def bands(self) -> pd.DataFrame:
        """One row per city and year: ``median``, ``lo`` and ``hi`` (the 90% interval) over draws × replications."""
        runs = self.firms.reshape(-1, len(self.years), len(self.cities)).astype(float)
        lo, mid, hi = np.quantile(runs, [BAND[0], 0.5, BAND[1]], axis=0)
        rows = [{"city": c, "year": y, "stock_at_end_of": y - 1, "median": mid[t, i], "lo": lo[t, i], "hi": hi[t, i]}
                for i, c in enumerate(self.cities) for t, y in enumerate(self.years)]
        return pd.DataFrame(rows)

    def drivers(self) -> pd.DataFrame:
        """Spearman ρ over the draws between each drawn quantity and each city's count at the end (mean over replications).

        Columns: ``city, quantity, rho, kind`` (``assumption``, or the calibration's verdict of an estimate).
        """
        end = self.firms[:, :, -1, :].mean(axis=1)                       # [draw, city]
        rows = []
        for name in self.draws.quantities.columns:
            x = self.draws.quantities[name].to_numpy(dtype=float)
            if np.ptp(x) == 0:
                continue
            for i, city in enumerate(self.cities):
                y = end[:, i]
                rho = stats.spearmanr(x, y).statistic if np.ptp(y) > 0 else np.nan
                rows.append({"city": city, "quantity": name, "rho": rho, "kind": self.kind(name)})
        return pd.DataFrame(rows, columns=["city", "quantity", "rho", "kind"])

    def kind(self, quantity: str) -> str:
        """``assumption`` for a deep uncertainty, else the calibration's verdict (``estimate`` if it has none)."""
        return "assumption" if quantity in self.draws.assumptions else self.verdicts.get(quantity, "estimate")

    def to_df(self) -> pd.DataFrame:
        """One row per city: its forecast at the end, and whether the prior or an assumption drives it.

        Columns: ``city, year, stock_at_end_of, median, lo, hi, prior_driven, assumption_driven, driven_by``
        (the quantities with |ρ| ≥ :data:`DRIVER_CORRELATION`, strongest first, with ρ and their kind).
        """
        end = self.bands()
        end = end[end.year == self.years[-1]].set_index("city")
        drivers = self.drivers()
        strong = drivers[drivers.rho.abs() >= DRIVER_CORRELATION]
        rows = []
        for city in self.cities:
            mine = strong[strong.city == city].reindex(strong[strong.city == city].rho.abs()
                                                       .sort_values(ascending=False).index)
            rows.append({"city": city, **end.loc[city].to_dict(),
                         "prior_driven": bool((mine.kind == NOT_CONSTRAINED).any()),
                         "assumption_driven": bool((mine.kind == "assumption").any()),
                         "driven_by": "; ".join(f"{r.quantity} {r.rho:+.2f} ({r.kind})" for r in mine.itertuples())})
        return pd.DataFrame(rows)


def calibration_verdicts(scenario: Scenario) -> dict[str, str]:
    """The verdict of each quantity the scenario's calibration estimated (its ``posterior.csv``); empty without one."""
    if scenario.calibration is None:
        return {}
    path = CalibrationFiles.of(scenario).posterior
    if not path.is_file():
        return {}
    table = pd.read_csv(path)
    return dict(zip(table.quantity, table.verdict, strict=True))


def forecast(scenario: Scenario, draws: Draws, firms: np.ndarray) -> Forecast:
    """The forecast of finished runs: ``firms`` ``[draw, replication, step, city]`` of ``scenario`` under ``draws``."""
    spy = scenario.time.steps_per_year
    years = list(range(scenario.time.start, scenario.time.end + 1))
    return Forecast(scenario, draws, firms[:, :, ::spy, :], years, calibration_verdicts(scenario))
