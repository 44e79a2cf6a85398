"""Statistical cross-check: the vectorised engines against the per-agent Mesa reference.

``benchmarks/reference.py`` implements the same firm rules the plain way (one
``mesa.Agent`` per firm, scalar draws, Gumbel-max choices). Over many seeds
each engine (``agents``: column-wise firms; ``counts``: exact counts per
class) must give the reference's distributions of final counts per city and
sector, where entrants and movers go, and total moves, births and deaths. The
seeds are fixed, so the test is deterministic; each comparison uses a
two-sample KS test and a Mann–Whitney U test (p > 1e-3) and requires the
means to agree within 4 standard errors.

Power (measured when this test was written, 50 seeds): the comparison fails
when the reference's relocation rate is 10% lower, its moving cost 0.8 instead
of 1.0, its size elasticity of exit 0.4 instead of 0.5, its exit or birth rate
7% lower, or α = 1.0 instead of 1.1.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conftest import samples_differ

from sim.model import ModuModel
from sim.scenario import validate

_spec = importlib.util.spec_from_file_location(
    "modu_reference", Path(__file__).resolve().parents[2] / "benchmarks" / "reference.py")
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)
ReferenceModel = reference.ReferenceModel

SEEDS = range(1000, 1050)
SCENARIO = {
    "name": "cross-check",
    "time": {"start": 2016, "end": 2019, "steps_per_year": 4},   # 12 steps
    "seed": 1,
    "sectors": {"upstream": 0.2, "midstream": 0.3, "downstream": 0.5},
    "parameters": {
        # exits, relocation and entry all active and strong enough to matter in 12 steps
        "network_effect": 1.1, "network_seed": 1.0, "congestion": 0.5,
        "relocation_rate": 0.05, "moving_cost": 1.0, "anchor_relocation_factor": 0.5,
        "birth_rate": 0.03, "births_per_step": None,
        "exit_rate": 0.03, "exit_size_elasticity": 0.5, "size_tail": 1.06, "anchor_exit_factor": 0.5,
        "talent_effect": 0.5, "capital_effect": 0.0, "cost_effect": 0.0, "anchor_weight": 10.0,
        "lever_effects": {"compute": {"upstream": 0.4}, "data": {"midstream": 0.3}, "anchor": {"downstream": 0.3}},
        "depreciation": {"compute": 0.2, "data": 0.1, "anchor": 0.3},
        "unit_cost": {"compute": 1.0, "data": 1.0, "anchor": 1.0},
    },
    "cities": [
        {"name": "A", "firms": 900, "attractiveness": 0.0, "talent": 0.2, "capacity": 3000,
         "anchors": [{"name": "a1", "sector": "downstream"}, {"name": "a2", "sector": "upstream"}],
         "policy": {"budget": 20, "allocation": {"compute": 0.5, "data": 0.3, "anchor": 0.2}}},
        {"name": "B", "firms": 700, "attractiveness": 0.0, "talent": 0.4, "capacity": 2500,
         "sector_mix": {"midstream": 0.5, "downstream": 0.5},
         "policy": {"budget": 10, "strategy": "best_response"}},
        {"name": "C", "firms": 400, "attractiveness": 0.0, "capacity": 2000, "anchors": [{"name": "c1", "sector": "upstream"}]},
    ],
    "events": [{"year": 2017.5, "city": "C", "invest": {"compute": 40}}],
}


def _summary(model) -> dict[str, float]:
    history = model.run()
    final = history.steps[-1].firms
    out = {f"final[{c}]": float(n) for c, n in zip(history.cities, final.sum(axis=1), strict=True)}
    out |= {f"final[{s}]": float(n) for s, n in zip(history.sectors, final.sum(axis=0), strict=True)}
    births, moves_in = history.stack("births").sum(axis=(0, 2)), history.stack("moves_in").sum(axis=(0, 2))
    out |= {f"birth_share[{c}]": n / births.sum() for c, n in zip(history.cities, births, strict=True)}   # where entrants go
    out |= {f"move_share[{c}]": n / moves_in.sum() for c, n in zip(history.cities, moves_in, strict=True)}  # where movers go
    out["moves"] = float(history.stack("moves_in").sum())
    out["births"] = float(history.stack("births").sum())
    out["deaths"] = float(history.stack("deaths").sum())
    return out


def _table(rows: list[dict[str, float]]) -> dict[str, np.ndarray]:
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


@pytest.fixture(scope="module")
def reference_runs():
    scenario = validate(SCENARIO)
    return _table([_summary(ReferenceModel(scenario, rng=seed)) for seed in SEEDS])


@pytest.fixture(scope="module", params=["agents", "counts"])
def runs(request, reference_runs):
    scenario = validate({**SCENARIO, "engine": request.param})
    engine = _table([_summary(ModuModel(scenario, rng=seed + 10_000, record_events=False)) for seed in SEEDS])
    return engine, reference_runs


def test_engine_and_reference_agree_in_distribution(runs):
    engine, ref = runs
    failures = {k: p for k in engine if (p := samples_differ(engine[k], ref[k]))}
    assert not failures, failures


def test_cross_check_is_not_vacuous(runs):
    engine, _ = runs
    assert engine["moves"].mean() > 100       # relocation is active
    assert engine["births"].mean() > 400      # entry is active
    assert engine["deaths"].mean() > 300      # exit is active
    assert all(engine[f"final[{c}]"].std() > 0 for c in "ABC")


@pytest.mark.parametrize("engine_name", ["agents", "counts"])
def test_reference_records_have_the_engine_shape_and_add_up(engine_name):
    scenario = validate({**SCENARIO, "engine": engine_name})
    engine, ref = ModuModel(scenario, rng=7), ReferenceModel(scenario, rng=7)
    engine.run()
    ref.run()
    a, b = engine.history.firms_frame(), ref.history.firms_frame()
    assert list(a.columns) == list(b.columns)
    assert a.shape == b.shape
    assert (a[["step", "year", "city", "sector"]].values == b[["step", "year", "city", "sector"]].values).all()
    for model in (engine, ref):
        h = model.history
        firms = h.stack("firms")
        growth = h.stack("births") - h.stack("deaths") + h.stack("moves_in") - h.stack("moves_out")
        assert (firms[1:] == firms[:-1] + growth[1:]).all()
        assert (h.stack("moves_in").sum(axis=1) == h.stack("moves_out").sum(axis=1)).all()
        assert h.flows.sum() == h.stack("moves_in").sum() and np.trace(h.flows) == 0
    # the engine's book-kept counts equal a recount of its firms (columns, plus the counts engine's counts)
    recount = np.zeros_like(engine.N)
    np.add.at(recount, (engine.firms.city.astype(int), engine.firms.sector.astype(int)), 1)
    if engine.counts is not None:
        recount += engine.counts.n.sum(axis=2)
    assert (recount == engine.N).all()
    # and the reference's census is the same kind of state
    assert ref.N.sum() == len(ref.firm_agents) and ref.anchors_present.sum() == sum(f.anchor for f in ref.firm_agents)


@pytest.mark.slow
@pytest.mark.parametrize("wrong", [{"relocation_rate": 0.045}, {"exit_size_elasticity": 0.4}, {"moving_cost": 0.8}])
def test_cross_check_detects_a_wrong_rule(reference_runs, wrong):
    """The comparison has power: a reference with one rule 10–20% off is told apart from the right one."""
    right = reference_runs
    scenario = validate({**SCENARIO, "parameters": {**SCENARIO["parameters"], **wrong}})
    mutant = _table([_summary(ReferenceModel(scenario, rng=seed)) for seed in SEEDS])
    assert any(samples_differ(right[k], mutant[k]) for k in right)
