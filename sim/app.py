"""The interactive page for students: Mesa's SolaraViz over a scenario.

Sliders set the network effect α, the congestion γ (with a capacity for every
city), the model's seed and each city's annual budget and lever weights; the
page shows firms per city, their shares and a map of cities sized by firms,
live as the model steps. Move sliders, then press *Reset* to rebuild the
model with them (Mesa's controls: Reset, ▶ play/pause, Step).

Launch it with ``modu app [SCENARIO]`` (serves on http://127.0.0.1:8765 by
default), or in Jupyter::

    from sim.app import page
    page                                # the baseline scenario

    from sim.app import make_page
    make_page("scenarios/baseline.yaml")

The page needs the ``app`` extra (``pip install -e ".[app]"``): Solara and
its widgets, pinned to versions that serve their front end from the
installed packages, so the page works without internet. This module imports
them only when a page is asked for; :class:`AppModel` and :func:`app_parameters`
work without them.
"""

from __future__ import annotations

import html
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from sim.model import ModuModel
from sim.model.parameters import LEVERS
from sim.scenario import Scenario, load_scenario, validate
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

    SolaraViz rebuilds the model from keyword arguments when *Reset* is
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
        super().__init__(scenario, rng=scenario.seed if seed is None else seed, record_events=False)
        self.base = base


def slider_scenario(base: Scenario, network_effect: float | None = None, congestion: float | None = None,
                    capacity: float = 0, city_values: dict[str, float] | None = None) -> Scenario:
    """The base scenario with slider values applied (see :class:`AppModel` for their meaning)."""
    data = base.resolved()
    params = data["parameters"]
    if network_effect is not None:
        params["network_effect"] = float(network_effect)
    if congestion is not None:
        params["congestion"] = float(congestion)
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
    """SolaraViz ``model_params`` for a scenario: the fixed base and one slider per input.

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


# ---------------------------------------------------------------- the page (needs the app extra)
def _tables(model: ModuModel) -> dict[str, Any]:
    """The model's history as the tables :mod:`sim.reporting.figures` draws (one replication, number 0)."""
    return {name: getattr(model.history, f"{name}_frame")().assign(replication=0)
            for name in ("firms", "cities", "metrics")}


FIGURE_SIZE = (6.4, 4.2)
"""Size of the page's figures in inches: one grid cell of the page each."""


def _figure(draw: Any, model: ModuModel, title: str, over_time: bool = True) -> Any:
    """A figure of :mod:`sim.reporting.figures` for the page, retitled for one run, as a Solara element.

    Args:
        draw: a :mod:`sim.reporting.figures` function of the tables.
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


def counts_view(model: ModuModel) -> Any:
    """Live plot: firms per city over time."""
    from sim.reporting.figures import plot_counts

    return _figure(plot_counts, model, "Firms per city")


def shares_view(model: ModuModel) -> Any:
    """Live plot: each city's share of all firms over time."""
    from sim.reporting.figures import plot_shares

    return _figure(plot_shares, model, "Shares of firms")


def map_view(model: ModuModel) -> Any:
    """Live map: cities at their coordinates, sized by firms now."""
    from sim.reporting.figures import plot_map

    coordinates = {c.name: (c.lat, c.lon) for c in model.spec.cities if c.lat is not None and c.lon is not None}
    return _figure(lambda tables: plot_map(tables, coordinates, figsize=FIGURE_SIZE), model, "Firms by city",
                   over_time=False)


def state_view(model: ModuModel) -> Any:
    """Text panel: time, leader, concentration, the parameters in use and each city's policy."""
    import solara

    last = model.history.metrics_frame().iloc[-1]
    p = model.params
    rows = []
    for city in model.cities:
        capacity = "none" if city.spec.capacity is None else f"{city.spec.capacity:,.0f}"
        cells = [city.name, f"{city.firms:,}", capacity, f"{city.budget:g}", *(f"{s:.0%}" for s in city.allocation)]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("city", "firms", "capacity", "budget", *LEVERS))
    text = (
        f"<p><b>{model.year:.2f}</b> (step {model.steps} of {model.n_steps}) · leader <b>{html.escape(last.leader)}</b>"
        f" · top-1 share {last.top1_share:.1%} · HHI {last.hhi:.3f}</p>"
        f"<p>In use: α = {p.network_effect:.3g}, γ = {p.congestion:.3g}, κ = {p.network_seed:.3g}</p>"
        f"<table style='border-spacing: 14px 2px; text-align: right'><tr>{head}</tr>{''.join(rows)}</table>"
        "<p>Budgets in 100 M yuan a year; lever columns are the allocation shares.<br>"
        "Move the sliders, then press <b>Reset</b> to rebuild the model with them.</p>"
    )
    return solara.HTML(tag="div", unsafe_innerHTML=text)


def _offline_solara() -> None:
    """Keep Solara's telemetry off (read when Solara is first imported); ``modu app`` also skips its version check."""
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")


def make_page(scenario: str | Path | Scenario | None = None) -> Any:
    """The SolaraViz page of a scenario, as a Solara element (display it in Jupyter, or serve it).

    Args:
        scenario: a scenario file or a validated scenario (default: ``scenarios/baseline.yaml``).

    Each browser session (or notebook display) gets its own model.
    """
    _offline_solara()
    # Mesa 3.3's ComponentsView trips Solara's hook check at import; the early return it flags is harmless.
    warnings.filterwarnings("ignore", message=r".*ComponentsView: `use_state` found despite early return", category=UserWarning)
    import solara
    from mesa.visualization import SolaraViz

    base = scenario if isinstance(scenario, Scenario) else load_scenario(scenario or DEFAULT_SCENARIO)
    params = app_parameters(base)
    defaults = {k: (v["value"] if isinstance(v, dict) else v) for k, v in params.items()}
    components = [counts_view, shares_view, map_view, state_view]

    @solara.component
    def Page() -> Any:  # noqa: N802 (Solara names components like classes)
        model = solara.use_memo(lambda: AppModel(**defaults), [])
        return SolaraViz(model, components=components, model_params=params, name=f"Modu — {base.name}")

    return Page()


def __getattr__(name: str) -> Any:
    """``page`` (and ``Page``, what ``solara run sim.app`` looks for): the page of ``$MODU_APP_SCENARIO`` or the baseline."""
    if name in ("page", "Page"):
        element = make_page(os.environ.get(SCENARIO_ENV) or None)
        globals()["page"] = globals()["Page"] = element
        return element
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["AppModel", "app_parameters", "make_page", "slider_scenario", "policy_cities"]
