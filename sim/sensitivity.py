"""Global sensitivity analysis of a scenario with SALib (``modu sensitivity``).

Which behavioural parameters and policy levers drive a scenario's final firm
counts, shares and concentration (HHI)? Factors vary over ranges (by default
the calibration's 90% posterior intervals, else the priors, for the
behavioural parameters and city constants; ``[0, 1]`` for each lever weight
the scenario uses; ``[0, 2]`` for a multiplier of every city's budget). Each
sampled point runs ``replications`` simulations with the same seeds at every
point (common random numbers), so the indices measure the factors, not the
noise; outputs are averaged over those replications.

- ``sobol``: Saltelli sampling and Sobol' first-order (S1) and total-order
  (ST) indices with bootstrap confidence intervals; ``samples`` is the base
  sample N (a power of 2), costing N·(factors + 2) points.
- ``morris``: elementary effects; μ* (mean absolute effect) with its
  bootstrap confidence interval, and σ; ``samples`` is the number of
  trajectories, costing samples·(factors + 1) points.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import click
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sim import metrics
from sim.calibration import (
    CALIBRATION_DIR,
    PRIORS_PATH,
    Layout,
    label,
    load_priors,
    run_batch,
    set_value,
    simulate_chunk,
)
from sim.cliutils import BadInputError, default_out, executor_option, out_option, quiet_option, refusals
from sim.executors import Executor, ExecutorSpec, open_executor, parse_executor
from sim.outputs import atomic_write, manifest, output_folder, write_csv, write_json
from sim.plots import save_figure
from sim.runner import replication_seed
from sim.scenario import Scenario, load_scenario

POSTERIOR_PATH = CALIBRATION_DIR / "posterior.csv"
"""The calibration's posterior table (median and 90% interval per quantity)."""

LEVER_RANGE = (0.0, 1.0)
"""Range of each lever weight β_X[s] (assumption: the spec's examples, 0.3-0.4, lie inside; 0 = no effect)."""

BUDGET_RANGE = (0.0, 2.0)
"""Range of the multiplier of every city's budget (assumption: from no policy to twice the scenario's)."""

DEFAULT_SAMPLES = {"sobol": 128, "morris": 20}
"""Default base samples (Sobol') and trajectories (Morris): a few minutes on two cores."""

CONF_LEVEL = 0.95
"""Confidence level of the bootstrap intervals of the indices."""


class Factor(BaseModel):
    """A factor varied uniformly on ``[low, high]`` (in log10 when ``log``)."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(min_length=1)
    low: float
    high: float
    log: bool = False
    why: str = ""

    @model_validator(mode="after")
    def _order(self) -> Factor:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log factor needs low > 0")
        return self

    def scale(self, u: np.ndarray) -> np.ndarray:
        """Values from SALib's sample on ``[low, high]`` (or its log10)."""
        return 10.0 ** u if self.log else u

    def bounds(self) -> list[float]:
        """SALib's bounds (log10 when ``log``)."""
        return [math.log10(self.low), math.log10(self.high)] if self.log else [self.low, self.high]


class FactorFile(BaseModel):
    """A ``--factors`` file: ``factors: [{target, low, high, log, why}, ...]``."""

    model_config = ConfigDict(extra="forbid")

    factors: list[Factor] = Field(min_length=2)


def default_factors(scenario: Scenario, ranges: str = "posterior", priors_path: Path = PRIORS_PATH,
                    posterior_path: Path = POSTERIOR_PATH) -> list[Factor]:
    """The default factors of a scenario.

    Behavioural parameters and the constants of the scenario's cities that the
    calibration estimates: their 90% posterior interval (``ranges="posterior"``,
    when ``posterior_path`` exists) or their prior's support (normal priors:
    mean ± 2 sd). Then every lever weight the scenario uses on ``LEVER_RANGE``
    and a budget multiplier on ``BUDGET_RANGE``.
    """
    cities = {c.name for c in scenario.cities}
    posterior = (pd.read_csv(posterior_path).set_index("quantity")
                 if ranges == "posterior" and posterior_path.exists() else None)
    factors = []
    for spec in load_priors(priors_path).priors:
        parts = spec.target.split(".")
        if parts[0] == "cities" and parts[1] not in cities:
            continue
        log = spec.kind == "loguniform"
        if posterior is not None and label(spec.target) in posterior.index:
            row = posterior.loc[label(spec.target)]
            low, high, why = float(row.lo), float(row.hi), "calibration: 90% posterior interval"
        elif spec.kind == "normal":
            low, high = max(spec.low, spec.mean - 2 * spec.sd), min(spec.high, spec.mean + 2 * spec.sd)
            why = f"prior mean ± 2 sd ({spec.why})"
        else:
            low, high, why = spec.low, spec.high, f"prior support ({spec.why})"
        factors.append(Factor(target=spec.target, low=low, high=high, log=log, why=why))
    for lever, by_sector in scenario.parameters.lever_effects.items():
        for sector, beta in by_sector.items():
            if beta != 0:
                factors.append(Factor(target=f"parameters.lever_effects.{lever}.{sector}", low=LEVER_RANGE[0],
                                      high=LEVER_RANGE[1], why="assumption: LEVER_RANGE"))
    if any(c.policy and c.policy.budget > 0 for c in scenario.cities):
        factors.append(Factor(target="budget_scale", low=BUDGET_RANGE[0], high=BUDGET_RANGE[1],
                              why="assumption: BUDGET_RANGE"))
    return factors


def load_factors(path: Path) -> list[Factor]:
    """Read a ``--factors`` YAML file; bad input raises :class:`BadInputError` (one line)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return FactorFile.model_validate(data).factors
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise BadInputError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        raise BadInputError(f"{path}: {loc}: {err['msg'].removeprefix('Value error, ')}") from None


def outputs_of(scenario: Scenario, summaries: np.ndarray) -> pd.DataFrame:
    """Final firms per city, final shares of the non-pool cities and their HHI, per summary row."""
    layout = Layout.of(scenario)
    final = layout.firms(summaries)[:, -1, :]
    out = {f"firms {c}": final[:, i] for i, c in enumerate(layout.cities)}
    keep = np.array([not c.pool for c in scenario.cities])
    keep = keep if keep.any() else ~keep
    shares = metrics.shares(final[:, keep])
    for name, s in zip(np.array(layout.cities)[keep], shares.T, strict=True):
        out[f"share {name}"] = s
    out["hhi"] = metrics.hhi(shares)
    return pd.DataFrame(out)


@dataclass
class Analysis:
    """A finished sensitivity analysis.

    Attributes:
        factors: the factors.
        method: ``sobol`` or ``morris``.
        X: the sampled points (SALib's scale: log10 for log factors) ``[n, factors]``.
        outputs: the outputs at each point (mean over replications).
        indices: one row per output × factor.
    """

    factors: list[Factor]
    method: str
    X: np.ndarray
    outputs: pd.DataFrame
    indices: pd.DataFrame


def analyse(scenario: Scenario, factors: list[Factor], method: str, samples: int, replications: int, seed: int,
            executor: ExecutorSpec | Executor, engine: str = "counts", chunk: int = 25,
            progress: bool = True) -> Analysis:
    """Sample the factors, simulate every point ``replications`` times and compute the indices."""
    from SALib.analyze import morris as morris_analyze
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import morris as morris_sample
    from SALib.sample import sobol as sobol_sample
    from tqdm.auto import tqdm

    problem = {"num_vars": len(factors), "names": [label(f.target) for f in factors],
               "bounds": [f.bounds() for f in factors]}
    if method == "sobol":
        X = sobol_sample.sample(problem, samples, calc_second_order=False, seed=seed)
    else:
        X = morris_sample.sample(problem, samples, seed=seed)
    values = np.column_stack([f.scale(X[:, j]) for j, f in enumerate(factors)])
    template = scenario.resolved()
    template["engine"] = engine
    simulate = functools.partial(simulate_chunk, template, [f.target for f in factors])
    rows = np.repeat(values, replications, axis=0)
    seeds = [replication_seed(seed, r) for _ in range(len(values)) for r in range(replications)]
    with tqdm(total=len(rows), desc=f"{scenario.name} {method}", unit="run", disable=not progress) as bar:
        summaries = run_batch(simulate, rows, seeds, executor, chunk, bar)
    outputs = outputs_of(scenario, summaries)
    outputs = outputs.groupby(np.arange(len(outputs)) // replications).mean()
    frames = []
    for col in outputs.columns:
        Y = outputs[col].to_numpy(dtype=float)
        if method == "sobol":
            res = sobol_analyze.analyze(problem, Y, calc_second_order=False, conf_level=CONF_LEVEL, seed=seed)
            cols = ["S1", "S1_conf", "ST", "ST_conf"]
        else:
            res = morris_analyze.analyze(problem, X, Y, conf_level=CONF_LEVEL, seed=seed)
            cols = ["mu", "mu_star", "mu_star_conf", "sigma"]
        frame = pd.DataFrame({c: np.asarray(res[c], dtype=float) for c in cols})
        frame.insert(0, "factor", problem["names"])
        frame.insert(0, "output", col)
        frames.append(frame)
    return Analysis(factors, method, X, outputs, pd.concat(frames, ignore_index=True))


def _main_index(method: str) -> tuple[str, str]:
    return ("ST", "ST_conf") if method == "sobol" else ("mu_star", "mu_star_conf")


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
            ax.barh(y + 0.2, sub.ST, xerr=sub.ST_conf, height=0.4, color="#264653", label="total (ST)")
            ax.barh(y - 0.2, sub.S1, xerr=sub.S1_conf, height=0.4, color="#e9c46a", label="first order (S1)")
            ax.set_xlim(left=min(0, float(np.nanmin(sub.S1 - sub.S1_conf))))
        else:
            ax.barh(y, sub.mu_star, xerr=sub.mu_star_conf, height=0.6, color="#264653", label="μ*")
            ax.barh(y, sub.sigma, height=0.25, color="#e76f51", label="σ")
        ax.set_yticks(y, sub.factor, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(out, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    for ax in axes.ravel()[len(outputs):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    what = "Sobol' indices (95% bootstrap intervals)" if analysis.method == "sobol" else "Morris elementary effects"
    fig.suptitle(what)
    fig.tight_layout()
    return fig


def report_text(scenario: Scenario, analysis: Analysis, samples: int, replications: int, seed: int,
                wall_time: float, executor: str, engine: str) -> str:
    """The analysis' report.md: factors, cost, and the leading factors of each output."""
    key, conf = _main_index(analysis.method)
    lines = [f"# Sensitivity of `{scenario.name}` ({analysis.method})\n",
             f"{len(analysis.X)} points × {replications} replication(s) = {len(analysis.X) * replications} runs "
             f"(engine {engine}, executor {executor}, seed {seed}) in {wall_time:.0f} s (indicative). "
             + ("Sobol' base sample N = " if analysis.method == "sobol" else "Morris trajectories: ")
             + f"{samples}. Common random numbers: every point uses the same {replications} seed(s). Factors vary "
             "independently over their ranges: correlations between calibrated quantities (e.g. the constants of "
             "cities whose difference the data pin, calibration/report.md) are not kept, so the sample also covers "
             "combinations the calibration rules out.\n",
             "## Factors\n", "| factor | low | high | scale | range from |", "|---|---|---|---|---|"]
    for f in analysis.factors:
        lines.append(f"| {label(f.target)} | {f.low:.4g} | {f.high:.4g} | {'log' if f.log else 'linear'} | {f.why} |")
    lines += ["", "## Leading factors\n",
              f"Per output, factors ranked by {key} (± its {CONF_LEVEL:.0%} interval)"
              + (". ST − S1 is the share of variance through interactions." if analysis.method == "sobol" else
                 "; σ large against μ* means the effect depends on the other factors.") + "\n",
              "| output | mean over points | leading factors |", "|---|---|---|"]
    for out, sub in analysis.indices.groupby("output", sort=False):
        top = sub.sort_values(key, ascending=False).head(4)
        desc = "; ".join(f"{r.factor} {getattr(r, key):.3g} ± {getattr(r, conf):.2g}" for r in top.itertuples()
                         if np.isfinite(getattr(r, key)))
        mean = analysis.outputs[out].mean()
        lines.append(f"| {out} | {mean:,.0f} | {desc} |" if abs(mean) >= 1000 else f"| {out} | {mean:.3g} | {desc} |")
    lines += ["", "![indices](figures/sensitivity.png)", "",
              "All indices: `indices.csv`; sampled points and outputs: `samples.csv`."]
    return "\n".join(lines) + "\n"


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--method", type=click.Choice(["sobol", "morris"]), default="sobol", show_default=True,
              help="Sobol' variance indices (S1, ST) or Morris elementary effects (μ*, σ).")
@click.option("--samples", type=click.IntRange(2, 1_000_000),
              help="Sobol' base sample N (a power of 2) or Morris trajectories [default: 128 / 20].")
@click.option("--replications", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Simulations per point (same seeds at every point), averaged.")
@click.option("--factors", "factors_path", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML file 'factors: [{target, low, high, log}]' replacing the default factors.")
@click.option("--ranges", type=click.Choice(["posterior", "prior"]), default="posterior", show_default=True,
              help="Default ranges of calibrated quantities: 90% posterior interval (calibration/posterior.csv) or prior.")
@click.option("--engine", type=click.Choice(["counts", "agents"]), default="counts", show_default=True,
              help="Engine of the runs (the same model in distribution; counts is faster).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), help="Seed of the sample and the runs [default: the scenario's].")
@executor_option
@out_option("outputs/<scenario name>-sensitivity-<method>")
@quiet_option
@refusals
def sensitivity(scenario: Path, method: str, samples: int | None, replications: int, factors_path: Path | None,
                ranges: str, engine: str, seed: int | None, executor: str, out: Path | None, quiet: bool) -> None:
    """Which parameters and levers drive SCENARIO's final counts, shares and HHI (SALib).

    Writes indices.csv, samples.csv, figures/sensitivity.png|svg, report.md and manifest.json.
    """
    spec = load_scenario(scenario)
    parsed = parse_executor(executor)
    factors = load_factors(factors_path) if factors_path else default_factors(spec, ranges)
    template = spec.resolved()
    for i, f in enumerate(factors):
        try:
            set_value(template, f.target, f.low)
        except KeyError as exc:
            raise BadInputError(f"{factors_path or '--factors'}: factors[{i}].target: {exc.args[0]}") from None
    samples = samples or DEFAULT_SAMPLES[method]
    if method == "sobol" and samples & (samples - 1):
        raise BadInputError(f"--samples: Sobol' sampling needs a power of 2, got {samples}")
    seed = spec.seed % 2**32 if seed is None else seed
    out = out or default_out(f"{spec.name}-sensitivity-{method}")
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out: {out} exists and is not a folder")
    start = time.perf_counter()
    with open_executor(parsed) as ex:
        analysis = analyse(spec, factors, method, samples, replications, seed, ex, engine, progress=not quiet)
    wall = time.perf_counter() - start
    written = ["indices.csv", "samples.csv", "report.md"]
    with output_folder(out):
        write_csv(out / "indices.csv", analysis.indices)
        points = pd.DataFrame(np.column_stack([f.scale(analysis.X[:, j]) for j, f in enumerate(factors)]),
                              columns=[label(f.target) for f in factors])
        write_csv(out / "samples.csv", pd.concat([points, analysis.outputs], axis=1))
        written += [str(p.relative_to(out)) for p in save_figure(plot_indices(analysis), out / "figures", "sensitivity")]
        report = report_text(spec, analysis, samples, replications, seed, wall, parsed.describe(), engine)
        atomic_write(out / "report.md", lambda h: h.write(report))
        write_json(out / "manifest.json", manifest(
            out, written, scenario_file=str(scenario), scenario=spec.resolved(), scenario_hash=spec.digest(),
            method=method, samples=samples, replications=replications, seed=seed, engine=engine,
            factors=[f.model_dump() for f in factors], executor=parsed.describe(), wall_time_s=wall, complete=True))
    key, _ = _main_index(method)
    top = analysis.indices.loc[analysis.indices.groupby("output", sort=False)[key].idxmax()]
    click.echo(f"{spec.name}: {len(analysis.X) * replications} runs in {wall:.0f} s; leading factor by {key}: "
               + ", ".join(f"{r.output} ← {r.factor}" for r in top.itertuples()))
    click.echo(f"wrote {out}/")
