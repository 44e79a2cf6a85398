"""Parameter draws for policy design: a scenario's calibration posterior, its priors, or ranges given as factors.

Each function returns a table with one row per draw and one column per dotted path
(``parameters.network_effect``, ``cities.Beijing.attractiveness``, ``cities.Hangzhou.firms``),
ready for :func:`sim.policy.optimisation.plan_optimisation` and :func:`sim.policy.race.plan_game`.
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
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.analysis.abc_smc import Prior
from sim.experiments.ensemble import replication_seed
from sim.experiments.sweep import parse_range
from sim.inference.data import CalibrationFiles
from sim.inference.errors import InferenceError
from sim.inference.quantities import OutsideShare, PriorFile, load_assumptions, load_priors
from sim.scenario import Scenario
from sim.scenario.factors import Factor, check_factors
from sim.scenario.paths import SCALE, parse_path
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
        assumptions: the quantities that are deep uncertainties (assumptions no data pin), not estimates.
    """

    quantities: pd.DataFrame
    fields: pd.DataFrame
    source: str
    assumptions: tuple[str, ...] = ()

    def head(self, n: int) -> Draws:
        """The first ``n`` draws."""
        return Draws(self.quantities.head(n), self.fields.head(n), self.source, self.assumptions)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(replication_seed(seed, 1, 0, 0))


def expand(scenario: Scenario, factors: Sequence[Factor], values: np.ndarray) -> pd.DataFrame:
    """Draws of ``factors`` (rows of ``values``, natural scale) as the scenario fields they set, one column per path.

    A plain factor sets its target; a shared constant sets it for each of its cities; a split of a
    pool's firms sets the firms of the pool and of each named city; an outside share sets V₀ and the
    birth rate. Every field some draw changes is a column, holding each draw's value of it. A factor
    that scales its target (every city's budget) is a column ``scale:TARGET`` holding the multiplier
    (:func:`sim.scenario.paths.draw_changes` applies it to a variant's own values), and the fields it
    scales are not columns. Factors apply in order.
    """
    base = scenario.resolved()
    drawn = []
    for draw in np.atleast_2d(values):
        data = pickle.loads(pickle.dumps(base))  # a deep copy of plain data
        for factor, value in zip(factors, draw, strict=True):
            factor.apply(data, value)
        drawn.append(_numeric_fields(data))
    before = _numeric_fields(base)
    scaled = [re.compile(_pattern(f.target)) for f in factors if f.scale]
    paths = list(dict.fromkeys(path for d in drawn for path in d))
    paths = [path for path in paths if any(d.get(path) != before.get(path) for d in drawn)
             and not any(p.fullmatch(path) for p in scaled)]
    frame = pd.DataFrame([[d.get(path) for path in paths] for d in drawn], columns=paths)
    for j, factor in enumerate(factors):
        if factor.scale:
            frame[f"{SCALE}{factor.target}"] = np.atleast_2d(values)[:, j]
    return frame


def _pattern(target: str) -> str:
    """A regular expression for the field paths a target with ``*`` names (in :func:`_numeric_fields`' spelling)."""
    tokens = parse_path(target)
    parts = []
    for i, token in enumerate(tokens):
        if tokens[0] == "cities" and i == 1:
            parts.append(r"(?:\.[A-Za-z_][\w]*|\[[^\]]+\])" if token == "*" else
                         re.escape(f".{token}" if token.isidentifier() else f"[{token}]"))
        else:
            parts.append(r"\.[^.]+" if token == "*" else re.escape(("." if i else "") + token))
    return "".join(parts)


def _numeric_fields(data: dict) -> dict[str, float]:
    """Every number among the parameters and the cities' fields (policies included), by dotted path."""
    fields = _flatten(data["parameters"], "parameters")
    for city in data["cities"]:
        name = city["name"]
        fields.update(_flatten(city, f"cities.{name}" if name.isidentifier() else f"cities[{name}]"))
    return fields


def _flatten(mapping: dict, prefix: str) -> dict[str, float]:
    out = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}.{key}"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[f"{prefix}.{key}"] = value
    return out


def _draws(scenario: Scenario | None, factors: Sequence[Factor], values: np.ndarray, source: str,
           assumptions: Sequence[str] = ()) -> Draws:
    labels = [f.label for f in factors]
    quantities = pd.DataFrame(np.atleast_2d(values), columns=labels)
    fields = (expand(scenario, factors, values) if scenario is not None
              else pd.DataFrame(np.atleast_2d(values), columns=[f.target for f in factors]))
    return Draws(quantities, fields, source, tuple(assumptions))


def _posterior_values(n: int, seed: int, scenario: Scenario) -> tuple[list[Factor], np.ndarray, str]:
    """The priors' factors and ``n`` particles of the last ABC-SMC generation resampled by weight, and a source line."""
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
    return list(prior.specs), last[prior.labels].to_numpy(dtype=float)[picked], source


def _sample(factors: Sequence[Factor], n: int, rng: np.random.Generator) -> np.ndarray:
    prior = Prior(tuple(factors))
    return prior.natural(prior.sample(rng, n))


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
    factors, values, source = _posterior_values(n, seed, scenario)
    return _draws(scenario, factors, values, source)


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
    return _draws(scenario, factors, _sample(factors, n, _rng(seed)), source)


def prior_draws(n: int, seed: int, scenario: Scenario) -> Draws:
    """``n`` draws from the priors of the scenario's calibration (its folder's ``priors.yaml``)."""
    files = CalibrationFiles.of(scenario)
    return factor_draws(_priors(files).priors, n, seed, scenario,
                        f"the priors of {scenario.name}'s calibration ({shown(files.priors)})")


def parameter_draws(n: int, seed: int, scenario: Scenario, prior: bool = False, ranges: Sequence[str] = (),
                    assumptions: Path | None = None) -> Draws:
    """The draws a policy command asked for, with a line saying where they come from (naming the files).

    Args:
        n: number of draws.
        seed: root seed.
        scenario: the scenario the draws vary; its ``calibration:`` names the posterior and priors.
        prior: draw from the priors instead of the posterior.
        ranges: ``PATH=LO:HI`` texts; if any, draw uniformly over them instead.
        assumptions: an assumptions file (``calibration/assumptions.yaml``): its deep uncertainties are
            drawn too, independently, each draw joining one of them to one parameter draw (the outside
            share applied last). None holds them at the scenario's values.

    Raises:
        InferenceError: conflicting options, bad ranges, no calibration, or an unreadable posterior.
    """
    if n < 1:
        raise InferenceError(f"--draws: need at least one draw, got {n}")
    if prior and ranges:
        raise InferenceError("--prior and --range: choose one source of parameter draws")
    if ranges:
        factors = [parse_range(text) for text in ranges]
        values, source = _sample(factors, n, _rng(seed)), f"uniform over {', '.join(ranges)}"
    elif prior:
        files = CalibrationFiles.of(scenario)
        factors = list(_priors(files).priors)
        values, source = _sample(factors, n, _rng(seed)), f"the priors of {scenario.name}'s calibration ({shown(files.priors)})"
    else:
        factors, values, source = _posterior_values(n, seed, scenario)
    if assumptions is None:
        return _draws(scenario, factors, values, source)
    deep = load_assumptions(assumptions).assumptions
    check_factors(scenario.resolved(), [f for f in deep if not isinstance(f, OutsideShare)], f"{assumptions}: assumptions")
    drawn = _sample(deep, n, np.random.default_rng(replication_seed(seed, 1, 0, 1)))
    source += f", with the deep uncertainties of {shown(assumptions)} drawn independently"
    return _draws(scenario, [*factors, *deep], np.hstack([values, drawn]), source, [f.label for f in deep])


def comparison_draws(n: int, seed: int, scenario: Scenario, assumptions: Path | None) -> Draws | None:
    """The draws of ``modu compare``: one per replication, from the posterior of the calibration the first
    scenario names (when it names one) joined to the deep uncertainties (unless ``assumptions`` is None).

    None when there is nothing to draw (no calibration and fixed assumptions): the scenarios run as written.
    """  # noqa: D205
    if scenario.calibration is not None:
        return parameter_draws(n, seed, scenario, assumptions=assumptions)
    if assumptions is None:
        return None
    deep = load_assumptions(assumptions).assumptions
    check_factors(scenario.resolved(), [f for f in deep if not isinstance(f, OutsideShare)], f"{assumptions}: assumptions")
    return _draws(scenario, deep, _sample(deep, n, np.random.default_rng(replication_seed(seed, 1, 0, 1))),
                  f"the deep uncertainties of {shown(assumptions)} ({scenario.name} names no calibration: its "
                  "parameters as written)", [f.label for f in deep])
