"""What ``modu calibrate`` writes: calibrated.yaml, report.md, figures and the tables behind them.

Every number the report states is in a table of the result object
(:meth:`sim.inference.results.CalibrationResult.tables`), written beside it as
CSV; this module only formats them. Facts about the scenario and the data are
read from the scenario and the targets file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from sim.analysis.abc_smc import Population, weighted_correlation
from sim.inference.data import documented_counts
from sim.inference.estimates import CONSTRAINED
from sim.inference.identify import MARTINGALE_BAND, NETWORK_EFFECT, RANK_BINS, RANK_DRAWS
from sim.inference.problem import Problem, assignments
from sim.inference.results import (
    DRIVER_CORRELATION,
    PINNED_CORRELATION,
    STRONG_CORRELATION,
    CalibrationResult,
    forecast_cities,
)
from sim.model.metrics import BAND, band
from sim.reporting.figures import plot_counts, save_figure
from sim.reporting.files import atomic_write, manifest, output_folder, write_csv, write_json
from sim.reporting.palette import HIGHLIGHT, INK
from sim.reporting.text import (
    count,
    estimate,
    fixed,
    interval_name,
    markdown_table,
    number,
    p_value,
    path_unit,
    percent,
    percentile_name,
    signed,
    span,
)
from sim.scenario import Scenario

CREDIBLE = interval_name("credible", BAND[1] - BAND[0])
"""The name of a posterior interval of a calibrated quantity (its 5th to 95th percentile)."""

PREDICTIVE = interval_name("predictive", BAND[1] - BAND[0])
"""The name of a posterior predictive interval of an output (its 5th to 95th percentile)."""


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


def calibrated_yaml(problem: Problem, point: np.ndarray, table: pd.DataFrame, posterior: Population,
                    wall_time: float) -> str:
    """The text of calibrated.yaml: every value labelled with where it comes from."""
    solved = {f.city for f in problem.fitted if f.quantity == "firms"}
    lines = [
        "# Calibrated quantities: a scenario naming this file in its `calibration:` key takes them for what it does not set.",
        f"# Written by `modu calibrate` on {time.strftime('%Y-%m-%d', time.gmtime())}; see report.md beside it.",
        f"# Method: ABC-SMC, {len(posterior.theta)} particles, final tolerance ε = {posterior.epsilon:.4f}",
        f"# (RMS relative error of the fitted figures), reading of the Shenzhen increment: {problem.reading}.",
        "# Each value: `calibration` = posterior median (90% credible interval), except the constants of cities",
        "# with a fitted count, re-solved so that the scenario's median replication hits the documented",
        "# count given the other medians. 'not constrained' = the posterior is about as wide as the prior.",
        f"# Wall time of the calibration: {wall_time:.0f} s.",
        "parameters:",
    ]
    rows = table.set_index("quantity")
    city_lines: dict[str, list[str]] = {}
    for label, city, fieldname, value in assignments(problem, point):
        row = rows.loc[label]
        interval = f"{CREDIBLE} {span(row.lo, row.hi, lambda x: number(x, 4))}; " + (
            f"{row.verdict} by the data" if not row.reason else f"not interpretable: {row.reason}")
        if city is None:
            lines.append(f"  {fieldname}: {value:.6g}  # calibration: posterior median; {interval}")
            continue
        if fieldname == "firms":
            how = f"{label} at its posterior median {number(row['median'], 4)}, split by the priors file's weights"
            text = f"{value:.0f}"
        else:
            how = ("re-solved to the documented count" if city in solved and label == f"{city}.{fieldname}"
                   else f"posterior median of {label} (no documented count for this city)")
            text = f"{value:.6g}"
        city_lines.setdefault(city, []).append(f"    {fieldname}: {text}  # calibration: {how}; {interval}")
    lines.append("cities:")
    for city, entries in city_lines.items():
        lines.append(f'  "{city}":')
        lines.extend(entries)
    return "\n".join(lines) + "\n"


def write_calibration(out: Path, result: CalibrationResult) -> list[str]:
    """Write calibrated.yaml, report.md, figures/, every table of the result as CSV, and manifest.json.

    Returns:
        The files written, relative to ``out``.
    """
    problem, posterior = result.problem, result.posterior
    tables = result.tables()
    outputs = result.outputs()
    written: list[str] = []
    with output_folder(out):
        atomic_write(out / "calibrated.yaml", lambda h: h.write(calibrated_yaml(
            problem, result.point, tables["posterior"], posterior, result.wall_time)))
        written.append("calibrated.yaml")
        for name, frame in tables.items():
            write_csv(out / f"{name}.csv", frame)
            written.append(f"{name}.csv")
        for name, source in (("priors.yaml", problem.priors_path), ("targets.yaml", problem.targets_path)):
            # the priors and targets travel with the posterior they made
            if source is not None and (out / name).resolve() != source.resolve():
                text = source.read_text(encoding="utf-8")
                atomic_write(out / name, lambda h, text=text: h.write(text))
            if (out / name).is_file():
                written.append(name)
        figures = out / "figures"
        fit = plot_counts(_trajectory_tables(problem, result.sums), documented_counts(problem.scenario, problem.targets))
        title = f"Posterior predictive firms per city (median and {percentile_name(BAND, 'draws')}); dots: documented"
        fit.axes[0].set_title(title) if len(fit.axes) == 1 else fit.suptitle(title)
        paths = save_figure(fit, figures, "fit")
        paths += save_figure(plot_marginals(problem, posterior), figures, "posterior")
        paths += save_figure(plot_pairs(problem, posterior), figures, "pairs")
        if "sbc_ranks" in tables:
            paths += save_figure(plot_sbc_ranks(tables["sbc_ranks"]), figures, "sbc_ranks")
        if (held_out := plot_validation(tables["validation"])) is not None:
            paths += save_figure(held_out, figures, "validation")
        end = problem.scenario.time.end
        for city in forecast_cities(problem):
            start_value = next((f.value for f in problem.targets.initial() if f.city == city), None)
            paths += save_figure(plot_forecast(outputs[f"{city} {end}"].to_numpy(), city, end, start_value),
                                 figures, f"forecast_{_stem(city)}")
        written += [str(p.relative_to(out)) for p in paths]
        report = report_text(result, tables)
        atomic_write(out / "report.md", lambda h: h.write(report))
        written.append("report.md")
        write_json(out / "manifest.json", manifest(
            out, written, scenario=problem.scenario.resolved(), scenario_hash=problem.scenario.digest(),
            seed=result.seed, executor=result.executor, wall_time_s=result.wall_time, reading=problem.reading,
            options=result.options,
            targets={"name": problem.targets.name, "universe": problem.targets.universe,
                     "file": result.options.get("targets"), "fitted": [f.id for f in problem.fitted]},
            seed_rule="proposals SeedSequence(seed, spawn_key=(0, generation, batch)); simulations (1, generation, k); "
                      "predictive (2, 0) and (3, k); point estimate: the scenario's replication seeds",
            complete=True))
    return written + ["manifest.json"]


def _shown(quantity: str) -> Callable[[float], str]:
    """How a value of a documented figure's quantity is shown: a share in percent, a count of firms whole."""
    return (lambda v: percent(v, 1)) if quantity == "group_share" else count


def _unit(quantity: str) -> str:
    return "share of national firms" if quantity == "group_share" else "firms"


def _error(e: float) -> str:
    """A relative error in percent, two decimals."""
    return percent(e, 2)


def _stem(city: str) -> str:
    return city.lower().replace(" ", "_")


def _assumptions(problem: Problem) -> str:
    """What differs between the scenario's cities by assumption, read from the scenario itself."""
    cities = [c for c in problem.scenario.cities if not c.pool]
    anchors = "; ".join(f"{c.name}: {', '.join(a.name for a in c.anchors) or 'none'}" for c in cities)
    capacities = sorted({c.capacity for c in cities if c.capacity is not None})
    pools = [c for c in problem.scenario.cities if c.pool]
    parts = [f"anchors ({anchors})"]
    if capacities:
        parts.append("capacities (" + ", ".join(count(x) for x in capacities) + ")")
    parts += ["sector mixes", "policy budgets and allocations", "the complementarity matrix W", "lever weights",
              "the size distribution and size elasticity of exit"]
    if pools:
        parts.append("the pool" + ("s " if len(pools) > 1 else " ")
                     + ", ".join(f"{p.name} ({p.firms:,} firms in {problem.scenario.time.start})" for p in pools))
    return ", ".join(parts)


def _increment_text(problem: Problem) -> str:
    """The Shenzhen-increment paragraph, with its arithmetic from the targets file."""
    readings = problem.targets.shenzhen_increment.get("readings", {})
    gross = next((f for f in problem.targets.figures if f.quantity == "gross_inflow"), None)
    if gross is None:
        return ""
    start = next((f.value for f in problem.targets.figures if f.city == gross.city and f.quantity == "firms"
                  and f.time == gross.from_time), None)
    end = next((f.value for f in problem.targets.figures if f.city == gross.city and f.quantity == "firms"
                and f.time == gross.time), None)
    arithmetic = (f"{count(end)} − {count(start)} = {count(end - start)}, not {count(gross.value)}. "
                  if start is not None and end is not None else "")
    others = ", ".join(f"`--shenzhen-increment {r}`" for r in readings if r != problem.reading)
    return (f"**The {gross.city} increment.** {arithmetic}Reading used: **{problem.reading}** — "
            f"{' '.join(str(readings.get(problem.reading, '')).split())} The sentence is consistent with other readings "
            f"too ({others}; the targets file says what each means), and the conclusions under each are compared "
            "below where their calibrations are given (`--other-reading`).\n")


STATEMENT_AGREEMENT = 0.8
"""Share of replications in which a statement must hold for the report to call the model in agreement with it."""


def _statements_text(statements: pd.DataFrame, replications: int, draws: int) -> str:
    """Who leads: each ranking and ordering statement of the sources, and how often the model meets it."""
    if statements.empty:
        return ""
    text = ["\n**Who leads: the sources' statements** (`statements.csv`): the share of the point estimate's "
            f"{replications} replications and of the {draws} posterior predictive draws in which each holds. "
            "Inferred statements read an order the source implies (the order of a list) rather than states; "
            "statements of another register enter through their stated measurement equation (the targets file).\n",
            markdown_table(pd.DataFrame({
                "statement": statements.statement, "at (model time)": statements.model_time,
                "register": statements.universe, "inferred": ["yes" if i else "no" for i in statements.inferred],
                "fitted": ["yes" if f else "no" for f in statements.fitted],
                "holds (point estimate)": [f"{h:.0%}" for h in statements.holds_point],
                "holds (predictive)": [f"{h:.0%}" for h in statements.holds_predictive]}))]
    missed = statements[statements.holds_point < STATEMENT_AGREEMENT]
    if missed.empty:
        text.append(f"\nEvery statement holds in at least {STATEMENT_AGREEMENT:.0%} of the point estimate's "
                    "replications.\n")
    else:
        text.append(f"\nStatements the model meets in fewer than {STATEMENT_AGREEMENT:.0%} of the point estimate's "
                    "replications: " + "; ".join(f"`{r.figure}` ({r.holds_point:.0%})" for r in missed.itertuples())
                    + ". The fit trades them against the other patterns (the distance weighs every fitted pattern "
                    "alike).\n")
    return "\n".join(text)


def report_text(result: CalibrationResult, tables: dict[str, pd.DataFrame]) -> str:
    """report.md: the tables of the result, formatted, with what they mean."""
    problem, populations, posterior, options = result.problem, result.populations, result.posterior, result.options
    scenario, end = problem.scenario, problem.scenario.time.end
    table = tables["posterior"]
    n_abc = sum(p.simulations for p in populations)
    abc_time = options.get("abc_wall_time_s", float("nan"))
    resumed = options.get("resumed_from")
    fitted_cities = sorted({f.city for f in problem.fitted if f.quantity == "firms"})
    text: list[str] = ["# Calibration report\n"]
    text.append(
        f"Written by `modu calibrate` (seed {result.seed}, executor {result.executor}, engine {options.get('engine')}) "
        f"on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Wall time **{result.wall_time:.0f} s**: ABC "
        f"{abc_time:.0f} s for {n_abc:,} simulations of {scenario.time.start}–{end}, the rest for the point estimate "
        f"and {len(result.values)} posterior predictive simulations."
        + (f" The ABC was resumed from `{Path(resumed).name}` (an earlier run with these settings; its generations were "
           f"kept and the run continued from the last one)." if resumed else "")
        + "\n\n"
        f"Method: ABC-SMC (Toni et al. 2009; Beaumont et al. 2009), implemented in `sim/inference/problem.py` on "
        f"the project's executor layer: {options.get('particles')} particles per generation, tolerance ε = the "
        f"median distance of the previous generation, Gaussian perturbation with twice the weighted covariance; "
        f"distance = root mean square relative error of the fitted figures. {len(populations)} generations, final "
        f"ε = **{posterior.epsilon:.4f}**, final acceptance rate {posterior.acceptance:.1%}, effective sample size "
        f"{posterior.ess():.0f}. Every proposal and simulation has its own seed (see `manifest.json`), so the run "
        f"is reproducible from the seed on any executor. Every number below is in a CSV beside this report.\n")
    text.append("Why not pyabc: `pip install pyabc` (0.13) here pulls ipykernel/ipython, redis, scikit-learn, "
                "SQLAlchemy and GitPython, and its parallel samplers are not reproducible from a seed; the ABC-SMC "
                "here (`abc_smc`) uses the project's executors (serial, processes, Dask) and is checked against an "
                "exact conjugate posterior in `tests/test_calibration.py`.\n")

    text.append("## Data\n")
    figs = pd.DataFrame([{"id": f.id, "city": ", ".join(f.group), "year": f.year, "stock at end of": f.stock_end,
                          "model time": f.time, "quantity": f.quantity,
                          "value": "–" if f.value is None and f.lower is None and f.upper is None else f.describe(),
                          "role": ("target" if f in problem.fitted else "not used (other reading)")
                          if f.role == "target" else f.role} for f in problem.targets.figures])
    text.append(markdown_table(figs, plain=("year", "stock at end of", "model time")))
    text.append("\nSources, with the original sentences, are in the targets file (`targets.yaml` beside this "
                "report) and docs/sources.md.\n")
    text.append(_increment_text(problem))

    text.append("## What is estimated, what is assumed\n")
    n_fit, n_est = len(problem.fitted), len(problem.prior.specs)
    text.append(
        f"Documented numbers: {len(problem.targets.initial())} initial counts (they set the "
        f"{scenario.time.start} state and are not fitted) and **{n_fit} fitted figures**. Estimated quantities: "
        f"**{n_est}** — " + ", ".join(f"`{n}`" for n in problem.prior.labels)
        + f". {n_est} quantities against {n_fit} figures"
        + (": the data cannot pin them all, and the posterior below shows which combinations they do pin. "
           if n_est > n_fit else ". ")
        + "City-specific estimates are the cities' `attractiveness` constants (the logit's alternative-specific "
        f"constants). Everything else that differs between cities is an **assumption** written in the scenario "
        f"(`{scenario.name}`) with its reason: {_assumptions(problem)}. Priors, each with its reason, are in the "
        "priors file.\n")

    text.append("## Posterior and identification\n")
    text.append(f"Posterior median and {CREDIBLE} (the posterior's {percentile_name(BAND, None)}) "
                "against the prior's (`posterior.csv`); `width ratio` = the posterior interval's width / the prior's "
                "on the sampling scale (log10 for log-uniform priors). Near 1 the data say nothing about the quantity "
                "on its own.\n")
    if table.reason.any():
        text.append(f"**Not interpretable:** the intervals and verdicts below rest on too few particles "
                    f"({table.reason.iloc[0]}). Do not read them as what the data constrain.\n")
    targets = dict(zip(problem.prior.labels, problem.prior.names, strict=True))
    text.append(markdown_table(pd.DataFrame({
        "quantity": table.quantity, "unit": [path_unit(targets.get(q, "")) or "–" for q in table.quantity],
        f"prior {CREDIBLE}": [span(lo, hi) for lo, hi in zip(table.prior_lo, table.prior_hi, strict=True)],
        "posterior median": table["median"],
        f"posterior {CREDIBLE}": [span(lo, hi) for lo, hi in zip(table.lo, table.hi, strict=True)],
        "width ratio": table.width_ratio, "verdict": table.verdict})))
    constrained = table[table.verdict.isin(CONSTRAINED)].quantity.tolist()
    loose = table[table.verdict == "not constrained"].quantity.tolist()
    if not table.reason.any():
        text.append(f"\nConstrained at least weakly: {', '.join(constrained) or 'none'}. Not constrained (posterior ≈ "
                    f"prior): {', '.join(loose) or 'none'}.\n")
    strong = tables["correlations"][tables["correlations"].r.abs() >= STRONG_CORRELATION]
    if len(strong):
        text.append(f"Strong posterior correlations (|r| ≥ {STRONG_CORRELATION}; `correlations.csv`) — the data pin "
                    "these combinations rather than each quantity: "
                    + "; ".join(f"{r.a} ~ {r.b} ({signed(r.r, fixed)})" for r in strong.itertuples()) + ".\n")
    else:
        text.append(f"No posterior correlation reaches |r| = {STRONG_CORRELATION}.\n")
    combos = tables["combinations"]
    if len(combos):
        text.append(f"\nCombinations of very strongly correlated pairs (|r| ≥ {PINNED_CORRELATION}; "
                    "`combinations.csv`), on the sampling scale:\n\n"
                    + "\n".join(f"- `{r.combination}`: {number(r.median)} ({CREDIBLE} {span(r.lo, r.hi)}); width "
                                 f"{fixed(r.width_ratio)} of the prior's — what the data pin, where each alone is loose."
                                 for r in combos.itertuples()) + "\n")
    for other in result.others:
        text.append(_other_reading_text(table, other))
    text.append("![posterior](figures/posterior.png)\n\n![pairs](figures/pairs.png)\n")
    generations = tables["generations"].assign(acceptance=lambda f: [percent(a, 1) for a in f.acceptance],
                                               ess=lambda f: [count(e) for e in f.ess])
    text.append("\nABC-SMC generations (`generations.csv`):\n\n" + markdown_table(generations))

    text.append("## Fit\n")
    text.append(f"The point estimate (`calibrated.yaml`): posterior medians, with the constants of "
                f"{', '.join(fitted_cities)} re-solved so that the median of the scenario's "
                f"{scenario.replications} replications (its own seeds, engine {options.get('engine')}) hits their "
                f"documented counts. Errors of the point estimate and of the posterior predictive "
                f"({len(result.values)} draws; `fit.csv`):\n")
    fit = tables["fit"]
    shown = [_shown(q) for q in fit.quantity]
    text.append(markdown_table(pd.DataFrame({
        "figure": fit.figure, "unit": [_unit(q) for q in fit.quantity],
        "documented": [f(d) if np.isfinite(d) else span(lo, hi, f) for f, d, lo, hi in
                       zip(shown, fit.documented, fit.lower, fit.upper, strict=True)],
        "point estimate (median)": [f(v) for f, v in zip(shown, fit.point_median, strict=True)],
        "error": [signed(e, _error) for e in fit.point_error],
        "predictive median": [f(v) for f, v in zip(shown, fit.predictive_median, strict=True)],
        PREDICTIVE: [span(lo, hi, f) for f, lo, hi in zip(shown, fit.predictive_lo, fit.predictive_hi, strict=True)],
        "predictive error": [signed(e, _error) for e in fit.predictive_error]})))
    text.append("\n![fit](figures/fit.png)\n")
    text.append(_statements_text(tables["statements"], scenario.replications, len(result.values)))
    text.append(_overtaking_text(tables["overtaking"], end))

    text.append("## Forecast\n")
    forecasts = tables["forecasts"]
    text.append(f"Every city's count in {end}, posterior predictive median and {PREDICTIVE} (`forecasts.csv`); "
                "cities marked prior-driven have a constant the data do not constrain, so their interval is mostly "
                "the prior's: it says what the model and the assumptions imply, not what the documents show.\n")
    text.append(markdown_table(pd.DataFrame({
        "city": forecasts.city, "median (firms)": [count(v) for v in forecasts["median"]],
        f"{PREDICTIVE} (firms)": [span(lo, hi, count) for lo, hi in zip(forecasts.lo, forecasts.hi, strict=True)],
        "fitted": ["yes" if f else "no" for f in forecasts.fitted],
        "prior-driven": ["yes" if p else "no" for p in forecasts.prior_driven]})))
    for city in forecast_cities(problem):
        text.append(f"\n![forecast {city}](figures/forecast_{_stem(city)}.png)\n")

    text.append("## Validation against figures not used in the fit\n")
    text.append(_validation_text(tables["validation"]))
    if tables["validation"].documented.notna().any():
        text.append("\n![held-out figures](figures/validation.png)\n")

    text.append(_identification_text(tables, options, scenario))

    text.append("## Which results depend on weakly identified quantities\n")
    text.append("Spearman correlation, across the posterior predictive draws, between each calibrated quantity and "
                f"each predicted output (`drivers.csv`); quantities with |ρ| ≥ {DRIVER_CORRELATION} are named. An "
                "output driven by a 'not constrained' quantity inherits that quantity's prior: treat it as an "
                "assumption-driven result.\n")
    text.append(_drivers_text(tables["drivers"], result.outputs()))
    identification = (f" --sbc {options.get('sbc_datasets')}" if options.get("sbc_datasets") else "") + (
        " --leave-one-out" if options.get("leave_one_out") else "")
    if identification:
        identification += (f" --reduced-particles {options.get('reduced_particles')} "
                           f"--reduced-generations {options.get('reduced_generations')}")
    text.append("\n## Reproduce\n\n```bash\nmodu calibrate"
                + "".join(f" --{flag} {options[flag]}" for flag in ("scenario", "targets", "priors") if options.get(flag))
                + (f" --shenzhen-increment {problem.reading}" if problem.reading != "gross" else "")
                + "".join(f" --other-reading {o.attrs['folder']}" for o in result.others)
                + f" --particles {options.get('particles')} --generations {options.get('generations')} "
                  f"--min-epsilon {options.get('min_epsilon')} --predictive {options.get('predictive')} "
                  f"--seed {result.seed}{identification}\n```\n")
    return "\n".join(text)


IDENTIFYING_DATA = {
    "network_effect": "yearly AI-related enterprise counts (the atlas's 2017-2021 years, same universe) for the big "
                      "three and at least the ten contenders: α acts through how a city's growth depends on its own "
                      "size, which two dates of three cities cannot separate from the cities' constants",
    "congestion": "the same yearly city panel, with cities far apart in size (congestion bends growth down as a "
                  "city fills up) and a measured capacity (office space, wages)",
    "relocation_rate": "firm-level relocations: registry address changes between cities, by year and city pair "
                       "(the model's moves_in/moves_out); none are published for these universes",
    "moving_cost": "the same relocation flows against the cities' attractiveness gaps (who moves where, not only how "
                   "many)",
    "birth_rate": "new registrations per year in the atlas's universe (other registries print them, e.g. "
                  "Qichacha, but count another universe)",
    "exit_rate": "deregistrations (exits) per year in the atlas's universe, or Shenzhen's 42,600 read as gross "
                 "inflow (the gross reading)",
    "contenders_share": "any contender's AI-related enterprise count in the atlas's universe, at any date",
    "coastal_share": "the atlas's count for Jiangsu or Zhejiang province, or for any city of Guangdong, Jiangsu or "
                     "Zhejiang other than Shenzhen, Guangzhou, Nanjing and Hangzhou",
    "contenders.attractiveness": "the contenders' counts at two dates in the atlas's universe",
}
"""For each calibrated quantity, the data that would identify it (named in the report when it stays unconstrained)."""


def _identification_text(tables: dict[str, pd.DataFrame], options: dict, scenario: Scenario) -> str:
    """Regimes of the network effect, simulation-based calibration and leave-one-pattern-out, from their tables."""
    regimes = tables["regimes"]
    posterior = tables["posterior"].set_index("quantity").loc[NETWORK_EFFECT]
    text = ["## Is the network effect identified?\n",
            f"Network effect α: posterior median {number(posterior['median'])}, {CREDIBLE} "
            f"{span(posterior.lo, posterior.hi)}, width ratio {fixed(posterior.width_ratio)} ({posterior.verdict}). "
            f"Probability of each regime (`regimes.csv`; near-martingale, |α − 1| < {number(MARTINGALE_BAND)}, is a "
            "band inside the other two):\n",
            markdown_table(pd.DataFrame({
                "regime": regimes.regime, "condition": regimes.condition,
                "prior probability": [percent(v, 1) for v in regimes.prior],
                "posterior probability": [percent(v, 1) for v in regimes.posterior],
                "posterior odds / prior odds": regimes.bayes_factor}))]
    factors = regimes.bayes_factor.dropna()
    if len(factors) and factors.between(1 / 3, 3).all():
        text.append("\nEvery regime's odds move by less than a factor 3 from prior to posterior: the patterns do not "
                    "discriminate between tipping, a martingale and dispersion.\n")
    else:
        best = regimes.loc[regimes.bayes_factor.idxmax()]
        text.append(f"\nThe data favour **{best.regime}** ({best.condition}): odds × {number(best.bayes_factor, 2)}.\n")
    pools = [c for c in scenario.cities if c.pool]
    if pools and all(p.places == 1 for p in pools):
        text.append(f"\nCaveat: the pool ({', '.join(f'{p.name}, {count(p.firms)} firms at the start' for p in pools)}) "
                    "takes part in entry and relocation as one place, network term included, and "
                    + ("without congestion" if all(p.capacity is None for p in pools) else "with its capacity")
                    + ": a verdict on α carried by the national total or a share of it (below) depends on treating "
                    "the rest of the country as one agglomeration.\n")
    elif pools:
        text.append("\nThe rest of the country enters as pools of many places ("
                    + ", ".join(f"{p.name}: {p.places} places" for p in pools)
                    + "), each place with a fixed rank-size share of its pool's firms, its own network term and its "
                    "congestion (docs/ODD.md §3.3), not as one agglomeration; a verdict on α carried by the national "
                    "total or a share of it still rests on those assumed numbers and shares.\n")
    if "coverage" in tables:
        cov = tables["coverage"]
        text.append(f"\n**Simulation-based calibration** (Talts et al. 2018; {int(cov.datasets.iloc[0])} synthetic "
                    f"datasets from the prior, each fitted by the same ABC-SMC at {options.get('reduced_particles')} "
                    f"particles and at most {options.get('reduced_generations')} generations; "
                    f"{options.get('sbc_wall_time_s', float('nan')):.0f} s). Coverage of the {CREDIBLE} (near 90% "
                    "when the posterior means what it says; ± its binomial standard error), the p-value of a "
                    "chi-square test of uniform ranks, the mean rank (0.5 unbiased) and the intervals' median width "
                    "over the prior's (`coverage.csv`, `sbc_ranks.csv`):\n\n" + markdown_table(pd.DataFrame({
                        "quantity": cov.quantity,
                        "coverage": [f"{percent(c)} ± {percent(se)}" for c, se in
                                     zip(cov.coverage_90, cov.coverage_se, strict=True)],
                        "χ² test p-value": [p_value(p) for p in cov.chi2_p], "mean rank (0–1)": cov.mean_rank,
                        "width ratio": [fixed(w) for w in cov.width_ratio]}))
                    + "\n![SBC ranks](figures/sbc_ranks.png)\n")
    if "leave_one_out" in tables:
        lopo = tables["leave_one_out"]
        text.append("\n**Leave one pattern out** (fitted without the pattern at the same reduced settings; the pattern "
                    "predicted from the posterior particles' own simulations; `leave_one_out.csv`). The last columns "
                    "show what the fit without the pattern says about α: a pattern that carries information on α "
                    "widens α's interval when it is left out.\n\n"
                    + markdown_table(_leave_one_out_table(lopo)) + "\n")
        reference, left = lopo.iloc[0], lopo.iloc[1:]
        widest = left.loc[left.alpha_width_ratio.idxmax()]
        moved = left.loc[(left.p_alpha_above_1 - reference.p_alpha_above_1).abs().idxmax()]
        text.append(f"At these settings every pattern together gives α the width ratio "
                    f"{fixed(reference.alpha_width_ratio)} and P(α > 1) = {percent(reference.p_alpha_above_1)}. "
                    f"Leaving out `{widest.left_out}` widens α's interval most (to {fixed(widest.alpha_width_ratio)}); "
                    f"leaving out `{moved.left_out}` moves P(α > 1) most (to {percent(moved.p_alpha_above_1)}). "
                    + (f"Every left-out pattern is predicted inside the {PREDICTIVE} of the fit without it."
                       if left.inside_90.astype(bool).all() else f"Not predicted inside the {PREDICTIVE} without it: "
                       + ", ".join(f"`{r.left_out}`" for r in left.itertuples() if not r.inside_90) + ".") + "\n")
    loose = tables["posterior"][tables["posterior"].verdict != "constrained"].quantity
    named = [q for q in loose if q in IDENTIFYING_DATA]
    if named:
        text.append(f"\n**What would identify what stays unidentified** (quantities whose {CREDIBLE} is more than "
                    "half as wide as their prior's):\n\n" + "\n".join(f"- `{q}`: {IDENTIFYING_DATA[q]}." for q in named) + "\n")
    return "\n".join(text)


def _leave_one_out_table(lopo: pd.DataFrame) -> pd.DataFrame:
    """The leave-one-pattern-out table as the report shows it: each pattern's values in its own unit."""
    rows = []
    for r in lopo.itertuples():
        share = not np.isfinite(r.documented) and np.isfinite(r.lower)  # a documented range of a share
        shown = _shown("group_share" if share else "firms")
        rows.append({
            "left out": r.left_out,
            "documented": shown(r.documented) if np.isfinite(r.documented) else span(r.lower, r.upper, shown),
            "predicted median": shown(r.predicted_median),
            PREDICTIVE: span(r.predicted_lo, r.predicted_hi, shown),
            "error of the median": signed(r.error_of_median, _error),
            "inside": "–" if not isinstance(r.inside_90, bool | np.bool_) else ("yes" if r.inside_90 else "no"),
            "α median": r.alpha_median, f"α {CREDIBLE}": span(r.alpha_lo, r.alpha_hi),
            "α width ratio": fixed(r.alpha_width_ratio), "P(α > 1)": percent(r.p_alpha_above_1)})
    return pd.DataFrame(rows)


def _overtaking_text(overtaking: pd.DataFrame, end: int) -> str:
    """How much of the documented order at the end the assumed city differences explain without the constants."""
    if len(overtaking) < 2:
        return ""
    first, second = overtaking.sort_values("documented_start", ascending=False).city.iloc[:2]
    return (f"\n**Why the order of {first} and {second} changes or holds.** With city-symmetric parameters a network "
            f"effect favours the bigger city at the start ({first}). The assumed differences between the cities (sector "
            "mixes, anchors, budgets) act through the model's mechanisms; the estimated constants absorb the rest. "
            "Median of the scenario's replications at the point estimate, and with the fitted cities' constants set "
            f"to their mean (the assumed differences alone; `overtaking.csv`):\n\n"
            + markdown_table(overtaking.rename(columns={
                "documented_start": "documented at the start", "documented_end": f"documented {end}",
                "point_median": "point estimate", "equalised_median": "constants equalised"})))


def _other_reading_text(table: pd.DataFrame, other: pd.DataFrame) -> str:
    """Side by side: each quantity's posterior under this reading and under the other one."""
    merged = table.merge(other, on="quantity", suffixes=("", "_other"))
    rows = pd.DataFrame({
        "quantity": merged.quantity,
        "this reading": [f"{estimate(m, lo, hi)} {v}" for m, lo, hi, v in
                         zip(merged["median"], merged.lo, merged.hi, merged.verdict, strict=True)],
        f"{other.attrs.get('reading')} reading": [f"{estimate(m, lo, hi)} {v}" for m, lo, hi, v in
                                                  zip(merged.median_other, merged.lo_other, merged.hi_other,
                                                      merged.verdict_other, strict=True)],
    })
    return (f"\n**Under the reading {other.attrs.get('reading')}** (`{other.attrs.get('folder')}`, its own report "
            f"there): posterior median [{CREDIBLE}] and verdict.\n\n" + markdown_table(rows) + "\n")


def _validation_text(validation: pd.DataFrame) -> str:
    """Each validation figure against the posterior predictive (`validation.csv`), with the verdict either way."""
    numbers = validation[validation.quantity.isin(["firms", "national_firms", "group_share", "group_firms",
                                                   "gross_inflow"])]
    lines = []
    if len(numbers) > 1:
        inside = int((numbers.verdict == "inside").sum())
        valued = numbers.error[numbers.documented.notna()].abs()
        lines.append(f"Of {len(numbers)} held-out numbers, **{inside} lie inside their 90% predictive interval**"
                     + (f"; the predictive medians miss the documented values by {percent(valued.median(), 1)} "
                        f"(median of the absolute relative errors; largest {percent(valued.max(), 1)})"
                        if len(valued) else "") + " (`validation.csv`, `figures/validation.png`).\n")
    for r in validation.itertuples():
        if r.quantity == "overtake_by":
            lines.append(f"- **{r.city} overtakes {r.other} by the end-{r.model_time - 1} stock** (`{r.figure}`): in "
                         f"{r.share_by_year:.0%} of the posterior predictive draws the first year-start record with "
                         f"{r.city} ahead is {r.model_time} or earlier (never: {r.share_never:.0%}) — {r.verdict} with "
                         f"the documents. The record at {r.model_time}.0 is the stock at the end of {r.model_time - 1}.")
        elif r.quantity in ("rank", "order"):
            lines.append(f"- **{r.figure}** ({r.other} at model time {r.model_time}): holds in {percent(r.share_holds)} "
                         f"of the posterior predictive draws — {r.verdict} with the documents.")
        elif r.figure != "relocation_rare":
            shown = _shown(r.quantity)
            documented = (shown(r.documented) if r.documented == r.documented
                          else f"between {shown(r.lower)} and {shown(r.upper)}")
            lines.append(f"- **{r.figure}** ({r.quantity} at model time {r.model_time}): documented "
                         f"{documented}; model {shown(r.median)} ({PREDICTIVE} {span(r.lo, r.hi, shown)}; error of the "
                         f"median {signed(r.error, _error)}) — {r.verdict} the interval.")
        else:
            lines.append(f"- **Relocation is rare** (business demography; a prior, not a document figure): relocations "
                         f"between cities are {fixed(r.median)}% of firms a year ({PREDICTIVE} {fixed(r.lo)}% to "
                         f"{fixed(r.hi)}%), "
                         f"{'well under' if r.verdict == 'consistent' else 'not always under'} 1%.")
    return "\n".join(lines) + "\n"


def _drivers_text(drivers: pd.DataFrame, outputs: pd.DataFrame) -> str:
    """The drivers table: per output, its predictive interval and the quantities that drive it."""
    rows = []
    for col, sub in drivers.groupby("output", sort=False):
        r = sub.iloc[0]
        as_year = str(col).startswith("year")
        shown = (lambda v: f"{v:.0f}") if as_year else number
        rows.append({"output": col, "median": shown(r["median"]), PREDICTIVE: span(r.lo, r.hi, shown),
                     "driven by (Spearman ρ)": "; ".join(
                         f"{q.quantity} {signed(q.rho, fixed)}"
                         f"{' (not constrained)' if q.verdict == 'not constrained' else ''}" for q in sub.itertuples())})
    undriven = [c for c in outputs.columns if c not in set(drivers.output)]
    table = markdown_table(pd.DataFrame(rows, columns=["output", "median", PREDICTIVE, "driven by (Spearman ρ)"]))
    return table + (f"\nNo quantity reaches the threshold for: {', '.join(map(str, undriven))}.\n" if undriven else "")
