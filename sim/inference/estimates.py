"""What a calibration's posterior says: the point estimate, its runs, the posterior predictive and the tables of it.

The point estimate written to ``calibrated.yaml`` takes the posterior median of every
parameter, then re-solves the constants of the cities with a fitted count so that the
median of the scenario's own replications hits the documented counts (a BLP-style
contraction, Berry 1994): the medians of a non-identified posterior need not fit
jointly, the re-solved constants do. Posterior predictive draw ``k`` simulates with
``SeedSequence(seed, spawn_key=(3, k))``, the resampling uses ``(2, 0)``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sim._progress import tqdm
from sim.analysis.abc_smc import Population, Prior, run_batch, weighted_quantile
from sim.experiments.ensemble import replication_seed
from sim.experiments.executors import Executor, ExecutorSpec, mapper
from sim.inference.data import Figure
from sim.inference.problem import Layout, Problem
from sim.model.metrics import BAND as INTERVAL

MIN_ESS = 100
"""Smallest effective sample size of the final ABC population whose intervals and verdicts are read.

Assumption: each 5% tail of a weighted 90% interval then rests on about 5 effective particles;
with fewer, the interval's width, and so the width ratio behind 'constrained', is mostly noise
(a tiny calibration with ESS 6 would call quantities 'constrained' from its few particles)."""

CONSTRAINED = ("constrained", "weakly constrained")
"""The verdicts that say the data narrow a quantity (see :func:`posterior_table`)."""


def point_estimate(problem: Problem, posterior: Population, executor: ExecutorSpec | Executor, replications: int,
                   tolerance: float = 0.002, max_iterations: int = 30, chunk: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Posterior medians, with the constants of fitted cities re-solved to hit their counts.

    Each iteration runs the scenario's ``replications`` (its own seeds, common
    random numbers) and moves each fitted city's constant by
    ``log(1 + gap / inflow)``, the gap between the documented and the median
    simulated count relative to the median gross inflow — a damped BLP-style
    contraction. Stops when every gap is within ``tolerance`` (relative).

    Returns:
        The point estimate (natural scale) and the summaries of its replications ``[r, m]``.
    """
    values = problem.prior.natural(np.array([weighted_quantile(posterior.theta[:, j], posterior.weights, 0.5)
                                             for j in range(posterior.theta.shape[1])]))
    simulate = problem.simulator()
    seeds = [replication_seed(problem.scenario.seed, r) for r in range(replications)]
    solved = [(problem.prior.names.index(f"cities.{f.city}.attractiveness"), f) for f in problem.fitted
              if f.quantity == "firms" and f"cities.{f.city}.attractiveness" in problem.prior.names]
    for _ in range(max_iterations):
        sums = run_batch(simulate, np.tile(values, (replications, 1)), seeds, mapper(executor), chunk)
        gaps = []
        for j, fig in solved:
            med = float(np.median(problem.layout.value(sums, fig)))
            inflow_fig = fig.model_copy(update={"quantity": "gross_inflow",
                                                "from_stock_end": problem.scenario.time.start - 1})
            inflow = float(np.median(problem.layout.value(sums, inflow_fig)))
            gaps.append(fig.value / med - 1.0)
            values[j] += math.log(max(1.0 + (fig.value - med) / max(inflow, 1.0), 0.05))
        if not gaps or max(abs(g) for g in gaps) <= tolerance:
            break
    sums = run_batch(simulate, np.tile(values, (replications, 1)), seeds, mapper(executor), chunk)
    return values, sums


def symmetric_run(problem: Problem, point: np.ndarray, executor: ExecutorSpec | Executor, replications: int,
                  chunk: int = 5) -> np.ndarray:
    """The point estimate with the fitted cities' constants set to their mean, on the scenario's seeds.

    Shows what the *assumed* city differences (sector mixes, anchors, policies)
    do without the estimated difference between the constants. Returns the
    summaries ``[r, m]``.
    """
    idx = [problem.prior.names.index(f"cities.{f.city}.attractiveness") for f in problem.fitted
           if f.quantity == "firms" and f"cities.{f.city}.attractiveness" in problem.prior.names]
    values = np.array(point, dtype=float)
    if idx:
        values[idx] = values[idx].mean()
    seeds = [replication_seed(problem.scenario.seed, r) for r in range(replications)]
    return run_batch(problem.simulator(), np.tile(values, (replications, 1)), seeds, mapper(executor), chunk)


def posterior_predictive(problem: Problem, posterior: Population, draws: int, seed: int, executor: ExecutorSpec | Executor,
                         chunk: int = 25, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``draws`` particles by weight and simulate each with a fresh seed.

    Returns:
        The draws' values (natural scale) ``[draws, d]`` and summaries ``[draws, m]``.
    """
    rng = np.random.default_rng(replication_seed(seed, 2, 0))
    idx = rng.choice(len(posterior.theta), size=draws, p=posterior.weights)
    values = problem.prior.natural(posterior.theta[idx])
    seeds = [replication_seed(seed, 3, k) for k in range(draws)]
    with tqdm(total=draws, desc="posterior predictive", unit="sim", disable=not progress) as bar:
        sums = run_batch(problem.simulator(), values, seeds, mapper(executor), chunk, bar)
    return values, sums


def posterior_table(prior: Prior, posterior: Population, rng_seed: int = 0) -> pd.DataFrame:
    """Per calibrated quantity: prior and posterior median and 90% interval, width ratio, verdict.

    ``width_ratio`` is the posterior's 90% interval width over the prior's, on
    the internal scale (log10 for log-uniform priors): near 1 the data say
    nothing; ``constrained`` below 0.5, ``weakly constrained`` below 0.8. Every
    verdict is ``not interpretable`` when the population's effective sample size
    is below :data:`MIN_ESS`; ``ess`` and ``reason`` say so in the table.
    """
    reason = too_few_particles(posterior)
    prior_draws = prior.sample(np.random.default_rng(rng_seed), 20000)
    qs = [INTERVAL[0], 0.5, INTERVAL[1]]
    rows = []
    for j, (name, spec) in enumerate(zip(prior.labels, prior.specs, strict=True)):
        before = np.quantile(prior_draws[:, j], qs)
        after = weighted_quantile(posterior.theta[:, j], posterior.weights, np.array(qs))
        ratio = (after[2] - after[0]) / (before[2] - before[0])
        nat_before, nat_after = (10.0 ** q if spec.kind == "loguniform" else q for q in (before, after))
        rows.append({"quantity": name, "prior": spec.kind, "prior_median": nat_before[1], "prior_lo": nat_before[0],
                     "prior_hi": nat_before[2], "median": nat_after[1], "lo": nat_after[0], "hi": nat_after[2],
                     "width_ratio": ratio,
                     "verdict": "not interpretable" if reason else "constrained" if ratio < 0.5
                     else "weakly constrained" if ratio < 0.8 else "not constrained",
                     "ess": posterior.ess(), "reason": reason})
    return pd.DataFrame(rows)


def too_few_particles(posterior: Population) -> str:
    """Why the population's intervals and verdicts are not interpretable (its ESS below :data:`MIN_ESS`); '' if they are."""
    ess = posterior.ess()
    if ess >= MIN_ESS:
        return ""
    return (f"effective sample size {ess:.0f}, below the {MIN_ESS} needed for 90% credible intervals to rest on more than "
            "a few particles in each tail; rerun with more --particles")


def overtake_year(layout: Layout, summaries: np.ndarray, first: str, second: str) -> np.ndarray:
    """First recorded year in which ``first`` has more firms than ``second`` (``nan`` if never)."""
    firms = layout.firms(summaries)
    ahead = firms[..., layout.cities.index(first)] > firms[..., layout.cities.index(second)]
    years = np.array(layout.years, dtype=float)
    return np.where(ahead.any(axis=-1), years[np.argmax(ahead, axis=-1)], np.nan)


def validation_column(figure: Figure) -> str:
    """The column of :func:`predictive_outputs` holding a validation figure's simulated counterpart."""
    if figure.quantity == "overtake_by":
        return f"year {figure.city} overtakes {figure.other}"
    if figure.statement:
        return f"{figure.id} holds"
    return f"{figure.id} at {figure.time}"


def predictive_outputs(problem: Problem, summaries: np.ndarray) -> pd.DataFrame:
    """Per predictive draw: every city's final count, national total, relocations per year, and validation quantities."""
    layout, end = problem.layout, problem.scenario.time.end
    firms = layout.firms(summaries)
    out = {f"{c} {end}": firms[:, -1, i] for i, c in enumerate(layout.cities)}
    out[f"national {end}"] = firms[:, -1].sum(axis=1)
    years = len(layout.years) - 1
    out["relocations per year, % of firms"] = 100 * layout.moves(summaries)[:, -1] / years / firms.sum(-1).mean(-1)
    for fig in problem.targets.validation():
        if fig.quantity == "overtake_by":
            out[validation_column(fig)] = overtake_year(layout, summaries, fig.city, fig.other)
        elif fig.statement:
            out[validation_column(fig)] = layout.holds(summaries, fig).astype(float)   # 1 where it holds
        else:
            out[validation_column(fig)] = layout.value(summaries, fig)
    return pd.DataFrame(out)
