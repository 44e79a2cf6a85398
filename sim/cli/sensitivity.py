"""``modu sensitivity``: the command line over :mod:`sim.inference.sensitivity`."""

from __future__ import annotations

import time
from pathlib import Path

import click

from sim.cli.common import SCENARIO, BadInputError, default_out, executor_option, out_option, quiet_option, refusals
from sim.experiments.executors import open_executor, parse_executor
from sim.inference.sensitivity import DEFAULT_SAMPLES, analyse, default_factors, load_factors
from sim.reporting.sensitivity import console_lines, write_sensitivity
from sim.scenario import load_scenario
from sim.scenario.factors import check_factors


@click.command()
@click.argument("scenario", type=SCENARIO)
@click.option("--method", type=click.Choice(["sobol", "morris"]), default="sobol", show_default=True,
              help="Sobol' variance indices (S1, ST) or Morris elementary effects (μ*, σ).")
@click.option("--samples", type=click.IntRange(2, 1_000_000),
              help="Sobol' base sample N (a power of 2) or Morris trajectories [default: 128 / 20].")
@click.option("--replications", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Simulations per point (same seeds at every point), averaged.")
@click.option("--factors", "factors_path", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML file 'factors: [{target, low, high, log}]' replacing the default factors.")
@click.option("--ranges", type=click.Choice(["posterior", "prior"]), default="posterior", show_default=True,
              help="Default ranges of calibrated quantities: the 90% posterior interval of the calibration SCENARIO names "
                   "(its posterior.csv), or its priors.")
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

    Writes indices.csv, leading.csv, samples.csv, figures/sensitivity.png|svg, report.md and manifest.json.
    """
    spec = load_scenario(scenario)
    parsed = parse_executor(executor)
    factors = load_factors(factors_path) if factors_path else default_factors(spec, ranges)
    check_factors(spec.resolved(), factors, f"{factors_path or '--factors'}: factors")
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
    write_sensitivity(analysis, out, spec, str(scenario), samples=samples, replications=replications, seed=seed,
                      wall_time=wall, executor=parsed.describe(), engine=engine)
    click.echo(f"{spec.name}: {len(analysis.X) * replications} runs in {wall:.0f} s")
    for line in console_lines(analysis):
        click.echo(line)
    click.echo(f"wrote {out}/")
