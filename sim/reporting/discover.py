"""Writing a ``modu discover`` folder: the PRIM box of an outcome over a sweep, its trajectory, report and manifest."""

from __future__ import annotations

from pathlib import Path

from sim.policy.discovery import Discovery
from sim.reporting.files import atomic_write, finish_folder, output_folder, write_csv
from sim.reporting.style import save_drawn
from sim.reporting.text import markdown_table, p_value


def write_discovery(result: Discovery, sweep: Path, out: Path, figures: bool = True) -> list[str]:
    """Write ``trajectory.csv``, ``box.csv``, (``cart_rules.txt``), figures, ``report.md`` and the manifest."""
    with output_folder(out):
        trajectory = result.to_df().reset_index()
        box = result.box().reset_index()
        write_csv(out / "trajectory.csv", trajectory)
        write_csv(out / "box.csv", box)
        written = ["trajectory.csv", "box.csv"]
        if result.rules:
            atomic_write(out / "cart_rules.txt", lambda h: h.write("\n".join(result.rules) + "\n"))
            written.append("cart_rules.txt")
        best = result.best_restricted()
        if best is not None:
            write_csv(out / "best_restricted_box.csv", best.to_df().reset_index())
            written.append("best_restricted_box.csv")
        if figures:
            written += save_drawn(out, {"trajectory": result.plot().figure, "box": result.prim.plot_box().figure})
        b = result.prim.box
        text = [f"# Scenario discovery: `{result.outcome}`", "",
                f"**{result.sentence()}**", "",
                f"Sweep: `{sweep}`; {len(result.y)} runs, {int(result.y.sum())} with the outcome "
                f"({result.y.mean():.0%}). PRIM (peeling α = {result.prim.alpha}, pasting, pruning restrictions "
                f"with quasi-p-value above {result.prim.prune}) over the swept columns "
                f"{', '.join(f'`{c}`' for c in result.inputs)}; box {result.prim.chosen} of the peeling trajectory "
                f"(the last with density ≥ {result.prim.threshold:.0%}, or the densest), after pasting and pruning: "
                f"coverage {b.coverage:.0%}, density {b.density:.0%}, mass {b.mass:.0%}."
                + (f" {note}" if (note := result.threshold_note()) else ""), "",
                "## The box", "",
                markdown_table(box.assign(quasi_p=[p_value(q) for q in box.quasi_p])) if len(box)
                else "No restriction on the inputs.", ""]
        if not len(box):
            text += ["## Why no restriction", "", result.why_unrestricted(), ""]
        if best is not None:
            text += [f"## The best restricted box on the trajectory (box {best.index})", "",
                     f"{result.best_sentence()} It is not kept (see above); it is labelled on the trajectory figure and "
                     "drawn in the box-limits figure.", "",
                     markdown_table(best.to_df().reset_index().assign(quasi_p=lambda f: [p_value(q) for q in f.quasi_p])), ""]
        text += ["A restriction's quasi-p-value is a one-sided binomial test of the box's outcome runs against the "
                 "box without that restriction: small values mean the restriction matters.", ""]
        if figures:
            text += ["![peeling trajectory](figures/trajectory.png)", "", "![box limits](figures/box.png)", ""]
        if result.rules:
            text += ["## Decision-tree rules (for comparison)", "", *[f"- {rule}" for rule in result.rules], ""]
        text += ["Files: `trajectory.csv` (coverage, density and mass of every box on the peeling trajectory), "
                 "`box.csv` (the chosen box's limits and quasi-p-values)"
                 + (", `best_restricted_box.csv` (the same for the best restricted box)" if best is not None else "")
                 + ".", ""]
        return finish_folder(out, written, "\n".join(text), sweep=str(sweep), outcome=result.outcome, inputs=result.inputs,
                       runs=len(result.y), outcome_runs=int(result.y.sum()), threshold=result.prim.threshold,
                       alpha=result.prim.alpha, chosen_box=result.prim.chosen,
                       best_restricted_box=None if best is None else best.index, complete=True)
