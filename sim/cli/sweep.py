"""``modu sweep``: the command line over :mod:`sim.experiments.sweep` (resumable: its folder is its store)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from sim.cli.common import SCENARIO, default_out, executor_option, figures_option, out_option, quiet_option, refusals
from sim.experiments.executors import open_executor, parse_executor
from sim.experiments.sweep import EXIT_RUNS_FAILED, compute_sweep, plan_sweep
from sim.reporting.files import resumable_folder
from sim.reporting.sweep import write_sweep
from sim.reporting.text import count


# --------------------------------------------------------------------------- command line
@click.command()
@click.argument("scenario", type=SCENARIO)  # a folder is refused by the loader, in one line
@click.option("--set", "sets", multiple=True, metavar="PATH=V1,V2,...",
              help="Sweep a field over these values (full factorial across --set options). PATH is dotted, "
                   "e.g. parameters.network_effect or cities.Hefei.policy.budget.")
@click.option("--sample", metavar="lhs:N", help="N Latin-hypercube points over the --range fields (crossed with any --set grid).")
@click.option("--range", "ranges", multiple=True, metavar="PATH=LO:HI", help="A field's interval for --sample.")
@click.option("--replications", type=click.IntRange(1, 100_000), help="Replications per point [default: the scenario's].")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1),
              help="Root seed of every run and of the sample [default: the scenario's seed].")
@out_option("outputs/<scenario name>-sweep; it is also the resumable store")
@executor_option
@figures_option
@quiet_option
@refusals
def sweep(scenario: Path, sets: tuple[str, ...], sample: str | None, ranges: tuple[str, ...], replications: int | None,
          seed: int | None, out: Path | None, executor: str, figures: bool, quiet: bool) -> None:
    """Run SCENARIO's replications at every point of a grid or sample and write summary.csv
    (one row per point × replication), metrics.csv, trajectories.csv, failures.csv, figures/
    and manifest.json. Interrupted? Run the same command again: finished runs are kept.
    """  # noqa: D205, D415
    spec = parse_executor(executor)
    plan = plan_sweep(scenario, sets, sample, ranges, replications, seed)
    out = out or default_out(f"{plan.name}-sweep")
    start = time.perf_counter()  # the executor's start-up (a pool, a cluster) counts
    with resumable_folder(out, plan.definition(), plan.command()) as store:
        with open_executor(spec) as opened:  # closed before the files are written: its threads end
            resumed, ran = compute_sweep(plan, store, opened, progress=not quiet)
        report = write_sweep(plan, store, out, figures, resumed=resumed, ran=ran, executor=opened.describe(),
                             wall_time=time.perf_counter() - start)
    rate = f", {report.ran / report.wall_time:.2f} runs/s" if report.ran and report.wall_time > 0 else ""
    click.echo(f"{plan.name}: {count(len(plan.points))} points × {count(plan.replications)} replications = "
               f"{count(report.runs)} runs; {count(report.resumed)} already stored, {count(report.ran)} run now in "
               f"{report.wall_time:.1f} s ({report.executor}{rate})")
    click.echo(f"wrote {out}/")
    if report.failed:
        click.echo(f"modu: {count(report.failed)} of {count(report.runs)} runs failed (see {out}/failures.csv); "
                   "run the same command again to retry them", err=True)
        sys.exit(EXIT_RUNS_FAILED)
