"""Every engine against an independent model written from docs/ODD.md alone (``tests/reference_odd.py``).

The reference shares no code with ``sim/model/``; it reads the same validated
scenario and makes its own draws, one firm (a ``mesa.Agent``) at a time. Over many
seeds, each engine of conftest's ``ENGINES`` (:class:`~sim.model.ModuModel` with
``agents`` and ``counts``, and the kernel path of the command line) must give the reference's
distributions of final firms per city, births, deaths, moves, and the allocations
the strategies reach, on a small scenario with anchors, three sectors, a pool,
congestion, every strategy and events of every kind (a one-off investment, a new
anchor, budget, allocation and strategy changes, a city closed and reopened).
Comparisons: two-sample KS and Mann–Whitney U (p > 1e-3) and means within 4
standard errors (:func:`conftest.samples_differ`); seeds are fixed, so the test is
deterministic. The default run uses 40 runs per model; the ``slow`` version 300.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ENGINES, NEUTRAL_PARAMETERS, samples_differ, scenario_engine, simulate
from reference_odd import OddModel, largest_remainder

from sim.model import ModuModel
from sim.scenario import validate

SCENARIO = {
    "name": "odd-cross-check",
    "time": {"start": 2016, "end": 2019, "steps_per_year": 4},   # 12 steps, adaptations at steps 5 and 9
    "seed": 1,
    "sectors": {"upstream": 0.2, "midstream": 0.3, "downstream": 0.5},
    "parameters": {
        **NEUTRAL_PARAMETERS,
        "network_effect": 1.1, "network_seed": 1.0, "congestion": 0.5,
        "relocation_rate": 0.05, "moving_cost": 1.0, "anchor_relocation_factor": 0.5,
        "birth_rate": 0.04, "exit_rate": 0.03, "anchor_exit_factor": 0.5, "talent_effect": 0.5,
        "lever_effects": {"compute": {"upstream": 0.4}, "data": {"midstream": 0.3}, "anchor": {"downstream": 0.6}},
        "anchor_weight": 40.0,
        "unit_cost": {"compute": 2.0, "data": 1.0, "anchor": 0.5},
    },
    "cities": [
        {"name": "A", "firms": 220, "attractiveness": 0.0, "talent": 0.2, "capacity": 1200,
         "anchors": [{"name": "a1", "sector": "downstream"}, {"name": "a2", "sector": "upstream"}],
         "policy": {"budget": 20, "allocation": {"compute": 0.5, "data": 0.3, "anchor": 0.2},
                    "strategy": "best_response", "learning_rate": 0.5}},
        {"name": "B", "firms": 180, "attractiveness": 0.2, "sector_mix": {"midstream": 0.5, "downstream": 0.5},
         "policy": {"budget": 15, "allocation": {"compute": 0.1, "data": 0.1, "anchor": 0.8},
                    "strategy": "imitate", "learning_rate": 0.5}},
        {"name": "C", "firms": 120, "attractiveness": 0.3, "anchors": [{"name": "c1", "sector": "upstream"}],
         "policy": {"budget": 10, "allocation": {"compute": 0.6, "data": 0.2, "anchor": 0.2}}},
        {"name": "Rest", "firms": 150, "attractiveness": 0.0, "pool": True, "capacity": 300, "places": 5},
    ],
    "events": [
        {"year": 2016.5, "city": "C", "invest": {"compute": 40}},
        {"year": 2017, "city": "A", "add_anchor": {"name": "a3", "sector": "midstream"}},
        {"year": 2017.25, "city": "C", "open": False},
        {"year": 2017.5, "city": "C", "budget": 30, "allocation": {"compute": 0.2, "data": 0.2, "anchor": 0.6}},
        {"year": 2018, "city": "C", "open": True, "strategy": "best_response"},
    ],
}
CITIES = [c["name"] for c in SCENARIO["cities"]]
FAST_RUNS, SLOW_RUNS = 40, 300


def _summary(firms: np.ndarray, births: np.ndarray, deaths: np.ndarray, moves: np.ndarray,
             allocation: np.ndarray) -> dict[str, float]:
    """Final firms per city, total births, deaths and moves, the strategists' final allocations."""
    out = {f"final[{c}]": float(n) for c, n in zip(CITIES, firms.sum(axis=1), strict=True)}
    out |= {"births": float(births), "deaths": float(deaths), "moves": float(moves)}
    for i, city in ((0, "A"), (1, "B"), (2, "C")):
        out |= {f"allocation[{city},{lever}]": float(a) for lever, a in zip(("K", "D", "A"), allocation[i], strict=True)}
    return out


def reference_summary(seed: int) -> dict[str, float]:
    history = OddModel(validate(SCENARIO), seed).run()
    total = {k: sum(int(h[k].sum()) for h in history[1:]) for k in ("births", "deaths", "moves_in")}
    return _summary(history[-1]["firms"], total["births"], total["deaths"], total["moves_in"], history[-1]["allocation"])


def engine_summary(engine: str, seed: int) -> dict[str, float]:
    history = simulate(validate({**SCENARIO, "engine": scenario_engine(engine)}), engine, seed)
    last = history.steps[-1]
    return _summary(last.firms, history.stack("births")[1:].sum(), history.stack("deaths")[1:].sum(),
                    history.stack("moves_in")[1:].sum(), last.allocation)


def _table(rows: list[dict[str, float]]) -> dict[str, np.ndarray]:
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def _samples(runs: int) -> dict[str, dict[str, np.ndarray]]:
    return {"reference": _table([reference_summary(seed) for seed in range(runs)]),
            **{engine: _table([engine_summary(engine, 50_000 + seed) for seed in range(runs)]) for engine in ENGINES}}


def _disagreements(samples: dict[str, dict[str, np.ndarray]]) -> dict[str, list[str]]:
    ref = samples["reference"]
    return {f"{engine}: {k}": p for engine in ENGINES for k in ref
            if (p := samples_differ(samples[engine][k], ref[k]))}


@pytest.fixture(scope="module")
def fast_samples():
    return _samples(FAST_RUNS)


def test_every_engine_agrees_with_the_odd_reference(fast_samples):
    """ModuModel's two engines and the kernel path of the command line; the reference draws its own random
    numbers (one per firm and decision), so the agreement is in distribution."""
    assert not _disagreements(fast_samples)


def test_the_cross_check_exercises_every_rule(fast_samples):
    ref = fast_samples["reference"]
    assert ref["moves"].mean() > 50 and ref["births"].mean() > 200 and ref["deaths"].mean() > 150
    assert all(ref[f"final[{c}]"].std() > 0 for c in CITIES)
    # the strategies moved the allocations away from where they started, and differently from run to run
    assert abs(ref["allocation[A,K]"].mean() - 0.5) > 0.05 and ref["allocation[B,A]"].mean() < 0.8
    assert ref["allocation[A,K]"].std() > 0 or ref["allocation[B,A]"].std() > 0


@pytest.mark.slow
def test_every_engine_agrees_with_the_odd_reference_over_300_runs():
    assert not _disagreements(_samples(SLOW_RUNS))


@pytest.mark.slow
@pytest.mark.parametrize("wrong", [{"anchor_weight": 0.0}, {"relocation_rate": 0.04}, {"birth_rate": 0.035}])
def test_the_odd_cross_check_detects_a_wrong_parameter(wrong):
    """Power: the reference run with one parameter off is told apart from the engine."""
    scenario = {**SCENARIO, "parameters": {**SCENARIO["parameters"], **wrong}}
    history_runs = [OddModel(validate(scenario), seed).run() for seed in range(SLOW_RUNS)]
    mutant = _table([_summary(h[-1]["firms"], sum(int(x["births"].sum()) for x in h[1:]),
                              sum(int(x["deaths"].sum()) for x in h[1:]), sum(int(x["moves_in"].sum()) for x in h[1:]),
                              h[-1]["allocation"]) for h in history_runs])
    engine = _table([engine_summary("agents", 50_000 + seed) for seed in range(SLOW_RUNS)])
    assert any(samples_differ(engine[k], mutant[k]) for k in engine)


def test_reference_initial_state_follows_the_odd_by_hand():
    """§3.1: anchors first, the rest split by the sector mix with largest remainders; stocks at the steady state
    X* = budget·share/steps_per_year/(δ_X·c_X) with δ_X per step from the annual rate."""
    model = OddModel(validate(SCENARIO), 0)
    first = model.history[0]
    np.testing.assert_array_equal(first["firms"][1], [0, 90, 90])                   # B: its own mix
    np.testing.assert_array_equal(first["firms"][0], [44 + 1, 65, 109 + 1])         # A: 218 by 0.2/0.3/0.5 + anchors
    assert largest_remainder(7, [1, 1, 1]) == [3, 2, 2]
    delta = 1 - (1 - 0.2) ** 0.25
    np.testing.assert_allclose(first["stocks"][0, 0], 20 * 0.5 / 4 / (delta * 2.0))
    engine = ModuModel(validate(SCENARIO), rng=0)
    np.testing.assert_array_equal(engine.history.steps[0].firms, first["firms"])
    np.testing.assert_allclose(engine.history.steps[0].stocks, first["stocks"], rtol=1e-12)
