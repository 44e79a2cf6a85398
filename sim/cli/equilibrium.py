"""``modu equilibrium``: the command line over :mod:`sim.policy.race` (the subsidy race between cities)."""

from __future__ import annotations

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
@click.option("--cities", required=True, metavar="A,B,...", help="The players: cities of SCENARIO, comma-separated.")
@click.option("--resolution", default="0.25", show_default=True, help="Step of each share on each player's simplex.")
@click.option("--cost", type=float, default=0.0, show_default=True,
              help="Objective units (firms) a player gives up per 100 M yuan it spends (matters with --budget).")
@click.option("--objective", default="firms", show_default=True,
              help="Each player's objective: firms (expected firms at the horizon) or top:K (probability of the top K).")
@uncertainty_options
@out_option("outputs/<scenario>-equilibrium")
@executor_option
@figures_option
@quiet_option
@refusals
def equilibrium(scenario: Path, cities: str, resolution: str, cost: float, objective: str, draws: int, prior: bool,
                ranges: tuple[str, ...], replications: int, seed: int | None, engine: str, budget: str | None,
                assumptions: Path | None, fixed_assumptions: bool, out: Path | None, executor: str, figures: bool,
                quiet: bool) -> None:
    """Let CITIES of SCENARIO best-respond to each other's lever mixes: equilibrium, price of anarchy, involution."""
    from sim.experiments.executors import parse_executor
    from sim.policy.race import plan_game, solve_game
    from sim.policy.robustness import equilibrium_robustness
    from sim.policy.runs import parse_budgets
    from sim.reporting.policy import race_summary, write_equilibrium

    spec = parse_executor(executor)
    base, drawn = scenario_and_draws(scenario, draws, prior, ranges, seed, assumptions_file(assumptions, fixed_assumptions))
    plan = plan_game(base, cities.split(","), resolution=resolution, budgets=parse_budgets(budget), cost=cost,
                     objective=objective, draws=drawn, replications=replications, seed=seed,
                     engine=None if engine == "scenario" else engine, source=str(scenario))
    out = out or default_out(f"{base.name}-equilibrium")
    start = time.perf_counter()
    result = solve_game(plan, spec, progress=not quiet)
    elapsed = time.perf_counter() - start
    answers = equilibrium_robustness(result, drawn)
    write_equilibrium(result, out, figures, executor=spec.describe(), wall_time=elapsed, robustness=answers)
    click.echo(race_summary(result))
    for answer in answers:
        click.echo(answer.sentence())
    click.echo(f"wrote {out}/ (read report.md)")
