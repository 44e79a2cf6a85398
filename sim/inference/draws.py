"""Parameter draws for policy design: a scenario's calibration posterior, its priors, or ranges given as factors.

Each function returns a table with one row per draw and one column per dotted path
(``parameters.network_effect``, ``cities.Beijing.attractiveness``, ``cities.Hangzhou.firms``),
ready for :func:`sim.experiments.policy.plan_optimisation` and :func:`sim.experiments.policy.plan_game`.
A calibrated quantity that sets several fields (the contenders' share of a pool's firms, a constant
shared by several cities) is expanded into every field it sets, for that scenario, so a draw is
exactly the scenario the calibration simulated. Draws come from the calibration the scenario names
in its ``calibration:`` key (:class:`sim.inference.data.CalibrationFiles`), never from another
scenario's. They are seeded by ``SeedSequence(seed, spawn_key=(1, 0, 0))`` — a key of three
entries, distinct from every run's ``(draw, replication)`` — so the same seed gives the same draws
on any machine.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.experiments.ensemble import replication_seed
from sim.experiments.sweep import parse_range
from sim.inference.data import CalibrationFiles, PriorFile, load_priors
from sim.inference.errors import InferenceError
from sim.inference.problem import Prior
from sim.scenario import Scenario
from sim.scenario.factors import Factor
from sim.scenario.resources import shown


@dataclass(frozen=True)
class Draws:
    """Parameter draws, as the quantities drawn and as the scenario fields they set.

    Attributes:
        quantities: one row per draw, one column per quantity (its label: ``network_effect``,
            ``contenders_share``), for tables and scenario discovery.
        fields: the same draws as the fields they set, one column per dotted path
            (:func:`expand`), for the policy plans.
        source: where the draws come from, naming the files.
    """

    quantities: pd.DataFrame
    fields: pd.DataFrame
    source: str


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(replication_seed(seed, 1, 0, 0))


def expand(scenario: Scenario, factors: Sequence[Factor], values: np.ndarray) -> pd.DataFrame:
    """Draws of ``factors`` (rows of ``values``, natural scale) as the scenario fields they set, one column per path.

    A plain factor sets its target; a shared constant sets it for each of its cities; a split of a
    pool's firms sets the firms of the pool and of each named city. Every field some draw changes is
    a column, holding each draw's value of it.
    """
    base = scenario.resolved()
    drawn = []
    for draw in np.atleast_2d(values):
        data = pickle.loads(pickle.dumps(base))  # a deep copy of plain data
        for factor, value in zip(factors, draw, strict=True):
            factor.apply(data, value)
        drawn.append(_numeric_fields(data))
    before = _numeric_fields(base)
    paths = [path for path in drawn[0] if any(d[path] != before[path] for d in drawn)]
    return pd.DataFrame([[d[path] for path in paths] for d in drawn], columns=paths)


def _numeric_fields(data: dict) -> dict[str, float]:
    """Every number among the parameters and the cities' own fields, by dotted path."""
    fields = {f"parameters.{name}": value for name, value in data["parameters"].items() if _number(value)}
    for city in data["cities"]:
        name = city["name"]
        prefix = f"cities.{name}" if name.isidentifier() else f"cities[{name}]"
        fields.update({f"{prefix}.{key}": value for key, value in city.items() if _number(value)})
    return fields


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _draws(scenario: Scenario | None, factors: Sequence[Factor], values: np.ndarray, source: str) -> Draws:
    labels = [f.label for f in factors]
    quantities = pd.DataFrame(np.atleast_2d(values), columns=labels)
    fields = (expand(scenario, factors, values) if scenario is not None
              else pd.DataFrame(np.atleast_2d(values), columns=[f.target for f in factors]))
    return Draws(quantities, fields, source)


def posterior_draws(n: int, seed: int, scenario: Scenario) -> Draws:
    """``n`` draws from the scenario's calibration posterior: last ABC-SMC generation resampled by weight.

    Args:
        n: number of draws (≥ 1).
        seed: root seed of the resampling.
        scenario: the scenario whose ``calibration:`` names the posterior (its folder's ``populations.csv``
            and ``priors.yaml``).

    Raises:
        InferenceError: no calibration named, or its files missing or written with other priors.
    """
    files = CalibrationFiles.of(scenario)
    prior = Prior(tuple(_priors(files).priors))
    try:
        frame = pd.read_csv(files.populations)
    except (OSError, ValueError) as exc:
        raise InferenceError(f"--draws: cannot read the posterior of {files.name} ({files.populations.name}): "
                             f"{' '.join(str(exc).split())}; use --prior or --range") from None
    missing = [c for c in ["generation", "weight", *prior.labels] if c not in frame.columns]
    if missing:
        raise InferenceError(f"{files.name}/{files.populations.name}: columns: missing {', '.join(missing)} "
                             f"(not written with {files.name}/{files.priors.name}?)")
    last = frame[frame.generation == frame.generation.max()]
    weights = last.weight.to_numpy(dtype=float)
    picked = _rng(seed).choice(len(last), size=n, p=weights / weights.sum())
    source = f"the posterior of {scenario.name}'s calibration ({shown(files.populations)}, last ABC-SMC generation)"
    return _draws(scenario, prior.specs, last[prior.labels].to_numpy(dtype=float)[picked], source)


def _priors(files: CalibrationFiles) -> PriorFile:
    if not files.priors.is_file():
        raise InferenceError(f"{files.name}: no {files.priors.name} beside its calibration, so its quantities are "
                             "unknown; use --range PATH=LO:HI")
    return load_priors(files.priors)


def factor_draws(factors: Sequence[Factor], n: int, seed: int, scenario: Scenario | None = None,
                 source: str = "") -> Draws:
    """``n`` independent draws of each factor from its distribution (uniform, log-uniform or truncated normal).

    With a scenario, the fields are expanded (:func:`expand`); without one they are the factors' targets.
    """
    prior = Prior(tuple(factors))
    return _draws(scenario, prior.specs, prior.natural(prior.sample(_rng(seed), n)), source)


def prior_draws(n: int, seed: int, scenario: Scenario) -> Draws:
    """``n`` draws from the priors of the scenario's calibration (its folder's ``priors.yaml``)."""
    files = CalibrationFiles.of(scenario)
    return factor_draws(_priors(files).priors, n, seed, scenario,
                        f"the priors of {scenario.name}'s calibration ({shown(files.priors)})")


def parameter_draws(n: int, seed: int, scenario: Scenario, prior: bool = False, ranges: Sequence[str] = ()) -> Draws:
    """The draws a policy command asked for, with a line saying where they come from (naming the files).

    Args:
        n: number of draws.
        seed: root seed.
        scenario: the scenario the draws vary; its ``calibration:`` names the posterior and priors.
        prior: draw from the priors instead of the posterior.
        ranges: ``PATH=LO:HI`` texts; if any, draw uniformly over them instead.

    Raises:
        InferenceError: conflicting options, bad ranges, no calibration, or an unreadable posterior.
    """
    if n < 1:
        raise InferenceError(f"--draws: need at least one draw, got {n}")
    if prior and ranges:
        raise InferenceError("--prior and --range: choose one source of parameter draws")
    if ranges:
        return factor_draws([parse_range(text) for text in ranges], n, seed, scenario,
                            f"uniform over {', '.join(ranges)}")
    return prior_draws(n, seed, scenario) if prior else posterior_draws(n, seed, scenario)
