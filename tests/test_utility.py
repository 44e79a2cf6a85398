"""Unit tests of the logit utility (sim/model/kernel/utility.py, through sim/model/utility.py), each checked
against a hand computation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import make_scenario

from sim.model import ModuModel
from sim.model import utility as arrays
from sim.model.kernel import compile_scenario
from sim.model.kernel import utility as compiled
from sim.model.kernel.compile import NONE
from sim.model.kernel.utility import network_term, softmax
from sim.model.utility import entry_probabilities, entry_utility, marginal_firm_gain, mover_probabilities, mover_utility
from sim.scenario import ScenarioError


def coefficients(cities: int, sectors: int = 1, **fields):
    """A compiled scenario of ``cities`` cities and ``sectors`` sectors whose coefficients are ``fields``."""
    md = compile_scenario(make_scenario(cities=[{"name": f"C{i}", "firms": 1} for i in range(cities)],
                                        sectors={f"s{j}": 1 / sectors for j in range(sectors)}))
    return md._replace(**fields)


def choice(V: np.ndarray) -> np.ndarray:
    """softmax(V) of one vector, by the kernel."""
    P = np.empty_like(V)
    softmax(np.asarray(V, dtype=float), P)
    return P


@pytest.fixture(scope="module")
def two_cities(scenario_factory):
    """Two cities, one sector, every utility term switched on."""
    scenario = scenario_factory(
        cities=[{"name": "A", "firms": 10, "capacity": 100, "talent": 0.2, "attractiveness": 0.1},
                {"name": "B", "firms": 4, "capacity": 50, "talent": 0.0, "capital": 1.0, "cost": 2.0}],
        parameters={"network_effect": 1.3, "network_seed": 0.5, "congestion": 2.0, "moving_cost": 0.8,
                    "talent_effect": 0.7, "capital_effect": 0.3, "cost_effect": 0.1,
                    "lever_effects": {"compute": {"all": 0.4}, "data": {"all": 0.2}, "anchor": {"all": 0.1}}},
    )
    return compile_scenario(scenario)


def test_city_constant_and_capacity(two_cities):
    md = two_cities
    np.testing.assert_allclose(md.constant, [0.1 + 0.7 * 0.2, 0.3 * 1.0 - 0.1 * 2.0], rtol=1e-12)
    np.testing.assert_allclose(md.inv_capacity, [1 / 100, 1 / 50], rtol=1e-12)
    np.testing.assert_allclose(md.beta, [[0.4], [0.2], [0.1]])


def test_entry_utility_by_hand(two_cities):
    coef = two_cities
    N = np.array([[10], [4]])
    stocks = np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 7.0]])
    const = coef.constant
    expected = [
        1.3 * np.log(10.5) + 0.4 * np.log(4) + 0.2 * np.log(2) + const[0] - 2.0 * 10 / 100,
        1.3 * np.log(4.5) + 0.1 * np.log(8) + const[1] - 2.0 * 4 / 50,
    ]
    np.testing.assert_allclose(entry_utility(coef, N, stocks)[:, 0], expected, rtol=1e-12)


def test_mover_counts_itself_and_pays_the_moving_cost(two_cities):
    """V[s, h, c]: home as is; elsewhere N + 1, load + 1/capacity, minus m."""
    coef = two_cities
    N = np.array([[10], [4]])
    stocks = np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 7.0]])
    levers = [0.4 * np.log(4) + 0.2 * np.log(2), 0.1 * np.log(8)]
    const = coef.constant
    a, k, g, m = 1.3, 0.5, 2.0, 0.8
    V = mover_utility(coef, N, stocks)
    assert V.shape == (1, 2, 2)
    expected = np.array([
        [a * np.log(10 + k) + levers[0] + const[0] - g * 10 / 100,            # in A, stays
         a * np.log(4 + 1 + k) + levers[1] + const[1] - g * 5 / 50 - m],       # in A, goes to B
        [a * np.log(10 + 1 + k) + levers[0] + const[0] - g * 11 / 100 - m,     # in B, goes to A
         a * np.log(4 + k) + levers[1] + const[1] - g * 4 / 50],               # in B, stays
    ])
    np.testing.assert_allclose(V[0], expected, rtol=1e-12)
    # Staying looks relatively better for a mover than for an entrant: it pays m and adds itself elsewhere.
    entry = entry_utility(coef, N, stocks)[:, 0]
    assert V[0, 0, 0] - V[0, 0, 1] > entry[0] - entry[1]


def test_mover_in_the_pure_urn_chooses_in_proportion_to_counts_with_itself():
    """α = 1, κ = 0, m = 0: a mover from h picks c with probability ∝ N_c + 1{c ≠ h}."""
    coef = coefficients(2, alpha=1.0, kappa=0.0, gamma=0.0, m=0.0)
    N = np.array([[5], [3]])
    P = mover_probabilities(coef, N, np.zeros((2, 3)))[0]
    np.testing.assert_allclose(P, [[5 / 9, 4 / 9], [6 / 9, 3 / 9]], rtol=1e-12)


def test_mover_self_count_uses_own_sector_complementarity(scenario_factory):
    """With several sectors a mover adds W[s, s] to its own sector's N_eff where it would go."""
    scenario = scenario_factory(
        cities=[{"name": "A", "firms": 12}, {"name": "B", "firms": 9}],
        sectors={"a": 0.5, "b": 0.5},
        complementarity={"a": {"a": 1.0, "b": 0.5}, "b": {"a": 0.25, "b": 0.8}},
        parameters={"network_effect": 1.0, "network_seed": 0.0, "moving_cost": 0.0},
    )
    coef = compile_scenario(scenario)
    N = np.array([[10, 2], [3, 6]])
    N_eff = np.array([[10 + 0.5 * 2, 0.25 * 10 + 0.8 * 2], [3 + 0.5 * 6, 0.25 * 3 + 0.8 * 6]])
    np.testing.assert_allclose(entry_utility(coef, N, np.zeros((2, 3))), np.log(N_eff), rtol=1e-12)
    V = mover_utility(coef, N, np.zeros((2, 3)))
    np.testing.assert_allclose(V[0, 0], [np.log(11.0), np.log(6.0 + 1.0)], rtol=1e-12)   # sector a, home A
    np.testing.assert_allclose(V[1, 1], [np.log(4.1 + 0.8), np.log(5.55)], rtol=1e-12)   # sector b, home B


def test_choice_probabilities_handles_minus_infinity():
    """κ = 0: an empty city has utility −∞ and probability exactly 0, without NaNs."""
    coef = coefficients(3, alpha=1.5, kappa=0.0, gamma=0.0, m=1.0)
    N = np.array([[5], [0], [2]])
    V = entry_utility(coef, N, np.zeros((3, 3)))
    assert V[1, 0] == -np.inf
    P, _ = entry_probabilities(coef, N, np.zeros((3, 3)))
    assert P[1, 0] == 0.0 and np.isfinite(P).all()
    np.testing.assert_allclose(P[[0, 2], 0], np.array([5, 2]) ** 1.5 / (5**1.5 + 2**1.5), rtol=1e-12)
    # A mover sees itself in the empty city, so that city is choosable for it.
    P_move = mover_probabilities(coef, N, np.zeros((3, 3)))
    assert np.isfinite(P_move[0, [0, 2]]).all()
    assert P_move[0, 0, 1] > 0
    np.testing.assert_allclose(P_move[0, 0], np.array([5**1.5, np.exp(-1), 3**1.5 * np.exp(-1)])
                               / (5**1.5 + np.exp(-1) + 3**1.5 * np.exp(-1)), rtol=1e-12)


def test_softmax_is_stable_and_gives_minus_infinity_probability_zero():
    e = np.exp(1.0)
    np.testing.assert_allclose(choice(np.array([1000.0, 1001.0, -np.inf])), [1 / (1 + e), e / (1 + e), 0.0], rtol=1e-12)
    P = choice(np.array([0.0, -np.inf, 2.0]))
    np.testing.assert_allclose(P, [1 / (1 + np.exp(2)), 0.0, np.exp(2) / (1 + np.exp(2))], rtol=1e-12)
    np.testing.assert_allclose(P.sum(), 1.0, rtol=1e-15)


def test_an_empty_urn_falls_back_on_the_other_terms():
    """A sector with no firms anywhere and κ = 0 contributes no network term (not −∞ everywhere)."""
    coef = coefficients(2, 2, alpha=2.0, kappa=0.0, gamma=0.0, m=0.0, W=np.eye(2),
                        constant=np.array([0.0, np.log(3.0)]))
    N = np.array([[4, 0], [1, 0]])
    P, _ = entry_probabilities(coef, N, np.zeros((2, 3)))
    np.testing.assert_allclose(P[:, 1], [0.25, 0.75], rtol=1e-12)
    np.testing.assert_allclose(P[:, 0], np.array([16, 3]) / 19, rtol=1e-12)
    # α = 0 switches the network term off, even where the count is 0 and κ = 0.
    out = np.full(2, np.nan)
    network_term(0.0, np.array([3.0, 0.0]), out)
    np.testing.assert_array_equal(out, 0.0)


def test_marginal_firm_gain_matches_a_finite_difference(rich_scenario):
    """∂E[entrants to c]/∂(100 M yuan on lever X in c), analytic vs central difference of the logit."""
    model = ModuModel(rich_scenario, rng=0, record_events=False)
    for _ in range(3):
        model.step()
    md, constant = model.compiled, model.state.constant
    stocks = model.lever_stocks()
    choosers = model.expected_entrants()
    cost = md.unit_cost
    analytic = marginal_firm_gain(md, model.N, stocks, constant)
    np.testing.assert_array_equal(analytic, model.marginal_firm_gain())

    def expected_entrants(city: int, s: np.ndarray) -> float:
        return float(entry_probabilities(md, model.N, s, constant)[0][city] @ choosers)

    eps = 1e-4  # 100 M yuan
    numeric = np.zeros_like(analytic)
    for c in range(len(model.cities)):
        for j in range(3):
            up, down = stocks.copy(), stocks.copy()
            up[c, j] += eps / cost[j]
            down[c, j] -= eps / cost[j]
            numeric[c, j] = (expected_entrants(c, up) - expected_entrants(c, down)) / (2 * eps)
    assert np.abs(analytic).max() > 0
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9 * np.abs(analytic).max())


def test_outside_option_lets_policy_add_firms_nationally():
    """With V₀ staying out is an alternative: entry falls, and a lever raises national entry."""
    from sim.model import ModuModel
    from sim.scenario import validate

    def scenario(v0, budget):
        return validate({"name": "o", "sectors": {"all": 1.0},
                         "parameters": {"outside_option": v0, "lever_effects": {"compute": {"all": 1.0}},
                                        "births_per_step": 10_000, "exit_rate": 0, "relocation_rate": 0},
                         "cities": [{"name": "A", "firms": 100, "policy": {"budget": budget,
                                     "allocation": {"compute": 1, "data": 0, "anchor": 0}}},
                                    {"name": "B", "firms": 100}]})

    def entry_probabilities(v0, budget):
        return ModuModel(scenario(v0, budget), rng=0).entry_probabilities()[:, 0]

    assert np.isclose(entry_probabilities(None, 0).sum(), 1)
    closed = entry_probabilities(None, 50)
    p0, p1 = entry_probabilities(5.0, 0), entry_probabilities(5.0, 50)
    assert p0.sum() < 1 and p1.sum() > p0.sum()           # policy raises national entry
    assert p1[1] < p0[1] and p1[0] > p0[0] and closed[0] > 0.5
    model = ModuModel(scenario(5.0, 0), rng=1)
    model.step()
    births = model.history.stack("births")[-1, :, 0]
    expected = 10_000 * p0
    assert np.all(np.abs(births - expected) < 5 * np.sqrt(expected)), (births, expected)


@pytest.mark.parametrize("M", [2, 6])
def test_a_pool_of_places_is_chosen_as_often_as_any_one_of_its_places(scenario_factory, M):
    """ODD §3.3: a pool of M places holding fixed shares w_m is the sum of M alternatives, each its own urn and load."""
    scenario = scenario_factory(
        cities=[{"name": "A", "firms": 300, "capacity": 500, "attractiveness": 0.2},
                {"name": "P", "firms": 900, "pool": True, "places": M, "places_exponent": 0.7, "places_from": 2,
                 "capacity": 400, "attractiveness": 0.3}],
        parameters={"network_effect": 1.3, "network_seed": 1.0, "congestion": 1.5, "moving_cost": 0.4})
    md = compile_scenario(scenario)
    N, X = np.array([[300], [900]]), np.zeros((2, 3))
    w = np.arange(2, 2 + M) ** -0.7 / (np.arange(2, 2 + M) ** -0.7).sum()   # places ranked 2 to M + 1
    a, k, g, m = 1.3, 1.0, 1.5, 0.4
    # entrants: A, and each place as its own alternative
    V_A = a * np.log(300 + k) + 0.2 - g * 300 / 500
    V_places = a * np.log(w * 900 + k) + 0.3 - g * w * 900 / 400                # the pool's constant in each place
    expected = np.exp(V_places).sum() / (np.exp(V_A) + np.exp(V_places).sum())
    np.testing.assert_allclose(entry_probabilities(md, N, X)[0][1, 0], expected, rtol=1e-12)
    # a mover from A counts itself in the place it would join and pays m; one in the pool stays at no cost
    P = mover_probabilities(md, N, X)
    V_join = a * np.log(w * 900 + 1 + k) + 0.3 - g * (w * 900 + 1) / 400 - m
    np.testing.assert_allclose(P[0, 0, 1], np.exp(V_join).sum() / (np.exp(V_A) + np.exp(V_join).sum()), rtol=1e-12)
    V_leave = a * np.log(300 + 1 + k) + 0.2 - g * 301 / 500 - m
    np.testing.assert_allclose(P[0, 1, 0], np.exp(V_leave) / (np.exp(V_leave) + np.exp(V_places).sum()), rtol=1e-12)
    # at α = 1 without congestion the pool's term is log(N + Mκ) (Σ_m (w_m·N + κ) = N + Mκ), plus its constant
    V = entry_utility(md._replace(alpha=1.0, gamma=0.0), N, X)[:, 0]
    np.testing.assert_allclose(V[1], np.log(900 + M * k) + 0.3, rtol=1e-12)


def test_a_pool_in_an_empty_urn_keeps_its_places_congestion_and_no_network_term(scenario_factory):
    """ODD §3.3's empty urn (no firm of the sector anywhere, κ = 0) holds place by place: an entrant's term for a
    pool is then log Σ_m exp(−γ·w_m·N/capacity), not −∞."""
    scenario = scenario_factory(
        sectors={"up": 0.5, "down": 0.5}, complementarity={"up": {"up": 1.0, "down": 0.0}, "down": {"up": 0.0, "down": 1.0}},
        cities=[{"name": "A", "firms": 300, "capacity": 500, "sector_mix": {"up": 0.0, "down": 1.0}},
                {"name": "P", "firms": 900, "pool": True, "places": 4, "places_exponent": 1.0, "places_from": 2,
                 "capacity": 400, "sector_mix": {"up": 0.0, "down": 1.0}}],
        parameters={"network_effect": 1.3, "network_seed": 0.0, "congestion": 1.5, "moving_cost": 0.4})
    md = compile_scenario(scenario)
    N, X = np.array([[0, 300], [0, 900]]), np.zeros((2, 3))
    w = 1 / np.arange(2, 6) / (1 / np.arange(2, 6)).sum()
    V_A, V_P = -1.5 * 300 / 500, np.log(np.exp(-1.5 * w * 900 / 400).sum())
    np.testing.assert_allclose(entry_utility(md, N, X)[:, 0], [V_A, V_P], rtol=1e-12)


def test_a_mover_in_an_empty_urn_sees_a_pools_places_without_a_network_term(scenario_factory):
    """A sector that draws nothing from itself (W[s, s] = 0) with κ = 0 and no complement anywhere is an empty urn for
    its movers too: every city's network term is 0, and a pool's term is log Σ_m exp(−γ·(w_m·load + own load))."""
    scenario = scenario_factory(
        sectors={"up": 0.5, "down": 0.5}, complementarity={"up": {"up": 0.0, "down": 0.0}, "down": {"up": 0.0, "down": 1.0}},
        cities=[{"name": "A", "firms": 300, "capacity": 500},
                {"name": "P", "firms": 900, "pool": True, "places": 3, "places_exponent": 1.0, "places_from": 2,
                 "capacity": 400}],
        parameters={"network_effect": 1.3, "network_seed": 0.0, "congestion": 1.5, "moving_cost": 0.4})
    md = compile_scenario(scenario)
    N, X = np.array([[150, 150], [450, 450]]), np.zeros((2, 3))
    w = 1 / np.arange(2, 5) / (1 / np.arange(2, 5)).sum()
    g, m = 1.5, 0.4
    V_stay = -g * 300 / 500                                              # an up-sector mover at home in A
    V_join = np.log(np.exp(-g * (w * 900 + 1) / 400).sum()) - m          # ... and joining a place of the pool
    P = mover_probabilities(md, N, X)
    np.testing.assert_allclose(P[0, 0], [np.exp(V_stay), np.exp(V_join)] / (np.exp(V_stay) + np.exp(V_join)),
                               rtol=1e-12)
    V_home = np.log(np.exp(-g * w * 900 / 400).sum())                   # an up-sector mover at home in the pool
    V_leave = -g * 301 / 500 - m                                         # ... and moving to A
    np.testing.assert_allclose(P[0, 1], [np.exp(V_leave), np.exp(V_home)] / (np.exp(V_leave) + np.exp(V_home)),
                               rtol=1e-12)


def test_places_are_for_pools_only(scenario_factory):
    with pytest.raises(ScenarioError, match="places: 3 places need pool: true"):
        scenario_factory(cities=[{"name": "A", "firms": 10, "places": 3}])


WRAPPERS = (entry_utility, entry_probabilities, mover_utility, mover_probabilities, marginal_firm_gain)
"""The array functions that take the cities' constants (default: the compiled scenario's)."""


def results(result) -> tuple[np.ndarray, ...]:
    """An array function's result as a tuple of arrays (``entry_probabilities`` returns two)."""
    return result if isinstance(result, tuple) else (result,)


def test_the_array_functions_use_the_constants_they_are_given(two_cities):
    """Each array function given constants computes what it computes for a scenario compiled with them, and
    without them uses the scenario's: a closed city (−∞) is never chosen."""
    N, X = np.array([[10], [4]]), np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 7.0]])
    md = two_cities._replace(b=0.1, B=NONE)  # entrants, so that the marginal gains are not all 0
    shifted = md.constant + np.array([1.5, -0.5])
    for f in WRAPPERS:
        given, compiled_with, default = (results(f(model, N, X, *constant)) for model, constant in (
            (md, [shifted]), (md._replace(constant=shifted), []), (md, [])))
        for a, b in zip(given, compiled_with, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f.__name__)
        assert not np.allclose(given[0], default[0]), f"{f.__name__} ignores the constants it is given"
    closed = np.array([two_cities.constant[0], -np.inf])
    P, _ = entry_probabilities(two_cities, N, X, closed)
    np.testing.assert_array_equal(P[:, 0], [1.0, 0.0])
    np.testing.assert_array_equal(mover_probabilities(two_cities, N, X, closed)[0, :, 1], [0.0, 0.0])


def test_the_array_functions_give_the_compiled_functions_the_types_they_are_compiled_for(two_cities, monkeypatch):
    """Counts as plain lists of floats, stocks, constants and gains as integers: the compiled functions still
    receive int64 counts and float64 arrays (one compiled specialisation each), and the results are the same."""
    inputs = {"lever_stocks": 2, "expected_entrants": 1, "best_levers": 1}  # arrays read (others: N, X, constant)
    expected = {"lever_stocks": ["float64", "int64"], "expected_entrants": ["int64"], "best_levers": ["float64"]}
    calls: list[tuple[str, list[str]]] = []

    def spy(name):
        def call(*args):
            arrays_in = [a for a in args if isinstance(a, np.ndarray)][:inputs.get(name, 3)]
            calls.append((name, [str(a.dtype) for a in arrays_in]))
            return getattr(compiled, name)(*args)
        return call

    names = ("lever_stocks", "entry_utility", "entry_probabilities", "mover_utility", "mover_probabilities",
             "expected_entrants", "marginal_firm_gain", "best_levers")
    monkeypatch.setattr(arrays, "compiled", SimpleNamespace(**{name: spy(name) for name in names}))
    N, X, constant = [[10.0], [4.0]], np.array([[3, 1, 0], [0, 0, 7]]), [1, -2]
    md = two_cities._replace(b=0.1, B=NONE)
    for f in WRAPPERS:
        plain = results(f(md, N, X, constant))
        typed = results(f(md, np.array(N, dtype=np.int64), X.astype(float), np.array(constant, dtype=float)))
        for a, b in zip(plain, typed, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f.__name__)
    np.testing.assert_array_equal(arrays.lever_stocks(md, [[1, 2, 3], [4, 5, 6]], [0.0, 2.0]),
                                  [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0 + 2 * md.omega]])
    np.testing.assert_array_equal(arrays.expected_entrants(md, N), [0.1 * 14])
    np.testing.assert_array_equal(arrays.best_levers([1, 3, 2]), [0.0, 1.0, 0.0])
    assert {name for name, _ in calls} == set(names)
    for name, dtypes in calls:
        assert dtypes == expected.get(name, ["int64", "float64", "float64"]), name


def test_lever_stocks_add_the_anchors_present_to_the_anchor_stock(two_cities):
    """X = (K, D, A + ω·anchors present) per city."""
    md = two_cities._replace(omega=25.0)
    stocks = np.array([[3.0, 1.5, 2.0], [0.5, 4.0, 0.0]])
    np.testing.assert_array_equal(arrays.lever_stocks(md, stocks, np.array([2, 0])),
                                  [[3.0, 1.5, 52.0], [0.5, 4.0, 0.0]])


def test_expected_entrants_are_the_birth_rate_times_all_firms_or_the_fixed_births_split_by_the_sector_mix():
    """b·N_total·mix without ``births_per_step``; B·mix with it."""
    md = coefficients(2, sectors=2)._replace(b=0.05, B=NONE, sector_mix=np.array([0.3, 0.7]))
    N = np.array([[10, 30], [40, 20]])
    np.testing.assert_allclose(arrays.expected_entrants(md, N), [0.05 * 100 * 0.3, 0.05 * 100 * 0.7], rtol=1e-12)
    np.testing.assert_allclose(arrays.expected_entrants(md._replace(B=12), N), [12 * 0.3, 12 * 0.7], rtol=1e-12)
