"""Tests of best-response dynamics and equilibria on grids (sim/analysis/games.py), against hand-solved games."""

from __future__ import annotations

import numpy as np
import pytest

from sim.analysis.games import (
    CachedPayoffs,
    best_response,
    brute_force_equilibria,
    cooperative_optimum,
    is_equilibrium,
    iterated_best_response,
    price_of_anarchy,
)

# Cournot duopoly: quantities 0..10, inverse demand p = 12 - q1 - q2, no cost.
# Profit q_i (12 - q_i - q_j); best response (12 - q_j) / 2, with two integer maximisers when
# q_j is odd. By hand the pure equilibria on the integer grid are (4, 4), (3, 5) and (5, 3):
# 4 is the unique best reply to 4, and {4, 5} are the best replies to 3, {3, 4} to 5.
QUANTITIES = list(range(11))


def cournot(profile):
    q1, q2 = QUANTITIES[profile[0]], QUANTITIES[profile[1]]
    price = max(12 - q1 - q2, 0)
    return np.array([q1 * price, q2 * price], dtype=float)


# Prisoner's dilemma: 0 = cooperate, 1 = defect; T=5 > R=3 > P=1 > S=0.
PD = {(0, 0): (3, 3), (0, 1): (0, 5), (1, 0): (5, 0), (1, 1): (1, 1)}


def prisoners_dilemma(profile):
    return np.array(PD[tuple(profile)], dtype=float)


def matching_pennies(profile):
    """Player 0 wins 1 if the coins match, player 1 if they differ."""
    same = profile[0] == profile[1]
    return np.array([1.0, -1.0]) if same else np.array([-1.0, 1.0])


def public_goods(profile, contributions=(0.0, 0.25, 0.5, 0.75, 1.0), r=1.6):
    """Three players keep 1 - c_i and share r * sum(c) equally: contributing nothing is dominant (r < 3)."""
    c = np.array([contributions[i] for i in profile])
    return 1 - c + r * c.sum() / len(c)


def test_cournot_equilibria_by_hand_and_by_brute_force():
    assert brute_force_equilibria(cournot, [QUANTITIES, QUANTITIES]) == [(3, 5), (4, 4), (5, 3)]


@pytest.mark.parametrize("start", [(0, 0), (10, 10), (0, 10), (7, 1)])
@pytest.mark.parametrize("tie_break", ["stay", "lowest"])
def test_cournot_best_response_reaches_an_equilibrium(start, tie_break):
    """From any start, best-response dynamics stop at one of the brute-force equilibria."""
    result = iterated_best_response(cournot, [QUANTITIES, QUANTITIES], start=start, tie_break=tie_break)
    assert result.status == "equilibrium" and result.converged
    assert result.profile in {(3, 5), (4, 4), (5, 3)}
    assert is_equilibrium(cournot, [QUANTITIES, QUANTITIES], result.profile)
    assert result.path[0] == start and result.path[-1] == result.profile
    assert np.array_equal(result.payoffs, cournot(result.profile))


def test_cournot_path_from_zero_by_hand():
    """From (0, 0): player 0 replies 6 to 0; player 1 replies 3 to 6; then 4 or 5 to 3 ... to (4, 4)."""
    result = iterated_best_response(cournot, [QUANTITIES, QUANTITIES], start=(0, 0), tie_break="lowest")
    # round 1: (6, 0) -> (6, 3); round 2: q1 in {4, 5} -> lowest 4: (4, 3), q2 = 4: (4, 4); round 3: no change
    assert result.path == [(0, 0), (6, 0), (6, 3), (4, 3), (4, 4)]
    assert result.rounds == 3


def test_prisoners_dilemma():
    """Defect/defect is the unique equilibrium, cooperate/cooperate the optimum; price of anarchy 6/2 = 3."""
    grids = [["cooperate", "defect"]] * 2
    assert brute_force_equilibria(prisoners_dilemma, grids) == [(1, 1)]
    result = iterated_best_response(prisoners_dilemma, grids, start=(0, 0))
    assert result.status == "equilibrium" and result.profile == (1, 1)
    assert result.path == [(0, 0), (1, 0), (1, 1)]
    assert result.to_df(grids).iloc[-1][["player_0", "player_1"]].tolist() == ["defect", "defect"]

    def welfare(profile):
        return prisoners_dilemma(profile).sum()

    optimum, best = cooperative_optimum(welfare, grids)
    assert optimum == (0, 0) and best == 6
    assert price_of_anarchy(welfare((1, 1)), best) == 3


def test_public_goods_game_on_a_grid():
    """Three players, five contribution levels: nobody contributes in equilibrium; all contributing is optimal."""
    grids = [5, 5, 5]
    assert brute_force_equilibria(public_goods, grids) == [(0, 0, 0)]
    result = iterated_best_response(public_goods, grids, start=(4, 2, 3))
    assert result.profile == (0, 0, 0) and result.status == "equilibrium"
    optimum, best = cooperative_optimum(lambda p: public_goods(p).sum(), grids)
    assert optimum == (4, 4, 4) and best == pytest.approx(4.8)
    assert price_of_anarchy(public_goods((0, 0, 0)).sum(), best) == pytest.approx(1.6)


def test_matching_pennies_has_no_pure_equilibrium_and_cycles():
    """No pure equilibrium; the dynamics go round all four profiles, reported as a cycle."""
    assert brute_force_equilibria(matching_pennies, [2, 2]) == []
    result = iterated_best_response(matching_pennies, [2, 2], start=(0, 0))
    assert result.status == "cycle" and not result.converged
    # (0,0): player 1 switches -> (0,1); player 0 matches -> (1,1); player 1 -> (1,0); player 0 -> (0,0); ...
    assert result.cycle == [(0, 1), (1, 1), (1, 0), (0, 0), (0, 1)]
    assert set(result.cycle) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert result.evaluations == 4
    assert result.to_df().in_cycle.all()


def test_payoffs_are_evaluated_once_per_profile():
    """The cache means each profile costs one call, also when shared across functions."""
    calls = []

    def counting(profile):
        calls.append(profile)
        return cournot(profile)

    cached = CachedPayoffs(counting, 2)
    result = iterated_best_response(cached, [11, 11], start=(0, 0))
    assert len(calls) == len(set(calls)) == result.evaluations == cached.evaluations
    brute_force_equilibria(cached, [11, 11])
    assert len(calls) == len(set(calls)) == 121


def test_max_rounds_and_validation():
    result = iterated_best_response(matching_pennies, [2, 2], start=(0, 0), max_rounds=1)
    assert result.status == "max_rounds" and result.rounds == 1
    with pytest.raises(ValueError, match="not a profile"):
        iterated_best_response(cournot, [11, 11], start=(0, 11))
    with pytest.raises(ValueError, match="returned 1 values for 2 players"):
        iterated_best_response(lambda p: [1.0], [2, 2])
    with pytest.raises(ValueError, match="unknown tie_break"):
        best_response(cournot, [11, 11], (0, 0), 0, tie_break="random")


def test_best_response_ties():
    """Against q2 = 3 both 4 and 5 earn 20: 'lowest' picks 4, 'stay' keeps 5."""
    assert best_response(cournot, [11, 11], (5, 3), 0, tie_break="lowest") == 4
    assert best_response(cournot, [11, 11], (5, 3), 0, tie_break="stay") == 5
    assert best_response(cournot, [11, 11], (9, 3), 0, tie_break="stay") == 4


def test_price_of_anarchy_rules():
    assert price_of_anarchy([4.0, 2.0], 6.0) == 3.0  # the worst equilibrium counts
    assert price_of_anarchy(6.0, 6.0) == 1.0
    with pytest.raises(ValueError, match="positive welfare"):
        price_of_anarchy(0.0, 6.0)
    with pytest.raises(ValueError, match="exceeds the stated best"):
        price_of_anarchy(7.0, 6.0)
