"""Experiments: designs run on executors (ensembles, sweeps, comparisons), like EMA Workbench's em_framework.

No click and no report writing: results come back as objects (an
:class:`~sim.experiments.ensemble.Ensemble`, a sweep's runs in its store, a
:class:`~sim.experiments.compare.Comparison`) that :mod:`sim.reporting` writes.
"""
