"""The figures of a comparison (``modu compare``), and the text of its cost-effectiveness they share with the report.

Firms over time per scenario, shares, lock-in, spending, each scenario's effect against the first, and growth
accounting against no policy.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from sim.experiments.compare import CONFIDENCE, NATIONAL, SPEND, Comparison
from sim.model.parameters import LEVERS
from sim.reporting.figures import draw_growth_accounting, draw_spending
from sim.reporting.style import BAND_NAME, PAGE_WIDTH, plt, save_figure, share_axis, year_axis
from sim.reporting.text import estimate, interval_name

SPEND_CHANGED = 1e-9
"""Spending differences below this (100 M yuan) are rounding, not a change of policy."""


def per_100m_text(extra_spend: float, value: float, low: float, high: float) -> str:
    """Firms per 100 M yuan worded by the sign of the spending difference, so a cut cannot read as a gain.

    ``value`` is firms gained / extra spending. With more spending it is "firms gained
    per 100 M yuan spent"; with a cut both are negative, so the same positive number
    is "firms lost per 100 M yuan saved".

    Args:
        extra_spend: spending difference over the run, 100 M yuan.
        value: firms gained per 100 M yuan of extra spending.
        low: lower end of its interval.
        high: upper end of its interval.
    """
    if not np.isfinite(value) or abs(extra_spend) <= SPEND_CHANGED:
        return "–"
    what = "firms gained per 100 M yuan spent" if extra_spend > 0 else "firms lost per 100 M yuan saved"
    return f"{estimate(value, low, high)} {what}"



def _colors(labels: list[str]) -> dict[str, tuple[float, ...]]:
    cmap = plt.get_cmap("tab10")
    return {label: cmap(i % cmap.N) for i, label in enumerate(labels)}


def _scenarios(comparison: Comparison) -> list[str]:
    """Labels of the scenarios given on the command line (not the derived no-policy variants)."""
    return list(comparison.no_policy)


def plot_counts(comparison: Comparison) -> plt.Figure:
    """Firms over time per compared city and for all cities: mean and percentile band per scenario (no policy dashed)."""
    counts = comparison.tables["counts"]
    labels = [a.label for a in comparison.arms]
    colors = _colors(labels)
    panels = [*comparison.cities, NATIONAL]
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(PAGE_WIDTH, 4 * ncols), 2.8 * nrows + 0.8), squeeze=False,
                             sharex=True)
    given = set(_scenarios(comparison))
    for ax, city in zip(axes.flat, panels, strict=False):
        for label in labels:
            rows = counts[(counts.scenario == label) & (counts.city == city)]
            ax.fill_between(rows.year, rows.firms_q05, rows.firms_q95, color=colors[label], alpha=0.15, linewidth=0)
            ax.plot(rows.year, rows.firms, color=colors[label], label=label, linestyle="-" if label in given else "--")
        ax.set_title(city, fontsize=10)
        ax.set_ylim(bottom=0)  # every panel from 0: a 4% change looks like a 4% change
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("AI firms", fontsize=9)
    for ax in axes.flat:
        year_axis(ax)
        ax.set_xlabel("year" if ax.get_subplotspec().is_last_row() else "", fontsize=8)
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.suptitle(f"Firms per city (mean; shaded: {BAND_NAME})\n"
                 "each panel on its own scale, every axis from 0; differences with intervals: see effects",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0.5 / fig.get_figheight(), 1, 1))
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 4), fontsize=9, frameon=False)
    return fig


MAX_BARS_PER_ROW = 48
"""Grouped bars (cities × scenarios) wrap onto further rows beyond this many bars, so a figure fits a page."""


def _bar_rows(comparison: Comparison, column: str, ylabel: str, title: str) -> plt.Figure:
    """Grouped bars of ``summary[column]`` per compared city and scenario, wrapped into rows of cities."""
    labels = _scenarios(comparison)
    colors = _colors(labels)
    per_row = max(1, MAX_BARS_PER_ROW // len(labels))
    rows = [comparison.cities[i:i + per_row] for i in range(0, len(comparison.cities), per_row)]
    widest = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(min(PAGE_WIDTH, max(7, 0.4 * widest * len(labels) + 3)),
                                                    3.6 * len(rows) + 0.9), squeeze=False, sharey=True)
    table = comparison.tables["summary"]
    width = 0.8 / len(labels)
    for ax, cities in zip(axes[:, 0], rows, strict=True):
        x = np.arange(len(cities))
        for i, label in enumerate(labels):
            values = table[table.scenario == label].set_index("city").reindex(cities)[column].to_numpy(dtype=float)
            ax.bar(x + (i - (len(labels) - 1) / 2) * width, values, width=width, color=colors[label], label=label)
        ax.set_xticks(x, cities, rotation=30, ha="right")
        ax.set_xlim(-0.6, widest - 0.4)
        ax.set_ylabel(ylabel)
        share_axis(ax)
        ax.grid(alpha=0.3, axis="y")
    axes[0, 0].set_title(title)
    axes[0, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    return fig


def plot_shares(comparison: Comparison) -> plt.Figure:
    """Each compared city's share of all firms at the end, per scenario (mean over replications)."""
    return _bar_rows(comparison, "share", "share of all firms at the end", "Shares at the end (mean over replications)")


def plot_lock_in(comparison: Comparison) -> plt.Figure:
    """Lock-in probability per compared city and scenario: the share of replications it ends first."""
    fig = _bar_rows(comparison, "lock_in", "share of replications the city ends first",
                    "Which city ends first (lock-in probability)")
    for ax in fig.axes:
        ax.set_ylim(0, 1)
    return fig


def plot_spending(comparison: Comparison) -> plt.Figure:
    """Spending over the run by lever, per compared city: one panel per scenario, one under another.

    Means over replications, in 100 M yuan.
    """
    labels = _scenarios(comparison)
    summary = comparison.tables["summary"]
    cities = comparison.cities
    fig, axes = plt.subplots(len(labels), 1, figsize=(min(PAGE_WIDTH, max(6, 0.55 * len(cities) + 2.5)),
                                                      2.6 * len(labels) + 1.2), squeeze=False, sharex=True, sharey=True)
    for ax, label in zip(axes[:, 0], labels, strict=True):
        rows = summary[summary.scenario == label].set_index("city").reindex(cities)
        draw_spending(ax, rows[SPEND].set_axis(list(LEVERS), axis=1))
        ax.set_title(label, fontsize=10)
        ax.set_ylabel("100 M yuan", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    plt.setp(axes[-1, 0].get_xticklabels(), rotation=40, ha="right", rotation_mode="anchor", fontsize=8)
    axes[0, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, title="lever",
                      title_fontsize=8)
    fig.suptitle("Policy spending by lever over the run (100 M yuan, mean over replications)")
    fig.tight_layout()
    return fig


def plot_effects(comparison: Comparison) -> plt.Figure:
    """Firms gained against the first scenario, per city and for all cities, with the paired intervals.

    One panel per scenario, one under another, on a shared axis.
    """
    effects = comparison.tables["effects"]
    labels = list(dict.fromkeys(effects.scenario))
    rows_per_panel = len(comparison.cities) + 1
    fig, axes = plt.subplots(len(labels), 1, figsize=(10, (0.32 * rows_per_panel + 1.2) * len(labels) + 0.6),
                             squeeze=False, sharex=True)
    colors = _colors(_scenarios(comparison))
    for ax, label in zip(axes[:, 0], labels, strict=True):
        rows = effects[effects.scenario == label].set_index("city").reindex([*comparison.cities, NATIONAL])
        y = np.arange(len(rows))[::-1]
        mean = rows.firms_gained.to_numpy(dtype=float)
        err = np.vstack([mean - rows.firms_gained_low.to_numpy(dtype=float),
                         rows.firms_gained_high.to_numpy(dtype=float) - mean])
        ax.barh(y, mean, color=colors[label], xerr=np.nan_to_num(err), capsize=2, height=0.7)
        ax.axvline(0, color="k", linewidth=0.8)
        for yi, row in zip(y, rows.itertuples(), strict=True):
            if abs(row.extra_spend) > SPEND_CHANGED:
                ax.annotate(per_100m_text(row.extra_spend, row.firms_per_100m, row.firms_per_100m_low,
                                          row.firms_per_100m_high), (1.02, yi),
                            xycoords=("axes fraction", "data"), va="center", ha="left", fontsize=8, color="0.15",
                            annotation_clip=False)
        ax.set_yticks(y, rows.index, fontsize=8)
        ax.set_title(f"{label} minus {rows.reference.iloc[0]}", fontsize=10)
        ax.grid(alpha=0.3, axis="x")
        ax.locator_params(axis="x", nbins=6)
    axes[-1, 0].set_xlabel("firms gained at the end (paired mean over replications)")
    fig.suptitle(f"Firms gained against the first scenario (paired mean); whiskers: {interval_name('confidence', CONFIDENCE)}\n"
                 "right: per 100 M yuan where spending differs", fontsize=11)
    fig.tight_layout()
    return fig


def _accounted(policy: pd.DataFrame) -> pd.DataFrame:
    """The growth-accounting rows of scenarios that have a policy (not their own no-policy variant)."""
    return policy[policy.scenario != policy.no_policy]


def plot_growth_accounting(comparison: Comparison) -> plt.Figure:
    """Where each scenario's policy effect comes from, against the same scenario without policy.

    Extra births and moves in (up), extra deaths and moves out (down) and the
    net change (diamond), per city and for all cities (the national total:
    positive-sum if it rises).
    """
    policy = _accounted(comparison.tables["policy"])
    labels = list(dict.fromkeys(policy.scenario))
    n_rows = max(policy.groupby("scenario").size())
    fig, axes = plt.subplots(len(labels), 1, figsize=(min(PAGE_WIDTH, max(7, 0.6 * n_rows + 2)), 4.2 * len(labels)),
                             squeeze=False)
    for ax, label in zip(axes.flat, labels, strict=True):
        rows = policy[policy.scenario == label].set_index("city")
        acc = rows[["births", "deaths", "moves_in", "moves_out"]].assign(net=rows.firms_gained)
        draw_growth_accounting(ax, acc)
        ax.set_title(f"{label} minus {rows.no_policy.iloc[0]}", fontsize=10)
        ax.set_ylabel("firms over the run")
        ax.locator_params(axis="y", nbins=6)
        ax.grid(alpha=0.3, axis="y")
    axes.flat[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.suptitle("Growth accounting against no policy (firms; mean paired difference over replications)")
    fig.tight_layout()
    return fig


def save_comparison_figures(comparison: Comparison, folder: Path) -> list[Path]:
    """Draw every comparison figure into ``folder`` (PNG and SVG); returns the paths written."""
    figures = {"counts": plot_counts, "shares": plot_shares, "lock_in": plot_lock_in, "spending": plot_spending}
    if len(comparison.tables["effects"]):
        figures["effects"] = plot_effects
    if len(_accounted(comparison.tables["policy"])):
        figures["growth_accounting"] = plot_growth_accounting
    paths: list[Path] = []
    for stem, draw in figures.items():
        paths += save_figure(draw(comparison), folder, stem)
    return paths
