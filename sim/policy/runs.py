"""The runs of policy design: a scenario's variants by a city's policy and a parameter draw, each run to its totals.

**Decision.** A city's policy is its annual budget (100 M yuan) and the budget's allocation
over the three levers (compute, data, anchor), a point of the simplex
(:func:`sim.analysis.simplex.simplex_grid`). Variants are made only through
:func:`sim.scenario.paths.derive` on the paths ``cities[CITY].policy.allocation`` and
``cities[CITY].policy.budget``; the other cities keep their scenario policies and strategies.

**Uncertainty.** A table of parameter draws (one column per dotted path, one row per draw;
made by :mod:`sim.inference.draws` from the calibration posterior, the priors, or
``--range`` factors) crossed with replications. Run ``(d, r)`` — draw d, replication r —
draws every random number from ``SeedSequence(seed, spawn_key=(d, r))`` for *every*
candidate policy: common random numbers, so that differences between candidates are paired
and do not depend on the executor or the order of completion.

**One simulation call.** Every run goes through :func:`final_counts` (end firms and
growth-accounting totals per city), the one place where policy design calls the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from sim._progress import tqdm
from sim.analysis.simplex import simplex_grid
from sim.experiments.compare import no_policy
from sim.experiments.ensemble import replication_seed
from sim.experiments.executors import Executor, ExecutorSpec, imap_unordered
from sim.inference.draws import Draws
from sim.model.engines import simulate_flows
from sim.model.history import FLOW_KINDS
from sim.model.parameters import LEVERS
from sim.policy.errors import PolicyError
from sim.scenario import Scenario
from sim.scenario.paths import derive, draw_changes

TOTALS = ("firms", *FLOW_KINDS, "spend")
"""Rows of :func:`final_counts`: firms at the end, then births, deaths, moves in, moves out and spending
(100 M yuan) summed over the run."""

SEED_RULE = "SeedSequence(seed, spawn_key=(draw, replication)); the same for every candidate policy"
"""How each run's random stream is derived (recorded in manifests)."""


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


def no_policy_cell(base: Scenario, changes: dict, seed: int, draw: int, replications: Sequence[int]) -> np.ndarray:
    """:func:`run_cell` of the no-policy variant (every budget 0) of ``base`` with ``changes``."""
    return np.stack([final_counts(no_policy(derive(base, changes)), replication_seed(seed, draw, r))
                     for r in replications])


def city_path(city: str, field_: str) -> str:
    """The dotted path of a city's policy field (bracketed, so any city name works)."""
    return f"cities[{city}].policy.{field_}"


def mix_changes(city: str, mix: Sequence[float], budget: float) -> dict:
    """The dotted-path changes that give ``city`` the lever ``mix`` (shares in :data:`LEVERS` order) and ``budget``."""
    return {city_path(city, "allocation"): dict(zip(LEVERS, (float(v) for v in mix), strict=True)),
            city_path(city, "budget"): float(budget)}


def city_index(scenario: Scenario, city: str, option: str) -> int:
    """The index of ``city`` among the scenario's cities; refused, naming ``option``, if it is not one."""
    names = [c.name for c in scenario.cities]
    if city not in names:
        raise PolicyError(f"{option}: {city!r} is not a city of {scenario.name} ({', '.join(names)})")
    return names.index(city)


def lever_grid(resolution: float | str) -> pd.DataFrame:
    """Every lever mix whose shares are multiples of ``resolution`` (columns :data:`LEVERS`)."""
    try:
        return simplex_grid(resolution, LEVERS)
    except ValueError as exc:
        raise PolicyError(f"--resolution: {str(exc).removeprefix('simplex: ')}") from None


def parse_budgets(text: str | None) -> list[float] | None:
    """``LO:HI:STEP`` → the budgets LO, LO+STEP, … ≤ HI (100 M yuan a year); None for None.

    Raises:
        PolicyError: malformed, negative, or an empty range.
    """
    if text is None:
        return None
    parts = text.split(":")
    try:
        lo, hi, step = (float(p) for p in parts) if len(parts) == 3 else (math.nan,) * 3
    except ValueError:
        lo = hi = step = math.nan
    if not all(math.isfinite(v) for v in (lo, hi, step)):
        raise PolicyError(f"--budget: expected LO:HI:STEP with finite numbers, got {text!r}")
    if lo < 0 or step <= 0 or hi < lo:
        raise PolicyError(f"--budget: need 0 ≤ LO ≤ HI and STEP > 0, got {text!r}")
    n = int(math.floor((hi - lo) / step + 1e-9)) + 1
    return [round(lo + i * step, 10) for i in range(n)]


def draw_row_changes(draws: pd.DataFrame, d: int, *before: dict) -> dict:
    """The changes of draw ``d`` (a row of ``draws``) after the changes ``before`` (a candidate's policy)."""
    return draw_changes(draws.iloc[d].to_dict(), *before)


def draws_table(draws: Draws | pd.DataFrame | None, source: str) -> tuple[pd.DataFrame, str]:
    """The table of draws a plan runs, and where they come from.

    Args:
        draws: a :class:`~sim.inference.draws.Draws` (its fields and source are taken), a table of draws (one
            column per dotted path), or None: one draw, the scenario as written.
        source: how a table's draws were made (recorded).
    """
    if isinstance(draws, Draws):
        return check_draws(draws.fields), draws.source
    return check_draws(pd.DataFrame(index=range(1)) if draws is None else draws), source


def check_draws(draws: pd.DataFrame) -> pd.DataFrame:
    """The draws table, indexed 0, 1, ...; refused if it holds no draw."""
    if len(draws) < 1:
        raise PolicyError("--draws: need at least one parameter draw")
    return draws.reset_index(drop=True)


MAX_CELLS_PER_TASK = 16
"""Most cells (a variant × draw, its replications) per executor task: enough to amortise the task's overhead (the
scenario and results through a process pipe), few enough that every worker gets several tasks."""


def run_cells(fn: Callable, cells: Sequence[tuple]) -> list[np.ndarray]:
    """``fn(*cell)`` for several cells in one executor task (module-level so executors can pickle it)."""
    return [fn(*cell) for cell in cells]


def compute_cells(cells: list[tuple[Scenario, dict, int, int, Sequence[int]]], fn: Callable,
                   executor: ExecutorSpec | Executor, progress: bool, desc: str,
                   record: Callable[[int, np.ndarray], None], leave: bool = True) -> None:
    """Run ``fn(*cell)`` for every cell on the executor, handing each result to ``record(index, totals)``.

    Cells go to the executor in chunks (:data:`MAX_CELLS_PER_TASK` at most, a sixteenth of them when fewer); a
    chunk's cells are recorded when it returns, so an interrupted run loses at most the chunks under way.
    """
    if not cells:
        return
    total = sum(len(c[-1]) for c in cells)
    size = max(1, min(MAX_CELLS_PER_TASK, len(cells) // 16))
    chunks = [range(i, min(i + size, len(cells))) for i in range(0, len(cells), size)]
    with tqdm(total=total, desc=desc, unit="run", disable=not progress, leave=leave) as bar:
        for j, results in imap_unordered(executor, run_cells, [(fn, [cells[i] for i in chunk]) for chunk in chunks]):
            for i, result in zip(chunks[j], results, strict=True):
                record(i, result)
                bar.update(len(cells[i][-1]))
