"""Concentration metrics over cities' firm counts (docs/ODD.md, Observation)."""

from __future__ import annotations

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
    """Gini coefficient of the shares across cities, in [0, 1 − 1/n]."""
    n = s.shape[-1]
    pairwise = np.abs(s[..., :, None] - s[..., None, :]).sum(axis=(-2, -1))
    return pairwise / (2.0 * n * np.maximum(s.sum(axis=-1), 1e-300))


def entropy(s: np.ndarray) -> np.ndarray:
    """Shannon entropy −Σ s·ln s (nats), in [0, ln n]."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(s > 0, s * np.log(np.where(s > 0, s, 1.0)), 0.0)
    return -terms.sum(axis=-1)
