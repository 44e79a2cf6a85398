"""Writing the folders of ``modu optimise`` and ``modu equilibrium`` (``modu discover``'s: :mod:`sim.reporting.discover`).

Each folder holds CSV tables, figures (PNG and SVG), ``report.md`` and ``manifest.json``
(written last, see :mod:`sim.reporting.files`). ``modu optimise``'s folder is also the
store of its runs (``sweep.sqlite``, :func:`sim.reporting.files.resumable_folder`), so the
same command resumes an interrupted run. Nothing here runs a simulation.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from sim.experiments.compare import CONFIDENCE
from sim.experiments.store import STORE_FILE
from sim.model.parameters import LEVERS
from sim.policy.objectives import ROBUST_WITHIN, SIGNIFICANCE, Objective
from sim.policy.optimisation import OptimisePlan, OptimiseResult
from sim.policy.race import EquilibriumResult
from sim.policy.robustness import Robustness
from sim.policy.runs import SEED_RULE
from sim.reporting.files import finish_folder, output_folder, write_csv
from sim.reporting.palette import LEVER_COLORS
from sim.reporting.robustness import robustness_section, write_robustness
from sim.reporting.style import PAGE_WIDTH, plt, save_drawn, value_axis
from sim.reporting.text import count, estimate, interval_name, markdown_table, number, p_value, percent, span

CI = interval_name("confidence", CONFIDENCE)
"""The name of the objective's intervals."""


# ----------------------------------------------------------------------------- optimise


def _option_text(plan: OptimisePlan) -> str:
    return (f"{len(plan.candidates)} candidates × {len(plan.draws)} draws × {plan.replications} replications "
            f"= {plan.n_runs:,} runs")


def write_optimisation(result: OptimiseResult, out: Path, figures: bool = True,
                       robustness: list[Robustness] | None = None, **record: object) -> list[str]:
    """Write an optimisation's folder: tables, figures, ``report.md`` and the manifest (last).

    Args:
        result: the scored optimisation.
        out: its folder (the store of its runs, already open: :func:`sim.reporting.files.resumable_folder`).
        figures: draw the figures.
        robustness: its answers checked draw by draw (:func:`sim.policy.robustness.optimise_robustness`), written as
            ``robustness.csv`` and ``robustness_draws.csv`` and a section of the report.
        record: how the runs went, for the manifest: ``resumed``, ``ran``, ``sessions``, ``executor``, ``wall_time_s``.

    Returns:
        The files written, relative to ``out``.
    """
    plan, answers = result.plan, robustness or []
    written = write_optimisation_tables(result, out, figures) + write_robustness(out, answers)
    report = optimisation_report(result, figures) + robustness_section(answers, plan.draws_source)
    return finish_folder(out, written, report, scenario_file=plan.source,
                  scenario_name=plan.scenario.name, city=plan.city, objective=plan.objective.text,
                  constraint=plan.constraint.text if plan.constraint else None, draws_source=plan.draws_source,
                  resolution=plan.resolution, definition=plan.definition(), seed=plan.seed, seed_rule=SEED_RULE,
                  replications=plan.replications, runs=plan.n_runs, resumed=record.get("resumed"),
                  ran=record.get("ran"), sessions=record.get("sessions"), store=STORE_FILE,
                  executor=record.get("executor"), wall_time_s=record.get("wall_time_s"), complete=True)


def write_optimisation_tables(result: OptimiseResult, out: Path, figures: bool) -> list[str]:
    """``candidates.csv``, ``draws.csv``, ``runs.csv`` (objective per candidate × draw × replication) and figures."""
    plan = result.plan
    write_csv(out / "candidates.csv", result.to_df())
    write_csv(out / "draws.csv", plan.draws.reset_index(names="draw"))
    write_csv(out / "runs.csv", result.runs())
    written = ["candidates.csv", "draws.csv", "runs.csv"]
    if figures:
        drawn = {"ternary": result.plot().figure}
        if plan.candidates[plan.candidates.kind == "grid"].budget.nunique() > 1:
            drawn["budget"] = plot_budget(result)
        written += save_drawn(out, drawn)
    return written


def plot_budget(result: OptimiseResult) -> plt.Figure:
    """The objective against the budget at the best mix (mean and confidence interval)."""
    t = result.table
    b = t.iloc[result.best]
    rows = t[(t.kind == "grid") & (t[list(LEVERS)].sub([b[lv] for lv in LEVERS]).abs().max(axis=1) < 1e-9)]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.errorbar(rows.budget, rows.objective, yerr=[rows.objective - rows.objective_low,
                                                   rows.objective_high - rows.objective], fmt="-o", capsize=3)
    objective = result.plan.objective
    ax.set(xlabel="annual budget (100 M yuan)", ylabel=_labelled(objective, result.plan.city),
           title=f"At the best mix (compute {b.compute:.2f}, data {b.data:.2f}, anchor {b.anchor:.2f})\n"
                 f"mean over draws × replications; whiskers: {CI}")
    value_axis(ax, broken=False)
    value_axis(ax, axis="x", broken=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


_SUPPORT_REASON = {"firms": "firms cannot be negative", "top": "a probability lies between 0% and 100%"}


def _value(objective: Objective, x: float, difference: bool = False) -> str:
    """A value of the objective without its unit.

    Firms whole, a probability in percent, a difference of two probabilities in percentage points.
    """
    if objective.kind == "top":
        return number(100 * x) if difference else percent(x)
    return count(x) if objective.kind == "firms" else number(x)


def _unit(objective: Objective, difference: bool = False) -> str:
    """The unit after a value of the objective (with its leading space), or nothing for a percentage."""
    if objective.kind == "top":
        return " percentage points" if difference else ""
    return f" {objective.unit}"


def _labelled(objective: Objective, city: str) -> str:
    """The objective's label, which names its unit (a probability: in percent)."""
    return objective.label(city) + (" (%)" if objective.kind == "top" else "")


def _with_interval(objective: Objective, value: float, low: float, high: float, difference: bool = False) -> str:
    """A value of the objective with its confidence interval and unit.

    ``18,480 firms (95% confidence interval 0 to 63,610 firms; its lower end cut at 0: firms cannot be
    negative)``; the cut is named only where the interval reached the objective's support.
    """
    unit = _unit(objective, difference)
    bounds = span(low, high, lambda x: _value(objective, x, difference))
    cut = "" if difference else " and ".join(
        f"its {end} end cut at {_value(objective, bound)}" for end, v, bound in
        (("lower", low, objective.support[0]), ("upper", high, objective.support[1])) if v == bound)
    reason = f"; {cut}: {_SUPPORT_REASON[objective.kind]}" if cut else ""
    return f"{_value(objective, value, difference)}{unit} ({CI} {bounds}{unit if bounds != '–' else ''}{reason})"


def _mix(row: pd.Series) -> str:
    return ", ".join(f"{lever} {row[lever]:.2f}" for lever in LEVERS)


def recommendation(result: OptimiseResult) -> str:
    """One paragraph: the best mix, its value, the regret of the current mix and the robustness."""
    t, p = result.table, result.plan
    objective = p.objective
    b, c = t.iloc[result.best], t.iloc[result.current]
    regret, low, high = result.regret()
    n_same = int(t.indistinguishable[t.kind == "grid"].sum())
    budget = (f" at a budget of {number(b.budget)} × 100 M yuan a year"
              if t[t.kind == "grid"].budget.nunique() > 1 else "")
    return (f"{p.city}'s best mix is {_mix(b)}{budget}: {objective.label(p.city)} "
            f"{_with_interval(objective, b.objective, b.objective_low, b.objective_high)}, against "
            f"{_value(objective, c.objective)}{_unit(objective)} for the current mix ({_mix(c)}, budget "
            f"{number(c.budget)} × 100 M yuan a year); staying costs "
            f"{_with_interval(objective, regret, low, high, difference=True)}. {n_same} of "
            f"{int((t.kind == 'grid').sum())} grid mixes are statistically indistinguishable from the best (one-sided "
            f"paired test at {percent(SIGNIFICANCE)}); the best mix is within {percent(ROBUST_WITHIN)} of each draw's "
            f"own best in {percent(result.robustness())} of the {len(p.draws)} parameter draws ({p.draws_source}).")


def optimisation_report(result: OptimiseResult, figures: bool) -> str:
    """``report.md`` of an optimisation: the recommendation and its uncertainty, for planners."""
    plan, t = result.plan, result.table
    objective = plan.objective
    label = _labelled(objective, plan.city)
    top = t[t.feasible].sort_values("objective", ascending=False).head(10)
    shown = pd.DataFrame({
        "candidate": top.candidate.astype(str), "kind": top.kind,
        **{lever: [f"{v:.2f}" for v in top[lever]] for lever in LEVERS},
        "budget (100 M yuan a year)": top.budget,
        f"{label} [{CI}]": [
            estimate(v, lo, hi, lambda x: _value(objective, x)) for v, lo, hi in
            zip(top.objective, top.objective_low, top.objective_high, strict=True)],
        "firms gained over no spending (firms)": [count(v) for v in top.firms_gained],
        "p_worse": [p_value(p) for p in top.p_worse], "robust (share of draws)": [percent(v) for v in top.robust]})
    text = [f"# Best lever mix for {plan.city} ({plan.scenario.name})", "", recommendation(result), "",
            f"Objective: {label} (`--objective {objective.text}`)"
            + (f", subject to `{plan.constraint.text}`" if plan.constraint else "") + f". {_option_text(plan)}; "
            f"engine `{plan.scenario.engine}`; draws from {plan.draws_source}; the other cities follow their scenario "
            f"policies and strategies. Every candidate shares the random stream of run (draw, replication), so "
            f"differences are paired (common random numbers). Intervals are {CI}s of the mean over the "
            f"{len(plan.draws)} draws × {plan.replications} replications (Student t)"
            + (f", cut to the values the objective can take ({_SUPPORT_REASON[objective.kind]})"
               if objective.kind in _SUPPORT_REASON else "") + ".", ""]
    if figures:
        text += ["![objective per mix](figures/ternary.png)", "",
                 "Star: best mix; diamond: the scenario's current mix; hatched: mixes statistically indistinguishable "
                 f"from the best (one-sided paired t-test of best − mix over draws × replications, "
                 f"{percent(SIGNIFICANCE)}).", ""]
        if plan.candidates[plan.candidates.kind == "grid"].budget.nunique() > 1:
            text += ["![objective per budget](figures/budget.png)", ""]
    text += ["## The ten best candidates", "", markdown_table(shown), "",
             f"Mixes are shares of the budget. `p_worse`: p-value that the best is better than the candidate; "
             f"`robust`: share of draws in which the candidate is within {percent(ROBUST_WITHIN)} of that draw's best; "
             "firms gained: the city's firms over the same runs with its budget 0.", "",
             "Files: `candidates.csv` (every candidate), `runs.csv` (the objective of every run), `draws.csv` (the "
             "parameter draws), `sweep.sqlite` (the stored runs: the same command resumes).", ""]
    return "\n".join(text)


# ----------------------------------------------------------------------------- equilibrium


def plot_allocations(result: EquilibriumResult) -> plt.Figure:
    """Each player's lever mix at the equilibrium and at the cooperative optimum (stacked bars)."""
    table = result.allocations()
    fig, ax = plt.subplots(figsize=(min(PAGE_WIDTH, 1.4 * len(table) + 2.5), 4.2))
    labels = [f"{row.city}\n{row.profile}" for row in table.itertuples()]
    bottom = pd.Series(0.0, index=table.index)
    for lever in LEVERS:
        ax.bar(labels, table[lever], bottom=bottom, color=LEVER_COLORS[lever], label=lever)
        bottom += table[lever]
    ax.set(ylabel="share of the city's budget", ylim=(0, 1),
           title="Lever mixes: equilibrium against cooperative optimum")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5), title="lever", title_fontsize=8)
    fig.tight_layout()
    return fig


def race_summary(result: EquilibriumResult) -> str:
    """One paragraph: fixed point or cycle, national firms against the cooperative optimum, involution."""
    d = result.dynamics
    what = {"equilibrium": f"reached a pure Nash equilibrium of the grid after {d.rounds} rounds",
            "cycle": f"cycle through {len(d.cycle) - 1} profiles (no pure equilibrium reached)",
            "max_rounds": f"neither settled nor cycled within {d.rounds} rounds"}[d.status]
    eq, co = result.involution_equilibrium, result.involution_cooperative
    gap = result.national_cooperative / result.national_equilibrium - 1 if result.national_equilibrium else math.nan
    return (f"Best responses {what}. National firms at the horizon: {count(result.national_equilibrium)} there, "
            f"{count(result.national_cooperative)} at the cooperative optimum ({result.cooperative_method}); price "
            f"of anarchy {number(result.price_of_anarchy, 5)} (the cooperative optimum has {percent(gap, 2)} more "
            f"national firms). Involution index (share of the policy effect that is relocation between cities): "
            f"{percent(eq['index'], 1)} at the {'equilibrium' if d.converged else 'last profile'}, "
            f"{percent(co['index'], 1)} at the cooperative optimum.")


def write_equilibrium(result: EquilibriumResult, out: Path, figures: bool = True, executor: str | None = None,
                      wall_time: float | None = None, robustness: list[Robustness] | None = None) -> list[str]:
    """Write ``path.csv``, ``allocations.csv``, ``profiles.csv``, ``involution.csv``, figures, report and manifest.

    ``robustness``: the race's answers checked draw by draw (:func:`sim.policy.robustness.equilibrium_robustness`),
    written as ``robustness.csv`` and ``robustness_draws.csv`` and a section of the report.
    """
    plan = result.plan
    with output_folder(out):
        tables = {"path": result.to_df(), "allocations": result.allocations(), "profiles": result.evaluated,
                  "involution": result.involution_table()}
        for name, frame in tables.items():
            write_csv(out / f"{name}.csv", frame)
        written = [f"{name}.csv" for name in tables] + write_robustness(out, robustness or [])
        if figures:
            written += save_drawn(out, {"path": result.plot().figure, "allocations": plot_allocations(result)})
        totals = pd.DataFrame([{
            "profile": label, "gains (firms)": count(acc["gains"]), "growth (firms)": count(acc["growth"]),
            "moved (firms)": count(acc["moved"]), "diverted (firms)": count(acc["diverted"]),
            "spend, all cities (100 M yuan over the run)": count(acc["spend"]), "involution index": percent(acc["index"], 1)}
            for label, acc in (("equilibrium", result.involution_equilibrium),
                               ("cooperative", result.involution_cooperative))])
        allocations = result.allocations().rename(columns={"budget": "budget (100 M yuan a year)"})
        for lever in LEVERS:
            allocations[lever] = [f"{v:.2f}" for v in allocations[lever]]
        d = result.dynamics
        objective = plan.objective
        cost = f"{number(plan.cost)}{_unit(objective)}" if objective.kind != "top" else f"{number(plan.cost)} (probability)"
        budgets = sorted(plan.strategies.budget.unique())
        text = [f"# The subsidy race: {', '.join(plan.cities)} ({plan.scenario.name})", "", race_summary(result), "",
                f"Each player chooses its mix over compute, data and anchor on a grid of {len(plan.strategies)} "
                "strategies" + (f" (annual budgets {', '.join(number(b) for b in budgets)} × 100 M yuan)"
                                if len(budgets) > 1 else "")
                + f" to maximise its {_labelled(objective, 'its city')} "
                f"(`--objective {objective.text}`) minus {cost} per 100 M yuan spent, "
                f"given the others' choices; players update in turn from their current policies. Payoffs are means over "
                f"{len(plan.draws)} parameter draws ({plan.draws_source}) × {plan.replications} replications, the same "
                f"random streams for every profile (common random numbers); engine `{plan.scenario.engine}`. "
                f"{len(result.evaluated)} profiles evaluated.", "",
                "## Equilibrium and cooperative allocations", "",
                "Mixes are shares of each city's budget.", "", markdown_table(allocations), "",
                "## Involution", "",
                "Against the same runs with every budget 0 (means over draws × replications): gains are the firms won "
                "by the cities that gain, growth the change in national firms, moved the firms relocated by moves, "
                "diverted the rest of the gains taken from other cities (entrants and survivors that would have been "
                "elsewhere). The involution index is (gains − growth) / gains: the share of the policy's effect — "
                "and, attributing spending in proportion to the firms it wins, of its spending — that is relocation "
                "rather than national growth.", "", markdown_table(totals), ""]
        if figures:
            text += ["![best-response path](figures/path.png)", "", "![allocations](figures/allocations.png)", ""]
        text.append(robustness_section(robustness or [], plan.draws_source))
        text += ["Files: `path.csv` (the sequence of profiles), `allocations.csv`, `profiles.csv` (every profile "
                 "evaluated: payoffs and national firms), `involution.csv` (growth accounting per city).", ""]
        return finish_folder(out, written, "\n".join(text), scenario_file=plan.source, scenario_name=plan.scenario.name,
                       cities=plan.cities, strategies=plan.strategies.to_dict("records"), cost=plan.cost,
                       objective=plan.objective.text,
                       draws=plan.draws.to_dict("records"), draws_source=plan.draws_source, seed=plan.seed,
                       seed_rule=SEED_RULE, replications=plan.replications, status=d.status,
                       equilibrium=list(d.profile), cooperative=list(result.cooperative),
                       price_of_anarchy=result.price_of_anarchy, executor=executor, wall_time_s=wall_time,
                       complete=True)
