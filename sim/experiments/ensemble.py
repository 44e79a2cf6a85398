"""Running a scenario's replications and gathering their tidy tables.

Replication ``r`` of a run with root seed ``seed`` draws every random number
from ``SeedSequence(seed, spawn_key=(r,))`` — the r-th child of
``SeedSequence(seed).spawn`` — so it is the same whichever executor, worker
count or order of completion produced it, and replication r of two
scenarios run with the same seed shares its random stream (common random
numbers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim._progress import tqdm
from sim.experiments.executors import Executor, ExecutorSpec, imap_unordered, parse_executor
from sim.model.engines import simulate as simulate_history
from sim.scenario import Scenario
from sim.scenario.paths import derive

TABLES = ("firms", "cities", "flows", "metrics")
"""The tidy tables of a run (docs/ODD.md §3.8), each with a leading ``replication`` column."""

SEED_RULE = "SeedSequence(seed, spawn_key=(replication,))"
"""How a run's replications draw their seeds (recorded in manifests; ``modu rerun`` relies on it)."""


def replication_seed(seed: int, *key: int) -> np.random.SeedSequence:
    """The seed sequence of one run, keyed by its identity (e.g. the replication index)."""
    return np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key))


def simulate(scenario: Scenario, replication: int, seed: int) -> dict[str, pd.DataFrame]:
    """Run one replication to the scenario's end and return its tables.

    Args:
        scenario: the validated scenario.
        replication: the replication index r (the seed's spawn key).
        seed: the root seed.

    Returns:
        ``{"firms", "cities", "flows", "metrics"}`` DataFrames, each with ``replication`` first.
    """
    history = simulate_history(scenario, replication_seed(seed, replication))
    tables = {}
    for name in TABLES:
        frame = getattr(history, f"{name}_frame")()
        frame.insert(0, "replication", replication)
        tables[name] = frame
    return tables


@dataclass
class Ensemble:
    """All replications of one scenario.

    Attributes:
        scenario: the validated scenario that was run.
        seed: the root seed.
        replications: how many replications.
        executor: the executor that ran them (as recorded in the manifest).
        tables: the concatenated tables, sorted by replication.
    """

    scenario: Scenario
    seed: int
    replications: int
    executor: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def spawn_keys(self) -> list[list[int]]:
        """Each replication's spawn key under the root seed."""
        return [[r] for r in range(self.replications)]


def run_ensemble(scenario: Scenario, replications: int | None = None, seed: int | None = None,
                 executor: str | ExecutorSpec | Executor = "processes", progress: bool = True,
                 changes: Sequence[Mapping[str, Any]] | None = None) -> Ensemble:
    """Run a scenario's replications on an executor and gather the tables.

    Args:
        scenario: the validated scenario.
        replications: how many (default: the scenario's ``replications``).
        seed: root seed (default: the scenario's ``seed``).
        executor: ``serial``, ``processes[:N]`` or ``dask[:N|:ADDRESS]``, a parsed spec, or an
            executor opened with :func:`sim.experiments.executors.open_executor` (reused across calls).
        progress: show a progress bar with rate and ETA.
        changes: per replication, fields to set in the scenario first (dotted path → value;
            :func:`sim.scenario.paths.derive`), e.g. parameter draws: replication r runs draw r.
    """
    spec = parse_executor(executor) if isinstance(executor, str) else executor
    replications = scenario.replications if replications is None else replications
    seed = scenario.seed if seed is None else seed
    parts: dict[int, dict[str, pd.DataFrame]] = {}
    if changes is not None and len(changes) != replications:
        raise ValueError(f"{len(changes)} sets of changes for {replications} replications")
    tasks = [(scenario if changes is None else derive(scenario, changes[r]), r, seed) for r in range(replications)]
    with tqdm(total=replications, desc=f"{scenario.name}", unit="run", disable=not progress) as bar:
        for r, tables in imap_unordered(spec, simulate, tasks):
            parts[r] = tables
            bar.update()
    ordered = [parts[r] for r in range(replications)]
    tables = {name: pd.concat([p[name] for p in ordered], ignore_index=True) for name in TABLES}
    return Ensemble(scenario=scenario, seed=seed, replications=replications, executor=spec.describe(),
                    tables=tables)


def _draw_firms(scenario: Scenario, changes: dict, seed: int, draw: int, replications: int) -> np.ndarray:
    """Firms per step and city of one draw's replications, ``[replication, step, city]`` (picklable for executors)."""
    from sim.model.engines import simulate_firms

    variant = derive(scenario, changes) if changes else scenario
    return simulate_firms(variant, [replication_seed(seed, draw, r) for r in range(replications)])


def run_draws(scenario: Scenario, changes: Sequence[Mapping[str, Any]], replications: int, seed: int,
              executor: str | ExecutorSpec | Executor = "processes", progress: bool = True) -> np.ndarray:
    """Firms per step and city for each draw of a scenario's fields and each replication, ``[draw, rep, step, city]``.

    Draw d, replication r draws from ``SeedSequence(seed, spawn_key=(d, r))`` and runs the scenario with
    ``changes[d]`` (:func:`sim.scenario.paths.derive`), on the scenario's engine (the compiled kernel for
    ``engine: counts``), so results do not depend on the executor.
    """
    spec = parse_executor(executor) if isinstance(executor, str) else executor
    tasks = [(scenario, dict(c), seed, d, replications) for d, c in enumerate(changes)]
    out = np.empty((len(tasks), replications, scenario.time.steps + 1, len(scenario.cities)), dtype=np.int64)
    with tqdm(total=len(tasks) * replications, desc=scenario.name, unit="run", disable=not progress) as bar:
        for d, firms in imap_unordered(spec, _draw_firms, tasks):
            out[d] = firms
            bar.update(replications)
    return out
