"""Figures of a run (docs/ODD.md §3.8), drawn from its tidy tables.

Each ``plot_*`` function takes the tables and returns a matplotlib Figure;
:func:`save_run_figures` writes them all as PNG and SVG. The style they share (number
format, value axes from 0 or marked broken, a page's width, saving) is
:mod:`sim.reporting.style`'s; colours come from :mod:`sim.reporting.palette`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib.collections
import numpy as np
import pandas as pd

from sim.model.metrics import BAND, lock_in
from sim.model.parameters import LEVERS
from sim.reporting.maps import draw_map
from sim.reporting.palette import FLOW_COLORS, INK, LEVER_COLORS
from sim.reporting.style import (
    BAND_NAME,
    PAGE_WIDTH,
    city_colors,
    plt,
    save_figures,
    share_axis,
    value_axis,
    year_axis,
)
from sim.reporting.text import percent


def cities_of(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The cities of a run's tables, in the scenario's order."""
    return list(dict.fromkeys(tables["cities"]["city"]))


def city_totals(firms: pd.DataFrame) -> pd.DataFrame:
    """Firms per replication × year × city (sectors summed)."""
    return firms.groupby(["replication", "year", "city"], sort=False, observed=True)["firms"].sum().reset_index()


MAX_LINES = 8
"""Up to this many cities share one panel of firm counts; more get one panel each (small multiples)."""

LOG_SPREAD = 5.0
"""When the largest city ends with more than this many times the firms of the smallest, counts use a log axis."""

MAX_PANELS = 16
"""Above this many cities, small multiples would be too small to read and slow to draw: the counts figure
shows the ``MAX_LINES`` largest cities in colour over the others in grey; the flows matrix, the growth
accounting, spending and lock-in bars show ``MAX_PANELS - 1`` cities and the rest summed as "other cities"."""


def counts_layout(cities: int) -> str:
    """How the firm counts of this many cities are drawn: ``"lines"`` (one panel, up to :data:`MAX_LINES`),
    ``"panels"`` (small multiples, up to :data:`MAX_PANELS`) or ``"leaders"`` (the largest in colour over the rest).
    """  # noqa: D205
    return "lines" if cities <= MAX_LINES else "panels" if cities <= MAX_PANELS else "leaders"


def wide_spread(finals: Sequence[float]) -> bool:
    """Whether counts need a log axis: the largest city ends with more than :data:`LOG_SPREAD` times the smallest."""
    return max(finals) / max(min(finals), 1) > LOG_SPREAD


def leaders(final: Mapping[str, float]) -> list[str]:
    """The :data:`MAX_LINES` cities with the most at the end, largest first (ties in the order given)."""
    return sorted(final, key=lambda city: -final[city])[:MAX_LINES]


def fold_others(frame: pd.DataFrame, order: pd.Series, how: str = "sum") -> pd.DataFrame:
    """Many cities as the ``MAX_PANELS - 1`` ranked highest by ``order`` and one row for all the others.

    With at most :data:`MAX_PANELS` rows, ``frame`` is returned unchanged.

    Args:
        frame: one row per city, numeric columns that add up across cities.
        order: a value per city (index as ``frame``'s); the highest are kept.
        how: ``sum``: the row "other N cities" is their total (e.g. a probability that one of them leads);
            ``mean``: the row "other N cities (mean)" is the average city among them, comparable to the kept bars.
    """
    if len(frame) <= MAX_PANELS:
        return frame
    kept = list(order.reindex(frame.index).sort_values(ascending=False, kind="stable").index[:MAX_PANELS - 1])
    others = frame.drop(index=kept)
    label = f"other {len(others)} cities" + (" (mean)" if how == "mean" else "")
    rest = (others.mean() if how == "mean" else others.sum()).to_frame(label).T
    return pd.concat([frame.loc[kept], rest])


def log_firms_axis(ax: plt.Axes) -> None:
    """A logarithmic y axis of firm counts labelled 1, 2, 5 × 10^k in plain digits (10,000 rather than 10⁴).

    Unlabelled minor ticks: matplotlib's default minor labels are mathtext, whose first use in a
    process costs most of a second.
    """
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _draw_city_counts(ax: plt.Axes, by_year: pd.core.groupby.SeriesGroupBy, color: tuple[float, ...] | str,
                      label: str | None, band: bool = True, **line: object) -> None:
    """One city's median line over replications, with its band (:data:`BAND_NAME`)."""
    mid = by_year.median()
    if band:
        ax.fill_between(mid.index, by_year.quantile(BAND[0]).values, by_year.quantile(BAND[1]).values,
                        color=color, alpha=0.2, linewidth=0)
    ax.plot(mid.index, mid.values, color=color, label=label, **line)


def plot_counts(tables: dict[str, pd.DataFrame], observed: pd.DataFrame | None = None) -> plt.Figure:
    """Firms per city over time: median over replications with a band (:data:`BAND_NAME`).

    Up to ``MAX_LINES`` cities are drawn in one panel with a legend. With more, a
    dozen colours cannot be told apart, so each city gets its own small panel: the
    city in colour over every other city in light grey, on a shared logarithmic
    axis (cities differ by more than ten times, and a log axis keeps the small
    ones' growth visible). Every city stays identifiable and comparable.

    Args:
        tables: the run's tables.
        observed: optional documented points (``city, year, firms``) drawn as markers.
    """
    totals = city_totals(tables["firms"])
    cities, colors = cities_of(tables), city_colors(cities_of(tables))
    by_city = {city: totals[totals.city == city].groupby("year")["firms"] for city in cities}
    documented = dict(tuple(observed.groupby("city"))) if observed is not None and len(observed) else {}
    title = f"Firms per city (median and {BAND_NAME})"
    layout = counts_layout(len(cities))
    if layout == "leaders":
        return _counts_leaders(by_city, documented, title)
    if layout == "lines":
        fig, ax = plt.subplots(figsize=(8, 5))
        for city in cities:
            _draw_city_counts(ax, by_city[city], colors[city], city)
        for city, rows in documented.items():
            ax.scatter(rows.year, rows.firms, color=colors.get(city, "k"), edgecolor="k", zorder=5, s=40)
        if documented:
            ax.scatter([], [], color="w", edgecolor="k", label="documented")
        log = wide_spread([grouped.median().iloc[-1] for grouped in by_city.values()])
        if log:  # one large pool would flatten every city: a log axis keeps them apart
            log_firms_axis(ax)
        ax.set(ylabel="AI firms" + (" (log scale)" if log else ""), title=title)
        year_axis(ax)
        if not log:
            value_axis(ax, broken=False)
        ax.legend(fontsize=8, ncol=2)
        ax.grid(alpha=0.3, which="both" if log else "major")
        return fig
    ncols = 4
    nrows = -(-len(cities) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.3 * nrows + 0.6), sharex=True, sharey=True,
                             squeeze=False, layout="constrained")
    for ax, city in zip(axes.flat, cities, strict=False):
        for other in cities:
            if other != city:
                _draw_city_counts(ax, by_city[other], "0.82", None, band=False, linewidth=0.8)
        _draw_city_counts(ax, by_city[city], INK, None, linewidth=2)
        if city in documented:
            rows = documented[city]
            ax.scatter(rows.year, rows.firms, color=INK, edgecolor="k", zorder=5, s=25)
        final = by_city[city].median()
        ax.set_title(f"{city}: {final.iloc[-1]:,.0f} in {final.index[-1]:g}", fontsize=9, pad=3)
        log_firms_axis(ax)
        ax.grid(alpha=0.3, which="both", linewidth=0.4)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(cities):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("AI firms (log)", fontsize=8)
    for ax in axes[-1, :]:
        year_axis(ax)
        ax.xaxis.label.set_fontsize(8)
    fig.suptitle(f"{title}; grey: the other cities" + ("; dots: documented" if documented else ""), fontsize=10)
    return fig


def plot_shares(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Mean share of all firms per city over time (stacked)."""
    totals = city_totals(tables["firms"])
    totals["share"] = totals.firms / totals.groupby(["replication", "year"]).firms.transform("sum")
    mean = totals.groupby(["year", "city"], sort=False)["share"].mean().unstack("city")[cities_of(tables)]
    if counts_layout(mean.shape[1]) == "leaders":  # the largest at the end, the rest summed
        kept = leaders(mean.iloc[-1].to_dict())
        mean = mean[kept].assign(**{"other cities": mean.drop(columns=kept).sum(axis=1)})
    colors = {**city_colors(list(mean.columns)), "other cities": "0.8"}
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.stackplot(mean.index, mean.T.values, labels=mean.columns, colors=[colors[c] for c in mean.columns], alpha=0.85)
    ax.set(ylabel="share of all firms", ylim=(0, 1), title="Shares of firms (mean over replications)")
    year_axis(ax)
    share_axis(ax)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def growth_accounting(firms: pd.DataFrame) -> pd.DataFrame:
    """Per city, mean over replications of the run's births, deaths, moves in and out, and net change."""
    per_rep = firms.groupby(["replication", "city"], sort=False)[["births", "deaths", "moves_in", "moves_out"]].sum()
    out = per_rep.groupby("city", sort=False).mean()
    out["net"] = out.births - out.deaths + out.moves_in - out.moves_out
    return out


def plot_growth_accounting(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Where each city's change comes from: births − deaths (positive-sum) and moves in − out (zero-sum)."""
    acc = growth_accounting(tables["firms"])
    title = "Growth accounting" + (_LARGEST.format(MAX_PANELS - 1, "firms.csv") if len(acc) > MAX_PANELS else "")
    acc = fold_others(acc, final_firms(tables), how="mean")
    fig, ax = plt.subplots(figsize=(min(PAGE_WIDTH, max(6, 0.9 * len(acc) + 2)), 5))
    draw_growth_accounting(ax, acc)
    ax.set(ylabel="firms over the run (mean over replications)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def draw_growth_accounting(ax: plt.Axes, acc: pd.DataFrame) -> None:
    """Stacked bars per row of ``acc`` (births, moves in up; deaths, moves out down) and the net change as a diamond.

    Args:
        ax: where to draw.
        acc: one row per city with columns ``births, deaths, moves_in, moves_out, net`` (levels or differences).
    """
    x = np.arange(len(acc))
    parts = [("births", acc.births), ("moves in", acc.moves_in), ("deaths", -acc.deaths), ("moves out", -acc.moves_out)]
    pos = np.zeros(len(acc))
    neg = np.zeros(len(acc))
    for label, values in parts:
        values = values.to_numpy(dtype=float)
        base = np.where(values >= 0, pos, neg)
        ax.bar(x, values, bottom=base, color=FLOW_COLORS[label], label=label, width=0.7)
        pos += np.clip(values, 0, None)
        neg += np.clip(values, None, 0)
    ax.scatter(x, acc.net, color="k", marker="D", zorder=5, label="net change")
    ax.axhline(0, color="k", linewidth=0.8)
    ax.set_xticks(x, acc.index, rotation=30, ha="right")


def plot_spending(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Cumulative policy spending per city, by lever (mean over replications)."""
    cities = tables["cities"]
    spend_cols = [f"spend_{lever}" for lever in LEVERS]
    per_rep = cities.groupby(["replication", "city"], sort=False)[spend_cols].sum()
    mean = per_rep.groupby("city", sort=False).mean()
    title = "Policy spending by lever"
    if len(mean) > MAX_PANELS:
        title += f"\nthe {MAX_PANELS - 1} cities that spent most; every city is in cities.csv"
        mean = fold_others(mean, mean.sum(axis=1), how="mean")
    fig, ax = plt.subplots(figsize=(min(PAGE_WIDTH, max(6, 0.9 * len(mean) + 2)), 5))
    draw_spending(ax, mean.rename(columns=lambda c: c.removeprefix("spend_")))
    ax.set(ylabel="spent over the run (100 M yuan, mean over replications)", title=title)
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1), title="lever", title_fontsize=8)
    fig.tight_layout()
    return fig


def draw_spending(ax: plt.Axes, spend: pd.DataFrame) -> None:
    """Stacked bars of spending per row of ``spend`` (one column per lever), in the levers' colours."""
    bottom = np.zeros(len(spend))
    for lever in LEVERS:
        values = spend[lever].to_numpy(dtype=float)
        ax.bar(list(spend.index), values, bottom=bottom, label=lever, color=LEVER_COLORS[lever], width=0.7)
        bottom += values


_LARGEST = "\nthe {} largest cities at the end; every city is in {}"


def _counts_leaders(by_city: dict, documented: dict, title: str) -> plt.Figure:
    """Counts of many cities in one panel: the ``MAX_LINES`` largest at the end in colour, the rest in grey."""
    largest = leaders({city: grouped.median().iloc[-1] for city, grouped in by_city.items()})
    colors = city_colors(largest)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for city, grouped in by_city.items():
        if city not in largest:
            _draw_city_counts(ax, grouped, "0.8", None, band=False, linewidth=0.7)
    for city in largest:
        _draw_city_counts(ax, by_city[city], colors[city], city)
        if city in documented:
            rows = documented[city]
            ax.scatter(rows.year, rows.firms, color=colors[city], edgecolor="k", zorder=5, s=30)
    ax.plot([], [], color="0.8", label=f"the other {len(by_city) - len(largest)} cities")
    log_firms_axis(ax)
    year_axis(ax)
    ax.set(ylabel="AI firms (log scale)",
           title=f"{title}\nthe {len(largest)} largest at the end in colour; every city is in cities.csv")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    ax.grid(alpha=0.3, which="both", linewidth=0.4)
    return fig


def plot_flows(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Origin–destination matrix of relocations (mean over replications).

    With more than ``MAX_PANELS`` cities, the ``MAX_PANELS - 1`` with most moves in and out are shown
    and the others summed as "other cities" (every pair is in flows.csv).
    """
    cities = cities_of(tables)
    flows = tables["flows"]
    n_rep = max(tables["metrics"]["replication"].nunique(), 1)
    if len(cities) > MAX_PANELS:
        moved = (flows.groupby("origin").firms.sum().reindex(cities, fill_value=0)
                 + flows.groupby("destination").firms.sum().reindex(cities, fill_value=0))
        kept = list(moved.sort_values(ascending=False, kind="stable").index[:MAX_PANELS - 1])
        other = "other cities"
        flows = flows.assign(origin=flows.origin.where(flows.origin.isin(kept), other),
                             destination=flows.destination.where(flows.destination.isin(kept), other))
        cities = [*kept, other]
    matrix = np.zeros((len(cities), len(cities)))
    index = {c: i for i, c in enumerate(cities)}
    np.add.at(matrix, (flows.origin.map(index).to_numpy(dtype=int), flows.destination.map(index).to_numpy(dtype=int)),
              flows.firms.to_numpy(dtype=float) / n_rep)
    fig, ax = plt.subplots(figsize=(max(5, 0.5 * len(cities) + 3),) * 2, layout="constrained")
    image = ax.imshow(matrix, cmap="viridis")
    ax.set_xticks(range(len(cities)), cities, rotation=45, ha="right")
    ax.set_yticks(range(len(cities)), cities)
    ax.set(xlabel="destination", ylabel="origin")
    fig.suptitle("Relocations over the run (mean over replications)")  # above the colour bar too
    fig.colorbar(image, ax=ax, shrink=0.8, label="firms moved, origin → destination")
    return fig


def final_firms(tables: dict[str, pd.DataFrame]) -> pd.Series:
    """Firms per city in the last year (mean over replications), in the scenario's city order."""
    totals = city_totals(tables["firms"])
    return totals[totals.year == totals.year.max()].groupby("city", sort=False)["firms"].mean()


def plot_map(tables: dict[str, pd.DataFrame], coordinates: dict[str, tuple[float, float]],
             figsize: tuple[float, float] = (8.0, 6.0)) -> plt.Figure:
    """Cities on a map with outlines, circle area proportional to final firms (mean over replications).

    The run's ``map`` figure and the page's live map (:func:`sim.app.views.map_view`) both draw with this.
    """
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    draw_map(ax, final_firms(tables).to_dict(), coordinates)
    ax.set_title("Final firms by city (mean over replications)")
    return fig


def plot_lock_in(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Bar chart of the lock-in probability."""
    metrics = tables["metrics"]
    final = metrics[metrics.step == metrics.step.max()]
    p = pd.Series(lock_in(final["leader"], cities_of(tables)))
    title = "Which city ends first (lock-in probability)"
    if len(p) > MAX_PANELS:
        title += f"\nthe {MAX_PANELS - 1} cities that lead most often; every leader is in metrics.csv"
        p = fold_others(p.to_frame("share"), p)["share"]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(p)), 4))
    bars = ax.bar(list(p.index), p.to_numpy(), color=INK)
    ax.bar_label(bars, labels=[percent(v) for v in p], fontsize=8)
    ax.set(ylim=(0, 1.08), yticks=np.linspace(0, 1, 6), ylabel="share of replications the city ends first",
           title=title)
    share_axis(ax)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def save_run_figures(tables: dict[str, pd.DataFrame], folder: Path,
                     coordinates: dict[str, tuple[float, float]],
                     observed: pd.DataFrame | None = None) -> list[Path]:
    """Draw every run figure into ``folder`` (PNG and SVG); returns the paths written."""
    figures: dict[str, Callable[[], plt.Figure]] = {
        "counts": lambda: plot_counts(tables, observed),
        "flows": lambda: plot_flows(tables),
        "growth_accounting": lambda: plot_growth_accounting(tables),
        "shares": lambda: plot_shares(tables),
        "spending": lambda: plot_spending(tables),
        "lock_in": lambda: plot_lock_in(tables),
        "map": lambda: plot_map(tables, coordinates),
    }  # in an order that gives the two drawing processes similar work
    return save_figures(figures, folder)
