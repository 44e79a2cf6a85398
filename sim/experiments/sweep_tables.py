"""A sweep's tables from its stored runs: the summary (one row per point × replication), metrics, trajectories, failures.

The concentration metrics (:func:`sim.model.metrics.concentration`) are computed here from the stored firms,
for all runs with the same cities at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from sim.experiments.sweep import OUTCOMES, SweepPlan
from sim.model import metrics


def sweep_tables(plan: SweepPlan, runs: Sequence[Any]) -> dict[str, pd.DataFrame]:
    """The sweep's tables from its stored runs.

    The concentration metrics (:func:`sim.model.metrics.concentration`) are computed here from the
    stored firms, for all runs with the same cities at once.

    Returns:
        ``summary`` (one row per point × replication), ``metrics`` (per point ×
        replication × step, the columns of a run's metrics.csv), ``trajectories``
        (per point × replication × step × city) and ``failures`` (one row per failed run).
    """
    ok = [run for run in runs if run.outcome is not None]
    cities = list(dict.fromkeys(c for run in ok for c in run.outcome["names"]))
    groups = _groups(ok)
    measured = _measure(groups)
    summary, failures = [], []
    for run in runs:
        point = plan.points[run.point]
        head = {"point": run.point, **{p: _cell(v) for p, v in point.values.items()}, "replication": run.replication,
                "seed": run.seed, "spawn_key": json.dumps(run.spawn_key)}
        if run.outcome is None:
            failures.append({**head, "error": run.error})
            summary.append({**head, "status": run.status})
            continue
        final, m = measured[run.point, run.replication]
        summary.append({**head, "status": run.status, **{f"firms_{c}": final.get(c) for c in cities},
                        **{name: m[name] for name in OUTCOMES}, "leader": m["leader"]})
    head_columns = ["point", *plan.paths, "replication", "seed", "spawn_key"]
    summary_columns = [*head_columns, "status", *(f"firms_{c}" for c in cities), *OUTCOMES, "leader"]
    metrics_table, trajectories = _run_tables(plan, groups)
    return {
        "summary": pd.DataFrame(summary, columns=summary_columns).astype({f"firms_{c}": "Int64" for c in cities}),
        "metrics": metrics_table,
        "trajectories": trajectories,
        "failures": pd.DataFrame(failures, columns=[*head_columns, "error"]),
    }


class _Group(NamedTuple):
    """Runs with the same cities, pools and number of steps, stacked.

    ``counts`` are their firms ``[run, step, city]``; ``metrics`` the concentration metrics of every run and
    step (:func:`sim.model.metrics.concentration`, ``[run, step]``), computed once for the summary and the tables.
    """

    names: tuple[str, ...]
    runs: list[Any]
    counts: np.ndarray
    metrics: dict[str, np.ndarray]


def _groups(runs: Sequence[Any]) -> list[_Group]:
    """The runs grouped by their cities, pools and number of steps (each group stacks into one array)."""
    by_key: dict[tuple, list[Any]] = {}
    for run in runs:
        o = run.outcome
        by_key.setdefault((tuple(o["names"]), tuple(o["pool"]), len(o["firms_by_city"])), []).append(run)
    groups = []
    for (names, pool, _), group in by_key.items():
        counts = np.array([run.outcome["firms_by_city"] for run in group], dtype=np.int64)
        groups.append(_Group(names, group, counts, metrics.concentration(counts, np.array(pool, dtype=bool), names)))
    return groups


def _measure(groups: list[_Group]) -> dict[tuple[int, int], tuple[dict[str, int], dict[str, Any]]]:
    """Per (point, replication): the final firms per city and the final concentration metrics."""
    out = {}
    for g in groups:
        for i, run in enumerate(g.runs):
            out[run.point, run.replication] = (dict(zip(g.names, g.counts[i, -1].tolist(), strict=True)),
                                               {name: values[i, -1].item() for name, values in g.metrics.items()})
    return out


def _run_tables(plan: SweepPlan, groups: list[_Group]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The metrics (per point × replication × step) and trajectories (… × city) tables, built column by column."""
    metric_parts, trajectory_parts = [], []
    for g in groups:
        R, n_steps, C = g.counts.shape
        time = plan.points[g.runs[0].point].scenario.time
        steps = np.arange(n_steps)
        years = time.start + steps / time.steps_per_year
        point = np.array([run.point for run in g.runs])
        replication = np.array([run.replication for run in g.runs])
        metric_parts.append(pd.DataFrame({
            "point": np.repeat(point, n_steps), "replication": np.repeat(replication, n_steps),
            "step": np.tile(steps, R), "year": np.tile(years, R), **{k: v.ravel() for k, v in g.metrics.items()}}))
        trajectory_parts.append(pd.DataFrame({
            "point": np.repeat(point, n_steps * C), "replication": np.repeat(replication, n_steps * C),
            "step": np.tile(np.repeat(steps, C), R), "year": np.tile(np.repeat(years, C), R),
            "city": np.tile(np.asarray(g.names, dtype=object), R * n_steps), "firms": g.counts.ravel()}))
    if not metric_parts:
        return (pd.DataFrame(columns=["point", "replication"]),
                pd.DataFrame(columns=["point", "replication", "step", "year", "city", "firms"]))
    if len(metric_parts) == 1:  # one group: already in the store's order
        return metric_parts[0], trajectory_parts[0]
    order = ["point", "replication"]
    return tuple(pd.concat(parts, ignore_index=True).sort_values(order, kind="stable", ignore_index=True)
                 for parts in (metric_parts, trajectory_parts))


def _cell(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
