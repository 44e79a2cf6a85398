"""The page itself (Mesa's controller from its SolaraViz module, the sliders and the views), and the fixes Solara needs.

Imports Solara and Mesa's visualisation only when a page is made (the app extra).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from sim.app.controls import app_parameters, same_on_slider, slider_label
from sim.app.model import DEFAULT_SCENARIO, AppModel, reference_run
from sim.app.views import views
from sim.scenario import Scenario, load_scenario


def page_title(base: Scenario) -> str:
    """The page's title, e.g. "Modu — baseline" (the browser tab's, and the app bar's)."""
    return f"Modu — {base.name}"


def offline_solara(title: str | None = None) -> None:
    """Keep Solara's telemetry off; ``modu app`` also skips its version check.

    Args:
        title: the title of the page Solara serves before the page itself renders (its
            default is "Solara ☀️"); both settings are read when Solara is first imported.
    """
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")
    if title is not None:
        os.environ["SOLARA_THEME_TITLE"] = title


def _fix_solara_router_script() -> None:
    """Give Solara's router its script as ``module.exports = {...}`` (solara 1.58 misspells it ``modules.export``).

    With the misspelling the browser's console warns "Failed to evaluate Vue
    script and find module.exports" on every page load (the router works
    through ipyvue's fallback). Only a Solara whose file has the misspelling
    is changed; the fixed text is passed to each router as its template.
    """
    from solara.widgets.widgets import Navigator

    if getattr(Navigator, "_modu_template", None) or not Navigator.template_file:
        return
    text = Path(Navigator.template_file).read_text(encoding="utf-8")
    if "modules.export =" not in text:
        return
    Navigator._modu_template = text.replace("modules.export =", "module.exports =", 1)
    Navigator.template_file = None
    plain_init = Navigator.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807 (a method, set below)
        kwargs.setdefault("template", Navigator._modu_template)
        plain_init(self, *args, **kwargs)

    Navigator.__init__ = __init__


PLAY_INTERVAL_MS = 200
"""Pause between steps while playing, in milliseconds (the page's starting speed)."""


def make_page(scenario: str | Path | Scenario | None = None) -> Any:
    """The page of a scenario, as a Solara element (display it in Jupyter, or serve it).

    Mesa's controller steps and rebuilds the model (Reset, ▶, Step); the
    layout, sliders and views are the page's own: the sliders show their
    values, and *Keep as reference* holds the current run's settings so the
    plots draw that run dashed and a table lists the differences.

    Args:
        scenario: a scenario file or a validated scenario (default: ``scenarios/baseline.yaml``).

    Each browser session (or notebook display) gets its own model.
    """
    offline_solara()
    # Mesa 3.3's ComponentsView trips Solara's hook check at import; the early return it flags is harmless.
    warnings.filterwarnings("ignore", message=r".*ComponentsView: `use_state` found despite early return", category=UserWarning)
    import solara
    from mesa.visualization.solara_viz import ModelController
    from mesa.visualization.utils import update_counter

    _fix_solara_router_script()

    base = scenario if isinstance(scenario, Scenario) else load_scenario(scenario or DEFAULT_SCENARIO)
    params = app_parameters(base)
    sliders = {k: v for k, v in params.items() if isinstance(v, dict)}
    defaults = {k: (v["value"] if isinstance(v, dict) else v) for k, v in params.items()}
    title = page_title(base)

    @solara.component
    def Slider(key: str, values: solara.Reactive[dict[str, Any]]) -> Any:  # noqa: N802 (Solara names components like classes)
        options = sliders[key]
        widget = solara.SliderInt if options["type"] == "SliderInt" else solara.SliderFloat

        def moved(value: float) -> None:
            if not same_on_slider(value, values.value[key], options["step"]):
                values.set({**values.value, key: value})

        return widget(slider_label(options, values.value[key]), value=values.value[key], on_value=moved,
                      min=options["min"], max=options["max"], step=options["step"])

    @solara.component
    def Views(model: AppModel, reference: AppModel | None) -> Any:  # noqa: N802
        update_counter.get()  # Mesa's controller bumps it after every step
        views(model, reference)

    @solara.component
    def Page() -> Any:  # noqa: N802
        model = solara.use_reactive(solara.use_memo(lambda: AppModel(**defaults), []))
        values = solara.use_reactive(defaults)  # what Reset builds the next model from
        reference = solara.use_reactive(None)
        play_interval = solara.use_reactive(PLAY_INTERVAL_MS)
        one_step, no_threads = solara.use_reactive(1), solara.use_reactive(False)
        solara.Title(title)
        with solara.AppBar():
            solara.AppBarTitle(title)
        with solara.Sidebar(), solara.Column():
            with solara.Card("Run"):
                ModelController(model, model_parameters=values, play_interval=play_interval,
                                render_interval=one_step, use_threads=no_threads)
                solara.SliderInt(f"pause between steps when playing = {play_interval.value} ms", value=play_interval,
                                 min=10, max=1000, step=10)
                with solara.Row():
                    solara.Button("Keep as reference", color="secondary",
                                  on_click=lambda: reference.set(reference_run(model.value)))
                    solara.Button("Clear reference", disabled=reference.value is None, on_click=lambda: reference.set(None))
            with solara.Card("Parameters (Reset applies them)"):
                for key in sliders:
                    Slider(key, values)
        Views(model.value, reference.value)

    return Page()
