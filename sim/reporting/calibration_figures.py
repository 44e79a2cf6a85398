"""The figures of a calibration's report: posterior marginals and pairs, forecasts, held-out figures, SBC ranks."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from sim.analysis.abc_smc import Population, weighted_correlation
from sim.inference.identify import RANK_BINS, RANK_DRAWS
from sim.inference.problem import Problem
from sim.inference.results import (
    STRONG_CORRELATION,
)
from sim.model.metrics import band
from sim.reporting.calibration_text import PREDICTIVE
from sim.reporting.palette import HIGHLIGHT, INK
from sim.reporting.text import (
    count,
    fixed,
    number,
    signed,
    span,
)


def plot_marginals(problem: Problem, posterior: Population) -> plt.Figure:
    """Posterior marginals (weighted histograms) against the prior densities, on the sampling scale."""
    prior = problem.prior
    d = len(prior.specs)
    cols = 3
    rows = int(np.ceil(d / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(11, 3 * rows), squeeze=False)
    prior_draws = prior.sample(np.random.default_rng(0), 20000)
    for j, ax in enumerate(axes.ravel()):
        if j >= d:
            ax.axis("off")
            continue
        spec = prior.specs[j]
        bins = np.linspace(prior_draws[:, j].min(), prior_draws[:, j].max(), 31)
        ax.hist(prior_draws[:, j], bins=bins, density=True, histtype="step", color="grey", label="prior")
        ax.hist(posterior.theta[:, j], bins=bins, weights=posterior.weights, density=True, alpha=0.6,
                color=INK, label="posterior")
        name = prior.labels[j]
        ax.set_xlabel(f"log10 {name}" if spec.kind == "loguniform" else name, fontsize=9)
        ax.tick_params(labelsize=8)
        if j % cols == 0:
            ax.set_ylabel("probability density", fontsize=8)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"Posterior marginals (ABC-SMC generation {posterior.generation}, ε = {number(posterior.epsilon)})")
    fig.tight_layout()
    return fig


def plot_pairs(problem: Problem, posterior: Population) -> plt.Figure:
    """Pairwise scatter of the final particles (sampling scale), larger markers for larger weights; correlations above."""
    prior = problem.prior
    d = len(prior.specs)
    corr = weighted_correlation(posterior.theta, posterior.weights)
    fig, axes = plt.subplots(d, d, figsize=(1.2 * d + 1, 1.2 * d + 1))
    size = 200 * posterior.weights / posterior.weights.max()
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if i > j:
                ax.scatter(posterior.theta[:, j], posterior.theta[:, i], s=1 + 4 * size / size.max(), color=INK,
                           linewidths=0, rasterized=True)  # a bitmap inside the SVG: thousands of points stay small
            elif i == j:
                ax.hist(posterior.theta[:, i], bins=20, weights=posterior.weights, color=INK)
            else:
                r = corr[i, j]
                ax.text(0.5, 0.5, signed(r, fixed), ha="center", va="center", transform=ax.transAxes,
                        fontsize=10, color=HIGHLIGHT if abs(r) >= STRONG_CORRELATION else "k")
            if j == 0:
                ax.set_ylabel(prior.labels[i], fontsize=6, rotation=0, ha="right")
            if i == d - 1:
                ax.set_xlabel(prior.labels[j], fontsize=6, rotation=30, ha="right")
    fig.suptitle(f"Posterior pairs (lower), weighted correlations (upper; |r| ≥ {number(STRONG_CORRELATION)} in purple)")
    fig.subplots_adjust(top=0.95, bottom=0.08, left=0.12, right=0.98, hspace=0.08, wspace=0.08)
    return fig


def plot_forecast(values: np.ndarray, city: str, year: int, start_value: float | None) -> plt.Figure:
    """Histogram of a posterior predictive count with its median and 90% predictive interval."""
    lo, mid, hi = band(values)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(values, bins=40, color=INK, alpha=0.8)
    ax.axvline(mid, color="k", label=f"median {count(mid)}")
    ax.axvspan(lo, hi, color="k", alpha=0.1, label=f"{PREDICTIVE} {span(lo, hi, count)}")
    if start_value is not None:
        ax.axvline(start_value, color=HIGHLIGHT, linestyle="--", label=f"documented at the start: {count(start_value)}")
    ax.set(xlabel=f"{city} AI firms in {year}", ylabel="posterior predictive draws",
           title=f"Forecast: {city} {year} (not a calibration target)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_validation(validation: pd.DataFrame) -> plt.Figure | None:
    """Each held-out number against its documented value: the predictive median and 90% interval as relative errors.

    One row per figure with a documented value; 0 is the documented value. None when there is no such figure.
    """
    rows = validation[validation.documented.notna() & validation["median"].notna()]
    if rows.empty:
        return None
    rel = lambda column: 100 * (rows[column].to_numpy(dtype=float) / rows.documented.to_numpy(dtype=float) - 1)  # noqa: E731
    y = np.arange(len(rows))[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(rows) + 1.6))
    inside = (rows.verdict == "inside").to_numpy()
    for flag, color, label in ((True, INK, "90% predictive interval holds the documented value"),
                               (False, HIGHLIGHT, "90% predictive interval misses it")):
        keep = inside == flag
        if keep.any():
            mid, lo, hi = rel("median")[keep], rel("lo")[keep], rel("hi")[keep]
            ax.errorbar(mid, y[keep], xerr=[mid - lo, hi - mid], fmt="o", color=color, capsize=3, label=label)
    ax.axvline(0, color="k", linewidth=1)
    ax.set_yticks(y, [f"{f} ({m})" for f, m in zip(rows.figure, rows.model_time, strict=True)], fontsize=8)
    ax.set(xlabel="model against the documented value (%; 0 = documented)",
           title="Held-out figures: predictive median and 90% predictive interval")
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.08), ncol=2, frameon=False)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def plot_sbc_ranks(ranks: pd.DataFrame, draws: int = RANK_DRAWS, bins: int = RANK_BINS) -> plt.Figure:
    """Simulation-based calibration: histogram of each quantity's ranks.

    Shaded: where 99% of a bin's counts fall when the ranks are uniform.
    """
    names = list(dict.fromkeys(ranks.quantity))
    n = int(ranks.dataset.nunique())
    cols = 3
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.6 * rows), squeeze=False)
    edges = np.linspace(0, draws + 1, bins + 1)
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / bins)
    for ax, name in zip(axes.ravel(), names, strict=False):
        ax.axhspan(lo, hi, color="grey", alpha=0.2, label="where 99% of counts fall if uniform")
        ax.axhline(n / bins, color="grey", lw=0.8)
        ax.hist(ranks[ranks.quantity == name]["rank"], bins=edges, color=INK, edgecolor="white")
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("datasets", fontsize=8)
    for ax in axes[-1, :]:
        ax.set_xlabel("rank of the truth", fontsize=8)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"Simulation-based calibration: rank of the truth among {draws} posterior draws, {n} datasets "
                 "(uniform when the posterior is calibrated)")
    fig.tight_layout()
    return fig

