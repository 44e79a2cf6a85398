"""Rules of docs/ODD.md, each pinned by a known answer, in sections that follow the ODD's.

Steps and the dates of the records (§1.2, §1.3); the initial split of firms (§3.1); exit (§3.2); utility:
A_eff = A + ω·anchors, the complementarity matrix and the network term's conventions (§3.3); anchors'
reconsideration at ρ·φ_move/(1 + A) and the outside option (§3.4); spending and stocks (§3.5); the strategies:
which cities adapt, the best response's weighting of sectors and its ties, imitate's growth measure (§3.6);
the step an event falls on and what it sets (§3.7); the records and the event log (§3.8); the random draws:
Bernoulli subsets, thinning and the categorical draw (§2, §4); the firm columns and the model's interface
(§1.2, §4).

A test that takes an ``engine`` runs on each engine of conftest's ``ENGINES``:
``ModuModel`` with ``agents`` and with ``counts``, and the kernel path of the
command line, reading what each records (the agents engine draws other random
numbers, so a statistical test holds every engine to the same law). Tests of
the agents engine's own machinery (its firm columns and draws, ``follow``, the
firm table) and of ``ModuModel``'s API take none.
"""

import math
import pickle
import tracemalloc
import warnings
from copy import deepcopy

import numpy as np
import pytest
from conftest import make_scenario, simulate
from reference_odd import largest_remainder as odd_largest_remainder
from scipy import stats

from sim.model import ModuModel
from sim.model.firms import Firms, bernoulli_subset, draw_categorical, largest_remainder, thin
from sim.model.kernel import compile_scenario
from sim.model.kernel.phases import reconsider_probabilities
from sim.model.utility import best_levers, entry_probabilities

EQUAL_DEPRECIATION = {"compute": 0.2, "data": 0.2, "anchor": 0.2}


def policy(budget: float, compute: float, data: float, anchor: float, **extra) -> dict:
    return {"budget": budget, "allocation": {"compute": compute, "data": data, "anchor": anchor}, **extra}


# ---------------------------------------------------------------- steps and the dates of the records (ODD §1.2, §1.3)
def test_the_run_stops_after_exactly_n_steps_steps():
    """Three steps: ``running`` stays True through the first two and turns False (a bool, as Mesa types it) on the
    third, so a driver looping ``while model.running`` (as ``mesa.batch_run`` does) takes exactly three steps."""
    scenario = make_scenario(cities=[{"name": "A", "firms": 10}, {"name": "B", "firms": 10}], steps=3)
    model = ModuModel(scenario, rng=0)
    seen = []
    while model.running and model.steps < 50:
        model.step()
        seen.append(model.running)
    assert seen == [True, True, False] and model.running is False
    assert model.steps == model.n_steps == 3 and len(model.history.steps) == 4


def test_each_record_is_dated_start_plus_steps_over_steps_per_year(engine):
    scenario = make_scenario(cities=[{"name": "A", "firms": 10}, {"name": "B", "firms": 10}], steps=8, steps_per_year=4,
                             engine=engine)
    assert [r.year for r in simulate(scenario, engine, 0).steps] == [2000 + k / 4 for k in range(9)]
    model = ModuModel(scenario, rng=0)
    model.run()
    assert model.year == 2002.0


# ---------------------------------------------------------------- initial state (ODD §3.1)
def test_largest_remainder_splits_by_weights_that_need_not_sum_to_one_and_breaks_ties_to_the_first_listed():
    """Hand cases, then many weights with repeated values (ties) against the ODD reference's plain-Python split.

    More than 16 alternatives matter: on short lists numpy's default sort happens
    to be stable too, so only long lists tell a stable tie-break from another.
    """
    np.testing.assert_array_equal(largest_remainder(10, np.array([1.0, 3.0])), [3, 7])
    np.testing.assert_array_equal(largest_remainder(7, np.array([2.0, 2.0, 2.0])), [3, 2, 2])
    np.testing.assert_array_equal(largest_remainder(5, np.array([0.0, 1.0, 1.0])), [0, 3, 2])
    rng = np.random.default_rng(3)
    for _ in range(200):
        weights = rng.choice([0.5, 1.0, 2.0, 3.0], size=int(rng.integers(17, 80)))
        total = int(rng.integers(0, 500))
        counts = largest_remainder(total, weights)
        assert counts.sum() == total
        np.testing.assert_array_equal(counts, odd_largest_remainder(total, weights.tolist()))


# ---------------------------------------------------------------- firm size and exit (ODD §3.2)
def test_a_lone_firm_exits_and_a_lone_firm_moves(engine):
    """One anchor (an individual in every engine) that surely exits; one that surely reconsiders in a closed city,
    and then counts in A_eff = ω·anchors (ω = 10) where it went."""
    lone = [{"name": "solo", "sector": "all"}]
    exits = make_scenario(cities=[{"name": "A", "firms": 1, "anchors": lone}, {"name": "B", "firms": 0}],
                          parameters={"exit_rate": 1.0, "anchor_exit_factor": 1.0}, engine=engine)
    history = simulate(exits, engine, 0)
    assert history.steps[1].deaths.sum() == 1 and history.steps[1].firms.sum() == 0
    kept = make_scenario(cities=[{"name": "A", "firms": 1, "anchors": lone}, {"name": "B", "firms": 0}],
                         parameters={"exit_rate": 1.0, "anchor_exit_factor": 0.0}, engine=engine)
    assert simulate(kept, engine, 0).steps[1].firms.sum() == 1  # a lone candidate is still thinned: μ·φ_exit = 0
    moves = make_scenario(cities=[{"name": "A", "firms": 1, "anchors": lone, "open": False}, {"name": "B", "firms": 0}],
                          parameters={"relocation_rate": 1.0, "anchor_relocation_factor": 1.0}, engine=engine)
    history = simulate(moves, engine, 0)
    np.testing.assert_array_equal(history.steps[1].firms.sum(axis=1), [0, 1])
    np.testing.assert_array_equal(history.steps[1].A_eff, [0.0, 10.0])


# ---------------------------------------------------------------- utility and the network term (ODD §3.3)
def test_a_eff_adds_omega_per_anchor_present_and_enters_utility(engine):
    """A: budget 3 all on anchor support, δ = 0.2 a year, one step a year: A = 3/0.2 = 15; two anchors at
    ω = 10 make A_eff = 35. B: no policy, no anchors, A_eff = 0. With only β_A = 0.3 and equal counts the
    entry odds are (1 + 35)^0.3 : 1, so A gets Binomial(20,000, p) of 20,000 entrants (without the anchors'
    ω·2 the odds would be 16^0.3 : 1, 14 s.d. away)."""
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 50, "anchors": [{"name": "a1", "sector": "all"}, {"name": "a2", "sector": "all"}],
                 "policy": policy(3, 0, 0, 1)},
                {"name": "B", "firms": 50}],
        parameters={"lever_effects": {"anchor": {"all": 0.3}}, "depreciation": EQUAL_DEPRECIATION,
                    "births_per_step": 20_000}, engine=engine)
    history = simulate(scenario, engine, 0)
    np.testing.assert_allclose(history.steps[0].A_eff, [35.0, 0.0])
    p = 36 ** 0.3 / (36 ** 0.3 + 1)
    assert stats.binomtest(int(history.steps[1].births[0, 0]), 20_000, p).pvalue > 1e-3
    model = ModuModel(scenario, rng=0)
    np.testing.assert_allclose(model.lever_stocks(), [[0, 0, 35.0], [0, 0, 0]], atol=1e-12)
    np.testing.assert_allclose(model.entry_probabilities()[:, 0], [p, 1 - p], rtol=1e-12)


def test_the_complementarity_matrix_weighs_a_sectors_partners_by_its_own_row(engine):
    """N_eff[c, s] = Σ_s' W[s, s']·N[c, s'] with an asymmetric W (a gains 0.8 per b firm, b 0.1 per a firm).
    α = 1, κ = 0, so exp(V) = N_eff: A (30 a, 2 b) has N_eff 31.6 (a) and 5 (b), B (5 a, 20 b) 21 and 20.5.
    20,000 entrants: a chi-square over the four city-sector cells; W transposed (N_eff 30.2 / 26 and 7 / 24)
    is rejected."""
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 32, "sector_mix": {"a": 30 / 32, "b": 2 / 32}},
                {"name": "B", "firms": 25, "sector_mix": {"a": 0.2, "b": 0.8}}],
        sectors={"a": 0.5, "b": 0.5}, complementarity={"a": {"a": 1.0, "b": 0.8}, "b": {"a": 0.1, "b": 1.0}},
        parameters={"network_seed": 0.0, "births_per_step": 20_000}, engine=engine)
    history = simulate(scenario, engine, 0)
    np.testing.assert_array_equal(history.steps[0].firms, [[30, 2], [5, 20]])

    def cells(N_eff: np.ndarray) -> np.ndarray:
        return 0.5 * (N_eff / N_eff.sum(axis=0)).ravel()

    observed = history.steps[1].births.ravel()
    assert stats.chisquare(observed, 20_000 * cells(np.array([[31.6, 5.0], [21.0, 20.5]]))).pvalue > 1e-3
    assert stats.chisquare(observed, 20_000 * cells(np.array([[30.2, 26.0], [7.0, 24.0]]))).pvalue < 1e-12


def test_the_pure_urn_sends_every_entrant_to_a_lone_firm_and_none_to_an_empty_city(engine):
    """κ = 0: a city's network mass is its count, so beside a single firm an empty city (mass 0) gets probability 0.

    The urn is empty only where every city has mass 0; one firm (mass 1) is not an empty urn. All of 500 entrants
    go to the lone firm's city.
    """
    scenario = make_scenario(cities=[{"name": "A", "firms": 1}, {"name": "B", "firms": 0}],
                             parameters={"network_seed": 0.0, "births_per_step": 500}, engine=engine)
    np.testing.assert_array_equal(ModuModel(scenario, rng=0).entry_probabilities(), [[1.0], [0.0]])
    np.testing.assert_array_equal(simulate(scenario, engine, 0).steps[1].births[:, 0], [500, 0])


def test_an_empty_urn_adds_nothing_to_a_city_against_the_outside_option(engine):
    """With V₀ = ln 2 and a sector no city has a firm of (κ = 0, no complementarity), each city's utility for it is 0:
    P = 1/(1 + 1 + 2).

    The sector with firms: α = 1, κ = 0, so exp(V) = N: P = N / (10 + 30 + 2). Of 40,000 potential entrants, split
    evenly between the sectors in expectation: a chi-square over the four city-sector cells and staying out.
    """
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 10, "sector_mix": {"up": 1.0}},
                {"name": "B", "firms": 30, "sector_mix": {"up": 1.0}}],
        sectors={"up": 0.5, "down": 0.5},
        parameters={"network_seed": 0.0, "outside_option": math.log(2), "births_per_step": 40_000},
        complementarity={"up": {"up": 1.0, "down": 0.0}, "down": {"up": 0.0, "down": 1.0}}, engine=engine)
    P = np.array([[10 / 42, 0.25], [30 / 42, 0.25]])
    model = ModuModel(scenario, rng=0)
    np.testing.assert_array_equal(model.N, [[10, 0], [30, 0]])
    np.testing.assert_allclose(model.entry_probabilities(), P, rtol=1e-12)
    births = simulate(scenario, engine, 0).steps[1].births
    observed = np.r_[births.ravel(), 40_000 - births.sum()]
    assert stats.chisquare(observed, 40_000 * np.r_[0.5 * P.ravel(), 1 - 0.5 * P.sum()]).pvalue > 1e-3


def test_an_empty_city_in_the_pure_urn_raises_no_numpy_warning(engine):
    """log(0) = −∞ is the rule there, not an accident to warn a user about on every step."""
    scenario = make_scenario(cities=[{"name": "A", "firms": 5}, {"name": "B", "firms": 0}],
                             parameters={"network_seed": 0.0}, engine=engine)
    model = ModuModel(scenario, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        simulate(scenario, engine, 0)
        model.entry_probabilities()
        model.step()


# ---------------------------------------------------------------- relocation and entry (ODD §3.4)
def test_anchor_reconsideration_probability_is_rho_phi_over_one_plus_a_powered():
    """20,000 anchors in two cities with A = 0 and A = 3 (ρ = 0.8, φ = 0.5: p = 0.4 and 0.1) and 10,000
    ordinary firms (p = ρ): the kernel's probabilities exactly, then drawn as the agents engine draws them
    (Bernoulli(ρ) candidates thinned by p/ρ). Each count is within 4 s.d. of its binomial mean; a 20% error in
    any rule is ≥ 7 s.d. away (0.2·n·p / sqrt(n·p·(1 − p)) = 7.1 for the city with A = 3, the least powered)."""
    rho, phi = 0.8, 0.5
    md = compile_scenario(make_scenario(cities=[{"name": "A", "firms": 1}, {"name": "B", "firms": 1}],
                                        parameters={"relocation_rate": rho, "anchor_relocation_factor": phi}))
    stocks = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    n = 10_000
    city, anchor = np.repeat([0, 1, 1], n), np.repeat([True, True, False], n)
    exact = np.empty(3 * n)
    reconsider_probabilities(md, stocks, city, anchor, md.rho, exact)
    np.testing.assert_allclose(exact[[0, n, 2 * n]], [rho * phi / 1, rho * phi / 4, rho], rtol=1e-15)
    rng = np.random.default_rng(2026)
    candidates = bernoulli_subset(rng, 3 * n, md.rho)
    keep = np.empty(len(candidates))
    reconsider_probabilities(md, stocks, city[candidates], anchor[candidates], 1.0, keep)
    who = thin(rng, candidates, keep)
    for group, p in ((slice(0, n), rho * phi / 1), (slice(n, 2 * n), rho * phi / 4), (slice(2 * n, 3 * n), rho)):
        k = np.isin(np.arange(3 * n)[group], who).sum()
        sd = math.sqrt(n * p * (1 - p))
        assert abs(k - n * p) < 4 * sd, (group, k, n * p)
        if p < 1:
            assert 0.2 * n * p / sd > 5    # the test's power against a 20% error


def test_anchors_of_a_closed_city_leave_at_their_reconsideration_rate(engine):
    """In the model: 2,000 anchors in a closed city (so every reconsidering firm leaves) whose anchor stock
    is A = 0.3/0.3 = 1 (δ_A = 0.3, one step a year): ρ = 0.5, φ = 1 give p = 0.25, moves 500 ± 19.4; a
    20% error is 5.2 s.d. away. The probability uses the stock A, not A_eff (which would make it ~1e-5)."""
    anchors = [{"name": f"a{i}", "sector": "all"} for i in range(2000)]
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 2000, "anchors": anchors, "open": False, "policy": policy(0.3, 0, 0, 1)},
                {"name": "B", "firms": 10}],
        parameters={"relocation_rate": 0.5, "anchor_relocation_factor": 1.0}, engine=engine)
    history = simulate(scenario, engine, 4)
    assert math.isclose(history.steps[0].stocks[0, 2], 1.0)
    moved = int(history.steps[1].moves_out[0].sum())
    assert abs(moved - 500) < 4 * math.sqrt(2000 * 0.25 * 0.75), moved


def test_every_firm_that_may_reconsider_does_a_lone_firm_one_behind_an_empty_sector_an_anchor_after_a_dead_one(engine):
    """ρ = 1, φ_move = 1 and no anchor stock: every firm of A alive at the relocation phase reconsiders, and A's
    constant of −40 sends it to B (P(stay) ≈ e⁻⁴⁰). A holds one ordinary firm, in its second sector (its first is
    empty), and two anchors that each exit first with probability μ·φ_exit = ½. Whatever died, after the step A
    is empty: in each of 40 runs, of which some (about ¼) lose the first anchor and keep the second."""
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 3, "attractiveness": -40.0, "sector_mix": {"b": 1.0},
                 "anchors": [{"name": "a1", "sector": "b"}, {"name": "a2", "sector": "b"}]},
                {"name": "B", "firms": 100}],
        sectors={"a": 0.5, "b": 0.5},
        parameters={"relocation_rate": 1.0, "anchor_relocation_factor": 1.0, "exit_rate": 0.5,
                    "anchor_exit_factor": 1.0}, engine=engine)
    np.testing.assert_array_equal(ModuModel(scenario, rng=0).N[0], [0, 3])
    arrived = []
    for seed in range(40):
        after = simulate(scenario, engine, seed).steps[1]
        assert after.firms[0].sum() == 0, (seed, after.firms[0])
        arrived.append(int(after.moves_in[1].sum()))
    assert set(arrived) >= {1, 2}, arrived  # anchors died in some runs, survived in others


def test_entry_probabilities_with_an_outside_option_normalise_each_sector_separately(engine):
    """α = 1, κ = 0, so exp(V) = N_eff. A has 30 up and 10 down firms, B the reverse; with W = 1 on the diagonal
    and 0.25 off it N_eff is 32.5 / 17.5 (A) and 17.5 / 32.5 (B). With V₀ = ln 50 each sector's alternatives
    weigh 32.5 + 17.5 + 50 = 100: P = [[0.325, 0.175], [0.175, 0.325]], each column summing to ½. Of 40,000
    potential entrants, half of each sector (in expectation) stays out: a chi-square over the four city-sector
    cells and staying out."""
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 40, "sector_mix": {"up": 0.75, "down": 0.25}},
                {"name": "B", "firms": 40, "sector_mix": {"up": 0.25, "down": 0.75}}],
        sectors={"up": 0.5, "down": 0.5},
        parameters={"network_seed": 0.0, "outside_option": math.log(50), "births_per_step": 40_000},
        complementarity={"up": {"up": 1.0, "down": 0.25}, "down": {"up": 0.25, "down": 1.0}}, engine=engine)
    P = np.array([[0.325, 0.175], [0.175, 0.325]])
    model = ModuModel(scenario, rng=0)
    np.testing.assert_array_equal(model.N, [[30, 10], [10, 30]])
    np.testing.assert_allclose(model.entry_probabilities(), P, rtol=1e-12)
    _, stay_out = entry_probabilities(model.compiled, model.N, model.lever_stocks(), model.state.constant)
    np.testing.assert_allclose(stay_out, [0.5, 0.5], rtol=1e-12)
    births = simulate(scenario, engine, 0).steps[1].births
    observed = np.r_[births.ravel(), 40_000 - births.sum()]
    assert stats.chisquare(observed, 40_000 * np.r_[0.5 * P.ravel(), 0.5]).pvalue > 1e-3


# ---------------------------------------------------------------- spending and stocks (ODD §3.5)
def test_a_stock_grows_by_spending_over_unit_cost(engine):
    """Compute does not depreciate (δ = 0, so K starts at 0) and costs 2 per unit: 10 a year all on compute adds
    5 units a step, and a one-off 4 in the second step adds 2 more: K = 5, 12, 17."""
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 10, "policy": policy(10, 1, 0, 0)}, {"name": "B", "firms": 10}],
        parameters={"depreciation": {"compute": 0.0, "data": 0.1, "anchor": 0.3},
                    "unit_cost": {"compute": 2.0, "data": 1.0, "anchor": 1.0}},
        steps=3, steps_per_year=1, events=[{"year": 2001, "city": "A", "invest": {"compute": 4}}], engine=engine)
    history = simulate(scenario, engine, 0)
    np.testing.assert_allclose(history.stack("stocks")[:, 0, 0], [0, 5, 12, 17])


def test_one_off_investments_due_in_one_step_add_up(engine):
    """Two investment events of one date in a city with a budget: spending is its budget share plus both."""
    scenario = make_scenario(cities=[{"name": "A", "firms": 10, "policy": policy(4, 0.5, 0.5, 0)},
                                     {"name": "B", "firms": 10}],
                             steps=2, steps_per_year=2,
                             events=[{"year": 2000.5, "city": "A", "invest": {"data": 3}},
                                     {"year": 2000.5, "city": "A", "invest": {"compute": 1, "data": 2}}], engine=engine)
    history = simulate(scenario, engine, 0)
    np.testing.assert_allclose(history.stack("spend")[1:, 0], [[1, 1, 0], [1 + 1, 1 + 3 + 2, 0]])


# ---------------------------------------------------------------- strategies: which cities adapt (ODD §3.6)
def test_a_city_without_a_policy_given_only_a_budget_keeps_its_allocation_fixed(engine):
    """No policy means the fixed strategy: a budget given by an event (and no strategy) never adapts the
    allocation, even where the best response would move it (compute has an effect here)."""
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 100}, {"name": "B", "firms": 100}],
        parameters={"lever_effects": {"compute": {"all": 0.4}}, "birth_rate": 0.05},
        steps=3, steps_per_year=1, events=[{"year": 2001, "city": "A", "budget": 10}], engine=engine)
    history = simulate(scenario, engine, 0)
    np.testing.assert_allclose(history.stack("allocation")[:, 0], np.full((4, 3), 1 / 3))


def test_cities_with_a_zero_budget_keep_their_allocation_whatever_their_strategy(engine):
    """Compute is the only lever with an effect. A best-responds with a budget and moves half-way toward compute;
    Zero best-responds and Idle imitates, both with a budget of 0: they keep their allocations, although A's
    gains are computed and B (a budget, all on compute, by far the most attractive) grew fastest."""
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 100, "policy": policy(10, 0, 0, 1, strategy="best_response", learning_rate=0.5)},
                {"name": "Zero", "firms": 100, "policy": policy(0, 0, 0, 1, strategy="best_response", learning_rate=0.5)},
                {"name": "Idle", "firms": 100, "policy": policy(0, 0, 1, 0, strategy="imitate", learning_rate=0.5)},
                {"name": "B", "firms": 100, "attractiveness": 3.0, "policy": policy(10, 1, 0, 0)}],
        parameters={"lever_effects": {"compute": {"all": 0.4}}, "birth_rate": 0.1}, steps=2, steps_per_year=1,
        engine=engine)
    allocation = simulate(scenario, engine, 0).stack("allocation")
    np.testing.assert_allclose(allocation[2, 0], [0.5, 0.0, 0.5])
    np.testing.assert_array_equal(allocation[:, 1], [[0, 0, 1]] * 3)
    np.testing.assert_array_equal(allocation[:, 2], [[0, 1, 0]] * 3)


def test_a_budget_below_one_still_adapts(engine):
    """Only a zero budget stops a strategy; 0.5 (50 M yuan a year) adapts toward compute, the only lever with an effect."""
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 100, "policy": policy(0.5, 0, 0, 1, strategy="best_response", learning_rate=0.5)},
                {"name": "B", "firms": 100}],
        parameters={"lever_effects": {"compute": {"all": 0.4}}, "birth_rate": 0.05}, steps=2, steps_per_year=1, engine=engine)
    history = simulate(scenario, engine, 0)
    np.testing.assert_allclose(history.stack("allocation")[2, 0], [0.5, 0.0, 0.5])


def test_a_city_without_a_target_does_not_stop_the_others_adapting(engine):
    """Compute is the only lever with an effect. Closed (a pool, listed first) best-responds but no firm can choose
    it, so its gains all tie at 0 and it has no target; Pool imitates but no non-pool city has a budget to copy
    (Open has none). Neither moves, and Pool2, listed after them, still adapts: half-way toward compute."""
    scenario = make_scenario(
        cities=[{"name": "Closed", "firms": 100, "open": False, "pool": True,
                 "policy": policy(10, 0, 0, 1, strategy="best_response", learning_rate=0.5)},
                {"name": "Pool", "firms": 100, "pool": True,
                 "policy": policy(10, 0, 1, 0, strategy="imitate", learning_rate=0.5)},
                {"name": "Open", "firms": 100, "policy": policy(0, 0, 0, 1, strategy="best_response", learning_rate=0.5)},
                {"name": "Pool2", "firms": 100, "pool": True,
                 "policy": policy(10, 0, 0, 1, strategy="best_response", learning_rate=0.5)}],
        parameters={"lever_effects": {"compute": {"all": 0.4}}, "birth_rate": 0.1}, steps=2, steps_per_year=1,
        engine=engine)
    allocation = simulate(scenario, engine, 0).stack("allocation")
    np.testing.assert_array_equal(allocation[2, :3], [[0, 0, 1], [0, 1, 0], [0, 0, 1]])  # Open: no budget
    np.testing.assert_allclose(allocation[2, 3], [0.5, 0.0, 0.5])


# ---------------------------------------------------------------- strategies: best response (ODD §3.6)
def test_best_response_gain_weights_each_sector_by_its_expected_entrants(engine):
    """Two sectors, 20% up and 80% down; compute acts on up (β = 0.4), data on down (β = 0.1). A spends 10
    a year half and half, so K = D = 10·0.5/0.2 = 25; B has no policy. Counts are equal, so
    V_A − V_B = 0.4·ln 26 (up) and 0.1·ln 26 (down); 200 firms × b = 0.05 = 10 entrants a step: 2 up, 8 down.
    Gain of compute = 0.4·2·P_u(1 − P_u)/26 ≈ 0.0052, of data = 0.1·8·P_d(1 − P_d)/26 ≈ 0.0075: data wins,
    though weighting sectors the other way round would make compute win."""
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 100, "policy": policy(10, 0.5, 0.5, 0, strategy="best_response",
                                                              learning_rate=0.5)},
                {"name": "B", "firms": 100}],
        sectors={"up": 0.2, "down": 0.8},
        parameters={"lever_effects": {"compute": {"up": 0.4}, "data": {"down": 0.1}}, "birth_rate": 0.05,
                    "depreciation": EQUAL_DEPRECIATION},
        steps=2, steps_per_year=1, engine=engine)
    model = ModuModel(scenario, rng=0)
    np.testing.assert_allclose(model.expected_entrants(), [2.0, 8.0])
    pu = 1 / (1 + math.exp(-0.4 * math.log(26)))
    pd_ = 1 / (1 + math.exp(-0.1 * math.log(26)))
    gain = model.marginal_firm_gain()
    np.testing.assert_allclose(gain[0], [0.4 * 2 * pu * (1 - pu) / 26, 0.1 * 8 * pd_ * (1 - pd_) / 26, 0.0], rtol=1e-12)
    np.testing.assert_allclose(gain[1], [0.4 * 2 * pu * (1 - pu), 0.1 * 8 * pd_ * (1 - pd_), 0.0], rtol=1e-12)
    # the first yearly adaptation moves half-way toward data, on a state the first year's entry changed
    # only a little (so data still wins by a wide margin)
    np.testing.assert_allclose(simulate(scenario, engine, 0).stack("allocation")[2, 0], [0.25, 0.75, 0.0])


def test_best_response_weighs_sectors_by_births_per_step_when_it_is_set():
    """With ``births_per_step`` the expected entrants are that number split by the sector mix, not b·N."""
    scenario = make_scenario(cities=[{"name": "A", "firms": 100}, {"name": "B", "firms": 300}],
                             sectors={"up": 0.25, "down": 0.75},
                             parameters={"births_per_step": 40, "birth_rate": 0.5})
    np.testing.assert_allclose(ModuModel(scenario, rng=0).expected_entrants(), [10.0, 30.0])
    no_fixed = make_scenario(cities=[{"name": "A", "firms": 100}, {"name": "B", "firms": 300}],
                             sectors={"up": 0.25, "down": 0.75}, parameters={"birth_rate": 0.5})
    np.testing.assert_allclose(ModuModel(no_fixed, rng=0).expected_entrants(), [50.0, 150.0])


def test_best_levers_treats_gains_equal_up_to_rounding_as_tied():
    np.testing.assert_array_equal(best_levers(np.array([0.3 / 3, 0.1, 0.05])), [0.5, 0.5, 0.0])
    np.testing.assert_array_equal(best_levers(np.array([0.1 * (1 - 1e-6), 0.1, 0.05])), [0.0, 1.0, 0.0])


def test_the_tie_tolerance_of_best_levers_is_relative_to_the_gains_size():
    """Gains per 100 M yuan are tiny in a small city and large in a big one: ties are within 10⁻⁹ of the top, relatively."""
    np.testing.assert_array_equal(best_levers(np.array([1e-6 * (1 - 1e-6), 1e-6, 0.0])), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(best_levers(np.array([1e6, 1e6 * (1 - 1e-12), 0.0])), [0.5, 0.5, 0.0])


def test_best_levers_with_a_lever_that_repels_firms():
    """A negative lever effect makes a gain negative: the best is then a lever gaining 0, or two tied at 0."""
    np.testing.assert_array_equal(best_levers(np.array([-1.0, 0.0, 0.0])), [0.0, 0.5, 0.5])
    np.testing.assert_array_equal(best_levers(np.array([0.0, -1.0, -2.0])), [1.0, 0.0, 0.0])


def test_best_response_splits_between_levers_whose_gain_per_yuan_differs_only_by_rounding(engine):
    """β_K/c_K = 0.3/3 and β_D/c_D = 0.1/1 are equal but not in floating point; A starts all on anchor
    (no effect), so K = D = 0 and the two gains per yuan tie: the allocation moves toward (½, ½, 0).
    (B has 50 firms, so P_A is not ½ and the two products round differently.)"""
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 100, "policy": policy(10, 0, 0, 1, strategy="best_response", learning_rate=0.5)},
                {"name": "B", "firms": 50}],
        parameters={"lever_effects": {"compute": {"all": 0.3}, "data": {"all": 0.1}}, "birth_rate": 0.05,
                    "unit_cost": {"compute": 3.0, "data": 1.0, "anchor": 1.0}},
        steps=2, steps_per_year=1, engine=engine)
    gain = ModuModel(scenario, rng=0).marginal_firm_gain()[0]
    assert gain[0] != gain[1] and math.isclose(gain[0], gain[1], rel_tol=1e-12)
    np.testing.assert_allclose(simulate(scenario, engine, 0).stack("allocation")[2, 0], [0.25, 0.25, 0.5])


# ---------------------------------------------------------------- strategies: imitate (ODD §3.6)
def test_imitate_measures_growth_over_exactly_the_last_year_and_finds_the_fastest_anywhere_in_the_list(engine):
    """Two steps a year. Early (listed third) takes most of the 1,000 entrants in the year's first step and
    is then closed; Late (listed second, closed at first) opens for the second step and takes fewer. Over
    the whole year Early grew fastest; over the second step alone only Late grew. The copier (listed first)
    moves half-way toward Early's allocation at the first adaptation."""
    scenario = make_scenario(
        cities=[{"name": "Copier", "firms": 100, "policy": policy(10, 0, 1, 0, strategy="imitate", learning_rate=0.5)},
                {"name": "Late", "firms": 100, "attractiveness": 1.5, "open": False, "policy": policy(10, 0, 0, 1)},
                {"name": "Early", "firms": 100, "attractiveness": 3.0, "policy": policy(10, 1, 0, 0)},
                {"name": "Base", "firms": 100}],
        parameters={"births_per_step": 1000},
        events=[{"year": 2000.5, "city": "Early", "open": False}, {"year": 2000.5, "city": "Late", "open": True}],
        steps=4, steps_per_year=2, engine=engine)
    history = simulate(scenario, engine, 3)
    firms = history.stack("firms").sum(axis=2)
    year_growth = (firms[2] - firms[0]) / firms[0]
    assert np.argmax(year_growth) == 2 and firms[2, 2] == firms[1, 2]        # Early grew only in step 1
    assert firms[2, 1] - firms[1, 1] > 500                                   # Late grew in step 2
    np.testing.assert_allclose(history.stack("allocation")[3, 0], [0.5, 0.5, 0.0])


def test_imitate_ranks_cities_by_relative_growth_not_by_firms_gained(engine):
    """No network term, 200 entrants a step: Small (10 firms, constant 2) gains about 52, Big (1,000 firms,
    constant 3) about 141. Small grew fastest (≈ 520% against 14%), Big gained most: the copier moves half-way
    toward Small's allocation (all on compute), not Big's (all on anchor)."""
    scenario = make_scenario(
        cities=[{"name": "Copier", "firms": 200, "policy": policy(10, 0, 1, 0, strategy="imitate", learning_rate=0.5)},
                {"name": "Small", "firms": 10, "attractiveness": 2.0, "policy": policy(10, 1, 0, 0)},
                {"name": "Big", "firms": 1000, "attractiveness": 3.0, "policy": policy(10, 0, 0, 1)}],
        parameters={"births_per_step": 200, "network_effect": 0.0}, steps=2, steps_per_year=1, engine=engine)
    history = simulate(scenario, engine, 0)
    firms = history.stack("firms").sum(axis=2)
    gained = firms[1] - firms[0]
    assert np.argmax(gained / firms[0]) == 1 and np.argmax(gained) == 2     # the design: the two rankings differ
    np.testing.assert_allclose(history.stack("allocation")[2, 0], [0.5, 0.5, 0.0])


def test_imitate_measures_a_citys_growth_over_all_its_sectors(engine):
    """Two sectors. X starts with 100 firms, all upstream, and takes most of 200 entrants a step (half of them
    downstream); Y has 200 downstream firms and few entrants; the copier (1,000 firms, half in each sector) fewer
    still. Over all sectors X grew fastest by far; counted in one sector only, X would have had no firms a year
    ago (growth 0) and the copier would seem to double. The copier moves half-way toward X's allocation."""
    scenario = make_scenario(
        cities=[{"name": "Copier", "firms": 1000, "attractiveness": -3.0,
                 "policy": policy(10, 0, 1, 0, strategy="imitate", learning_rate=0.5)},
                {"name": "X", "firms": 100, "attractiveness": 2.0, "sector_mix": {"up": 1.0, "down": 0.0},
                 "policy": policy(10, 1, 0, 0)},
                {"name": "Y", "firms": 200, "sector_mix": {"up": 0.0, "down": 1.0}, "policy": policy(10, 0, 0, 1)}],
        sectors={"up": 0.5, "down": 0.5}, parameters={"births_per_step": 200, "network_effect": 0.0},
        steps=2, steps_per_year=1, engine=engine)
    history = simulate(scenario, engine, 0)
    firms = history.stack("firms")
    growth = (firms[1].sum(axis=1) - firms[0].sum(axis=1)) / firms[0].sum(axis=1)
    assert np.argmax(growth) == 1 and firms[0, 1, 1] == 0 and firms[1, 1, 1] > 0   # X: fastest, and no downstream firm
    np.testing.assert_allclose(history.stack("allocation")[2, 0], [0.5, 0.5, 0.0])


def test_imitate_copies_the_first_listed_of_cities_growing_equally_fast(engine):
    """Nothing enters or exits, so every city's growth is 0: imitate copies the first listed city with a budget,
    A (all on compute), not the last of the equals, B (all on anchor)."""
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 100, "policy": policy(10, 1, 0, 0)},
                {"name": "Copier", "firms": 100, "policy": policy(10, 0, 1, 0, strategy="imitate", learning_rate=0.5)},
                {"name": "B", "firms": 100, "policy": policy(10, 0, 0, 1)}],
        steps=2, steps_per_year=1, engine=engine)
    history = simulate(scenario, engine, 0)
    assert (history.stack("births") == 0).all() and (history.stack("deaths") == 0).all()
    np.testing.assert_allclose(history.stack("allocation")[2, 1], [0.5, 0.5, 0.0])


def test_imitate_never_copies_a_city_without_a_budget_however_fast_it_grows(engine):
    """NoBudget (no policy, listed second) grows fastest, Funded grows too; the copier must follow Funded:
    a city that spends nothing has no allocation to copy."""
    scenario = make_scenario(
        cities=[{"name": "Copier", "firms": 200, "policy": policy(10, 0, 1, 0, strategy="imitate", learning_rate=0.5)},
                {"name": "NoBudget", "firms": 10, "attractiveness": 3.0},
                {"name": "Funded", "firms": 100, "attractiveness": 1.0, "policy": policy(10, 1, 0, 0)},
                {"name": "Big", "firms": 400}],
        parameters={"births_per_step": 300, "network_effect": 0.0},
        steps=2, steps_per_year=1, engine=engine)
    history = simulate(scenario, engine, 5)
    firms = history.stack("firms").sum(axis=2)
    growth = (firms[1] - firms[0]) / firms[0]
    assert np.argmax(growth) == 1 and growth[2] > 0                          # NoBudget grew fastest
    np.testing.assert_allclose(history.stack("allocation")[2, 0], [0.5, 0.5, 0.0])


def test_imitate_copies_a_fast_grower_whose_budget_is_below_one(engine):
    """Any positive budget is a budget: Small (50 M yuan a year, all on compute) grows fastest and is copied."""
    scenario = make_scenario(
        cities=[{"name": "Copier", "firms": 200, "policy": policy(10, 0, 1, 0, strategy="imitate", learning_rate=0.5)},
                {"name": "Small", "firms": 10, "attractiveness": 3.0, "policy": policy(0.5, 1, 0, 0)},
                {"name": "Big", "firms": 400, "policy": policy(10, 0, 0, 1)}],
        parameters={"births_per_step": 300, "network_effect": 0.0}, steps=2, steps_per_year=1, engine=engine)
    history = simulate(scenario, engine, 5)
    firms = history.stack("firms").sum(axis=2)
    assert np.argmax((firms[1] - firms[0]) / firms[0]) == 1                  # Small grew fastest
    np.testing.assert_allclose(history.stack("allocation")[2, 0], [0.5, 0.5, 0.0])


def test_imitate_counts_growth_from_a_single_firm_and_none_from_an_empty_city(engine):
    """Seed starts with one firm and grows by hundreds of percent; Empty starts with none, so its growth is
    taken as 0 (not infinite). The copier follows Seed."""
    scenario = make_scenario(
        cities=[{"name": "Copier", "firms": 200, "policy": policy(10, 0, 1, 0, strategy="imitate", learning_rate=0.5)},
                {"name": "Empty", "firms": 0, "attractiveness": 1.0, "policy": policy(10, 0, 0, 1)},
                {"name": "Seed", "firms": 1, "attractiveness": 1.0, "policy": policy(10, 1, 0, 0)},
                {"name": "Big", "firms": 400, "policy": policy(10, 0, 0, 1)}],
        parameters={"births_per_step": 300, "network_effect": 0.0},
        steps=2, steps_per_year=1, engine=engine)
    history = simulate(scenario, engine, 5)
    firms = history.stack("firms").sum(axis=2)
    assert firms[1, 1] > 0 and firms[1, 2] > 10                              # both small cities gained firms
    np.testing.assert_allclose(history.stack("allocation")[2, 0], [0.5, 0.5, 0.0])


def test_imitate_counts_an_empty_city_as_growth_zero_ahead_of_shrinking_cities(engine):
    """No entry, half of all firms exit a year: the copier and Shrinker shrink, Empty (no firms a year ago, a
    budget all on anchor support) has growth 0, the highest: the copier moves half-way to (0, 0, 1)."""
    scenario = make_scenario(
        cities=[{"name": "Copier", "firms": 200, "policy": policy(10, 0, 1, 0, strategy="imitate", learning_rate=0.5)},
                {"name": "Shrinker", "firms": 100, "policy": policy(10, 1, 0, 0)},
                {"name": "Empty", "firms": 0, "policy": policy(10, 0, 0, 1)}],
        parameters={"exit_rate": 0.5, "exit_size_elasticity": 0.0}, steps=2, steps_per_year=1, engine=engine)
    history = simulate(scenario, engine, 0)
    firms = history.stack("firms").sum(axis=2)
    assert firms[1, 0] < 200 and firms[1, 1] < 100 and firms[1, 2] == 0
    np.testing.assert_allclose(history.stack("allocation")[2, 0], [0.0, 0.5, 0.5])


@pytest.mark.parametrize("engine", ["agents", "counts"])
def test_growth_of_an_empty_city_is_zero_not_whatever_memory_held(engine):
    """A city with no firms a year ago has growth 0 (not an uninitialised value), whatever else grows.

    Growth is the model's state, which only a model stepped from Python shows; the kernel path shows it
    through imitate (``test_imitate_counts_an_empty_city_as_growth_zero_ahead_of_shrinking_cities``)."""
    scenario = make_scenario(
        cities=[{"name": "Empty", "firms": 0, "attractiveness": -50.0, "policy": policy(10, 0, 0, 1)},
                {"name": "A", "firms": 100, "policy": policy(10, 1, 0, 0)},
                {"name": "B", "firms": 100}],
        parameters={"births_per_step": 50}, steps=2, steps_per_year=1, engine=engine)
    model = ModuModel(scenario, rng=1)
    model.step()
    model.step()  # the second step closes the first year
    assert model.state.growth[0] == 0.0 and model.state.growth[1] > 0


# ---------------------------------------------------------------- events (ODD §3.7)
def test_an_event_dated_at_a_step_start_rounded_to_ten_decimals_applies_at_that_step(engine):
    """Three steps a year: step 3 starts at 2000 + 2/3. A date written 2000.6666666667 (two-thirds to ten
    decimals) is 3e-11 years after it, within the 1e-9-year tolerance: the investment is spent in step 3."""
    scenario = make_scenario(cities=[{"name": "A", "firms": 10}, {"name": "B", "firms": 10}],
                             steps=6, steps_per_year=3,
                             events=[{"year": 2000.6666666667, "city": "B", "invest": {"data": 3}}], engine=engine)
    history = simulate(scenario, engine, 0)
    spend = history.stack("spend")[:, 1, 1]
    np.testing.assert_array_equal(spend, [0, 0, 0, 3, 0, 0, 0])


def test_an_event_dated_exactly_the_tolerance_after_a_step_start_applies_at_that_step(engine):
    """Step 2 starts at 2001.0; an event at 2001.000000001 (= 2001.0 + 1e-9 in floating point) is within the
    10⁻⁹-year tolerance, inclusive: it is spent in step 2, not step 3."""
    assert 2001.000000001 == 2001.0 + 1e-9
    scenario = make_scenario(cities=[{"name": "A", "firms": 10}, {"name": "B", "firms": 10}], steps=3, steps_per_year=1,
                             events=[{"year": 2001.000000001, "city": "B", "invest": {"data": 3}}], engine=engine)
    history = simulate(scenario, engine, 0)
    np.testing.assert_array_equal(history.stack("spend")[:, 1, 1], [0, 0, 3, 0])


@pytest.mark.parametrize("strategy", ["fixed", "imitate"])
def test_a_strategy_set_by_an_event_is_the_one_the_city_follows(strategy, engine):
    """A best-responding city (compute is the only lever with an effect, so it moves half-way there each year)
    is switched by an event in 2001 to ``fixed`` or ``imitate``. The adaptation of 2001 comes before the event:
    (0, 0, 1) → (½, 0, ½). In 2002 ``fixed`` keeps it and ``imitate`` moves half-way to the allocation of 2001's
    fastest grower, B (all on data, far more attractive); neither moves toward compute again."""
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 100, "policy": policy(10, 0, 0, 1, strategy="best_response", learning_rate=0.5)},
                {"name": "B", "firms": 100, "attractiveness": 4.0, "policy": policy(10, 0, 1, 0)}],
        parameters={"lever_effects": {"compute": {"all": 0.4}}, "birth_rate": 0.2},
        steps=3, steps_per_year=1, events=[{"year": 2001, "city": "A", "strategy": strategy}], engine=engine)
    history = simulate(scenario, engine, 0)
    alloc = history.stack("allocation")[:, 0]
    np.testing.assert_allclose(alloc[2], [0.5, 0.0, 0.5])
    growth = history.stack("firms").sum(axis=2)
    assert growth[2, 1] / growth[1, 1] > growth[2, 0] / growth[1, 0]          # B grew fastest in 2001
    expected = [0.5, 0.0, 0.5] if strategy == "fixed" else [0.25, 0.5, 0.25]
    np.testing.assert_allclose(alloc[3], expected)


def test_an_anchor_added_by_an_event_is_counted_as_a_birth_where_it_is_alongside_the_entrants(engine):
    """Five entrants a step (all to A: B is closed) and an anchor added to B by an event in step 2: births in step 2
    are 5 in A and 1 in B, and every step's firms follow N[t] = N[t−1] + births − deaths + moves."""
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 20}, {"name": "B", "firms": 10, "open": False}],
        parameters={"births_per_step": 5}, steps=3, engine=engine,
        events=[{"year": 2000 + 1 / 3, "city": "B", "add_anchor": {"name": "new", "sector": "all"}}])
    h = simulate(scenario, engine, 0)
    births = h.stack("births")[:, :, 0]
    np.testing.assert_array_equal(births[1:], [[5, 0], [5, 1], [5, 0]])
    firms = h.stack("firms")
    net = h.stack("births") - h.stack("deaths") + h.stack("moves_in") - h.stack("moves_out")
    np.testing.assert_array_equal(firms[1:], firms[:-1] + net[1:])
    np.testing.assert_array_equal(firms[-1, :, 0], [35, 11])
    np.testing.assert_array_equal(h.stack("A_eff")[:, 1], [0, 0, 10, 10])  # ω = 10 per anchor present, from step 2


# ---------------------------------------------------------------- records and the event log (ODD §3.8)
def test_firms_are_counted_by_city_and_sector_for_the_largest_indices_the_columns_hold(engine):
    """110 sectors and 300 cities: city 299, sector 109 is cell 299·110 + 109 = 32,999 of the [city, sector] counts,
    beyond the int16 range of the city column (32,767), so the cell index must be computed in a wider type. Each
    city has one firm (of the first sector, by largest remainder) and the last city two more of the last sector;
    all of them exit in step 1 (μ = 1, η = 0)."""
    sectors = {f"s{i}": 1 / 110 for i in range(110)}
    cities = [{"name": f"C{i}", "firms": 1} for i in range(299)]
    cities.append({"name": "Last", "firms": 3, "anchors": [{"name": f"x{i}", "sector": "s109"} for i in range(2)]})
    scenario = make_scenario(cities=cities, sectors=sectors,
                             parameters={"exit_rate": 1.0, "exit_size_elasticity": 0.0, "anchor_exit_factor": 1.0},
                             engine=engine)
    expected = np.zeros((300, 110), dtype=np.int64)
    expected[:, 0] = 1
    expected[299, 109] = 2
    history = simulate(scenario, engine, 0)
    np.testing.assert_array_equal(history.steps[0].firms, expected)
    np.testing.assert_array_equal(history.steps[1].deaths, expected)
    assert history.steps[1].firms.sum() == 0


def test_relocation_flows_are_whole_numbers_of_firms(engine):
    """The origin–destination matrix and its frame count firms: integers, as the CSV tables print them."""
    scenario = make_scenario(cities=[{"name": "A", "firms": 200, "open": False}, {"name": "B", "firms": 50}],
                             parameters={"relocation_rate": 0.5}, steps=2, engine=engine)
    history = simulate(scenario, engine, 0)
    assert history.flows.dtype.kind == "i" and history.flows[0, 1] > 100
    frame = history.flows_frame()
    assert frame["firms"].dtype.kind == "i" and frame["firms"].sum() == history.flows.sum()


def test_the_data_collector_records_each_steps_brief_over_the_non_pool_cities():
    """All ordinary firms exit in step 1 (μ = 1, η = 0), anchors never: A goes 30 → 1 (one anchor), B 10 → 2 (two),
    the pool 100 → 0. Shares over A and B: ¾, ¼ (HHI 0.625, A leads), then ⅓, ⅔ (HHI 5/9, B leads)."""
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 30, "anchors": [{"name": "a", "sector": "all"}]},
                {"name": "B", "firms": 10, "anchors": [{"name": f"b{i}", "sector": "all"} for i in range(2)]},
                {"name": "Pool", "firms": 100, "pool": True}],
        parameters={"exit_rate": 1.0, "exit_size_elasticity": 0.0}, steps=2)
    model = ModuModel(scenario, rng=0)
    model.run()
    frame = model.datacollector.get_model_vars_dataframe()
    assert len(frame) == 3
    np.testing.assert_array_equal(frame[["firms_A", "firms_B", "firms_Pool"]], [[30, 10, 100], [1, 2, 0], [1, 2, 0]])
    np.testing.assert_allclose(frame["hhi"], [0.625, 5 / 9, 5 / 9], rtol=1e-12)
    np.testing.assert_allclose(frame["top1_share"], [0.75, 2 / 3, 2 / 3], rtol=1e-12)
    assert frame["leader"].tolist() == ["A", "B", "B"]


def test_follow_gives_a_firms_entry_moves_and_exit_with_their_years_and_places():
    scenario = make_scenario(cities=[{"name": "A", "firms": 30}, {"name": "B", "firms": 30}],
                             parameters={"relocation_rate": 0.6, "exit_rate": 0.3, "birth_rate": 0.2},
                             steps=8, steps_per_year=4)
    model = ModuModel(scenario, rng=11)
    model.run()
    moved = [i for i in range(60) if len(model.follow(i)) >= 3]
    assert moved, "some firm moved and then exited or moved again"
    path = model.follow(moved[0])
    assert list(path.columns) == ["step", "year", "event", "origin", "destination"]
    assert path.event.iloc[0] == "initial" and path.origin.isna().iloc[0] and path.destination.iloc[0] in ("A", "B")
    np.testing.assert_allclose(path.year, 2000 + path.step / 4)
    moves = path[path.event == "move"]
    assert len(moves) and set(moves.origin) <= {"A", "B"} and (moves.origin != moves.destination).all()
    with pytest.raises(KeyError):
        model.follow(10**9)
    quiet = ModuModel(scenario, rng=11, record_events=False)
    with pytest.raises(RuntimeError, match="record_events=False"):
        quiet.follow(0)


def test_follow_shows_initial_firms_entrants_and_exits_with_their_places():
    """Every ordinary firm surely exits in step 1 (μ = 1, η = 0); anchors never exit; an anchor added by an event
    in step 2 is a birth there. An initial firm's trace is entry 'initial' (no origin) then 'death' in its city
    (no destination); an initial anchor's is 'initial'; the event's anchor's is 'birth' at step 2 in B."""
    scenario = make_scenario(
        cities=[{"name": "A", "firms": 3, "anchors": [{"name": "a0", "sector": "all"}]}, {"name": "B", "firms": 2}],
        parameters={"exit_rate": 1.0, "exit_size_elasticity": 0.0, "anchor_exit_factor": 0.0},
        steps=2, steps_per_year=2, events=[{"year": 2000.5, "city": "B", "add_anchor": {"name": "b1", "sector": "all"}}])
    model = ModuModel(scenario, rng=0, record_events=True)
    model.run()
    names = {name: i for i, name in model.anchor_names.items()}

    def rows(firm):
        trace = model.follow(firm)[["step", "event", "origin", "destination"]]
        return trace.astype(object).where(trace.notna(), None).to_dict("records")

    assert rows(names["a0"]) == [{"step": 0, "event": "initial", "origin": None, "destination": "A"}]
    assert rows(names["b1"]) == [{"step": 2, "event": "birth", "origin": None, "destination": "B"}]
    ordinary = [i for i in range(5) if i != names["a0"]]
    for firm in ordinary:
        first, last = rows(firm)
        assert first["event"] == "initial" and first["origin"] is None and first["step"] == 0
        assert last == {"step": 1, "event": "death", "origin": first["destination"], "destination": None}
    assert model.N.sum() == 2 and model.history.steps[2].births.sum() == 1


def test_a_model_built_without_the_event_log_holds_no_memory_for_events():
    """20,000 initial firms, then about 2,000 births and 2,000 deaths a step for four steps: the log holds ~36,000
    events at ≥ 12 bytes each (an int64 id, int16 origin and destination), ≥ 430 kB. Built with
    ``record_events=False`` the model holds at least 300 kB less than with the log (same random stream, same state)."""
    scenario = make_scenario(cities=[{"name": "A", "firms": 12_000}, {"name": "B", "firms": 8_000}],
                             parameters={"birth_rate": 0.1, "exit_rate": 0.1, "exit_size_elasticity": 0.0}, steps=4)

    def held(record_events: bool) -> int:
        tracemalloc.start()
        try:
            model = ModuModel(scenario, rng=0, record_events=record_events)
            model.run()
            return tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()

    with_log, without = held(True), held(False)
    assert with_log - without > 300_000, (with_log, without)


# ---------------------------------------------------------------- random draws (ODD §2 stochasticity, §4)
def test_bernoulli_subset_of_one_trial():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(bernoulli_subset(rng, 1, 1.0), [0])
    hits = sum(len(bernoulli_subset(rng, 1, 0.5)) for _ in range(4000))
    assert abs(hits - 2000) < 4 * math.sqrt(1000)
    assert len(bernoulli_subset(rng, 0, 0.5)) == 0


@pytest.mark.parametrize("n, p, expected", [(0, 0.5, []), (5, 0.0, []), (5, 1.0, [0, 1, 2, 3, 4])])
def test_bernoulli_subset_of_a_certain_outcome_draws_nothing(n, p, expected):
    """No trial, p = 0 or p = 1: the result is known and the stream is left where it was."""
    rng = np.random.default_rng(7)
    before = rng.bit_generator.state
    np.testing.assert_array_equal(bernoulli_subset(rng, n, p), expected)
    assert rng.bit_generator.state == before


class _ConstantUniform:
    """A generator stub whose uniforms all equal ``u`` (``random()`` returns values in [0, 1 − 2**−53])."""

    def __init__(self, u: float):
        self.u = u

    def random(self, n: int) -> np.ndarray:
        return np.full(n, self.u)


def test_thinning_keeps_nobody_whose_keep_probability_is_zero_even_at_u_zero():
    np.testing.assert_array_equal(thin(_ConstantUniform(0.0), np.array([4, 7]), np.array([0.0, 0.5])), [7])


def test_draw_categorical_follows_each_choosers_row():
    P = np.array([[0.2, 0.3, 0.5], [0.7, 0.0, 0.3]])
    rows = np.repeat([0, 1], 50_000)
    draws = draw_categorical(np.random.default_rng(1), P, rows)
    for r in (0, 1):
        share = np.bincount(draws[rows == r], minlength=3) / 50_000
        assert np.all(np.abs(share - P[r]) < 4 * np.sqrt(P[r] * (1 - P[r]) / 50_000) + 1e-12)


def test_draw_categorical_never_falls_off_a_row_whose_sum_rounds_below_one():
    P = np.array([[0.1] * 10, [0.5, 0.5, 0, 0, 0, 0, 0, 0, 0, 0]])
    assert np.cumsum(P[0])[-1] < 1.0                              # ten tenths add up to 1 − 2**−53
    np.testing.assert_array_equal(draw_categorical(_ConstantUniform(1 - 2.0 ** -53), P, np.array([0, 1])), [9, 1])


def test_draw_categorical_never_picks_an_alternative_of_probability_zero_even_at_u_zero():
    P = np.array([[0.0, 0.0, 1.0], [0.0, 0.4, 0.6]])              # e.g. closed cities first
    np.testing.assert_array_equal(draw_categorical(_ConstantUniform(0.0), P, np.array([0, 1])), [2, 1])


# ---------------------------------------------------------------- firm columns and the model's interface (ODD §1.2, §4)
def test_firms_added_without_saying_are_not_anchors():
    firms = Firms()
    firms.add(np.zeros(3, np.int16), np.zeros(3, np.int8), np.ones(3, np.float32), born=0)
    assert not firms.anchor.any() and firms.n == 3


@pytest.mark.parametrize("index", [[], [2], [5], [0, 5], [1, 3, 4], [0, 1, 2, 3, 4, 5]])
def test_removing_firms_leaves_exactly_the_others(index):
    """The firms left after ``remove`` are the others, each row whole (holes are filled from the tail)."""
    firms = Firms()
    firms.add(np.arange(6, dtype=np.int16), np.zeros(6, np.int8), np.arange(1, 7, dtype=np.float32), born=0)
    firms.remove(np.array(index, dtype=np.int64))
    kept = sorted(set(range(6)) - set(index))
    assert firms.n == len(kept)
    assert sorted(zip(firms.id.tolist(), firms.city.tolist(), firms.size.tolist(), strict=True)) == \
        [(i, i, i + 1.0) for i in kept]


def test_firms_survive_a_deep_copy_and_a_pickle_round_trip():
    """Copying builds the object before its columns exist; a missing attribute must then be an AttributeError."""
    firms = Firms()
    firms.add(np.array([0, 1], np.int16), np.zeros(2, np.int8), np.array([1, 4], np.float32), born=0, anchor=True)
    for copy in (deepcopy(firms), pickle.loads(pickle.dumps(firms))):
        np.testing.assert_array_equal(copy.size, [1, 4])
        assert copy.n == 2 and copy.anchor.all()
    with pytest.raises(AttributeError, match="nothing"):
        _ = firms.nothing


def test_the_counts_engine_keeps_no_firm_columns_for_its_ordinary_firms():
    """Ten million ordinary firms and one anchor: the counts engine's individual columns hold only the anchor
    (the smallest capacity, 16 rows of 22 bytes), whatever the number of ordinary firms."""
    scenario = make_scenario(cities=[{"name": "A", "firms": 10_000_000, "anchors": [{"name": "a", "sector": "all"}]},
                                     {"name": "B", "firms": 5}], engine="counts")
    model = ModuModel(scenario, rng=0)
    assert model.firms.n == 1 and model.N.sum() == 10_000_005
    assert model.firms.nbytes <= 16 * 22


def test_firm_table_lists_every_live_firm_with_its_age_in_steps():
    scenario = make_scenario(cities=[{"name": "A", "firms": 3, "anchors": [{"name": "a1", "sector": "all"}]},
                                     {"name": "B", "firms": 2}],
                             parameters={"births_per_step": 2}, steps=3, steps_per_year=3)
    model = ModuModel(scenario, rng=0)
    model.run()
    table = model.firm_table()
    assert list(table.columns) == ["id", "city", "sector", "size", "age", "anchor", "anchor_name"]
    assert sorted(table["id"]) == list(range(11))                    # ids count from 0 in order of entry
    assert sorted(table["age"].tolist()) == [0, 0, 1, 1, 2, 2] + [3] * 5   # entrants of steps 3, 2, 1; the initial firms
    assert table["city"].value_counts().sum() == 11 and set(table["sector"]) == {"all"}
    assert (table["size"] >= 1).all() and table["anchor"].sum() == 1
    assert table.loc[table["anchor"], "anchor_name"].tolist() == ["a1"]


def test_sample_firm_picks_only_firms_of_the_asked_sector_and_city_and_leaves_the_model_stream_alone():
    scenario = make_scenario(cities=[{"name": "A", "firms": 40}, {"name": "B", "firms": 60}],
                             sectors={"up": 0.5, "down": 0.5})
    model = ModuModel(scenario, rng=2)
    table = model.firm_table().set_index("id")
    for seed in range(20):
        chosen = model.sample_firm(sector="down", city="B", seed=seed)
        assert table.loc[chosen, "sector"] == "down" and table.loc[chosen, "city"] == "B"
    picks = {model.sample_firm(seed=s) for s in range(50)}
    assert len(picks) > 30 and picks <= set(table.index)
    before = model.rng.bit_generator.state
    model.sample_firm(seed=3)
    assert model.rng.bit_generator.state == before
    with pytest.raises(KeyError):
        make_model = ModuModel(make_scenario(cities=[{"name": "A", "firms": 5}, {"name": "B", "firms": 0}]), rng=0)
        make_model.sample_firm(city="B")


def test_sample_firm_is_reproducible_uniform_and_defaults_to_seed_zero():
    """The same seed gives the same firm; the default seed is 0; over 3,000 seeds the picks among the 30 firms
    of (B, down) are uniform (chi-square p > 0.001) and never leave that group."""
    scenario = make_scenario(cities=[{"name": "A", "firms": 40}, {"name": "B", "firms": 60}], sectors={"up": 0.5, "down": 0.5})
    model = ModuModel(scenario, rng=2)
    assert [model.sample_firm(seed=s) for s in range(5)] == [model.sample_firm(seed=s) for s in range(5)]
    assert model.sample_firm() == model.sample_firm(seed=0)
    table = model.firm_table()
    group = set(table.loc[(table.city == "B") & (table.sector == "down"), "id"])
    assert len(group) == 30
    picks = [model.sample_firm(sector="down", city="B", seed=s) for s in range(3000)]
    assert set(picks) == group
    counts = np.array([picks.count(i) for i in sorted(group)])
    assert stats.chisquare(counts).pvalue > 1e-3


def test_keyword_overrides_change_what_the_model_does_and_leave_the_scenario_alone():
    """``births_per_step=7`` and ``cities.A.firms=12`` given to the model: A starts with 12 firms and each step
    brings exactly 7 entrants; the scenario object keeps its own values."""
    scenario = make_scenario(cities=[{"name": "A", "firms": 10}, {"name": "B", "firms": 10}], steps=2)
    model = ModuModel(scenario, rng=0, births_per_step=7, **{"cities.A.firms": 12})
    np.testing.assert_array_equal(model.N.sum(axis=1), [12, 10])
    model.run()
    assert [int(r.births.sum()) for r in model.history.steps[1:]] == [7, 7] and model.N.sum() == 36
    assert scenario.parameters.births_per_step is None and scenario.cities[0].firms == 10


def test_model_errors_say_what_is_wrong_in_plain_words():
    """Each message is exactly the sentence written for the user, nothing added around it; a missing firm id is named."""
    counts = ModuModel(make_scenario(cities=[{"name": "A", "firms": 5}, {"name": "B", "firms": 5}], engine="counts"), rng=0)
    with pytest.raises(RuntimeError, match=r"^the counts engine keeps ordinary firms as counts; use engine: agents to list "
                                           r"firms$"):
        counts.firm_table()
    with pytest.raises(RuntimeError, match=r"^the counts engine keeps no per-firm history; use engine: agents to follow "
                                           r"firms$"):
        counts.follow(0)
    quiet = ModuModel(make_scenario(cities=[{"name": "A", "firms": 5}, {"name": "B", "firms": 0}]), rng=0,
                      record_events=False)
    with pytest.raises(RuntimeError, match=r"^this model was built with record_events=False; rebuild it to follow firms$"):
        quiet.follow(0)
    model = ModuModel(make_scenario(cities=[{"name": "A", "firms": 5}, {"name": "B", "firms": 0}]), rng=0)
    with pytest.raises(KeyError, match=r"^'no firm with id 123456'$"):
        model.follow(123456)
    with pytest.raises(KeyError, match=r"^'no live firm matches'$"):
        model.sample_firm(city="B")
