"""Modu: an agent-based simulation of cities competing for the AI industry.

The public API for notebooks and scripts is what ``sim`` and each subpackage export
(their ``__all__``), all of it listed in docs/api.md; import from a package, never
from its modules::

    from sim import load_scenario, ModuModel
    scenario = load_scenario("scenarios/baseline.yaml")
    model = ModuModel(scenario, rng=1)
    model.run()
    model.history.firms_frame()

    from sim.experiments import run_comparison
    from sim.policy import plan_optimisation, optimise

The package is layered, each layer importing only those before it:
:mod:`sim.model` (the model of docs/ODD.md) → :mod:`sim.scenario` (inputs) →
:mod:`sim.experiments` (ensembles, sweeps, comparisons on executors) →
:mod:`sim.inference` (calibration, draws, forecasts, sensitivity) →
:mod:`sim.policy` (optimise, the subsidy race, discovery, robustness) →
:mod:`sim.reporting` (files, figures, reports) → :mod:`sim.app` (the page) →
:mod:`sim.cli`. :mod:`sim.analysis` holds the generic algorithms (PRIM, games on
grids, the simplex, an expression language, ABC-SMC) and imports nothing of Modu.
CONTRIBUTING.md says where each rule and each question lives.
"""

from importlib.metadata import PackageNotFoundError, version

from sim._lazy import lazy_getattr

try:
    __version__ = version("modu")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_PUBLIC = {
    "ModuModel": "sim.model",
    "Scenario": "sim.scenario",
    "ScenarioError": "sim.scenario",
    "derive": "sim.scenario",
    "load_scenario": "sim.scenario",
    "run_ensemble": "sim.experiments",
}
"""Public names and the module defining each; imported on first use, so ``import sim`` stays light."""


__getattr__ = lazy_getattr(__name__, _PUBLIC)

__all__ = [*_PUBLIC, "__version__"]
