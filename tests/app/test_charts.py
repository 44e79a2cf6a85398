"""The page's charts as data (sim/app/charts.py): what the browser is asked to draw, checked against the model.

No Solara needed: the options are plain data, so the tests read them as the browser would.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
import pytest
from conftest import make_scenario

from sim.app import AppModel, reference_run
from sim.app.charts import (
    MAP_BOX,
    REFERENCE,
    Run,
    Setting,
    counts_chart,
    epoch_ms,
    map_chart,
    shares_chart,
)
from sim.inference.data import documented_counts
from sim.reporting import maps
from sim.reporting.figures import MAX_LINES, MAX_PANELS, counts_layout, leaders, wide_spread
from sim.scenario import load_scenario
from sim.scenario.paths import derive
from sim.scenario.resources import SCENARIOS_DIR


@pytest.fixture(scope="module")
def base():
    """Two policy cities and a pool of similar size (a linear axis), with coordinates."""
    return make_scenario(
        cities=[{"name": "A", "firms": 300, "lat": 30.0, "lon": 110.0,
                 "policy": {"budget": 10, "allocation": {"compute": 0.5, "data": 0.5, "anchor": 0.0}}},
                {"name": "B", "firms": 200, "lat": 35.0, "lon": 115.0},
                {"name": "Rest", "firms": 400, "pool": True}],
        parameters={"network_effect": 1.0, "congestion": 0.5, "birth_rate": 0.05, "exit_rate": 0.01},
        steps=8, steps_per_year=4)


@pytest.fixture(scope="module")
def china():
    return load_scenario(SCENARIOS_DIR / "china.yaml")


def stepped(scenario, steps, **sliders):
    model = AppModel(scenario, **sliders)
    for _ in range(steps):
        model.step()
    return model


def lines(option, name=None):
    return [s for s in option["series"] if s["type"] == "line" and (name is None or s["name"] == name)]


def test_model_years_are_dates_on_the_time_axis():
    ms = epoch_ms(np.array([2023.0, 2024.0, 2024.5, 2025.0]))
    assert ms[0] == datetime(2023, 1, 1, tzinfo=UTC).timestamp() * 1000
    assert datetime.fromtimestamp(ms[2] / 1000, UTC) == datetime(2024, 7, 2, tzinfo=UTC)  # 2024 has 366 days
    assert ms[3] - ms[1] == 366 * 86_400_000


def test_counts_draw_each_citys_firms_at_each_step(base):
    model = stepped(base, 5)
    option, (width, height) = counts_chart(Run.of(model), Setting.of(model.spec), model.year)
    firms = model.history.stack("firms").sum(axis=2)  # [step, city]
    years = [r.year for r in model.history.steps]
    assert [s["name"] for s in lines(option)] == ["A", "B", "Rest"]
    for i, series in enumerate(lines(option)):
        assert [p[1] for p in series["data"]] == firms[:, i].tolist()
        assert [p[0] for p in series["data"]] == epoch_ms(years).tolist()
    assert option["title"]["text"] == f"Firms per city — {model.year:.2f}"
    assert option["yAxis"]["type"] == "value" and not wide_spread(firms[-1].tolist())
    span = option["xAxis"]["min"], option["xAxis"]["max"]
    assert span == (float(epoch_ms(2000)), float(epoch_ms(2002)))  # the whole run's span, so lines grow across it
    assert (width, height) == (440, 330) and json.loads(json.dumps(option)) == option  # plain JSON data


def test_a_kept_reference_is_drawn_dashed_to_the_end_in_each_citys_colour(base):
    model = stepped(base, 3, network_effect=1.6)
    reference = reference_run(AppModel(base))
    option, _ = counts_chart(Run.of(model), Setting.of(model.spec), model.year, Run.of(reference))
    dashed = lines(option, REFERENCE)
    assert len(dashed) == 3 and all(s["lineStyle"]["type"] == "dashed" for s in dashed)
    assert [s["color"] for s in dashed] == [s["color"] for s in lines(option) if s["name"] != REFERENCE]
    whole = reference.history.stack("firms").sum(axis=2)
    assert [[p[1] for p in s["data"]] for s in dashed] == whole.T.tolist()  # all of it: the run's future too
    assert REFERENCE in [item["name"] for item in option["legend"]["data"] if isinstance(item, dict)]


def test_shares_stack_to_all_firms_and_the_reference_edges_are_its_cumulative_shares(base):
    model = stepped(base, 4)
    reference = reference_run(AppModel(base, network_effect=0.3))
    option = shares_chart(Run.of(model), Setting.of(model.spec), model.year, Run.of(reference))
    stacked = [s for s in lines(option) if s.get("stack")]
    totals = np.sum([[p[1] for p in s["data"]] for s in stacked], axis=0)
    assert totals == pytest.approx(100, abs=0.02)
    firms = model.history.stack("firms").sum(axis=2)
    assert [p[1] for p in stacked[0]["data"]] == pytest.approx(100 * firms[:, 0] / firms.sum(axis=1), abs=0.005)
    edges = lines(option, REFERENCE)
    ref = reference.history.stack("firms").sum(axis=2)
    assert len(edges) == 2  # the top of each band but the last
    # shares are drawn to 0.01 points, so an edge of two rounded shares is within 0.01 + 0.005
    assert [p[1] for p in edges[1]["data"]] == pytest.approx(100 * ref[:, :2].sum(axis=1) / ref.sum(axis=1), abs=0.016)


def test_documented_counts_are_dots_in_their_citys_colour():
    baseline = load_scenario(SCENARIOS_DIR / "baseline.yaml")
    documented = documented_counts(baseline)
    assert len(documented), "the baseline's cities have documented counts"
    model = AppModel(baseline)
    option, _ = counts_chart(Run.of(model), Setting.of(model.spec), model.year)
    (dots,) = [s for s in option["series"] if s["name"] == "documented"]
    colours = {s["name"]: s["color"] for s in lines(option)}
    drawn = sorted((p["value"][0], p["value"][1], p["itemStyle"]["color"]) for p in dots["data"])
    expected = sorted((float(epoch_ms(r.year)), float(r.firms), colours[r.city]) for r in documented.itertuples())
    assert drawn == expected


def test_the_counts_of_many_cities_follow_the_run_figures_rules(china):
    dozen = derive(china, {"cities": [c.model_dump() for c in china.cities[:12]]})  # more than a panel holds
    assert counts_layout(12) == "panels" and counts_layout(len(china.cities)) == "leaders"
    model = stepped(dozen, 2)
    option, (width, height) = counts_chart(Run.of(model), Setting.of(model.spec), model.year)
    assert len(option["grid"]) == len(option["xAxis"]) == len(option["yAxis"]) == 12 > MAX_LINES
    assert all(axis["type"] == "log" for axis in option["yAxis"])
    assert len({(axis["min"], axis["max"]) for axis in option["yAxis"]}) == 1  # one shared axis
    own = [s for s in lines(option) if s["color"] != "#d1d1d1"]
    assert [s["name"] for s in own] == [c.name for c in dozen.cities] and [s["yAxisIndex"] for s in own] == list(range(12))
    assert sum(s["color"] == "#d1d1d1" for s in lines(option)) == 12 * 11  # every other city, grey, in each panel
    assert width > 440 and height > 330

    model = stepped(china, 2)
    option, _ = counts_chart(Run.of(model), Setting.of(model.spec), model.year)
    now = dict(zip(model.history.cities, model.history.stack("firms")[-1].sum(axis=1).tolist(), strict=True))
    coloured = [s["name"] for s in lines(option) if not s["name"].startswith("the other")]
    assert coloured == leaders(now) and len(china.cities) > MAX_PANELS
    assert sum(s["name"] == f"the other {len(now) - MAX_LINES} cities" for s in lines(option)) == len(now) - MAX_LINES
    assert option["yAxis"]["type"] == "log"


def test_the_page_map_is_the_run_maps_geometry(china):
    model = stepped(china, 3)
    setting = Setting.of(model.spec)
    option = map_chart(Run.of(model), setting, model.year)
    placed = {c.name: (c.lat, c.lon) for c in china.cities if c.lat is not None}
    lat, lon = (np.array([v[i] for v in placed.values()]) for i in (0, 1))
    stretch, span = maps.map_scale(lat, lon)
    box_w = 440 - MAP_BOX["left"] - MAP_BOX["right"]
    box_h = 330 - MAP_BOX["top"] - MAP_BOX["bottom"]
    x0, x1, y0, y1 = maps.map_bounds(lat, lon, np.full(len(lat), maps.LARGEST_RADIUS * span), box_w / box_h)
    assert option["geo"]["boundingCoords"] == [[x0, y1], [x1, y0]]
    assert option["geo"]["aspectScale"] == pytest.approx(1 / stretch)
    # circle AREA proportional to firms, the largest LARGEST_RADIUS of the span across, in the map's pixels
    firms = {d["name"]: d["value"][2] for d in option["series"][0]["data"]}
    sizes = {d["name"]: d["symbolSize"] for d in option["series"][0]["data"]}
    top = max(firms.values())
    largest_px = 2 * maps.LARGEST_RADIUS * span * box_h / (y1 - y0)
    for city in placed:
        assert sizes[city] == pytest.approx(largest_px * math.sqrt(firms[city] / top), abs=0.06)
    assert set(firms) == set(placed)
    legend = [g["style"]["text"] for g in option["graphic"] if g["type"] == "text"]
    assert [f"{k:,.0f}" for k in maps.size_keys(top)] == [t for t in legend if t[0].isdigit()]
    pools = [c.name for c in china.cities if c.lat is None]
    assert all(name in legend[-1] for name in pools) and legend[-1].startswith("not on the map")
    shaded = {r["name"] for r in option["geo"]["regions"] if r["itemStyle"].get("areaColor") == maps.HOME}
    assert shaded == maps.home_countries(lon, lat) == {"China"}
    for feature in setting.outlines["features"]:  # clipped to the view: the browser's map does not clip
        points = np.array([p for polygon in feature["geometry"]["coordinates"] for ring in polygon for p in ring])
        assert (points[:, 0] >= x0 - 1e-3).all() and (points[:, 0] <= x1 + 1e-3).all()
        assert (points[:, 1] >= y0 - 1e-3).all() and (points[:, 1] <= y1 + 1e-3).all()


def test_the_map_stays_put_while_the_circles_grow(base):
    model = AppModel(base)
    before = map_chart(Run.of(model), Setting.of(model.spec), model.year)
    for _ in range(6):
        model.step()
    after = map_chart(Run.of(model), Setting.of(model.spec), model.year)
    assert before["geo"] == after["geo"]
    assert [d["value"][2] for d in before["series"][0]["data"]] != [d["value"][2] for d in after["series"][0]["data"]]
    assert before["title"]["text"] != after["title"]["text"]
