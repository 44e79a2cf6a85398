"""Experiments: designs run on executors (ensembles, sweeps, comparisons), like EMA Workbench's em_framework.

No click and no report writing: results come back as objects (an
:class:`~sim.experiments.ensemble.Ensemble`, a sweep's runs in its store, a
:class:`~sim.experiments.compare.Comparison`) that :mod:`sim.reporting` writes.

- :mod:`~sim.experiments.ensemble` — replications of one scenario (common random numbers by replication);
- :mod:`~sim.experiments.compare` — scenarios side by side, paired by replication (``modu compare``);
- :mod:`~sim.experiments.sweep` — grids and Latin hypercubes of scenario fields (``modu sweep``), into
  a resumable :mod:`~sim.experiments.store`;
- :mod:`~sim.experiments.patching` — designs that vary only numbers the compiled model takes directly,
  patched into one compiled model (sweeps, calibration proposals, sensitivity samples);
- :mod:`~sim.experiments.executors` — where runs go (serial, processes, Dask);
- :mod:`~sim.experiments.guards` — refusing runs too large for the machine before they start.

The public names below are imported on first use.
"""

from sim._lazy import lazy_getattr

_PUBLIC = {
    **dict.fromkeys(["Ensemble", "replication_seed", "run_draws", "run_ensemble"], "sim.experiments.ensemble"),
    **dict.fromkeys(["NATIONAL", "Arm", "Comparison", "outcomes", "plan_comparison", "run_comparison"],
                    "sim.experiments.compare"),
    "ExperimentError": "sim.experiments.errors",
    **dict.fromkeys(["band", "lock_in"], "sim.model.metrics"),  # statistics over replications, re-exported here
}
"""Public names and the module defining each."""

__getattr__ = lazy_getattr(__name__, _PUBLIC)

__all__ = sorted(_PUBLIC)
