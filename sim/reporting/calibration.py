"""What ``modu calibrate`` writes: calibrated.yaml, report.md, figures and the tables behind them.

Every number the report states is in a table of the result object
(:meth:`sim.inference.results.CalibrationResult.tables`), written beside it as
CSV; this module only formats them. Facts about the scenario and the data are
read from the scenario and the targets file.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from sim.analysis.abc_smc import Population
from sim.inference.data import documented_counts
from sim.inference.problem import Problem, assignments
from sim.inference.results import (
    CalibrationResult,
    forecast_cities,
)
from sim.model.metrics import BAND
from sim.reporting.calibration_figures import plot_forecast, plot_marginals, plot_pairs, plot_sbc_ranks, plot_validation
from sim.reporting.calibration_report import report_text
from sim.reporting.calibration_text import CREDIBLE, figure_stem
from sim.reporting.figures import plot_counts
from sim.reporting.files import atomic_write, manifest, output_folder, write_csv, write_json
from sim.reporting.style import save_figure
from sim.reporting.text import (
    number,
    percentile_name,
    span,
)


def _trajectory_tables(problem: Problem, summaries: np.ndarray) -> dict[str, pd.DataFrame]:
    """Yearly city counts of many simulations in the shape :func:`sim.reporting.figures.plot_counts` reads."""
    layout = problem.layout
    firms = layout.firms(summaries)  # [draw, year, city]
    n, Y, C = firms.shape
    frame = pd.DataFrame({
        "replication": np.repeat(np.arange(n), Y * C),
        "year": np.tile(np.repeat(np.array(layout.years, dtype=float), C), n),
        "city": np.tile(np.array(layout.cities), n * Y),
        "firms": firms.ravel(),
    })
    return {"firms": frame, "cities": pd.DataFrame({"city": list(layout.cities)})}


def calibrated_yaml(problem: Problem, point: np.ndarray, table: pd.DataFrame, posterior: Population,
                    wall_time: float) -> str:
    """The text of calibrated.yaml: every value labelled with where it comes from."""
    solved = {f.city for f in problem.fitted if f.quantity == "firms"}
    lines = [
        "# Calibrated quantities: a scenario naming this file in its `calibration:` key takes them for what it does not set.",
        f"# Written by `modu calibrate` on {time.strftime('%Y-%m-%d', time.gmtime())}; see report.md beside it.",
        f"# Method: ABC-SMC, {len(posterior.theta)} particles, final tolerance ε = {posterior.epsilon:.4f}",
        f"# (RMS relative error of the fitted figures), reading of the Shenzhen increment: {problem.reading}.",
        "# Each value: `calibration` = posterior median (90% credible interval), except the constants of cities",
        "# with a fitted count, re-solved so that the scenario's median replication hits the documented",
        "# count given the other medians. 'not constrained' = the posterior is about as wide as the prior.",
        f"# Wall time of the calibration: {wall_time:.0f} s.",
        "parameters:",
    ]
    rows = table.set_index("quantity")
    city_lines: dict[str, list[str]] = {}
    for label, city, fieldname, value in assignments(problem, point):
        row = rows.loc[label]
        interval = f"{CREDIBLE} {span(row.lo, row.hi, lambda x: number(x, 4))}; " + (
            f"{row.verdict} by the data" if not row.reason else f"not interpretable: {row.reason}")
        if city is None:
            lines.append(f"  {fieldname}: {value:.6g}  # calibration: posterior median; {interval}")
            continue
        if fieldname == "firms":
            how = f"{label} at its posterior median {number(row['median'], 4)}, split by the priors file's weights"
            text = f"{value:.0f}"
        else:
            how = ("re-solved to the documented count" if city in solved and label == f"{city}.{fieldname}"
                   else f"posterior median of {label} (no documented count for this city)")
            text = f"{value:.6g}"
        city_lines.setdefault(city, []).append(f"    {fieldname}: {text}  # calibration: {how}; {interval}")
    lines.append("cities:")
    for city, entries in city_lines.items():
        lines.append(f'  "{city}":')
        lines.extend(entries)
    return "\n".join(lines) + "\n"


def write_calibration(out: Path, result: CalibrationResult) -> list[str]:
    """Write calibrated.yaml, report.md, figures/, every table of the result as CSV, and manifest.json.

    Returns:
        The files written, relative to ``out``.
    """
    problem, posterior = result.problem, result.posterior
    tables = result.tables()
    outputs = result.outputs()
    written: list[str] = []
    with output_folder(out):
        atomic_write(out / "calibrated.yaml", lambda h: h.write(calibrated_yaml(
            problem, result.point, tables["posterior"], posterior, result.wall_time)))
        written.append("calibrated.yaml")
        for name, frame in tables.items():
            write_csv(out / f"{name}.csv", frame)
            written.append(f"{name}.csv")
        for name, source in (("priors.yaml", problem.priors_path), ("targets.yaml", problem.targets_path)):
            # the priors and targets travel with the posterior they made
            if source is not None and (out / name).resolve() != source.resolve():
                text = source.read_text(encoding="utf-8")
                atomic_write(out / name, lambda h, text=text: h.write(text))
            if (out / name).is_file():
                written.append(name)
        figures = out / "figures"
        fit = plot_counts(_trajectory_tables(problem, result.sums), documented_counts(problem.scenario, problem.targets))
        title = f"Posterior predictive firms per city (median and {percentile_name(BAND, 'draws')}); dots: documented"
        fit.axes[0].set_title(title) if len(fit.axes) == 1 else fit.suptitle(title)
        paths = save_figure(fit, figures, "fit")
        paths += save_figure(plot_marginals(problem, posterior), figures, "posterior")
        paths += save_figure(plot_pairs(problem, posterior), figures, "pairs")
        if "sbc_ranks" in tables:
            paths += save_figure(plot_sbc_ranks(tables["sbc_ranks"]), figures, "sbc_ranks")
        if (held_out := plot_validation(tables["validation"])) is not None:
            paths += save_figure(held_out, figures, "validation")
        end = problem.scenario.time.end
        for city in forecast_cities(problem):
            start_value = next((f.value for f in problem.targets.initial() if f.city == city), None)
            paths += save_figure(plot_forecast(outputs[f"{city} {end}"].to_numpy(), city, end, start_value),
                                 figures, f"forecast_{figure_stem(city)}")
        written += [str(p.relative_to(out)) for p in paths]
        report = report_text(result, tables)
        atomic_write(out / "report.md", lambda h: h.write(report))
        written.append("report.md")
        write_json(out / "manifest.json", manifest(
            out, written, scenario=problem.scenario.resolved(), scenario_hash=problem.scenario.digest(),
            seed=result.seed, executor=result.executor, wall_time_s=result.wall_time, reading=problem.reading,
            options=result.options,
            targets={"name": problem.targets.name, "universe": problem.targets.universe,
                     "file": result.options.get("targets"), "fitted": [f.id for f in problem.fitted]},
            seed_rule="proposals SeedSequence(seed, spawn_key=(0, generation, batch)); simulations (1, generation, k); "
                      "predictive (2, 0) and (3, k); point estimate: the scenario's replication seeds",
            complete=True))
    return written + ["manifest.json"]


