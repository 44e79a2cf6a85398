"""The subsidy race between cities (``modu equilibrium``): best responses, the cooperative optimum, involution.

Each listed city picks its mix (and budget, if a budget range is given, paying ``cost``
firms per 100 M yuan spent) to maximise its own expected firms given the others', by
iterated best response on the grid (:func:`sim.analysis.games.iterated_best_response`);
the cooperative optimum maximises national firms over the same grid; the **involution
index** is the share of the policy's effect that is relocation between cities rather than
national growth (see :func:`involution`). Every profile's runs share the draws and seeds of
:mod:`sim.policy.runs` (common random numbers).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sim.analysis.games import BestResponseResult, CachedPayoffs, cooperative_optimum, iterated_best_response, price_of_anarchy
from sim.experiments.executors import Executor, ExecutorSpec, open_executor
from sim.inference.draws import Draws
from sim.model.parameters import LEVERS
from sim.policy.errors import PolicyError
from sim.policy.objectives import Objective, parse_objective
from sim.policy.runs import (
    TOTALS,
    city_index,
    compute_cells,
    draw_row_changes,
    draws_table,
    lever_grid,
    mix_changes,
    no_policy_cell,
    run_cell,
)
from sim.scenario import Scenario
from sim.scenario.paths import derive

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MAX_COOPERATIVE_PROFILES = 400
"""Up to this many profiles the cooperative optimum is found by enumeration, beyond by coordinate ascent."""


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
            out.update(mix_changes(city, [row[lever] for lever in LEVERS], row.budget))
        return out


def plan_game(scenario: Scenario, cities: Sequence[str], *, resolution: float | str = 0.25,
              budgets: Sequence[float] | None = None, cost: float = 0.0, objective: str | Objective = "firms",
              draws: Draws | pd.DataFrame | None = None,
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
        draws: parameter draws: a :class:`~sim.inference.draws.Draws` or a table (columns: dotted paths);
            None: one draw, the scenario as written.
        draws_source: how a table's draws were made.
        replications: per draw.
        seed: root seed (default: the scenario's).
        engine: ``counts``/``agents`` for every run, or None for the scenario's.
        source: the scenario's file.

    Raises:
        PolicyError: fewer than two players, a city named twice or not in the scenario, a bad resolution,
            a negative cost, an objective other than firms or top:K.
    """
    objective = parse_objective(objective) if isinstance(objective, str) else objective
    if objective.kind == "per100m":
        raise PolicyError("--objective: per100m needs each player's no-spending runs; in a game use firms or top:K")
    cities = [c.strip() for c in cities if c.strip()]
    if len(cities) < 2 or len(set(cities)) != len(cities):
        raise PolicyError(f"--cities: need at least two distinct cities, got {', '.join(cities) or 'none'}")
    for city in cities:
        city_index(scenario, city, "--cities")
    if not (math.isfinite(cost) and cost >= 0):
        raise PolicyError(f"--cost: must be a finite number ≥ 0, got {cost}")
    base = derive(scenario, {"engine": engine}) if engine and engine != scenario.engine else scenario
    grid = lever_grid(resolution)
    if budgets is None:
        budgets_of = {c.name: (c.policy.budget if c.policy else 0.0) for c in base.cities}
        distinct = {budgets_of[c] for c in cities}
        if len(distinct) != 1:
            raise PolicyError("--budget: the players' current budgets differ "
                              f"({', '.join(f'{c} {budgets_of[c]:g}' for c in cities)}); give --budget LO:HI:STEP")
        budgets = list(distinct)
    strategies = pd.DataFrame([{**row, "budget": b} for b in budgets for row in grid.to_dict("records")])
    start = []
    for city in cities:
        here = base.cities[city_index(base, city, "--cities")]
        mix = np.array(here.policy.allocation.as_tuple() if here.policy else (1 / 3,) * 3)
        budget = here.policy.budget if here.policy else 0.0
        distance = np.abs(strategies[list(LEVERS)].to_numpy() - mix).sum(axis=1) + np.abs(strategies.budget - budget)
        start.append(int(np.argmin(distance)))
    draws, draws_source = draws_table(draws, draws_source)
    if objective.kind == "top" and any(base.cities[city_index(base, c, "--cities")].pool for c in cities):
        raise PolicyError("--objective: a pool is never ranked; top:K needs cities")
    plan = GamePlan(base, source or scenario.name, cities, strategies, float(cost), objective, draws, draws_source,
                    replications,
                    scenario.seed if seed is None else seed, tuple(start))
    for d in range(len(draws)):
        derive(base, draw_row_changes(draws, d, plan.changes(plan.start)))
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
        cells = [(plan.scenario, draw_row_changes(plan.draws, d, changes), plan.seed, d, R)
                 for d in range(len(plan.draws))]
        out = np.empty((len(cells), plan.replications, len(TOTALS), len(plan.scenario.cities)))

        def record(i: int, result: np.ndarray) -> None:
            out[i] = result

        compute_cells(cells, fn, self.executor, self.progress, desc, record, leave=False)
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
            self._no_policy = self._run(no_policy_cell, {}, "no policy")
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
        cooperative optimum dashed (:func:`sim.policy.figures.plot_race`). Both axes start at 0, so a change reads
        at its true size.

        Args:
            ax: axes to draw on (a new figure if None).

        Returns:
            The Axes of national firms.
        """  # noqa: D205
        from sim.policy.figures import plot_race

        return plot_race(self, ax)

    def involution_table(self) -> pd.DataFrame:
        """Growth accounting per city against no policy, at the equilibrium and at the cooperative optimum
        (``involution.csv``): :func:`involution`'s ``per_city`` with a ``profile`` column.
        """  # noqa: D205
        return pd.concat([acc["per_city"].assign(profile=label) for label, acc in
                          (("equilibrium", self.involution_equilibrium), ("cooperative", self.involution_cooperative))],
                         ignore_index=True)


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
