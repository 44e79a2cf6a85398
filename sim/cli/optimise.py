"""``modu optimise``: the command line over :mod:`sim.policy.optimisation` (resumable: its folder is its store)."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click

from sim.cli.common import (
    SCENARIO,
    assumptions_file,
    default_out,
    executor_option,
    figures_option,
    out_option,
    quiet_option,
    refusals,
    scenario_and_draws,
    uncertainty_options,
)


@click.command()
@click.argument("scenario", type=SCENARIO)
@click.argument("city")
@click.option("--resolution", default="0.05", show_default=True, help="Step of each share on the simplex (0.05: 231 mixes).")
@click.option("--objective", default="firms", show_default=True,
              help="firms (expected firms at the horizon), top:K (probability of ranking in the top K) or per100m "
                   "(firms gained per 100 M yuan spent).")
@click.option("--constraint", metavar="EXPR", help="Keep only candidates meeting this, e.g. \"spend <= 150\".")
@uncertainty_options
@out_option("outputs/<scenario>-optimise-<city>; it is also the resumable store")
@executor_option
@figures_option
@quiet_option
@refusals
def optimise(scenario: Path, city: str, resolution: str, objective: str, constraint: str | None, draws: int,
             prior: bool, ranges: tuple[str, ...], replications: int, seed: int | None, engine: str,
             budget: str | None, assumptions: Path | None, fixed_assumptions: bool, out: Path | None, executor: str,
             figures: bool, quiet: bool) -> None:
    """Find CITY's best allocation over compute, data and anchor in SCENARIO, with its uncertainty.
    Interrupted? Run the same command again: finished runs are kept.
    """  # noqa: D205, D415
    from sim.experiments.executors import open_executor, parse_executor
    from sim.policy.optimisation import compute_optimisation, optimisation_result, plan_optimisation
    from sim.policy.robustness import optimise_robustness
    from sim.policy.runs import parse_budgets

    spec = parse_executor(executor)
    base, drawn = scenario_and_draws(scenario, draws, prior, ranges, seed, assumptions_file(assumptions, fixed_assumptions))
    plan = plan_optimisation(base, city, resolution=resolution, budgets=parse_budgets(budget), objective=objective,
                             constraint=constraint, draws=drawn, replications=replications, seed=seed,
                             engine=None if engine == "scenario" else engine, source=str(scenario))
    from sim.reporting.files import resumable_folder
    from sim.reporting.policy import recommendation, write_optimisation
    from sim.reporting.text import count

    out = out or default_out(f"{base.name}-optimise-{city}")
    start = time.perf_counter()  # the executor's start-up counts
    with resumable_folder(out, plan.definition(), shlex.join(["modu", "optimise", plan.source, plan.city])) as store:
        with open_executor(spec) as opened:  # closed before the files are written: its threads end
            totals, resumed, ran = compute_optimisation(plan, opened, store, progress=not quiet)
        elapsed = time.perf_counter() - start
        result = optimisation_result(plan, totals)
        answers = optimise_robustness(result, drawn)
        write_optimisation(result, out, figures, answers, resumed=resumed, ran=ran, sessions=store.session,
                           executor=opened.describe(), wall_time_s=elapsed)
    click.echo(f"{count(plan.n_runs)} runs; {count(resumed)} already stored, {count(ran)} run now in {elapsed:.1f} s "
               f"({spec.describe()})")
    click.echo(recommendation(result))
    for answer in answers:
        click.echo(answer.sentence())
    click.echo(f"wrote {out}/ (read report.md)")
