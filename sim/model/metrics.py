"""Concentration metrics over cities' firm counts, the band over replications and the lock-in probability (docs/ODD.md §3.8)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def shares(counts: np.ndarray) -> np.ndarray:
    """Each city's share of the firms (uniform when there are none); last axis = cities."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum(axis=-1, keepdims=True)
    n = counts.shape[-1]
    return np.divide(counts, total, out=np.full_like(counts, 1.0 / n), where=total > 0)


def hhi(s: np.ndarray) -> np.ndarray:
    """Herfindahl–Hirschman index Σ s², in [1/n, 1]."""
    return np.sum(s * s, axis=-1)


def gini(s: np.ndarray) -> np.ndarray:
    """Gini coefficient of the shares across cities, in [0, 1 − 1/n]: Σ_i Σ_j |s_i − s_j| / (2 n Σ s).

    Computed pairwise, a block of rows at a time so that a batch of many runs needs at most
    :data:`PAIRWISE_BLOCK` differences in memory.
    """
    n = s.shape[-1]
    rows = s.reshape(-1, n)
    pairwise = np.empty(len(rows))
    step = max(1, PAIRWISE_BLOCK // max(n * n, 1))
    for lo in range(0, len(rows), step):
        block = rows[lo:lo + step]
        pairwise[lo:lo + step] = np.abs(block[:, :, None] - block[:, None, :]).sum(axis=(-2, -1))
    return pairwise.reshape(s.shape[:-1]) / (2.0 * n * np.maximum(s.sum(axis=-1), 1e-300))


PAIRWISE_BLOCK = 1 << 22
"""Most pairwise differences :func:`gini` holds at once (32 MiB of float64)."""


def entropy(s: np.ndarray) -> np.ndarray:
    """Shannon entropy −Σ s·ln s (nats), in [0, ln n]."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(s > 0, s * np.log(np.where(s > 0, s, 1.0)), 0.0)
    return -terms.sum(axis=-1)


BAND = (0.05, 0.95)
"""Quantiles of every band and interval over replications or draws: a 90% band (5th to 95th percentile)."""


def band(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """The 5th percentile, median and 95th percentile of ``values`` along ``axis`` (see :data:`BAND`)."""
    return np.quantile(np.asarray(values, dtype=float), [BAND[0], 0.5, BAND[1]], axis=axis)


def lock_in(leaders: Sequence[str], cities: Sequence[str]) -> dict[str, float]:
    """The lock-in probability: the share of replications each city ends first.

    Args:
        leaders: the final leader of each replication.
        cities: every city that could lead, in display order; cities that never lead get 0.

    Returns:
        City → share of replications, in the order of ``cities`` (then any leader not listed).
    """
    leaders = list(leaders)
    n = max(len(leaders), 1)
    order = list(dict.fromkeys([*cities, *leaders]))
    return {city: sum(leader == city for leader in leaders) / n for city in order}


def ranked(pool: np.ndarray) -> np.ndarray:
    """Which cities concentration covers: the non-pool ones (all of them if every one is a pool)."""
    pool = np.asarray(pool, dtype=bool)
    return ~pool if (~pool).any() else np.ones_like(pool)


def concentration(counts: np.ndarray, pool: np.ndarray, cities: Sequence[str]) -> dict[str, np.ndarray]:
    """Per step: the concentration of firms over the non-pool cities (all cities if every one is a pool).

    Args:
        counts: firms per step and city ``[step, city]``, or per run, step and city ``[run, step, city]``
            (any leading axes: every run is measured on its own).
        pool: True for the cities that are pools ``[city]``.
        cities: the city names.

    Returns:
        Arrays shaped as ``counts`` without its city axis: ``cities`` (how many are counted) and, per step,
        ``firms`` (their total), ``hhi``, ``top1_share``, ``gini``, ``entropy``, ``leader`` (the name of the
        largest) and ``lead_change`` (the leader differs from the previous step's).
    """
    counts = np.asarray(counts, dtype=float)
    keep = ranked(pool)
    names = np.asarray(cities)[keep]
    s = shares(counts[..., keep])
    leader = names[np.argmax(s, axis=-1)]
    first = np.zeros((*leader.shape[:-1], 1), dtype=bool)
    return {
        "cities": np.full(counts.shape[:-1], int(keep.sum())),
        "firms": counts[..., keep].sum(axis=-1).astype(np.int64),
        "hhi": hhi(s),
        "top1_share": s.max(axis=-1),
        "gini": gini(s),
        "entropy": entropy(s),
        "leader": leader,
        "lead_change": np.concatenate([first, leader[..., 1:] != leader[..., :-1]], axis=-1),
    }
