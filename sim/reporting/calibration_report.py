"""The text of a calibration's ``report.md``: every number from a table of the result.

The tables are :meth:`sim.inference.results.CalibrationResult.tables`, written beside the report as CSV;
this module only formats them (the identification section: :mod:`sim.reporting.calibration_identification`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from sim.inference.estimates import CONSTRAINED
from sim.inference.problem import Problem
from sim.inference.results import (
    DRIVER_CORRELATION,
    PINNED_CORRELATION,
    STRONG_CORRELATION,
    CalibrationResult,
    forecast_cities,
)
from sim.model.metrics import BAND
from sim.reporting.calibration_identification import identification_text
from sim.reporting.calibration_text import CREDIBLE, PREDICTIVE, error_text, figure_stem, shown_as, unit_of
from sim.reporting.text import (
    count,
    estimate,
    fixed,
    markdown_table,
    number,
    path_unit,
    percent,
    percentile_name,
    signed,
    span,
)


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


def _interval_width_text(numbers: pd.DataFrame) -> str:
    """How wide the held-out numbers' intervals are against their documented values: coverage by width is cheap."""
    valued = numbers[numbers.documented.notna() & (numbers.documented > 0)]
    if valued.empty:
        return ""
    width = ((valued.hi - valued.lo) / valued.documented).median()
    return (f" The intervals are {fixed(width)} times the documented value wide (median): "
            + ("coverage this wide says the data fitted leave these figures open, not that the model predicts them."
               if width >= 1 else "narrow enough for coverage to test the model."))


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
                "statement": statements.statement, "at (model time)": [f"{t:g}" for t in statements.model_time],
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
                    "replications, and why:\n")
        text += [f"- `{r.figure}` ({percent(r.holds_point)}): "
                 + (r.note or "the fit trades it against the other patterns (the distance weighs every fitted pattern "
                              "alike); no conflict between sources is known.") for r in missed.itertuples()]
        text.append("")
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
    text: list[str] = [f"# Calibration report: {scenario.name}, {problem.targets.name}\n"]
    text.append(
        f"Written by `modu calibrate` (seed {result.seed}, executor {result.executor}, engine {options.get('engine')}) "
        f"on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Wall time **{result.wall_time:.0f} s**: ABC "
        f"{abc_time:.0f} s for {n_abc:,} simulations of {scenario.time.start}–{end}, the rest for the point estimate "
        f"and {len(result.values)} posterior predictive simulations."
        + (f" The ABC was resumed from `{Path(resumed).name}` (an earlier run with these settings; its generations were "
           f"kept and the run continued from the last one)." if resumed else "")
        + "\n\n"
        f"Method: ABC-SMC (Toni et al. 2009; Beaumont et al. 2009), implemented in `sim/analysis/abc_smc.py` on "
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
    resolved = (f", with the constants of {', '.join(fitted_cities)} re-solved so that the median of the scenario's "
                f"{scenario.replications} replications (its own seeds, engine {options.get('engine')}) hits their "
                "documented counts" if fitted_cities else " (no city count is fitted, so no constant is re-solved)")
    fit = tables["fit"]
    text.append(f"The point estimate (`calibrated.yaml`): posterior medians{resolved}. "
                + (f"Errors of the point estimate and of the posterior predictive ({len(result.values)} draws; "
                   "`fit.csv`):\n" if not fit.empty else
                   "Every fitted pattern is a statement of who leads (below), none a number.\n"))
    shown = [shown_as(q) for q in fit.quantity]
    text.append("" if fit.empty else markdown_table(pd.DataFrame({
        "figure": fit.figure, "unit": [unit_of(q) for q in fit.quantity],
        "documented": [f(d) if np.isfinite(d) else span(lo, hi, f) for f, d, lo, hi in
                       zip(shown, fit.documented, fit.lower, fit.upper, strict=True)],
        "point estimate (median)": [f(v) for f, v in zip(shown, fit.point_median, strict=True)],
        "error": [signed(e, error_text) for e in fit.point_error],
        "predictive median": [f(v) for f, v in zip(shown, fit.predictive_median, strict=True)],
        PREDICTIVE: [span(lo, hi, f) for f, lo, hi in zip(shown, fit.predictive_lo, fit.predictive_hi, strict=True)],
        "predictive error": [signed(e, error_text) for e in fit.predictive_error]})))
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
        text.append(f"\n![forecast {city}](figures/forecast_{figure_stem(city)}.png)\n")

    text.append("## Validation against figures not used in the fit\n")
    text.append(_validation_text(tables["validation"]))
    if tables["validation"].documented.notna().any():
        text.append("\n![held-out figures](figures/validation.png)\n")

    text.append(identification_text(tables, options, scenario))

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
                        if len(valued) else "") + " (`validation.csv`, `figures/validation.png`)."
                     + _interval_width_text(numbers) + "\n")
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
            shown = shown_as(r.quantity)
            documented = (shown(r.documented) if r.documented == r.documented
                          else f"between {shown(r.lower)} and {shown(r.upper)}")
            lines.append(f"- **{r.figure}** ({r.quantity} at model time {r.model_time}): documented "
                         f"{documented}; model {shown(r.median)} ({PREDICTIVE} {span(r.lo, r.hi, shown)}; error of the "
                         f"median {signed(r.error, error_text)}) — {r.verdict} the interval.")
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
