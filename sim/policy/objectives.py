"""What a city maximises in a run, and the statistics that compare candidate policies over paired runs."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from sim.policy.errors import PolicyError

SIGNIFICANCE = 0.05
"""Level of the one-sided paired test that separates candidates from the best."""

ROBUST_WITHIN = 0.05
"""A mix is robust in a draw when its mean objective is within this share of that draw's best."""


@dataclass(frozen=True)
class Objective:
    """What a city maximises, per run.

    Attributes:
        kind: ``firms`` (its firms at the horizon), ``top`` (1 if it ranks among the first ``k`` non-pool
            cities by firms at the horizon, else 0: the mean is a probability) or ``per100m`` (its firms
            gained over the same run with its budget 0, per 100 M yuan it spent).
        k: for ``top``, how many places count.
    """

    kind: str
    k: int = 1

    @property
    def text(self) -> str:
        """The objective as written on the command line."""
        return f"top:{self.k}" if self.kind == "top" else self.kind

    def label(self, city: str) -> str:
        """What the mean objective is, with units."""
        if self.kind == "firms":
            return f"expected firms in {city} at the horizon"
        if self.kind == "top":
            return f"probability that {city} ranks in the top {self.k}"
        return f"firms gained in {city} per 100 M yuan spent"

    @property
    def unit(self) -> str:
        """The unit of the objective's values (a probability has none: it is shown as a percentage)."""
        return {"firms": "firms", "top": "", "per100m": "firms per 100 M yuan"}[self.kind]

    @property
    def support(self) -> tuple[float, float]:
        """The values a mean of the objective can take: its confidence interval is cut to them."""
        return {"firms": (0.0, math.inf), "top": (0.0, 1.0), "per100m": (-math.inf, math.inf)}[self.kind]

    def values(self, totals: np.ndarray, city: int, ranked: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """The objective per run.

        Args:
            totals: ``[..., T, C]`` runs of a candidate (see :data:`TOTALS`).
            city: index of the deciding city.
            ranked: boolean mask of the cities ranked for ``top`` (the non-pool cities).
            reference: ``[..., T, C]`` the same runs with the city spending nothing (for ``per100m``).

        Returns:
            ``[...]`` values (NaN for ``per100m`` where the city spent nothing).
        """
        firms = totals[..., 0, :]
        if self.kind == "firms":
            return firms[..., city]
        if self.kind == "top":
            ahead = (firms[..., ranked] > firms[..., city, None]).sum(axis=-1)
            return (ahead < self.k).astype(float)
        spend = totals[..., -1, city]
        gained = firms[..., city] - reference[..., 0, city]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(spend > 1e-9, gained / np.where(spend > 1e-9, spend, 1.0), np.nan)


def parse_objective(text: str) -> Objective:
    """``firms``, ``top:K`` (K a whole number ≥ 1) or ``per100m``.

    Raises:
        PolicyError: anything else (one line).
    """
    kind, sep, arg = text.strip().partition(":")
    if kind == "top" and sep and arg.isdigit() and int(arg) >= 1:
        return Objective("top", int(arg))
    if kind in ("firms", "per100m") and not sep:
        return Objective(kind)
    raise PolicyError(f"--objective: unknown objective {text!r}; use firms, top:K (K ≥ 1) or per100m")


def standard_error(x: np.ndarray) -> float:
    """Standard error of the mean of the finite values of ``x`` (NaN with fewer than two)."""
    x = x[np.isfinite(x)]
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan


def paired_p_value(difference: np.ndarray) -> float:
    """One-sided paired t-test p-value of mean(difference) > 0 (1 when no pair varies and the mean is ≤ 0)."""
    x = difference[np.isfinite(difference)]
    if len(x) == 0:
        return math.nan
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    if sd <= 1e-12 * max(1.0, abs(mean)):
        return 0.0 if mean > 1e-12 else 1.0
    return float(stats.t.sf(mean / (sd / math.sqrt(len(x))), len(x) - 1))
