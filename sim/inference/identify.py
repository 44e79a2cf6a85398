"""Is the network effect identified? Simulation-based calibration, leave-one-pattern-out, regime probabilities.

- **Simulation-based calibration** (Talts et al. 2018): draw parameters from
  the prior, simulate a synthetic dataset from each, fit it with the same
  ABC-SMC (reduced settings) and record the rank of the true value among
  draws of its posterior. If the posterior means what it says the ranks are
  uniform and the 90% intervals hold the truth 90% of the time
  (:func:`simulation_based_calibration`, :func:`coverage_table`).
- **Leave-one-pattern-out**: fit without pattern k, predict pattern k from
  the posterior's own simulations (:func:`leave_one_out`), and watch what
  leaving it out does to the posterior of the network effect.
- **Regimes** of the network effect α: tipping (α > 1), near-martingale
  (|α − 1| < 0.1) and dispersion (α < 1), prior and posterior probabilities
  (:func:`regime_table`).

Reproducibility: dataset ``i`` takes its truth from ``SeedSequence(seed,
spawn_key=(4, i))``, simulates with ``(5, i)`` and is fitted with the root
seed drawn from ``(6, i)``; leave-one-out fit ``k`` with the root seed from
``(7, k)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from sim.analysis.abc_smc import Population, abc_smc, run_batch, weighted_quantile
from sim.experiments.ensemble import replication_seed
from sim.experiments.executors import Executor, ExecutorSpec, mapper
from sim.inference.estimates import INTERVAL
from sim.inference.problem import Problem

NETWORK_EFFECT = "network_effect"
"""The label of the network effect α among the calibrated quantities."""

MARTINGALE_BAND = 0.1
"""|α − 1| below which the network effect counts as near-martingale (neither tipping nor dispersing)."""

RANK_DRAWS = 99
"""Posterior draws per SBC dataset: ranks run 0..99, 100 possible values."""

NONE_LEFT_OUT = "(none: every pattern)"
"""The ``left_out`` of the leave-one-out table's reference row, fitted with every pattern at the same settings."""

RANK_BINS = 10
"""Bins of the rank histogram and of its chi-square uniformity test."""


@dataclass(frozen=True)
class FitSettings:
    """Reduced ABC-SMC settings for the many fits of SBC and leave-one-out."""

    particles: int = 100
    generations: int = 5
    min_epsilon: float = 0.02


def _root(seed: int, *key: int) -> int:
    """An integer root seed derived from ``seed`` and a key (for a nested ABC run)."""
    return int(replication_seed(seed, *key).generate_state(1, np.uint64)[0] >> np.uint64(1))


def _fit(problem: Problem, settings: FitSettings, seed: int, executor: ExecutorSpec | Executor) -> tuple[Population, int]:
    """The last ABC-SMC generation at reduced settings, and the simulations it took."""
    populations = abc_smc(problem.simulator(), problem.distance, problem.prior, settings.particles,
                          settings.generations, settings.min_epsilon, seed, mapper(executor))
    return populations[-1], sum(p.simulations for p in populations)


@dataclass
class SBCResult:
    """Simulation-based calibration: per dataset, the truth, its rank and whether the 90% interval held it.

    Attributes:
        labels: the calibrated quantities.
        truth: true values (internal scale) ``[n, d]``.
        ranks: rank of each truth among :data:`RANK_DRAWS` posterior draws ``[n, d]``.
        covered: truth inside the weighted 90% interval ``[n, d]``.
        widths: 90% interval width over the prior's ``[n, d]``.
        epsilons: each fit's final tolerance ``[n]``.
        simulations: simulations in all.
    """

    labels: list[str]
    truth: np.ndarray
    ranks: np.ndarray
    covered: np.ndarray
    widths: np.ndarray
    epsilons: np.ndarray
    simulations: int

    def to_df(self) -> pd.DataFrame:
        """One row per dataset and quantity: ``dataset, quantity, truth, rank, covered, width_ratio, epsilon``."""
        n, d = self.truth.shape
        return pd.DataFrame({"dataset": np.repeat(np.arange(n), d), "quantity": np.tile(self.labels, n),
                             "truth": self.truth.ravel(), "rank": self.ranks.ravel(), "covered": self.covered.ravel(),
                             "width_ratio": self.widths.ravel(), "epsilon": np.repeat(self.epsilons, d)})


def simulation_based_calibration(problem: Problem, n_datasets: int, settings: FitSettings, seed: int,
                                 executor: ExecutorSpec | Executor, progress: bool = True) -> SBCResult:
    """Fit ``n_datasets`` synthetic datasets drawn from the prior and rank the truths in their posteriors.

    A synthetic dataset is the fitted patterns' simulated values at a prior draw;
    it is fitted as a point (a bounded pattern of the real data becomes a point
    value in the synthetic world), with the same distance and ABC-SMC.
    """
    from sim._progress import tqdm

    prior = problem.prior
    truth = np.vstack([prior.sample(np.random.default_rng(replication_seed(seed, 4, i)), 1) for i in range(n_datasets)])
    seeds = [replication_seed(seed, 5, i) for i in range(n_datasets)]
    data = problem.simulated(run_batch(problem.simulator(), prior.natural(truth), seeds, mapper(executor), 5))
    before = np.quantile(prior.sample(np.random.default_rng(seed), 20000), INTERVAL, axis=0)
    d = truth.shape[1]
    ranks, covered, widths = np.zeros((n_datasets, d), int), np.zeros((n_datasets, d), bool), np.zeros((n_datasets, d))
    epsilons, sims = np.zeros(n_datasets), n_datasets
    for i in tqdm(range(n_datasets), desc="simulation-based calibration", unit="dataset", disable=not progress):
        post, used = _fit(problem.with_observed(data[i]), settings, _root(seed, 6, i), executor)
        draws = post.theta[np.random.default_rng(replication_seed(seed, 8, i)).choice(
            len(post.theta), size=RANK_DRAWS, p=post.weights)]
        ranks[i] = (draws < truth[i]).sum(axis=0)
        for j in range(d):
            lo, hi = weighted_quantile(post.theta[:, j], post.weights, np.array(INTERVAL))
            covered[i, j] = lo <= truth[i, j] <= hi
            widths[i, j] = (hi - lo) / (before[1, j] - before[0, j])
        epsilons[i] = post.epsilon
        sims += used
    return SBCResult(prior.labels, truth, ranks, covered, widths, epsilons, sims)


def coverage_table(sbc: SBCResult) -> pd.DataFrame:
    """Per quantity: coverage of the 90% interval (with its binomial standard error), rank-uniformity test.

    ``chi2_p`` is the p-value of a chi-square test that the ranks fall uniformly into
    :data:`RANK_BINS` equal bins (small: the posterior is too narrow, too wide or biased);
    ``mean_rank`` is the ranks' mean over its uniform expectation (0.5: unbiased; above:
    the posterior sits below the truth); ``width_ratio`` the intervals' median width over the prior's.
    """
    n = len(sbc.truth)
    rows = []
    for j, name in enumerate(sbc.labels):
        counts = np.bincount(sbc.ranks[:, j] * RANK_BINS // (RANK_DRAWS + 1), minlength=RANK_BINS)
        cover = float(sbc.covered[:, j].mean())
        rows.append({"quantity": name, "datasets": n, "coverage_90": cover,
                     "coverage_se": math.sqrt(0.9 * 0.1 / n), "chi2_p": float(stats.chisquare(counts).pvalue),
                     "mean_rank": float(sbc.ranks[:, j].mean() / RANK_DRAWS),
                     "width_ratio": float(np.median(sbc.widths[:, j]))})
    return pd.DataFrame(rows)


def regime_table(problem: Problem, posterior: Population, rng_seed: int = 0) -> pd.DataFrame:
    """Prior and posterior probability of each regime of the network effect α (tipping, martingale, dispersion).

    The regimes overlap at α ≈ 1: ``near-martingale`` (|α − 1| < :data:`MARTINGALE_BAND`)
    is a band inside the other two, which split at α = 1.
    """
    j = problem.prior.labels.index(NETWORK_EFFECT)
    prior = problem.prior.natural(problem.prior.sample(np.random.default_rng(rng_seed), 20000))[:, j]
    post = problem.prior.natural(posterior.theta)[:, j]
    w = posterior.weights
    regimes = [("tipping", "α > 1", lambda a: a > 1), ("near-martingale", f"|α − 1| < {MARTINGALE_BAND}",
                                                        lambda a: np.abs(a - 1) < MARTINGALE_BAND),
               ("dispersion", "α < 1", lambda a: a < 1)]
    return pd.DataFrame([{"regime": name, "condition": cond, "prior": float(test(prior).mean()),
                          "posterior": float(np.sum(w * test(post))),
                          "bayes_factor": _bayes_factor(float(np.sum(w * test(post))), float(test(prior).mean()))}
                         for name, cond, test in regimes])


def _bayes_factor(post: float, prior: float) -> float:
    """Posterior odds over prior odds of an event (``nan`` at 0 or 1)."""
    if not (0 < post < 1 and 0 < prior < 1):
        return math.nan
    return (post / (1 - post)) / (prior / (1 - prior))


def leave_one_out(problem: Problem, settings: FitSettings, seed: int, executor: ExecutorSpec | Executor,
                  ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Fit without each pattern in turn; predict it from the posterior's simulations; track α.

    Returns:
        A first row fitted with every pattern at the same settings (``left_out`` =
        :data:`NONE_LEFT_OUT`, the reference for the α columns), then one row per
        left-out pattern: documented value or bounds, the predicted median and 90% band
        (weighted over the final particles' own simulations), whether the documented
        value lies inside, the relative error of the median, and the network effect's
        posterior median, 90% interval, width ratio and P(α > 1) without it.
    """
    j = problem.prior.labels.index(NETWORK_EFFECT)
    before = np.quantile(problem.prior.sample(np.random.default_rng(seed), 20000)[:, j], INTERVAL)

    def alpha(post: Population) -> dict[str, float]:
        a_lo, a_mid, a_hi = weighted_quantile(post.theta[:, j], post.weights, np.array([INTERVAL[0], 0.5, INTERVAL[1]]))
        return {"epsilon": post.epsilon, "alpha_median": a_mid, "alpha_lo": a_lo, "alpha_hi": a_hi,
                "alpha_width_ratio": (a_hi - a_lo) / (before[1] - before[0]),
                "p_alpha_above_1": float(np.sum(post.weights * (problem.prior.natural(post.theta)[:, j] > 1)))}

    reference, _ = _fit(problem, settings, _root(seed, 7, len(problem.fitted)), executor)
    rows = [{"left_out": NONE_LEFT_OUT, "documented": math.nan, "lower": None, "upper": None,
             "predicted_median": math.nan, "predicted_lo": math.nan, "predicted_hi": math.nan,
             "error_of_median": math.nan, "inside_90": None, **alpha(reference)}]
    for k, fig in enumerate(problem.fitted):
        if ids is not None and fig.id not in ids:
            continue
        post, _ = _fit(problem.without(fig.id), settings, _root(seed, 7, k), executor)
        predicted = problem.layout.value(post.summaries, fig)
        lo, mid, hi = weighted_quantile(predicted, post.weights, np.array([INTERVAL[0], 0.5, INTERVAL[1]]))
        rows.append({"left_out": fig.id, "documented": fig.value, "lower": fig.lower, "upper": fig.upper,
                     "predicted_median": mid, "predicted_lo": lo, "predicted_hi": hi,
                     "error_of_median": float(fig.relative_error(mid)), "inside_90": fig.inside(lo, hi), **alpha(post)})
    return pd.DataFrame(rows)
