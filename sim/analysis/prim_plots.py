"""PRIM's figures (matplotlib): a box's limits within the data's ranges, and the peeling trajectory.

:meth:`sim.analysis.boxes.PrimBox.plot`, :meth:`sim.analysis.prim.PrimResult.plot` and
:meth:`~sim.analysis.prim.PrimResult.plot_box` draw with these; nothing is saved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import BoundaryNorm

from sim.analysis.formatting import number_text, p_value_text

if TYPE_CHECKING:
    from sim.analysis.boxes import PrimBox
    from sim.analysis.prim import PrimResult

__all__ = ["plot_box", "plot_final_box", "plot_trajectory"]


def plot_box(box: PrimBox, ax: plt.Axes | None = None, label: str | None = None) -> plt.Axes:
    """Box-limits plot: each restricted input's box range drawn within its data range (0 to 1).

    Args:
        box: the box.
        ax: axes to draw on (a new figure if None).
        label: what the title calls the box (default: "box INDEX", with "pasted" and
            "pruned" as they apply).

    Returns:
        The Axes (nothing is saved).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.6 * max(len(box.restricted), 1) + 1.6))
    dims = box.restricted
    for row, c in enumerate(dims):
        y = len(dims) - 1 - row
        ax.plot([0, 1], [y, y], color="0.82", lw=9, solid_capstyle="butt", zorder=1)
        if c in box.numeric:
            low, high = box.limits[c]
            data_low, data_high = box.data_limits[c]
            span = (data_high - data_low) or 1.0
            a, b = (low - data_low) / span, (high - data_low) / span
            ax.plot([a, b], [y, y], color="tab:blue", lw=9, solid_capstyle="butt", zorder=2)
            ax.text(-0.015, y, number_text(data_low), ha="right", va="center", fontsize=8, color="0.45")
            ax.text(1.015, y, number_text(data_high), ha="left", va="center", fontsize=8, color="0.45")
            if low > data_low:
                ax.text(a, y + 0.22, number_text(low), ha="center", va="bottom", fontsize=9)
            if high < data_high:
                ax.text(b, y + 0.22, number_text(high), ha="center", va="bottom", fontsize=9)
        else:
            kept = sorted(map(str, box.limits[c]))
            ax.plot([0, 1], [y, y], color="tab:blue", lw=9, alpha=0.35, solid_capstyle="butt", zorder=2)
            ax.text(0.5, y, ", ".join(kept), ha="center", va="center", fontsize=9, zorder=3)
    ax.set_yticks(range(len(dims)))
    ax.set_yticklabels([f"{c}\n(quasi-p {p_value_text(box.quasi_p.get(c, np.nan))})" for c in reversed(dims)], fontsize=9)
    ax.set_ylim(-0.6, max(len(dims), 1) - 0.2)
    ax.tick_params(axis="y", length=0)
    ax.set_xlim(-0.22, 1.16)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1])
    ax.set_xlabel("position within the input's data range (0 = minimum, 1 = maximum)")
    if label is None:
        steps = [word for word, done in (("pasted", box.pasted), ("pruned", bool(box.dropped))) if done]
        label = f"box {box.index}" + (f", {' and '.join(steps)}" if steps else "")
    ax.set_title(f"PRIM {label}: coverage {box.coverage:.0%}, density {box.density:.0%}, mass {box.mass:.0%}",
                 fontsize=10)
    if not dims:
        ax.text(0.5, 0, "no restricted input", ha="center", va="center")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return ax


def plot_final_box(result: PrimResult, ax: plt.Axes | None = None) -> plt.Axes:
    """Box-limits plot of the final box, or of the best restricted box when the final box restricts nothing."""
    best = None if result.box.restricted else result.best_restricted()
    if best is None:
        return plot_box(result.box, ax)
    return plot_box(result.trajectory[best], ax, label=f"box {best}, the best restricted (not kept)")


def plot_trajectory(result: PrimResult, ax: plt.Axes | None = None) -> plt.Axes:
    """Trajectory plot: coverage against density, coloured by the number of restricted inputs.

    The chosen box is ringed and the density threshold drawn as a dashed line; when the
    final box restricts no input, the best restricted box is labelled with its limits.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5))
    df = result.to_df()
    top = int(df.res_dim.max())
    cmap = plt.get_cmap("viridis", top + 1)
    norm = BoundaryNorm(np.arange(-0.5, top + 1.5), cmap.N)
    ax.plot(df.coverage, df.density, color="0.75", lw=1, zorder=1)
    points = ax.scatter(df.coverage, df.density, c=df.res_dim, cmap=cmap, norm=norm, s=30, edgecolor="k",
                        linewidth=0.3, zorder=2)
    bar = ax.figure.colorbar(points, ax=ax, ticks=range(top + 1))
    bar.set_label("restricted inputs")
    chosen = result.trajectory[result.chosen]
    ax.scatter([chosen.coverage], [chosen.density], s=180, facecolor="none", edgecolor="red", linewidth=1.8, zorder=3,
               label=f"chosen: box {result.chosen}")
    if result.box.pasted or result.box.dropped:
        ax.scatter([result.box.coverage], [result.box.density], marker="*", s=160, color="red", zorder=3,
                   label="chosen box after pasting/pruning" + ("" if result.box.restricted else ": no restriction"))
    best = None if result.box.restricted else result.best_restricted()
    if best is not None:
        b = result.trajectory[best]
        if best != result.chosen:
            ax.scatter([b.coverage], [b.density], s=180, facecolor="none", edgecolor="tab:orange", linewidth=1.8,
                       zorder=3, label=f"best restricted: box {best}")
        ax.annotate(f"box {best}, the best restricted:\n" + "\n".join(b.conditions()), (b.coverage, b.density),
                    xytext=(-15 if b.coverage > 0.5 else 15, -40 if b.density > 0.5 else 40),
                    textcoords="offset points", ha="right" if b.coverage > 0.5 else "left",
                    va="top" if b.density > 0.5 else "bottom", fontsize=8,
                    bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "tab:orange"},
                    arrowprops={"arrowstyle": "->", "color": "tab:orange"}, zorder=4)
    ax.axhline(result.threshold, color="0.4", ls="--", lw=1, label=f"density threshold {result.threshold:.2f}")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("coverage (share of all outcome runs inside the box)")
    ax.set_ylabel("density (share of the box's runs with the outcome)")
    ax.set_title("PRIM peeling trajectory")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return ax
