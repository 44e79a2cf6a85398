"""Writing policy-design folders: ``modu discover``, ``modu optimise`` and ``modu equilibrium``.

Each folder holds CSV tables, figures (PNG and SVG), ``report.md`` and ``manifest.json``
(written last, see :mod:`sim.reporting.files`). ``modu optimise`` also keeps its runs in
the folder's store (``sweep.sqlite``), so the same command resumes an interrupted run.
"""

from __future__ import annotations

import shlex
import time
from contextlib import ExitStack
from pathlib import Path

import pandas as pd

from sim.experiments.executors import Executor, ExecutorSpec, open_executor
from sim.experiments.policy import (
    ROBUST_WITHIN,
    SEED_RULE,
    SIGNIFICANCE,
    EquilibriumResult,
    OptimisePlan,
    OptimiseResult,
    compute_optimisation,
    optimisation_result,
)
from sim.experiments.simplex import LEVERS
from sim.experiments.store import STORE_FILE, RunStore
from sim.inference.discover import Discovery
from sim.reporting.figures import plt, save_figure
from sim.reporting.files import INCOMPLETE, atomic_write, manifest, output_folder, write_csv, write_json


def _markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    """A small table as GitHub markdown (numbers to ``digits`` significant figures)."""
    def cell(v: object) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return ""
        return f"{v:.{digits}g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _figures(out: Path, drawn: dict[str, plt.Figure]) -> list[str]:
    written = []
    for stem, fig in drawn.items():
        written += [str(p.relative_to(out)) for p in save_figure(fig, out / "figures", stem)]
    return written


def _finish(out: Path, written: list[str], report: str, **fields: object) -> list[str]:
    atomic_write(out / "report.md", lambda h: h.write(report))
    written = [*written, "report.md"]
    write_json(out / "manifest.json", manifest(out, written, **fields))
    return [*written, "manifest.json"]


# ----------------------------------------------------------------------------- discover


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
            written += _figures(out, {"trajectory": result.plot().figure, "box": result.prim.plot_box().figure})
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
                "## The box", "", _markdown(box) if len(box) else "No restriction on the inputs.", ""]
        if not len(box):
            text += ["## Why no restriction", "", result.why_unrestricted(), ""]
        if best is not None:
            text += [f"## The best restricted box on the trajectory (box {best.index})", "",
                     f"{result.best_sentence()} It is not kept (see above); it is labelled on the trajectory figure and "
                     "drawn in the box-limits figure.", "",
                     _markdown(best.to_df().reset_index()), ""]
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
        return _finish(out, written, "\n".join(text), sweep=str(sweep), outcome=result.outcome, inputs=result.inputs,
                       runs=len(result.y), outcome_runs=int(result.y.sum()), threshold=result.prim.threshold,
                       alpha=result.prim.alpha, chosen_box=result.prim.chosen,
                       best_restricted_box=None if best is None else best.index, complete=True)


# ----------------------------------------------------------------------------- optimise


def _option_text(plan: OptimisePlan) -> str:
    return (f"{len(plan.candidates)} candidates × {len(plan.draws)} draws × {plan.replications} replications "
            f"= {plan.n_runs:,} runs")


def run_optimisation(plan: OptimisePlan, out: Path, executor: str | ExecutorSpec | Executor = "processes",
                     progress: bool = True, figures: bool = True) -> tuple[OptimiseResult, int, int, float]:
    """Run (or resume) an optimisation into ``out`` and write its folder.

    Returns:
        The result, runs found in the store, runs computed now, and the seconds spent computing.

    Raises:
        StoreError: ``out`` holds something else or another optimisation.
    """
    start = time.perf_counter()
    command = shlex.join(["modu", "optimise", plan.source, plan.city])
    with open_executor(executor) as opened, ExitStack() as stack:
        open_store = lambda: RunStore(out, plan.definition(), command, ignore=(INCOMPLETE,))  # noqa: E731
        if not out.exists():
            stack.enter_context(output_folder(out))
            store = stack.enter_context(open_store())
        else:
            store = stack.enter_context(open_store())
            stack.enter_context(output_folder(out))
        totals, resumed, ran = compute_optimisation(plan, opened, store, progress)
        elapsed = time.perf_counter() - start
        result = optimisation_result(plan, totals)
        written = write_optimisation_tables(result, out, figures)
        _finish(out, written, optimisation_report(result, figures), scenario_file=plan.source,
                scenario_name=plan.scenario.name, city=plan.city, objective=plan.objective.text,
                constraint=plan.constraint.text if plan.constraint else None, draws_source=plan.draws_source,
                resolution=plan.resolution, definition=plan.definition(), seed=plan.seed, seed_rule=SEED_RULE,
                replications=plan.replications, runs=plan.n_runs, resumed=resumed, ran=ran, sessions=store.session,
                store=STORE_FILE, executor=opened.describe(), wall_time_s=elapsed, complete=True)
    return result, resumed, ran, elapsed


def write_optimisation_tables(result: OptimiseResult, out: Path, figures: bool) -> list[str]:
    """``candidates.csv``, ``draws.csv``, ``runs.csv`` (objective per candidate × draw × replication) and figures."""
    plan = result.plan
    write_csv(out / "candidates.csv", result.to_df())
    write_csv(out / "draws.csv", plan.draws.reset_index(names="draw"))
    K, D, R = result.values.shape
    runs = pd.DataFrame({"candidate": [k for k in range(K) for _ in range(D * R)],
                         "draw": [d for _ in range(K) for d in range(D) for _ in range(R)],
                         "replication": [r for _ in range(K * D) for r in range(R)],
                         "objective": result.values.ravel()})
    write_csv(out / "runs.csv", runs)
    written = ["candidates.csv", "draws.csv", "runs.csv"]
    if figures:
        drawn = {"ternary": result.plot().figure}
        if plan.candidates[plan.candidates.kind == "grid"].budget.nunique() > 1:
            drawn["budget"] = plot_budget(result)
        written += _figures(out, drawn)
    return written


def plot_budget(result: OptimiseResult) -> plt.Figure:
    """The objective against the budget at the best mix (mean and 95% interval)."""
    t = result.table
    b = t.iloc[result.best]
    rows = t[(t.kind == "grid") & (t[list(LEVERS)].sub([b[lv] for lv in LEVERS]).abs().max(axis=1) < 1e-9)]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.errorbar(rows.budget, rows.objective, yerr=[rows.objective - rows.objective_low,
                                                   rows.objective_high - rows.objective], fmt="-o", capsize=3)
    ax.set(xlabel="annual budget (100 M yuan)", ylabel=result.plan.objective.label(result.plan.city),
           title=f"At the best mix (compute {b.compute:.2f}, data {b.data:.2f}, anchor {b.anchor:.2f})")
    ax.grid(alpha=0.3)
    return fig


def optimisation_report(result: OptimiseResult, figures: bool) -> str:
    """``report.md`` of an optimisation: the recommendation and its uncertainty, for planners."""
    plan, t = result.plan, result.table
    top = t[t.feasible].sort_values("objective", ascending=False).head(10)
    columns = ["candidate", "kind", *LEVERS, "budget", "objective", "objective_low", "objective_high", "firms_gained",
               "p_worse", "robust"]
    text = [f"# Best lever mix for {plan.city} ({plan.scenario.name})", "", result.recommendation(), "",
            f"Objective: {plan.objective.label(plan.city)} (`--objective {plan.objective.text}`)"
            + (f", subject to `{plan.constraint.text}`" if plan.constraint else "") + f". {_option_text(plan)}; "
            f"engine `{plan.scenario.engine}`; draws from {plan.draws_source}; the other cities follow their scenario "
            f"policies and strategies. Every candidate shares the random stream of run (draw, replication), so "
            "differences are paired (common random numbers).", ""]
    if figures:
        text += ["![objective per mix](figures/ternary.png)", "",
                 "Star: best mix; diamond: the scenario's current mix; hatched: mixes statistically indistinguishable "
                 f"from the best (one-sided paired t-test of best − mix over draws × replications, {SIGNIFICANCE:.0%}).",
                 ""]
    text += ["## The ten best candidates", "", _markdown(top[columns]), "",
             f"`p_worse`: p-value that the best is better than the candidate; `robust`: share of draws in which the "
             f"candidate is within {ROBUST_WITHIN:.0%} of that draw's best; `firms_gained`: the city's firms over the "
             "same runs with its budget 0.", "",
             "Files: `candidates.csv` (every candidate), `runs.csv` (the objective of every run), `draws.csv` (the "
             "parameter draws), `sweep.sqlite` (the stored runs: the same command resumes).", ""]
    return "\n".join(text)


# ----------------------------------------------------------------------------- equilibrium


def plot_allocations(result: EquilibriumResult) -> plt.Figure:
    """Each player's lever mix at the equilibrium and at the cooperative optimum (stacked bars)."""
    table = result.allocations()
    fig, ax = plt.subplots(figsize=(1.4 * len(table) + 2.5, 4.2))
    labels = [f"{row.city}\n{row.profile}" for row in table.itertuples()]
    bottom = pd.Series(0.0, index=table.index)
    for lever, color in zip(LEVERS, ("tab:blue", "tab:orange", "tab:green"), strict=True):
        ax.bar(labels, table[lever], bottom=bottom, color=color, label=lever)
        bottom += table[lever]
    ax.set(ylabel="share of the budget", ylim=(0, 1), title="Lever mixes: equilibrium against cooperative optimum")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def write_equilibrium(result: EquilibriumResult, out: Path, figures: bool = True, executor: str | None = None,
                      wall_time: float | None = None) -> list[str]:
    """Write ``path.csv``, ``allocations.csv``, ``profiles.csv``, ``involution.csv``, figures, report and manifest."""
    plan = result.plan
    inv = []
    for label, acc in (("equilibrium", result.involution_equilibrium), ("cooperative", result.involution_cooperative)):
        inv.append(acc["per_city"].assign(profile=label))
    involution = pd.concat(inv, ignore_index=True)
    with output_folder(out):
        tables = {"path": result.to_df(), "allocations": result.allocations(), "profiles": result.evaluated,
                  "involution": involution}
        for name, frame in tables.items():
            write_csv(out / f"{name}.csv", frame)
        written = [f"{name}.csv" for name in tables]
        if figures:
            written += _figures(out, {"path": result.plot().figure, "allocations": plot_allocations(result)})
        totals = pd.DataFrame([{"profile": label, **{k: v for k, v in acc.items() if k != "per_city"}}
                               for label, acc in (("equilibrium", result.involution_equilibrium),
                                                  ("cooperative", result.involution_cooperative))])
        d = result.dynamics
        text = [f"# The subsidy race: {', '.join(plan.cities)} ({plan.scenario.name})", "", result.summary(), "",
                f"Each player chooses its mix over compute, data and anchor on a grid of {len(plan.strategies)} "
                "strategies" + (f" (budgets {sorted(plan.strategies.budget.unique())})"
                                if plan.strategies.budget.nunique() > 1 else "")
                + f" to maximise its {plan.objective.label('its city')} "
                f"(`--objective {plan.objective.text}`) minus {plan.cost:g} per 100 M yuan spent, "
                f"given the others' choices; players update in turn from their current policies. Payoffs are means over "
                f"{len(plan.draws)} parameter draws ({plan.draws_source}) × {plan.replications} replications, the same "
                f"random streams for every profile (common random numbers); engine `{plan.scenario.engine}`. "
                f"{len(result.evaluated)} profiles evaluated.", "",
                "## Equilibrium and cooperative allocations", "", _markdown(result.allocations()), "",
                "## Involution", "",
                "Against the same runs with every budget 0: `gains` are the firms won by the cities that gain, "
                "`growth` the change in national firms, `moved` the firms relocated by moves, `diverted` the rest of "
                "the gains taken from other cities (entrants and survivors that would have been elsewhere). The "
                "involution index is (gains − growth) / gains: the share of the policy's effect — and, attributing "
                "spending in proportion to the firms it wins, of its spending — that is relocation rather than "
                "national growth.", "", _markdown(totals), ""]
        if figures:
            text += ["![best-response path](figures/path.png)", "", "![allocations](figures/allocations.png)", ""]
        text += ["Files: `path.csv` (the sequence of profiles), `allocations.csv`, `profiles.csv` (every profile "
                 "evaluated: payoffs and national firms), `involution.csv` (growth accounting per city).", ""]
        return _finish(out, written, "\n".join(text), scenario_file=plan.source, scenario_name=plan.scenario.name,
                       cities=plan.cities, strategies=plan.strategies.to_dict("records"), cost=plan.cost,
                       objective=plan.objective.text,
                       draws=plan.draws.to_dict("records"), draws_source=plan.draws_source, seed=plan.seed,
                       seed_rule=SEED_RULE, replications=plan.replications, status=d.status,
                       equilibrium=list(d.profile), cooperative=list(result.cooperative),
                       price_of_anarchy=result.price_of_anarchy, executor=executor, wall_time_s=wall_time,
                       complete=True)
