"""Writing a run's folder: its tidy tables, figures and manifest (``modu run``, ``modu rerun``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.experiments.ensemble import SEED_RULE, TABLES, Ensemble
from sim.reporting.files import manifest, output_folder, write_json, write_tables


def write_run(ensemble: Ensemble, out: Path, figures: bool = True, wall_time: float | None = None,
              source: str | None = None, **fields: Any) -> list[str]:
    """Write a run's folder: the four CSVs, figures (PNG and SVG) and ``manifest.json`` last.

    Args:
        ensemble: the finished replications.
        out: the output folder (created if needed).
        figures: also draw the figures into ``out/figures``.
        wall_time: seconds the simulation took (recorded in the manifest).
        source: the scenario file the run came from.
        fields: further manifest entries (e.g. ``rerun_of``).

    Returns:
        The files written, relative to ``out``.
    """
    from sim.reporting.figures import save_run_figures  # matplotlib only when figures are drawn

    scenario = ensemble.scenario
    with output_folder(out):
        written = write_tables(out, ensemble.tables, TABLES)
        if figures:
            from sim.inference.data import documented_counts  # the documented points drawn on the counts figure

            coordinates = {c.name: (c.lat, c.lon) for c in scenario.cities if c.lat is not None and c.lon is not None}
            for path in save_run_figures(ensemble.tables, out / "figures", coordinates, documented_counts(scenario)):
                written.append(str(path.relative_to(out)))
        write_json(out / "manifest.json", manifest(
            out, written, scenario_file=source, scenario=scenario.resolved(), scenario_hash=scenario.digest(),
            seed=ensemble.seed, replications=ensemble.replications, spawn_keys=ensemble.spawn_keys(),
            seed_rule=SEED_RULE, executor=ensemble.executor, wall_time_s=wall_time, complete=True, **fields))
    return written + ["manifest.json"]
