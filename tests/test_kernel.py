"""The compiled kernel (sim/model/kernel/) is the model of docs/ODD.md.

- draw for draw, it equals its own code run uncompiled (NUMBA_DISABLE_JIT=1, numpy's Generator);
- draw for draw, ``ModuModel(engine="counts")`` stepped in Python is the kernel's run with the same seed;
- its choice probabilities and best-response gains equal the formulas of the independent ODD reference;
- in distribution, it equals the ``agents`` engine of ``ModuModel``;
- its deterministic records (stocks, spending, allocation, budget) equal the agents engine's exactly;
- the growth identity holds exactly in every run; runs depend only on their seed.
"""

import inspect
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from reference_odd import OddModel
from scipy import stats

from sim.model import ModuModel
from sim.model.kernel import compile_scenario, run_records, simulate_batch, simulate_counts
from sim.model.kernel.compile import CountsModel
from sim.model.utility import mover_probabilities
from sim.scenario import validate

ROOT = Path(__file__).resolve().parent.parent

BASE = {
    "name": "kernel",
    "time": {"start": 2016, "end": 2019, "steps_per_year": 4},
    "sectors": {"up": 0.3, "down": 0.7},
    "parameters": {"exit_rate": 0.04, "exit_size_elasticity": 0.7, "relocation_rate": 0.05, "moving_cost": 0.5,
                   "birth_rate": 0.05, "network_effect": 0.8, "congestion": 1.0,
                   "lever_effects": {"compute": {"up": 0.5}, "data": {"down": 0.2}, "anchor": {"down": 0.4}}},
    "cities": [
        {"name": "A", "firms": 900, "capacity": 3000, "anchors": [{"name": "Big", "sector": "down"}],
         "policy": {"budget": 4, "allocation": {"compute": 0.5, "data": 0.0, "anchor": 0.5}}},
        {"name": "B", "firms": 600, "capacity": 2000, "talent": 0.5,
         "policy": {"budget": 2, "allocation": {"compute": 0.2, "data": 0.3, "anchor": 0.5}}},
        {"name": "C", "firms": 300, "pool": True},
    ],
}


def variant(**changes):
    spec = json.loads(json.dumps(BASE))
    for key, value in changes.items():
        if key == "parameters":
            spec["parameters"].update(value)
        else:
            spec[key] = value
    return spec


EVENTS = [
    {"year": 2016.5, "city": "B", "invest": {"compute": 5.0}, "budget": 3.0,
     "allocation": {"compute": 0.6, "data": 0.2, "anchor": 0.2}},
    {"year": 2016.9, "city": "A", "add_anchor": {"name": "New", "sector": "up"}, "learning_rate": 0.5},
    {"year": 2017.25, "city": "B", "open": False},
    {"year": 2017.25, "city": "B", "invest": {"data": 2.0}},
    {"year": 2018.0, "city": "B", "open": True},
    {"year": 2018.6, "city": "A", "invest": {"anchor": 3.0}},
]

POINTS = {
    # the engines' common test point: congestion, an anchor, a pool, fixed policies
    "default": variant(),
    # α > 1 with high relocation and a cheap move: tipping
    "tipping": variant(parameters={"network_effect": 1.6, "relocation_rate": 0.2, "moving_cost": 0.2,
                                   "congestion": 0.0, "anchor_relocation_factor": 1.0}),
    # anchors that exit and move, every event action, a city closed for a while
    "events": variant(parameters={"anchor_exit_factor": 1.0, "anchor_relocation_factor": 1.0}, events=EVENTS),
    # yearly strategies over four years
    "strategies": variant(time={"start": 2016, "end": 2020, "steps_per_year": 4}, cities=[
        {**BASE["cities"][0], "policy": {"budget": 4, "allocation": {"compute": 0.2, "data": 0.6, "anchor": 0.2},
                                         "strategy": "best_response", "learning_rate": 0.5}},
        {**BASE["cities"][1], "policy": {"budget": 2, "allocation": {"compute": 0.1, "data": 0.1, "anchor": 0.8},
                                         "strategy": "imitate", "learning_rate": 0.6}},
        {"name": "D", "firms": 500, "capacity": 2000,
         "policy": {"budget": 3, "allocation": {"compute": 0.8, "data": 0.1, "anchor": 0.1}}},
        BASE["cities"][2]],
        # events set a strategy and a learning rate: D imitates from 2018 on (adaptations at 2018, 2019)
        events=[{"year": 2017.5, "city": "D", "strategy": "imitate", "learning_rate": 0.3}]),
    # an outside option: potential entrants may stay out; fixed entrants per step elsewhere
    "outside": variant(parameters={"outside_option": 6.0, "birth_rate": 0.08}),
    "fixed_births": variant(parameters={"births_per_step": 40, "network_seed": 0.0}),
    # the pool stands for 40 places of rank-size shares, each paying congestion (ODD §3.3)
    "places": variant(cities=[*BASE["cities"][:2], {"name": "C", "firms": 1500, "pool": True, "places": 40,
                                                    "places_exponent": 0.8, "places_from": 3, "capacity": 400}]),
}


def scenario(point: str, engine: str = "counts"):
    return validate({**POINTS[point], "engine": engine})


def outcomes_of(history, pool: np.ndarray) -> list[float]:
    final = history.steps[-1].firms.sum(axis=1).astype(float)
    shares = final[~pool] / final[~pool].sum()
    allocation = history.steps[-1].allocation
    return [*final, *(history.stack(k).sum() for k in ("births", "deaths", "moves_in")), float((shares ** 2).sum()),
            *allocation[:, 0]]


def names(point: str) -> list[str]:
    cities = [c["name"] for c in POINTS[point]["cities"]]
    return [f"final_{c}" for c in cities] + ["births", "deaths", "moves", "hhi"] + [f"compute_share_{c}" for c in cities]


def growth_identity_holds(history) -> None:
    firms = history.stack("firms")
    change = history.stack("births") - history.stack("deaths") + history.stack("moves_in") - history.stack("moves_out")
    np.testing.assert_array_equal(firms[1:], firms[:-1] + change[1:])
    np.testing.assert_array_equal(history.stack("moves_in").sum(axis=(1, 2)), history.stack("moves_out").sum(axis=(1, 2)))
    assert history.flows.sum() == history.stack("moves_in").sum() and np.trace(history.flows) == 0
    assert (firms >= 0).all()


# ---------------------------------------------------------------------------- the compiled coefficients
COEFFICIENTS = variant(
    time={"start": 2016, "end": 2018, "steps_per_year": 4},
    parameters={"network_seed": 0.7, "moving_cost": 1.3, "outside_option": -2.5, "exit_rate": 0.03,
                "exit_size_elasticity": 0.6, "anchor_exit_factor": 0.4, "relocation_rate": 0.06,
                "anchor_relocation_factor": 0.3, "birth_rate": 0.07, "anchor_weight": 25.0, "congestion": 0.9,
                "talent_effect": 0.8, "capital_effect": 0.45, "cost_effect": 0.35,
                "depreciation": {"compute": 0.25, "data": 0.1, "anchor": 0.4},
                "unit_cost": {"compute": 2.0, "data": 0.5, "anchor": 1.5}},
    cities=[{**BASE["cities"][0], "attractiveness": 0.3, "talent": 0.9, "capital": 0.2, "cost": 0.6,
             "capacity": 2500},
            {**BASE["cities"][1], "attractiveness": -0.4, "talent": 0.1, "capital": 1.1, "cost": 0.05,
             "capacity": 800},
            {**BASE["cities"][2], "attractiveness": 0.1, "talent": 0.4, "capital": 0.7, "cost": 1.2}])


def test_the_compiled_coefficients_are_the_odd_references_on_a_scenario_where_each_term_counts():
    """compile_scenario's constants, capacities, depreciation, stocks and scalars equal the ODD reference's own
    derivation from the scenario (§3.1, §3.3–3.6), every term non-zero and different from the others."""
    sc = validate(COEFFICIENTS)
    md, ref, p = compile_scenario(sc), OddModel(sc, 0), sc.parameters
    np.testing.assert_allclose(md.constant, [c.constant for c in ref.cities], rtol=1e-12)
    np.testing.assert_allclose(md.inv_capacity, [0.0 if c.capacity is None else 1 / c.capacity for c in ref.cities],
                               rtol=1e-12)
    np.testing.assert_allclose(md.delta, ref.delta, rtol=1e-12)
    assert np.allclose((1 - md.delta) ** sc.time.steps_per_year, 1 - np.array(p.depreciation.as_tuple()))
    np.testing.assert_allclose(md.unit_cost, ref.unit_cost)
    np.testing.assert_allclose(md.stocks0, [c.stocks for c in ref.cities], rtol=1e-12)
    np.testing.assert_allclose(md.budget0, [c.budget for c in ref.cities])
    np.testing.assert_allclose(md.allocation0, [c.allocation for c in ref.cities])
    assert md.has_outside_option and md.V0 == p.outside_option
    scalars = {"alpha": "network_effect", "kappa": "network_seed", "gamma": "congestion", "m": "moving_cost",
               "mu": "exit_rate", "eta": "exit_size_elasticity", "phi_exit": "anchor_exit_factor",
               "rho": "relocation_rate", "phi_move": "anchor_relocation_factor", "b": "birth_rate",
               "omega": "anchor_weight"}
    assert {symbol: getattr(md, symbol) for symbol in scalars} == {s: getattr(p, f) for s, f in scalars.items()}
    assert len(set(scalars.values())) == len({getattr(p, f) for f in scalars.values()})  # all different
    without = compile_scenario(validate(variant()))
    assert not without.has_outside_option and without.V0 == 0.0


@pytest.mark.parametrize("point", ["events", "no events or anchors"])
def test_the_compiled_models_integer_and_boolean_arrays_have_their_documented_types(point):
    """Every array ``CountsModel`` documents as ``int`` or ``bool`` is one, with events and anchors and with
    none (empty arrays): a float array in their place would make numba compile every kernel function again."""
    documented = dict(re.findall(r"^\s+(\w+): np\.ndarray\s+# (?:.*, )?(int|bool) \[", inspect.getsource(CountsModel), re.M))
    assert {"strategy0", "N0", "anchor_city0", "ev_city", "pool"} <= documented.keys()
    spec = POINTS["events"] if point == "events" else variant(cities=[{**c, "anchors": []} for c in BASE["cities"]])
    md = compile_scenario(validate(spec))
    sizes = (len(md.ev_city), len(md.anchor_city0))
    assert min(sizes) > 0 if point == "events" else sizes == (0, 0)
    assert {name: getattr(md, name).dtype.kind for name in documented} == {
        name: "i" if kind == "int" else "b" for name, kind in documented.items()}


def test_a_runs_records_have_the_documented_shapes_and_types():
    """Each record of a run holds steps 0..T (T + 1 rows) of every city: counts per sector as integers, stocks,
    spending and allocations per lever, A_eff and budget per city; the flows are origin × destination."""
    sc = scenario("events")
    T, C, S = sc.time.steps, len(sc.cities), len(sc.sectors)
    records = run_records(sc, np.random.SeedSequence(1))
    shapes = {name: (T + 1, C, S) for name in ("firms", "births", "deaths", "moves_in", "moves_out")}
    shapes |= {"stocks": (T + 1, C, 3), "spend": (T + 1, C, 3), "allocation": (T + 1, C, 3), "A_eff": (T + 1, C),
               "budget": (T + 1, C), "flows": (C, C)}
    assert {name: a.shape for name, a in records._asdict().items()} == shapes
    assert all(np.issubdtype(getattr(records, name).dtype, np.integer)
               for name in ("firms", "births", "deaths", "moves_in", "moves_out", "flows"))


# ---------------------------------------------------------------------------- draw for draw
REFERENCE = """
import json, sys
import numpy as np
from sim.model.kernel import run_kernel, run_records
from sim.scenario import validate
assert type(run_kernel).__name__ == "function", "NUMBA_DISABLE_JIT did not take effect"
points, seeds = json.loads(sys.argv[1]), json.loads(sys.argv[2])
arrays = {}
for name, spec in points.items():
    for seed in seeds:
        for field, a in run_records(validate(spec), np.random.SeedSequence(seed))._asdict().items():
            arrays[f"{name}/{seed}/{field}"] = a
np.savez(sys.argv[3], **arrays)
"""


def test_compiled_kernel_reproduces_its_uncompiled_reference_draw_for_draw(tmp_path):
    """The same functions run as plain Python with numpy's own Generator give identical records."""
    seeds = [0, 1, 2]
    out = tmp_path / "reference.npz"
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", REFERENCE, json.dumps(POINTS), json.dumps(seeds), str(out)],
                   check=True, env=env, cwd=ROOT, timeout=300)
    reference = np.load(out)
    for name in POINTS:
        for seed in seeds:
            compiled = run_records(scenario(name), np.random.SeedSequence(seed))
            for field, a in compiled._asdict().items():
                np.testing.assert_array_equal(a, reference[f"{name}/{seed}/{field}"], err_msg=f"{name}/{seed}/{field}")


# ---------------------------------------------------------------------------- the Mesa model runs the kernel
HISTORY_FIELDS = ("firms", "births", "deaths", "moves_in", "moves_out", "stocks", "A_eff", "spend", "allocation",
                  "budget")


@pytest.mark.parametrize("point", list(POINTS))
def test_the_mesa_counts_model_is_the_kernel_draw_for_draw(point):
    """``ModuModel(engine="counts")`` stepped from Python, asked for its probabilities and gains between steps,
    records exactly what the kernel records for the same seed (a SeedSequence with a spawn key, as the
    ensembles give, or an integer): events, strategies, a closed city, an outside option, fixed births."""
    sc = scenario(point)
    for seed in (np.random.SeedSequence(11, spawn_key=(3,)), 5):
        model = ModuModel(sc, rng=seed, record_events=False)
        while model.steps < model.n_steps:
            model.entry_probabilities(), model.marginal_firm_gain(), model.lever_stocks()  # draw nothing
            model.step()
        kernel = simulate_counts(sc, seed)
        for field in HISTORY_FIELDS:
            np.testing.assert_array_equal(model.history.stack(field), kernel.stack(field), err_msg=f"{point} {field}")
        np.testing.assert_array_equal(model.history.flows, kernel.flows)
        assert [r.year for r in model.history.steps] == [r.year for r in kernel.steps]
    assert not np.array_equal(model.history.stack("firms"),
                              simulate_counts(sc, 6).stack("firms"))  # the seed matters


# ---------------------------------------------------------------------------- the same formulas
POINTS_EMPTY_URN = variant(
    parameters={"network_seed": 0.0, "outside_option": 4.0},
    complementarity={"up": {"up": 1.0, "down": 0.0}, "down": {"up": 0.0, "down": 1.0}},
    cities=[BASE["cities"][0], {**BASE["cities"][1], "sector_mix": {"up": 0.0, "down": 1.0}}, BASE["cities"][2]])


def softmax(values: list[float]) -> list[float]:
    """Plain-Python logit probabilities (−∞ gets 0)."""
    top = max(values)
    weights = [math.exp(v - top) if v > -math.inf else 0.0 for v in values]
    return [w / sum(weights) for w in weights]


@pytest.mark.parametrize("point", [*POINTS, "empty_urn"])
def test_probabilities_and_marginal_gains_equal_the_odd_references_formulas(point):
    """Entry and mover probabilities and best-response gains of the kernel equal the plain-Python formulas of the
    independent ODD reference (tests/reference_odd.py), evaluated at the kernel's state, at every step of a run
    (closed cities, κ = 0, an outside option, anchors moving A_eff)."""
    spec = POINTS_EMPTY_URN if point == "empty_urn" else POINTS[point]
    sc = validate({**spec, "engine": "counts"})
    model = ModuModel(sc, rng=3, record_events=False)
    odd = OddModel(sc, 0)
    V0 = sc.parameters.outside_option
    C, S = model.N.shape
    P0 = model.entry_probabilities()

    def by_city(p: list[float]) -> list[float]:
        """The reference's probabilities per alternative (a pool's places apart) summed per city."""
        return [sum(q for q, (c, _) in zip(p, odd.alternatives(), strict=False) if c == city) for city in range(C)]
    closed = False
    for _ in range(model.n_steps):
        closed |= not model.open.all()
        N, X = model.N.tolist(), model.lever_stocks()
        a_eff = X[:, 2].tolist()
        for c, city in enumerate(odd.cities):  # the reference's cities at the kernel's state
            city.stocks, city.open = model.state.stocks[c].tolist(), bool(model.open[c])
        odd.counts, odd.a_eff = (lambda N=N: N), (lambda c, a=a_eff: a[c])
        V = odd.entry_values(N, a_eff)
        expected = np.array([by_city(softmax(V[s] + ([] if V0 is None else [V0]))) for s in range(S)]).T
        np.testing.assert_allclose(model.entry_probabilities(), expected, rtol=1e-12, atol=1e-300)
        movers = np.array([[by_city(softmax(odd.mover_values(N, a_eff, s, h))) for h in range(C)] for s in range(S)])
        np.testing.assert_allclose(mover_probabilities(model.compiled, model.N, X, model.state.constant), movers,
                                   rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(model.marginal_firm_gain(), odd.marginal_gains(), rtol=1e-10, atol=1e-300)
        model.step()
    assert closed == (point == "events")  # B was closed from 2017.25 to 2018 and checked meanwhile
    if point == "empty_urn":  # at the start no up-sector firm is in B: its network term is −∞
        assert (P0[1, 0] == 0) and P0.sum(axis=0).max() < 1


# ---------------------------------------------------------------------------- deterministic records
@pytest.mark.parametrize("point", ["default", "events", "outside"])
def test_policy_records_equal_the_engines_exactly(point):
    """With fixed strategies spending, stocks, allocation and budget involve no randomness: identical to ModuModel's."""
    history = simulate_counts(scenario(point), np.random.SeedSequence(7))
    model = ModuModel(scenario(point, "agents"), rng=8, record_events=False).run()
    for name in ("stocks", "spend", "allocation", "budget"):
        np.testing.assert_array_equal(history.stack(name), model.stack(name), err_msg=name)
    assert [r.step for r in history.steps] == [r.step for r in model.steps]
    assert [r.year for r in history.steps] == [r.year for r in model.steps]
    for table in ("firms", "cities", "metrics", "flows"):
        assert list(getattr(history, f"{table}_frame")().columns) == list(getattr(model, f"{table}_frame")().columns)
    assert len(history.firms_frame()) == len(model.firms_frame())


# ---------------------------------------------------------------------------- in distribution
RUNS = {"agents": 80}  # ModuModel's counts engine is the kernel itself (tested draw for draw above)
KERNEL_RUNS = 400


@pytest.mark.parametrize("point", list(POINTS))
def test_kernel_equals_the_engines_in_distribution(point):
    """Two-sample KS and t tests on final firms per city, births, deaths, moves, HHI and adapted allocations.

    The agents engine draws from other streams (one per firm decision), so the two agree in distribution only."""
    pool = np.array([c.get("pool", False) for c in POINTS[point]["cities"]])
    kernel_rows = []
    for seed in range(KERNEL_RUNS):
        history = simulate_counts(scenario(point), np.random.SeedSequence(seed))
        growth_identity_holds(history)
        kernel_rows.append(outcomes_of(history, pool))
    kernel = np.array(kernel_rows, dtype=float)
    C = len(pool)
    assert kernel[:, C + 2].mean() > 50 or point == "fixed_births"  # moves: the relocation check has power
    if point == "strategies":  # the strategies move the allocations (the check has power there too)
        assert all(kernel[:, C + 4 + c].std() > 0 for c in range(3))
    for engine, runs in RUNS.items():
        sc = scenario(point, engine)
        rows = [outcomes_of(ModuModel(sc, rng=10_000 + seed, record_events=False).run(), pool) for seed in range(runs)]
        model = np.array(rows, dtype=float)
        for j, name in enumerate(names(point)):
            a, k = model[:, j], kernel[:, j]
            if np.ptp(a) == 0 and np.ptp(k) == 0:  # deterministic (fixed strategies): exactly equal
                assert a[0] == k[0], (engine, name)
                continue
            assert stats.ks_2samp(a, k).pvalue > 1e-3, (engine, point, name)
            se = np.sqrt(a.var(ddof=1) / len(a) + k.var(ddof=1) / len(k))
            assert abs(a.mean() - k.mean()) < 4 * se, (engine, point, name, a.mean(), k.mean(), se)


# ---------------------------------------------------------------------------- reproducibility
def test_a_run_depends_only_on_its_seed_not_on_batch_or_threads():
    sc = scenario("events")
    seeds = [np.random.SeedSequence(5, spawn_key=(r,)) for r in range(12)]
    one = simulate_batch(sc, seeds)
    two = simulate_batch(compile_scenario(sc), seeds, threads=2)
    part = simulate_batch(sc, seeds[7:9])
    for field in one._fields:
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field))
        np.testing.assert_array_equal(getattr(one, field)[7:9], getattr(part, field))
    for r in (0, 7):
        history = simulate_counts(sc, seeds[r])
        for field in one._fields:  # each total over sectors, per step and city
            np.testing.assert_array_equal(getattr(one, field)[r], history.stack(field).sum(axis=2))
    assert not np.array_equal(one.firms[0], one.firms[1])
    assert one.final.shape == (12, 3) and all(getattr(one, field).dtype == np.int64 for field in one._fields)  # counts
    # an integer seed keys the run as np.random.Philox(seed) does
    np.testing.assert_array_equal(simulate_batch(sc, [3, 7]).firms[1], simulate_counts(sc, 7).stack("firms").sum(axis=2))


def test_without_per_phase_streams_each_run_draws_its_one_stream_from_its_start():
    """``per_phase_streams=False`` (for measuring what the per-phase streams gain): run i draws what a fresh
    ``Generator(Philox(seeds[i]))`` gives, in order, whatever the batch; the phases' rewinds touch nothing."""
    from sim.model.kernel import empty_records, run_kernel, streams

    sc = scenario("events")
    md = compile_scenario(sc)
    seeds = [np.random.SeedSequence(8, spawn_key=(r,)) for r in range(3)]
    batch = simulate_batch(md, seeds, per_phase_streams=False)
    for i, seed in enumerate(seeds):
        rng = streams(seed).rng
        rec = empty_records(md.T, *md.N0.shape)
        run_kernel(rng, np.zeros(4, dtype=np.uint64), np.zeros(8, dtype=np.uint64), md, rec)
        np.testing.assert_array_equal(batch.firms[i], rec.firms.sum(axis=2))
    np.testing.assert_array_equal(simulate_batch(md, seeds[1:], per_phase_streams=False, threads=2).firms, batch.firms[1:])
    assert not np.array_equal(batch.firms, simulate_batch(md, seeds).firms)


def test_growth_identity_holds_at_scale():
    """Baseline-sized counts (hundreds of thousands of firms) keep exact accounting too."""
    from sim.scenario import load_scenario

    sc = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    for r in range(5):
        growth_identity_holds(simulate_counts(sc, np.random.SeedSequence(42, spawn_key=(r,))))


# ---------------------------------------------------------------------------- common random numbers
def test_each_phase_draws_from_its_own_stream():
    """A late event changes nothing before it: every (step, phase) has its own Philox stream."""
    late = variant(events=[{"year": 2018.5, "city": "B", "invest": {"compute": 50.0}}])
    event_step = 11  # the first step starting at or after 2018.5: 2016 + 10/4
    for seed in range(5):
        base = run_records(scenario("default"), np.random.SeedSequence(seed))
        changed = run_records(validate({**late, "engine": "counts"}), np.random.SeedSequence(seed))
        np.testing.assert_array_equal(base.firms[:event_step], changed.firms[:event_step])
        assert base.stocks[event_step, 1, 0] < changed.stocks[event_step, 1, 0]
    # the streams are Philox's public ones: Generator(Philox(key, counter=(0, 0, step, phase)))
    from sim.model.kernel.streams import begin_phase, streams

    rng, counter, state, _ = streams(np.random.SeedSequence(9))
    key = rng.bit_generator.state["state"]["key"].copy()
    rng.random(5)
    begin_phase(counter, state, 3, 4)
    expected = np.random.Generator(np.random.Philox(key=key, counter=[0, 0, 3, 4]))
    np.testing.assert_array_equal(rng.random(7), expected.random(7))
    assert rng.binomial(1000, 0.3) == expected.binomial(1000, 0.3)


def test_paired_scenarios_share_their_draws_phase_by_phase():
    """Baseline vs Shanghai's budget doubled, 60 replications to 2019: with a stream per phase (what every ensemble
    uses) end counts correlate across replications (pairing, as sim.experiments.compare: mean ≈ 0.6 over the
    cities); drawing each run from one stream in order, without the per-phase rewinds, loses most of it (≈ 0.25)."""
    from sim.scenario import load_scenario
    from sim.scenario.paths import derive

    baseline = derive(load_scenario(ROOT / "scenarios" / "baseline.yaml"), {"time.end": 2019})
    changed = derive(baseline, {"cities.Shanghai.policy.budget": lambda budget: 2 * budget})
    seeds = [np.random.SeedSequence(42, spawn_key=(r,)) for r in range(60)]

    def pairing(per_phase: bool) -> float:
        a = simulate_batch(baseline, seeds, per_phase_streams=per_phase).final
        b = simulate_batch(changed, seeds, per_phase_streams=per_phase).final
        assert (b[:, 2] - a[:, 2]).mean() > 0  # the budget helps Shanghai
        return float(np.mean([np.corrcoef(a[:, c], b[:, c])[0, 1] for c in range(a.shape[1])]))

    phase_by_phase, one_stream = pairing(True), pairing(False)
    assert phase_by_phase > 0.5 and one_stream < 0.4 and phase_by_phase - one_stream > 0.2, (phase_by_phase, one_stream)


# ---------------------------------------------------------------------------- the draws, at their edges
class ConstantUniform:
    """A generator stub whose uniforms all equal ``u`` (a uniform lies in [0, 1 − 2**−53])."""

    def __init__(self, u: float):
        self.u = u

    def random(self) -> float:
        return self.u


def test_a_categorical_draw_never_picks_an_alternative_of_probability_zero_and_never_falls_off_the_end():
    """The kernel's draw of one anchor's destination, run as Python with uniforms at the ends of their range:
    at u = 0 a first alternative of probability 0 (a closed city) is passed over; at u = 1 − 2**−53 ten tenths,
    which add up to 1 − 2**−53, still give the last alternative."""
    from sim.model.kernel.streams import categorical

    draw = getattr(categorical, "py_func", categorical)
    assert draw(ConstantUniform(0.0), np.array([0.0, 0.4, 0.6])) == 1
    assert draw(ConstantUniform(0.0), np.array([0.0, 0.0, 1.0])) == 2
    tenths = np.full(10, 0.1)
    assert np.cumsum(tenths)[-1] < 1.0
    assert draw(ConstantUniform(1 - 2.0 ** -53), tenths) == 9


def test_the_largest_uniform_times_any_count_stays_below_the_count():
    """What lets ``take_uniform`` draw a position as int(u·total) unguarded: with u ≤ 1 − 2**−53 the product
    never rounds up to total, for powers of two, their neighbours and random counts up to 2**52."""
    u = 1 - 2.0 ** -53
    rng = np.random.default_rng(0)
    counts = [2 ** k + d for k in range(53) for d in (-1, 0, 1)] + list(rng.integers(1, 2 ** 52, 10_000))
    assert all(int(u * total) == total - 1 for total in counts if total > 0)


def test_a_uniform_subset_by_class_takes_each_class_in_proportion_to_its_firms():
    """``take_uniform`` (who reconsiders, who leaves a closed city): over many draws the firms taken from each
    size class are hypergeometric, mean m·pool[k]/total; the classes are kept and the total falls by m; and a
    position among the firms maps to its class by the cumulative counts in class order (any order would be
    uniform too, but the draws would differ from the ODD's)."""
    from sim.model.kernel.streams import take_uniform

    pool0 = np.array([0, 50, 30, 0, 15, 5] + [0] * 10, dtype=np.int64)
    rng, m, draws = np.random.default_rng(2), 20, 4000
    taken_sum = np.zeros(16)
    for _ in range(draws):
        pool, taken = pool0.copy(), np.zeros(16, dtype=np.int64)
        assert take_uniform(rng, pool, int(pool0.sum()), m, taken) == pool0.sum() - m
        assert taken.sum() == m and np.array_equal(pool + taken, pool0) and (pool >= 0).all()
        taken_sum += taken
    expected = draws * m * pool0 / pool0.sum()
    stocked = pool0 > 0
    assert (taken_sum[~stocked] == 0).all()
    # hypergeometric variance per draw: m·p·(1 − p)·(N − m)/(N − 1); a 5-sd band over the 4,000 draws
    p, N = pool0[stocked] / pool0.sum(), pool0.sum()
    sd = np.sqrt(draws * m * p * (1 - p) * (N - m) / (N - 1))
    assert (np.abs(taken_sum[stocked] - expected[stocked]) < 5 * sd).all(), (taken_sum, expected)
    # the position int(u·total) falls in the classes in their order: positions 0-49 class 1, 50-79 class 2, ...
    take = getattr(take_uniform, "py_func", take_uniform)  # as Python, to take the stub generator
    for position, k in ((0, 1), (49, 1), (50, 2), (79, 2), (80, 4), (95, 5), (99, 5)):
        pool, taken = pool0.copy(), np.zeros(16, dtype=np.int64)
        take(ConstantUniform((position + 0.5) / 100), pool, 100, 1, taken)
        assert taken[k] == 1, (position, k, taken)


@pytest.mark.parametrize(("n", "p"), [
    (1000, [0.7, 0.2, 0.1]),          # the probabilities left after each draw are not exactly the last one
    (37, [0.1] * 10),
    (500, [0.25, 0.0, 0.5, 0.25]),
    (3, [0.001, 0.001, 0.998]),       # nothing left to draw before the end
    (0, [0.5, 0.5]),
])
def test_a_multinomial_draw_is_numpys_draw_for_draw(n, p):
    """The kernel's multinomial (entrants over sectors and cities) draws what numpy's Generator.multinomial draws
    from the same stream, and leaves the stream where numpy leaves it."""
    from sim.model.kernel.streams import multinomial

    draw = getattr(multinomial, "py_func", multinomial)  # as Python, on numpy's Generator
    for key in range(20):
        ours, theirs = np.random.Generator(np.random.Philox(key)), np.random.Generator(np.random.Philox(key))
        out = np.zeros(len(p), dtype=np.int64)
        draw(ours, n, np.array(p), out)
        np.testing.assert_array_equal(out, theirs.multinomial(n, p))
        assert ours.random() == theirs.random()
