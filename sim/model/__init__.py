"""The model that docs/ODD.md describes: city and firm agents, their rules, and what is recorded.

Imports nothing above it: a scenario reaches the model as a validated object
(:class:`sim.scenario.Scenario`), read by attribute.
"""

from sim.model.history import FLOW_KINDS, History, StepRecord
from sim.model.model import ModuModel
from sim.model.parameters import LEVERS, Parameters

__all__ = ["FLOW_KINDS", "LEVERS", "History", "ModuModel", "Parameters", "StepRecord"]
