"""Designs that change numbers only (sweeps, calibration priors) are patched into one compiled model: the same runs
as deriving each point."""

from pathlib import Path

import numpy as np
import pytest

from sim.experiments.ensemble import replication_seed
from sim.experiments.sweep import PatchedPoint, plan_sweep, run_point
from sim.model.kernel import compile_scenario, simulate_batch
from sim.model.kernel.compile import PATCHABLE, patch_group, recompile
from sim.scenario import ScenarioError, derive, load_scenario
from sim.scenario.paths import DigestTemplate, parse_path, patch

SCENARIO = """\
name: patchy
engine: counts
time: {start: 2016, end: 2019, steps_per_year: 4}
seed: 11
replications: 2
parameters: {network_effect: 1.05, congestion: 0.4, relocation_rate: 0.02, outside_option: -0.5}
cities:
  - {name: A, firms: 700, capacity: 4000, talent: 1.5, anchors: [{name: Big, sector: downstream}],
     policy: {budget: 6, allocation: {compute: 0.5, data: 0.25, anchor: 0.25}, strategy: best_response}}
  - {name: B, firms: 500, capacity: 3000, cost: 0.7, policy: {budget: 3, strategy: imitate}}
  - {name: St. Louis, firms: 300, capital: -0.4}
  - {name: Rest, firms: 400, pool: true, places: 30}
events:
  - {year: 2017.5, city: B, invest: {data: 8}}
"""

RANGES = {  # a valid range for every patchable field
    "network_effect": (0.3, 2.0), "network_seed": (0.0, 5.0), "congestion": (0.0, 2.0), "moving_cost": (0.0, 3.0),
    "outside_option": (-3.0, 1.0), "exit_rate": (0.0, 0.05), "exit_size_elasticity": (0.0, 2.0),
    "anchor_exit_factor": (0.0, 1.0), "relocation_rate": (0.0, 0.1), "anchor_relocation_factor": (0.0, 1.0),
    "birth_rate": (0.0, 0.1), "anchor_weight": (0.0, 50.0), "talent_effect": (-2.0, 2.0), "capital_effect": (-2.0, 2.0),
    "cost_effect": (-2.0, 2.0), "attractiveness": (-2.0, 2.0), "talent": (-3.0, 3.0), "capital": (-3.0, 3.0),
    "cost": (-3.0, 3.0), "capacity": (100.0, 1e5), "budget": (0.0, 40.0), "learning_rate": (0.0, 1.0),
}
CITY_PATHS = {"attractiveness": "*", "talent": "A", "capital": "St. Louis", "cost": "*", "capacity": "B",
              "budget": "A", "learning_rate": "B"}


@pytest.fixture
def base(tmp_path: Path):
    path = tmp_path / "patchy.yaml"
    path.write_text(SCENARIO)
    return load_scenario(path)


def every_path() -> list[str]:
    out = []
    for tokens in PATCHABLE:
        field = tokens[-1]
        if tokens[0] == "parameters":
            out.append(f"parameters.{field}")
        else:
            city = CITY_PATHS[field]
            city = f"[{city}]" if "." in city else f".{city}"
            out.append(f"cities{city}." + ("policy." if len(tokens) == 4 else "") + field)
    return out


def test_every_patchable_field_has_a_test_range():
    assert {tokens[-1] for tokens in PATCHABLE} == set(RANGES)


def test_a_patched_model_equals_the_compiled_derived_scenario_array_for_array(base):
    rng = np.random.default_rng(3)
    paths = every_path()
    compiled = compile_scenario(base)
    for _ in range(25):
        chosen = rng.choice(paths, size=rng.integers(1, 6), replace=False)
        changes = {p: float(rng.uniform(*RANGES[p.rsplit(".", 1)[-1]])) for p in chosen}
        derived = derive(base, changes)
        tokens = {parse_path(p): v for p, v in changes.items()}
        patched = patch(base, tokens)
        assert patched == derived
        assert DigestTemplate(base, list(tokens)).digest(list(tokens.values())) == derived.digest()
        expected = compile_scenario(derived)
        got = recompile(compiled, patched, {patch_group(t) for t in tokens})
        for name in expected._fields:
            a, b = getattr(expected, name), getattr(got, name)
            if isinstance(a, np.ndarray):
                assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), (name, changes)
            else:
                assert type(a) is type(b) and a == b, (name, changes)


def test_a_sampled_sweep_is_patched_and_runs_draw_for_draw_as_its_derived_points(base, tmp_path: Path):
    path = tmp_path / "patchy.yaml"
    plan = plan_sweep(path, sets=["parameters.congestion=0,1"], sample="lhs:6",
                      ranges=["parameters.network_effect=0.5:1.5", "cities.A.policy.budget=0:30",
                              "cities.*.attractiveness=-1:1"], replications=2)
    assert plan.design is not None and plan.design.groups == {"scalars", "policy", "constant"}
    for point in plan.points:
        derived = derive(base, point.values)
        assert point.scenario == derived and point.digest == derived.digest()
        seeds = [replication_seed(plan.seed_of(point), r) for r in range(2)]
        patched_point = PatchedPoint.of(plan.design, point)
        patched = run_point(patched_point, range(2), plan.seed_of(point))
        assert patched == run_point(derived, range(2), plan.seed_of(point))
        np.testing.assert_array_equal(simulate_batch(plan.design.model_at(patched_point.values), seeds).firms,
                                      simulate_batch(compile_scenario(derived), seeds).firms)
    assert len({p.digest for p in plan.points}) == len(plan.points)


def test_a_set_of_one_value_joins_the_base_so_an_agents_scenario_sweeps_patched_on_counts(base, tmp_path: Path):
    path = tmp_path / "agents.yaml"
    path.write_text(SCENARIO.replace("engine: counts", "engine: agents"))
    assert plan_sweep(path, sets=["parameters.congestion=0,1"]).design is None
    plan = plan_sweep(path, sets=["engine=counts", "parameters.congestion=0,1"])
    assert plan.design is not None and plan.design.paths == (("parameters", "congestion"),)
    assert [p.digest for p in plan.points] == [derive(base, {"parameters.congestion": v}).digest() for v in (0, 1)]


@pytest.mark.parametrize(("sets", "ranges"), [
    (["cities.A.firms=100,200"], []),                      # changes the initial state: compiled per point
    (["cities[St. Louis].policy.budget=1,2"], []),         # a city without a policy gets one: derived per point
    (["parameters.outside_option=null,0.5"], []),          # a value that is not a number
    ([], ["parameters.size_tail=1:2"]),                    # size classes are not patched
])
def test_designs_that_need_a_scenario_per_point_derive_each(base, tmp_path: Path, sets, ranges):
    plan = plan_sweep(tmp_path / "patchy.yaml", sets=sets, sample="lhs:3" if ranges else None, ranges=ranges)
    assert plan.design is None
    for point in plan.points:
        assert point.digest == point.scenario.digest() == derive(base, point.values).digest()


@pytest.mark.parametrize(("sets", "ranges", "message"), [
    (["parameters.network_effect=0.5,11"], [], "parameters.network_effect=11"),
    ([], ["parameters.congestion=-1:1"], "parameters.congestion=-1"),
    ([], ["cities.B.capacity=0:10"], "cities.B.capacity=0"),
    ([], ["parameters.exit_rate=0.5:1.5"], "parameters.exit_rate=1.5"),
])
def test_a_design_is_validated_at_its_ends(tmp_path: Path, sets, ranges, message):
    (tmp_path / "patchy.yaml").write_text(SCENARIO)
    with pytest.raises(ScenarioError, match=message.replace(".", r"\.")):
        plan_sweep(tmp_path / "patchy.yaml", sets=sets, sample="lhs:4" if ranges else None, ranges=ranges)


def test_a_calibrations_priors_are_patched_and_simulate_as_their_derived_scenarios():
    from sim.inference.data import TARGETS_PATH
    from sim.inference.problem import BASELINE_PATH, make_problem, simulate_chunk
    from sim.inference.quantities import PRIORS_PATH

    problem = make_problem(BASELINE_PATH, TARGETS_PATH, PRIORS_PATH, "gross")
    assert problem.design is not None and len(problem.design.paths) == len(problem.prior.specs)
    rows = problem.prior.natural(problem.prior.sample(np.random.default_rng(4), 6))
    seeds = [replication_seed(9, r) for r in range(len(rows))]
    patched = problem.simulator()(rows, seeds)
    derived = simulate_chunk(problem.template, problem.prior.specs, rows, seeds)
    np.testing.assert_array_equal(patched, derived)


def test_a_factor_that_scales_or_sets_several_fields_is_derived_per_point(base):
    from sim.experiments.patching import factor_design
    from sim.scenario import Factor

    assert factor_design(base, [Factor(target="parameters.congestion", low=0, high=1)]) is not None
    assert factor_design(base, [Factor(target="cities.*.policy.budget", low=0.5, high=2, scale=True)]) is None
    assert factor_design(base, [Factor(target="cities.A.firms", low=100, high=900)]) is None
