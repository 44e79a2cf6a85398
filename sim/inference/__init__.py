"""Inference: calibration by ABC-SMC against the documented data, parameter draws, forecasts, sensitivity (SALib).

- :mod:`~sim.inference.data` — the documented figures (``calibration/data/*.csv``), targets, priors and
  deep uncertainties, and the calibration a scenario names;
- :mod:`~sim.inference.problem` — the Modu calibration problem (summaries, distance), fitted by the
  generic ABC-SMC of :mod:`sim.analysis.abc_smc`; :mod:`~sim.inference.estimates` — the point estimate
  and posterior predictive; :mod:`~sim.inference.identify` — is the network effect identified;
  :mod:`~sim.inference.results` — a finished calibration as tables; :mod:`~sim.inference.readers` —
  an earlier calibration's files read back;
- :mod:`~sim.inference.draws` — parameter draws from a calibration's posterior, its priors or ranges,
  joined to the deep uncertainties (what policy design, comparisons and forecasts run over);
- :mod:`~sim.inference.forecasting` — every city's firms to a scenario's end over those draws;
- :mod:`~sim.inference.sensitivity` — Sobol' and Morris indices.

Writing reports is :mod:`sim.reporting`'s. The public names below are imported on first use.
"""

from sim._lazy import lazy_getattr

_PUBLIC = {
    **dict.fromkeys(["CalibrationFiles", "documented_counts", "load_observations", "load_targets"], "sim.inference.data"),
    **dict.fromkeys(["Draws", "comparison_draws", "parameter_draws"], "sim.inference.draws"),
    **dict.fromkeys(["Forecast", "forecast"], "sim.inference.forecasting"),
    **dict.fromkeys(["ASSUMPTIONS_PATH", "load_assumptions"], "sim.inference.quantities"),
    "InferenceError": "sim.inference.errors",
    **dict.fromkeys(["coverage_table", "leave_one_out", "regime_table", "simulation_based_calibration"],
                    "sim.inference.identify"),
    **dict.fromkeys(["CalibrationResult", "run_calibration"], "sim.inference.results"),
}
"""Public names and the module defining each."""

__getattr__ = lazy_getattr(__name__, _PUBLIC)

__all__ = sorted(_PUBLIC)
