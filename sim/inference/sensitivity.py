"""Global sensitivity analysis of a scenario with SALib (``modu sensitivity``).

Which behavioural parameters and policy levers drive a scenario's final firm
counts, shares and concentration (HHI)? Factors vary over ranges (by default
the calibration's 90% posterior intervals, else the priors, for the
behavioural parameters and city constants; ``[0, 1]`` for each lever weight
the scenario uses; ``[0, 2]`` for a multiplier of every city's budget). Each
sampled point runs ``replications`` simulations with the same seeds at every
point (common random numbers), so the indices measure the factors, not the
noise; outputs are averaged over those replications.

- ``sobol``: Saltelli sampling and Sobol' first-order (S1) and total-order
  (ST) indices with bootstrap confidence intervals; ``samples`` is the base
  sample N (a power of 2), costing N·(factors + 2) points.
- ``morris``: elementary effects; μ* (mean absolute effect) with its
  bootstrap confidence interval, and σ; ``samples`` is the number of
  trajectories, costing samples·(factors + 1) points.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from sim.analysis.abc_smc import run_batch
from sim.experiments.ensemble import replication_seed
from sim.experiments.executors import Executor, ExecutorSpec, mapper
from sim.experiments.patching import factor_design
from sim.inference.data import CalibrationFiles
from sim.inference.problem import Layout, simulate_chunk
from sim.inference.quantities import load_priors
from sim.model import metrics
from sim.scenario import Scenario, validate
from sim.scenario.factors import Factor, check_factors
from sim.scenario.paths import parse_path
from sim.scenario.reading import load_model
from sim.scenario.schema import Strict

LEVER_RANGE = (0.0, 1.0)
"""Range of each lever weight β_X[s] (assumption: the scenarios' example weights, 0.3-0.4, lie inside; 0 = no effect)."""

BUDGET_RANGE = (0.0, 2.0)
"""Range of the multiplier of every city's budget (assumption: from no policy to twice the scenario's)."""

DEFAULT_SAMPLES = {"sobol": 128, "morris": 20}
"""Default base samples (Sobol') and trajectories (Morris): a few minutes on two cores."""

CONF_LEVEL = 0.95
"""Confidence level of the bootstrap intervals of the indices."""

MIN_SAMPLES = {"sobol": 64, "morris": 10}
"""Fewest Sobol' base samples N, or Morris trajectories, whose leading factors are stated as findings.

Assumption: SALib's bootstrap intervals resample these N rows (or trajectories); with fewer,
the interval itself rests on a handful of distinct values and cannot be trusted to say how
uncertain the index is, however narrow it happens to be."""

MAX_RELATIVE_CONF = 0.5
"""Widest confidence half-width, as a fraction of the leading index, for that factor to be stated as leading.

Assumption: beyond half its value, an index cannot be told from one half its size or less,
so the ranking it gives is not a finding (e.g. ST = 15.6 ± 4.5e+03 says nothing)."""


class FactorFile(Strict):
    """A ``--factors`` file: ``factors: [{target, low, high, kind or log, scale, why}, ...]`` (see :class:`Factor`)."""

    factors: list[Factor] = Field(min_length=2)


def default_factors(scenario: Scenario, ranges: str = "posterior") -> list[Factor]:
    """The default factors of a scenario.

    The quantities the calibration the scenario names (``calibration:``) estimates, for the
    scenario's cities: their 90% posterior interval (``ranges="posterior"``, from that
    calibration's ``posterior.csv``) or their prior's support (normal priors: mean ± 2 sd), from
    its ``priors.yaml``; a quantity that sets several fields (a share split among cities, a
    constant shared by several) keeps doing so. None for a scenario that names no calibration.
    Then every lever weight the scenario uses on ``LEVER_RANGE`` and a budget multiplier on
    ``BUDGET_RANGE``.
    """
    cities = {c.name for c in scenario.cities}
    factors = []
    if scenario.calibration is not None and (files := CalibrationFiles.of(scenario)).priors.is_file():
        posterior = (pd.read_csv(files.posterior).set_index("quantity")
                     if ranges == "posterior" and files.posterior.is_file() else None)
        for spec in load_priors(files.priors).priors:
            parts = parse_path(spec.target)
            if parts[0] == "cities" and parts[1] not in cities:
                continue
            if posterior is not None and spec.label in posterior.index:
                row = posterior.loc[spec.label]
                low, high, why = float(row.lo), float(row.hi), f"calibration: 90% posterior interval ({files.name})"
            elif spec.kind == "normal":
                low, high = max(spec.low, spec.mean - 2 * spec.sd), min(spec.high, spec.mean + 2 * spec.sd)
                why = f"prior mean ± 2 sd ({spec.why})"
            else:
                low, high, why = spec.low, spec.high, f"prior support ({spec.why})"
            kind = "loguniform" if spec.kind == "loguniform" else "uniform"
            factors.append(spec.model_copy(update={"low": low, "high": high, "kind": kind, "mean": None, "sd": None,
                                                   "why": why}))
    for lever, by_sector in scenario.parameters.lever_effects.items():
        for sector, beta in by_sector.items():
            if beta != 0:
                factors.append(Factor(target=f"parameters.lever_effects.{lever}.{sector}", low=LEVER_RANGE[0],
                                      high=LEVER_RANGE[1], why="assumption: LEVER_RANGE"))
    if any(c.policy and c.policy.budget > 0 for c in scenario.cities):
        factors.append(Factor(target="cities.*.policy.budget", scale=True, name="budget_scale", low=BUDGET_RANGE[0],
                              high=BUDGET_RANGE[1], why="assumption: BUDGET_RANGE"))
    return factors


def load_factors(path: Path) -> list[Factor]:
    """Read a ``--factors`` YAML file; bad input raises :class:`sim.scenario.ScenarioError` (one line)."""
    return load_model(path, FactorFile).factors


def outputs_of(scenario: Scenario, summaries: np.ndarray) -> pd.DataFrame:
    """Final firms per city, final shares of the non-pool cities and their HHI, per summary row."""
    layout = Layout.of(scenario)
    final = layout.firms(summaries)[:, -1, :]
    out = {f"firms {c}": final[:, i] for i, c in enumerate(layout.cities)}
    keep = np.array([not c.pool for c in scenario.cities])
    keep = keep if keep.any() else ~keep
    shares = metrics.shares(final[:, keep])
    for name, s in zip(np.array(layout.cities)[keep], shares.T, strict=True):
        out[f"share {name}"] = s
    out["hhi"] = metrics.hhi(shares)
    return pd.DataFrame(out)


@dataclass
class Analysis:
    """A finished sensitivity analysis.

    Attributes:
        factors: the factors.
        method: ``sobol`` or ``morris``.
        samples: Sobol' base sample N or Morris trajectories.
        X: the sampled points (SALib's scale: log10 for log factors) ``[n, factors]``.
        outputs: the outputs at each point (mean over replications).
        indices: one row per output × factor.
        leading: one row per output: its leading factor, whether that is a finding and why not
            (:func:`leading_factors`).
    """

    factors: list[Factor]
    method: str
    samples: int
    X: np.ndarray
    outputs: pd.DataFrame
    indices: pd.DataFrame
    leading: pd.DataFrame


def analyse(scenario: Scenario, factors: list[Factor], method: str, samples: int, replications: int, seed: int,
            executor: ExecutorSpec | Executor, engine: str = "counts", chunk: int = 25,
            progress: bool = True) -> Analysis:
    """Sample the factors, simulate every point ``replications`` times and compute the indices."""
    from SALib.analyze import morris as morris_analyze
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import morris as morris_sample
    from SALib.sample import sobol as sobol_sample

    from sim._progress import tqdm

    problem = {"num_vars": len(factors), "names": [f.label for f in factors],
               "bounds": [f.bounds() for f in factors]}
    if method == "sobol":
        X = sobol_sample.sample(problem, samples, calc_second_order=False, seed=seed)
    else:
        X = morris_sample.sample(problem, samples, seed=seed)
    values = np.column_stack([f.natural(X[:, j]) for j, f in enumerate(factors)])
    template = scenario.resolved()
    template["engine"] = engine
    check_factors(template, factors, "factors")
    design = factor_design(validate(template, scenario.name), factors)
    simulate = functools.partial(simulate_chunk, template, list(factors), design=design)
    rows = np.repeat(values, replications, axis=0)
    seeds = [replication_seed(seed, r) for _ in range(len(values)) for r in range(replications)]
    with tqdm(total=len(rows), desc=f"{scenario.name} {method}", unit="run", disable=not progress) as bar:
        summaries = run_batch(simulate, rows, seeds, mapper(executor), chunk, bar)
    outputs = outputs_of(scenario, summaries)
    outputs = outputs.groupby(np.arange(len(outputs)) // replications).mean()
    frames = []
    for col in outputs.columns:
        Y = outputs[col].to_numpy(dtype=float)
        if method == "sobol":
            res = sobol_analyze.analyze(problem, Y, calc_second_order=False, conf_level=CONF_LEVEL, seed=seed)
            cols = ["S1", "S1_conf", "ST", "ST_conf"]
        else:
            res = morris_analyze.analyze(problem, X, Y, conf_level=CONF_LEVEL, seed=seed)
            cols = ["mu", "mu_star", "mu_star_conf", "sigma"]
        frame = pd.DataFrame({c: np.asarray(res[c], dtype=float) for c in cols})
        frame.insert(0, "factor", problem["names"])
        frame.insert(0, "output", col)
        frames.append(frame)
    indices = pd.concat(frames, ignore_index=True)
    return Analysis(factors, method, samples, X, outputs, indices, leading_factors(indices, method, samples))


def leading_factors(indices: pd.DataFrame, method: str, samples: int) -> pd.DataFrame:
    """Per output, the factor with the largest main index, and whether it may be stated as the leading one.

    A leading factor is ``interpretable`` only when ``samples`` reaches :data:`MIN_SAMPLES` and the
    index's confidence half-width is at most :data:`MAX_RELATIVE_CONF` of the index.

    Args:
        indices: :attr:`Analysis.indices`.
        method: ``sobol`` or ``morris``.
        samples: Sobol' base sample N or Morris trajectories.

    Returns:
        ``output, factor, index`` (ST or mu_star), ``value, conf`` (the index and its half-width),
        ``relative_conf`` (conf / |value|), ``enough_samples``, ``narrow`` (relative_conf within the
        maximum), ``interpretable`` (both) and ``reason`` (why not; empty when it is).
    """
    key, conf = main_index(method)
    what = "Sobol' base samples" if method == "sobol" else "Morris trajectories"
    rows = []
    for output, sub in indices.groupby("output", sort=False):
        finite = sub[np.isfinite(sub[key])]
        top = finite.loc[finite[key].idxmax()] if len(finite) else None
        value = float(top[key]) if top is not None else math.nan
        half = float(top[conf]) if top is not None else math.nan
        relative = half / abs(value) if value else math.inf
        enough, narrow = samples >= MIN_SAMPLES[method], relative <= MAX_RELATIVE_CONF
        reasons = [] if enough else [f"{samples} {what}, fewer than the {MIN_SAMPLES[method]} needed"]
        if top is None:
            reasons.append(f"no finite {key} (the output does not vary)")
        elif not narrow:
            reasons.append(f"its {CONF_LEVEL:.0%} bootstrap confidence interval ±{half:.2g} is {relative:.3g} times "
                           f"the index {value:.3g} (at most {MAX_RELATIVE_CONF:g} for a finding)")
        rows.append({"output": output, "factor": "" if top is None else top.factor, "index": key, "value": value,
                     "conf": half, "relative_conf": relative, "enough_samples": enough, "narrow": narrow,
                     "interpretable": not reasons, "reason": "; ".join(reasons)})
    return pd.DataFrame(rows)


def main_index(method: str) -> tuple[str, str]:
    """The index that ranks factors (ST for Sobol', μ* for Morris) and its confidence column."""
    return ("ST", "ST_conf") if method == "sobol" else ("mu_star", "mu_star_conf")
