"""``modu discover``, ``modu optimise`` and ``modu equilibrium``: the command lines over policy design."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sim.cli.common import SCENARIO, default_out, executor_option, figures_option, out_option, quiet_option, refusals

ENGINES = ("counts", "agents", "scenario")


assumption_options = [
    click.option("--assumptions", "assumptions", type=click.Path(dir_okay=False, path_type=Path),
                 help="Deep uncertainties to draw beside the parameters (lever effects, anchor weight, depreciation, "
                      "budgets, the outside option) [default: the shipped calibration/assumptions.yaml]."),
    click.option("--fixed-assumptions", is_flag=True,
                 help="Hold the deep uncertainties at the scenario's values instead of drawing them."),
]
"""Options of the deep uncertainties, shared by compare, optimise and equilibrium."""


def assumptions_file(assumptions: Path | None, fixed: bool) -> Path | None:
    """The assumptions file to draw from: the given one, the shipped one, or None with ``--fixed-assumptions``."""
    from sim.cli.common import BadInputError
    from sim.inference.data import ASSUMPTIONS_PATH

    if fixed and assumptions is not None:
        raise BadInputError("--assumptions and --fixed-assumptions: choose one")
    return None if fixed else assumptions or ASSUMPTIONS_PATH


def uncertainty_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by optimise and equilibrium: draws, replications, seed, engine, resolution, budget."""
    options = [
        click.option("--draws", type=click.IntRange(1, 100_000), default=5, show_default=True,
                     help="Parameter draws: from the posterior of the calibration SCENARIO names unless --prior or --range."),
        click.option("--prior", is_flag=True, help="Draw the parameters from that calibration's priors instead."),
        click.option("--range", "ranges", multiple=True, metavar="PATH=LO:HI",
                     help="Draw this scenario field uniformly over [LO, HI] instead (repeatable)."),
        click.option("--replications", type=click.IntRange(1, 100_000), default=2, show_default=True,
                     help="Replications per draw."),
        click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Root seed [default: the scenario's seed]."),
        click.option("--engine", type=click.Choice(ENGINES), default="counts", show_default=True,
                     help="Engine of every run ('scenario': as the scenario says)."),
        click.option("--budget", "budget", metavar="LO:HI:STEP",
                     help="Also choose the annual budget (100 M yuan) among LO, LO+STEP, ... ≤ HI."),
        *assumption_options,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _scenario_and_draws(scenario: Path, draws: int, prior: bool, ranges: tuple[str, ...], seed: int | None,
                        assumptions: Path | None):
    from sim.inference.draws import parameter_draws
    from sim.scenario import load_scenario

    base = load_scenario(scenario)  # the SCENARIO argument type already resolved a shipped scenario's name
    drawn = parameter_draws(draws, base.seed if seed is None else seed, base, prior, ranges, assumptions)
    return scenario, base, drawn


@click.command()
@click.argument("sweep_folder", type=click.Path(path_type=Path, file_okay=False))
@click.option("--outcome", required=True, metavar="EXPR",
              help="Which runs count, over summary.csv's columns, e.g. \"leader == 'Hefei'\" or \"hhi > 0.3\".")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.8, show_default=True,
              help="Minimum density of the chosen box.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="Share of the box's runs peeled per step.")
@click.option("--cart", is_flag=True, help="Also list decision-tree rules (needs the discover extra: scikit-learn).")
@out_option("outputs/<sweep folder>-discover")
@figures_option
@refusals
def discover(sweep_folder: Path, outcome: str, threshold: float, alpha: float, cart: bool, out: Path | None,
             figures: bool) -> None:
    """Find the swept conditions under which OUTCOME holds in SWEEP_FOLDER (a `modu sweep` folder), by PRIM.
    If the box restricts no input, say why (the outcome's share of all runs against --threshold) and show the best
    restricted box of the peeling trajectory.
    """  # noqa: D205, D415
    from sim.inference.discover import discover as find
    from sim.inference.discover import read_sweep
    from sim.reporting.policy import write_discovery

    summary, paths = read_sweep(sweep_folder)
    result = find(summary, paths, outcome, threshold=threshold, alpha=alpha, cart=cart)
    out = out or default_out(f"{sweep_folder.resolve().name}-discover")
    write_discovery(result, sweep_folder, out, figures)
    click.echo(result.summary())
    click.echo(f"wrote {out}/ (read report.md)")


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
    from sim.experiments.executors import parse_executor
    from sim.experiments.policy import parse_budgets, plan_optimisation
    from sim.inference.robustness import optimise_robustness

    spec = parse_executor(executor)
    path, base, drawn = _scenario_and_draws(scenario, draws, prior, ranges, seed,
                                            assumptions_file(assumptions, fixed_assumptions))
    plan = plan_optimisation(base, city, resolution=resolution, budgets=parse_budgets(budget), objective=objective,
                             constraint=constraint, draws=drawn.fields, draws_source=drawn.source,
                             replications=replications, seed=seed, engine=None if engine == "scenario" else engine,
                             source=str(path))
    from sim.reporting.policy import recommendation, run_optimisation
    from sim.reporting.text import count

    out = out or default_out(f"{base.name}-optimise-{city}")
    result, resumed, ran, elapsed, answers = run_optimisation(
        plan, out, spec, progress=not quiet, figures=figures, analyse=lambda r: optimise_robustness(r, drawn))
    click.echo(f"{count(plan.n_runs)} runs; {count(resumed)} already stored, {count(ran)} run now in {elapsed:.1f} s "
               f"({spec.describe()})")
    click.echo(recommendation(result))
    for answer in answers:
        click.echo(answer.sentence())
    click.echo(f"wrote {out}/ (read report.md)")


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
    from sim.experiments.policy import parse_budgets, plan_game, solve_game
    from sim.inference.robustness import equilibrium_robustness
    from sim.reporting.policy import race_summary, write_equilibrium

    spec = parse_executor(executor)
    path, base, drawn = _scenario_and_draws(scenario, draws, prior, ranges, seed,
                                            assumptions_file(assumptions, fixed_assumptions))
    plan = plan_game(base, cities.split(","), resolution=resolution, budgets=parse_budgets(budget), cost=cost,
                     objective=objective, draws=drawn.fields, draws_source=drawn.source, replications=replications,
                     seed=seed, engine=None if engine == "scenario" else engine, source=str(path))
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
