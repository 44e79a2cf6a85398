"""The input layer: the scenario schema, safe loading with ``extends`` and calibration, and derived variants.

Imports only :mod:`sim.model` (for the parameters' definitions).

- :mod:`~sim.scenario.schema` — the scenario file's fields (pydantic), with units;
- :mod:`~sim.scenario.loading` — safe YAML, ``extends``, the calibration a scenario names, where each
  value comes from (:func:`~sim.scenario.loading.trace`); :mod:`~sim.scenario.merged` writes it;
- :mod:`~sim.scenario.paths` — dotted paths and :func:`~sim.scenario.paths.derive`, the one way to make a
  variant; :mod:`~sim.scenario.factors` — one varied input (a sweep's range, a sensitivity factor, a prior);
- :mod:`~sim.scenario.resources` — the shipped scenarios and calibrations by name.
"""

from sim.scenario.errors import (
    LookAlikeCityWarning,
    ScenarioError,
    ScenarioWarning,
    ShippedFileWarning,
    UncalibratedWarning,
)
from sim.scenario.factors import Factor
from sim.scenario.loading import load_raw, load_scenario, merge, trace
from sim.scenario.merged import merged_yaml
from sim.scenario.paths import apply_overrides, derive, set_path  # also registers keyword overrides for ModuModel
from sim.scenario.reading import validate
from sim.scenario.resources import CALIBRATION_DIR, SCENARIOS_DIR, scenario_path, shipped_calibrations, shipped_scenarios
from sim.scenario.schema import EVENT_ACTIONS, Allocation, Anchor, City, Event, Policy, Scenario, Time, digest_of

__all__ = [
    "CALIBRATION_DIR", "EVENT_ACTIONS", "SCENARIOS_DIR", "Allocation", "Anchor", "City", "Event", "Factor",
    "LookAlikeCityWarning", "Policy",
    "Scenario", "ScenarioError", "ScenarioWarning", "ShippedFileWarning", "Time", "UncalibratedWarning",
    "apply_overrides", "derive", "digest_of", "load_raw", "load_scenario", "merge", "merged_yaml", "scenario_path",
    "set_path", "shipped_calibrations", "shipped_scenarios", "trace", "validate",
]
