"""Modu: an agent-based simulation of cities competing for the AI industry.

The public API for notebooks and scripts (all of it is listed in docs/api.md)::

    from sim import load_scenario, ModuModel
    scenario = load_scenario("scenarios/baseline.yaml")
    model = ModuModel(scenario, rng=1)
    model.run()
    model.history.firms_frame()
"""

from importlib.metadata import PackageNotFoundError, version

from sim.model import ModuModel
from sim.scenario import Scenario, ScenarioError, load_scenario

try:
    __version__ = version("modu")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["ModuModel", "Scenario", "ScenarioError", "load_scenario", "__version__"]
