"""The model behind the page: a :class:`~sim.model.ModuModel` built from slider values, and the reference run.

*Keep as reference* holds the current run's settings: :func:`reference_run` runs them to the
end, and :func:`reference_differences` and :func:`setting_changes` say how the current run
differs. Nothing here needs the app extra.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from sim.app.controls import app_parameters, slider_scenario
from sim.model import ModuModel
from sim.scenario import Scenario, load_scenario
from sim.scenario.resources import SCENARIOS_DIR

DEFAULT_SCENARIO = SCENARIOS_DIR / "baseline.yaml"
"""The scenario the page shows when none is given."""


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
        scenario: not used. Mesa 3.5's controller passes, on *Reset*, the model's experiment scenario
            (``mesa.experimental.scenarios.Scenario``, empty here); this model's scenario is ``base``
            with the sliders' values. Mesa 3.3 passes nothing.
        **kwargs: per non-pool city ``budget__<city>`` (annual budget, 100 M yuan)
            and ``compute__<city>``, ``data__<city>``, ``anchor__<city>`` (lever
            weights ≥ 0, normalised to the allocation shares; all zero = equal shares).

    Raises:
        TypeError: for a keyword that is not a slider of this scenario.
        sim.scenario.ScenarioError: if the values make an invalid scenario.
    """

    def __init__(self, base: Scenario | None = None, seed: int | None = None, network_effect: float | None = None,
                 congestion: float | None = None, capacity: float = 0, scenario: object = None, **kwargs: float):
        base = base if base is not None else load_scenario(DEFAULT_SCENARIO)
        variant = slider_scenario(base, network_effect=network_effect, congestion=congestion,
                                  capacity=capacity, city_values=kwargs)
        seed = variant.seed if seed is None else seed
        super().__init__(variant, rng=seed, record_events=False)
        self.base = base
        given = {"network_effect": network_effect, "congestion": congestion, "capacity": capacity, **kwargs}
        self.slider_values: dict[str, float] = {
            **{key: options["value"] for key, options in app_parameters(base).items() if isinstance(options, dict)},
            **{key: value for key, value in given.items() if value is not None}, "seed": seed}
        """Every slider's value for this model (the ones not given at the base scenario's value)."""


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
    now, then = (model.history.steps[step].firms.sum(axis=1) for model in (current, reference))
    table = pd.DataFrame({"firms": now, "reference firms": then}, index=pd.Index(current.history.cities, name="city"))
    table["difference"] = table["firms"] - table["reference firms"]
    table["share"] = table["firms"] / table["firms"].sum()
    table["reference share"] = table["reference firms"] / table["reference firms"].sum()
    table["share difference"] = table["share"] - table["reference share"]
    return table
