"""The ``modu`` command line (also ``python -m sim``).

Every refusal of bad input is one line on stderr, ``modu: error: ...``, with
exit code 2, and nothing written.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from sim.cliutils import (
    EXIT_BAD_INPUT,
    BadInputError,
    ModuGroup,
    default_out,
    executor_option,
    figures_option,
    out_option,
    quiet_option,
    refusals,
)
from sim.executors import parse_executor
from sim.scenario import ScenarioError, load_scenario


@click.group(cls=ModuGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="modu")
def main() -> None:
    """Modu: cities competing to become the 'model capital' of the AI industry.

    Run a scenario YAML file (see scenarios/README.md) and read the tidy CSVs,
    figures and manifest it writes.
    """


@main.command()
@click.argument("scenario", type=click.Path(path_type=Path))  # a folder is refused by the loader, in one line
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
    from sim.guards import check_run
    from sim.runner import run_ensemble, write_run

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
    click.echo(f"{spec.name}: {ensemble.replications} replications in {elapsed:.1f} s "
               f"({ensemble.executor}); leader at the end: "
               + ", ".join(f"{k} {v:.0%}" for k, v in final.leader.value_counts(normalize=True).items()))
    click.echo(f"wrote {out}/")


@main.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(scenarios: tuple[Path, ...]) -> None:
    """Check scenario files without running them; exit 2 if any is invalid (each refusal on its own line)."""
    failed = False
    for path in scenarios:
        try:
            spec = load_scenario(path)
        except ScenarioError as exc:
            click.echo(f"modu: error: {exc}", err=True)
            failed = True
            continue
        click.echo(f"{path}: ok ({spec.name}: {len(spec.cities)} cities, {spec.time.start}–{spec.time.end}, "
                   f"{spec.replications} replications)")
    if failed:
        sys.exit(EXIT_BAD_INPUT)


# Commands defined in their own modules are registered here, one line each.
from sim.app import app  # noqa: E402

main.add_command(app)
from sim.sweep import sweep  # noqa: E402

main.add_command(sweep)
from sim.calibration import calibrate  # noqa: E402

main.add_command(calibrate)
from sim.sensitivity import sensitivity  # noqa: E402

main.add_command(sensitivity)
from sim.compare import compare  # noqa: E402

main.add_command(compare)
from sim.rerun import rerun_command  # noqa: E402

main.add_command(rerun_command)

if __name__ == "__main__":  # pragma: no cover
    main()
