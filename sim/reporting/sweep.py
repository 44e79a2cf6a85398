"""Writing a sweep's folder (tables, figures, manifest); figures drawn from its tables (summary.csv, metrics.csv).

- :func:`plot_envelopes`: concentration over time per point (median and percentile band over replications);
- :func:`plot_lock_in_by_point`: which city ends first, per point (the lock-in probability);
- :func:`plot_phase`: mean final HHI over two swept parameters (where the system tips to winner-take-all).

Each returns a matplotlib Figure; :func:`save_sweep_figures` writes them as PNG and SVG.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from scipy import stats

from sim.experiments.store import STORE_FILE, RunStore
from sim.experiments.sweep import SEED_RULE, SweepPlan, SweepReport
from sim.experiments.sweep_tables import sweep_tables
from sim.model.metrics import BAND, lock_in
from sim.reporting.files import manifest, run_in_two, write_csv, write_json
from sim.reporting.style import (  # plt: pyplot, files-only backend
    BAND_NAME,
    PAGE_WIDTH,
    city_colors,
    figure_jobs,
    plt,
    save_figures,
    share_axis,
    value_axis,
    year_axis,
)
from sim.reporting.text import number, path_label

MAX_BANDS = 8
"""With more points than this, envelopes show medians only (bands would hide each other)."""

MAX_TICK_LABELS = 20
"""With more points than this, bars are labelled by point number instead of by values."""

MAX_ANNOTATED_CELLS = 144
"""Phase-diagram cells are annotated with their value up to this many cells."""

OUTCOME_LABELS = {"hhi": "HHI (0–1)", "top1_share": "top-1 share", "gini": "Gini (0–1)", "entropy": "entropy (nats)"}
SHARES = ("top1_share",)
"""Outcomes that are shares of firms (their axes in percent)."""


def _points(summary: pd.DataFrame, paths: Sequence[str]) -> pd.DataFrame:
    """One row per point: its swept values, indexed by point."""
    return summary.drop_duplicates("point").set_index("point")[list(paths)]


def _short(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _label(row: pd.Series) -> str:
    return ", ".join(f"{_short(p)}={number(v, 4)}" if isinstance(v, float) else f"{_short(p)}={v}" for p, v in row.items())


def numeric_paths(summary: pd.DataFrame, paths: Sequence[str]) -> list[str]:
    """Swept paths whose values are numbers taking at least two values."""
    return [p for p in paths if pd.api.types.is_numeric_dtype(summary[p]) and not pd.api.types.is_bool_dtype(summary[p])
            and summary[p].nunique() >= 2]


LINESTYLES = ("-", "--", ":", "-.")
"""Line styles that tell points apart when colour alone cannot."""

MAX_DISTINCT = 10 * len(LINESTYLES)
"""Up to this many points each get a colour and style of their own; more are coloured by a parameter's value."""


def point_styles(points: pd.DataFrame) -> dict[Any, tuple[tuple[float, ...], str]] | None:
    """A colour and line style per point, no two points alike; None if there are more than ``MAX_DISTINCT`` points.

    The first swept parameter's values get colours (in order, light to dark) and the
    combinations of the others line styles when that tells every point apart
    (up to 4 combinations); otherwise each point gets the next (colour, style) pair.
    """
    if len(points) > MAX_DISTINCT:
        return None
    first, rest = (points.iloc[:, 0], points.iloc[:, 1:]) if len(points.columns) else (None, None)
    if first is not None:
        levels = list(dict.fromkeys(sorted(first.unique(), key=str) if first.dtype == object else sorted(first.unique())))
        combos = list(dict.fromkeys(map(tuple, rest.to_numpy().tolist())))
        if len(levels) <= 10 and len(combos) <= len(LINESTYLES):
            cmap = plt.get_cmap("viridis")
            shade = {v: cmap(0.85 * i / max(len(levels) - 1, 1)) for i, v in enumerate(levels)}
            return {p: (shade[first[p]], LINESTYLES[combos.index(tuple(rest.loc[p].tolist()))]) for p in points.index}
    cycle = plt.get_cmap("tab10")
    return {p: (cycle(i % 10), LINESTYLES[i // 10]) for i, p in enumerate(points.index)}


def driver(points: pd.DataFrame, values: pd.Series, numeric: Sequence[str]) -> tuple[str | None, float]:
    """The swept input that moves ``values`` (one per point) most: the largest |Spearman ρ| over ``numeric``.

    Returns:
        The input's path and ρ, or ``(None, nan)`` when no input varies with the values.
    """
    best, rho = None, float("nan")
    for path in numeric:
        x, y = points[path].reindex(values.index).to_numpy(dtype=float), values.to_numpy(dtype=float)
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        r = float(stats.spearmanr(x, y).statistic)
        if np.isfinite(r) and (best is None or abs(r) > abs(rho)):
            best, rho = path, r
    return best, rho


def _final(metrics: pd.DataFrame, outcome: str) -> pd.Series:
    """Per point, the median over replications of ``outcome`` in the last year."""
    last = metrics[metrics.year == metrics.year.max()]
    return last.groupby("point")[outcome].median()


def plot_envelopes(summary: pd.DataFrame, metrics: pd.DataFrame, paths: Sequence[str],
                   outcomes: Sequence[str] = ("hhi", "top1_share")) -> plt.Figure:
    """Outcomes over time per point: median over replications, with a percentile band for up to MAX_BANDS points.

    Up to ``MAX_DISTINCT`` points, every point has its own colour and line style
    (:func:`point_styles`) and a legend entry with its values. With more, each panel's
    lines are coloured by the swept input that moves that panel's final value most
    (:func:`driver`, named with its Spearman ρ on the colour bar), or by the final
    value itself when no input does; single points are told apart in summary.csv.
    """
    points = _points(summary, paths)
    numeric = numeric_paths(summary, paths)
    fig, axes = plt.subplots(1, len(outcomes), figsize=(6.5 * len(outcomes), 4.8), squeeze=False,
                             layout="constrained")
    styles = point_styles(points)
    bands = len(points) <= MAX_BANDS
    for ax, outcome in zip(axes[0], outcomes, strict=True):
        name = OUTCOME_LABELS.get(outcome, outcome)
        looks = styles
        if looks is None:
            finals = _final(metrics, outcome)
            key, rho = driver(points, finals, numeric)
            values = points[key] if key else finals
            norm = Normalize(float(values.min()), float(values.max()))
            cmap = plt.get_cmap("viridis")
            looks = {p: (cmap(norm(values[p])) if p in values.index else "0.5", "-") for p in points.index}
            label = (f"{path_label(key)}\nSpearman ρ with the final {name}: {rho:+.2f}" if key else
                     f"final {name} (no swept input moves it)")
            bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax)
            bar.set_label(label, fontsize=8)
            if not key and outcome in SHARES:
                share_axis(bar.ax)
        for point, rows in metrics.groupby("point", sort=True):
            by_year = rows.groupby("year")[outcome]
            mid = by_year.median()
            color, style = looks[point]
            if bands:
                ax.fill_between(mid.index, by_year.quantile(BAND[0]).values, by_year.quantile(BAND[1]).values,
                                color=color, alpha=0.15, linewidth=0)
            ax.plot(mid.index, mid.values, color=color, linestyle=style, linewidth=1.6 if bands else 1.0,
                    label=_label(points.loc[point]) if paths and styles is not None else None)
        year_axis(ax)
        ax.set(ylabel=name,
               title=f"{name} per point (median" + (f"; shaded: {BAND_NAME})" if bands else " over replications)"))
        value_axis(ax)
        if outcome in SHARES:
            share_axis(ax)
        ax.grid(alpha=0.3)
    if styles is None:
        fig.suptitle(f"{len(points)} points, each panel coloured by the swept input that moves its final value most; "
                     "single points are in summary.csv", fontsize=10)
    elif paths:
        axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False,
                           handlelength=3, ncol=1 if len(points) <= 20 else 2)
    return fig


def lock_in_by_point(summary: pd.DataFrame) -> pd.DataFrame:
    """Share of a point's (successful) replications each city ends first: rows points, columns cities."""
    ok = summary[summary.status == "ok"]
    cities = sorted(ok.leader.unique())
    return pd.DataFrame.from_dict({point: lock_in(rows.leader, cities) for point, rows in ok.groupby("point")},
                                  orient="index").rename_axis(index="point", columns="leader")


def plot_lock_in_by_point(summary: pd.DataFrame, paths: Sequence[str]) -> plt.Figure:
    """Stacked bars per point: the probability that each city ends first.

    Up to ``MAX_TICK_LABELS`` points each bar is labelled with its values. With more, the
    bars are ordered by the swept input that moves the most frequent leader's probability
    most (:func:`driver`) and the axis shows that input's values; the figure keeps to a page's width.
    """
    p = lock_in_by_point(summary)
    points = _points(summary, paths).loc[p.index]
    colors = city_colors(list(p.columns))
    title = "Which city ends first, per point (lock-in probability)"
    if p.shape[1] == 1:
        title += f"\n{p.columns[0]} ends first in every replication of every point"
    order, key = list(p.index), None
    if len(p) > MAX_TICK_LABELS:
        top = p.mean().idxmax()
        key, rho = driver(points, p[top], numeric_paths(summary, paths))
        if key is None:
            key, rho = next(iter(numeric_paths(summary, paths)), None), float("nan")
        if key is not None:
            order = list(points[key].sort_values(kind="stable").index)
            if np.isfinite(rho):
                title += f"\nordered by the input that moves {top}'s probability most (Spearman ρ {rho:+.2f})"
    p = p.loc[order]
    x = np.arange(len(p))
    fig, ax = plt.subplots(figsize=(min(PAGE_WIDTH - 2, max(6.0, 0.45 * len(p) + 3)), 4.8))
    bottom = np.zeros(len(p))
    for city in p.columns:
        ax.bar(x, p[city].to_numpy(), bottom=bottom, color=colors[city], label=city, width=0.8)
        bottom += p[city].to_numpy()
    if paths and len(p) <= MAX_TICK_LABELS:
        ax.set_xticks(x, [_label(row) for _, row in points.loc[order].iterrows()], rotation=35, ha="right", fontsize=8)
    elif key is not None:
        shown = np.unique(np.linspace(0, len(p) - 1, min(len(p), 11)).round().astype(int))
        ax.set_xticks(shown, [number(points.loc[order[i], key]) for i in shown], fontsize=8)
        ax.set_xlabel(f"points ordered by {path_label(key)}; every point in summary.csv")
    else:
        ax.set_xticks(x, [str(i) for i in p.index], fontsize=7)
        ax.set_xlabel("point (values in summary.csv)")
    ax.set(ylim=(0, 1), ylabel="share of replications the city ends first", title=title)
    share_axis(ax)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5), title="first at the end", title_fontsize=8)
    fig.tight_layout()
    return fig


def label_decimals(values: np.ndarray, most: int = 4) -> int:
    """Decimals (2 to ``most``) at which values that differ by at least ``10**-most`` get different labels."""
    distinct = np.unique(np.round(np.asarray(values, dtype=float)[np.isfinite(values)], most))
    for digits in range(2, most):
        if len(np.unique(np.round(distinct, digits))) == len(distinct):
            return digits
    return most


def _value_text(value: float) -> str:
    return number(value, 4)


def plot_phase(summary: pd.DataFrame, metrics: pd.DataFrame, x: str, y: str, outcome: str = "hhi") -> plt.Figure:
    """Mean final ``outcome`` over two swept parameters (averaged over replications and any other swept ones).

    A full grid is drawn as equal cells, one per swept pair, ticked with the swept
    values only (they need not be evenly spaced), each annotated with its value to as
    many decimals as tell differently coloured cells apart (:func:`label_decimals`).
    A sample is drawn as its points over a surface interpolated between them (said so
    on the figure), within the sampled ranges. The colour scale of HHI starts at 1/n
    (n non-pool cities evenly sized; 1 is one city holding all) and ends at the largest
    value found, so that structure within the swept region shows.
    """
    ok = summary[summary.status == "ok"]
    cells = ok.groupby([x, y])[outcome].mean()
    xs, ys = np.sort(ok[x].unique()), np.sort(ok[y].unique())
    n_cities = int(metrics["cities"].iloc[0])
    lo = 1 / n_cities if outcome == "hhi" else min(cells.min(), 0.0)
    norm = Normalize(lo, max(cells.max(), lo + 1e-9))
    name = OUTCOME_LABELS.get(outcome, outcome)
    fig, ax = plt.subplots(figsize=(7, 5.5), layout="constrained")
    if len(cells) == len(xs) * len(ys):  # a full grid: one equal cell per swept pair
        grid = cells.unstack(y).reindex(index=xs, columns=ys).to_numpy().T
        mesh = ax.pcolormesh(np.arange(len(xs) + 1) - 0.5, np.arange(len(ys) + 1) - 0.5, grid, cmap="magma",
                             norm=norm)
        ax.set_xticks(range(len(xs)), [_value_text(v) for v in xs])
        ax.set_yticks(range(len(ys)), [_value_text(v) for v in ys])
        if grid.size <= MAX_ANNOTATED_CELLS:
            digits = label_decimals(grid.ravel())
            for (j, i), value in np.ndenumerate(grid):
                ax.text(i, j, f"{value:.{digits}f}", ha="center", va="center", fontsize=7,
                        color="w" if norm(value) < 0.6 else "k")
        title = f"Concentration at the end: mean final {name}"
    else:  # a sample: the points, over a surface interpolated between them
        px, py = cells.index.get_level_values(x), cells.index.get_level_values(y)
        if len(cells) >= 4:
            ax.tricontourf(px, py, cells.to_numpy(), levels=12, cmap="magma", norm=norm)
        mesh = ax.scatter(px, py, c=cells.to_numpy(), cmap="magma", norm=norm, edgecolor="w", s=40, clip_on=False,
                          zorder=3)
        ax.set(xlim=(px.min(), px.max()), ylim=(py.min(), py.max()))
        title = (f"Concentration at the end: mean final {name}\n"
                 "dots: sampled points; shading interpolated between them")
    scale = f" (even split: {lo:.2f}; one city: 1)" if outcome == "hhi" else ""
    fig.colorbar(mesh, ax=ax, label=f"mean final {name}{scale}")
    ax.set(xlabel=path_label(x), ylabel=path_label(y), title=title)
    return fig


def sweep_figures(summary: pd.DataFrame, metrics: pd.DataFrame, paths: Sequence[str]) -> dict[str, Callable[[], plt.Figure]]:
    """The sweep's figures, stem → a function drawing it.

    ``envelopes`` and ``lock_in_by_point`` always; ``phase`` when at least two numeric
    parameters were swept (the first two).
    """
    figures = {"envelopes": lambda: plot_envelopes(summary, metrics, paths),
               "lock_in_by_point": lambda: plot_lock_in_by_point(summary, paths)}
    numeric = numeric_paths(summary, paths)
    if len(numeric) >= 2:
        figures["phase"] = lambda: plot_phase(summary, metrics, numeric[0], numeric[1])
    return figures


def save_sweep_figures(summary: pd.DataFrame, metrics: pd.DataFrame, paths: Sequence[str], folder: Path) -> list[Path]:
    """Draw the sweep's figures (:func:`sweep_figures`) into ``folder`` as PNG and SVG; returns the paths written."""
    return save_figures(sweep_figures(summary, metrics, paths), folder)


def write_sweep(plan: SweepPlan, store: RunStore, out: Path, figures: bool = True, *, resumed: int, ran: int,
                executor: str, wall_time: float) -> SweepReport:
    """Write a computed sweep's tables, figures and manifest (last) into ``out``, its folder and store.

    Args:
        plan: the sweep.
        store: its store, open (:func:`sim.reporting.files.resumable_folder`), holding every finished run.
        out: the folder.
        figures: draw the figures.
        resumed: runs found in the store before this session.
        ran: runs computed in this session (:func:`sim.experiments.sweep.compute_sweep`).
        executor: where they ran.
        wall_time: seconds spent computing, the executor's start-up included.

    Returns:
        How the sweep went, with the files written.
    """
    runs = list(store.runs())
    failed = sum(run.status == "failed" for run in runs)
    files = write_sweep_tables(plan, runs, out, figures)
    write_json(out / "manifest.json", manifest(
        out, files, scenario_file=plan.source, scenario_name=plan.name, definition=plan.definition(),
        seed=plan.seed, seed_rule=SEED_RULE, replications=plan.replications, runs=plan.n_runs,
        resumed=resumed, ran=ran, failed=failed, sessions=store.session, store=STORE_FILE,
        executor=executor, wall_time_s=wall_time, complete=failed == 0))
    return SweepReport(plan.n_runs, resumed, ran, failed, wall_time, executor, [*files, "manifest.json"])


def write_sweep_tables(plan: SweepPlan, runs: list[Any], out: Path, figures: bool) -> list[str]:
    """Write the sweep's CSV tables (and figures), two files at a time; returns the files written, relative to ``out``."""
    tables = sweep_tables(plan, runs)
    drawn = sweep_figures(tables["summary"], tables["metrics"], plan.paths) if figures and len(tables["metrics"]) else {}
    largest_first = sorted(tables, key=lambda name: -len(tables[name]))
    run_in_two([*(lambda name=name: write_csv(out / f"{name}.csv", tables[name]) for name in largest_first),
                *figure_jobs(drawn, out / "figures")])
    return [f"{name}.csv" for name in tables] + [f"figures/{stem}.{ext}" for stem in drawn for ext in ("png", "svg")]
