"""A starter scenario of one's own (``modu init``): a commented file that extends a shipped scenario by name.

The file is valid as written (it changes nothing but the name), and each
example in it is valid when uncommented, so a user edits from a scenario that
runs.
"""

from __future__ import annotations

import difflib
import re
import textwrap
from pathlib import Path

from sim.scenario.errors import ScenarioError
from sim.scenario.loading import load_scenario
from sim.scenario.merged import yaml_flow
from sim.scenario.resources import BASELINE_CALIBRATION, shipped_calibrations, shipped_scenarios

WIDTH = 88
"""Width of the starter's comment paragraphs."""

NAME = re.compile(r"\w[\w.-]{0,99}")
"""A starter's name: it names the file (NAME.yaml) and the run (its output folder), so letters, digits, ``_.-``."""


def starter_text(name: str, parent: str = "baseline") -> str:
    """The text of a starter scenario ``name`` that extends the shipped scenario ``parent``.

    Args:
        name: the new scenario's name (also its file's stem).
        parent: a shipped scenario's name (``baseline``, ``china``, ...).

    Raises:
        ScenarioError: ``name`` cannot name a file, or ``parent`` is no shipped scenario.
    """
    if not NAME.fullmatch(name) or name.lower().endswith((".yaml", ".yml")):
        raise ScenarioError(f"NAME: {name!r} must be 1-100 letters, digits, '_', '.' or '-', starting with a letter "
                            "or digit, without .yaml (it names the file NAME.yaml and the run)")
    shipped = shipped_scenarios()
    if parent not in shipped:
        close = difflib.get_close_matches(parent, list(shipped), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; shipped: {', '.join(shipped)}"
        raise ScenarioError(f"--from: no shipped scenario {parent!r}{hint}")
    base = load_scenario(shipped[parent])
    calibration = next((n for n, p in shipped_calibrations().items()
                        if base.calibration and p.resolve() == Path(base.calibration).resolve()), None)
    inherited = f"the shipped calibration '{calibration}'" if calibration else "none: the code defaults"
    named = [c for c in base.cities if not c.pool]
    city = next((c for c in named if c.policy), named[0] if named else base.cities[0])
    t = base.time
    commands = [(f"modu validate {name}.yaml", "check it (one line per problem)"),
                (f"modu validate --show-merged {name}.yaml", "the whole scenario as it will run, each value's source"),
                (f"modu run {name}.yaml", f"run it; writes outputs/{name}/"),
                (f"modu compare {parent} {name}.yaml", f"compare it with '{parent}', replication by replication")]
    width = max(len(c) for c, _ in commands)
    blocks = [
        [*_wrap(f"{name}: a scenario of your own, made by `modu init`. It extends the shipped scenario '{parent}' "
                "and changes only what it writes below; everything else (cities, policies, calibration, time span, "
                f"parameters) comes from '{parent}'."),
         "#", *(f"#   {c.ljust(width)}   {what}" for c, what in commands), "#",
         *_wrap("To change something, delete the '#' in front of an example below (and of the lines under it) and "
                "edit the values. `modu schema` describes every key with its unit. Say in a comment where each "
                "number you write comes from (a source, `geography`, or `assumption: why`), as the shipped "
                "scenarios do."),
         "",
         f"extends: {parent}  # a shipped scenario's name, or a path relative to this file",
         f"name: {yaml_flow(name)}  # names the run: its output folder and its label in reports",
         "description: >-", "  The question this scenario answers, in a sentence or two."],
        [*_wrap(f"Calibration: estimates for the parameters and city constants this file does not set. Inherited: "
                f"{inherited}. A shipped calibration's name ({', '.join(shipped_calibrations())}), a path to your "
                "own (`modu calibrate` writes one) or null (the code defaults) replaces it."),
         f"#calibration: {calibration or BASELINE_CALIBRATION}"],
        [*_wrap(f"Time span and ensemble, inherited: {t.start}-{t.end} with {t.steps_per_year} steps a year, "
                f"{base.replications} replications, seed {base.seed}. Mappings merge key by key: this runs on to "
                f"{t.end + 3}."),
         f"#time: {{end: {t.end + 3}}}", f"#replications: {base.replications}"],
        [*_wrap("Behavioural parameters: a value written here replaces the calibrated one (`modu validate "
                "--show-merged` lists them all). network_effect is α, the agglomeration elasticity (docs/ODD.md): "
                "in the pure urn α > 1 tips to one city."),
         "#parameters:", "#  network_effect: 1.0  # assumption: why"],
        [*_wrap(f"Cities merge by name: an entry naming one of the parent's cities "
                f"({', '.join(c.name for c in base.cities)}) changes only the keys it writes, and shares (allocation, "
                "sector_mix) are replaced whole. A new name adds a city and needs at least `firms`."),
         "#cities:", f"#  - name: {yaml_flow(city.name)}",
         "#    policy: {budget: 40, allocation: {compute: 0.5, data: 0.3, anchor: 0.2}}  # 100 M yuan a year; "
         "example values",
         "#  - {name: NewCity, firms: 100}  # placeholder: the documented count and its source"],
        [*_wrap(f"Timed events: a list replaces the parent's whole ({_events(len(base.events))}); `events: []` "
                "drops them."),
         "#events:", f"#  - {{year: {(t.start + t.end) // 2}, city: {yaml_flow(city.name)}, invest: {{compute: 10}}}}"
         "  # one-off spending, 100 M yuan per lever"],
    ]
    return "\n\n".join("\n".join(block) for block in blocks) + "\n"


def _wrap(text: str) -> list[str]:
    """A paragraph as YAML comment lines."""
    return ["# " + line for line in textwrap.wrap(text, WIDTH - 2, break_on_hyphens=False)]


def _events(n: int) -> str:
    return "it has none" if n == 0 else f"it has {n} event" + ("s" if n > 1 else "")
