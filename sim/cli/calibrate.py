"""``modu calibrate``: the command line over :mod:`sim.inference`."""

from __future__ import annotations

from pathlib import Path

import click

from sim.cli.common import SCENARIO, BadInputError, default_out, executor_option, quiet_option, refusals
from sim.experiments.executors import parse_executor
from sim.inference.data import default_targets
from sim.inference.estimates import too_few_particles
from sim.inference.identify import FitSettings
from sim.inference.problem import BASELINE_PATH, make_problem
from sim.inference.quantities import default_priors
from sim.inference.readers import other_reading, resume_populations
from sim.inference.results import run_calibration
from sim.scenario import load_scenario
from sim.scenario.resources import CALIBRATION_DIR, shown


# ----------------------------------------------------------------------------- the command
@click.command()
@click.option("--scenario", "scenario_path", type=SCENARIO, default=BASELINE_PATH,
              show_default=True, help="Scenario giving the initial state and the assumed quantities.")
@click.option("--targets", "targets_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Documented figures with their roles (initial, target, validation) [default: targets.yaml beside the "
                   "calibration the scenario names (calibration/china/targets.yaml for china), else "
                   "calibration/targets.yaml].")
@click.option("--priors", "priors_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Priors of the calibrated quantities [default: priors.yaml beside the calibration the scenario "
                   "names (calibration/china/priors.yaml for china), else calibration/priors.yaml].")
@click.option("--shenzhen-increment", default="gross", show_default=True, metavar="READING",
              help="Reading of Shenzhen's 'increment of 42,600' among the targets file's readings: gross (inflow "
                   "2016-2022, a target), misprint (the increment misprinted or counted from an earlier year: "
                   "dropped), count-2016 (with a scenario whose Shenzhen starts at 21,200: the 2016 count misprinted).")
@click.option("--particles", type=click.IntRange(10, 100_000), default=300, show_default=True,
              help="ABC particles per generation.")
@click.option("--generations", type=click.IntRange(1, 100), default=16, show_default=True,
              help="Most ABC generations (the prior sample included).")
@click.option("--min-epsilon", type=click.FloatRange(0, 10), default=0.02, show_default=True,
              help="Stop once the tolerance (RMS relative error) reaches this.")
@click.option("--predictive", type=click.IntRange(10, 100_000), default=400, show_default=True,
              help="Posterior predictive simulations (fit bands, forecast, validation).")
@click.option("--engine", type=click.Choice(["counts", "agents"]), default="counts", show_default=True,
              help="Engine of the calibration runs (the same model in distribution; counts is faster).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=20160, show_default=True, help="Root seed.")
@executor_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for calibrated.yaml, report.md, figures/ and tables [default: outputs/calibrate-<scenario name>]. "
                   "Writing into the shipped calibration folder, which scenarios name, needs --replace-shipped.")
@click.option("--replace-shipped", is_flag=True,
              help="Allow --out to be the shipped calibration folder (replacing the estimates scenarios take).")
@click.option("--resume", "resume_path", type=click.Path(dir_okay=False, path_type=Path),
              help="populations.csv of an earlier run with the same settings: continue its ABC from its last generation.")
@click.option("--other-reading", "other_paths", type=click.Path(file_okay=False, path_type=Path), multiple=True,
              help="Output folder of a calibration under another reading of the Shenzhen increment, compared in the "
                   "report (repeatable).")
@click.option("--sbc", type=click.IntRange(0, 10_000), default=0, show_default=True,
              help="Simulation-based calibration: fit this many synthetic datasets drawn from the prior "
                   "(coverage.csv, sbc_ranks.csv, figures/sbc_ranks.png).")
@click.option("--leave-one-out", "lopo", is_flag=True,
              help="Fit without each pattern in turn and predict it (leave_one_out.csv).")
@click.option("--reduced-particles", type=click.IntRange(10, 100_000), default=100, show_default=True,
              help="ABC particles of each --sbc and --leave-one-out fit.")
@click.option("--reduced-generations", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Most ABC generations of each --sbc and --leave-one-out fit.")
@quiet_option
@refusals
def calibrate(scenario_path: Path, targets_path: Path | None, priors_path: Path | None, shenzhen_increment: str, particles: int,
              generations: int, min_epsilon: float, predictive: int, engine: str, seed: int, executor: str, out: Path,
              resume_path: Path | None, other_paths: tuple[Path, ...], replace_shipped: bool, sbc: int, lopo: bool,
              reduced_particles: int, reduced_generations: int, quiet: bool) -> None:
    """Estimate the behavioural parameters and city constants by ABC-SMC against the documented patterns.

    Writes calibrated.yaml (the point estimate, which a scenario takes by naming
    it in its calibration: key), report.md, figures/, populations.csv,
    predictive.csv and manifest.json.
    """
    from sim.reporting.calibration import write_calibration
    from sim.reporting.text import count

    spec = parse_executor(executor)
    scenario = load_scenario(scenario_path)
    priors_path = priors_path or default_priors(scenario)
    targets_path = targets_path or default_targets(scenario)
    out = out or default_out(f"calibrate-{scenario.name}")
    shipped = CALIBRATION_DIR.resolve()
    if (out.resolve() == shipped or shipped in out.resolve().parents) and not replace_shipped:
        raise BadInputError(f"--out: {out} is the shipped calibration that scenarios name; add --replace-shipped to "
                            "replace it, or choose another folder")
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out: {out} exists and is not a folder")
    problem = make_problem(scenario_path, targets_path, priors_path, shenzhen_increment, engine)
    resumed = resume_populations(resume_path, problem.prior, particles) if resume_path else None
    others = [other_reading(path, shenzhen_increment) for path in other_paths]
    result = run_calibration(problem, particles, generations, min_epsilon, predictive, seed, spec,
                             progress=not quiet, resumed=resumed, others=others, sbc=sbc, lopo=lopo,
                             reduced=FitSettings(reduced_particles, reduced_generations, min_epsilon),
                             options={"engine": engine, "scenario": shown(scenario_path),
                                      "targets": shown(targets_path), "priors": shown(priors_path),
                                      "resumed_from": str(resume_path or ""),
                                      "other_readings": [str(p) for p in other_paths]})
    write_calibration(out, result)
    populations, posterior, wall = result.populations, result.posterior, result.wall_time
    click.echo(f"calibrated in {wall:.0f} s ({result.executor}): {len(populations)} generations, "
               f"final ε = {posterior.epsilon:.4f}, {count(sum(p.simulations for p in populations))} simulations")
    if doubt := too_few_particles(posterior):
        click.echo(f"posterior intervals and verdicts not interpretable: {doubt}")
    click.echo(f"wrote {out}/")


