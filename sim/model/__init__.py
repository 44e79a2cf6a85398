"""The model that docs/ODD.md describes: city and firm agents, their rules, and what is recorded.

Imports nothing above it: a scenario reaches the model as a validated object
(:class:`sim.scenario.Scenario`), read by attribute. The names below are
imported on first use, so reading a parameter's definition does not load Mesa.
"""

from importlib import import_module
from typing import Any

_PUBLIC = {
    "FLOW_KINDS": "sim.model.history",
    "History": "sim.model.history",
    "StepRecord": "sim.model.history",
    "ModuModel": "sim.model.model",
    "LEVERS": "sim.model.parameters",
    "Parameters": "sim.model.parameters",
}


def __getattr__(name: str) -> Any:
    """The public names of the model layer, imported on first use."""
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_PUBLIC)
