"""What ``modu calibrate`` writes: calibrated.yaml, report.md, figures and tables.

Kept apart from :mod:`sim.inference.problem` (the method) so that the method can be
read without the reporting. Every number in the report is computed here from
the populations and the simulations; the prose states only what the numbers
show (thresholds are in :func:`sim.inference.problem.posterior_table`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from sim.inference.data import documented_counts
from sim.inference.problem import (
    INTERVAL,
    Population,
    Problem,
    populations_frame,
    posterior_table,
    predictive_outputs,
    weighted_correlation,
    weighted_quantile,
)
from sim.model.metrics import band
from sim.reporting.figures import plot_counts, save_figure
from sim.reporting.files import atomic_write, manifest, output_folder, write_csv, write_json
from sim.reporting.text import markdown_table

STRONG_CORRELATION = 0.5
"""|r| from which a posterior correlation between two quantities is reported as strong."""

PINNED_CORRELATION = 0.9
"""|r| from which the pinned combination (difference or sum) of a pair is reported."""

DRIVER_CORRELATION = 0.3
"""|Spearman ρ| from which a calibrated quantity is named as driving a predicted output."""


def _trajectory_tables(problem: Problem, summaries: np.ndarray) -> dict[str, pd.DataFrame]:
    """Yearly city counts of many simulations in the shape :func:`sim.reporting.figures.plot_counts` reads."""
    layout = problem.layout
    firms = layout.firms(summaries)  # [draw, year, city]
    n, Y, C = firms.shape
    frame = pd.DataFrame({
        "replication": np.repeat(np.arange(n), Y * C),
        "year": np.tile(np.repeat(np.array(layout.years, dtype=float), C), n),
        "city": np.tile(np.array(layout.cities), n * Y),
        "firms": firms.ravel(),
    })
    return {"firms": frame, "cities": pd.DataFrame({"city": list(layout.cities)})}


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
                color="#2a9d8f", label="posterior")
        name = prior.labels[j]
        ax.set_xlabel(f"log10 {name}" if spec.kind == "loguniform" else name, fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"Posterior marginals (ABC-SMC generation {posterior.generation}, ε = {posterior.epsilon:.3g})")
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
                ax.scatter(posterior.theta[:, j], posterior.theta[:, i], s=1 + 4 * size / size.max(), color="#264653",
                           linewidths=0, rasterized=True)  # a bitmap inside the SVG: thousands of points stay small
            elif i == j:
                ax.hist(posterior.theta[:, i], bins=20, weights=posterior.weights, color="#2a9d8f")
            else:
                r = corr[i, j]
                ax.text(0.5, 0.5, f"{r:+.2f}", ha="center", va="center", transform=ax.transAxes,
                        fontsize=10, color="#e76f51" if abs(r) >= STRONG_CORRELATION else "k")
            if j == 0:
                ax.set_ylabel(prior.labels[i], fontsize=6, rotation=0, ha="right")
            if i == d - 1:
                ax.set_xlabel(prior.labels[j], fontsize=6, rotation=30, ha="right")
    fig.suptitle("Posterior pairs (lower), weighted correlations (upper; strong in red)")
    fig.subplots_adjust(top=0.95, bottom=0.08, left=0.12, right=0.98, hspace=0.08, wspace=0.08)
    return fig


def plot_forecast(values: np.ndarray, city: str, year: int, start_value: float | None) -> plt.Figure:
    """Histogram of a posterior predictive count with its median and 90% interval."""
    lo, mid, hi = band(values)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(values, bins=40, color="#2a9d8f", alpha=0.8)
    ax.axvline(mid, color="k", label=f"median {mid:,.0f}")
    ax.axvspan(lo, hi, color="k", alpha=0.1, label=f"90% interval {lo:,.0f}–{hi:,.0f}")
    if start_value is not None:
        ax.axvline(start_value, color="#e76f51", linestyle="--", label=f"documented 2016: {start_value:,.0f}")
    ax.set(xlabel=f"{city} AI firms in {year}", ylabel="posterior predictive draws",
           title=f"Forecast: {city} {year} (not a calibration target)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def calibrated_yaml(problem: Problem, point: np.ndarray, table: pd.DataFrame, posterior: Population,
                    wall_time: float) -> str:
    """The text of calibrated.yaml: every value labelled with where it comes from."""
    solved = {f.city for f in problem.fitted if f.quantity == "firms"}
    lines = [
        "# Calibrated quantities, read by every scenario that does not set them (sim/parameters.py).",
        f"# Written by `modu calibrate` on {time.strftime('%Y-%m-%d', time.gmtime())}; see calibration/report.md.",
        f"# Method: ABC-SMC, {len(posterior.theta)} particles, final tolerance ε = {posterior.epsilon:.4f}",
        f"# (RMS relative error of the fitted figures), reading of the Shenzhen increment: {problem.reading}.",
        "# Each value: `calibration` = posterior median (90% interval), except the constants of cities",
        "# with a fitted count, re-solved so that the scenario's median replication hits the documented",
        "# count given the other medians. 'not constrained' = the posterior is about as wide as the prior.",
        f"# Wall time of the calibration: {wall_time:.0f} s.",
        "parameters:",
    ]
    rows = table.set_index("quantity")
    city_lines: dict[str, list[str]] = {}
    for j, target in enumerate(problem.prior.names):
        row = rows.loc[problem.prior.labels[j]]
        interval = f"90% interval [{row.lo:.4g}, {row.hi:.4g}]; {row.verdict} by the data"
        if target.startswith("parameters."):
            lines.append(f"  {target.split('.', 1)[1]}: {point[j]:.6g}  # calibration: posterior median; {interval}")
        else:
            _, city, fieldname = target.split(".")
            how = ("re-solved to the documented count" if city in solved
                   else "posterior median (no target for this city: prior-driven)")
            city_lines.setdefault(city, []).append(f"    {fieldname}: {point[j]:.6g}  # calibration: {how}; {interval}")
    lines.append("cities:")
    for city, entries in city_lines.items():
        lines.append(f"  {city}:")
        lines.extend(entries)
    return "\n".join(lines) + "\n"


def write_calibration(out: Path, problem: Problem, populations: list[Population], point: np.ndarray,
                      point_sums: np.ndarray, symmetric_sums: np.ndarray, values: np.ndarray, sums: np.ndarray,
                      wall_time: float, seed: int,
                      executor: str, options: dict[str, Any], other: pd.DataFrame | None = None) -> list[str]:
    """Write calibrated.yaml, report.md, figures/, populations.csv, predictive.csv, posterior.csv, manifest.json.

    Returns:
        The files written, relative to ``out``.
    """
    posterior = populations[-1]
    table = posterior_table(problem.prior, posterior)
    outputs = predictive_outputs(problem, sums)
    predictive = pd.concat([pd.DataFrame(values, columns=problem.prior.labels), outputs], axis=1)
    written: list[str] = []
    with output_folder(out):
        atomic_write(out / "calibrated.yaml", lambda h: h.write(calibrated_yaml(problem, point, table, posterior,
                                                                                wall_time)))
        write_csv(out / "populations.csv", populations_frame(problem.prior, populations))
        write_csv(out / "posterior.csv", table)
        write_csv(out / "predictive.csv", predictive)
        written += ["calibrated.yaml", "populations.csv", "posterior.csv", "predictive.csv"]
        figures = out / "figures"
        fit = plot_counts(_trajectory_tables(problem, sums), documented_counts(problem.scenario, problem.targets))
        fit.axes[0].set_title("Posterior predictive firms per city: median, 5–95% band; documented points")
        paths = save_figure(fit, figures, "fit")
        paths += save_figure(plot_marginals(problem, posterior), figures, "posterior")
        paths += save_figure(plot_pairs(problem, posterior), figures, "pairs")
        forecasts = _forecast_cities(problem)
        end = problem.scenario.time.end
        for city in forecasts:
            start_value = next((f.value for f in problem.targets.initial() if f.city == city), None)
            paths += save_figure(plot_forecast(outputs[f"{city} {end}"].to_numpy(), city, end, start_value),
                                 figures, f"forecast_{city.lower().replace(' ', '_')}")
        written += [str(p.relative_to(out)) for p in paths]
        report = report_text(problem, populations, table, point_sums, symmetric_sums, sums, values, outputs,
                             wall_time, seed, executor, options, other)
        atomic_write(out / "report.md", lambda h: h.write(report))
        written.append("report.md")
        write_json(out / "manifest.json", manifest(
            out, written, scenario=problem.scenario.resolved(), scenario_hash=problem.scenario.digest(),
            seed=seed, executor=executor, wall_time_s=wall_time, reading=problem.reading, options=options,
            seed_rule="proposals SeedSequence(seed, spawn_key=(0, generation, batch)); simulations (1, generation, k); "
                      "predictive (2, 0) and (3, k); point estimate: the scenario's replication seeds",
            complete=True))
    return written + ["manifest.json"]


def _forecast_cities(problem: Problem) -> list[str]:
    """Documented cities with an initial count but no fitted count at the end: their end counts are forecasts."""
    fitted = {f.city for f in problem.fitted if f.quantity == "firms"}
    return [f.city for f in problem.targets.initial() if f.city not in fitted]


def report_text(problem: Problem, populations: list[Population], table: pd.DataFrame, point_sums: np.ndarray,
                symmetric_sums: np.ndarray, sums: np.ndarray, values: np.ndarray, outputs: pd.DataFrame,
                wall_time: float, seed: int, executor: str, options: dict[str, Any],
                other: pd.DataFrame | None = None) -> str:
    """calibration/report.md."""
    posterior = populations[-1]
    scenario, end = problem.scenario, problem.scenario.time.end
    n_abc = sum(p.simulations for p in populations)
    abc_time = options.get("abc_wall_time_s", float("nan"))
    resumed = options.get("resumed_from")
    fitted_cities = {f.city for f in problem.fitted if f.quantity == "firms"}
    text: list[str] = ["# Calibration report\n"]
    text.append(
        f"Written by `modu calibrate` (seed {seed}, executor {executor}, engine {options.get('engine')}) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Wall time **{wall_time:.0f} s** "
        f"(indicative: the machine was shared with other work): ABC {abc_time:.0f} s for {n_abc:,} simulations of "
        f"{scenario.time.start}–{end}, the rest for the point estimate and {len(values)} posterior predictive "
        f"simulations."
        + (f" The ABC was resumed from `{resumed}` (an earlier run with these settings; its generations were "
           f"kept and the run continued from the last one)." if resumed else "")
        + "\n\n"
        f"Method: ABC-SMC (Toni et al. 2009; Beaumont et al. 2009), implemented in `sim/calibration.py` on the "
        f"project's executor layer: {options.get('particles')} particles per generation, tolerance ε = the median "
        f"distance of the previous generation, Gaussian perturbation with twice the weighted covariance; distance = "
        f"root mean square relative error of the fitted figures. {len(populations)} generations, final ε = "
        f"**{posterior.epsilon:.4f}**, final acceptance rate {posterior.acceptance:.1%}, effective sample size "
        f"{posterior.ess():.0f}. Every proposal and simulation has its own seed (see `manifest.json`), so the run "
        f"is reproducible from the seed on any executor.\n")
    text.append("Why not pyabc: `pip install pyabc` (0.13) here pulls ipykernel/ipython, redis, scikit-learn, "
                "SQLAlchemy and GitPython, and its parallel samplers are not reproducible from a seed; the ABC-SMC "
                "here (`abc_smc`) uses the project's executors (serial, processes, Dask) and is checked against an "
                "exact conjugate posterior in `tests/test_calibration.py`.\n")

    text.append("## Data\n")
    figs = pd.DataFrame([{"id": f.id, "city": f.city, "year": f.year, "quantity": f.quantity,
                          "value": "–" if f.value is None else f"{f.value:,.6g}",
                          "role": ("target" if f in problem.fitted else "not used (other reading)")
                          if f.role == "target" else f.role} for f in problem.targets.figures])
    text.append(markdown_table(figs))
    text.append("\nSources, with the original sentences, are in `calibration/targets.yaml`.\n")
    readings = problem.targets.shenzhen_increment.get("readings", {})
    text.append(f"**The Shenzhen increment.** 63,800 − 36,100 = 27,700, not 42,600. Reading used: "
                f"**{problem.reading}** — {' '.join(str(readings.get(problem.reading, '')).split())} The other "
                f"reading is one flag away: `modu calibrate --shenzhen-increment "
                f"{'misprint' if problem.reading == 'gross' else 'gross'}`.\n")

    text.append("## What is estimated, what is assumed\n")
    n_fit = len(problem.fitted)
    n_est = len(problem.prior.specs)
    text.append(
        f"Documented numbers: {len(problem.targets.initial())} initial counts (they set the 2016 state and are not "
        f"fitted) and **{n_fit} fitted figures**. Estimated quantities: **{n_est}** — "
        + ", ".join(f"`{n}`" for n in problem.prior.labels)
        + f". {n_est} quantities against {n_fit} figures: the data cannot pin them all, and the posterior below "
        "shows which combinations they do pin. City-specific estimates are the cities' `attractiveness` constants "
        "(the logit's alternative-specific constants; the rest-of-China pool's is the normalisation, 0). "
        "Everything else that differs between cities is an **assumption** written in `scenarios/baseline.yaml` "
        "with its reason: sector mixes (Shenzhen downstream-heavy), anchors (Baidu, 360; Tencent, Huawei; none in "
        "Shanghai), policy budgets and allocations, capacities (100,000 each), the complementarity matrix W, lever "
        "weights, the size distribution and size elasticity of exit, and the rest-of-China pool (34,800, from "
        "Beijing's 29% share). Priors, each with its reason, are in `calibration/priors.yaml`.\n")

    text.append("## Posterior and identification\n")
    text.append("Posterior median and 90% interval against the prior's; `width ratio` = posterior 90% width / prior "
                "90% width on the sampling scale (log10 for the relocation rate). Near 1 the data say nothing about "
                "the quantity on its own.\n")
    shown = table[["quantity", "prior_lo", "prior_hi", "median", "lo", "hi", "width_ratio", "verdict"]].rename(
        columns={"prior_lo": "prior 5%", "prior_hi": "prior 95%", "lo": "5%", "hi": "95%", "width_ratio": "width ratio"})
    text.append(markdown_table(shown))
    constrained = table[table.verdict != "not constrained"].quantity.tolist()
    loose = table[table.verdict == "not constrained"].quantity.tolist()
    text.append(f"\nConstrained at least weakly: {', '.join(constrained) or 'none'}. Not constrained (posterior ≈ "
                f"prior): {', '.join(loose) or 'none'}.\n")
    corr = weighted_correlation(posterior.theta, posterior.weights)
    labels = problem.prior.labels
    pairs = [(labels[i], labels[j], corr[i, j]) for i in range(len(labels)) for j in range(i)
             if abs(corr[i, j]) >= STRONG_CORRELATION]
    if pairs:
        text.append("Strong posterior correlations (|r| ≥ 0.5) — the data pin these combinations rather than each "
                    "quantity: " + "; ".join(f"{a} ~ {b} ({r:+.2f})" for a, b, r in pairs) + ".\n")
        text.append(_combinations_text(problem, posterior, corr))
    else:
        text.append("No posterior correlation reaches |r| = 0.5.\n")
    if other is not None:
        text.append(_other_reading_text(table, other))
    text.append("![posterior](figures/posterior.png)\n\n![pairs](figures/pairs.png)\n")
    text.append(_epsilon_table(populations))

    text.append("## Fit\n")
    text.append(f"The point estimate (`calibrated.yaml`): posterior medians, with the constants of "
                f"{', '.join(sorted(fitted_cities))} re-solved so that the median of the scenario's "
                f"{scenario.replications} replications (its own seeds, engine {options.get('engine')}) hits their "
                f"documented counts. Errors of the point estimate and of the posterior predictive "
                f"({len(values)} draws):\n")
    rows = []
    for fig in problem.fitted:
        at_point = float(np.median(problem.layout.value(point_sums, fig)))
        lo, mid, hi = band(problem.layout.value(sums, fig))
        rows.append({"figure": fig.id, "documented": fig.value, "point estimate (median)": at_point,
                     "error": f"{at_point / fig.value - 1:+.2%}", "predictive median": mid,
                     "predictive 5%": lo, "predictive 95%": hi, "predictive error": f"{mid / fig.value - 1:+.2%}"})
    text.append(markdown_table(pd.DataFrame(rows)))
    text.append("\n![fit](figures/fit.png)\n")
    text.append(_overtaking_text(problem, point_sums, symmetric_sums))

    text.append("## Forecast\n")
    for city in _forecast_cities(problem):
        col = outputs[f"{city} {end}"]
        lo, mid, hi = band(col)
        prior_driven = f"cities.{city}.attractiveness" in problem.prior.names and \
            table.set_index("quantity").loc[f"{city}.attractiveness", "verdict"] == "not constrained"
        text.append(f"**{city} {end}: {mid:,.0f}** (90% interval {lo:,.0f}–{hi:,.0f}; posterior predictive). "
                    + ("Its constant is not constrained by the data, so the width of this interval is mostly the "
                       "prior's: the forecast says what the model and the assumptions imply, not what the documents "
                       "show.\n" if prior_driven else "\n"))
        text.append(f"\n![forecast](figures/forecast_{city.lower().replace(' ', '_')}.png)\n")

    text.append("## Validation against figures not used in the fit\n")
    text.append(_validation_text(problem, outputs))

    text.append("## Which results depend on weakly identified quantities\n")
    text.append("Spearman correlation, across the posterior predictive draws, between each calibrated quantity and "
                f"each predicted output; quantities with |ρ| ≥ {DRIVER_CORRELATION} are named. An output driven by a "
                "'not constrained' quantity inherits that quantity's prior: treat it as an assumption-driven result.\n")
    text.append(_drivers_text(problem, table, values, outputs))
    text.append("\n## Reproduce\n\n```bash\nmodu calibrate"
                + (f" --shenzhen-increment {problem.reading}" if problem.reading != "gross" else "")
                + (f" --other-reading {other.attrs['folder']}" if other is not None else "")
                + f" --particles {options.get('particles')} --generations {options.get('generations')} "
                  f"--min-epsilon {options.get('min_epsilon')} --predictive {options.get('predictive')} "
                  f"--seed {seed}\n```\n")
    return "\n".join(text)


def _combinations_text(problem: Problem, posterior: Population, corr: np.ndarray) -> str:
    """The pinned combination of each very strongly correlated pair: its difference (r > 0) or sum (r < 0)."""
    prior, labels = problem.prior, problem.prior.labels
    prior_draws = prior.sample(np.random.default_rng(1), 20000)
    lines = []
    for i in range(len(labels)):
        for j in range(i):
            if abs(corr[i, j]) < PINNED_CORRELATION:
                continue
            sign = -1.0 if corr[i, j] > 0 else 1.0
            post = posterior.theta[:, i] + sign * posterior.theta[:, j]
            before = prior_draws[:, i] + sign * prior_draws[:, j]
            lo, mid, hi = weighted_quantile(post, posterior.weights, np.array([INTERVAL[0], 0.5, INTERVAL[1]]))
            plo, phi = np.quantile(before, INTERVAL)
            op = "−" if sign < 0 else "+"
            lines.append(f"- `{labels[i]} {op} {labels[j]}`: {mid:.3g} (90% {lo:.3g} to {hi:.3g}); width "
                         f"{(hi - lo) / (phi - plo):.2f} of the prior's — what the data pin, where each alone is "
                         f"loose.")
    return ("\nCombinations of very strongly correlated pairs (|r| ≥ 0.9), on the sampling scale:\n\n"
            + "\n".join(lines) + "\n") if lines else ""


def _overtaking_text(problem: Problem, point_sums: np.ndarray, symmetric_sums: np.ndarray) -> str:
    """Spec §7: how much of the documented overtaking the assumed city differences explain without the constants."""
    cities = sorted({f.city for f in problem.fitted if f.quantity == "firms"})
    if len(cities) < 2:
        return ""
    layout, end = problem.layout, problem.scenario.time.end
    y = layout.years.index(end)
    rows = []
    for city in cities:
        c = layout.cities.index(city)
        documented = next(f.value for f in problem.fitted if f.quantity == "firms" and f.city == city and f.year == end)
        rows.append({"city": city, f"documented {end}": documented,
                     "point estimate": float(np.median(layout.firms(point_sums)[:, y, c])),
                     "constants equalised": float(np.median(layout.firms(symmetric_sums)[:, y, c]))})
    return ("\n**Why Shenzhen overtakes.** With city-symmetric parameters a network effect favours the bigger city, "
            "so Beijing (39,800 in 2016) would stay ahead of Shenzhen (36,100) unless something differs. The "
            "assumed differences — Shenzhen's downstream-heavy sector mix (most entrants are downstream, and the "
            "network term counts a firm's own sector fully), its two anchors and anchor-heavy budget — act through "
            "the model's mechanisms; the estimated constants absorb the rest. Median of the scenario's "
            "replications at the point estimate, and with the fitted cities' constants set to their mean (the "
            "assumed differences alone):\n\n" + markdown_table(pd.DataFrame(rows)))


def _other_reading_text(table: pd.DataFrame, other: pd.DataFrame) -> str:
    """Side by side: each quantity's posterior under this reading and under the other one."""
    merged = table.merge(other, on="quantity", suffixes=("", "_other"))
    rows = pd.DataFrame({
        "quantity": merged.quantity,
        "this reading": [f"{m:.3g} [{lo:.3g}, {hi:.3g}] {v}" for m, lo, hi, v in
                         zip(merged["median"], merged.lo, merged.hi, merged.verdict, strict=True)],
        f"{other.attrs.get('reading')} reading": [f"{m:.3g} [{lo:.3g}, {hi:.3g}] {v}" for m, lo, hi, v in
                                                  zip(merged.median_other, merged.lo_other, merged.hi_other,
                                                      merged.verdict_other, strict=True)],
    })
    return (f"\n**Under the other reading** (`{other.attrs.get('folder')}`, its own report there): posterior "
            "median [90% interval] and verdict.\n\n" + markdown_table(rows) + "\n")


def _epsilon_table(populations: list[Population]) -> str:
    rows = pd.DataFrame([{"generation": p.generation, "ε": p.epsilon, "simulations": p.simulations,
                          "acceptance": f"{p.acceptance:.1%}", "ESS": round(p.ess())} for p in populations])
    return "\nABC-SMC generations:\n\n" + markdown_table(rows)


def _validation_text(problem: Problem, outputs: pd.DataFrame) -> str:
    """Each validation figure against the posterior predictive, with the verdict either way."""
    lines = []
    for fig in problem.targets.validation():
        if fig.quantity == "overtake_by":
            years = outputs[f"year {fig.city} overtakes {fig.other}"]
            share_by = float(np.mean(years <= fig.year))
            never = float(np.mean(years.isna()))
            counts = years.value_counts(normalize=True, dropna=False).sort_index()
            dist = ", ".join(f"{'never' if pd.isna(y) else int(y)}: {p:.0%}" for y, p in counts.items() if not pd.isna(y))
            verdict = "consistent" if share_by >= 0.5 else "not consistent"
            lines.append(f"- **{fig.city} overtakes {fig.other} by {fig.year}** (`{fig.id}`): in {share_by:.0%} of "
                         f"the posterior predictive draws the first year-start record with {fig.city} ahead is "
                         f"{fig.year} or earlier (distribution: {dist}; never: {never:.0%}) — {verdict} with the "
                         f"documents. The model records the state at each year's start, so 'by {fig.year}' means "
                         f"ahead at 1 January {fig.year}.")
        elif fig.quantity == "national_share":
            col = outputs[f"{fig.city} share of national {fig.year}"]
            lo, mid, hi = band(col)
            inside = lo <= fig.value <= hi
            lines.append(f"- **{fig.city}'s share of the national total in {fig.year}** (`{fig.id}`): documented "
                         f"{fig.value:.0%} (of *core* AI firms, a narrower universe); model {mid:.1%} (90% "
                         f"{lo:.1%}–{hi:.1%}) — {'inside' if inside else 'outside'} the interval. "
                         + ("Not an independent check: the baseline's rest-of-China pool was sized from this 29% "
                            "(applied to 2016), so agreement is partly by construction." if not fig.independent else ""))
    moves = outputs["relocations per year, % of firms"]
    lo, mid, hi = band(moves)
    lines.append(f"- **Relocation is rare** (business demography; a prior, not a document figure): "
                 f"relocations between cities are {mid:.2f}% of firms a year (90% {lo:.2f}–{hi:.2f}%), "
                 f"{'well under' if hi < 1 else 'not always under'} 1%.")
    return "\n".join(lines) + "\n"


def _drivers_text(problem: Problem, table: pd.DataFrame, values: np.ndarray, outputs: pd.DataFrame) -> str:
    """A table of Spearman correlations between calibrated quantities and predicted outputs."""
    verdict = table.set_index("quantity").verdict
    rows = []
    for col in outputs.columns:
        y = outputs[col].to_numpy(dtype=float)
        ok = np.isfinite(y)
        if ok.sum() < 10 or np.ptp(y[ok]) == 0:
            continue
        rhos = {}
        for j, name in enumerate(problem.prior.labels):
            rho = stats.spearmanr(values[ok, j], y[ok]).statistic
            if np.isfinite(rho) and abs(rho) >= DRIVER_CORRELATION:
                rhos[name] = rho
        lo, mid, hi = (f"{v:.0f}" if col.startswith("year") else v
                       for v in band(y[ok]))
        drivers = "; ".join(f"{n} {r:+.2f}{' (not constrained)' if verdict[n] == 'not constrained' else ''}"
                            for n, r in sorted(rhos.items(), key=lambda kv: -abs(kv[1]))) or "none above the threshold"
        rows.append({"output": col, "median": mid, "5%": lo, "95%": hi, "driven by (Spearman ρ)": drivers})
    return markdown_table(pd.DataFrame(rows))
