"""Mesa conventions: the model's DataCollector, ``mesa.batch_run`` with keyword overrides, the History's repr,
agent ids and models let go."""

import gc
import weakref

import mesa
import numpy as np
import pandas as pd
import pytest

from sim.model import ModuModel
from sim.scenario import ScenarioError, validate

SCENARIO = {
    "name": "mesa",
    "engine": "counts",
    "time": {"start": 2016, "end": 2018, "steps_per_year": 2},
    "parameters": {"birth_rate": 0.1, "exit_rate": 0.05, "relocation_rate": 0.05, "network_effect": 1.0},
    "cities": [
        {"name": "A", "firms": 500},
        {"name": "B", "firms": 300, "policy": {"budget": 5}},
        {"name": "Pool", "firms": 200, "pool": True},
    ],
}


def test_datacollector_reports_what_the_history_records_each_step():
    model = ModuModel(validate(SCENARIO), rng=3)
    model.run()
    collected = model.datacollector.get_model_vars_dataframe()
    assert len(collected) == len(model.history.steps) == model.n_steps + 1  # the initial state and each step
    firms = model.history.cities_frame().pivot(index="step", columns="city", values="firms")
    for city in ("A", "B", "Pool"):
        assert collected[f"firms_{city}"].tolist() == firms[city].tolist()
    metrics = model.history.metrics_frame()
    np.testing.assert_allclose(collected.hhi, metrics.hhi, rtol=1e-12)
    np.testing.assert_allclose(collected.top1_share, metrics.top1_share, rtol=1e-12)
    assert collected.leader.tolist() == metrics.leader.tolist()
    # shares cover the non-pool cities only, as the concentration metrics do
    assert "share_Pool" not in collected
    np.testing.assert_allclose(collected.share_A + collected.share_B, 1.0)
    np.testing.assert_allclose(collected.share_A ** 2 + collected.share_B ** 2, collected.hhi)


def test_keyword_overrides_are_applied_by_the_scenario_and_validated():
    base = validate(SCENARIO)
    model = ModuModel(base, rng=1, network_effect=1.3, **{"cities.B.policy.budget": 7.5}, engine="agents")
    assert model.params.network_effect == 1.3
    assert model.spec.cities[1].policy.budget == 7.5
    assert [c.spec for c in model.cities] == model.spec.cities  # each city agent's entry, as overridden
    assert model.engine == "agents"
    assert base.parameters.network_effect == 1.0  # the base scenario is untouched
    with pytest.raises(ScenarioError, match="unknown key 'netwrok_effect' \\(did you mean 'network_effect'\\?\\)"):
        ModuModel(base, netwrok_effect=1.2)
    with pytest.raises(ScenarioError, match="parameters.congestion"):
        ModuModel(base, congestion=-1)


def test_batch_run_sweeps_keyword_parameters_and_reproduces_single_runs():
    scenario = validate(SCENARIO)
    rows = pd.DataFrame(mesa.batch_run(ModuModel, parameters={"scenario": scenario, "network_effect": [0.8, 1.2],
                                                              "seed": [1, 2]},
                                       data_collection_period=1, display_progress=False))
    assert sorted(set(zip(rows.network_effect, rows.seed, strict=True))) == [(0.8, 1), (0.8, 2), (1.2, 1), (1.2, 2)]
    for (alpha, seed), run in rows.groupby(["network_effect", "seed"]):
        alone = ModuModel(scenario, network_effect=alpha, seed=seed)
        alone.run()
        expected = alone.datacollector.get_model_vars_dataframe()
        # each row is the single run's record at its step (Mesa 3.3 labels steps 0..T-1, 3.5 by model time 0..T)
        assert len(run) >= scenario.time.steps  # data_collection_period=1: every step
        for row in run.itertuples():
            step = int(row.Step)
            assert row.hhi == expected.hhi.iloc[step]
            assert row.firms_A == expected.firms_A.iloc[step]
            assert row.leader == expected.leader.iloc[step]
    final = rows[rows.Step == rows.Step.max()]
    assert final.hhi.nunique() == 4  # the parameter and the seed both change the runs


def test_history_repr_is_one_short_line():
    model = ModuModel(validate(SCENARIO), rng=1)
    history = model.run()
    first, last = history.steps[0].firms.sum(), history.steps[-1].firms.sum()
    text = repr(history)
    assert text == f"History(4 steps, 2016–2018, 3 cities, 3 sectors, firms {first:,} → {last:,})"


@pytest.mark.parametrize("engine", ["agents", "counts"])
def test_a_finished_model_is_let_go_and_each_model_numbers_its_agents_from_one(engine):
    """Nothing keeps a model alive once its user drops it (Mesa 3.3's class-level agent-id counter did, so a process
    running replications one after another grew by every model), and agent ids still count from 1 in each model."""
    scenario = validate({**SCENARIO, "engine": engine})
    first = ModuModel(scenario, rng=1)
    first.run()
    second = ModuModel(scenario, rng=2)
    assert [c.unique_id for c in first.cities] == [c.unique_id for c in second.cities] == [1, 2, 3]
    gone = weakref.ref(first)
    del first
    gc.collect()
    assert gone() is None
