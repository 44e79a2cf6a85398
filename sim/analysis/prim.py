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
  ``threshold`` (or the box at a given index; see :func:`sim.analysis.boxes.choose_box`).
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

Generic: any table of inputs and any boolean outcome. The boxes are
:mod:`sim.analysis.boxes`, the figures :mod:`sim.analysis.prim_plots`, and
:func:`sim.analysis.cart.cart_rules` offers the usual comparison (the leaves of a shallow
decision tree).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sim.analysis.boxes import PrimBox, choose_box, describe_box
from sim.analysis.peeling import Runs, peel, refine

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["PrimResult", "prim"]


# ----------------------------------------------------------------------------- result


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
    _data: Runs | None = field(default=None, repr=False)

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
        return refine(self._data, base, paste, self.paste_alpha, prune)

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

    def plot_box(self, ax: Axes | None = None) -> Axes:
        """Box-limits plot of the final box, or of the best restricted box when the final box restricts nothing.

        Args:
            ax: axes to draw on (a new figure if None).

        Returns:
            The Axes (nothing is saved).
        """
        from sim.analysis.prim_plots import plot_final_box

        return plot_final_box(self, ax)

    def plot(self, ax: Axes | None = None) -> Axes:
        """Trajectory plot: coverage against density, coloured by the number of restricted inputs.

        The chosen box is ringed and the density threshold drawn as a dashed line; when the
        final box restricts no input, the best restricted box (:meth:`best_restricted`) is
        labelled with its limits.

        Args:
            ax: axes to draw on (a new figure if None).

        Returns:
            The Axes (nothing is saved).
        """
        from sim.analysis.prim_plots import plot_trajectory

        return plot_trajectory(self, ax)


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
    data = Runs(X, y)
    if data.k == 0:
        raise ValueError("prim: no run has the outcome of interest (y is all False)")
    trajectory = [data.make_box(limits, index=i) for i, limits in enumerate(peel(data, alpha, mass_min))]
    if box is None:
        chosen = choose_box(trajectory, threshold, rule)
    else:
        if not -len(trajectory) <= box < len(trajectory):
            raise ValueError(f"prim: box {box} is not on the trajectory (0 to {len(trajectory) - 1})")
        chosen = box % len(trajectory)
    final = refine(data, trajectory[chosen], paste, paste_alpha, prune)
    return PrimResult(trajectory=trajectory, chosen=chosen, box=final, threshold=threshold, alpha=alpha,
                      paste_alpha=paste_alpha, mass_min=mass_min, prune=prune, _data=data)
