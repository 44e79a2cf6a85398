"""Policy design: the best lever mix for one city (``modu optimise``) and the subsidy race between cities (``modu equilibrium``).

**Decision.** A city's policy is its annual budget (100 M yuan) and the budget's
allocation over the three levers (compute, data, anchor), a point of the simplex
(:func:`sim.experiments.simplex.simplex_grid`). Variants are made only through
:func:`sim.scenario.paths.derive` on the paths ``cities[CITY].policy.allocation`` and
``cities[CITY].policy.budget``; the other cities keep their scenario policies and
strategies.

**Uncertainty.** A table of parameter draws (one column per dotted path, one row per
draw; made by :mod:`sim.inference.draws` from the calibration posterior, the priors,
or ``--range`` factors) crossed with replications. Run ``(d, r)`` — draw d,
replication r — draws every random number from ``SeedSequence(seed, spawn_key=(d, r))``
for *every* candidate policy: common random numbers, so that differences between
candidates are paired and do not depend on the executor or the order of completion.

**One simulation call.** Every run goes through :func:`final_counts` (end firms and
growth-accounting totals per city), the one place where policy design calls the model.

**Optimisation.** Every candidate (each grid mix × each budget, the scenario's current
policy, and the city spending nothing) is run for every draw and replication. The
best candidate maximises the mean objective among those meeting the constraint; a
candidate is *indistinguishable* from the best when a one-sided paired t-test of
``best − candidate`` over the draws × replications does not reject equality at 5%.
(The pairs share draws, so they are not independent when draws matter more than
replications; the test is then too eager to call a mix worse — read the hatched
region as a lower bound of the plausible set.)

**The subsidy race.** Each listed city picks its mix (and budget, if a budget range is
given, paying ``cost`` firms per 100 M yuan spent) to maximise its own expected firms
given the others', by iterated best response on the grid
(:func:`sim.experiments.games.iterated_best_response`); the cooperative optimum
maximises national firms over the same grid; the **involution index** is the share
of the policy's effect that is relocation between cities rather than national growth
(see :func:`involution`).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from sim._progress import tqdm
from sim.experiments.compare import CONFIDENCE, mean_interval, no_policy
from sim.experiments.ensemble import replication_seed
from sim.experiments.errors import ExperimentError
from sim.experiments.executors import Executor, ExecutorSpec, imap_unordered, open_executor
from sim.experiments.games import (
    BestResponseResult,
    CachedPayoffs,
    cooperative_optimum,
    iterated_best_response,
    price_of_anarchy,
)
from sim.experiments.outcomes import Outcome, OutcomeError, parse_outcome
from sim.experiments.simplex import LEVERS, simplex_grid, ternary_heatmap
from sim.experiments.store import RunStore
from sim.model.engines import simulate_flows
from sim.model.history import FLOW_KINDS
from sim.scenario import Scenario
from sim.scenario.paths import derive, draw_changes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

TOTALS = ("firms", *FLOW_KINDS, "spend")
"""Rows of :func:`final_counts`: firms at the end, then births, deaths, moves in, moves out and spending
(100 M yuan) summed over the run."""

SIGNIFICANCE = 0.05
"""Level of the one-sided paired test that separates candidates from the best."""

ROBUST_WITHIN = 0.05
"""A mix is robust in a draw when its mean objective is within this share of that draw's best."""

SEED_RULE = "SeedSequence(seed, spawn_key=(draw, replication)); the same for every candidate policy"
"""How each run's random stream is derived (recorded in manifests)."""

MAX_RUNS = 2_000_000
"""Largest optimisation accepted (candidates × draws × replications)."""

MAX_COOPERATIVE_PROFILES = 400
"""Up to this many profiles the cooperative optimum is found by enumeration, beyond by coordinate ascent."""


# ----------------------------------------------------------------------------- one simulation


def final_counts(scenario: Scenario, seed: np.random.SeedSequence) -> np.ndarray:
    """Run one replication to the end and return its totals per city.

    The one place where policy design calls the model (on the scenario's engine: the compiled kernel for
    ``engine: counts``).

    Args:
        scenario: the validated scenario.
        seed: the run's seed sequence.

    Returns:
        ``[len(TOTALS), n_cities]`` floats: firms at the end, births, deaths, moves in and out over the run,
        and the policy spending over the run (100 M yuan), cities in scenario order.
    """
    run = simulate_flows(scenario, seed)
    flows = [getattr(run, kind).sum(axis=(0, 2)) for kind in FLOW_KINDS]
    return np.vstack([run.firms[-1].sum(axis=1), *flows, run.spend.sum(axis=(0, 2))]).astype(float)


def run_cell(base: Scenario, changes: dict, seed: int, draw: int, replications: Sequence[int]) -> np.ndarray:
    """The totals of one variant of ``base`` for one draw and several replications, ``[len(replications), T, C]``.

    Module-level so executors can pickle it; ``changes`` are dotted paths → values for
    :func:`sim.scenario.paths.derive`.
    """
    scenario = derive(base, changes) if changes else base
    return np.stack([final_counts(scenario, replication_seed(seed, draw, r)) for r in replications])


def _no_policy_cell(base: Scenario, changes: dict, seed: int, draw: int, replications: Sequence[int]) -> np.ndarray:
    """:func:`run_cell` of the no-policy variant (every budget 0) of ``base`` with ``changes``."""
    return np.stack([final_counts(no_policy(derive(base, changes)), replication_seed(seed, draw, r))
                     for r in replications])


# ----------------------------------------------------------------------------- objectives


@dataclass(frozen=True)
class Objective:
    """What a city maximises, per run.

    Attributes:
        kind: ``firms`` (its firms at the horizon), ``top`` (1 if it ranks among the first ``k`` non-pool
            cities by firms at the horizon, else 0: the mean is a probability) or ``per100m`` (its firms
            gained over the same run with its budget 0, per 100 M yuan it spent).
        k: for ``top``, how many places count.
    """

    kind: str
    k: int = 1

    @property
    def text(self) -> str:
        """The objective as written on the command line."""
        return f"top:{self.k}" if self.kind == "top" else self.kind

    def label(self, city: str) -> str:
        """What the mean objective is, with units."""
        if self.kind == "firms":
            return f"expected firms in {city} at the horizon"
        if self.kind == "top":
            return f"probability that {city} ranks in the top {self.k}"
        return f"firms gained in {city} per 100 M yuan spent"

    @property
    def unit(self) -> str:
        """The unit of the objective's values (a probability has none: it is shown as a percentage)."""
        return {"firms": "firms", "top": "", "per100m": "firms per 100 M yuan"}[self.kind]

    @property
    def support(self) -> tuple[float, float]:
        """The values a mean of the objective can take: its confidence interval is cut to them."""
        return {"firms": (0.0, math.inf), "top": (0.0, 1.0), "per100m": (-math.inf, math.inf)}[self.kind]

    def values(self, totals: np.ndarray, city: int, ranked: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """The objective per run.

        Args:
            totals: ``[..., T, C]`` runs of a candidate (see :data:`TOTALS`).
            city: index of the deciding city.
            ranked: boolean mask of the cities ranked for ``top`` (the non-pool cities).
            reference: ``[..., T, C]`` the same runs with the city spending nothing (for ``per100m``).

        Returns:
            ``[...]`` values (NaN for ``per100m`` where the city spent nothing).
        """
        firms = totals[..., 0, :]
        if self.kind == "firms":
            return firms[..., city]
        if self.kind == "top":
            ahead = (firms[..., ranked] > firms[..., city, None]).sum(axis=-1)
            return (ahead < self.k).astype(float)
        spend = totals[..., -1, city]
        gained = firms[..., city] - reference[..., 0, city]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(spend > 1e-9, gained / np.where(spend > 1e-9, spend, 1.0), np.nan)


def parse_objective(text: str) -> Objective:
    """``firms``, ``top:K`` (K a whole number ≥ 1) or ``per100m``.

    Raises:
        ExperimentError: anything else (one line).
    """
    kind, sep, arg = text.strip().partition(":")
    if kind == "top" and sep and arg.isdigit() and int(arg) >= 1:
        return Objective("top", int(arg))
    if kind in ("firms", "per100m") and not sep:
        return Objective(kind)
    raise ExperimentError(f"--objective: unknown objective {text!r}; use firms, top:K (K ≥ 1) or per100m")


# ----------------------------------------------------------------------------- helpers


def city_path(city: str, field_: str) -> str:
    """The dotted path of a city's policy field (bracketed, so any city name works)."""
    return f"cities[{city}].policy.{field_}"


def _mix_changes(city: str, mix: Sequence[float], budget: float) -> dict:
    return {city_path(city, "allocation"): dict(zip(LEVERS, (float(v) for v in mix), strict=True)),
            city_path(city, "budget"): float(budget)}


def _city_index(scenario: Scenario, city: str, option: str) -> int:
    names = [c.name for c in scenario.cities]
    if city not in names:
        raise ExperimentError(f"{option}: {city!r} is not a city of {scenario.name} ({', '.join(names)})")
    return names.index(city)


def _grid(resolution: float | str) -> pd.DataFrame:
    try:
        return simplex_grid(resolution)
    except ValueError as exc:
        raise ExperimentError(f"--resolution: {str(exc).removeprefix('simplex: ')}") from None


def parse_budgets(text: str | None) -> list[float] | None:
    """``LO:HI:STEP`` → the budgets LO, LO+STEP, … ≤ HI (100 M yuan a year); None for None.

    Raises:
        ExperimentError: malformed, negative, or an empty range.
    """
    if text is None:
        return None
    parts = text.split(":")
    try:
        lo, hi, step = (float(p) for p in parts) if len(parts) == 3 else (math.nan,) * 3
    except ValueError:
        lo = hi = step = math.nan
    if not all(math.isfinite(v) for v in (lo, hi, step)):
        raise ExperimentError(f"--budget: expected LO:HI:STEP with finite numbers, got {text!r}")
    if lo < 0 or step <= 0 or hi < lo:
        raise ExperimentError(f"--budget: need 0 ≤ LO ≤ HI and STEP > 0, got {text!r}")
    n = int(math.floor((hi - lo) / step + 1e-9)) + 1
    return [round(lo + i * step, 10) for i in range(n)]


def _draw_changes(draws: pd.DataFrame, d: int, *before: dict) -> dict:
    return draw_changes(draws.iloc[d].to_dict(), *before)


def _check_draws(draws: pd.DataFrame) -> pd.DataFrame:
    if len(draws) < 1:
        raise ExperimentError("--draws: need at least one parameter draw")
    return draws.reset_index(drop=True)


def _standard_error(x: np.ndarray) -> float:
    """Standard error of the mean of the finite values of ``x`` (NaN with fewer than two)."""
    x = x[np.isfinite(x)]
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan


def paired_p_value(difference: np.ndarray) -> float:
    """One-sided paired t-test p-value of mean(difference) > 0 (1 when no pair varies and the mean is ≤ 0)."""
    x = difference[np.isfinite(difference)]
    if len(x) == 0:
        return math.nan
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    if sd <= 1e-12 * max(1.0, abs(mean)):
        return 0.0 if mean > 1e-12 else 1.0
    return float(stats.t.sf(mean / (sd / math.sqrt(len(x))), len(x) - 1))


def _compute_cells(cells: list[tuple[Scenario, dict, int, int, Sequence[int]]], fn: Callable,
                   executor: ExecutorSpec | Executor, progress: bool, desc: str,
                   record: Callable[[int, np.ndarray], None], leave: bool = True) -> None:
    """Run ``fn(*cell)`` for every cell on the executor, handing each result to ``record(index, totals)``."""
    if not cells:
        return
    total = sum(len(c[-1]) for c in cells)
    with tqdm(total=total, desc=desc, unit="run", disable=not progress, leave=leave) as bar:
        for i, result in imap_unordered(executor, fn, cells):
            record(i, result)
            bar.update(len(cells[i][-1]))


# ----------------------------------------------------------------------------- optimisation


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
        draws_source: how the draws were made (recorded).
        replications: per draw.
        seed: root seed.
        resolution: the grid's step.
    """

    scenario: Scenario
    source: str
    city: str
    objective: Objective
    constraint: Outcome | None
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
        return _mix_changes(self.city, [row[lever] for lever in LEVERS], row.budget)

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
                      constraint: str | None = None, draws: pd.DataFrame | None = None,
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
        draws: parameter draws (columns: dotted paths); None: one draw, the scenario as written.
        draws_source: how the draws were made (recorded).
        replications: replications per draw.
        seed: root seed (default: the scenario's).
        engine: ``counts`` or ``agents`` for every run, or None to keep the scenario's.
        source: the scenario's file (recorded).

    Raises:
        ExperimentError: unknown city or objective, a resolution leaving no point, a bad constraint, an empty
            budget, too many runs.
        ScenarioError: a draw or a candidate makes the scenario invalid.
    """
    objective = parse_objective(objective) if isinstance(objective, str) else objective
    index = _city_index(scenario, city, "CITY")
    base = derive(scenario, {"engine": engine}) if engine and engine != scenario.engine else scenario
    here = base.cities[index]
    if objective.kind == "top" and here.pool:
        raise ExperimentError(f"--objective: {city} is a pool, which is never ranked; top:K needs a city")
    current_budget = here.policy.budget if here.policy else 0.0
    current_mix = here.policy.allocation.as_tuple() if here.policy else (1 / 3, 1 / 3, 1 / 3)
    budgets = [current_budget] if budgets is None else list(budgets)
    if max(budgets) <= 0:
        raise ExperimentError(f"--budget: {city} has no budget in {scenario.name}, so no mix spends anything; "
                              "give --budget LO:HI:STEP")
    grid = _grid(resolution)
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
    draws = _check_draws(pd.DataFrame(index=range(1)) if draws is None else draws)
    seed = scenario.seed if seed is None else seed
    n_runs = len(table) * len(draws) * replications
    if n_runs > MAX_RUNS:
        raise ExperimentError(f"--resolution/--draws/--replications: {n_runs:,} runs is more than {MAX_RUNS:,}")
    parsed = None
    if constraint is not None:
        try:
            parsed = parse_outcome(constraint)
            parsed.check(candidate_columns(base))
        except OutcomeError as exc:
            raise ExperimentError(f"--constraint: {exc}") from None
    for d in range(len(draws)):  # a draw or candidate that makes the scenario invalid is refused now
        derive(base, _draw_changes(draws, d, _mix_changes(city, table.iloc[0][list(LEVERS)], budgets[-1])))
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
                cells.append((plan.scenario, _draw_changes(plan.draws, d, plan.changes(k)), plan.seed, d, missing))
                keys.append((k, d))

    def record(i: int, result: np.ndarray) -> None:
        k, d = keys[i]
        for r, values in zip(cells[i][-1], result, strict=True):
            totals[k, d, r] = values
            if store is not None:
                store.record(k, d * R + r, plan.seed, [d, r], outcome=json.dumps({"totals": values.tolist()}))

    ran = sum(len(c[-1]) for c in cells)
    with open_executor(executor) as opened:
        _compute_cells(cells, run_cell, opened, progress, f"optimise {plan.city}", record)
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

    def plot(self, ax: Axes | None = None) -> Axes:
        """Ternary heat map of the mean objective per mix (at its best budget), the best mix starred, the current
        mix as a diamond, and the mixes indistinguishable from the best hatched.

        Args:
            ax: axes to draw on (a new figure if None).

        Returns:
            The Axes.
        """  # noqa: D205
        view = self.grid_view()
        best, current = self.table.iloc[self.best], self.table.iloc[self.current]
        values = view.objective.where(view.feasible)
        ax = ternary_heatmap(view[list(LEVERS)], values.to_numpy(), ax=ax, best=[best[lv] for lv in LEVERS],
                             current=[current[lv] for lv in LEVERS], indistinguishable=view.indistinguishable.to_numpy(),
                             label=f"{self.plan.objective.label(self.plan.city)}, mean over runs\n"
                                   "(colours span the mixes' range, not from 0)")
        budgets = self.table[self.table.kind == "grid"].budget.nunique()
        ax.set_title(f"{self.plan.city}: {self.plan.objective.label(self.plan.city)}"
                     + (" (best budget per mix)" if budgets > 1 else ""), fontsize=10)
        return ax


def optimisation_result(plan: OptimisePlan, totals: np.ndarray) -> OptimiseResult:
    """Score every candidate, pick the best feasible one and test the others against it.

    Raises:
        ExperimentError: no candidate meets the constraint, or the objective is undefined everywhere.
    """
    index = _city_index(plan.scenario, plan.city, "CITY")
    ranked = np.array([not c.pool for c in plan.scenario.cities])
    reference = totals[plan.reference]
    values = np.stack([plan.objective.values(totals[k], index, ranked, reference) for k in range(len(totals))])
    firms = totals[:, :, :, 0, :]
    rows = []
    for k in range(len(totals)):
        mean, low, high = mean_interval(values[k].ravel(), CONFIDENCE, plan.objective.support)
        se = _standard_error(values[k].ravel())
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
        raise ExperimentError(f"--constraint: {why}")
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


# ----------------------------------------------------------------------------- the subsidy race


@dataclass(frozen=True)
class GamePlan:
    """A validated game between cities.

    Attributes:
        scenario: the base scenario (engine already set).
        source: where it came from.
        cities: the players, in update order.
        strategies: ``compute, data, anchor, budget`` per strategy (every player has the same grid).
        cost: objective units a player gives up per 100 M yuan it spends (0: spending is free).
        objective: what each player maximises (``firms`` or ``top:K``), before the cost of spending.
        draws: parameter draws (columns: dotted paths), one row per draw.
        draws_source: how the draws were made.
        replications: per draw.
        seed: root seed.
        start: the starting profile (indices into ``strategies``): each player's grid point nearest its current
            policy.
    """

    scenario: Scenario
    source: str
    cities: list[str]
    strategies: pd.DataFrame
    cost: float
    objective: Objective
    draws: pd.DataFrame
    draws_source: str
    replications: int
    seed: int
    start: tuple[int, ...]

    def changes(self, profile: Sequence[int]) -> dict:
        """The dotted-path changes that make a profile."""
        out = {}
        for city, s in zip(self.cities, profile, strict=True):
            row = self.strategies.iloc[s]
            out.update(_mix_changes(city, [row[lever] for lever in LEVERS], row.budget))
        return out


def plan_game(scenario: Scenario, cities: Sequence[str], *, resolution: float | str = 0.25,
              budgets: Sequence[float] | None = None, cost: float = 0.0, objective: str | Objective = "firms",
              draws: pd.DataFrame | None = None,
              draws_source: str = "none", replications: int = 5, seed: int | None = None,
              engine: str | None = "counts", source: str | None = None) -> GamePlan:
    """Check a game's inputs before anything runs.

    Args:
        scenario: the base scenario.
        cities: the players (at least two distinct cities of the scenario).
        resolution: step of each player's simplex grid.
        budgets: annual budgets each player may choose (100 M yuan); None: each keeps its current budget.
        cost: objective units given up per 100 M yuan spent (≥ 0), the price of a larger budget.
        objective: ``firms`` (expected firms at the horizon) or ``top:K`` (probability of ranking in the top K).
        draws: parameter draws; None: the scenario as written.
        draws_source: how the draws were made.
        replications: per draw.
        seed: root seed (default: the scenario's).
        engine: ``counts``/``agents`` for every run, or None for the scenario's.
        source: the scenario's file.

    Raises:
        ExperimentError: fewer than two players, a city named twice or not in the scenario, a bad resolution,
            a negative cost, an objective other than firms or top:K.
    """
    objective = parse_objective(objective) if isinstance(objective, str) else objective
    if objective.kind == "per100m":
        raise ExperimentError("--objective: per100m needs each player's no-spending runs; in a game use firms or top:K")
    cities = [c.strip() for c in cities if c.strip()]
    if len(cities) < 2 or len(set(cities)) != len(cities):
        raise ExperimentError(f"--cities: need at least two distinct cities, got {', '.join(cities) or 'none'}")
    for city in cities:
        _city_index(scenario, city, "--cities")
    if not (math.isfinite(cost) and cost >= 0):
        raise ExperimentError(f"--cost: must be a finite number ≥ 0, got {cost}")
    base = derive(scenario, {"engine": engine}) if engine and engine != scenario.engine else scenario
    grid = _grid(resolution)
    if budgets is None:
        budgets_of = {c.name: (c.policy.budget if c.policy else 0.0) for c in base.cities}
        distinct = {budgets_of[c] for c in cities}
        if len(distinct) != 1:
            raise ExperimentError("--budget: the players' current budgets differ "
                                  f"({', '.join(f'{c} {budgets_of[c]:g}' for c in cities)}); give --budget LO:HI:STEP")
        budgets = list(distinct)
    strategies = pd.DataFrame([{**row, "budget": b} for b in budgets for row in grid.to_dict("records")])
    start = []
    for city in cities:
        here = base.cities[_city_index(base, city, "--cities")]
        mix = np.array(here.policy.allocation.as_tuple() if here.policy else (1 / 3,) * 3)
        budget = here.policy.budget if here.policy else 0.0
        distance = np.abs(strategies[list(LEVERS)].to_numpy() - mix).sum(axis=1) + np.abs(strategies.budget - budget)
        start.append(int(np.argmin(distance)))
    draws = _check_draws(pd.DataFrame(index=range(1)) if draws is None else draws)
    if objective.kind == "top" and any(base.cities[_city_index(base, c, "--cities")].pool for c in cities):
        raise ExperimentError("--objective: a pool is never ranked; top:K needs cities")
    plan = GamePlan(base, source or scenario.name, cities, strategies, float(cost), objective, draws, draws_source,
                    replications,
                    scenario.seed if seed is None else seed, tuple(start))
    for d in range(len(draws)):
        derive(base, _draw_changes(draws, d, plan.changes(plan.start)))
    return plan


class GameRuns:
    """Every profile's runs, each evaluated once on the executor; payoffs and national firms from them.

    Args:
        plan: the game.
        executor: an open executor (reused for every profile).
        progress: show progress bars.
    """

    def __init__(self, plan: GamePlan, executor: Executor, progress: bool = False):
        self.plan = plan
        self.executor = executor
        self.progress = progress
        self.totals: dict[tuple[int, ...], np.ndarray] = {}
        self._no_policy: np.ndarray | None = None
        self.index = [[c.name for c in plan.scenario.cities].index(city) for city in plan.cities]

    def _run(self, fn: Callable, changes: dict, desc: str) -> np.ndarray:
        plan = self.plan
        R = list(range(plan.replications))
        cells = [(plan.scenario, _draw_changes(plan.draws, d, changes), plan.seed, d, R)
                 for d in range(len(plan.draws))]
        out = np.empty((len(cells), plan.replications, len(TOTALS), len(plan.scenario.cities)))

        def record(i: int, result: np.ndarray) -> None:
            out[i] = result

        _compute_cells(cells, fn, self.executor, self.progress, desc, record, leave=False)
        return out

    def of(self, profile: Sequence[int]) -> np.ndarray:
        """Totals of a profile, ``[draw, replication, len(TOTALS), city]`` (run once, then remembered)."""
        key = tuple(int(s) for s in profile)
        if key not in self.totals:
            self.totals[key] = self._run(run_cell, self.plan.changes(key), f"profile {key}")
        return self.totals[key]

    def no_policy(self) -> np.ndarray:
        """Totals with every budget 0 (:func:`sim.experiments.compare.no_policy`), same draws and seeds."""
        if self._no_policy is None:
            self._no_policy = self._run(_no_policy_cell, {}, "no policy")
        return self._no_policy

    def payoffs(self, profile: Sequence[int]) -> np.ndarray:
        """Each player's mean objective minus ``cost`` × its mean spending (100 M yuan over the run)."""
        t = self.of(profile)
        ranked = np.array([not c.pool for c in self.plan.scenario.cities])
        value = np.array([self.plan.objective.values(t, i, ranked, t).mean() for i in self.index])
        return value - self.plan.cost * t[:, :, -1, self.index].mean(axis=(0, 1))

    def national(self, profile: Sequence[int]) -> float:
        """Mean national firms (every city) at the horizon."""
        return float(self.of(profile)[:, :, 0, :].sum(axis=-1).mean())


def involution(totals: np.ndarray, reference: np.ndarray, cities: Sequence[str]) -> dict:
    """Growth accounting of a policy against no policy, and the involution index.

    With Δ the paired mean difference (policy − no policy) over draws × replications, as
    ``modu compare`` splits it: each city's ``Δfirms = Δ(births − deaths) + Δ(moves in −
    moves out)``. The cities that gain hold ``gains = Σ_c max(Δfirms_c, 0)`` more firms;
    of these only ``growth = Σ_c Δfirms_c`` (Δ national firms) are new to the country, the
    rest were taken from other cities — as moves (``moved = ½ Σ_c |Δ(moves in − moves
    out)_c|``) or as entrants and survivors diverted from them (``diverted = gains −
    max(growth, 0) − moved``).

    The **involution index** is ``(gains − max(growth, 0)) / gains``: the share of the
    policy's gains, and so — attributing spending in proportion to the firms it wins (an
    assumption: a firm taken from a rival costs as much as a new one) — of its spending,
    whose effect is relocation between cities rather than national growth. 0: every
    gained firm is new to the country; 1: a pure zero-sum race.

    Args:
        totals: ``[draw, replication, len(TOTALS), city]`` with the policy.
        reference: the same runs with every budget 0.
        cities: city names in order.

    Returns:
        ``{"gains", "growth", "moved", "diverted", "spend", "index", "per_city"}``; ``per_city`` has per city
        ``firms_gained, births_minus_deaths, net_moves, spend`` (Δ against no policy; spend with the policy,
        100 M yuan over the run).
    """
    delta = (totals - reference).mean(axis=(0, 1))  # [TOTALS, city]
    rows = dict(zip(TOTALS, delta, strict=True))
    natural = rows["births"] - rows["deaths"]
    net_moves = rows["moves_in"] - rows["moves_out"]
    gains = float(np.clip(rows["firms"], 0, None).sum())
    growth = float(rows["firms"].sum())
    moved = float(np.abs(net_moves).sum() / 2)
    relocated = gains - max(growth, 0.0)
    per_city = pd.DataFrame({"city": list(cities), "firms_gained": rows["firms"], "births_minus_deaths": natural,
                             "net_moves": net_moves, "spend": totals[:, :, -1, :].mean(axis=(0, 1))})
    return {"gains": gains, "growth": growth, "moved": moved, "diverted": relocated - moved,
            "spend": float(totals[:, :, -1, :].sum(axis=-1).mean()),
            "index": relocated / gains if gains > 0 else math.nan, "per_city": per_city}


@dataclass
class EquilibriumResult:
    """The subsidy race: best-response dynamics, equilibrium, cooperative optimum, price of anarchy, involution.

    Attributes:
        plan: the game.
        dynamics: iterated best response's result (status, path, cycle).
        cooperative: the profile maximising national firms, and how it was found (``enumeration`` or
            ``coordinate ascent``, a local optimum).
        cooperative_method: see above.
        national_equilibrium: mean national firms at the last profile of the dynamics.
        national_cooperative: at the cooperative profile.
        involution_equilibrium: :func:`involution` at the last profile.
        involution_cooperative: at the cooperative profile.
        profiles: every profile evaluated, one row per (profile, player).
        totals: every evaluated profile's run totals ``[draw, replication, len(TOTALS), city]``.
        no_policy_totals: the same runs with every budget 0.
    """

    plan: GamePlan
    dynamics: BestResponseResult
    cooperative: tuple[int, ...]
    cooperative_method: str
    national_equilibrium: float
    national_cooperative: float
    involution_equilibrium: dict
    involution_cooperative: dict
    path: pd.DataFrame = field(default_factory=pd.DataFrame)
    evaluated: pd.DataFrame = field(default_factory=pd.DataFrame)
    totals: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict, repr=False)
    no_policy_totals: np.ndarray | None = field(default=None, repr=False)

    @property
    def price_of_anarchy(self) -> float:
        """National firms at the cooperative optimum / at the equilibrium (≥ 1; 1: no loss)."""
        return price_of_anarchy(self.national_equilibrium, self.national_cooperative)

    def to_df(self) -> pd.DataFrame:
        """The sequence of profiles: one row per (step, player) with its mix, budget, payoff and national firms."""
        return self.path.copy()

    def allocations(self) -> pd.DataFrame:
        """Per player: its mix and budget at the equilibrium (last profile) and at the cooperative optimum."""
        rows = []
        for label, profile in (("equilibrium", self.dynamics.profile), ("cooperative", self.cooperative)):
            for city, s in zip(self.plan.cities, profile, strict=True):
                row = self.plan.strategies.iloc[s]
                rows.append({"profile": label, "city": city, **{lv: row[lv] for lv in LEVERS}, "budget": row.budget})
        return pd.DataFrame(rows)

    def plot(self, ax: Axes | None = None) -> Axes:
        """National firms (left axis) and each player's payoff (right axis) along the best-response path; the
        cooperative optimum dashed. Both axes start at 0, so a change reads at its true size.

        Args:
            ax: axes to draw on (a new figure if None).

        Returns:
            The Axes of national firms.
        """  # noqa: D205
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7.5, 4.5))
        steps = self.path.drop_duplicates("step")
        ax.plot(steps.step, steps.national, "-o", color="k", label="national firms (left)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.axhline(self.national_cooperative, color="k", ls="--", lw=1, label="national firms at the cooperative optimum")
        ax.set(xlabel="step of the best-response path (one player changes its mix)",
               ylabel="national firms at the horizon (mean over runs)", title="Subsidy race: best-response dynamics")
        twin = ax.twinx()
        for city, rows in self.path.groupby("city", sort=False):
            twin.plot(rows.step, rows.payoff, "-", marker=".", label=f"{city}'s payoff (right)")
        cost = f" − {self.plan.cost:g} per 100 M yuan spent" if self.plan.cost else ""
        twin.set_ylabel(f"payoff: {self.plan.objective.label('its city')}{cost}", fontsize=9)
        for axis in (ax, twin):  # from 0: a 0.1% change must not fill the panel
            low, high = axis.get_ylim()
            low, high = min(low, 0.0), max(high, 0.0)
            axis.set_ylim(low, high + 0.08 * (high - low))
            axis.ticklabel_format(axis="y", style="plain", useOffset=False)
        handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
        ax.grid(alpha=0.3)
        return ax


def solve_game(plan: GamePlan, executor: str | ExecutorSpec | Executor = "serial", progress: bool = True,
               max_rounds: int = 50, max_profiles: int = MAX_COOPERATIVE_PROFILES) -> EquilibriumResult:
    """Iterated best response from the players' current policies, the cooperative optimum and the involution index.

    Args:
        plan: the game.
        executor: where runs go (one pool for the whole game).
        progress: progress bars per profile.
        max_rounds: most best-response rounds.
        max_profiles: enumerate every profile for the cooperative optimum up to this many, else coordinate ascent.
    """
    n = len(plan.cities)
    sizes = [len(plan.strategies)] * n
    with open_executor(executor) as opened:
        runs = GameRuns(plan, opened, progress)
        payoffs = CachedPayoffs(runs.payoffs, n)
        dynamics = iterated_best_response(payoffs, sizes, start=plan.start, max_rounds=max_rounds)
        if math.prod(sizes) <= max_profiles:
            cooperative, _ = cooperative_optimum(runs.national, sizes)
            method = "enumeration of every profile"
        else:
            team = CachedPayoffs(lambda p: np.full(n, runs.national(p)), n)
            cooperative = iterated_best_response(team, sizes, start=dynamics.profile, max_rounds=max_rounds).profile
            method = "coordinate ascent from the equilibrium (a local optimum)"
        best_seen = max(runs.totals, key=runs.national)  # coordinate ascent can miss a profile already seen
        if runs.national(best_seen) > runs.national(cooperative):
            cooperative = best_seen
        names = [c.name for c in plan.scenario.cities]
        reference = runs.no_policy()
        inv_eq = involution(runs.of(dynamics.profile), reference, names)
        inv_co = involution(runs.of(cooperative), reference, names)
    path_rows = []
    for step, profile in enumerate(dynamics.path):
        pay = runs.payoffs(profile)
        for j, (city, s) in enumerate(zip(plan.cities, profile, strict=True)):
            row = plan.strategies.iloc[s]
            path_rows.append({"step": step, "city": city, "strategy": s, **{lv: row[lv] for lv in LEVERS},
                              "budget": row.budget, "payoff": pay[j], "national": runs.national(profile),
                              "in_cycle": profile in set(dynamics.cycle)})
    evaluated = [{"profile": json.dumps(list(p)), "national": runs.national(p),
                  **{f"payoff_{c}": v for c, v in zip(plan.cities, runs.payoffs(p), strict=True)}}
                 for p in sorted(runs.totals)]
    return EquilibriumResult(plan, dynamics, tuple(cooperative), method, runs.national(dynamics.profile),
                             runs.national(cooperative), inv_eq, inv_co, pd.DataFrame(path_rows), pd.DataFrame(evaluated),
                             dict(runs.totals), reference)

