"""PRIM's mechanics: the runs as arrays, peeling, pasting and pruning a box (:func:`sim.analysis.prim.prim` drives them).

Peeling removes, per step, the ``alpha`` share of the box's runs with the lowest or
highest values of one numeric input (or one category), keeping the candidate with the
largest gain in density per run removed (the EMA Workbench's "lenient1" objective; ties
to the candidate restricting fewer inputs). Pasting grows a box back one side at a time
while that raises its density; pruning drops restrictions whose quasi-p-value exceeds a
level. New limits lie midway between the last run removed and the first run kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from sim.analysis.boxes import Limit, PrimBox

__all__ = ["Runs", "peel", "refine"]


class Runs:
    """The inputs split into numeric and categorical columns, with the outcome as a bool array."""

    def __init__(self, X: pd.DataFrame, y: Sequence[bool] | np.ndarray | pd.Series):
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"prim: X must be a pandas DataFrame, got {type(X).__name__}")
        y_arr = np.asarray(y)
        if y_arr.ndim != 1 or len(y_arr) != len(X):
            raise ValueError(f"prim: y must be one-dimensional with one entry per row of X ({len(X)}), got shape {y_arr.shape}")
        if len(X) == 0:
            raise ValueError("prim: X has no rows")
        if y_arr.dtype != bool:
            if pd.isna(pd.Series(y_arr)).any() or not np.isin(y_arr, [0, 1]).all():
                raise ValueError("prim: y must be boolean (True for the outcome of interest)")
            y_arr = y_arr.astype(bool)
        self.y = y_arr
        self.columns = [str(c) for c in X.columns]
        self.numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]
        self.categorical = [c for c in X.columns if c not in self.numeric]
        for c in self.numeric:
            if X[c].isna().any():
                raise ValueError(f"prim: numeric input {c!r} has missing values")
        self.x_num = X[self.numeric].to_numpy(dtype=float) if self.numeric else np.empty((len(X), 0))
        self.x_cat = {c: X[c].to_numpy(dtype=object) for c in self.categorical}
        self.initial: dict[str, Limit] = {}
        for j, c in enumerate(self.numeric):
            self.initial[c] = (float(self.x_num[:, j].min()), float(self.x_num[:, j].max()))
        for c in self.categorical:
            self.initial[c] = frozenset(pd.unique(self.x_cat[c]))
        self.n = len(y_arr)
        self.k = int(y_arr.sum())

    def inside(self, limits: dict[str, Limit], skip: str | None = None) -> np.ndarray:
        """Boolean mask of the runs inside ``limits`` (ignoring the input ``skip``)."""
        mask = np.ones(self.n, dtype=bool)
        for j, c in enumerate(self.numeric):
            if c == skip:
                continue
            low, high = limits[c]
            init_low, init_high = self.initial[c]
            if low > init_low:
                mask &= self.x_num[:, j] >= low
            if high < init_high:
                mask &= self.x_num[:, j] <= high
        for c in self.categorical:
            if c != skip and limits[c] != self.initial[c]:
                mask &= np.isin(self.x_cat[c], list(limits[c]))
        return mask

    def restricted(self, limits: dict[str, Limit]) -> list[str]:
        """Inputs whose limits are narrower than the data's, in column order."""
        return [c for c in self.numeric + self.categorical if limits[c] != self.initial[c]]

    def make_box(self, limits: dict[str, Limit], index: int | None, pasted: bool = False) -> PrimBox:
        """The box of ``limits``: its runs, outcome runs and each restriction's quasi-p-value."""
        mask = self.inside(limits)
        n, k = int(mask.sum()), int(self.y[mask].sum())
        quasi_p = {}
        for c in self.restricted(limits):
            wider = self.inside(limits, skip=c)
            p = self.y[wider].mean()
            quasi_p[c] = float(binomtest(k, n, p, alternative="greater").pvalue) if n > 0 else float("nan")
        return PrimBox(
            limits=dict(limits), data_limits=dict(self.initial), n=n, k=k, n_total=self.n, k_total=self.k,
            quasi_p=quasi_p, index=index, pasted=pasted, numeric=tuple(self.numeric),
        )


def _objective(k_old: int, n_old: int, k_new: int, n_new: int) -> float:
    """Gain in density per run removed or added (the EMA Workbench's "lenient1" objective)."""
    if n_new == 0 or n_new == n_old:
        return -math.inf
    return (k_new / n_new - k_old / n_old) / abs(n_old - n_new)


def _lower_peel(values: np.ndarray, alpha: float) -> float | None:
    """New lower limit removing about ``alpha`` of ``values`` from below (None if nothing can go)."""
    s = np.sort(values)
    m = len(s)
    cut = s[min(m - 1, max(1, math.ceil(alpha * m)))]
    if cut == s[0]:
        above = s[s > s[0]]
        if above.size == 0:
            return None
        cut = above[0]
    below = s[s < cut][-1]
    return float((below + cut) / 2)


def _upper_peel(values: np.ndarray, alpha: float) -> float | None:
    """New upper limit removing about ``alpha`` of ``values`` from above (None if nothing can go)."""
    low = _lower_peel(-values, alpha)
    return None if low is None else -low


def peel(data: Runs, alpha: float, mass_min: float) -> list[dict[str, Limit]]:
    """The peeling trajectory, as a list of limit dicts (the first holds every run)."""
    limits = dict(data.initial)
    trajectory = [dict(limits)]
    mask = data.inside(limits)
    while True:
        n_old, k_old = int(mask.sum()), int(data.y[mask].sum())
        if k_old == n_old:  # density already 1: nothing to gain
            break
        best = None
        for j, c in enumerate(data.numeric):
            xj = data.x_num[mask, j]
            for side, new in (("low", _lower_peel(xj, alpha)), ("high", _upper_peel(xj, alpha))):
                if new is None:
                    continue
                keep = xj >= new if side == "low" else xj <= new
                cand = dict(limits)
                cand[c] = (new, limits[c][1]) if side == "low" else (limits[c][0], new)
                best = _better(best, _candidate(cand, data, k_old, n_old, data.y[mask][keep]))
        for c in data.categorical:
            xc = data.x_cat[c][mask]
            present = set(pd.unique(xc))
            if len(present) < 2:
                continue
            for category in sorted(present, key=str):
                keep = xc != category
                cand = dict(limits)
                cand[c] = frozenset(limits[c] - {category})
                best = _better(best, _candidate(cand, data, k_old, n_old, data.y[mask][keep]))
        if best is None:
            break
        new_mask = data.inside(best.limits)
        if best.objective <= 0 or new_mask.sum() < mass_min * data.n or new_mask.sum() >= n_old:
            break
        limits, mask = best.limits, new_mask
        trajectory.append(dict(limits))
    return trajectory


class _Candidate(NamedTuple):
    """A box one peel or paste away: its objective (density gain per run dropped or added), restricted inputs, limits."""

    objective: float
    restricted: int
    limits: dict[str, Limit]

    @property
    def score(self) -> tuple[float, int]:
        """What ranks candidates: higher objective, then fewer restricted inputs."""
        return (self.objective, -self.restricted)


def _candidate(limits: dict[str, Limit], data: Runs, k_old: int, n_old: int, y_box: np.ndarray) -> _Candidate:
    """A candidate box whose runs have outcomes ``y_box``, against the current box of ``n_old`` runs, ``k_old`` with it."""
    return _Candidate(_objective(k_old, n_old, int(y_box.sum()), len(y_box)), len(data.restricted(limits)), limits)


def _better(best: _Candidate | None, candidate: _Candidate) -> _Candidate:
    """The better of two candidates (the first seen on a tie)."""
    return candidate if best is None or candidate.score > best.score else best


def _paste(data: Runs, limits: dict[str, Limit], paste_alpha: float) -> dict[str, Limit]:
    """Grow a box one restricted side (or category) at a time while its density rises."""
    limits = dict(limits)
    while True:
        mask = data.inside(limits)
        n_old, k_old = int(mask.sum()), int(data.y[mask].sum())
        step = max(1, math.ceil(paste_alpha * n_old))
        best = None
        for j, c in enumerate(data.numeric):
            if limits[c] == data.initial[c]:
                continue
            others = data.inside(limits, skip=c)
            xj = data.x_num[others, j]
            low, high = limits[c]
            init_low, init_high = data.initial[c]
            below = np.sort(xj[xj < low])[::-1] if low > init_low else np.empty(0)
            above = np.sort(xj[xj > high]) if high < init_high else np.empty(0)
            if below.size:
                taken = below[min(step, below.size) - 1]
                rest = below[below < taken]
                new_low = float((taken + rest[0]) / 2) if rest.size else init_low
                best = _better(best, _pasted({**limits, c: (new_low, high)}, data, k_old, n_old))
            if above.size:
                taken = above[min(step, above.size) - 1]
                rest = above[above > taken]
                new_high = float((taken + rest[0]) / 2) if rest.size else init_high
                best = _better(best, _pasted({**limits, c: (low, new_high)}, data, k_old, n_old))
        for c in data.categorical:
            for category in sorted(data.initial[c] - limits[c], key=str):
                best = _better(best, _pasted({**limits, c: frozenset(limits[c] | {category})}, data, k_old, n_old))
        if best is None or best.objective <= 0:
            return limits
        limits = best.limits


def _pasted(limits: dict[str, Limit], data: Runs, k_old: int, n_old: int) -> _Candidate:
    """A candidate grown by pasting: the runs inside ``limits``."""
    return _candidate(limits, data, k_old, n_old, data.y[data.inside(limits)])


def _prune(data: Runs, limits: dict[str, Limit], max_p: float) -> tuple[dict[str, Limit], dict[str, float]]:
    """Drop, one at a time, the restriction of largest quasi-p-value while it exceeds ``max_p``.

    Returns:
        The limits left and the restrictions dropped, each with its quasi-p-value when dropped.
    """
    limits = dict(limits)
    dropped: dict[str, float] = {}
    while True:
        box = data.make_box(limits, index=None)
        if not box.quasi_p:
            return limits, dropped
        worst = max(box.quasi_p, key=lambda c: (box.quasi_p[c], c))
        if not box.quasi_p[worst] > max_p:
            return limits, dropped
        limits[worst] = data.initial[worst]
        dropped[worst] = box.quasi_p[worst]


def refine(data: Runs, box: PrimBox, paste: bool, paste_alpha: float, prune: float | None) -> PrimBox:
    """Paste and/or prune a trajectory box; the result keeps the trajectory index."""
    limits, dropped = dict(box.limits), {}
    if paste:
        limits = _paste(data, limits, paste_alpha)
    if prune is not None:
        limits, dropped = _prune(data, limits, prune)
    refined = data.make_box(limits, index=box.index, pasted=paste)
    refined.dropped = dropped
    return refined
