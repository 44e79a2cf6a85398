"""Planners' answers across the deep uncertainties: planted turnovers found, answers fixed by construction named,
the outside share solved for, scales applied to each variant's own values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from sim.experiments.compare import plan_comparison, run_comparison
from sim.experiments.ensemble import run_draws
from sim.inference.draws import Draws, comparison_draws, factor_draws
from sim.inference.forecasting import forecast
from sim.inference.quantities import ASSUMPTIONS_PATH, OutsideShare, load_assumptions
from sim.model import ModuModel
from sim.policy import (
    compare_robustness,
    equilibrium_robustness,
    optimise,
    optimise_robustness,
    plan_game,
    plan_optimisation,
    solve_game,
)
from sim.scenario import ScenarioError, validate
from sim.scenario.factors import Factor
from sim.scenario.paths import draw_changes

PLANTED = {
    "name": "planted", "time": {"start": 2000, "end": 2004, "steps_per_year": 4}, "seed": 3, "engine": "counts",
    "sectors": {"all": 1.0},
    "parameters": {"network_effect": 0.5, "congestion": 0.0, "relocation_rate": 0.0, "birth_rate": 0.05,
                   "exit_rate": 0.01, "lever_effects": {"compute": {"all": 0.5}, "data": {"all": 0.5}},
                   "depreciation": {"compute": 0.2, "data": 0.2, "anchor": 0.2}},
    "cities": [{"name": "A", "firms": 200,
                "policy": {"budget": 10, "allocation": {"compute": 0.5, "data": 0.5, "anchor": 0.0}}},
               {"name": "B", "firms": 4000, "policy": {"budget": 10, "allocation": {"compute": 1, "data": 0, "anchor": 0}}},
               {"name": "Rest", "firms": 20000, "pool": True}],
}


def _draws(scenario, factors, n, seed, assumptions):
    drawn = factor_draws(factors, n, seed, scenario)
    return Draws(drawn.quantities, drawn.fields, "planted", tuple(assumptions))


def test_a_planted_turnover_of_the_best_mix_is_found_where_it_is():
    """Compute-only against data-only (the constraint): with equal stocks, compute wins exactly where β_K > β_D = 0.5.

    The answer "the best mix" holds in a draw when it is within 5% of that draw's own best; that band moves the
    edge PRIM can see a little below 0.5 (by about 0.03 here), hence the tolerance.
    """
    scenario = validate(PLANTED)
    factor = Factor(target="parameters.lever_effects.compute.all", name="lever_compute", low=0.2, high=1.0)
    noise = Factor(target="parameters.exit_rate", name="exit_rate", low=0.005, high=0.015)   # a distractor
    drawn = _draws(scenario, [factor, noise], 60, 11, ["lever_compute"])
    plan = plan_optimisation(scenario, "A", resolution=1, draws=drawn.fields, draws_source="planted", replications=2,
                             seed=5, constraint="compute >= 1 or data >= 1")
    [answer] = optimise_robustness(optimise(plan, "serial", progress=False), drawn)
    assert answer.answer.startswith("compute 1.00")                        # β_K averages 0.6 > 0.5
    beta = drawn.quantities.lever_compute.to_numpy()
    assert answer.holds[beta > 0.55].all() and not answer.holds[beta < 0.44].any()
    box = answer.discovery.prim.box
    assert box.restricted == ["lever_compute"]                             # not the distractor
    low, high = box.limits["lever_compute"]
    assert abs(high - 0.5) < 0.06 and box.density >= 0.9
    assert "turns over where lever_compute ≤" in answer.sentence() and "an assumption no data pin" in answer.sentence()


def test_too_few_draws_say_so_instead_of_a_region():
    scenario = validate(PLANTED)
    factor = Factor(target="parameters.lever_effects.compute.all", name="lever_compute", low=0.2, high=1.0)
    drawn = _draws(scenario, [factor], 8, 11, ["lever_compute"])
    plan = plan_optimisation(scenario, "A", resolution=1, draws=drawn.fields, draws_source="planted", replications=1,
                             seed=5, constraint="compute >= 1 or data >= 1")
    [answer] = optimise_robustness(optimise(plan, "serial", progress=False), drawn)
    assert answer.discovery is None and 0 < answer.share < 1
    assert "8 draws are too few" in answer.sentence()


def test_the_involution_index_is_one_by_construction_without_an_outside_option_and_a_finding_with_one():
    scenario = validate(PLANTED)
    factor = Factor(target="parameters.exit_rate", name="exit_rate", low=0.005, high=0.015)
    fixed = _draws(scenario, [factor], 2, 1, [])
    game = solve_game(plan_game(scenario, ["A", "B"], resolution=1, draws=fixed.fields, replications=1, seed=2),
                      "serial", progress=False)
    involution = equilibrium_robustness(game, fixed)[-1]
    assert involution.by_construction and "true by construction" in involution.sentence()
    assert float(involution.answer) > 0.9
    outside = OutsideShare(target="parameters.outside_option", name="outside_share", kind="outside_share",
                           low=0.3, high=0.5)
    drawn = _draws(scenario, [factor, outside], 2, 1, ["outside_share"])
    game = solve_game(plan_game(scenario, ["A", "B"], resolution=1, draws=drawn.fields, replications=1, seed=2),
                      "serial", progress=False)
    involution = equilibrium_robustness(game, drawn)[-1]
    assert involution.by_construction is None and float(involution.answer) < 0.9   # policy now adds firms nationally


@pytest.mark.parametrize("share", [0.1, 0.4])
def test_the_outside_share_is_the_share_of_entrants_that_stay_out_at_the_start(share):
    scenario = validate(PLANTED)
    outside = OutsideShare(target="parameters.outside_option", name="outside_share", kind="outside_share",
                           low=0.0, high=0.5)
    data = scenario.resolved()
    outside.apply(data, share)
    with_v0 = validate(data)
    model = ModuModel(with_v0, rng=1, record_events=False)
    stay_out = 1 - model.entry_probabilities().sum(axis=0)
    assert stay_out @ model.compiled.sector_mix == pytest.approx(share, abs=1e-9)
    # national entry at the start is unchanged: b·(1 − share) = the scenario's b
    assert with_v0.parameters.birth_rate * (1 - share) == pytest.approx(scenario.parameters.birth_rate)
    outside.apply(data, 0.0)
    assert data["parameters"]["outside_option"] is None


def test_a_drawn_budget_scale_multiplies_each_variants_own_budgets(tmp_path):
    base = tmp_path / "a.yaml"
    base.write_text(yaml.safe_dump({**PLANTED, "name": "a"}), encoding="utf-8")
    more = tmp_path / "b.yaml"
    more.write_text(yaml.safe_dump({"extends": "a.yaml", "name": "b", "cities": [{"name": "A", "policy": {"budget": 20}}]}),
                    encoding="utf-8")
    arms, variants = plan_comparison([base, more], with_no_policy=True)
    scale = Factor(target="cities.*.policy.budget", name="budget_scale", scale=True, low=0.5, high=2.0)
    drawn = _draws(arms[0].scenario, [scale], 6, 4, ["budget_scale"])
    assert list(drawn.fields.columns) == ["scale:cities.*.policy.budget"]
    comparison = run_comparison(arms, variants, seed=1, executor="serial", progress=False, draws=drawn.fields)
    reps = comparison.tables["replications"]
    spend = reps[reps.city == "A"].pivot(index="replication", columns="scenario", values="spend")
    np.testing.assert_allclose(spend["b"] / spend["a"], 2.0, rtol=1e-9)          # the arms' difference is kept
    factor = drawn.quantities.budget_scale.to_numpy()
    np.testing.assert_allclose(spend["a"] / factor, spend["a"].iloc[0] / factor[0], rtol=1e-9)
    assert (spend["a: no policy"] == 0).all()                                    # no policy stays no policy
    answers = compare_robustness(comparison, drawn)
    national = next(a for a in answers if "all cities" in a.question)
    assert national.by_construction                                               # no outside option drawn
    assert draw_changes({"scale:cities.*.policy.budget": 2.0, "parameters.exit_rate": 0.1}, {"x": 1}) .keys() == \
        {"parameters.exit_rate", "x", "cities.*.policy.budget"}


def test_the_shipped_assumptions_name_their_reasons_and_the_outside_share_comes_last(tmp_path):
    shipped = load_assumptions(ASSUMPTIONS_PATH).assumptions
    assert all(f.why.startswith("assumption:") for f in shipped)
    assert isinstance(shipped[-1], OutsideShare)
    bad = tmp_path / "a.yaml"
    entries = [{"target": "parameters.outside_option", "kind": "outside_share", "low": 0, "high": 0.4},
               {"target": "parameters.anchor_weight", "low": 1, "high": 20}]
    bad.write_text(yaml.safe_dump({"assumptions": entries}), encoding="utf-8")
    with pytest.raises(ScenarioError, match="one outside_share at most, and last"):
        load_assumptions(bad)


def test_compare_draws_without_a_calibration_draw_the_assumptions_alone():
    scenario = validate({**PLANTED, "sectors": {"upstream": 0.2, "midstream": 0.3, "downstream": 0.5}, "parameters": {
        **PLANTED["parameters"], "lever_effects": {"compute": {"upstream": 0.4}}}})
    assert comparison_draws(4, 1, scenario, None) is None
    with pytest.raises(ScenarioError, match="assumptions"):           # the shipped file names sectors it lacks
        comparison_draws(4, 1, validate(PLANTED), ASSUMPTIONS_PATH)
    drawn = comparison_draws(4, 1, scenario, ASSUMPTIONS_PATH)
    assert list(drawn.quantities.columns) == [f.label for f in load_assumptions(ASSUMPTIONS_PATH).assumptions]
    assert isinstance(drawn.fields, pd.DataFrame) and len(drawn.fields) == 4


def test_forecasts_are_flagged_by_what_drives_their_interval():
    """A drawn budget scale drives A's count (assumption-driven); a drawn exit rate the data leave at its prior
    drives the pool's (prior-driven); the flags follow the quantities' kinds."""
    scenario = validate(PLANTED)
    budget = Factor(target="cities.*.policy.budget", name="budget_scale", scale=True, low=0.1, high=10.0,
                    kind="loguniform")
    exits = Factor(target="parameters.exit_rate", name="exit_rate", low=0.002, high=0.05)
    drawn = _draws(scenario, [budget, exits], 30, 2, ["budget_scale"])
    firms = run_draws(scenario, [draw_changes(r) for r in drawn.fields.to_dict("records")], 1, 9, "serial",
                      progress=False)
    made = forecast(scenario, drawn, firms)
    made.verdicts = {"exit_rate": "not constrained"}
    flags = made.to_df().set_index("city")
    assert flags.loc["A", "assumption_driven"] and "budget_scale" in flags.loc["A", "driven_by"]
    assert flags.loc["Rest", "prior_driven"]                            # fewer exits, more firms in the pool
    assert (flags.prior_driven == flags.driven_by.str.contains("exit_rate")).all()
    made.verdicts = {"exit_rate": "constrained"}
    assert not made.to_df().prior_driven.any()
    bands = made.bands()
    assert (bands.lo <= bands["median"]).all() and (bands["median"] <= bands.hi).all() and (bands.lo >= 0).all()
    assert sorted(bands.year.unique()) == list(range(2000, 2005))
