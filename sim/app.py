"""The interactive page for students: a scenario's model with sliders, live plots and a reference run.

Sliders (each showing its value) set the network effect α, the congestion γ
(with a capacity for every city), the model's seed and each city's annual
budget and lever weights; the page shows firms per city, their shares, a map
of cities sized by firms and the state of the run, live as the model steps.
Move sliders, then press *Reset* to rebuild the model with them (Mesa's
controller: Reset, ▶ play/pause, Step). *Keep as reference* holds the current
run: the plots then draw it dashed beside the current one and a table lists
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
works without internet. This module imports them only when a page is asked
for; :class:`AppModel` and :func:`app_parameters` work without them.
"""

from __future__ import annotations

import html
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.model import ModuModel
from sim.model.parameters import LEVERS, Parameters
from sim.scenario import Scenario, load_scenario, validate
from sim.scenario.paths import set_path
from sim.scenario.resources import SCENARIOS_DIR

DEFAULT_SCENARIO = SCENARIOS_DIR / "baseline.yaml"
"""The scenario the page shows when none is given."""

SCENARIO_ENV = "MODU_APP_SCENARIO"
"""Environment variable naming the scenario file of the module-level ``page`` (set by ``modu app``)."""

MAX_BUDGET = 200
"""Upper end of the budget sliders, 100 M yuan per year (a slider range, not a model figure)."""


def _key(what: str, city: str) -> str:
    """The keyword of a per-city slider, e.g. ``budget__Beijing`` or ``compute__Beijing``."""
    return f"{what}__{city}"


def policy_cities(base: Scenario) -> list[str]:
    """The cities that get policy sliders: every city that is not a pool."""
    return [c.name for c in base.cities if not c.pool]


class AppModel(ModuModel):
    """A :class:`~sim.model.ModuModel` built from slider values over a base scenario.

    The page (Mesa's controller) rebuilds the model from keyword arguments when *Reset* is
    pressed; this class turns them into a scenario: the base scenario with
    the given network effect, congestion, capacity and per-city policies.
    Arguments left out keep the base scenario's values.

    Args:
        base: the scenario the sliders modify (default: ``scenarios/baseline.yaml``).
        seed: seed of the model's random stream (default: the scenario's ``seed``).
        network_effect: α, utility per log-firm.
        congestion: γ, utility per unit of load N/capacity.
        capacity: firms at which a non-pool city's load is 1, in thousands;
            0 keeps each city's capacity from the scenario (none = no congestion).
        **kwargs: per non-pool city ``budget__<city>`` (annual budget, 100 M yuan)
            and ``compute__<city>``, ``data__<city>``, ``anchor__<city>`` (lever
            weights ≥ 0, normalised to the allocation shares; all zero = equal shares).

    Raises:
        TypeError: for a keyword that is not a slider of this scenario.
        sim.scenario.ScenarioError: if the values make an invalid scenario.
    """

    def __init__(self, base: Scenario | None = None, seed: int | None = None, network_effect: float | None = None,
                 congestion: float | None = None, capacity: float = 0, **kwargs: float):
        base = base if base is not None else load_scenario(DEFAULT_SCENARIO)
        scenario = slider_scenario(base, network_effect=network_effect, congestion=congestion,
                                   capacity=capacity, city_values=kwargs)
        seed = scenario.seed if seed is None else seed
        super().__init__(scenario, rng=seed, record_events=False)
        self.base = base
        given = {"network_effect": network_effect, "congestion": congestion, "capacity": capacity, **kwargs}
        self.slider_values: dict[str, float] = {
            **{key: options["value"] for key, options in app_parameters(base).items() if isinstance(options, dict)},
            **{key: value for key, value in given.items() if value is not None}, "seed": seed}
        """Every slider's value for this model (the ones not given at the base scenario's value)."""


def slider_scenario(base: Scenario, network_effect: float | None = None, congestion: float | None = None,
                    capacity: float = 0, city_values: dict[str, float] | None = None) -> Scenario:
    """The base scenario with slider values applied (see :class:`AppModel` for their meaning)."""
    data = base.resolved()
    for name, value in (("network_effect", network_effect), ("congestion", congestion)):
        if value is not None:
            set_path(data, f"parameters.{name}", float(value))
    sliders = {_key(what, name) for name in policy_cities(base) for what in ("budget", *LEVERS)}
    unknown = sorted(set(city_values or {}) - sliders)
    if unknown:
        raise TypeError(f"unknown slider {unknown[0]!r}; this scenario's city sliders are {sorted(sliders)}")
    values = city_values or {}
    for city in data["cities"]:
        if city["pool"]:
            continue
        name = city["name"]
        if capacity:
            city["capacity"] = float(capacity) * 1000
        policy = city["policy"] or {"budget": 0.0, "strategy": "fixed"}
        current = policy.get("allocation") or dict.fromkeys(LEVERS, 1 / len(LEVERS))
        budget = float(values.get(_key("budget", name), policy["budget"]))
        shown = dict(zip(LEVERS, slider_weights(tuple(current[lever] for lever in LEVERS)), strict=True))
        weights = np.array([float(values.get(_key(lever, name), shown[lever])) for lever in LEVERS])
        if budget == policy["budget"] and np.array_equal(weights, list(shown.values())):
            continue  # sliders at the scenario's values: keep its policy exactly
        shares = weights / weights.sum() if weights.sum() > 0 else np.full(len(LEVERS), 1 / len(LEVERS))
        policy["budget"] = budget
        policy["allocation"] = dict(zip(LEVERS, shares.tolist(), strict=True))
        city["policy"] = policy
    return validate(data, f"{base.name} (page sliders)")


def slider_weights(allocation: tuple[float, ...]) -> list[int]:
    """The lever-weight sliders' positions (0-100) for an allocation's shares."""
    return [round(100 * share) for share in allocation]


def app_parameters(base: Scenario) -> dict[str, Any]:
    """The page's sliders for a scenario (in the form of Mesa's ``model_params``): the fixed base and one slider per input.

    Slider defaults are the scenario's own values, so the page opens on the
    scenario as written (one run, seeded with the scenario's ``seed`` when it is below 1000).
    """
    p = base.parameters
    params: dict[str, Any] = {
        "base": base,
        "network_effect": {"type": "SliderFloat", "label": "network effect α", "value": p.network_effect,
                           "min": 0.0, "max": max(2.0, p.network_effect), "step": 0.05},
        "congestion": {"type": "SliderFloat", "label": "congestion γ", "value": p.congestion,
                       "min": 0.0, "max": max(5.0, p.congestion), "step": 0.1},
        "capacity": {"type": "SliderInt", "label": "capacity, 1000 firms per city",
                     "value": 0, "min": 0, "max": 500, "step": 10},
        "seed": {"type": "SliderInt", "label": "seed", "value": base.seed % 1000, "min": 0, "max": 999, "step": 1},
    }
    for city in base.cities:
        if city.pool:
            continue
        budget = city.policy.budget if city.policy else 0.0
        allocation = city.policy.allocation.as_tuple() if city.policy else (1 / 3,) * len(LEVERS)
        params[_key("budget", city.name)] = {
            "type": "SliderFloat", "label": f"{city.name}: budget, 100 M yuan/year", "value": float(budget),
            "min": 0.0, "max": float(max(MAX_BUDGET, budget)), "step": 1.0}
        for lever, weight in zip(LEVERS, slider_weights(allocation), strict=True):
            params[_key(lever, city.name)] = {
                "type": "SliderInt", "label": f"{city.name}: {lever} weight", "value": weight,
                "min": 0, "max": 100, "step": 5}
    return params


# ---------------------------------------------------------------- the reference run (no app extra needed)
def reference_run(model: AppModel) -> AppModel:
    """The whole run of a page model's settings: a new model with the same slider values, run to the end.

    The model is seeded, so this is the run the page shows, step for step, and
    also its future: the page draws all of it dashed while the current run grows.
    """
    reference = AppModel(model.base, **model.slider_values)
    reference.run()
    return reference


def setting_changes(reference: AppModel, current: AppModel) -> list[tuple[str, Any, Any]]:
    """The sliders whose values differ between two page models: ``(label, reference value, current value)``."""
    params = app_parameters(current.base)
    return [(params[key]["label"], reference.slider_values[key], value)
            for key, value in current.slider_values.items() if reference.slider_values[key] != value]


def reference_differences(reference: AppModel, current: AppModel) -> pd.DataFrame:
    """Each city's firms and share in the current run and the reference run at the current run's step.

    Returns:
        One row per city (in the scenario's order): ``firms``, ``reference firms``,
        ``difference`` (firms), ``share``, ``reference share`` and ``share difference``
        (fractions of all firms).
    """
    step = current.steps

    def totals(model: AppModel) -> pd.Series:
        firms = model.history.firms_frame()
        return firms[firms.step == step].groupby("city", sort=False)["firms"].sum()

    now, then = totals(current), totals(reference)
    table = pd.DataFrame({"firms": now, "reference firms": then.reindex(now.index)})
    table["difference"] = table["firms"] - table["reference firms"]
    table["share"] = table["firms"] / table["firms"].sum()
    table["reference share"] = table["reference firms"] / table["reference firms"].sum()
    table["share difference"] = table["share"] - table["reference share"]
    return table


# ---------------------------------------------------------------- the page (needs the app extra)
def _tables(model: ModuModel) -> dict[str, Any]:
    """The model's history as the tables :mod:`sim.reporting.figures` draws (one replication, number 0)."""
    return {name: getattr(model.history, f"{name}_frame")().assign(replication=0)
            for name in ("firms", "cities", "metrics")}


FIGURE_SIZE = (6.4, 4.2)
"""Size of the page's figures in inches: one grid cell of the page each."""

REFERENCE_STYLE = {"linestyle": "--", "linewidth": 1.4}
"""How the reference run is drawn over the current one."""


def _figure(draw: Any, model: ModuModel, title: str, over_time: bool = True) -> Any:
    """A figure of :mod:`sim.reporting.figures` for the page, retitled for one run, as a Solara element.

    Args:
        draw: a :mod:`sim.reporting.figures` function of the tables, or a function of the tables
            that also draws more on the figure.
        model: the page's model.
        title: the figure's title (the current year is added).
        over_time: the x axis is time; fix it to the scenario's span so the lines grow across it.
    """
    import matplotlib.pyplot as plt
    import solara

    fig = draw(_tables(model))
    label = f"{title} — {model.year:.2f}"
    if fig.get_suptitle():  # small multiples: the figure's title, not a panel's; they keep their own size
        fig.suptitle(label, fontsize=10)
    else:
        fig.axes[0].set_title(label)
        fig.set_size_inches(*FIGURE_SIZE)
    if over_time:
        for ax in fig.axes:
            ax.set_xlim(model.spec.time.start, model.spec.time.end)
    plt.close(fig)  # keep pyplot's registry empty; the figure itself is still drawable
    return solara.FigureMatplotlib(fig, format="png", bbox_inches="tight")


def _with_reference(draw: Any, lines: Any, reference: AppModel | None, **legend: Any) -> Any:
    """``draw``, then (with a reference run) its dashed ``lines(ax, reference tables, colours)`` and a legend entry.

    ``legend`` holds the keywords of the figure's legend, to redraw it in place with the new entry.
    """
    if reference is None:
        return draw

    def both(tables: dict[str, Any]) -> Any:
        from matplotlib.lines import Line2D

        from sim.reporting.figures import _cities, _city_colors

        fig = draw(tables)
        ax = fig.axes[0]
        lines(ax, _tables(reference), _city_colors(_cities(tables)))
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles + [Line2D([], [], color="0.3", **REFERENCE_STYLE)], labels + ["reference (dashed)"], **legend)
        return fig

    return both


def counts_view(model: ModuModel, reference: AppModel | None = None) -> Any:
    """Live plot: firms per city over time (and the reference run's, dashed)."""
    from sim.reporting.figures import city_totals, plot_counts

    def dashed(ax: Any, tables: dict[str, Any], colors: dict[str, Any]) -> None:
        totals = city_totals(tables["firms"])
        for city, rows in totals.groupby("city", sort=False):
            ax.plot(rows.year, rows.firms, color=colors[city], **REFERENCE_STYLE)

    return _figure(_with_reference(plot_counts, dashed, reference, fontsize=8, ncol=2), model, "Firms per city")


def shares_view(model: ModuModel, reference: AppModel | None = None) -> Any:
    """Live plot: each city's share of all firms over time (and the reference run's band edges, dashed black)."""
    from sim.reporting.figures import city_totals, plot_shares

    def dashed(ax: Any, tables: dict[str, Any], colors: dict[str, Any]) -> None:
        totals = city_totals(tables["firms"]).pivot(index="year", columns="city", values="firms")
        shares = totals[list(colors)].div(totals.sum(axis=1), axis=0)
        for _, edge in shares.cumsum(axis=1).iloc[:, :-1].items():  # the top edge of each band but the last (1)
            ax.plot(edge.index, edge.values, color="k", **REFERENCE_STYLE)

    legend = {"fontsize": 8, "loc": "center left", "bbox_to_anchor": (1, 0.5)}  # as plot_shares places it
    return _figure(_with_reference(plot_shares, dashed, reference, **legend), model, "Shares of firms")


def map_view(model: ModuModel) -> Any:
    """Live map: cities at their coordinates, sized by firms now."""
    from sim.reporting.figures import plot_map

    coordinates = {c.name: (c.lat, c.lon) for c in model.spec.cities if c.lat is not None and c.lon is not None}
    return _figure(lambda tables: plot_map(tables, coordinates, figsize=FIGURE_SIZE), model, "Firms by city",
                   over_time=False)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    """An HTML table of text cells, right-aligned (cells are escaped)."""
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (f"<table style='border-spacing: 14px 2px; text-align: right'>"
            f"<tr>{''.join(f'<th>{html.escape(h)}</th>' for h in head)}</tr>{cells}</table>")


def _symbols() -> str:
    """What the status line's symbols mean, from the parameters' own documentation."""
    fields = Parameters.model_fields
    parts = []
    for name in ("network_effect", "congestion", "network_seed"):
        extra = fields[name].json_schema_extra
        parts.append(f"{extra['symbol']}: {name.replace('_', ' ')} ({extra['unit']}) — {fields[name].description}")
    return "<br>".join(html.escape(part) for part in parts)


def state_view(model: ModuModel) -> Any:
    """Text panel: time, leader, concentration, the parameters in use (explained) and each city's policy."""
    import solara

    last = model.history.metrics_frame().iloc[-1]
    p = model.params
    rows = []
    for city in model.cities:
        capacity = "none" if city.spec.capacity is None else f"{city.spec.capacity:,.0f}"
        rows.append([city.name, f"{city.firms:,}", capacity, f"{city.budget:g}", *(f"{s:.0%}" for s in city.allocation)])
    text = (
        f"<p><b>{model.year:.2f}</b> (step {model.steps} of {model.n_steps}) · leader <b>{html.escape(last.leader)}</b>"
        f" · top-1 share {last.top1_share:.1%} · HHI {last.hhi:.3f}</p>"
        f"<p>In use: α = {p.network_effect:.3g}, γ = {p.congestion:.3g}, κ = {p.network_seed:.3g} firms</p>"
        f"<p style='font-size: 85%'>{_symbols()}</p>"
        + _html_table(["city", "firms", "capacity", "budget", *LEVERS], rows)
        + "<p>Budgets in 100 M yuan a year; lever columns are the allocation shares.<br>"
        "Move the sliders, then press <b>Reset</b> to rebuild the model with them.</p>"
    )
    return solara.HTML(tag="div", unsafe_innerHTML=text)


def comparison_view(model: AppModel, reference: AppModel | None) -> Any:
    """Text panel: how the current run differs from the reference run, in settings and at the current step."""
    import solara

    if reference is None:
        text = ("<p><b>No reference run yet.</b> Press <b>Keep as reference</b> to hold this run; then move a "
                "slider, press <b>Reset</b> and step: the plots draw the reference dashed and this panel lists "
                "the differences.</p>")
        return solara.HTML(tag="div", unsafe_innerHTML=text)
    changes = setting_changes(reference, model)
    settings = ("; ".join(f"{label}: {before:.4g} → {after:.4g}" for label, before, after in changes)
                or "none (the same settings: the same run)")
    table = reference_differences(reference, model)
    rows = [[city, f"{row.firms:,.0f}", f"{row['reference firms']:,.0f}", f"{row.difference:+,.0f}",
             f"{row.share:.1%}", f"{row['reference share']:.1%}", f"{100 * row['share difference']:+.1f}"]
            for city, row in table.iterrows()]
    text = (f"<p><b>This run against the reference</b> at step {model.steps} ({model.year:.2f})</p>"
            f"<p>Settings changed since the reference: {html.escape(settings)}</p>"
            + _html_table(["city", "firms", "reference", "difference", "share", "reference", "difference, points"], rows))
    return solara.HTML(tag="div", unsafe_innerHTML=text)


def _slider_label(options: dict[str, Any], value: float) -> str:
    """A slider's label with its current value, e.g. ``network effect α = 1.1``."""
    shown = f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{options['label']} = {shown}"


def same_on_slider(reported: float, value: float, step: float) -> bool:
    """Whether a slider's reported value is just ``value`` snapped to the slider's grid of steps.

    The browser's slider snaps its value to ``min + k * step`` as it draws it: a
    calibrated α = 0.729 on a 0.05 grid comes back as 0.75. The page keeps the
    exact value until the slider really moves (by a step, so by more than half a step).
    """
    return abs(reported - value) <= step / 2 + 1e-9


def page_title(base: Scenario) -> str:
    """The page's title, e.g. "Modu — baseline" (the browser tab's, and the app bar's)."""
    return f"Modu — {base.name}"


def _offline_solara(title: str | None = None) -> None:
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
    _offline_solara()
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

        return widget(_slider_label(options, values.value[key]), value=values.value[key], on_value=moved,
                      min=options["min"], max=options["max"], step=options["step"])

    @solara.component
    def Views(model: AppModel, reference: AppModel | None) -> Any:  # noqa: N802
        update_counter.get()  # Mesa's controller bumps it after every step
        with solara.Column():
            with solara.Row():
                counts_view(model, reference)
                shares_view(model, reference)
            comparison_view(model, reference)
            with solara.Row():
                map_view(model)
                state_view(model)

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


def __getattr__(name: str) -> Any:
    """``page`` (and ``Page``, what ``solara run sim.app`` looks for): the page of ``$MODU_APP_SCENARIO`` or the baseline."""
    if name in ("page", "Page"):
        element = make_page(os.environ.get(SCENARIO_ENV) or None)
        globals()["page"] = globals()["Page"] = element
        return element
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["AppModel", "app_parameters", "make_page", "slider_scenario", "policy_cities", "reference_run",
           "reference_differences", "setting_changes"]
