"""Writing what a planner's answers rest on: each answer checked draw by draw, and where it turns over.

The section every policy report carries (``modu compare``, ``modu optimise``, ``modu equilibrium``),
from :mod:`sim.policy.robustness`, and its tables: ``robustness.csv`` (one row per answer) and
``robustness_draws.csv`` (one row per draw: the drawn quantities and whether each answer holds).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sim.policy.robustness import Robustness
from sim.reporting.files import write_csv


def robustness_table(answers: list[Robustness]) -> pd.DataFrame:
    """One row per answer: question, answer, share of draws it holds in, what fixes it, where it turns over."""
    rows = []
    for a in answers:
        box = a.discovery.prim.box if a.discovery is not None else None
        rows.append({"question": a.question, "answer": a.answer, "draws": len(a.holds), "holds_share": a.share,
                     "by_construction": a.by_construction or "",
                     "turns_over_where": "; ".join(box.conditions()) if box is not None else "",
                     "density": box.density if box is not None else None,
                     "coverage": box.coverage if box is not None else None,
                     "note": "" if a.by_construction or a.share == 1 else a.turns_over()})
    return pd.DataFrame(rows)


def draws_table(answers: list[Robustness]) -> pd.DataFrame:
    """One row per draw: its quantities, then whether each answer holds (``holds_1``, ``holds_2``, ... in order)."""
    if not answers:
        return pd.DataFrame()
    frame = answers[0].quantities.copy()
    frame.insert(0, "draw", range(len(frame)))
    for i, a in enumerate(answers, start=1):
        frame[f"holds_{i}"] = a.holds
    return frame


def write_robustness(out: Path, answers: list[Robustness]) -> list[str]:
    """Write ``robustness.csv`` and ``robustness_draws.csv``; returns the files written (relative to ``out``)."""
    if not answers:
        return []
    write_csv(out / "robustness.csv", robustness_table(answers))
    write_csv(out / "robustness_draws.csv", draws_table(answers))
    return ["robustness.csv", "robustness_draws.csv"]


def robustness_section(answers: list[Robustness], source: str) -> str:
    """``## Does the answer hold over what no data pin?``: every answer, how often it holds, where it turns over."""
    if not answers:
        return ""
    assumptions = answers[0].assumptions
    text = ["## Does the answer hold over what no data pin?", "",
            f"The runs drew {source}. "
            + ("The deep uncertainties — " + ", ".join(f"`{a}`" for a in assumptions)
               + " — are assumptions no data pin (ranges and reasons in the assumptions file). "
               if assumptions else
               "The deep uncertainties (lever effects, anchor weight, depreciation, budgets, the outside option) "
               "were held at the scenario's values (`--fixed-assumptions`): the answers below are conditional on "
               "them. ")
            + "Each answer is checked draw by draw; where it fails in some draws, scenario discovery (PRIM) over "
              "the drawn quantities says where it turns over (`robustness.csv`, `robustness_draws.csv`).", ""]
    text += [f"- {a.sentence()}" for a in answers]
    text.append("")
    return "\n".join(text)
