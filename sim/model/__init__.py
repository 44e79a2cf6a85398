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
    # the compiled kernel (sim.model.kernel): one run, many runs, a scenario as its arrays
    "simulate_counts": "sim.model.kernel",
    "simulate_batch": "sim.model.kernel",
    "run_records": "sim.model.kernel",
    "compile_scenario": "sim.model.kernel",
    "CountsModel": "sim.model.kernel",
    # the kernel's logit for arrays (sim.model.utility)
    "entry_utility": "sim.model.utility",
    "entry_probabilities": "sim.model.utility",
    "mover_utility": "sim.model.utility",
    "mover_probabilities": "sim.model.utility",
    "expected_entrants": "sim.model.utility",
    "marginal_firm_gain": "sim.model.utility",
    "lever_stocks": "sim.model.utility",
    "best_levers": "sim.model.utility",
}


__getattr__ = lazy_getattr(__name__, _PUBLIC)

__all__ = list(_PUBLIC)
