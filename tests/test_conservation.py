"""Invariants of every engine: exact growth accounting, consistent state, policy stocks, determinism.

The scenario (``rich_scenario`` in conftest) has every phase switched on: exits (anchors
included), relocation, entry, congestion, a pool, an empty city, the three strategies and
timed events, so each identity is checked where it could break. Each identity of the
records is checked on the three engines of conftest's ``ENGINES`` (``ModuModel`` with
``agents`` and with ``counts``, and the kernel path of the command line); the state
behind the records (firm columns, counts, anchors) only where a model exposes it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
from conftest import simulate

from sim.model import History, ModuModel
from sim.scenario import Scenario

SEEDS = (1, 2, 3)


class Run(NamedTuple):
    """One run's scenario and history, and its model where it was stepped from Python (None on the kernel path)."""

    scenario: Scenario
    history: History
    model: ModuModel | None


def _check_state(model: ModuModel) -> None:
    """The model's aggregate state agrees with its firms: the individual firm columns (all firms with
    the ``agents`` engine, the anchors with ``counts``) plus, with ``counts``, the per-class counts."""
    firms = model.firms
    n_city, n_sector = model.N.shape
    individual = np.bincount(firms.city.astype(np.int64) * n_sector + firms.sector,
                             minlength=n_city * n_sector).reshape(n_city, n_sector)
    if model.counts is None:
        np.testing.assert_array_equal(model.N, individual)
    else:
        assert firms.anchor.all()
        assert (model.counts >= 0).all()
        np.testing.assert_array_equal(model.N, individual + model.counts.sum(axis=2))
    np.testing.assert_array_equal(model.anchors_present,
                                  np.bincount(firms.city[firms.anchor].astype(np.int64), minlength=n_city))
    assert (model.N >= 0).all()
    assert len(np.unique(firms.id)) == firms.n
    assert firms.n == 0 or (firms.id.min() >= 0 and firms.id.max() < firms.next_id)
    assert ((firms.city >= 0) & (firms.city < n_city)).all()
    assert ((firms.sector >= 0) & (firms.sector < n_sector)).all()
    if model.counts is None:
        assert (firms.size >= 1).all()
    else:  # the counts dynamics draws no size for an anchor: no rule of an anchor reads it
        assert np.isnan(firms.size).all()
    assert (firms.born <= model.steps).all()
    record = model.history.steps[-1]
    assert record.step == model.steps
    np.testing.assert_array_equal(record.firms, model.N)
    # The origin–destination matrix so far holds exactly the recorded moves.
    moves_out = model.history.stack("moves_out").sum(axis=(0, 2))
    moves_in = model.history.stack("moves_in").sum(axis=(0, 2))
    np.testing.assert_array_equal(model.history.flows.sum(axis=1), moves_out)
    np.testing.assert_array_equal(model.history.flows.sum(axis=0), moves_in)
    assert (np.diag(model.history.flows) == 0).all()


def _stepped_runs(scenario, record_events: bool) -> list[ModuModel]:
    models = []
    for seed in SEEDS:
        model = ModuModel(scenario, rng=seed, record_events=record_events)
        _check_state(model)
        while model.steps < model.n_steps:
            model.step()
            _check_state(model)
        models.append(model)
    return models


@pytest.fixture(scope="module")
def rich_runs(rich_scenario_any_engine) -> list[Run]:
    """Runs of the rich scenario on each engine; a model stepped from Python has its state checked after every step."""
    scenario, engine = rich_scenario_any_engine
    if engine == "kernel":
        return [Run(scenario, simulate(scenario, engine, seed), None) for seed in SEEDS]
    return [Run(scenario, model.history, model) for model in _stepped_runs(scenario, record_events=engine == "agents")]


@pytest.fixture(scope="module")
def agent_runs(rich_scenario):
    """Runs of the rich scenario with every firm an individual and the per-firm event log."""
    return _stepped_runs(rich_scenario, record_events=True)


def test_the_scenario_exercises_every_flow(rich_runs):
    for run in rich_runs:
        frame = run.history.firms_frame()
        assert frame["births"].sum() > 0 and frame["deaths"].sum() > 0 and frame["moves_out"].sum() > 0
        assert len(run.history.steps) == run.scenario.time.steps + 1 == 17
        if run.model is not None:
            assert run.model.steps == run.model.n_steps == 16


def test_state_matches_firm_columns_every_step(agent_runs):
    """Checked after every step by the fixture; here the final state once more, and the firm table."""
    for model in agent_runs:
        _check_state(model)
        table = model.firm_table()
        assert len(table) == model.N.sum()
        by_city = table.groupby("city", observed=False).size().reindex([c.name for c in model.cities])
        np.testing.assert_array_equal(by_city.to_numpy(), model.N.sum(axis=1))


def test_growth_accounting_is_exact_for_every_step_city_and_sector(rich_runs):
    for run in rich_runs:
        h = run.history
        frame = h.firms_frame().sort_values(["city", "sector", "step"])
        assert len(frame) == (run.scenario.time.steps + 1) * len(h.cities) * len(h.sectors)
        assert (frame[["firms", "births", "deaths", "moves_in", "moves_out"]] >= 0).all().all()
        first = frame[frame["step"] == 0]
        assert (first[["births", "deaths", "moves_in", "moves_out"]] == 0).all().all()
        for _, g in frame.groupby(["city", "sector"]):
            firms = g["firms"].to_numpy()
            net = (g["births"] - g["deaths"] + g["moves_in"] - g["moves_out"]).to_numpy()
            np.testing.assert_array_equal(firms[1:], firms[:-1] + net[1:])


def test_moves_cancel_nationally_every_step(rich_runs):
    """A relocation is a migration: moves in and out have the same national (and per-sector) total."""
    for run in rich_runs:
        moves_in, moves_out = run.history.stack("moves_in"), run.history.stack("moves_out")
        np.testing.assert_array_equal(moves_in.sum(axis=1), moves_out.sum(axis=1))  # per step and sector
        assert run.history.flows.sum() == moves_out.sum()


def test_national_totals_balance(rich_runs):
    for run in rich_runs:
        frame = run.history.firms_frame()
        initial = frame.loc[frame["step"] == 0, "firms"].sum()
        final = frame.loc[frame["step"] == run.scenario.time.steps, "firms"].sum()
        assert initial == sum(c.firms for c in run.scenario.cities)
        assert initial + frame["births"].sum() - frame["deaths"].sum() == final == run.history.steps[-1].firms.sum()
        if run.model is not None:
            assert final == run.model.N.sum()
        per_sector = frame.groupby(["step", "sector"])["firms"].sum().unstack()
        flows = frame.groupby("sector")[["births", "deaths"]].sum()
        np.testing.assert_array_equal(per_sector.iloc[-1] - per_sector.iloc[0],
                                      (flows["births"] - flows["deaths"]).reindex(per_sector.columns))


def test_flows_frame_matches_the_matrix(rich_runs):
    for run in rich_runs:
        flows = run.history.flows_frame()
        assert (flows["firms"] > 0).all()
        assert (flows["origin"] != flows["destination"]).all()
        assert flows["firms"].sum() == run.history.stack("moves_out").sum()
        pivot = flows.pivot_table(index="origin", columns="destination", values="firms", aggfunc="sum", fill_value=0)
        names = run.history.cities
        full = pivot.reindex(index=names, columns=names, fill_value=0).to_numpy()
        np.testing.assert_array_equal(full, run.history.flows)


def test_event_log_agrees_with_the_aggregates(agent_runs):
    """Following a firm reproduces where it is now; the added anchor enters on its event's step."""
    model = agent_runs[0]
    table = model.firm_table().set_index("id")
    for firm_id in [model.sample_firm(seed=s) for s in range(20)]:
        trace = model.follow(firm_id)
        assert trace["event"].iloc[0] in ("initial", "birth")
        assert "death" not in set(trace["event"])
        assert trace["destination"].iloc[-1] == table.loc[firm_id, "city"]
    nio = next(i for i, name in model.anchor_names.items() if name == "NIO")
    first = model.follow(nio).iloc[0]
    # The event dated 2018.0 acts in the step that starts then: step 9, recorded at its end (2018.25).
    assert (first["event"], first["destination"], first["step"]) == ("birth", "Hefei", 9)
    assert model.history.steps[9].births[[c.name for c in model.cities].index("Hefei"),
                                         model.sectors.index("downstream")] >= 1


def test_policy_stocks_follow_their_law_of_motion(rich_runs):
    """X[t] = (1 − δ)·X[t−1] + spend[t]/c per step, with one-off investments and budget events in spend."""
    run = rich_runs[0]
    h, spy = run.history, run.scenario.time.steps_per_year
    stocks, spend, alloc, budget = h.stack("stocks"), h.stack("spend"), h.stack("allocation"), h.stack("budget")
    p = run.scenario.parameters
    delta_year = np.array(p.depreciation.as_tuple())
    delta = 1 - (1 - delta_year) ** (1 / spy)
    cost = np.array(p.unit_cost.as_tuple())
    np.testing.assert_allclose(stocks[1:], (1 - delta) * stocks[:-1] + spend[1:] / cost, rtol=1e-12)
    # Spending is this step's share of the budget, plus the one-off investment on its event's step.
    names = h.cities
    oneoff = np.zeros_like(spend)
    oneoff[5, names.index("Hefei"), 0] = 30.0  # event at 2017.0 acts in step 5 (starts 2016 + 4/4)
    np.testing.assert_allclose(spend[1:], budget[1:, :, None] * alloc[1:] / spy + oneoff[1:], rtol=1e-12, atol=1e-12)
    # A city without a policy spends nothing until its budget event (2017.5 → step 7).
    hz = names.index("Hangzhou")
    assert (spend[1:7, hz] == 0).all() and (spend[7:, hz] > 0).all()
    assert (budget[7:, hz] == 10).all()
    # Allocations stay shares, whatever the strategy does to them.
    assert (alloc >= 0).all()
    np.testing.assert_allclose(alloc.sum(axis=2), 1.0, rtol=1e-12)
    # The adaptive strategies did adapt (at the start of each year after the first).
    for name in ("Beijing", "Hefei"):
        assert not np.allclose(alloc[-1, names.index(name)], alloc[0, names.index(name)])
    np.testing.assert_array_equal(alloc[:, names.index("Shenzhen")], np.broadcast_to(alloc[0, 0], alloc[:, 0].shape))


# ---------------------------------------------------------------- 6. determinism
def _frames(history: History) -> list[pd.DataFrame]:
    return [history.firms_frame(), history.cities_frame(), history.metrics_frame(), history.flows_frame()]


def test_same_seed_gives_identical_history(rich_scenario_any_engine):
    scenario, engine = rich_scenario_any_engine
    a, b = simulate(scenario, engine, 5), simulate(scenario, engine, 5)
    for fa, fb in zip(_frames(a), _frames(b), strict=True):
        pd.testing.assert_frame_equal(fa, fb)
    np.testing.assert_array_equal(a.flows, b.flows)
    # The seed may be given as an int or a SeedSequence (an int n is SeedSequence(n))
    c, d = simulate(scenario, engine, np.random.SeedSequence(5)), simulate(scenario, engine, np.random.SeedSequence(5))
    pd.testing.assert_frame_equal(c.firms_frame(), d.firms_frame())
    pd.testing.assert_frame_equal(c.firms_frame(), a.firms_frame())
    if engine != "kernel":  # ModuModel: left out, the seed is the scenario's own
        e = ModuModel(scenario, record_events=False).run()
        pd.testing.assert_frame_equal(e.firms_frame(), simulate(scenario, engine, scenario.seed).firms_frame())


def test_same_seed_gives_the_same_firms_table(rich_scenario, run):
    """With every firm an individual, the firms themselves are reproducible too."""
    pd.testing.assert_frame_equal(run(rich_scenario, 5).firm_table(), run(rich_scenario, 5).firm_table())


def test_event_log_does_not_change_the_random_stream(rich_scenario, run):
    with_log, without = run(rich_scenario, 8, record_events=True), run(rich_scenario, 8, record_events=False)
    for fa, fb in zip(_frames(with_log.history) + [with_log.firm_table()],
                      _frames(without.history) + [without.firm_table()], strict=True):
        pd.testing.assert_frame_equal(fa, fb)


def test_different_seeds_give_different_histories(rich_scenario_any_engine):
    scenario, engine = rich_scenario_any_engine
    frames = [simulate(scenario, engine, seed).firms_frame() for seed in (5, 6)]
    assert not frames[0].equals(frames[1])
    assert (frames[0]["births"] != frames[1]["births"]).any()
    # ... but the same initial state.
    pd.testing.assert_frame_equal(frames[0][frames[0]["step"] == 0], frames[1][frames[1]["step"] == 0])
