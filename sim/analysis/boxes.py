"""PRIM's boxes: limits on the inputs of a table, the runs inside, and how a box is described and chosen.

Vocabulary (all shares in [0, 1]): *coverage* = outcome runs in the box / all outcome
runs; *density* = outcome runs in the box / runs in the box; *mass* = runs in the box /
all runs. Box limits on numeric inputs are inclusive; an unrestricted input carries
its data range (or all its categories).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sim.analysis.formatting import number_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["Limit", "PrimBox", "choose_box", "describe_box"]

Limit = tuple[float, float] | frozenset
"""A numeric input's ``(low, high)`` or the frozenset of a categorical input's categories kept."""


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
                    out.append(f"{number_text(low)} ≤ {c} ≤ {number_text(high)}")
                elif low > data_low:
                    out.append(f"{c} ≥ {number_text(low)}")
                else:
                    out.append(f"{c} ≤ {number_text(high)}")
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

    def plot(self, ax: Axes | None = None, label: str | None = None) -> Axes:
        """Box-limits plot: each restricted input's box range drawn within its data range (0 to 1).

        Args:
            ax: axes to draw on (a new figure if None).
            label: what the title calls the box (default: "box INDEX", with "pasted" and
                "pruned" as they apply).

        Returns:
            The Axes (nothing is saved).
        """
        from sim.analysis.prim_plots import plot_box

        return plot_box(self, ax, label)


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
