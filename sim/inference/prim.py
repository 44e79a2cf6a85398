"""PRIM scenario discovery: which input ranges make an outcome of interest likely.

The Patient Rule Induction Method (Friedman & Fisher 1999) as used for scenario
discovery (Bryant & Lempert 2010), following the design of the EMA Workbench
(``ema_workbench/analysis/prim.py``) in a much smaller form:

* **Peeling.** Start from the box holding every run. At each step consider, for every
  numeric input, removing the ``alpha`` share of the box's runs with the lowest or the
  highest values, and for every categorical input removing one category. Keep the
  candidate with the largest gain in density per run removed (the EMA Workbench's
  default "lenient1" objective; ties go to the candidate restricting fewer inputs),
  as long as it raises the density and leaves at least ``mass_min`` of all runs in the
  box. The sequence of boxes is the *peeling trajectory*.
* **Choosing a box.** By default the last trajectory box whose density reaches
  ``threshold`` (or the box at a given index; see :func:`choose_box`).
* **Pasting.** Grow the chosen box again, one restricted input side (or one category) at
  a time, by about ``paste_alpha`` of its runs, while that raises the density.
* **Pruning.** Then drop, one at a time, restrictions whose quasi-p-value exceeds
  ``prune`` (0.05 by default): restrictions that chance alone explains.
* **Quasi-p-values.** For each restricted input, a one-sided binomial test of the box's
  ``k`` outcome runs out of ``n`` against the density of the box with that input's
  restriction removed (as in the EMA Workbench, after Bryant & Lempert 2010). A small
  value means the restriction matters.
* **When nothing is kept.** A final box that restricts no input comes with the reason
  (:meth:`PrimResult.why_unrestricted`: an outcome as common as the density threshold,
  or one no box makes that dense, and what removed the restrictions) and the best
  restricted box of the trajectory (:meth:`PrimResult.best_restricted`), which the
  figures show instead of an empty box.

Box limits on numeric inputs lie midway between the last run removed and the first run
kept, so they estimate the underlying threshold rather than sitting on a data point.

Vocabulary (all shares in [0, 1]): *coverage* = outcome runs in the box / all outcome
runs; *density* = outcome runs in the box / runs in the box; *mass* = runs in the box /
all runs.

:func:`cart_rules` offers the usual comparison: the leaves of a shallow decision tree
(scikit-learn, an optional dependency imported only when called).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import BoundaryNorm
from scipy.stats import binomtest

__all__ = ["PrimBox", "PrimResult", "cart_rules", "choose_box", "describe_box", "prim"]

Limit = tuple[float, float] | frozenset


# ----------------------------------------------------------------------------- data


class _Data:
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


def _peel(data: _Data, alpha: float, mass_min: float) -> list[dict[str, Limit]]:
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


def _candidate(limits: dict[str, Limit], data: _Data, k_old: int, n_old: int, y_box: np.ndarray) -> _Candidate:
    """A candidate box whose runs have outcomes ``y_box``, against the current box of ``n_old`` runs, ``k_old`` with it."""
    return _Candidate(_objective(k_old, n_old, int(y_box.sum()), len(y_box)), len(data.restricted(limits)), limits)


def _better(best: _Candidate | None, candidate: _Candidate) -> _Candidate:
    """The better of two candidates (the first seen on a tie)."""
    return candidate if best is None or candidate.score > best.score else best


def _paste(data: _Data, limits: dict[str, Limit], paste_alpha: float) -> dict[str, Limit]:
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


def _pasted(limits: dict[str, Limit], data: _Data, k_old: int, n_old: int) -> _Candidate:
    """A candidate grown by pasting: the runs inside ``limits``."""
    return _candidate(limits, data, k_old, n_old, data.y[data.inside(limits)])


def _prune(data: _Data, limits: dict[str, Limit], max_p: float) -> tuple[dict[str, Limit], dict[str, float]]:
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


def _refine(data: _Data, box: PrimBox, paste: bool, paste_alpha: float, prune: float | None) -> PrimBox:
    """Paste and/or prune a trajectory box; the result keeps the trajectory index."""
    limits, dropped = dict(box.limits), {}
    if paste:
        limits = _paste(data, limits, paste_alpha)
    if prune is not None:
        limits, dropped = _prune(data, limits, prune)
    refined = data.make_box(limits, index=box.index, pasted=paste)
    refined.dropped = dropped
    return refined


# ----------------------------------------------------------------------------- results


def _fmt(value: float) -> str:
    """A limit as the reports print numbers (sim.reporting.text.number, which this layer cannot import): thousands
    separated from 1,000 up, three significant digits below, never scientific notation."""  # noqa: D205, D209
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    text = f"{value:.3g}"
    if "e" not in text:
        return text
    fixed = f"{value:.{max(0, 2 - math.floor(math.log10(abs(value))))}f}"
    return fixed.rstrip("0").rstrip(".") if "." in fixed else fixed


def _p(value: float) -> str:
    """A quasi-p-value as the reports print p-values: ``< 0.0001`` below it, two significant digits above."""
    return "< 0.0001" if value < 1e-4 else _fmt(float(f"{value:.2g}"))


@dataclass
class PrimBox:
    """One box: limits on every input and the share of runs and outcome runs inside.

    Attributes:
        limits: per input, ``(low, high)`` (inclusive, in the input's units) for numeric
            inputs or the frozenset of categories kept for categorical ones; an
            unrestricted input carries its data range / all its categories.
        data_limits: per input, the data's range or categories (the unrestricted box).
        n: runs inside the box.
        k: outcome runs inside the box.
        n_total: all runs.
        k_total: all outcome runs.
        quasi_p: per restricted input, the one-sided binomial quasi-p-value.
        index: position on the peeling trajectory (0 = all runs).
        pasted: whether the box was grown by pasting after being chosen.
        numeric: names of the numeric inputs.
        dropped: restrictions removed after choosing because their quasi-p-value was
            too large, in the order removed, each with its quasi-p-value when removed.
    """

    limits: dict[str, Limit]
    data_limits: dict[str, Limit]
    n: int
    k: int
    n_total: int
    k_total: int
    quasi_p: dict[str, float]
    index: int | None = None
    pasted: bool = False
    numeric: tuple[str, ...] = ()
    dropped: dict[str, float] = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        """Outcome runs in the box / all outcome runs."""
        return self.k / self.k_total if self.k_total else float("nan")

    @property
    def density(self) -> float:
        """Outcome runs in the box / runs in the box."""
        return self.k / self.n if self.n else float("nan")

    @property
    def mass(self) -> float:
        """Runs in the box / all runs."""
        return self.n / self.n_total

    @property
    def restricted(self) -> list[str]:
        """Inputs whose limits are narrower than the data's."""
        return [c for c in self.limits if self.limits[c] != self.data_limits[c]]

    def contains(self, X: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the rows of ``X`` inside the box (only restricted inputs are checked)."""
        mask = np.ones(len(X), dtype=bool)
        for c in self.restricted:
            limit = self.limits[c]
            if c in self.numeric:
                low, high = limit
                data_low, data_high = self.data_limits[c]
                x = X[c].to_numpy(dtype=float)
                if low > data_low:
                    mask &= x >= low
                if high < data_high:
                    mask &= x <= high
            else:
                mask &= X[c].isin(list(limit)).to_numpy()
        return mask

    def conditions(self) -> list[str]:
        """The restrictions as short text, e.g. ``"network_effect ≥ 1.12"``."""
        out = []
        for c in self.restricted:
            limit = self.limits[c]
            if c in self.numeric:
                low, high = limit
                data_low, data_high = self.data_limits[c]
                if low > data_low and high < data_high:
                    out.append(f"{_fmt(low)} ≤ {c} ≤ {_fmt(high)}")
                elif low > data_low:
                    out.append(f"{c} ≥ {_fmt(low)}")
                else:
                    out.append(f"{c} ≤ {_fmt(high)}")
            else:
                cats = sorted(limit, key=str)
                out.append(f"{c} = {cats[0]}" if len(cats) == 1 else f"{c} in {{{', '.join(map(str, cats))}}}")
        return out

    def to_df(self) -> pd.DataFrame:
        """One row per restricted input: low, high (NaN for categorical), categories, data range, quasi_p."""
        rows = []
        for c in self.restricted:
            if c in self.numeric:
                low, high = self.limits[c]
                data_low, data_high = self.data_limits[c]
                rows.append({"input": c, "low": low, "high": high, "categories": None,
                             "data_low": data_low, "data_high": data_high, "quasi_p": self.quasi_p.get(c, np.nan)})
            else:
                rows.append({"input": c, "low": np.nan, "high": np.nan,
                             "categories": ", ".join(sorted(map(str, self.limits[c]))),
                             "data_low": np.nan, "data_high": np.nan, "quasi_p": self.quasi_p.get(c, np.nan)})
        columns = ["low", "high", "categories", "data_low", "data_high", "quasi_p"]
        if not rows:
            return pd.DataFrame(columns=columns, index=pd.Index([], name="input"))
        return pd.DataFrame(rows).set_index("input")[columns]

    def describe(self, outcome: str = "the outcome") -> str:
        """One sentence: density, the restrictions and coverage (see :func:`describe_box`)."""
        return describe_box(self, outcome)

    def plot(self, ax: plt.Axes | None = None, label: str | None = None) -> plt.Axes:
        """Box-limits plot: each restricted input's box range drawn within its data range (0 to 1).

        Args:
            ax: axes to draw on (a new figure if None).
            label: what the title calls the box (default: "box INDEX", with "pasted" and
                "pruned" as they apply).

        Returns:
            The Axes (nothing is saved).
        """
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 0.6 * max(len(self.restricted), 1) + 1.6))
        dims = self.restricted
        for row, c in enumerate(dims):
            y = len(dims) - 1 - row
            ax.plot([0, 1], [y, y], color="0.82", lw=9, solid_capstyle="butt", zorder=1)
            if c in self.numeric:
                low, high = self.limits[c]
                data_low, data_high = self.data_limits[c]
                span = (data_high - data_low) or 1.0
                a, b = (low - data_low) / span, (high - data_low) / span
                ax.plot([a, b], [y, y], color="tab:blue", lw=9, solid_capstyle="butt", zorder=2)
                ax.text(-0.015, y, _fmt(data_low), ha="right", va="center", fontsize=8, color="0.45")
                ax.text(1.015, y, _fmt(data_high), ha="left", va="center", fontsize=8, color="0.45")
                if low > data_low:
                    ax.text(a, y + 0.22, _fmt(low), ha="center", va="bottom", fontsize=9)
                if high < data_high:
                    ax.text(b, y + 0.22, _fmt(high), ha="center", va="bottom", fontsize=9)
            else:
                kept = sorted(map(str, self.limits[c]))
                ax.plot([0, 1], [y, y], color="tab:blue", lw=9, alpha=0.35, solid_capstyle="butt", zorder=2)
                ax.text(0.5, y, ", ".join(kept), ha="center", va="center", fontsize=9, zorder=3)
        ax.set_yticks(range(len(dims)))
        ax.set_yticklabels([f"{c}\n(quasi-p {_p(self.quasi_p.get(c, np.nan))})" for c in reversed(dims)], fontsize=9)
        ax.set_ylim(-0.6, max(len(dims), 1) - 0.2)
        ax.tick_params(axis="y", length=0)
        ax.set_xlim(-0.22, 1.16)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1])
        ax.set_xlabel("position within the input's data range (0 = minimum, 1 = maximum)")
        if label is None:
            steps = [word for word, done in (("pasted", self.pasted), ("pruned", bool(self.dropped))) if done]
            label = f"box {self.index}" + (f", {' and '.join(steps)}" if steps else "")
        ax.set_title(f"PRIM {label}: coverage {self.coverage:.0%}, density {self.density:.0%}, mass {self.mass:.0%}",
                     fontsize=10)
        if not dims:
            ax.text(0.5, 0, "no restricted input", ha="center", va="center")
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        return ax


def describe_box(box: PrimBox, outcome: str = "the outcome") -> str:
    """One sentence describing a box.

    Example: ``"hhi > 0.3 in 82% of the runs (density) with network_effect ≥ 1.12 and
    congestion ≤ 0.21, covering 74% of all such runs (coverage)"``.

    Args:
        box: the box.
        outcome: text naming the outcome of interest.

    Returns:
        The sentence (no final full stop).
    """
    conds = box.conditions()
    if not conds:
        where = "with no restriction on the inputs"
    elif len(conds) == 1:
        where = f"with {conds[0]}"
    else:
        where = f"with {', '.join(conds[:-1])} and {conds[-1]}"
    return (f"{outcome} in {box.density:.0%} of the runs (density) {where}, "
            f"covering {box.coverage:.0%} of all such runs (coverage)")


def choose_box(boxes: Sequence[PrimBox], threshold: float = 0.8, rule: str = "last") -> int:
    """Index of the trajectory box to keep.

    Args:
        boxes: the peeling trajectory.
        threshold: minimum density (share of runs in the box with the outcome).
        rule: ``"last"`` (default): the last box on the trajectory with density ≥
            ``threshold`` (peeling stops when no peel raises the density, so this is the
            box where the outcome is purest); ``"coverage"``: among boxes with density ≥
            ``threshold``, the one of greatest coverage (ties: fewer restricted inputs, then
            earlier), i.e. the first such box.

    Returns:
        The index. If no box reaches the threshold, the densest box, with a warning.
    """
    if rule not in ("coverage", "last"):
        raise ValueError(f"prim: unknown box choice rule {rule!r} (use 'coverage' or 'last')")
    eligible = [i for i, b in enumerate(boxes) if b.density >= threshold]
    if not eligible:
        best = int(np.nanargmax([b.density for b in boxes]))
        warnings.warn(
            f"prim: no box reaches density {threshold:.2f}; keeping the densest (box {best}, density {boxes[best].density:.2f})",
            stacklevel=2,
        )
        return best
    if rule == "last":
        return eligible[-1]
    return min(eligible, key=lambda i: (-boxes[i].coverage, len(boxes[i].restricted), i))


@dataclass
class PrimResult:
    """The peeling trajectory, the chosen index and the chosen (pasted) box.

    Attributes:
        trajectory: the peeling trajectory; box 0 holds every run.
        chosen: index of the chosen box on the trajectory.
        box: the chosen box after pasting and pruning (as switched on).
        threshold: density threshold used to choose.
        alpha: peeling share (of the box's runs removed per step).
        paste_alpha: pasting share.
        mass_min: smallest box mass allowed.
        prune: largest quasi-p-value a kept restriction may have (None: no pruning).
    """

    trajectory: list[PrimBox]
    chosen: int
    box: PrimBox
    threshold: float
    alpha: float
    paste_alpha: float
    mass_min: float
    prune: float | None = 0.05
    _data: _Data | None = field(default=None, repr=False)

    def to_df(self) -> pd.DataFrame:
        """The trajectory: one row per box with coverage, density, mass, n, k, res_dim and whether it was chosen."""
        rows = [{"box": i, "coverage": b.coverage, "density": b.density, "mass": b.mass, "n": b.n, "k": b.k,
                 "res_dim": len(b.restricted), "chosen": i == self.chosen} for i, b in enumerate(self.trajectory)]
        return pd.DataFrame(rows).set_index("box")

    def select(self, index: int, paste: bool = True, prune: float | None = None) -> PrimBox:
        """The box at ``index`` on the trajectory, pasted if ``paste`` and pruned at ``prune`` if given."""
        base = self.trajectory[index]
        if self._data is None:
            return base
        return _refine(self._data, base, paste, self.paste_alpha, prune)

    def describe(self, outcome: str = "the outcome") -> str:
        """One sentence about the chosen box (see :func:`describe_box`)."""
        return describe_box(self.box, outcome)

    @property
    def base_rate(self) -> float:
        """Share of all runs with the outcome (the density of box 0, which holds every run)."""
        return self.trajectory[0].density

    def best_restricted(self) -> int | None:
        """Trajectory index of the best box that restricts an input.

        Returns:
            The chosen box if it restricts an input, else the densest box that does (ties:
            greater coverage, then earlier); None if peeling never restricted an input.
        """
        if self.trajectory[self.chosen].restricted:
            return self.chosen
        restricted = [i for i, b in enumerate(self.trajectory) if b.restricted]
        if not restricted:
            return None
        return min(restricted, key=lambda i: (-self.trajectory[i].density, -self.trajectory[i].coverage, i))

    def why_unrestricted(self, outcome: str = "the outcome") -> str | None:
        """Why the final box restricts no input, in two or three sentences.

        First the base rate against the density threshold: an outcome at least as common
        as the threshold is *too common* (the box of all runs already qualifies, leaving a
        restriction at most ``1 − base rate`` of density to gain); one that no trajectory
        box makes as dense as the threshold is *too rare*. Then what removed the
        restrictions: peeling never made one, the chosen box holds every run, pruning
        dropped them (with their quasi-p-values), or pasting grew the box back.

        Args:
            outcome: text naming the outcome, starting a sentence.

        Returns:
            The text, or None if the final box restricts an input.
        """
        if self.box.restricted:
            return None
        base, threshold = self.base_rate, self.threshold
        densest = max(b.density for b in self.trajectory)
        if base >= threshold:
            first = (f"{outcome} is too common at this threshold: it holds in {base:.0%} of all runs, against a density "
                     f"threshold of {threshold:.0%}, so the box of all runs already qualifies and a restriction can raise "
                     f"the density by {(1 - base) * 100:.0f} percentage points at most")
            advice = ["ask about a rarer outcome"]
        elif densest < threshold:
            first = (f"{outcome} is too rare at this threshold: it holds in {base:.0%} of all runs, and no box on the "
                     f"peeling trajectory reaches the density threshold of {threshold:.0%} (the densest: {densest:.0%})")
            advice = ["ask about a commoner outcome"]
        else:
            first = f"{outcome} holds in {base:.0%} of all runs, against a density threshold of {threshold:.0%}"
            advice = []
        if self.best_restricted() is None:
            how = "No restriction of the inputs raises the density: peeling stops at the box of all runs"
        elif not self.trajectory[self.chosen].restricted:
            how = f"The chosen box, box {self.chosen}, holds every run"
        elif self.box.dropped:
            values = ", then ".join(f"{p:.2g} for {c}" for c, p in self.box.dropped.items())
            how = (f"Pruning dropped every restriction of box {self.chosen}{' after pasting' if self.box.pasted else ''}: "
                   f"chance can explain each in {self.box.n_total} runs (quasi-p-value {values}; "
                   f"each above {self.prune:g})")
            advice.append("use more runs to tell a restriction from chance")
        else:
            how = f"Pasting grew box {self.chosen} back to every run"
        text = f"{first[0].upper()}{first[1:]}. {how}."
        if advice:
            text += f" {' or '.join(advice).capitalize()}."
        return text

    def plot_box(self, ax: plt.Axes | None = None) -> plt.Axes:
        """Box-limits plot of the final box, or of the best restricted box when the final box restricts nothing.

        Args:
            ax: axes to draw on (a new figure if None).

        Returns:
            The Axes (nothing is saved).
        """
        best = None if self.box.restricted else self.best_restricted()
        if best is None:
            return self.box.plot(ax)
        return self.trajectory[best].plot(ax, label=f"box {best}, the best restricted (not kept)")

    def plot(self, ax: plt.Axes | None = None) -> plt.Axes:
        """Trajectory plot: coverage against density, coloured by the number of restricted inputs.

        The chosen box is ringed and the density threshold drawn as a dashed line; when the
        final box restricts no input, the best restricted box (:meth:`best_restricted`) is
        labelled with its limits.

        Args:
            ax: axes to draw on (a new figure if None).

        Returns:
            The Axes (nothing is saved).
        """
        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 5))
        df = self.to_df()
        top = int(df.res_dim.max())
        cmap = plt.get_cmap("viridis", top + 1)
        norm = BoundaryNorm(np.arange(-0.5, top + 1.5), cmap.N)
        ax.plot(df.coverage, df.density, color="0.75", lw=1, zorder=1)
        points = ax.scatter(df.coverage, df.density, c=df.res_dim, cmap=cmap, norm=norm, s=30, edgecolor="k",
                            linewidth=0.3, zorder=2)
        bar = ax.figure.colorbar(points, ax=ax, ticks=range(top + 1))
        bar.set_label("restricted inputs")
        chosen = self.trajectory[self.chosen]
        ax.scatter([chosen.coverage], [chosen.density], s=180, facecolor="none", edgecolor="red", linewidth=1.8, zorder=3,
                   label=f"chosen: box {self.chosen}")
        if self.box.pasted or self.box.dropped:
            ax.scatter([self.box.coverage], [self.box.density], marker="*", s=160, color="red", zorder=3,
                       label="chosen box after pasting/pruning" + ("" if self.box.restricted else ": no restriction"))
        best = None if self.box.restricted else self.best_restricted()
        if best is not None:
            b = self.trajectory[best]
            if best != self.chosen:
                ax.scatter([b.coverage], [b.density], s=180, facecolor="none", edgecolor="tab:orange", linewidth=1.8,
                           zorder=3, label=f"best restricted: box {best}")
            ax.annotate(f"box {best}, the best restricted:\n" + "\n".join(b.conditions()), (b.coverage, b.density),
                        xytext=(-15 if b.coverage > 0.5 else 15, -40 if b.density > 0.5 else 40),
                        textcoords="offset points", ha="right" if b.coverage > 0.5 else "left",
                        va="top" if b.density > 0.5 else "bottom", fontsize=8,
                        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "tab:orange"},
                        arrowprops={"arrowstyle": "->", "color": "tab:orange"}, zorder=4)
        ax.axhline(self.threshold, color="0.4", ls="--", lw=1, label=f"density threshold {self.threshold:.2f}")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("coverage (share of all outcome runs inside the box)")
        ax.set_ylabel("density (share of the box's runs with the outcome)")
        ax.set_title("PRIM peeling trajectory")
        ax.legend(loc="lower left", fontsize=8)
        ax.grid(alpha=0.3)
        return ax


def prim(
    X: pd.DataFrame,
    y: Sequence[bool] | np.ndarray | pd.Series,
    *,
    alpha: float = 0.05,
    mass_min: float = 0.05,
    threshold: float = 0.8,
    box: int | None = None,
    rule: str = "last",
    paste: bool = True,
    paste_alpha: float | None = None,
    prune: float | None = 0.05,
) -> PrimResult:
    """Find one PRIM box where the outcome is concentrated.

    Args:
        X: inputs, one row per run; numeric columns are peeled by quantile, other columns
            (strings, categories, booleans) category by category.
        y: the outcome of interest per run (True/False).
        alpha: share of the box's runs removed per peeling step (0 < alpha < 1).
        mass_min: smallest share of all runs a box may keep.
        threshold: minimum density for the default box choice.
        box: index on the trajectory to keep instead of the default choice.
        rule: default choice rule, ``"last"`` or ``"coverage"`` (see :func:`choose_box`).
        paste: whether to grow the chosen box by pasting.
        paste_alpha: share of the box's runs added per pasting step (default ``alpha``).
        prune: after pasting, drop restrictions whose quasi-p-value exceeds this, largest
            first, one at a time (Bryant & Lempert 2010 drop insignificant restrictions
            by hand; None keeps every restriction).

    Returns:
        The :class:`PrimResult`.

    Raises:
        ValueError: bad shares, a y that is not boolean, missing numeric inputs, or no outcome run.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"prim: alpha must be in (0, 1), got {alpha}")
    if not 0 <= mass_min < 1:
        raise ValueError(f"prim: mass_min must be in [0, 1), got {mass_min}")
    paste_alpha = alpha if paste_alpha is None else paste_alpha
    if not 0 < paste_alpha < 1:
        raise ValueError(f"prim: paste_alpha must be in (0, 1), got {paste_alpha}")
    data = _Data(X, y)
    if data.k == 0:
        raise ValueError("prim: no run has the outcome of interest (y is all False)")
    trajectory = [data.make_box(limits, index=i) for i, limits in enumerate(_peel(data, alpha, mass_min))]
    if box is None:
        chosen = choose_box(trajectory, threshold, rule)
    else:
        if not -len(trajectory) <= box < len(trajectory):
            raise ValueError(f"prim: box {box} is not on the trajectory (0 to {len(trajectory) - 1})")
        chosen = box % len(trajectory)
    final = _refine(data, trajectory[chosen], paste, paste_alpha, prune)
    return PrimResult(trajectory=trajectory, chosen=chosen, box=final, threshold=threshold, alpha=alpha,
                      paste_alpha=paste_alpha, mass_min=mass_min, prune=prune, _data=data)


# ----------------------------------------------------------------------------- CART


def cart_rules(
    X: pd.DataFrame,
    y: Sequence[bool] | np.ndarray | pd.Series,
    max_depth: int = 3,
    min_samples_leaf: int | float = 0.01,
    random_state: int = 0,
) -> list[str]:
    """Leaf rules of a shallow decision tree, for comparison with PRIM.

    Categorical inputs are one-hot encoded (``leader=Hefei``). Each leaf becomes one line,
    e.g. ``"x1 > 0.7 and x2 <= 0.3: density 95%, coverage 90% (n=180)"``; lines are sorted
    by density, highest first.

    Args:
        X: inputs, one row per run.
        y: the outcome of interest per run.
        max_depth: depth of the tree.
        min_samples_leaf: smallest leaf (count, or share of runs if a float < 1).
        random_state: seed of the tree's tie-breaking.

    Returns:
        One text line per leaf.

    Raises:
        ImportError: scikit-learn is not installed.
    """
    try:
        from sklearn.tree import DecisionTreeClassifier
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("cart_rules needs scikit-learn, an optional dependency: pip install scikit-learn") from error
    y_arr = np.asarray(y).astype(bool)
    features = pd.get_dummies(X, prefix_sep="=", dtype=float)
    tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=min_samples_leaf, random_state=random_state)
    tree.fit(features.to_numpy(dtype=float), y_arr)
    names = list(features.columns)
    onehot = {c for c in names if c not in X.columns}
    t = tree.tree_
    leaf_of = tree.apply(features.to_numpy(dtype=float))
    total = max(int(y_arr.sum()), 1)
    lines = []

    def walk(node: int, bounds: dict[str, list[float]]) -> None:
        if t.children_left[node] == -1:
            in_leaf = leaf_of == node
            n, k = int(in_leaf.sum()), int(y_arr[in_leaf].sum())
            parts = []
            for name, (low, high) in bounds.items():
                if name in onehot:
                    parts.append(f"{name}" if low > -math.inf else f"not {name}")
                elif low > -math.inf and high < math.inf:
                    parts.append(f"{_fmt(low)} < {name} <= {_fmt(high)}")
                elif low > -math.inf:
                    parts.append(f"{name} > {_fmt(low)}")
                else:
                    parts.append(f"{name} <= {_fmt(high)}")
            rule = " and ".join(parts) if parts else "all runs"
            lines.append((k / n if n else 0.0, f"{rule}: density {k / n:.0%}, coverage {k / total:.0%} (n={n})"))
            return
        name, cut = names[t.feature[node]], float(t.threshold[node])
        low, high = bounds.get(name, [-math.inf, math.inf])
        walk(t.children_left[node], {**bounds, name: [low, min(high, cut)]})
        walk(t.children_right[node], {**bounds, name: [max(low, cut), high]})

    walk(0, {})
    return [line for _, line in sorted(lines, key=lambda item: -item[0])]
