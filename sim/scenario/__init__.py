"""The input layer: the scenario schema, safe loading with ``extends`` and calibration, and derived variants.

Imports only :mod:`sim.model` (for the parameters' definitions).
"""

from sim.scenario.errors import ScenarioError
from sim.scenario.loading import load_raw, load_scenario, merge, validate
from sim.scenario.paths import derive  # also registers keyword overrides for ModuModel (sim.model.overrides)
from sim.scenario.schema import EVENT_ACTIONS, Allocation, Anchor, City, Event, Policy, Scenario, Time, digest_of

__all__ = [
    "EVENT_ACTIONS", "Allocation", "Anchor", "City", "Event", "Policy", "Scenario", "ScenarioError", "Time",
    "derive", "digest_of", "load_raw", "load_scenario", "merge", "validate",
]
