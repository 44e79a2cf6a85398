"""``modu rerun``: run a recorded run again (:mod:`sim.experiments.ensemble`) and check it (:mod:`sim.reporting.rerun`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from sim.cli.common import BadInputError, executor_option, out_option, quiet_option, refusals
from sim.experiments.executors import parse_executor
from sim.reporting.rerun import EXIT_DIFFERENT, check_files, read_manifest, version_differences
from sim.reporting.text import count


@click.command(name="rerun")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=Path))
@out_option("the recorded run's folder name + '-rerun', beside it")
@executor_option
@quiet_option
@refusals
def rerun_command(manifest_path: Path, out: Path | None, executor: str, quiet: bool) -> None:
    """Reproduce the run recorded in MANIFEST (a run folder's manifest.json) and check it byte for byte.

    The recorded resolved scenario, seed and replications are run again (not the
    scenario file, which may have changed or moved) and every file is compared
    with the SHA-256 the manifest records. Exit code 0 if all match, 1 if any
    differs, 2 for a bad manifest. A line warns when the installed versions
    differ from the recorded ones.
    """
    from sim.experiments.ensemble import run_ensemble
    from sim.experiments.guards import check_run
    from sim.reporting.run import write_run

    recorded = read_manifest(manifest_path)
    parsed = parse_executor(executor)
    folder = manifest_path.parent
    out = out or folder.parent / f"{folder.resolve().name}-rerun"
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out: {out} exists and is not a folder")
    if out.resolve() == folder.resolve():
        raise BadInputError(f"--out: {out} is the recorded run's own folder; choose another")
    check_run(recorded.scenario, f"{manifest_path}: scenario", replications=recorded.replications,
              workers=parsed.workers, out=out)
    differences = version_differences(recorded.versions)
    if differences:
        click.echo("modu: warning: installed versions differ from the manifest's, results may differ: "
                   + ", ".join(differences), err=True)
    start = time.perf_counter()
    ensemble = run_ensemble(recorded.scenario, replications=recorded.replications, seed=recorded.seed,
                            executor=parsed, progress=not quiet)
    write_run(ensemble, out, figures=recorded.figures, wall_time=time.perf_counter() - start,
              source=recorded.scenario_file,
              rerun_of={"manifest": str(recorded.path), "scenario_hash": recorded.scenario.digest()})
    comparison = check_files(recorded, out)
    total = len(recorded.files)
    if comparison.different:
        click.echo(f"modu: rerun: {count(len(comparison.different))} of {count(total)} files differ from the record: "
                   + ", ".join(comparison.different) + f" (rerun in {out}/)", err=True)
        sys.exit(EXIT_DIFFERENT)
    click.echo(f"reproduced byte for byte: {count(total)} of {count(total)} files ({recorded.scenario.name}, "
               f"seed {recorded.seed}, {count(recorded.replications)} replications); wrote {out}/")

