"""``modu init``: a starter scenario of one's own, extending a shipped scenario by name."""

from __future__ import annotations

from pathlib import Path

import click

from sim.cli.common import BadInputError, refusals
from sim.reporting.files import atomic_write
from sim.scenario.resources import shipped_scenarios
from sim.scenario.starter import starter_text


@click.command()
@click.argument("name")
@click.option("--from", "parent", default="baseline", show_default=True, metavar="SCENARIO",
              help=f"The shipped scenario it extends: {', '.join(shipped_scenarios())}.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              help="Folder to write NAME.yaml into [default: the current folder].")
@refusals
def init(name: str, parent: str, out: Path) -> None:
    """Write NAME.yaml, a starter scenario that extends a shipped one by name.

    It runs as written (only its name differs from the shipped scenario), and
    its comments explain the main keys with examples to uncomment: the
    calibration, time span, parameters, cities and events. An existing file is
    never overwritten (exit 2).
    """
    text = starter_text(name, parent)
    path = out / f"{name}.yaml"
    if path.exists() or path.is_symlink():
        raise BadInputError(f"{path} exists; choose another NAME or --out folder (nothing was written)")
    atomic_write(path, lambda handle: handle.write(text))
    click.echo(f"wrote {path} (extends {parent}); next: modu validate {path}, then modu run {path}")
