"""What the model records each step, and the tidy tables built from it (docs/ODD.md §3.8).

Recording is aggregate: per step, firms, births, deaths, moves in and out per
city × sector (counted with ``np.bincount`` inside the step), the cities'
stocks, spending and allocation, and the origin–destination matrix of
moves. Per-firm histories are an opt-in event log on the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.model import metrics
from sim.model.parameters import LEVERS

FLOW_KINDS = ("births", "deaths", "moves_in", "moves_out")


@dataclass
class StepRecord:
    """One step's aggregates (arrays ``[city, sector]`` unless noted)."""

    step: int
    year: float
    firms: np.ndarray
    births: np.ndarray
    deaths: np.ndarray
    moves_in: np.ndarray
    moves_out: np.ndarray
    stocks: np.ndarray        # [city, lever]: K, D, A
    A_eff: np.ndarray         # [city]
    spend: np.ndarray         # [city, lever], 100 M yuan this step
    allocation: np.ndarray    # [city, lever]
    budget: np.ndarray        # [city], 100 M yuan per year


@dataclass(repr=False)
class History:
    """The records of one model run.

    Attributes:
        cities: city names, in model order.
        sectors: sector names.
        pool: True for cities that are pools (left out of concentration metrics).
        steps: one record per step, step 0 being the initial state.
        flows: origin–destination moves ``[origin, destination]`` over the run.
    """

    cities: list[str]
    sectors: list[str]
    pool: np.ndarray
    steps: list[StepRecord] = field(default_factory=list)
    flows: np.ndarray | None = None

    def __repr__(self) -> str:
        """A one-line summary (steps, cities, firms at the start and now), not the arrays: short in notebooks."""
        if not self.steps:
            return f"History(0 steps, {len(self.cities)} cities)"
        first, last = self.steps[0], self.steps[-1]
        return (f"History({len(self.steps) - 1} steps, {first.year:g}–{last.year:g}, {len(self.cities)} cities, "
                f"{len(self.sectors)} sectors, firms {int(first.firms.sum()):,} → {int(last.firms.sum()):,})")

    def stack(self, name: str) -> np.ndarray:
        """One recorded quantity over all steps, stacked on a leading step axis."""
        return np.stack([getattr(r, name) for r in self.steps])

    def firms_frame(self) -> pd.DataFrame:
        """``step, year, city, sector, firms, births, deaths, moves_in, moves_out`` (one row per step × city × sector)."""
        T, C, S = len(self.steps), len(self.cities), len(self.sectors)
        frame = pd.DataFrame({
            "step": np.repeat([r.step for r in self.steps], C * S),
            "year": np.repeat([r.year for r in self.steps], C * S),
            "city": np.tile(np.repeat(self.cities, S), T),
            "sector": np.tile(self.sectors, T * C),
            "firms": self.stack("firms").ravel(),
        })
        for kind in FLOW_KINDS:
            frame[kind] = self.stack(kind).ravel()
        return frame

    def cities_frame(self) -> pd.DataFrame:
        """Per step × city: firms, anchors-weighted stock, K, D, A, spend and allocation by lever, budget."""
        T, C = len(self.steps), len(self.cities)
        stocks, spend, alloc = self.stack("stocks"), self.stack("spend"), self.stack("allocation")
        frame = pd.DataFrame({
            "step": np.repeat([r.step for r in self.steps], C),
            "year": np.repeat([r.year for r in self.steps], C),
            "city": np.tile(self.cities, T),
            "firms": self.stack("firms").sum(axis=2).ravel(),
            "K": stocks[:, :, 0].ravel(),
            "D": stocks[:, :, 1].ravel(),
            "A": stocks[:, :, 2].ravel(),
            "A_eff": self.stack("A_eff").ravel(),
            "budget": self.stack("budget").ravel(),
        })
        for j, lever in enumerate(LEVERS):
            frame[f"spend_{lever}"] = spend[:, :, j].ravel()
        for j, lever in enumerate(LEVERS):
            frame[f"alloc_{lever}"] = alloc[:, :, j].ravel()
        return frame

    def metrics_frame(self) -> pd.DataFrame:
        """Per step: HHI, top-1 share, Gini, entropy, leader and whether the lead changed hands.

        Computed over the non-pool cities (all cities if every one is a pool).
        """
        return pd.DataFrame({
            "step": [r.step for r in self.steps],
            "year": [r.year for r in self.steps],
            **metrics.concentration(self.stack("firms").sum(axis=2), self.pool, self.cities),
        })

    def ranked(self) -> np.ndarray:
        """Which cities the concentration metrics cover: the non-pool ones (all of them if every one is a pool)."""
        return metrics.ranked(self.pool)

    def latest_keys(self) -> list[str]:
        """The keys of :meth:`latest`, in order (the model reporters of ``ModuModel.datacollector``)."""
        names = np.asarray(self.cities)
        return ([f"firms_{c}" for c in names] + [f"share_{c}" for c in names[self.ranked()]]
                + ["hhi", "top1_share", "leader"])

    def latest(self) -> dict[str, Any]:
        """The last record in brief (what ``ModuModel.datacollector`` collects each step).

        Returns:
            ``firms_<city>`` (firms in every city), ``share_<city>`` (share of the non-pool cities' firms),
            ``hhi`` and ``top1_share`` over those shares, and ``leader`` (the city with the most of them).
        """
        firms = self.steps[-1].firms.sum(axis=1)
        keep = self.ranked()
        s = metrics.shares(firms[keep].astype(float))
        values = [*(int(n) for n in firms), *(float(v) for v in s), float(metrics.hhi(s)), float(s.max()),
                  str(np.asarray(self.cities)[keep][np.argmax(s)])]
        return dict(zip(self.latest_keys(), values, strict=True))

    def flows_frame(self) -> pd.DataFrame:
        """The origin–destination matrix of relocations, one row per pair with at least one move."""
        flows = self.flows if self.flows is not None else np.zeros((len(self.cities),) * 2, dtype=np.int64)
        o, d = np.nonzero(flows)
        return pd.DataFrame({
            "origin": np.asarray(self.cities)[o],
            "destination": np.asarray(self.cities)[d],
            "firms": flows[o, d],
        })
