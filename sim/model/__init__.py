"""The model that docs/ODD.md describes: city and firm agents, their rules, and what is recorded.

Imports nothing above it: a scenario reaches the model as a validated object
(:class:`sim.scenario.Scenario`), read by attribute. The names below are
imported on first use, so reading a parameter's definition does not load Mesa.
"""
import sim._progress  # noqa: F401  (before Mesa imports tqdm.auto: see there)
from sim._lazy import lazy_getattr

_PUBLIC = {
    "FLOW_KINDS": "sim.model.history",
    "History": "sim.model.history",
    "StepRecord": "sim.model.history",
    "ModuModel": "sim.model.model",
    "LEVERS": "sim.model.parameters",
    "Parameters": "sim.model.parameters",
}


__getattr__ = lazy_getattr(__name__, _PUBLIC)

__all__ = list(_PUBLIC)
