"""Timed events (docs/ODD.md §3.7): investments, budget/allocation/strategy changes, new anchors, open/close.

Every test runs on each engine of conftest's ``ENGINES``, reading what the run records; a check of a model's
state (its City agents, its firm table) is made on a ``ModuModel`` of the same scenario.
"""

import numpy as np
import pytest
from conftest import NEUTRAL_PARAMETERS, make_scenario, simulate

from sim.model import ModuModel
from sim.scenario import ScenarioError, validate


def three_cities(events, steps_per_year=4, years=2, engine="agents", parameters=None, **city_overrides):
    cities = [
        {"name": "A", "firms": 300, "policy": {"budget": 8, "allocation": {"compute": 0.5, "data": 0.25, "anchor": 0.25}}},
        {"name": "B", "firms": 300},
        {"name": "C", "firms": 300, **city_overrides},
    ]
    return make_scenario(cities=cities, parameters={"birth_rate": 0.05, "exit_rate": 0.01, **(parameters or {})},
                         steps=years * steps_per_year, steps_per_year=steps_per_year, engine=engine, events=events)


def cities_table(scenario, engine, seed=0):
    history = simulate(scenario, engine, seed)
    return history, history.cities_frame()


def test_invest_adds_one_off_spending_in_the_step_it_is_due(engine):
    """2000.6 is between steps: it applies before the first step starting at or after it (2000.75, step 4)."""
    _, cities = cities_table(three_cities([{"year": 2000.6, "city": "B", "invest": {"data": 3, "anchor": 1}}],
                                          engine=engine), engine)
    b = cities[cities.city == "B"].set_index("step")
    assert b.loc[4, "spend_data"] == 3 and b.loc[4, "spend_anchor"] == 1 and b.loc[4, "spend_compute"] == 0
    assert b.drop(index=4)[["spend_compute", "spend_data", "spend_anchor"]].to_numpy().sum() == 0
    delta = 1 - (1 - 0.1) ** 0.25                       # data depreciates 10% a year, per quarter
    assert b.loc[5, "D"] == pytest.approx(3 * (1 - delta))


def test_budget_allocation_and_learning_rate_events_change_policy_from_their_step(engine):
    events = [{"year": 2001, "city": "A", "budget": 4, "allocation": {"compute": 0, "data": 1, "anchor": 0}},
              {"year": 2001.5, "city": "A", "learning_rate": 0.9}]
    scenario = three_cities(events, engine=engine)
    _, cities = cities_table(scenario, engine)
    a = cities[cities.city == "A"].set_index("step")
    np.testing.assert_allclose(a.loc[1:4, ["spend_compute", "spend_data", "spend_anchor"]], [[1, 0.5, 0.5]] * 4)
    np.testing.assert_allclose(a.loc[5:, ["spend_compute", "spend_data", "spend_anchor"]], [[0, 1, 0]] * 4)
    assert (a.loc[5:, "budget"] == 4).all()
    model = ModuModel(scenario, rng=0)
    model.run()
    assert model.cities[0].learning_rate == 0.9


def test_a_strategy_set_by_an_event_first_acts_at_the_next_yearly_adaptation(engine):
    """Strategies adapt at the first step of a year *before* that step's events, so an event's allocation
    holds for its whole year; a strategy event in 2001 first adapts in 2002."""
    scenario = three_cities([{"year": 2001, "city": "A", "strategy": "best_response", "learning_rate": 0.5}],
                            years=3, parameters={"lever_effects": {"data": {"all": 0.5}}}, engine=engine)
    _, cities = cities_table(scenario, engine)
    a = cities[cities.city == "A"].set_index("step")
    np.testing.assert_allclose(a.loc[1:8, ["alloc_compute", "alloc_data", "alloc_anchor"]], [[0.5, 0.25, 0.25]] * 8)
    np.testing.assert_allclose(a.loc[9, ["alloc_compute", "alloc_data", "alloc_anchor"]], [0.25, 0.625, 0.125])


def test_add_anchor_is_a_birth_of_a_named_anchor_and_raises_a_eff(engine):
    scenario = three_cities([{"year": 2000.5, "city": "C", "add_anchor": {"name": "NewCo", "sector": "all"}}],
                            parameters={"birth_rate": 0.0, "exit_rate": 0.0}, engine=engine)
    history, cities = cities_table(scenario, engine)
    firms = history.firms_frame()
    c = firms[firms.city == "C"].set_index("step")
    assert c.births.tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0] and c.firms.iloc[-1] == 301
    a_eff = cities[cities.city == "C"].set_index("step").A_eff
    assert a_eff.loc[2] == 0 and a_eff.loc[3] == NEUTRAL_PARAMETERS["anchor_weight"]
    model = ModuModel(scenario, rng=0)
    model.run()
    named = [model.firms.city[i] for i in model.firms.positions(
        [firm for firm, name in model.anchor_names.items() if name == "NewCo"])]
    assert named == [2]  # C, with either engine (the counts engine keeps its anchors as individuals)
    if engine == "agents":
        table = model.firm_table()
        assert table[table.anchor_name == "NewCo"].city.tolist() == ["C"]


def test_two_anchors_added_together_to_one_city_and_sector_are_two_births(engine):
    scenario = three_cities([{"year": 2000.5, "city": "C", "add_anchor": {"name": "One", "sector": "all"}},
                             {"year": 2000.5, "city": "C", "add_anchor": {"name": "Two", "sector": "all"}}],
                            parameters={"birth_rate": 0.0, "exit_rate": 0.0}, engine=engine)
    firms = simulate(scenario, engine).firms_frame()
    c = firms[firms.city == "C"].set_index("step")
    assert c.births.tolist() == [0, 0, 0, 2, 0, 0, 0, 0, 0] and c.firms.iloc[-1] == 302


def test_a_closed_city_gets_no_entrants_or_movers_and_its_reconsidering_firms_leave(engine):
    """C closes at 2000.5 (before step 3) and reopens at 2001.5 (before step 7). With every firm
    reconsidering each step (ρ = 1), all of C's firms leave in its first closed step."""
    events = [{"year": 2000.5, "city": "C", "open": False}, {"year": 2001.5, "city": "C", "open": True}]
    scenario = three_cities(events, engine=engine, attractiveness=5.0,  # so that an emptied C attracts when reopened
                            parameters={"relocation_rate": 1.0, "moving_cost": 0.0, "exit_rate": 0.0})
    firms = simulate(scenario, engine, 2).firms_frame()
    c = firms[firms.city == "C"].set_index("step")
    closed = [3, 4, 5, 6]
    assert (c.loc[closed, ["births", "moves_in"]].to_numpy() == 0).all()
    assert c.loc[3, "moves_out"] == c.loc[2, "firms"] > 0 and (c.loc[closed, "firms"] == 0).all()
    assert c.loc[[1, 2], "moves_in"].sum() > 0 and c.loc[7:, "births"].sum() > 0 and c.loc[7:, "moves_in"].sum() > 0
    totals = firms.groupby("step")[["firms", "births", "deaths", "moves_in", "moves_out"]].sum()
    assert (totals.moves_in == totals.moves_out).all()
    assert (totals.firms.diff().iloc[1:] == (totals.births - totals.deaths).iloc[1:]).all()
    model = ModuModel(scenario, rng=2)
    model.run()
    assert model.open.tolist() == [True, True, True]


def test_a_city_can_start_closed_and_open_later(engine):
    scenario = three_cities([{"year": 2001, "city": "C", "open": True}], open=False, firms=0, attractiveness=5.0,
                            parameters={"relocation_rate": 0.05}, engine=engine)
    firms = simulate(scenario, engine, 4).firms_frame()
    c = firms[firms.city == "C"].set_index("step")
    assert (c.loc[:4, "firms"] == 0).all() and c.loc[5:, "births"].sum() > 0


def test_a_closed_city_still_spends_and_exits(engine):
    scenario = three_cities([{"year": 2000, "city": "A", "open": False}], parameters={"exit_rate": 0.05},
                            engine=engine)
    history, cities = cities_table(scenario, engine)
    a = cities[cities.city == "A"].set_index("step")
    assert (a.loc[1:, "spend_compute"] == 1).all()
    firms = history.firms_frame()
    assert firms[firms.city == "A"].deaths.sum() > 0 and firms[firms.city == "A"].births.sum() == 0
    model = ModuModel(scenario, rng=0)
    model.run()
    np.testing.assert_array_equal(model.marginal_firm_gain()[0], 0)


def test_events_on_one_date_apply_in_the_order_written(engine):
    events = [{"year": 2001, "city": "A", "budget": 1}, {"year": 2001, "city": "A", "budget": 12}]
    _, cities = cities_table(three_cities(events, engine=engine), engine)
    assert (cities[(cities.city == "A") & (cities.step > 4)].budget == 12).all()


def test_event_cities_and_years_are_checked():
    base = three_cities([]).model_dump(mode="json")
    for event, where in [({"year": 2000, "city": "Z", "open": False}, "events[0].city: unknown city 'Z'"),
                         ({"year": 2002, "city": "A", "budget": 1}, "events[0].year: 2002 is outside the run")]:
        with pytest.raises(ScenarioError, match=f"^x: {where}".replace("[", r"\[").replace("]", r"\]")):
            validate({**base, "events": [event]}, "x")
