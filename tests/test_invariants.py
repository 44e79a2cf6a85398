"""Invariants of a run's tables over random small scenarios, both engines (issue 8).

Hypothesis draws scenarios with one to five cities (some empty, some pools),
one to three sectors, every behavioural parameter anywhere in a wide range,
policies with all three strategies, and timed events; each is run on one of the
engines of conftest's ``ENGINES``: the kernel path through
:func:`sim.experiments.ensemble.simulate` (the tables ``modu run`` writes with
``engine: counts``), or ``ModuModel`` stepped with ``agents`` or ``counts`` (the same
tables, from its history), and the tables must satisfy:

- firms are conserved: ``firms[t+1] = firms[t] + births − deaths + moves_in −
  moves_out`` per city and sector, moves cancel nationally, the initial total
  is the scenario's;
- no count, flow, stock, budget or spending is negative;
- a city never spends more in a year than its budget (the annual budget in
  force at each step, pro rata) plus the one-off investments of that year;
- allocation shares and firm shares lie in [0, 1] and sum to 1;
- HHI lies in [1/n, 1], Gini in [0, 1 − 1/n], entropy in [0, ln n] over the n
  non-pool cities.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from conftest import ENGINES, scenario_engine
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sim.experiments.ensemble import TABLES, replication_seed, simulate
from sim.model import ModuModel
from sim.model.parameters import LEVERS
from sim.scenario import Scenario, ScenarioError, validate

TOLERANCE = 1e-9
START = 2000

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def shares(draw: st.DrawFn, names: list[str], allow_zero: bool = True) -> dict[str, float]:
    """Non-negative weights normalised to sum to 1 (at least one positive)."""
    weights = [draw(st.floats(0 if allow_zero else 0.05, 1)) for _ in names]
    if sum(weights) == 0:
        weights[0] = 1.0
    total = sum(weights)
    return {name: w / total for name, w in zip(names, weights, strict=True)}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Scenario, str]:
    engine = draw(st.sampled_from(ENGINES))
    sector_names = ["up", "mid", "down"][: draw(st.integers(1, 3))]
    years, steps_per_year = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    end = START + years
    n_city = draw(st.integers(1, 5))
    cities = []
    for i in range(n_city):
        firms = draw(st.sampled_from([0, 1, 5, 50, 300]))
        city = {"name": f"C{i}", "firms": firms, "attractiveness": draw(st.floats(-2, 2)),
                "talent": draw(st.floats(-1, 1)), "pool": draw(st.booleans()) and i > 0}
        if draw(st.booleans()):
            city["capacity"] = draw(st.floats(10, 5000))
        if draw(st.booleans()):
            city["sector_mix"] = shares(draw, sector_names)
        city["anchors"] = [{"name": f"A{i}{j}", "sector": draw(st.sampled_from(sector_names))}
                           for j in range(min(firms, draw(st.integers(0, 2))))]
        if draw(st.booleans()):
            city["policy"] = {"budget": draw(st.floats(0, 60)), "allocation": shares(draw, list(LEVERS)),
                              "strategy": draw(st.sampled_from(["fixed", "imitate", "best_response"])),
                              "learning_rate": draw(st.floats(0, 1))}
        cities.append(city)
    births_per_step = draw(st.one_of(st.none(), st.integers(0, 40)))
    parameters = {
        "network_effect": draw(st.floats(0, 2.5)),
        "network_seed": draw(st.sampled_from([0.0, 0.5, 1.0, 5.0])),
        "congestion": draw(st.floats(0, 2)),
        "relocation_rate": draw(st.sampled_from([0.0, 0.01, 0.1, 0.3])),
        "moving_cost": draw(st.floats(0, 3)),
        "birth_rate": draw(st.floats(0, 0.3)),
        "births_per_step": births_per_step,
        "exit_rate": draw(st.floats(0, 0.3)),
        "exit_size_elasticity": draw(st.floats(0, 2)),
        "size_tail": draw(st.floats(0.5, 3)),
        "talent_effect": draw(st.floats(-1, 1)),
        "lever_effects": {lever: {s: draw(st.floats(-1, 1)) for s in sector_names if draw(st.booleans())}
                          for lever in LEVERS},
        "anchor_weight": draw(st.floats(0, 20)),
        "anchor_exit_factor": draw(st.floats(0, 1)),
        "anchor_relocation_factor": draw(st.floats(0, 1)),
        "depreciation": {lever: draw(st.floats(0, 1)) for lever in LEVERS},
        "unit_cost": {lever: draw(st.floats(0.1, 5)) for lever in LEVERS},
    }
    events = []
    for _ in range(draw(st.integers(0, 3))):
        event: dict = {"year": draw(st.sampled_from([START + k / 4 for k in range(4 * years)])),
                       "city": f"C{draw(st.integers(0, n_city - 1))}"}
        action = draw(st.sampled_from(["invest", "budget", "allocation", "strategy", "add_anchor", "learning_rate"]))
        event[action] = {
            "invest": lambda: {lever: draw(st.floats(0, 100)) for lever in LEVERS if draw(st.booleans())},
            "budget": lambda: draw(st.floats(0, 80)),
            "allocation": lambda: shares(draw, list(LEVERS)),
            "strategy": lambda: draw(st.sampled_from(["fixed", "imitate", "best_response"])),
            "add_anchor": lambda: {"name": f"New{len(events)}", "sector": draw(st.sampled_from(sector_names))},
            "learning_rate": lambda: draw(st.floats(0, 1)),
        }[action]()
        events.append(event)
    data = {"name": "random", "engine": scenario_engine(engine),
            "time": {"start": START, "end": end, "steps_per_year": steps_per_year},
            "seed": draw(st.integers(0, 2**32)), "sectors": shares(draw, sector_names, allow_zero=False),
            "parameters": parameters, "cities": cities, "events": events}
    try:
        return validate(data), engine
    except ScenarioError:
        assume(False)  # e.g. no firms anywhere with network_seed 0
        raise


def run(drawn: tuple[Scenario, str]) -> dict[str, pd.DataFrame]:
    """The tables of replication 0: on the kernel path as ``modu run`` writes them, else from ``ModuModel``."""
    scenario, engine = drawn
    if engine == "kernel":
        return simulate(scenario, replication=0, seed=scenario.seed)
    history = ModuModel(scenario, rng=replication_seed(scenario.seed, 0), record_events=False).run()
    return {name: getattr(history, f"{name}_frame")() for name in TABLES}


@SETTINGS
@given(scenario=scenarios())
def test_firms_are_conserved_and_never_negative(scenario: tuple[Scenario, str]):
    firms = run(scenario)["firms"]
    scenario = scenario[0]
    counts = ["firms", "births", "deaths", "moves_in", "moves_out"]
    assert (firms[counts] >= 0).all().all()
    assert firms.loc[firms.step == 0, "firms"].sum() == sum(c.firms for c in scenario.cities)
    assert (firms.loc[firms.step == 0, counts[1:]] == 0).all().all()
    cube = {c: firms.pivot_table(index="step", columns=["city", "sector"], values=c, aggfunc="sum").to_numpy()
            for c in counts}
    net = cube["births"] - cube["deaths"] + cube["moves_in"] - cube["moves_out"]
    np.testing.assert_array_equal(cube["firms"][1:], cube["firms"][:-1] + net[1:])
    np.testing.assert_array_equal(cube["moves_in"].sum(axis=1), cube["moves_out"].sum(axis=1))


@SETTINGS
@given(scenario=scenarios())
def test_stocks_budgets_and_spending_are_never_negative_and_spending_stays_within_budget(
        scenario: tuple[Scenario, str]):
    cities = run(scenario)["cities"]
    scenario = scenario[0]
    money = ["K", "D", "A", "A_eff", "budget", *(f"spend_{lever}" for lever in LEVERS)]
    assert (cities[money] >= 0).all().all()
    spy = scenario.time.steps_per_year
    steps = cities[cities.step > 0].copy()
    steps["year_index"] = (steps.step - 1) // spy
    steps["spent"] = steps[[f"spend_{lever}" for lever in LEVERS]].sum(axis=1)
    steps["allowance"] = steps.budget / spy
    by_year = steps.groupby(["city", "year_index"])[["spent", "allowance"]].sum()
    one_off = pd.Series(0.0, index=by_year.index)
    for event in scenario.events:
        if event.invest is None:
            continue
        step = math.ceil((event.year - scenario.time.start) * spy - 1e-9) + 1  # the first step starting at or after it
        if step <= scenario.time.steps:
            one_off[(event.city, (step - 1) // spy)] += sum(event.invest.as_tuple())
    excess = by_year.spent - by_year.allowance - one_off
    assert (excess <= TOLERANCE * (1 + by_year.allowance + one_off)).all(), excess[excess > 0]


@SETTINGS
@given(scenario=scenarios())
def test_shares_are_in_the_unit_interval_and_sum_to_one(scenario: tuple[Scenario, str]):
    tables = run(scenario)
    scenario = scenario[0]
    alloc = tables["cities"][[f"alloc_{lever}" for lever in LEVERS]]
    assert ((alloc >= 0) & (alloc <= 1 + TOLERANCE)).all().all()
    np.testing.assert_allclose(alloc.sum(axis=1), 1.0, atol=TOLERANCE)
    pools = {c.name for c in scenario.cities if c.pool}
    counted = tables["cities"][~tables["cities"].city.isin(pools)] if len(pools) < len(scenario.cities) else tables["cities"]
    totals = counted.groupby("step").firms.transform("sum")
    firm_shares = (counted.firms / totals).where(totals > 0, 1 / counted.city.nunique())
    assert ((firm_shares >= 0) & (firm_shares <= 1)).all()
    np.testing.assert_allclose(firm_shares.groupby(counted.step).sum(), 1.0, atol=TOLERANCE)
    metrics = tables["metrics"]
    assert ((metrics.top1_share >= 0) & (metrics.top1_share <= 1 + TOLERANCE)).all()
    assert (metrics.firms.to_numpy() == counted.groupby("step").firms.sum().to_numpy()).all()


@SETTINGS
@given(scenario=scenarios())
def test_concentration_indices_stay_in_their_ranges(scenario: tuple[Scenario, str]):
    metrics = run(scenario)["metrics"]
    scenario = scenario[0]
    n = metrics.cities.to_numpy()
    assert (n == (sum(not c.pool for c in scenario.cities) or len(scenario.cities))).all()
    assert ((metrics.hhi >= 1 / n - TOLERANCE) & (metrics.hhi <= 1 + TOLERANCE)).all()
    assert ((metrics.gini >= -TOLERANCE) & (metrics.gini <= 1 - 1 / n + TOLERANCE)).all()
    assert ((metrics.entropy >= -TOLERANCE) & (metrics.entropy <= np.log(n) + TOLERANCE)).all()
    assert (metrics.top1_share >= 1 / n - TOLERANCE).all()
