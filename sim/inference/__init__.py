"""Inference: calibration by ABC-SMC against the documented data, and sensitivity analysis (SALib).

:mod:`~sim.inference.data` reads the targets and priors, :mod:`~sim.inference.problem`
states the Modu calibration problem and runs ABC-SMC, :mod:`~sim.inference.sensitivity`
computes Sobol' and Morris indices. Writing reports is :mod:`sim.reporting`'s.
"""
