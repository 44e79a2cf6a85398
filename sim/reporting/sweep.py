"""Writing a sweep's folder (tables, figures, manifest); figures drawn from its tables (summary.csv, metrics.csv).

- :func:`plot_envelopes`: concentration over time per point (median and 5–95% band over replications);
- :func:`plot_lock_in_by_point`: which city ends first, per point (the lock-in probability);
- :func:`plot_phase`: mean final HHI over two swept parameters (where the system tips to winner-take-all).

Each returns a matplotlib Figure; :func:`save_sweep_figures` writes them as PNG and SVG.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize

from sim.experiments.executors import Executor, ExecutorSpec, open_executor
from sim.experiments.store import STORE_FILE, RunStore
from sim.experiments.sweep import SEED_RULE, SweepPlan, SweepReport, compute_sweep, sweep_tables
from sim.model.metrics import BAND, lock_in
from sim.reporting.figures import _city_colors, plt, save_figure  # plt: pyplot on the files-only backend
from sim.reporting.files import INCOMPLETE, manifest, output_folder, write_csv, write_json

MAX_BANDS = 8
"""With more points than this, envelopes show medians only (bands would hide each other)."""

MAX_TICK_LABELS = 20
"""With more points than this, bars are labelled by point number instead of by values."""

MAX_ANNOTATED_CELLS = 144
"""Phase-diagram cells are annotated with their value up to this many cells."""

OUTCOME_LABELS = {"hhi": "HHI", "top1_share": "top-1 share", "gini": "Gini", "entropy": "entropy (nats)"}


def _points(summary: pd.DataFrame, paths: Sequence[str]) -> pd.DataFrame:
    """One row per point: its swept values, indexed by point."""
    return summary.drop_duplicates("point").set_index("point")[list(paths)]


def _short(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _label(row: pd.Series) -> str:
    return ", ".join(f"{_short(p)}={v:.4g}" if isinstance(v, float) else f"{_short(p)}={v}" for p, v in row.items())


def numeric_paths(summary: pd.DataFrame, paths: Sequence[str]) -> list[str]:
    """Swept paths whose values are numbers taking at least two values."""
    return [p for p in paths if pd.api.types.is_numeric_dtype(summary[p]) and not pd.api.types.is_bool_dtype(summary[p])
            and summary[p].nunique() >= 2]


def plot_envelopes(summary: pd.DataFrame, metrics: pd.DataFrame, paths: Sequence[str],
                   outcomes: Sequence[str] = ("hhi", "top1_share")) -> plt.Figure:
    """Outcomes over time per point: median over replications, with a 5–95% band for up to MAX_BANDS points.

    Points are coloured by the first numeric swept parameter (with a colour bar) or else in turn.
    """
    points = _points(summary, paths)
    numeric = numeric_paths(summary, paths)
    fig, axes = plt.subplots(1, len(outcomes), figsize=(6.5 * len(outcomes), 4.8), squeeze=False)
    cmap = plt.get_cmap("viridis")
    if numeric:
        norm = Normalize(points[numeric[0]].min(), points[numeric[0]].max())
        colors = {p: cmap(norm(v)) for p, v in points[numeric[0]].items()}
    else:
        cycle = plt.get_cmap("tab10")
        colors = {p: cycle(i % cycle.N) for i, p in enumerate(points.index)}
    bands = len(points) <= MAX_BANDS
    for ax, outcome in zip(axes[0], outcomes, strict=True):
        for point, rows in metrics.groupby("point", sort=True):
            by_year = rows.groupby("year")[outcome]
            mid = by_year.median()
            if bands:
                ax.fill_between(mid.index, by_year.quantile(BAND[0]).values, by_year.quantile(BAND[1]).values,
                                color=colors[point], alpha=0.15, linewidth=0)
            ax.plot(mid.index, mid.values, color=colors[point], linewidth=1.5 if bands else 0.8,
                    label=_label(points.loc[point]) if bands and paths else None)
        ax.set(xlabel="year", ylabel=OUTCOME_LABELS.get(outcome, outcome),
               title=f"{OUTCOME_LABELS.get(outcome, outcome)} per point (median"
                     + (", 5–95% band)" if bands else ")"))
        ax.grid(alpha=0.3)
    if bands and paths:
        axes[0][-1].legend(fontsize=7, loc="best")
    if numeric and not bands:
        fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes[0].tolist(), label=numeric[0])
    return fig


def lock_in_by_point(summary: pd.DataFrame) -> pd.DataFrame:
    """Share of a point's (successful) replications each city ends first: rows points, columns cities."""
    ok = summary[summary.status == "ok"]
    cities = sorted(ok.leader.unique())
    return pd.DataFrame.from_dict({point: lock_in(rows.leader, cities) for point, rows in ok.groupby("point")},
                                  orient="index").rename_axis(index="point", columns="leader")


def plot_lock_in_by_point(summary: pd.DataFrame, paths: Sequence[str]) -> plt.Figure:
    """Stacked bars per point: the probability that each city ends first."""
    p = lock_in_by_point(summary)
    points = _points(summary, paths).loc[p.index]
    colors = _city_colors(list(p.columns))
    x = np.arange(len(p))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(p) + 3), 4.8))
    bottom = np.zeros(len(p))
    for city in p.columns:
        ax.bar(x, p[city].to_numpy(), bottom=bottom, color=colors[city], label=city, width=0.8)
        bottom += p[city].to_numpy()
    if paths and len(p) <= MAX_TICK_LABELS:
        ax.set_xticks(x, [_label(row) for _, row in points.iterrows()], rotation=35, ha="right", fontsize=8)
    else:
        ax.set_xticks(x, [str(i) for i in p.index], fontsize=7)
        ax.set_xlabel("point (values in summary.csv)")
    ax.set(ylim=(0, 1), ylabel="share of replications", title="Which city ends first, per point (lock-in probability)")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def plot_phase(summary: pd.DataFrame, metrics: pd.DataFrame, x: str, y: str, outcome: str = "hhi") -> plt.Figure:
    """Mean final ``outcome`` over two swept parameters (averaged over replications and any other swept ones).

    A full grid is drawn as cells, a sample as points with interpolated contours.
    The colour scale of HHI starts at 1/n (n non-pool cities evenly sized; 1 is one city
    holding all) and ends at the largest value found, so that structure within the swept
    region shows; cells are annotated with their values.
    """
    ok = summary[summary.status == "ok"]
    cells = ok.groupby([x, y])[outcome].mean()
    xs, ys = np.sort(ok[x].unique()), np.sort(ok[y].unique())
    n_cities = int(metrics["cities"].iloc[0])
    lo = 1 / n_cities if outcome == "hhi" else min(cells.min(), 0.0)
    norm = Normalize(lo, max(cells.max(), lo + 1e-9))
    fig, ax = plt.subplots(figsize=(7, 5.5))
    if len(cells) == len(xs) * len(ys):  # a full grid
        grid = cells.unstack(y).reindex(index=xs, columns=ys).to_numpy().T
        mesh = ax.pcolormesh(_edges(xs), _edges(ys), grid, cmap="magma", norm=norm)
        if grid.size <= MAX_ANNOTATED_CELLS:
            for (j, i), value in np.ndenumerate(grid):
                ax.text(xs[i], ys[j], f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="w" if norm(value) < 0.6 else "k")
        if len(xs) >= 2 and len(ys) >= 2:
            ax.contour(xs, ys, grid, levels=np.linspace(norm.vmin, norm.vmax, 6)[1:-1], colors="w",
                       linewidths=0.6, alpha=0.7)
    else:  # a sample
        px, py = cells.index.get_level_values(x), cells.index.get_level_values(y)
        if len(cells) >= 4:
            ax.tricontourf(px, py, cells.to_numpy(), levels=12, cmap="magma", norm=norm)
        mesh = ax.scatter(px, py, c=cells.to_numpy(), cmap="magma", norm=norm, edgecolor="w", s=40)
    scale = f" (even split: {lo:.2f}; one city: 1)" if outcome == "hhi" else ""
    fig.colorbar(mesh, ax=ax, label=f"mean final {OUTCOME_LABELS.get(outcome, outcome)}{scale}")
    ax.set(xlabel=x, ylabel=y, title=f"Concentration at the end: mean final {OUTCOME_LABELS.get(outcome, outcome)}")
    fig.tight_layout()
    return fig


def _edges(values: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centres (midpoints; the outer cells as wide as their neighbours)."""
    values = values.astype(float)
    if len(values) == 1:
        return np.array([values[0] - 0.5, values[0] + 0.5])
    mid = (values[1:] + values[:-1]) / 2
    return np.r_[2 * values[0] - mid[0], mid, 2 * values[-1] - mid[-1]]


def save_sweep_figures(summary: pd.DataFrame, metrics: pd.DataFrame, paths: Sequence[str], folder: Path) -> list[Path]:
    """Draw the sweep's figures into ``folder`` (PNG and SVG); returns the paths written.

    ``envelopes`` and ``lock_in_by_point`` always; ``phase`` when at least two numeric
    parameters were swept (the first two).
    """
    written = save_figure(plot_envelopes(summary, metrics, paths), folder, "envelopes")
    written += save_figure(plot_lock_in_by_point(summary, paths), folder, "lock_in_by_point")
    numeric = numeric_paths(summary, paths)
    if len(numeric) >= 2:
        written += save_figure(plot_phase(summary, metrics, numeric[0], numeric[1]), folder, "phase")
    return written


def run_sweep(plan: SweepPlan, out: Path, executor: str | ExecutorSpec | Executor = "processes",
              progress: bool = True, figures: bool = True) -> SweepReport:
    """Run (or resume) a sweep into ``out`` and write its tables, figures and manifest.

    Runs already in ``out``'s store are not recomputed; each new run is committed
    as it finishes (:func:`sim.experiments.sweep.compute_sweep`).

    Args:
        plan: the validated sweep.
        out: the output folder (its store is ``sweep.sqlite``).
        executor: where the runs go (see :mod:`sim.experiments.executors`).
        progress: show a progress bar with rate and ETA.
        figures: draw the ensemble figures.

    Raises:
        StoreError: ``out`` holds something else or a different sweep.
        ExecutorError: the executor cannot be used (e.g. an unreachable Dask scheduler).
    """
    start = time.perf_counter()  # the executor's start-up (a pool, a cluster) counts
    with open_executor(executor) as opened, ExitStack() as stack:
        open_store = lambda: RunStore(out, plan.definition(), plan.command(), ignore=(INCOMPLETE,))  # noqa: E731
        if not out.exists():  # a new folder appears already marked INCOMPLETE
            stack.enter_context(output_folder(out))
            store = stack.enter_context(open_store())
        else:  # an existing one is checked before it is marked
            store = stack.enter_context(open_store())
            stack.enter_context(output_folder(out))
        resumed, ran = compute_sweep(plan, store, opened, progress)
        elapsed = time.perf_counter() - start
        runs = list(store.runs())
        failed = sum(run.status == "failed" for run in runs)
        files = write_sweep_tables(plan, runs, out, figures)
        write_json(out / "manifest.json", manifest(
            out, files, scenario_file=plan.source, scenario_name=plan.name, definition=plan.definition(),
            seed=plan.seed, seed_rule=SEED_RULE, replications=plan.replications, runs=plan.n_runs,
            resumed=resumed, ran=ran, failed=failed, sessions=store.session, store=STORE_FILE,
            executor=opened.describe(), wall_time_s=elapsed, complete=failed == 0))
    return SweepReport(plan.n_runs, resumed, ran, failed, elapsed, opened.describe(), [*files, "manifest.json"])


def write_sweep_tables(plan: SweepPlan, runs: list[Any], out: Path, figures: bool) -> list[str]:
    """Write the sweep's CSV tables (and figures); returns the files written, relative to ``out``."""
    tables = sweep_tables(plan, runs)
    written = []
    for name, frame in tables.items():
        write_csv(out / f"{name}.csv", frame)
        written.append(f"{name}.csv")
    if figures and len(tables["metrics"]):
        for path in save_sweep_figures(tables["summary"], tables["metrics"], plan.paths, out / "figures"):
            written.append(str(path.relative_to(out)))
    return written
