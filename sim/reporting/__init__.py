"""Reporting: everything that writes files. Atomic files and manifests, figures, and writers that format result objects.

Imported by nothing below it: the model, scenarios, experiments, inference and policy
design return objects; these modules only turn them into CSV, JSON, figures and
markdown, and never run a simulation. :mod:`~sim.reporting.figures` draws the run's
figures, :mod:`~sim.reporting.text` is the one number style of every report, and each
command's folder has its writer (:mod:`~sim.reporting.run`, ``.compare``, ``.sweep``,
``.calibration``, ``.sensitivity``, ``.forecast``, ``.policy``, ``.discover``,
``.rerun``), on :mod:`~sim.reporting.files`' atomic files and manifests.

The public names below are imported on first use (matplotlib only when a figure is drawn).
"""

from sim._lazy import lazy_getattr

_PUBLIC = {
    "write_calibration": "sim.reporting.calibration",
    **dict.fromkeys(["MAX_LINES", "growth_accounting", "plot_counts", "plot_flows", "plot_growth_accounting",
                     "plot_lock_in", "plot_map", "plot_shares", "plot_spending"], "sim.reporting.figures"),
    "draw_map": "sim.reporting.maps",
    **dict.fromkeys(["race_summary", "recommendation"], "sim.reporting.policy"),
    **dict.fromkeys(["count", "estimate", "interval_name", "markdown_table", "number", "percent", "percentile_name",
                     "signed", "span"], "sim.reporting.text"),
}
"""Public names and the module defining each."""

__getattr__ = lazy_getattr(__name__, _PUBLIC)

__all__ = sorted(_PUBLIC)
