"""Writing a sensitivity analysis: its index figure and report (``modu sensitivity``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.inference.sensitivity import CONF_LEVEL, MAX_RELATIVE_CONF, MIN_SAMPLES, Analysis, main_index
from sim.reporting.files import atomic_write, manifest, output_folder, write_csv, write_json
from sim.reporting.palette import INK, INK_LIGHT
from sim.reporting.style import plt, save_figure
from sim.reporting.text import count, interval_name, markdown_table, number
from sim.scenario import Scenario


def plot_indices(analysis: Analysis) -> plt.Figure:
    """One panel per output: horizontal bars of the indices with their confidence intervals."""
    outputs = list(dict.fromkeys(analysis.indices.output))
    cols = min(3, len(outputs))
    rows = math.ceil(len(outputs) / cols)
    n_fac = len(analysis.factors)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 0.28 * n_fac * rows + 1.5 * rows), squeeze=False)
    for ax, out in zip(axes.ravel(), outputs, strict=False):
        sub = analysis.indices[analysis.indices.output == out]
        y = np.arange(len(sub))
        if analysis.method == "sobol":
            ax.barh(y + 0.2, sub.ST, xerr=sub.ST_conf, height=0.4, color=INK, label="total (ST)")
            ax.barh(y - 0.2, sub.S1, xerr=sub.S1_conf, height=0.4, color=INK_LIGHT, label="first order (S1)")
            ax.set_xlim(left=min(0, float(np.nanmin(sub.S1 - sub.S1_conf))))
        else:
            ax.barh(y, sub.mu_star, xerr=sub.mu_star_conf, height=0.6, color=INK_LIGHT, label="μ*")
            ax.barh(y, sub.sigma, height=0.25, color=INK, label="σ")
        ax.set_yticks(y, sub.factor, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(out, fontsize=9)
        ax.set_xlabel("share of the output's variance" if analysis.method == "sobol"
                      else "μ* and σ of the elementary effects (output units)", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    for ax in axes.ravel()[len(outputs):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7, loc="lower right")
    ci = interval_name("bootstrap", CONF_LEVEL)
    what = "Sobol' indices" if analysis.method == "sobol" else "Morris elementary effects (in the output's units)"
    fig.suptitle(f"{what}; whiskers: {ci}")
    fig.tight_layout()
    return fig


def report_text(scenario: Scenario, analysis: Analysis, samples: int, replications: int, seed: int,
                wall_time: float, executor: str, engine: str) -> str:
    """The analysis' report.md: factors, cost, and the leading factors of each output."""
    key, conf = main_index(analysis.method)
    lines = [f"# Sensitivity of `{scenario.name}` ({analysis.method})\n",
             f"{count(len(analysis.X))} points × {replications} replication(s) = "
             f"{count(len(analysis.X) * replications)} runs "
             f"(engine {engine}, executor {executor}, seed {seed}) in {wall_time:.0f} s (indicative). "
             + ("Sobol' base sample N = " if analysis.method == "sobol" else "Morris trajectories: ")
             + f"{samples}. Common random numbers: every point uses the same {replications} seed(s). Factors vary "
             "independently over their ranges: correlations between calibrated quantities (e.g. the constants of "
             "cities whose difference the data pin, calibration/report.md) are not kept, so the sample also covers "
             "combinations the calibration rules out.\n",
             "## Factors\n", markdown_table(pd.DataFrame({
                 "factor": [f.label for f in analysis.factors], "low": [number(f.low, 4) for f in analysis.factors],
                 "high": [number(f.high, 4) for f in analysis.factors],
                 "scale": ["log" if f.log else "linear" for f in analysis.factors],
                 "range from": [f.why for f in analysis.factors]}))]
    lines += ["", "## Leading factors\n"]
    doubtful = analysis.leading[~analysis.leading.interpretable]
    if len(doubtful):
        shortfall = "" if analysis.leading.enough_samples.all() else f"Too few samples: {sample_shortfall(analysis)}. "
        lines.append(f"**Not interpretable: {len(doubtful)} of {len(analysis.leading)} outputs.** Their indices are "
                     f"shown below but are not findings. {shortfall}Leading factor of each:\n")
        lines += [f"- {r.output}: {interval_text(r) if r.factor else r.reason}" for r in doubtful.itertuples()]
        lines.append("")
    lines += [f"Per output, factors ranked by {key} (± half the width of its "
              f"{interval_name('bootstrap', CONF_LEVEL)})"
              + (". ST − S1 is the share of variance through interactions." if analysis.method == "sobol" else
                 "; σ large against μ* means the effect depends on the other factors.")
              + " *finding*: whether the first factor may be read as the leading one (`leading.csv`).\n"]
    finding = analysis.leading.set_index("output").interpretable
    rows = []
    for out, sub in analysis.indices.groupby("output", sort=False):
        top = sub.sort_values(key, ascending=False).head(4)
        desc = "; ".join(f"{r.factor} {number(getattr(r, key))} ± {number(getattr(r, conf), 2)}" for r in top.itertuples()
                         if np.isfinite(getattr(r, key)))
        rows.append({"output": out, "unit": output_unit(out), "mean over points": float(analysis.outputs[out].mean()),
                     "leading factors": desc, "finding": "yes" if finding[out] else "no: not interpretable"})
    lines.append(markdown_table(pd.DataFrame(rows, columns=["output", "unit", "mean over points", "leading factors",
                                                            "finding"])))
    lines += ["", "![indices](figures/sensitivity.png)", "",
              "All indices: `indices.csv`; leading factors and their verdicts: `leading.csv`; sampled points and "
              "outputs: `samples.csv`."]
    return "\n".join(lines) + "\n"


def output_unit(output: str) -> str:
    """The unit of an output of :func:`sim.inference.sensitivity.outputs_of` (a Morris effect is in it too)."""
    if output.startswith("firms "):
        return "firms at the end"
    if output.startswith("share "):
        return "share of the non-pool cities' firms (0–1)"
    return "HHI of the non-pool cities (0–1)" if output == "hhi" else ""


def console_lines(analysis: Analysis) -> list[str]:
    """What ``modu sensitivity`` prints about the leading factors: findings on one line, the rest with why not."""
    key, _ = main_index(analysis.method)
    lead = analysis.leading
    lines = [] if lead.enough_samples.all() else [f"figures not interpretable: {sample_shortfall(analysis)}"]
    if lead.interpretable.any():
        lines.append(f"leading factor by {key}: " + ", ".join(
            f"{r.output} ← {r.factor}" for r in lead[lead.interpretable].itertuples()))
    for r in lead[~lead.interpretable].itertuples():
        lines.append(f"not interpretable: {r.output}: " + (interval_text(r) if r.factor else r.reason))
    return lines


def sample_shortfall(analysis: Analysis) -> str:
    """Why too few samples make every index uninterpretable, and what to do."""
    what = "Sobol' base samples" if analysis.method == "sobol" else "Morris trajectories"
    return (f"only {analysis.samples} {what}, "
            f"fewer than the {MIN_SAMPLES[analysis.method]} needed for the bootstrap intervals to be trusted; "
            f"rerun with --samples {MIN_SAMPLES[analysis.method]} or more")


def interval_text(row: Any) -> str:
    """A leading factor with its index and interval, and how wide the interval is against the index."""
    text = f"{row.factor} ({row.index} {number(row.value)} ± {number(row.conf, 2)}"
    return text + (f"; the interval is {number(row.relative_conf)} times the index, at most "
                   f"{number(MAX_RELATIVE_CONF)} for a finding)" if not row.narrow else ")")


def write_sensitivity(analysis: Analysis, out: Path, scenario: Scenario, source: str, samples: int, replications: int,
                      seed: int, wall_time: float, executor: str, engine: str) -> list[str]:
    """Write indices.csv, leading.csv, samples.csv, figures/sensitivity.png|svg, report.md and manifest.json.

    Returns:
        The files written, relative to ``out``.
    """
    factors = analysis.factors
    written = ["indices.csv", "leading.csv", "samples.csv", "report.md"]
    with output_folder(out):
        write_csv(out / "indices.csv", analysis.indices)
        write_csv(out / "leading.csv", analysis.leading)
        points = pd.DataFrame(np.column_stack([f.natural(analysis.X[:, j]) for j, f in enumerate(factors)]),
                              columns=[f.label for f in factors])
        write_csv(out / "samples.csv", pd.concat([points, analysis.outputs], axis=1))
        written += [str(p.relative_to(out)) for p in save_figure(plot_indices(analysis), out / "figures", "sensitivity")]
        report = report_text(scenario, analysis, samples, replications, seed, wall_time, executor, engine)
        atomic_write(out / "report.md", lambda h: h.write(report))
        write_json(out / "manifest.json", manifest(
            out, written, scenario_file=source, scenario=scenario.resolved(), scenario_hash=scenario.digest(),
            method=analysis.method, samples=samples, replications=replications, seed=seed, engine=engine,
            factors=[f.model_dump() for f in factors], executor=executor, wall_time_s=wall_time, complete=True))
    return [*written, "manifest.json"]
