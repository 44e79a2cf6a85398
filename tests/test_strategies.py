"""City strategies (docs/ODD.md §3.6): fixed, imitate and best_response, and the marginal firm gain they use.

The strategies' outcomes are checked on every engine of conftest's ``ENGINES`` (the allocations they record);
the gains themselves, one compiled function, through ``ModuModel``.
"""

import math

import numpy as np
import pytest
from conftest import simulate

from sim.model import ModuModel
from sim.model.utility import best_levers, entry_probabilities

EQUAL_DEPRECIATION = {"compute": 0.2, "data": 0.2, "anchor": 0.2}


def two_cities(scenario_factory, strategy="best_response", unit_cost=None, years=1, learning_rate=0.5,
               lever_effects=None, allocation=None, engine="agents", budget=10):
    """City A (100 firms, budget 10) with a strategy against city B (100 firms, no policy); one sector, a step a year."""
    parameters = {
        "lever_effects": {"compute": {"all": 0.4}, "data": {"all": 0.1}} if lever_effects is None else lever_effects,
        "birth_rate": 0.05,
        "depreciation": EQUAL_DEPRECIATION,
        "unit_cost": {"compute": 1.0, "data": 1.0, "anchor": 1.0, **(unit_cost or {})},
    }
    allocation = allocation or {"compute": 0.5, "data": 0.5, "anchor": 0.0}
    return scenario_factory(
        cities=[{"name": "A", "firms": 100, "policy": {"budget": budget, "allocation": allocation, "strategy": strategy,
                                                        "learning_rate": learning_rate}},
                {"name": "B", "firms": 100}],
        parameters=parameters, steps=1 + years, steps_per_year=1, engine=engine)


def test_marginal_firm_gain_by_hand(scenario_factory):
    """Stocks start at the steady state X = budget·share/(δ·c): K = 10·0.5/(0.2·8) = 3.125, D = 25, so
    V_A − V_B = 0.4·ln 4.125 + 0.1·ln 26; 200 firms × b = 0.05 = 10 entrants a step; and
    dE[entrants in c]/d(100 M yuan on X) = β_X·10·P_c(1 − P_c)/(1 + X_c)/c_X."""
    model = ModuModel(two_cities(scenario_factory, unit_cost={"compute": 8.0}), rng=0)
    p = 1 / (1 + math.exp(-(0.4 * math.log(4.125) + 0.1 * math.log(26))))
    gain = model.marginal_firm_gain()
    np.testing.assert_allclose(gain[0], np.array([0.4 / 4.125 / 8, 0.1 / 26, 0.0]) * 10 * p * (1 - p), rtol=1e-12)
    np.testing.assert_allclose(gain[1], np.array([0.4 / 8, 0.1, 0.0]) * 10 * p * (1 - p), rtol=1e-12)  # B: no stocks


@pytest.mark.parametrize("unit_cost, expected", [
    ({}, (0.5, 0.0, 0.5)),                     # per 100 M yuan compute buys 0.4 of utility slope, data 0.1
    ({"compute": 8.0}, (0.0, 0.5, 0.5)),       # compute costs 8× as much per stock unit: 0.4/8 = 0.05 < 0.1
])
def test_best_response_moves_toward_the_lever_with_the_highest_gain_per_yuan(scenario_factory, unit_cost, expected,
                                                                            engine):
    """A starts all-anchor (anchor has no effect), so K = D = 0 and the gain per yuan is β_X/c_X times a common
    factor; with learning rate 0.5 the first adaptation lands halfway between (0, 0, 1) and the best lever."""
    scenario = two_cities(scenario_factory, unit_cost=unit_cost, allocation={"compute": 0.0, "data": 0.0, "anchor": 1.0},
                          engine=engine)
    allocation = simulate(scenario, engine, 0).stack("allocation")[:, 0]
    np.testing.assert_allclose(allocation[1], (0.0, 0.0, 1.0))   # the first year runs on the scenario's mix
    np.testing.assert_allclose(allocation[2], expected, atol=1e-12)


def test_best_response_equalises_marginal_gains_per_yuan_in_the_long_run(scenario_factory, engine):
    """Gains per yuan are β_X/(1 + X)·(the same factor), so the best response settles where
    (1 + K)/(1 + D) = β_K/β_D = 4; with stocks X = 10·a_X/0.2 that is a compute share a = 203/250."""
    history = simulate(two_cities(scenario_factory, years=40, learning_rate=0.2, engine=engine), engine, 3)
    allocation = history.stack("allocation")[-10:, 0]
    stocks = history.stack("stocks")[-10:, 0]
    assert abs(allocation[:, 0].mean() - 203 / 250) < 0.03
    assert allocation[:, 2].max() < 1e-3                       # the lever without effect is abandoned
    assert 3.3 < np.mean((1 + stocks[:, 0]) / (1 + stocks[:, 1])) < 4.7


def test_analytic_gain_matches_a_finite_difference(rich_scenario):
    """∂E[entrants in c]/∂(spend on X in c) from the logit derivative against central differences of the model's
    own choice probabilities, for every city and lever, at a state reached by running."""
    model = ModuModel(rich_scenario, rng=5)
    for _ in range(6):
        model.step()
    gain = model.marginal_firm_gain()
    stocks = model.lever_stocks()

    def expected_entrants(s: np.ndarray) -> np.ndarray:
        P = entry_probabilities(model.compiled, model.N, s, model.state.constant)[0]
        return (P * model.expected_entrants()[None, :]).sum(axis=1)

    numeric = np.zeros_like(gain)
    for c in range(len(model.cities)):
        for x in range(3):
            h = 1e-4 * (1 + stocks[c, x])
            up, down = stocks.copy(), stocks.copy()
            up[c, x] += h
            down[c, x] -= h
            numeric[c, x] = (expected_entrants(up)[c] - expected_entrants(down)[c]) / (2 * h) / model.compiled.unit_cost[x]
    assert (numeric > 0).sum() >= 10
    np.testing.assert_allclose(gain, numeric, rtol=1e-6, atol=1e-12)


def test_best_levers_ties_and_indifference():
    np.testing.assert_array_equal(best_levers(np.array([0.1, 0.3, 0.2])), [0, 1, 0])
    np.testing.assert_array_equal(best_levers(np.array([0.3, 0.3, 0.2])), [0.5, 0.5, 0])
    assert best_levers(np.zeros(3)) is None                    # no lever does anything: no drift toward compute
    assert best_levers(np.full(3, 0.7)) is None


def test_best_response_keeps_its_allocation_when_no_lever_has_an_effect(scenario_factory, engine):
    """Every lever gains 0: a tie of all three is no target (not a third each)."""
    scenario = two_cities(scenario_factory, lever_effects={}, years=3,
                          allocation={"compute": 0.2, "data": 0.3, "anchor": 0.5}, engine=engine)
    np.testing.assert_array_equal(simulate(scenario, engine, 0).stack("allocation")[:, 0], [[0.2, 0.3, 0.5]] * 5)


def test_imitate_moves_toward_last_years_fastest_growing_non_pool_city(scenario_factory, engine):
    """Fast (tiny and attractive) grows fastest among non-pools; the pool grows even faster but is not imitated."""
    cities = [
        {"name": "Fast", "firms": 20, "attractiveness": 3.0,
         "policy": {"budget": 10, "allocation": {"compute": 1.0, "data": 0.0, "anchor": 0.0}}},
        {"name": "Copier", "firms": 200, "policy": {"budget": 10, "allocation": {"compute": 0.0, "data": 1.0,
                                                                                  "anchor": 0.0},
                                                    "strategy": "imitate", "learning_rate": 0.25}},
        {"name": "Steady", "firms": 200, "policy": {"budget": 10, "allocation": {"compute": 0.0, "data": 0.0,
                                                                                  "anchor": 1.0}}},
        {"name": "Pool", "firms": 5, "attractiveness": 6.0, "pool": True,
         "policy": {"budget": 10, "allocation": {"compute": 0.0, "data": 0.0, "anchor": 1.0}}},
    ]
    history = simulate(scenario_factory(cities=cities, parameters={"birth_rate": 0.05}, steps=3, steps_per_year=1,
                                        engine=engine), engine, 1)
    growth = history.stack("firms").sum(axis=2)
    assert growth[1, 3] / growth[0, 3] > growth[1, 0] / growth[0, 0] > max(growth[1, 1:3] / growth[0, 1:3])
    allocation = history.stack("allocation")
    copier = allocation[:, 1]
    np.testing.assert_allclose(copier[2], (0.25, 0.75, 0.0))
    # the second year: toward the allocation (as it stood) of whichever non-pool city grew fastest then
    fastest = int(np.argmax(((growth[2] - growth[1]) / growth[1])[:3]))
    np.testing.assert_allclose(copier[3], 0.75 * copier[2] + 0.25 * allocation[2, fastest])
    fixed = history.stack("allocation")[:, [0, 2]]
    assert np.all(fixed == fixed[0])


def test_a_city_without_a_budget_never_adapts(scenario_factory, engine):
    np.testing.assert_array_equal(simulate(two_cities(scenario_factory, years=2, budget=0, engine=engine), engine, 0)
                                  .stack("allocation")[:, 0], [[0.5, 0.5, 0.0]] * 4)
    if engine != "kernel":  # a budget cut to 0 in a model stepped from Python, through its City agent
        model = ModuModel(two_cities(scenario_factory, years=2, engine=engine), rng=0)
        model.cities[0].budget = 0.0
        model.run()
        np.testing.assert_allclose(model.history.stack("allocation")[:, 0], [[0.5, 0.5, 0.0]] * 4)


def test_a_city_given_a_strategy_by_an_event_learns_at_the_default_rate(scenario_factory, engine):
    """A city with no policy gets a budget and the best_response strategy from events in 2001; its
    first adaptation (2002) uses the default learning rate 0.2 rather than silently doing nothing."""
    scenario = scenario_factory(
        cities=[{"name": "A", "firms": 100}, {"name": "B", "firms": 100}],
        parameters={"lever_effects": {"compute": {"all": 0.4}}, "birth_rate": 0.05},
        steps=3, steps_per_year=1, engine=engine,
        events=[{"year": 2001, "city": "A", "budget": 10, "strategy": "best_response"}])
    allocation = simulate(scenario, engine, 0).stack("allocation")[:, 0]
    np.testing.assert_allclose(allocation[2], [1 / 3] * 3)
    np.testing.assert_allclose(allocation[3], 0.8 * np.full(3, 1 / 3) + 0.2 * np.array([1.0, 0, 0]))
    assert math.isclose(ModuModel(scenario, rng=0).cities[0].learning_rate, 0.2)
