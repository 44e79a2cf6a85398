"""``modu schema``: the JSON Schema of scenario files, for editors' YAML extensions (docs/schema.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sim.cli.common import refusals
from sim.reporting.files import atomic_write
from sim.scenario.schema import json_schema


@click.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the schema to this file [default: standard output].")
@refusals
def schema(out: Path | None) -> None:
    """Print the JSON Schema of scenario files (types, bounds, defaults, units, descriptions).

    Point an editor's YAML extension at it to get completion and checks while
    writing a scenario; see docs/schema.md.
    """
    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    atomic_write(out, lambda handle: handle.write(text))
    click.echo(f"wrote {out}")
