"""The ``modu`` command line (also ``python -m sim``): click only, over the computation and reporting layers.

Every refusal of bad input is one line on stderr, ``modu: error: ...``, with
exit code 2, and nothing written. Commands are imported when they run, so
``modu --help`` and ``modu validate`` start without loading Mesa or the
experiment machinery.
"""

from __future__ import annotations

import importlib

import click

from sim.cli.common import ModuGroup

COMMANDS = {
    "run": ("sim.cli.run", "run", "Run a scenario's replications and write its tables, figures and manifest."),
    "validate": ("sim.cli.run", "validate", "Check scenario files without running them (--show-merged: as they will run)."),
    "init": ("sim.cli.init", "init", "Write a starter scenario of your own that extends a shipped one (commented)."),
    "compare": ("sim.cli.compare", "compare", "Run scenarios side by side with common random numbers; report for planners."),
    "sweep": ("sim.cli.sweep", "sweep", "Run replications over a grid or sample of scenario fields (resumable)."),
    "calibrate": ("sim.cli.calibrate", "calibrate", "Estimate parameters and city constants by ABC-SMC against the data."),
    "sensitivity": ("sim.cli.sensitivity", "sensitivity", "Sobol' or Morris indices of the final counts, shares and HHI."),
    "discover": ("sim.cli.discover", "discover", "Which swept conditions lead to an outcome (PRIM; --cart adds tree rules)."),
    "optimise": ("sim.cli.optimise", "optimise", "A city's best lever mix, its uncertainty and the regret of the current one."),
    "equilibrium": ("sim.cli.equilibrium", "equilibrium", "The subsidy race: equilibrium, price of anarchy, involution index."),
    "forecast": ("sim.cli.forecast", "forecast", "Every city's firms to a scenario's end over the posterior and assumptions."),
    "rerun": ("sim.cli.rerun", "rerun_command", "Reproduce a run from its manifest and check every file byte for byte."),
    "schema": ("sim.cli.schema", "schema", "Print the JSON Schema of scenario files (for editors' YAML extensions)."),
    "app": ("sim.cli.app", "app", "Serve the interactive page (Mesa SolaraViz) of a scenario."),
}
"""Command name → (module, function, one-line help); the module is imported only when the command runs."""


class LazyGroup(ModuGroup):
    """A group whose commands are imported on first use (fast ``--help``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The command names, in the order of :data:`COMMANDS`."""
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """Import and return one command (None for an unknown name: click then says so)."""
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        command = getattr(importlib.import_module(module), attr)
        command.name = name
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands with their one-line help without importing them."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, _, help_) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="modu")
def main() -> None:
    """Modu: cities competing to become the 'model capital' of the AI industry.

    Run a scenario YAML file (a path, or the name of a shipped scenario such as
    baseline or china; see scenarios/README.md) and read the tidy CSVs, figures
    and manifest it writes. `modu init NAME` starts a scenario of your own.
    """


if __name__ == "__main__":  # pragma: no cover
    main()
