"""The best lever mix for one city (``modu optimise``): every candidate policy over draws × replications.

Every candidate (each grid mix × each budget, the scenario's current policy, and the city
spending nothing) is run for every draw and replication (:mod:`sim.policy.runs`). The best
candidate maximises the mean objective (:mod:`sim.policy.objectives`) among those meeting
the constraint; a candidate is *indistinguishable* from the best when a one-sided paired
t-test of ``best − candidate`` over the draws × replications does not reject equality at 5%.
(The pairs share draws, so they are not independent when draws matter more than
replications; the test is then too eager to call a mix worse — read the hatched region as
a lower bound of the plausible set.)

:func:`plan_optimisation` checks every input before anything runs; :func:`optimise` runs
and scores in memory (the notebook's entry point); :func:`compute_optimisation` runs into a
resumable store and :func:`optimisation_result` scores (the command line's).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sim.analysis.expressions import Expression, ExpressionError, parse_expression
from sim.experiments.compare import CONFIDENCE, mean_interval
from sim.experiments.executors import Executor, ExecutorSpec, open_executor
from sim.experiments.store import RunStore
from sim.inference.draws import Draws
from sim.model.parameters import LEVERS
from sim.policy.errors import PolicyError
from sim.policy.objectives import ROBUST_WITHIN, SIGNIFICANCE, Objective, paired_p_value, parse_objective, standard_error
from sim.policy.runs import (
    SEED_RULE,
    TOTALS,
    city_index,
    compute_cells,
    draw_row_changes,
    draws_table,
    lever_grid,
    mix_changes,
    run_cell,
)
from sim.scenario import Scenario
from sim.scenario.paths import derive

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MAX_RUNS = 2_000_000
"""Largest optimisation accepted (candidates × draws × replications)."""


@dataclass(frozen=True)
class OptimisePlan:
    """A validated optimisation: candidates × draws × replications.

    Attributes:
        scenario: the base scenario (engine already set).
        source: where it came from (recorded).
        city: the deciding city.
        objective: what it maximises.
        constraint: an outcome expression over the candidates table (None: every candidate is allowed).
        candidates: ``compute, data, anchor, budget, kind`` (``grid``, ``current`` or ``no spending``), one row
            per candidate; the grid first.
        draws: parameter draws (columns: dotted paths; possibly none), one row per draw.
        draws_source: how a table's draws were made (recorded).
        replications: per draw.
        seed: root seed.
        resolution: the grid's step.
    """

    scenario: Scenario
    source: str
    city: str
    objective: Objective
    constraint: Expression | None
    candidates: pd.DataFrame
    draws: pd.DataFrame
    draws_source: str
    replications: int
    seed: int
    resolution: float

    @property
    def n_runs(self) -> int:
        """Candidates × draws × replications."""
        return len(self.candidates) * len(self.draws) * self.replications

    @property
    def current(self) -> int:
        """Index of the scenario's current policy among the candidates."""
        return int(np.flatnonzero(self.candidates.current.to_numpy())[0])

    @property
    def reference(self) -> int:
        """Index of the candidate in which the city spends nothing."""
        return int(np.flatnonzero((self.candidates.kind == "no spending").to_numpy())[0])

    def changes(self, k: int) -> dict:
        """The dotted-path changes that make candidate ``k``."""
        row = self.candidates.iloc[k]
        return mix_changes(self.city, [row[lever] for lever in LEVERS], row.budget)

    def definition(self) -> dict:
        """What identifies the runs (a store refuses any other); the objective and constraint are not part of it."""
        return {"city": self.city, "replications": self.replications, "seed": self.seed, "seed_rule": SEED_RULE,
                "draws": json.loads(self.draws.to_json(orient="split", index=False, double_precision=15)),
                "points": [{"values": {**{lever: float(row[lever]) for lever in LEVERS}, "budget": float(row.budget)},
                            "scenario_hash": self.scenario.digest()} for _, row in self.candidates.iterrows()]}


def candidate_columns(scenario: Scenario) -> list[str]:
    """The columns of the candidates table an optimisation's ``--constraint`` may use."""
    return ["compute", "data", "anchor", "budget", "objective", "firms", "firms_gained", "spend", "national",
            "p_first", *(f"firms_{c.name}" for c in scenario.cities)]


def plan_optimisation(scenario: Scenario, city: str, *, resolution: float | str = 0.05,
                      budgets: Sequence[float] | None = None, objective: str | Objective = "firms",
                      constraint: str | None = None, draws: Draws | pd.DataFrame | None = None,
                      draws_source: str = "none", replications: int = 5, seed: int | None = None,
                      engine: str | None = "counts", source: str | None = None) -> OptimisePlan:
    """Check every input of an optimisation before anything runs.

    Args:
        scenario: the base scenario.
        city: the deciding city (a name in the scenario).
        resolution: step of the simplex grid (0.05: 231 mixes).
        budgets: annual budgets to try (100 M yuan); None: the city's current budget.
        objective: ``firms``, ``top:K`` or ``per100m`` (see :class:`Objective`).
        constraint: an outcome expression over :func:`candidate_columns` (e.g. ``"spend <= 150"``).
        draws: parameter draws: a :class:`~sim.inference.draws.Draws` or a table (columns: dotted paths);
            None: one draw, the scenario as written.
        draws_source: how a table's draws were made (recorded).
        replications: replications per draw.
        seed: root seed (default: the scenario's).
        engine: ``counts`` or ``agents`` for every run, or None to keep the scenario's.
        source: the scenario's file (recorded).

    Raises:
        PolicyError: unknown city or objective, a resolution leaving no point, a bad constraint, an empty
            budget, too many runs.
        ScenarioError: a draw or a candidate makes the scenario invalid.
    """
    objective = parse_objective(objective) if isinstance(objective, str) else objective
    index = city_index(scenario, city, "CITY")
    base = derive(scenario, {"engine": engine}) if engine and engine != scenario.engine else scenario
    here = base.cities[index]
    if objective.kind == "top" and here.pool:
        raise PolicyError(f"--objective: {city} is a pool, which is never ranked; top:K needs a city")
    current_budget = here.policy.budget if here.policy else 0.0
    current_mix = here.policy.allocation.as_tuple() if here.policy else (1 / 3, 1 / 3, 1 / 3)
    budgets = [current_budget] if budgets is None else list(budgets)
    if max(budgets) <= 0:
        raise PolicyError(f"--budget: {city} has no budget in {scenario.name}, so no mix spends anything; "
                          "give --budget LO:HI:STEP")
    grid = lever_grid(resolution)
    rows = [{**row, "budget": b, "kind": "grid"} for b in budgets for row in grid.to_dict("records")]
    table = pd.DataFrame(rows)
    table["current"] = False
    on_grid = np.flatnonzero((np.abs(table[list(LEVERS)].to_numpy() - current_mix).max(axis=1) < 1e-9)
                             & (np.abs(table.budget.to_numpy() - current_budget) < 1e-9))
    extra = []
    if len(on_grid):
        table.loc[on_grid[0], "current"] = True
    else:
        extra.append({**dict(zip(LEVERS, current_mix, strict=True)), "budget": current_budget, "kind": "current",
                      "current": True})
    extra.append({**dict(zip(LEVERS, current_mix, strict=True)), "budget": 0.0, "kind": "no spending", "current": False})
    table = pd.concat([table, pd.DataFrame(extra)], ignore_index=True)
    draws, draws_source = draws_table(draws, draws_source)
    seed = scenario.seed if seed is None else seed
    n_runs = len(table) * len(draws) * replications
    if n_runs > MAX_RUNS:
        raise PolicyError(f"--resolution/--draws/--replications: {n_runs:,} runs is more than {MAX_RUNS:,}")
    parsed = None
    if constraint is not None:
        try:
            parsed = parse_expression(constraint)
            parsed.check(candidate_columns(base))
        except ExpressionError as exc:
            raise PolicyError(f"--constraint: {exc}") from None
    for d in range(len(draws)):  # a draw or candidate that makes the scenario invalid is refused now
        derive(base, draw_row_changes(draws, d, mix_changes(city, table.iloc[0][list(LEVERS)], budgets[-1])))
    return OptimisePlan(base, source or scenario.name, city, objective, parsed, table, draws, draws_source,
                        replications, seed, float(_grid_step(grid)))


def _grid_step(grid: pd.DataFrame) -> float:
    values = np.unique(grid.compute.to_numpy())
    return float(values[1] - values[0]) if len(values) > 1 else 1.0


def compute_optimisation(plan: OptimisePlan, executor: str | ExecutorSpec | Executor = "serial",
                         store: RunStore | None = None, progress: bool = True) -> tuple[np.ndarray, int, int]:
    """Run every candidate × draw × replication not yet in ``store``.

    Each run is committed to the store as its cell (candidate × draw) finishes, so an
    interrupted optimisation resumes with the same results.

    Returns:
        The totals ``[candidate, draw, replication, len(TOTALS), city]``, runs found in the store, runs
        computed now.
    """
    K, D, R, C = len(plan.candidates), len(plan.draws), plan.replications, len(plan.scenario.cities)
    totals = np.full((K, D, R, len(TOTALS), C), np.nan)
    done: set[tuple[int, int]] = set()
    if store is not None:
        for run in store.runs():
            if run.status == "ok":
                totals[run.point, run.replication // R, run.replication % R] = np.array(run.outcome["totals"])
                done.add((run.point, run.replication))
    cells, keys = [], []
    for k in range(K):
        for d in range(D):
            missing = [r for r in range(R) if (k, d * R + r) not in done]
            if missing:
                cells.append((plan.scenario, draw_row_changes(plan.draws, d, plan.changes(k)), plan.seed, d, missing))
                keys.append((k, d))

    def record(i: int, result: np.ndarray) -> None:
        k, d = keys[i]
        for r, values in zip(cells[i][-1], result, strict=True):
            totals[k, d, r] = values
            if store is not None:
                store.record(k, d * R + r, plan.seed, [d, r], outcome=json.dumps({"totals": values.tolist()}))

    ran = sum(len(c[-1]) for c in cells)
    with open_executor(executor) as opened:
        compute_cells(cells, run_cell, opened, progress, f"optimise {plan.city}", record)
    return totals, len(done), ran


@dataclass
class OptimiseResult:
    """The objective of every candidate policy, the best, and how sure we are.

    Attributes:
        plan: what was run.
        totals: ``[candidate, draw, replication, len(TOTALS), city]`` run totals.
        values: ``[candidate, draw, replication]`` the objective per run.
        table: one row per candidate (see :meth:`to_df`).
        best: index of the best feasible candidate.
    """

    plan: OptimisePlan
    totals: np.ndarray
    values: np.ndarray
    table: pd.DataFrame
    best: int

    def to_df(self) -> pd.DataFrame:
        """One row per candidate: ``compute, data, anchor`` (shares), ``budget`` (100 M yuan a year), ``kind``,
        ``objective`` (mean over draws × replications) with ``objective_se`` and ``objective_low``/``_high`` (95%
        confidence interval, Student t over draws × replications, cut to the objective's support),
        ``firms`` (the city's, at the horizon), ``firms_gained`` (over the city spending nothing, paired),
        ``spend`` (the city's, 100 M yuan over the run), ``national`` (all cities' firms), ``p_first`` (share of
        runs the city ends first), ``firms_<city>`` for every city, ``p_worse`` (one-sided paired p-value that
        the best is better), ``indistinguishable``, ``feasible``, ``best``, ``current``,
        ``robust`` (share of draws in which the candidate is within 5% of the draw's best).
        """  # noqa: D205
        return self.table.copy()

    @property
    def current(self) -> int:
        """Index of the scenario's current policy."""
        return self.plan.current

    def regret(self) -> tuple[float, float, float]:
        """Objective lost by keeping the current policy: mean of the paired ``best − current`` and its interval.

        The interval is the 95% confidence interval (Student t); a difference may take either sign, so it is not cut.
        """
        return mean_interval((self.values[self.best] - self.values[self.current]).ravel())

    def robustness(self) -> float:
        """Share of draws in which the best candidate's mean is within 5% of that draw's best candidate."""
        return float(self.table.robust.iloc[self.best])

    def grid_view(self) -> pd.DataFrame:
        """Per grid mix: the best budget's row (the heat map's cells)."""
        grid = self.table[self.table.kind == "grid"]
        ranked = grid.assign(_v=grid.objective.where(grid.feasible))
        order = ranked.sort_values(["_v", "budget"], ascending=[False, True], na_position="last", kind="stable")
        return order.drop_duplicates(list(LEVERS)).sort_index().drop(columns="_v")

    def runs(self) -> pd.DataFrame:
        """The objective of every run: one row per candidate × draw × replication (``runs.csv``)."""
        K, D, R = self.values.shape
        return pd.DataFrame({"candidate": [k for k in range(K) for _ in range(D * R)],
                             "draw": [d for _ in range(K) for d in range(D) for _ in range(R)],
                             "replication": [r for _ in range(K * D) for r in range(R)],
                             "objective": self.values.ravel()})

    def plot(self, ax: Axes | None = None) -> Axes:
        """Ternary heat map of the mean objective per mix (at its best budget), the best mix starred, the current
        mix as a diamond, and the mixes indistinguishable from the best hatched
        (:func:`sim.policy.figures.plot_optimisation`).

        Args:
            ax: axes to draw on (a new figure if None).

        Returns:
            The Axes.
        """  # noqa: D205
        from sim.policy.figures import plot_optimisation

        return plot_optimisation(self, ax)


def optimisation_result(plan: OptimisePlan, totals: np.ndarray) -> OptimiseResult:
    """Score every candidate, pick the best feasible one and test the others against it.

    Raises:
        PolicyError: no candidate meets the constraint, or the objective is undefined everywhere.
    """
    index = city_index(plan.scenario, plan.city, "CITY")
    ranked = np.array([not c.pool for c in plan.scenario.cities])
    reference = totals[plan.reference]
    values = np.stack([plan.objective.values(totals[k], index, ranked, reference) for k in range(len(totals))])
    firms = totals[:, :, :, 0, :]
    rows = []
    for k in range(len(totals)):
        mean, low, high = mean_interval(values[k].ravel(), CONFIDENCE, plan.objective.support)
        se = standard_error(values[k].ravel())
        first = (firms[k][..., ranked].argmax(axis=-1) == np.flatnonzero(ranked).tolist().index(index)) \
            if ranked[index] else np.zeros(firms[k].shape[:-1], dtype=bool)
        rows.append({"objective": mean, "objective_se": se, "objective_low": low, "objective_high": high,
                     "firms": firms[k][..., index].mean(),
                     "firms_gained": (firms[k][..., index] - firms[plan.reference][..., index]).mean(),
                     "spend": totals[k, :, :, -1, index].mean(), "national": firms[k].sum(axis=-1).mean(),
                     "p_first": first.mean(),
                     **{f"firms_{c.name}": firms[k][..., j].mean() for j, c in enumerate(plan.scenario.cities)}})
    table = pd.concat([plan.candidates.reset_index(drop=True), pd.DataFrame(rows)], axis=1)
    table.insert(0, "candidate", range(len(table)))
    feasible = table.objective.notna().to_numpy(copy=True)
    if plan.constraint is not None:
        feasible &= plan.constraint.evaluate(table).to_numpy()
    feasible &= (table.kind != "no spending").to_numpy()
    if not feasible.any():
        why = f"no candidate meets --constraint {plan.constraint.text!r}" if plan.constraint else \
            f"the objective {plan.objective.text} is undefined for every candidate"
        raise PolicyError(f"--constraint: {why}")
    best = int(np.nanargmax(np.where(feasible, table.objective.to_numpy(), -np.inf)))
    table["p_worse"] = [paired_p_value((values[best] - values[k]).ravel()) for k in range(len(table))]
    table["indistinguishable"] = feasible & (table.p_worse.to_numpy() >= SIGNIFICANCE)
    table["feasible"] = feasible
    table["best"] = table.candidate == best
    with warnings.catch_warnings():  # a candidate whose objective is undefined in a whole draw (per100m, no spending)
        warnings.simplefilter("ignore", RuntimeWarning)
        per_draw = np.nanmean(values, axis=2)  # [candidate, draw]
    draw_best = np.nanmax(np.where(feasible[:, None], per_draw, -np.inf), axis=0)
    table["robust"] = (per_draw >= draw_best - ROBUST_WITHIN * np.abs(draw_best)).mean(axis=1)
    return OptimiseResult(plan, totals, values, table, best)


def optimise(plan: OptimisePlan, executor: str | ExecutorSpec | Executor = "serial",
             progress: bool = True) -> OptimiseResult:
    """Run an optimisation in memory (no store) and score it: the notebook's entry point."""
    totals, _, _ = compute_optimisation(plan, executor, None, progress)
    return optimisation_result(plan, totals)
