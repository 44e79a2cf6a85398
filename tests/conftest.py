"""Shared fixtures for the rule, theory and invariant tests.

Scenarios are built from plain dicts through :func:`sim.scenario.validate`, with
*every* behavioural parameter and every city's ``attractiveness`` written out, so that
a calibration file (``calibration/calibrated.yaml``, whose values fill omitted
parameters and the constants of cities of calibrated names) can never change what a
theory test is testing.

The ``engine`` fixture runs a test on each of the three ways the dynamics run
(:data:`ENGINES`); :func:`simulate` runs a scenario to its end on one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import stats

from sim.model import History, ModuModel
from sim.model import engines as cli_engines
from sim.scenario import Scenario, validate

ENGINES = ("agents", "counts", "kernel")
"""``agents`` and ``counts``: ``ModuModel`` with that engine, stepped from Python; ``kernel``: the path the command
line and every ensemble take (:mod:`sim.model.engines` with ``engine: counts``: ``simulate``, ``simulate_flows``,
``simulate_firms``). ``counts`` and ``kernel`` run the same compiled step with the same streams, so they give the
same run for the same seed; ``agents`` draws each firm's decisions from other streams, so it agrees with them in
distribution only."""


def scenario_engine(engine: str) -> str:
    """The scenario's ``engine`` for one of :data:`ENGINES` (the kernel path runs ``engine: counts`` scenarios)."""
    return "counts" if engine == "kernel" else engine


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    """Each of :data:`ENGINES` in turn."""
    return request.param


def simulate(scenario: Scenario, engine: str, seed: int | np.random.SeedSequence = 0) -> History:
    """Run ``scenario`` to its end on ``engine`` (one of :data:`ENGINES`) with ``seed``; returns the history.

    On the kernel path the run is :func:`sim.model.engines.simulate`'s, checked against what
    ``simulate_flows`` and ``simulate_firms`` return for the same seed (the three must agree exactly).
    """
    assert scenario.engine == scenario_engine(engine), (scenario.engine, engine)
    if engine != "kernel":
        return ModuModel(scenario, rng=seed, record_events=False).run()
    history = cli_engines.simulate(scenario, seed)
    flows = cli_engines.simulate_flows(scenario, seed)
    for name in flows._fields:
        np.testing.assert_array_equal(getattr(flows, name), history.stack(name), err_msg=name)
    np.testing.assert_array_equal(cli_engines.simulate_firms(scenario, [seed])[0], history.stack("firms").sum(axis=2))
    return history

NEUTRAL_PARAMETERS: dict[str, Any] = {
    "network_effect": 1.0,
    "network_seed": 1.0,
    "congestion": 0.0,
    "relocation_rate": 0.0,
    "moving_cost": 1.0,
    "birth_rate": 0.0,
    "births_per_step": None,
    "exit_rate": 0.0,
    "exit_size_elasticity": 0.5,
    "size_tail": 1.06,
    "talent_effect": 0.0,
    "capital_effect": 0.0,
    "cost_effect": 0.0,
    "lever_effects": {},
    "anchor_weight": 10.0,
    "anchor_exit_factor": 0.0,
    "anchor_relocation_factor": 0.1,
    "depreciation": {"compute": 0.2, "data": 0.1, "anchor": 0.3},
    "unit_cost": {"compute": 1.0, "data": 1.0, "anchor": 1.0},
}
"""Every parameter, set to values that switch off all but what a test turns on."""


def make_scenario(cities: list[dict[str, Any]], parameters: dict[str, Any] | None = None,
                  sectors: dict[str, float] | None = None, steps: int = 1, steps_per_year: int | None = None,
                  engine: str = "agents", **extra: Any) -> Scenario:
    """A validated scenario with all parameters explicit.

    Args:
        cities: the city entries (plain dicts, as in a YAML file).
        parameters: overrides of :data:`NEUTRAL_PARAMETERS`.
        sectors: sector mix (default one sector, ``{"all": 1.0}``).
        steps: number of steps the run lasts (when ``steps_per_year`` is None the
            span is one year of ``steps`` steps).
        steps_per_year: steps per year; the span is then ``steps / steps_per_year`` years.
        engine: one of :data:`ENGINES` (``kernel`` makes an ``engine: counts`` scenario).
        extra: further top-level keys (``events``, ``complementarity``, ``time``, ...).
    """
    if steps_per_year is None:
        years, spy = 1, steps
    else:
        assert steps % steps_per_year == 0
        years, spy = steps // steps_per_year, steps_per_year
    data: dict[str, Any] = {
        "name": "test",
        "time": {"start": 2000, "end": 2000 + years, "steps_per_year": spy},
        "seed": 7,
        "engine": scenario_engine(engine),
        "sectors": sectors or {"all": 1.0},
        "parameters": {**NEUTRAL_PARAMETERS, **(parameters or {})},
        "cities": [{"attractiveness": 0.0, **city} for city in cities],
    }
    data.update(extra)
    return validate(data)


def urn_scenario(alpha: float, counts: tuple[int, ...], steps: int, engine: str = "agents") -> Scenario:
    """The generalised Pólya urn: one sector, network term only, κ = 0, one entrant per step."""
    return make_scenario(
        cities=[{"name": f"C{i}", "firms": n} for i, n in enumerate(counts)],
        parameters={"network_effect": alpha, "network_seed": 0.0, "births_per_step": 1},
        steps=steps,
        engine=engine,
    )


@pytest.fixture(scope="session")
def scenario_factory() -> Callable[..., Scenario]:
    """:func:`make_scenario`."""
    return make_scenario


@pytest.fixture(scope="session")
def urn_factory() -> Callable[..., Scenario]:
    """:func:`urn_scenario`."""
    return urn_scenario


def rich_scenario_dict(engine: str = "agents") -> dict[str, Any]:
    """A multi-city, three-sector scenario exercising every phase: exits, relocation, entry,
    anchors (which may exit and move), congestion, a pool, an empty city, all three strategies
    and timed events (one-off investment, a budget change, a new anchor)."""
    sectors = {"upstream": 0.15, "midstream": 0.25, "downstream": 0.60}
    parameters = {
        **NEUTRAL_PARAMETERS,
        "network_effect": 1.1,
        "network_seed": 1.0,
        "congestion": 0.5,
        "relocation_rate": 0.03,
        "moving_cost": 0.5,
        "birth_rate": 0.03,
        "exit_rate": 0.02,
        "talent_effect": 0.5,
        "lever_effects": {"compute": {"upstream": 0.4}, "data": {"midstream": 0.3}, "anchor": {"downstream": 0.3}},
        "anchor_exit_factor": 0.5,
        "anchor_relocation_factor": 1.0,
        "unit_cost": {"compute": 2.0, "data": 1.0, "anchor": 0.5},
    }
    cities = [
        {"name": "Shenzhen", "firms": 1500, "talent": 0.6, "capacity": 5000,
         "sector_mix": {"upstream": 0.1, "midstream": 0.2, "downstream": 0.7},
         "anchors": [{"name": "Tencent", "sector": "downstream"}, {"name": "Huawei", "sector": "upstream"}],
         "policy": {"budget": 50, "allocation": {"compute": 0.2, "data": 0.2, "anchor": 0.6}, "strategy": "fixed"}},
        {"name": "Beijing", "firms": 1600, "talent": 0.8, "capacity": 6000,
         "anchors": [{"name": "Baidu", "sector": "midstream"}],
         "policy": {"budget": 40, "allocation": {"compute": 0.5, "data": 0.3, "anchor": 0.2},
                    "strategy": "best_response", "learning_rate": 0.5}},
        {"name": "Hefei", "firms": 300, "talent": 0.3,
         "anchors": [{"name": "iFlytek", "sector": "midstream"}],
         "policy": {"budget": 20, "allocation": {"compute": 0.1, "data": 0.1, "anchor": 0.8},
                    "strategy": "imitate", "learning_rate": 0.5}},
        {"name": "Hangzhou", "firms": 800, "talent": 0.5,
         "anchors": [{"name": "Alibaba", "sector": "downstream"}]},
        {"name": "Nowhere", "firms": 0},
        {"name": "Rest", "firms": 3000, "pool": True, "capacity": 50000},
    ]
    events = [
        {"year": 2017, "city": "Hefei", "invest": {"compute": 30}},
        {"year": 2017.5, "city": "Hangzhou", "budget": 10},
        {"year": 2018, "city": "Hefei", "add_anchor": {"name": "NIO", "sector": "downstream"}},
    ]
    return {
        "name": "rich",
        "time": {"start": 2016, "end": 2020, "steps_per_year": 4},
        "seed": 11,
        "engine": scenario_engine(engine),
        "sectors": sectors,
        "parameters": parameters,
        "cities": [{"attractiveness": 0.0, **city} for city in cities],
        "events": events,
    }


@pytest.fixture(scope="session")
def rich_scenario() -> Scenario:
    """The scenario of :func:`rich_scenario_dict`, validated (``agents`` engine)."""
    return validate(rich_scenario_dict())


@pytest.fixture(scope="session", params=ENGINES)
def rich_scenario_any_engine(request) -> tuple[Scenario, str]:
    """The scenario of :func:`rich_scenario_dict` for each of :data:`ENGINES`, with the engine's name."""
    return validate(rich_scenario_dict(request.param)), request.param


def run_model(scenario: Scenario, seed: int, record_events: bool = False) -> ModuModel:
    """Build and run a model to the scenario's end."""
    model = ModuModel(scenario, rng=seed, record_events=record_events)
    model.run()
    return model


@pytest.fixture(scope="session")
def run() -> Callable[..., ModuModel]:
    """:func:`run_model`."""
    return run_model


def samples_differ(a: np.ndarray, b: np.ndarray, p_min: float = 1e-3, max_se: float = 4.0) -> list[str]:
    """Reasons two samples look different (empty if they agree): a two-sample KS or Mann–Whitney U test
    with p ≤ ``p_min``, or means more than ``max_se`` standard errors apart."""
    problems = []
    ks = stats.ks_2samp(a, b).pvalue
    mw = stats.mannwhitneyu(a, b).pvalue
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    z = abs(a.mean() - b.mean()) / se if se > 0 else (0.0 if a.mean() == b.mean() else np.inf)
    if ks <= p_min:
        problems.append(f"KS p={ks:.2g}")
    if mw <= p_min:
        problems.append(f"Mann-Whitney p={mw:.2g}")
    if z > max_se:
        problems.append(f"means {a.mean():.1f} vs {b.mean():.1f} differ by {z:.1f} SE")
    return problems
