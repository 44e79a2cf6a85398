"""Scenario discovery on a finished sweep (``modu discover``): which swept conditions lead to an outcome.

The sweep's ``summary.csv`` has one row per point × replication; the outcome is an
expression of :mod:`sim.analysis.expressions` over its columns (never ``eval``'d), and
PRIM (:func:`sim.analysis.prim.prim`, peeling then pasting) looks for a box over the
swept columns where the outcome is concentrated. Optionally the leaves of a shallow
decision tree (:func:`sim.analysis.cart.cart_rules`, scikit-learn) are listed for
comparison.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from sim._install import install_command
from sim.analysis.boxes import PrimBox, describe_box
from sim.analysis.cart import cart_rules
from sim.analysis.expressions import ExpressionError, parse_expression
from sim.analysis.prim import PrimResult, prim
from sim.policy.errors import PolicyError

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@dataclass
class Discovery:
    """A PRIM box for an outcome over a sweep's swept columns.

    Attributes:
        outcome: the outcome expression.
        inputs: the swept numeric columns PRIM searched.
        y: the outcome per run (True/False).
        prim: the PRIM result (trajectory, chosen box).
        rules: CART leaf rules, if asked for (else empty).
    """

    outcome: str
    inputs: list[str]
    y: pd.Series
    prim: PrimResult
    rules: list[str] = field(default_factory=list)

    def to_df(self) -> pd.DataFrame:
        """The peeling trajectory: per box coverage, density, mass, n, k, restricted inputs, chosen."""
        return self.prim.to_df()

    def box(self) -> pd.DataFrame:
        """The chosen box: per restricted input its limits, the data's range and the quasi-p-value."""
        return self.prim.box.to_df()

    def sentence(self) -> str:
        """One sentence: which conditions lead to the outcome, with coverage and density."""
        return self.prim.describe(f"`{self.outcome}` holds") + "."

    def why_unrestricted(self) -> str | None:
        """Why the box restricts no input (see :meth:`PrimResult.why_unrestricted`); None if it restricts one."""
        return self.prim.why_unrestricted(f"`{self.outcome}`")

    def best_restricted(self) -> PrimBox | None:
        """The best restricted box of the peeling trajectory when the chosen box restricts no input, else None."""
        index = None if self.prim.box.restricted else self.prim.best_restricted()
        return None if index is None else self.prim.trajectory[index]

    def best_sentence(self) -> str | None:
        """One sentence about :meth:`best_restricted` with its quasi-p-values, or None."""
        best = self.best_restricted()
        if best is None:
            return None
        values = ", ".join(f"{p:.2g} for {c}" for c, p in best.quasi_p.items())
        return (f"The best restricted box on the peeling trajectory, box {best.index}: "
                f"{describe_box(best, f'`{self.outcome}` holds')}; quasi-p-values {values}.")

    def threshold_note(self) -> str | None:
        """When no trajectory box reaches the density threshold and the box restricts an input: which box was kept.

        (A box that restricts nothing says so in :meth:`why_unrestricted`.)
        """
        densest = max(b.density for b in self.prim.trajectory)
        if densest >= self.prim.threshold or not self.prim.box.restricted:
            return None
        return (f"No box on the peeling trajectory reaches the density threshold of {self.prim.threshold:.0%}: box "
                f"{self.prim.chosen}, the densest ({densest:.0%}), was kept.")

    def summary(self) -> str:
        """What ``modu discover`` prints.

        The sentence, then which box was kept if none reached the threshold, or, if the box
        restricts no input, why and the best restricted box.
        """
        lines = (self.sentence(), self.threshold_note(), self.why_unrestricted(), self.best_sentence())
        return "\n".join(line for line in lines if line)

    def plot(self, ax: Axes | None = None) -> Axes:
        """The peeling trajectory (coverage against density, the chosen box ringed)."""
        return self.prim.plot(ax=ax)


def read_sweep(folder: Path) -> tuple[pd.DataFrame, list[str]]:
    """A sweep folder's successful runs (``summary.csv``) and its swept paths (from ``manifest.json``).

    Raises:
        PolicyError: the folder holds no readable sweep.
    """
    try:
        summary = pd.read_csv(folder / "summary.csv")
    except (OSError, ValueError) as exc:
        raise PolicyError(f"SWEEP_FOLDER: {folder} holds no readable summary.csv ({' '.join(str(exc).split())})") from None
    try:
        paths = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["definition"]["paths"]
    except (OSError, ValueError, KeyError, TypeError):
        head = list(summary.columns)
        paths = head[head.index("point") + 1: head.index("replication")] if {"point", "replication"} <= set(head) else []
    if "status" in summary.columns:
        summary = summary[summary.status == "ok"].reset_index(drop=True)
    return summary, [p for p in paths if p in summary.columns]


def discover(summary: pd.DataFrame, paths: list[str], outcome: str, *, threshold: float = 0.8, alpha: float = 0.05,
             mass_min: float = 0.05, cart: bool = False) -> Discovery:
    """Run PRIM for ``outcome`` over the swept numeric columns of a sweep's summary.

    Args:
        summary: one row per run (``summary.csv``).
        paths: the swept columns.
        outcome: an outcome expression over the summary's columns, e.g. ``"leader == 'Hefei'"``.
        threshold: minimum density of the chosen box.
        alpha: peeling share per step.
        mass_min: smallest box mass.
        cart: also list decision-tree rules (needs scikit-learn).

    Raises:
        PolicyError: a bad expression or one naming no column, no swept numeric column, an outcome that is
            never or always true, or ``cart`` without scikit-learn.
    """
    try:
        y = parse_expression(outcome).evaluate(summary)
    except ExpressionError as exc:
        raise PolicyError(f"--outcome: {exc}") from None
    inputs = [p for p in paths if pd.api.types.is_numeric_dtype(summary[p]) and not pd.api.types.is_bool_dtype(summary[p])
              and summary[p].nunique() >= 2]
    if not inputs:
        raise PolicyError("SWEEP_FOLDER: the sweep has no swept numeric column taking two values or more "
                             f"(swept: {', '.join(paths) or 'nothing'}); PRIM needs one")
    k = int(y.sum())
    if k == 0 or k == len(y):
        raise PolicyError(f"--outcome: {outcome!r} is {'never' if k == 0 else 'always'} true in the "
                             f"{len(y)} runs; nothing to discover")
    with warnings.catch_warnings():  # said in the summary instead (Discovery.threshold_note)
        warnings.filterwarnings("ignore", message="prim: no box reaches density", category=UserWarning)
        result = prim(summary[inputs], y.to_numpy(), threshold=threshold, alpha=alpha, mass_min=mass_min)
    rules = []
    if cart:
        try:
            rules = cart_rules(summary[inputs], y.to_numpy())
        except ImportError:
            raise PolicyError(f"--cart: needs scikit-learn; install it with {install_command('discover')}") from None
    return Discovery(outcome, inputs, y, result, rules)
