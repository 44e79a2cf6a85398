"""``modu compare``: the command line over :mod:`sim.experiments.compare`."""

from __future__ import annotations

import time
from pathlib import Path

import click

from sim.cli.common import (
    SCENARIO,
    BadInputError,
    assumption_options,
    assumptions_file,
    default_out,
    executor_option,
    figures_option,
    out_option,
    quiet_option,
    refusals,
)
from sim.experiments.compare import NATIONAL, plan_comparison, run_comparison
from sim.experiments.executors import parse_executor
from sim.experiments.guards import check_run

# ---------------------------------------------------------------- the command


@click.command()
@click.argument("scenarios", nargs=-1, required=True, type=SCENARIO)
@out_option("outputs/compare_<first scenario>")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Root seed of every scenario [default: the first's].")
@click.option("--replications", type=click.IntRange(1, 100_000),
              help="Replications of every scenario [default: the first's].")
@executor_option
@click.option("--no-policy/--skip-no-policy", "with_no_policy", default=True, show_default=True,
              help="Also run each scenario with every budget 0, for the growth accounting against no policy.")
@assumption_options[0]
@assumption_options[1]
@figures_option
@quiet_option
@refusals
def compare(scenarios: tuple[Path, ...], out: Path | None, seed: int | None, replications: int | None,
            executor: str, with_no_policy: bool, assumptions: Path | None, fixed_assumptions: bool, figures: bool,
            quiet: bool) -> None:
    """Run SCENARIOS with common random numbers and write a comparison: report.md with figures,
    CSVs and a manifest. The first scenario is the reference for the cost-effectiveness table.

    Replication r of every scenario runs draw r of the first scenario's calibration posterior and of
    the deep uncertainties (--assumptions), so each answer is checked draw by draw in the report.
    """  # noqa: D205, D415
    from sim.inference.draws import comparison_draws
    from sim.policy.robustness import compare_robustness
    from sim.reporting.compare import write_comparison  # matplotlib only once the inputs are known to be good
    from sim.reporting.text import count

    if len(scenarios) == 1 and not with_no_policy:
        raise BadInputError("SCENARIOS: one scenario and --skip-no-policy leave nothing to compare")
    spec = parse_executor(executor)
    arms, variants = plan_comparison(scenarios, with_no_policy)  # every refusal before anything runs or is written
    out = out or default_out(f"compare_{arms[0].label}")
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out: {out} exists and is not a folder")
    for arm in arms:  # a scenario too large for this machine is refused now, before anything runs
        check_run(arm.scenario, arm.source, replications=replications or arms[0].scenario.replications,
                  workers=spec.workers)
    first = arms[0].scenario
    drawn = comparison_draws(replications or first.replications, first.seed if seed is None else seed, first,
                             assumptions_file(assumptions, fixed_assumptions))
    start = time.perf_counter()
    comparison = run_comparison(arms, variants, replications=replications, seed=seed, executor=spec,
                                progress=not quiet, draws=None if drawn is None else drawn.fields)
    elapsed = time.perf_counter() - start
    answers = compare_robustness(comparison, drawn) if drawn is not None else []
    write_comparison(comparison, out, figures=figures, wall_time=elapsed, executor=spec.describe(), robustness=answers,
                     draws_source=None if drawn is None else drawn.source)
    national = comparison.tables["summary"]
    national = national[national.city == NATIONAL].set_index("scenario")["firms"]
    click.echo(f"compared {len(comparison.arms)} runs × {comparison.replications} replications in {elapsed:.1f} s; "
               "firms in all cities at the end: " + ", ".join(f"{k} {count(v)}" for k, v in national.items()))
    click.echo(f"wrote {out}/ (read report.md)")
