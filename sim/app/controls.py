"""The page's controls: one slider per input of a scenario, and the scenario the sliders' values make.

Sliders (each showing its value) set the network effect α, the congestion γ (with a
capacity for every city), the model's seed and each non-pool city's annual budget and lever
weights. Their defaults are the scenario's own values, so the page opens on the scenario as
written. Nothing here needs the app extra.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.model.parameters import LEVERS
from sim.scenario import Scenario, derive

MAX_BUDGET = 200
"""Upper end of the budget sliders, 100 M yuan per year (a slider range, not a model figure)."""


def _key(what: str, city: str) -> str:
    """The keyword of a per-city slider, e.g. ``budget__Beijing`` or ``compute__Beijing``."""
    return f"{what}__{city}"


def policy_cities(base: Scenario) -> list[str]:
    """The cities that get policy sliders: every city that is not a pool."""
    return [c.name for c in base.cities if not c.pool]


def slider_scenario(base: Scenario, network_effect: float | None = None, congestion: float | None = None,
                    capacity: float = 0, city_values: dict[str, float] | None = None) -> Scenario:
    """The base scenario with slider values applied (see :class:`~sim.app.model.AppModel` for their meaning).

    A variant made by :func:`sim.scenario.derive`: a city whose sliders sit at its scenario's values keeps
    its policy exactly (allocation shares are not rounded through the sliders' whole percents).
    """
    sliders = {_key(what, name) for name in policy_cities(base) for what in ("budget", *LEVERS)}
    unknown = sorted(set(city_values or {}) - sliders)
    if unknown:
        raise TypeError(f"unknown slider {unknown[0]!r}; this scenario's city sliders are {sorted(sliders)}")
    values = city_values or {}
    changes: dict[str, Any] = {f"parameters.{name}": float(value) for name, value in
                               (("network_effect", network_effect), ("congestion", congestion)) if value is not None}
    for city in base.cities:
        if city.pool:
            continue
        name = city.name
        if capacity:
            changes[f"cities[{name}].capacity"] = float(capacity) * 1000
        budget_now = city.policy.budget if city.policy else 0.0
        current = city.policy.allocation.as_tuple() if city.policy else (1 / len(LEVERS),) * len(LEVERS)
        budget = float(values.get(_key("budget", name), budget_now))
        shown = dict(zip(LEVERS, slider_weights(current), strict=True))
        weights = np.array([float(values.get(_key(lever, name), shown[lever])) for lever in LEVERS])
        if budget == budget_now and np.array_equal(weights, list(shown.values())):
            continue  # sliders at the scenario's values: keep its policy exactly
        shares = weights / weights.sum() if weights.sum() > 0 else np.full(len(LEVERS), 1 / len(LEVERS))
        changes[f"cities[{name}].policy.budget"] = budget
        changes[f"cities[{name}].policy.allocation"] = dict(zip(LEVERS, shares.tolist(), strict=True))
    return derive(base, changes, f"{base.name} (page sliders)")


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


def slider_label(options: dict[str, Any], value: float) -> str:
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
