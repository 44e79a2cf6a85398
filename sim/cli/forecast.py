"""``modu forecast``: the command line over :mod:`sim.inference.forecasting`."""

from __future__ import annotations

import time
from pathlib import Path

import click

from sim.cli.common import (
    SCENARIO,
    assumption_options,
    assumptions_file,
    default_out,
    executor_option,
    figures_option,
    out_option,
    quiet_option,
    refusals,
)
from sim.scenario.resources import shown


@click.command()
@click.argument("scenario", type=SCENARIO)
@click.option("--draws", type=click.IntRange(1, 100_000), default=200, show_default=True,
              help="Draws of the posterior of the calibration SCENARIO names, each joined to a draw of the deep "
                   "uncertainties.")
@click.option("--replications", type=click.IntRange(1, 10_000), default=2, show_default=True,
              help="Replications per draw.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Root seed [default: the scenario's seed].")
@assumption_options[0]
@assumption_options[1]
@out_option("outputs/<scenario>-forecast")
@executor_option
@figures_option
@quiet_option
@refusals
def forecast(scenario: Path, draws: int, replications: int, seed: int | None, assumptions: Path | None,
             fixed_assumptions: bool, out: Path | None, executor: str, figures: bool, quiet: bool) -> None:
    """Forecast every city of SCENARIO to its end: median and 90% interval per year over the calibration posterior
    and the deep uncertainties, each city flagged when the prior or an assumption drives its interval.
    """  # noqa: D205, D415
    from sim.experiments.ensemble import run_draws
    from sim.experiments.executors import parse_executor
    from sim.inference.draws import parameter_draws
    from sim.inference.forecasting import forecast as make_forecast
    from sim.reporting.forecast import write_forecast
    from sim.scenario import load_scenario
    from sim.scenario.paths import draw_changes

    spec = parse_executor(executor)
    base = load_scenario(scenario).model_copy(update={"engine": "counts"})  # the compiled kernel
    seed = base.seed if seed is None else seed
    drawn = parameter_draws(draws, seed, base, assumptions=assumptions_file(assumptions, fixed_assumptions))
    out = out or default_out(f"{base.name}-forecast")
    start = time.perf_counter()
    firms = run_draws(base, [draw_changes(row) for row in drawn.fields.to_dict("records")], replications, seed, spec,
                      progress=not quiet)
    elapsed = time.perf_counter() - start
    result = make_forecast(base, drawn, firms)
    how = "--fixed-assumptions" if fixed_assumptions else f"--assumptions {assumptions}" if assumptions else ""
    write_forecast(result, out, figures, reproduce=f"modu forecast {shown(scenario)} --draws {draws} --replications "
                   f"{replications} --seed {seed} {how}".strip(), seed=seed, executor=spec.describe(), wall_time_s=elapsed,
                   complete=True)
    table = result.to_df()
    click.echo(f"{base.name}: {draws * replications:,} runs in {elapsed:.1f} s ({spec.describe()}); "
               f"{int((table.prior_driven | table.assumption_driven).sum())} of {len(table)} forecasts driven by the "
               "prior or an assumption")
    click.echo(f"wrote {out}/ (read report.md)")


