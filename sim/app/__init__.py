"""The interactive page for students: a scenario's model with sliders, live plots and a reference run.

Sliders (each showing its value) set the network effect α, the congestion γ
(with a capacity for every city), the model's seed and each city's annual
budget and lever weights; the page shows firms per city (documented counts as
dots), their shares, a map of cities sized by firms and the state of the run,
live as the model steps. The charts are drawn in the browser: after a step the
server sends their numbers, not pictures, so many pages can share one server.
Move sliders, then press *Reset* to rebuild the model with them (Mesa's
controller: Reset, ▶ play/pause, Step). *Keep as reference* holds the current
run: the charts then draw it dashed beside the current one and a table lists
how the two differ at the current step.

Launch it with ``modu app [SCENARIO]`` (serves on http://127.0.0.1:8765 by
default), or in Jupyter::

    from sim.app import page
    page                                # the baseline scenario

    from sim.app import make_page
    make_page("scenarios/baseline.yaml")

The page needs the ``app`` extra (``pip install "modu[app]"``, or
``pip install -e ".[app]"`` in a checkout): Solara and its widgets, pinned to
versions that serve their front end from the installed packages, so the page
works without internet. They are imported only when a page is asked for;
:class:`~sim.app.model.AppModel` and :func:`~sim.app.controls.app_parameters`
work without them.

- :mod:`~sim.app.controls` — the sliders and the scenario their values make;
- :mod:`~sim.app.model` — the model behind the page and the reference run;
- :mod:`~sim.app.charts` — the charts as ECharts options (plain data, no app extra needed);
- :mod:`~sim.app.widget` — the one widget in which the browser draws the charts and shows the texts
  (``dashboard.vue``): a step sends it one message;
- :mod:`~sim.app.views` — the live charts and text panels, and their layout;
- :mod:`~sim.app.ui` — the page (Mesa's controller, sliders, views) and Solara's fixes.
"""

import os
from typing import Any

from sim._lazy import lazy_getattr

SCENARIO_ENV = "MODU_APP_SCENARIO"
"""Environment variable naming the scenario file of the module-level ``page`` (set by ``modu app``)."""

_PUBLIC = {
    **dict.fromkeys(["app_parameters", "slider_scenario"], "sim.app.controls"),
    **dict.fromkeys(["AppModel", "reference_differences", "reference_run", "setting_changes"], "sim.app.model"),
    "make_page": "sim.app.ui",
}
"""Public names and the module defining each; imported on first use (Mesa's model only when asked for)."""

_public = lazy_getattr(__name__, _PUBLIC)


def __getattr__(name: str) -> Any:
    """``page`` (and ``Page``, what ``solara run sim.app`` looks for): the page of ``$MODU_APP_SCENARIO`` or the
    baseline, made on first use; any other public name from its module.
    """  # noqa: D205
    if name in ("page", "Page"):
        from sim.app.ui import make_page

        element = make_page(os.environ.get(SCENARIO_ENV) or None)
        globals()["page"] = globals()["Page"] = element
        return element
    return _public(name)


__all__ = sorted([*_PUBLIC, "page"])
