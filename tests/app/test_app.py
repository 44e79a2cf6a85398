"""The interactive page: the model behind the sliders, the live views, the command, and a real browser.

The browser test (marked ``browser``, run in its own CI job) serves ``modu app``
on a free local port, opens it in headless Chromium (Debian's, driven by
Playwright), checks the title and controls, keeps a reference run, moves the
network-effect slider (its label shows the value), resets and steps the model,
and checks that the charts changed and the comparison names the change. Set ``MODU_SCREENSHOTS=docs`` to refresh
the screenshots in docs/. The load test (also marked ``browser``) has twenty pages press Step together.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_scenario

from sim.app import AppModel, app_parameters, reference_differences, reference_run, setting_changes, slider_scenario
from sim.app.controls import same_on_slider
from sim.cli import main
from sim.model import ModuModel
from sim.scenario import ScenarioError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base():
    """Two policy cities and a pool, every parameter explicit (no calibration file can change it)."""
    return make_scenario(
        cities=[
            {"name": "A", "firms": 300, "lat": 30.0, "lon": 110.0,
             "policy": {"budget": 10, "allocation": {"compute": 0.5, "data": 0.5, "anchor": 0.0}}},
            {"name": "B", "firms": 200, "lat": 35.0, "lon": 115.0},
            {"name": "Rest", "firms": 500, "pool": True},
        ],
        parameters={"network_effect": 1.0, "congestion": 0.5, "birth_rate": 0.05, "exit_rate": 0.01,
                    "lever_effects": {"compute": {"all": 0.4}}},
        steps=8, steps_per_year=4)


def test_no_slider_values_is_the_base_scenario(base):
    assert slider_scenario(base).digest() == base.digest()


def test_slider_defaults_rebuild_exactly_the_base_model(base):
    defaults = {k: (v["value"] if isinstance(v, dict) else v) for k, v in app_parameters(base).items()}
    page_model, plain = AppModel(**defaults), ModuModel(base, rng=base.seed)
    page_model.run()
    plain.run()
    assert page_model.spec.digest() == base.digest()
    assert np.array_equal(page_model.history.stack("firms"), plain.history.stack("firms"))


def test_sliders_set_parameters_capacity_and_policies(base):
    model = AppModel(base, seed=3, network_effect=1.4, congestion=2.0, capacity=5,
                     budget__A=50, compute__A=1, data__A=1, anchor__A=2, budget__B=7)
    assert model.params.network_effect == 1.4 and model.params.congestion == 2.0
    spec = {c.name: c for c in model.spec.cities}
    assert spec["A"].capacity == spec["B"].capacity == 5000 and spec["Rest"].capacity is None
    assert spec["A"].policy.budget == 50 and spec["A"].policy.allocation.as_tuple() == (0.25, 0.25, 0.5)
    # B had no policy: a budget slider gives it one, with equal shares until its weights are moved
    assert spec["B"].policy.budget == 7 and spec["B"].policy.allocation.as_tuple() == pytest.approx((1 / 3,) * 3)
    assert spec["Rest"].policy is None
    assert [c.budget for c in model.cities] == [50, 7, 0]


@pytest.mark.filterwarnings("ignore:.*ComponentsView:UserWarning")  # Mesa 3.3's module trips Solara's hook check
def test_reset_from_mesas_controller_rebuilds_the_same_model(base):
    """Reset rebuilds the model from the slider values; Mesa 3.5's controller adds its experiment scenario, which the
    page's model takes and leaves unused (with Mesa 3.3 the keyword is simply absent)."""
    pytest.importorskip("solara", reason="Mesa's controller needs the app extra: pip install -e '.[app]'")
    from mesa.visualization import solara_viz

    values = {k: (v["value"] if isinstance(v, dict) else v) for k, v in app_parameters(base).items()}
    model = AppModel(**values)
    build = getattr(solara_viz, "_build_model_init_kwargs", None)  # Mesa >= 3.5
    kwargs = (build(model, values, add_scenario_when_empty=True, require_model_accepts_scenario=True) if build
              else {**values, "scenario": object()})
    rebuilt = type(model)(**kwargs)
    model.run()
    rebuilt.run()
    assert np.array_equal(rebuilt.history.stack("firms"), model.history.stack("firms"))


def test_all_zero_lever_weights_mean_equal_shares(base):
    scenario = slider_scenario(base, city_values={"compute__A": 0, "data__A": 0, "anchor__A": 0})
    assert scenario.cities[0].policy.allocation.as_tuple() == pytest.approx((1 / 3,) * 3)


def test_sliders_exist_for_every_policy_city_and_none_for_pools(base):
    params = app_parameters(base)
    assert {"network_effect", "congestion", "capacity", "seed", "budget__A", "anchor__B"} <= set(params)
    assert not any(key.endswith("__Rest") for key in params)
    assert params["network_effect"]["value"] == 1.0 and params["budget__A"]["value"] == 10
    assert (params["compute__A"]["value"], params["data__A"]["value"], params["anchor__A"]["value"]) == (50, 50, 0)


def test_bad_slider_keys_and_values_are_refused(base):
    with pytest.raises(TypeError, match="budget__Nowhere"):
        AppModel(base, budget__Nowhere=3)
    with pytest.raises(ScenarioError, match="budget"):
        AppModel(base, budget__A=-1)


def test_a_stronger_network_effect_concentrates_the_page_model(base):
    """The α slider acts: entrants split A:B as 300^α : 200^α, so over two years α = 1.8 leaves A a
    larger share than α = 0.2 (expected gap ≈ 0.05; the mean over 20 seeds has a standard error ≈ 0.003)."""
    def top1(alpha):
        return np.mean([AppModel(base, seed=s, network_effect=alpha, congestion=0, budget__A=0)
                        .run().metrics_frame().top1_share.iloc[-1] for s in range(20)])
    assert top1(1.8) > top1(0.2) + 0.03


def test_a_slider_drawing_a_value_rounded_to_its_step_is_not_a_move():
    assert same_on_slider(0.75, 0.728951, 0.05) and same_on_slider(20.0, 20.4, 1.0) and same_on_slider(40, 40, 5)
    assert not same_on_slider(0.8, 0.728951, 0.05) and not same_on_slider(0.7, 0.728951, 0.05)
    assert not same_on_slider(21.0, 20.4, 1.0) and not same_on_slider(45, 40, 5)


def test_the_reference_run_is_the_current_run_and_its_future(base):
    model = AppModel(base, seed=5, network_effect=1.3, budget__B=4)
    for _ in range(3):
        model.step()
    reference = reference_run(model)
    assert reference.steps == base.time.steps and reference.slider_values == model.slider_values
    assert np.array_equal(reference.history.stack("firms")[:4], model.history.stack("firms"))
    same = reference_differences(reference, model)
    assert (same["difference"] == 0).all() and (same["share difference"] == 0).all()
    assert setting_changes(reference, model) == []


def test_differences_from_the_reference_at_the_current_step(base):
    reference = reference_run(AppModel(base, seed=5))
    current = AppModel(base, seed=5, network_effect=1.8, congestion=0.0)
    for _ in range(5):
        current.step()
    table = reference_differences(reference, current)
    now = current.history.stack("firms")[5].sum(axis=1)  # step 5, summed over sectors
    then = reference.history.stack("firms")[5].sum(axis=1)
    assert list(table.index) == ["A", "B", "Rest"]
    assert table["difference"].tolist() == (now - then).tolist()
    assert table["share difference"].to_numpy() == pytest.approx(now / now.sum() - then / then.sum())
    assert setting_changes(reference, current) == [("network effect α", 1.0, 1.8), ("congestion γ", 0.5, 0.0)]


def test_modu_app_refuses_a_bad_scenario_before_serving(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncities: []\n")
    result = CliRunner().invoke(main, ["app", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.startswith("modu: error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "cities" in result.stderr


def test_modu_app_without_the_extra_says_how_to_install_it(monkeypatch):
    """Without Solara, one line naming this installation's install command (see sim/_install.py), exit 2; the
    environment then carries the page's title for Solara's first HTML."""
    from sim._install import install_command

    monkeypatch.setitem(sys.modules, "solara", None)  # as if the app extra were not installed
    monkeypatch.setitem(sys.modules, "solara.__main__", None)
    monkeypatch.delenv("SOLARA_THEME_TITLE", raising=False)
    result = CliRunner().invoke(main, ["app"])
    assert result.exit_code == 2
    assert result.stderr == f"modu: error: the page needs the app extra; install it with {install_command('app')}\n"
    assert os.environ.pop("SOLARA_THEME_TITLE") == "Modu — baseline"


def views_of(model, reference, counter):
    """The page's views of a model (made a Solara component below), rendered again whenever ``counter`` changes."""
    from sim.app.views import views

    counter.get()
    return views(model, reference)


def rendered_views(model, reference=None):
    """The page's one widget of views for a model, its rows parsed, and the counter that renders it again."""
    solara = pytest.importorskip("solara", reason="the page needs the app extra: pip install -e '.[app]'")
    from sim.app.widget import Dashboard

    counter = solara.reactive(0)
    box, _ = solara.render(solara.component(views_of)(model, reference, counter), handle_error=False)
    (widget,) = box.children
    assert isinstance(widget, Dashboard)
    return widget, counter


def panels(widget) -> tuple[list[dict], list[str]]:
    """The charts' panels and the texts of a views widget, in the page's order."""
    flat = [panel for row in json.loads(widget.rows) for panel in row]
    return [p for p in flat if "option" in p], [p["html"] for p in flat if "html" in p]


@pytest.mark.filterwarnings("ignore:Failed to validate hooks:UserWarning")  # Solara cannot parse a test's source
def test_live_views_send_the_browser_the_model_as_it_steps_in_one_message(base, monkeypatch):
    """The views are one widget holding the charts' ECharts options and the texts as JSON (the browser draws
    them); after a step, one message carries new options, with the new year in their titles, and the new
    state; a reference run adds dashed lines and a comparison."""
    ipywidgets = pytest.importorskip("ipywidgets", reason="the page needs the app extra: pip install -e '.[app]'")
    model = AppModel(base)
    widget, counter = rendered_views(model)
    charts_before, _ = panels(widget)
    sent = []
    plain_send = ipywidgets.Widget.send_state
    monkeypatch.setattr(ipywidgets.Widget, "send_state",
                        lambda self, key=None: (sent.append(type(self).__name__), plain_send(self, key))[1])
    model.step()
    counter.set(1)  # what Mesa's controller does after a step
    assert sent == ["Dashboard"], f"a step sent {sent}"
    charts, texts = panels(widget)
    assert [c["option"]["title"]["text"].split(" — ")[0] for c in charts] == [
        c["option"]["title"]["text"].split(" — ")[0] for c in charts_before] and len(charts) == 3
    for now, drawn in zip(charts, charts_before, strict=True):
        assert now["option"] != drawn["option"], f"{now['option']['title']['text']} did not change after a step"
        assert now["option"]["title"]["text"].endswith(f"— {model.year:.2f}")
    assert any("step 1 of 8" in text for text in texts)
    reference = reference_run(AppModel(base, network_effect=0.2))
    charts, texts = panels(rendered_views(model, reference)[0])
    for chart in charts[:2]:  # the counts and the shares
        dashed = [s for s in chart["option"]["series"] if s.get("lineStyle", {}).get("type") == "dashed"]
        assert dashed and all(len(s["data"]) == base.time.steps + 1 for s in dashed), chart["option"]["title"]
    assert any("network effect α: 0.2 → 1" in text and "at step 1" in text for text in texts)


@pytest.mark.filterwarnings("ignore:Failed to validate hooks:UserWarning")
def test_the_views_widget_carries_the_maps_outlines(base):
    """The map's outlines go with the widget, registered under the name the map's option draws."""
    from sim.app.charts import MAP_NAME

    widget, _ = rendered_views(AppModel(base))
    charts, _ = panels(widget)
    outlines = json.loads(widget.maps)[MAP_NAME]
    assert [c["option"]["geo"]["map"] for c in charts if "geo" in c["option"]] == [MAP_NAME]
    assert {"China"} <= {f["properties"]["name"] for f in outlines["features"]}


def test_the_page_renders_as_it_would_in_jupyter():
    solara = pytest.importorskip("solara", reason="the page needs the app extra: pip install -e '.[app]'")
    from sim.app import page

    box, _ = solara.render(page, handle_error=False)  # what displaying `page` in a notebook does
    assert box.children


@pytest.mark.browser
def test_page_in_headless_chromium_slider_reset_step_and_reference(tmp_path):
    """The page as a student uses it: its title and controls, a slider showing its value, Reset and Step
    changing the plot, and a kept reference run compared with the new one."""
    pytest.importorskip("solara", reason="the page needs the app extra: pip install -e '.[app]'")
    from browser import browser_page, chromium_missing, served_app

    from sim.app.controls import slider_label
    from sim.app.model import DEFAULT_SCENARIO
    from sim.scenario import load_scenario

    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    shots = Path(os.environ.get("MODU_SCREENSHOTS") or tmp_path)
    shots = shots if shots.is_absolute() else ROOT / shots
    baseline = load_scenario(DEFAULT_SCENARIO)
    alpha_slider = app_parameters(baseline)["network_effect"]
    failed: list[str] = []
    console: list[str] = []
    server_output = tmp_path / "server.log"
    with served_app(output=server_output) as url, browser_page() as page:
        with urllib.request.urlopen(url) as response:  # what the browser shows before the page renders
            served = response.read().decode()
        assert f"<title>Modu — {baseline.name}</title>" in served and "Solara" not in served.split("</title>")[0]
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.goto(url, wait_until="networkidle")
        steps = baseline.time.steps
        page.get_by_text(f"step 0 of {steps}").wait_for(timeout=60_000)
        assert page.title() == f"Modu — {baseline.name}"
        for mesa_default in ("Page 0", "Use Threads", "Render Interval"):
            assert page.get_by_text(mesa_default).count() == 0, f"Mesa's {mesa_default!r} shows on the page"
        page.get_by_text(slider_label(alpha_slider, alpha_slider["value"]), exact=True).wait_for(timeout=5_000)
        assert page.get_by_text("κ: network seed (firms)").count() == 1, "the status line's κ is not explained"
        counts = page.locator(".modu-chart").first
        page.locator(".modu-chart[data-title^='Firms per city']").wait_for(timeout=30_000)  # ECharts drew it
        page.screenshot(path=str(shots / "app.png"))
        before = counts.screenshot()

        page.get_by_role("button", name="Keep as reference").click()
        page.get_by_text("This run against the reference").wait_for(timeout=10_000)
        alpha = page.get_by_role("slider", name="network effect α")
        start = float(alpha.get_attribute("aria-valuenow"))
        alpha.focus()
        for _ in range(10):
            alpha.press("ArrowRight")
        moved = float(alpha.get_attribute("aria-valuenow"))
        assert moved > start + 0.3, f"the α slider did not move: {start} -> {moved}"
        page.get_by_text(slider_label(alpha_slider, moved), exact=True).wait_for(timeout=5_000)
        # Reset rebuilds the model with the parameters the server has; the slider's value may
        # take a moment to get there, so press Reset until the page reports the new α.
        in_use = page.get_by_text(f"α = {moved:.3g},")
        for _ in range(10):
            page.get_by_role("button", name="Reset").click()
            try:
                in_use.wait_for(timeout=3_000)
                break
            except PlaywrightTimeout:
                continue
        in_use.wait_for(timeout=1_000)

        for _ in range(12):
            page.get_by_role("button", name="Step").click()
        page.get_by_text(f"step 12 of {steps}").wait_for(timeout=30_000)
        year = f"{baseline.time.start + 12 / baseline.time.steps_per_year:.2f}"
        for title in ("Firms per city", "Shares of firms", "Firms by city"):
            page.locator(f".modu-chart[data-title='{title} — {year}']").wait_for(timeout=10_000)
        page.get_by_text("at step 12").wait_for(timeout=10_000)
        changed = f"network effect α: {alpha_slider['value']:.4g} → {moved:.4g}"
        assert page.get_by_text(changed).count() == 1, f"the comparison does not name the change {changed!r}"
        after = counts.screenshot()
        for _ in range(20):  # the canvas may be painted just after the text
            if after != before:
                break
            page.wait_for_timeout(250)
            after = counts.screenshot()
        page.screenshot(path=str(shots / "app-stepped.png"))
    assert after != before, "the firms plot did not change after the slider, Reset and twelve steps"
    assert not failed, f"requests failed (the page must work offline): {failed}"
    warnings = [line for line in console if line.startswith(("warning", "error"))]
    assert not warnings, f"the browser console warned: {warnings}"
    assert "samesite" not in server_output.read_text(errors="replace"), "the server printed Solara's cookie warning"


CLASS_PAGES, CLASS_ROUNDS = 20, 3
"""The class of the load test: pages pressing Step together, and how many times."""


@pytest.mark.browser
def test_a_class_of_twenty_pressing_step_together(record_property):
    """Twenty pages, each in its own browser context, press Step together three times (then twenty sessions of
    which one draws here: :func:`browser.run_class`): every page shows each new step with its new charts, no click
    is lost, no page warns or fails a request, the server logs no error, and the server spends little CPU per page
    and step (drawing the figures on the server cost about 0.85 s of it). The latencies are recorded (the
    target, a median at most twice one page's, is measured by benchmarks/bench_page.py and not asserted here:
    on two cores the twenty browsers' own drawing dominates it)."""
    pytest.importorskip("solara", reason="the page needs the app extra: pip install -e '.[app]'")
    pytest.importorskip("psutil", reason="the test extra installs psutil")
    from browser import chromium_missing, run_class

    from sim.app.model import DEFAULT_SCENARIO

    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    result = run_class(str(DEFAULT_SCENARIO), CLASS_PAGES, CLASS_ROUNDS)
    one = float(np.median(result.one))
    for name, latencies in (("one page", result.one), ("together", result.together), ("classroom", result.classroom)):
        record_property(f"median latency, {name} (s)", round(float(np.median(latencies)), 3))
    record_property("median together / one page", round(float(np.median(result.together)) / one, 1))
    record_property("server CPU per page and step (s)", round(result.server_cpu, 4))
    assert len(result.together) == CLASS_PAGES * CLASS_ROUNDS and len(result.classroom) == CLASS_ROUNDS
    assert result.lost == 0, f"{result.lost} pages did not end on the step they were sent to"
    assert not result.problems, f"pages warned or failed requests: {result.problems[:5]}"
    assert not result.server_errors, f"the server logged errors: {result.server_errors[:5]}"
    assert result.server_cpu < 0.1, f"the server spent {result.server_cpu:.3f} s of CPU per page and step"
