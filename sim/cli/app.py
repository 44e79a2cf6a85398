"""``modu app``: serve the interactive page (:mod:`sim.app`)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import click

from sim._install import install_command
from sim.app import SCENARIO_ENV
from sim.app.model import DEFAULT_SCENARIO
from sim.app.ui import offline_solara, page_title
from sim.cli.common import SCENARIO, BadInputError, refusals
from sim.scenario import load_scenario


@click.command()
@click.argument("scenario", required=False, type=SCENARIO)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on (the default serves this machine only).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port (0 = any free port).")
@refusals
def app(scenario: Path | None, host: str, port: int) -> None:
    """Serve the interactive page (sliders, live plots, a reference run) of SCENARIO [default: scenarios/baseline.yaml].

    Sliders for the network effect, congestion and each city's budget and
    allocation; live plots of firms and shares and a map. Needs the app extra:
    pip install "modu[app]", or pip install -e ".[app]" in a checkout.
    """
    path = scenario or DEFAULT_SCENARIO
    base = load_scenario(path)  # refuse a bad scenario before starting a server
    offline_solara(title=page_title(base))
    try:
        from solara.__main__ import cli as solara_cli
    except ImportError:
        raise BadInputError(f"the page needs the app extra; install it with {install_command('app')}") from None
    os.environ[SCENARIO_ENV] = str(Path(path).resolve())
    # Solara warns (13 lines, on every page load) that it sets its session cookie samesite=lax rather than
    # samesite=none when served over plain http on an address other than "localhost": lax is what a page
    # opened directly (not embedded in another site's iframe) needs, so the warning tells a user nothing.
    warnings.filterwarnings("ignore", message="Cookies with samesite=none require https")
    solara_cli.main(["run", "sim.app", "--host", host, "--port", str(port), "--production", "--no-open", "--no-check-version"],
                    prog_name="modu app")


