"""``modu run`` and ``modu validate``: one scenario's replications, and checking scenario files."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from sim.cli.common import (
    EXIT_BAD_INPUT,
    SCENARIO,
    BadInputError,
    default_out,
    executor_option,
    figures_option,
    out_option,
    quiet_option,
    refusals,
)
from sim.scenario import ScenarioError, load_scenario


@click.command()
@click.argument("scenario", type=SCENARIO)  # a folder is refused by the loader, in one line
@out_option("outputs/<scenario name>")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Root seed [default: the scenario's seed].")
@click.option("--replications", type=click.IntRange(1, 100_000),
              help="Number of replications [default: the scenario's].")
@executor_option
@figures_option
@quiet_option
@refusals
def run(scenario: Path, out: Path | None, seed: int | None, replications: int | None, executor: str,
        figures: bool, quiet: bool) -> None:
    """Run SCENARIO's replications and write firms.csv, cities.csv, flows.csv, metrics.csv,
    figures/ and manifest.json into the output folder.
    """  # noqa: D205, D415
    from sim.experiments.ensemble import run_ensemble
    from sim.experiments.executors import parse_executor
    from sim.experiments.guards import check_run
    from sim.model.metrics import lock_in
    from sim.reporting.run import write_run
    from sim.reporting.text import percent

    spec = load_scenario(scenario)
    parsed = parse_executor(executor)
    out = out or default_out(spec.name)
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out: {out} exists and is not a folder")
    check_run(spec, str(scenario), replications=replications, workers=parsed.workers, out=out)  # too big: refused now
    start = time.perf_counter()
    ensemble = run_ensemble(spec, replications=replications, seed=seed, executor=parsed, progress=not quiet)
    elapsed = time.perf_counter() - start
    write_run(ensemble, out, figures=figures, wall_time=elapsed, source=str(scenario))
    final = ensemble.tables["metrics"]
    final = final[final.step == final.step.max()]
    shares = dict(sorted(((c, p) for c, p in lock_in(final.leader, []).items() if p > 0), key=lambda cp: -cp[1]))
    click.echo(f"{spec.name}: {ensemble.replications} replications in {elapsed:.1f} s "
               f"({ensemble.executor}); leader at the end: " + ", ".join(f"{k} {percent(v)}" for k, v in shares.items()))
    click.echo(f"wrote {out}/")


@click.command()
@click.argument("scenarios", nargs=-1, required=True, type=SCENARIO)
@click.option("--show-merged", is_flag=True,
              help="Print each scenario as the run will use it, as YAML: merged with what it extends, its "
                   "calibration filled in, defaults written out, each value's comment naming the file, "
                   "'calibration' or 'default' it comes from (several scenarios: one YAML document each).")
def validate(scenarios: tuple[Path, ...], show_merged: bool) -> None:
    """Check scenario files (paths or shipped names) without running them.

    Prints one line per valid file; exit 2 if any is invalid (each refusal on
    its own line on stderr).
    """
    from sim.scenario.loading import trace
    from sim.scenario.merged import merged_yaml

    failed = False
    for i, path in enumerate(scenarios):
        try:
            traced = trace(path) if show_merged else None
            spec = traced.scenario if traced else load_scenario(path)
        except ScenarioError as exc:
            click.echo(f"modu: error: {exc}", err=True)
            failed = True
            continue
        if traced:
            click.echo(("---\n" if i else "") + merged_yaml(traced), nl=False)
        else:
            cities, runs = len(spec.cities), spec.replications
            click.echo(f"{path}: ok ({spec.name}: {cities} {'city' if cities == 1 else 'cities'}, "
                       f"{spec.time.start}–{spec.time.end}, {runs} {'replication' if runs == 1 else 'replications'})")
    if failed:
        sys.exit(EXIT_BAD_INPUT)
