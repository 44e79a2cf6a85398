"""Shared pieces of the ``modu`` commands: error handling, common options, output folders."""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

EXIT_BAD_INPUT = 2


class BadInputError(ValueError):
    """Any other bad command-line input; its message is one line naming what is wrong."""


def refused() -> tuple[type[Exception], ...]:
    """The errors each layer raises for bad input; the command line turns them into one line and exit code 2.

    Imported when a command runs, not when ``modu --help`` starts.
    """
    from sim.experiments.errors import ExperimentError
    from sim.experiments.executors import ExecutorError
    from sim.inference.errors import InferenceError
    from sim.policy.errors import PolicyError
    from sim.reporting.rerun import ManifestError
    from sim.scenario.errors import ScenarioError

    return (ScenarioError, ExperimentError, ExecutorError, InferenceError, PolicyError, ManifestError, BadInputError)


def message(exc: BaseException) -> str:
    """The one line shown for a refusal; a store's folder is the ``--out`` option's."""
    from sim.experiments.errors import StoreError

    return f"--out: {exc}" if isinstance(exc, StoreError) else str(exc)


def refusals(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the project's input errors into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except refused() as exc:
            click.echo(f"modu: error: {message(exc)}", err=True)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper


def default_out(name: str) -> Path:
    """Default output folder of a scenario: ``outputs/<name>`` (a name of dots alone cannot climb out)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip(".") or "_"
    return Path("outputs") / safe


class ModuGroup(click.Group):
    """The ``modu`` group: click's own usage errors also become one line ``modu: error: ...`` (exit 2).

    Bare ``modu`` prints the help and exits 0, as ``modu --help`` does.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Print the help and exit 0 when no argument is given; otherwise parse as click does."""
        if not args:
            click.echo(ctx.get_help(), color=ctx.color)
            ctx.exit(0)
        return super().parse_args(ctx, args)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command line; usage errors are one line on stderr with click's exit code.

        A scenario's warnings (:class:`sim.scenario.errors.ScenarioWarning`) are one line
        each on stderr, ``modu: warning: ...``; other warnings keep Python's format.
        """
        kwargs["standalone_mode"] = False
        with warnings.catch_warnings():  # restores warnings.showwarning on the way out
            warnings.showwarning = _show_warning
            try:
                code = super().main(*args, **kwargs)
            except click.ClickException as exc:
                click.echo(f"modu: error: {' '.join(exc.format_message().split())}", err=True)
                sys.exit(exc.exit_code)
            except click.Abort:
                click.echo("modu: aborted", err=True)
                sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


_python_show_warning = warnings.showwarning


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """Print a scenario's warning as one line ``modu: warning: ...``; hand any other to Python."""
    errors = sys.modules.get("sim.scenario.errors")  # loaded if a scenario warned; not imported for --help
    if errors is not None and issubclass(category, errors.ScenarioWarning):
        click.echo(f"modu: warning: {message}", err=True)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


def out_option(default: str) -> Callable[..., Any]:
    """The ``--out`` folder option; ``default`` says where output goes without it."""
    return click.option("--out", type=click.Path(file_okay=False, path_type=Path), help=f"Output folder [default: {default}].")


quiet_option = click.option("--quiet", is_flag=True, help="No progress bars.")
figures_option = click.option("--figures/--no-figures", default=True, show_default=True, help="Draw the figures.")

executor_option = click.option(
    "--executor", default="processes", show_default=True,
    help="Where runs go: 'serial', 'processes[:N]' (N local worker processes; default all cores) or "
         "'dask[:N|:ADDRESS]' (a local Dask cluster of N workers, or the scheduler at tcp://host:port; "
         "needs the dask extra).")


class ScenarioFile(click.ParamType):
    """A scenario argument: a file path, or the name of a shipped scenario (``baseline``, ``china``, ...).

    Nothing is checked here: the loader refuses a bad file in one line.
    """

    name = "scenario"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        """The path the argument names (:func:`sim.scenario.resources.scenario_path`)."""
        from sim.scenario.resources import scenario_path

        return value if isinstance(value, Path) else scenario_path(value)


SCENARIO = ScenarioFile()
"""The click type of every scenario argument and option."""


# ----------------------------------------------------------------------------- options of the policy commands
ENGINES = ("counts", "agents", "scenario")
"""``--engine`` of the policy commands (``scenario``: each run on the scenario's own engine)."""


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
    from sim.inference.quantities import ASSUMPTIONS_PATH

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


def scenario_and_draws(scenario: Path, draws: int, prior: bool, ranges: tuple[str, ...], seed: int | None,
                       assumptions: Path | None) -> tuple[Any, Any]:
    """The scenario a policy command names and the parameter draws it asked for (:func:`sim.inference.draws.parameter_draws`)."""
    from sim.inference.draws import parameter_draws
    from sim.scenario import load_scenario

    base = load_scenario(scenario)  # the SCENARIO argument type already resolved a shipped scenario's name
    return base, parameter_draws(draws, base.seed if seed is None else seed, base, prior, ranges, assumptions)
