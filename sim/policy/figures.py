"""The figures of policy design's results (matplotlib): what ``result.plot()`` draws.

:meth:`sim.policy.optimisation.OptimiseResult.plot` and :meth:`sim.policy.race.EquilibriumResult.plot`
draw with these; the reports save them (:mod:`sim.reporting.policy`). Nothing is saved here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

from sim.analysis.ternary import ternary_heatmap
from sim.model.parameters import LEVERS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from sim.policy.optimisation import OptimiseResult
    from sim.policy.race import EquilibriumResult


def plot_optimisation(result: OptimiseResult, ax: Axes | None = None) -> Axes:
    """Ternary heat map of the mean objective per mix (at its best budget), the best mix starred, the current
    mix as a diamond, and the mixes indistinguishable from the best hatched.
    """  # noqa: D205
    view = result.grid_view()
    best, current = result.table.iloc[result.best], result.table.iloc[result.current]
    values = view.objective.where(view.feasible)
    ax = ternary_heatmap(view[list(LEVERS)], values.to_numpy(), ax=ax, best=[best[lv] for lv in LEVERS],
                         current=[current[lv] for lv in LEVERS], indistinguishable=view.indistinguishable.to_numpy(),
                         label=f"{result.plan.objective.label(result.plan.city)}, mean over runs\n"
                               "(colours span the mixes' range, not from 0)", names=LEVERS)
    budgets = result.table[result.table.kind == "grid"].budget.nunique()
    ax.set_title(f"{result.plan.city}: {result.plan.objective.label(result.plan.city)}"
                 + (" (best budget per mix)" if budgets > 1 else ""), fontsize=10)
    return ax


def plot_race(result: EquilibriumResult, ax: Axes | None = None) -> Axes:
    """National firms (left axis) and each player's payoff (right axis) along the best-response path; the
    cooperative optimum dashed. Both axes start at 0, so a change reads at its true size.
    """  # noqa: D205
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4.5))
    steps = result.path.drop_duplicates("step")
    ax.plot(steps.step, steps.national, "-o", color="k", label="national firms (left)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.axhline(result.national_cooperative, color="k", ls="--", lw=1, label="national firms at the cooperative optimum")
    ax.set(xlabel="step of the best-response path (one player changes its mix)",
           ylabel="national firms at the horizon (mean over runs)", title="Subsidy race: best-response dynamics")
    twin = ax.twinx()
    for city, rows in result.path.groupby("city", sort=False):
        twin.plot(rows.step, rows.payoff, "-", marker=".", label=f"{city}'s payoff (right)")
    cost = f" − {result.plan.cost:g} per 100 M yuan spent" if result.plan.cost else ""
    twin.set_ylabel(f"payoff: {result.plan.objective.label('its city')}{cost}", fontsize=9)
    for axis in (ax, twin):  # from 0: a 0.1% change must not fill the panel
        low, high = axis.get_ylim()
        low, high = min(low, 0.0), max(high, 0.0)
        axis.set_ylim(low, high + 0.08 * (high - low))
        axis.ticklabel_format(axis="y", style="plain", useOffset=False)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    ax.grid(alpha=0.3)
    return ax
