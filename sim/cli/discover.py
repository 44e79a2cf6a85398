"""``modu discover``: the command line over :mod:`sim.policy.discovery` (PRIM on a sweep's runs)."""

from __future__ import annotations

from pathlib import Path

import click

from sim.cli.common import default_out, figures_option, out_option, refusals


@click.command()
@click.argument("sweep_folder", type=click.Path(path_type=Path, file_okay=False))
@click.option("--outcome", required=True, metavar="EXPR",
              help="Which runs count, over summary.csv's columns, e.g. \"leader == 'Hefei'\" or \"hhi > 0.3\".")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.8, show_default=True,
              help="Minimum density of the chosen box.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="Share of the box's runs peeled per step.")
@click.option("--cart", is_flag=True, help="Also list decision-tree rules (needs the discover extra: scikit-learn).")
@out_option("outputs/<sweep folder>-discover")
@figures_option
@refusals
def discover(sweep_folder: Path, outcome: str, threshold: float, alpha: float, cart: bool, out: Path | None,
             figures: bool) -> None:
    """Find the swept conditions under which OUTCOME holds in SWEEP_FOLDER (a `modu sweep` folder), by PRIM.
    If the box restricts no input, say why (the outcome's share of all runs against --threshold) and show the best
    restricted box of the peeling trajectory.
    """  # noqa: D205, D415
    from sim.policy.discovery import discover as find
    from sim.policy.discovery import read_sweep
    from sim.reporting.discover import write_discovery

    summary, paths = read_sweep(sweep_folder)
    result = find(summary, paths, outcome, threshold=threshold, alpha=alpha, cart=cart)
    out = out or default_out(f"{sweep_folder.resolve().name}-discover")
    write_discovery(result, sweep_folder, out, figures)
    click.echo(result.summary())
    click.echo(f"wrote {out}/ (read report.md)")
