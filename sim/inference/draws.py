"""Parameter draws for policy design: the calibration posterior, the priors, or ranges given as factors.

Each function returns a table with one row per draw and one column per dotted path
(``parameters.network_effect``, ``cities.Beijing.attractiveness``), ready for
:func:`sim.experiments.policy.plan_optimisation` and :func:`sim.experiments.policy.plan_game`.
Draws are seeded by ``SeedSequence(seed, spawn_key=(1, 0, 0))`` — a key of three
entries, distinct from every run's ``(draw, replication)`` — so the same seed gives the
same draws on any machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sim.experiments.ensemble import replication_seed
from sim.experiments.sweep import parse_range
from sim.inference.data import load_priors
from sim.inference.errors import InferenceError
from sim.inference.problem import Prior
from sim.scenario.factors import Factor
from sim.scenario.resources import CALIBRATION_DIR

POPULATIONS_PATH = CALIBRATION_DIR / "populations.csv"
"""The ABC-SMC populations written by ``modu calibrate``; the last generation is the posterior sample."""


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(replication_seed(seed, 1, 0, 0))


def posterior_draws(n: int, seed: int, path: Path = POPULATIONS_PATH) -> pd.DataFrame:
    """``n`` draws from the calibration posterior: particles of the last ABC-SMC generation resampled by weight.

    Args:
        n: number of draws (≥ 1).
        seed: root seed of the resampling.
        path: the populations file (``calibration/populations.csv``).

    Raises:
        InferenceError: the file is missing or does not hold the priors' quantities.
    """
    prior = Prior(tuple(load_priors().priors))
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InferenceError(f"--draws: cannot read the calibration posterior {path}: "
                             f"{' '.join(str(exc).split())}; use --prior or --range") from None
    missing = [c for c in ["generation", "weight", *prior.labels] if c not in frame.columns]
    if missing:
        raise InferenceError(f"{path}: columns: missing {', '.join(missing)} (written with other priors?)")
    last = frame[frame.generation == frame.generation.max()]
    weights = last.weight.to_numpy(dtype=float)
    picked = _rng(seed).choice(len(last), size=n, p=weights / weights.sum())
    values = last[prior.labels].to_numpy(dtype=float)[picked]
    return pd.DataFrame(values, columns=prior.names)


def factor_draws(factors: Sequence[Factor], n: int, seed: int) -> pd.DataFrame:
    """``n`` independent draws of each factor from its distribution (uniform, log-uniform or truncated normal)."""
    prior = Prior(tuple(factors))
    return pd.DataFrame(prior.natural(prior.sample(_rng(seed), n)), columns=prior.names)


def prior_draws(n: int, seed: int) -> pd.DataFrame:
    """``n`` draws from the calibration's priors (``calibration/priors.yaml``)."""
    return factor_draws(load_priors().priors, n, seed)


def parameter_draws(n: int, seed: int, prior: bool = False, ranges: Sequence[str] = ()) -> tuple[pd.DataFrame, str]:
    """The draws a policy command asked for, and a line saying where they come from.

    Args:
        n: number of draws.
        seed: root seed.
        prior: draw from the priors instead of the posterior.
        ranges: ``PATH=LO:HI`` texts; if any, draw uniformly over them instead.

    Raises:
        InferenceError: conflicting options, bad ranges or an unreadable posterior.
    """
    if n < 1:
        raise InferenceError(f"--draws: need at least one draw, got {n}")
    if prior and ranges:
        raise InferenceError("--prior and --range: choose one source of parameter draws")
    if ranges:
        factors = [parse_range(text) for text in ranges]
        return factor_draws(factors, n, seed), f"uniform over {', '.join(ranges)}"
    if prior:
        return prior_draws(n, seed), "the calibration priors (calibration/priors.yaml)"
    return posterior_draws(n, seed), "the calibration posterior (calibration/populations.csv, last generation)"
