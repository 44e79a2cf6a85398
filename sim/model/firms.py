"""Firm agents of the ``agents`` engine, stored column-wise, and the vectorised draws they decide with.

Each firm is an agent with its own random draws, but the population lives in
numpy columns (``id, city, sector, size, born, anchor``) kept dense by
swap-removal, and every draw acts on all firms of a step at once. A step
costs O(firms that exit, reconsider or enter), not O(all firms): the firms
that face a decision are found by drawing how many there are (binomial) and
which ones (a uniform subset), which is exactly independent Bernoulli trials,
then thinning where probabilities differ between firms. The probabilities
themselves are the kernel's (:mod:`sim.model.kernel.phases`, :mod:`sim.model.kernel.utility`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS: dict[str, np.dtype] = {
    "id": np.dtype(np.int64),       # unique, never reused
    "city": np.dtype(np.int16),     # index into the model's cities
    "sector": np.dtype(np.int8),    # index into the scenario's sectors
    "size": np.dtype(np.float32),   # scale at birth, ≥ 1 (Pareto), fixed
    "born": np.dtype(np.int32),     # step of entry (0 for the initial firms)
    "anchor": np.dtype(np.bool_),   # a named leader
}


class Firms:
    """The firm population as dense columns; firms ``[0, n)`` are alive.

    Attributes:
        n: number of firms alive.
        next_id: the id the next firm will get.
    """

    def __init__(self, capacity: int = 1024):
        """Create an empty population with room for ``capacity`` firms."""
        capacity = max(int(capacity), 16)
        self._data = {name: np.empty(capacity, dtype=dtype) for name, dtype in COLUMNS.items()}
        self.n = 0
        self.next_id = 0

    def __len__(self) -> int:
        """Number of firms alive."""
        return self.n

    def __getattr__(self, name: str) -> np.ndarray:
        """A column of the live firms (a view), e.g. ``firms.city``."""
        data = self.__dict__.get("_data")
        if data is None or name not in data:
            raise AttributeError(name)
        return data[name][: self.n]

    @property
    def nbytes(self) -> int:
        """Bytes held by the columns (allocated capacity included)."""
        return sum(a.nbytes for a in self._data.values())

    def add(self, city: np.ndarray, sector: np.ndarray, size: np.ndarray, born: int,
            anchor: np.ndarray | bool = False) -> np.ndarray:
        """Append firms; returns their new ids."""
        k = len(city)
        need = self.n + k
        capacity = len(self._data["id"])
        if need > capacity:
            new_capacity = max(need, 2 * capacity)
            for name, arr in self._data.items():
                grown = np.empty(new_capacity, dtype=arr.dtype)
                grown[: self.n] = arr[: self.n]
                self._data[name] = grown
        ids = np.arange(self.next_id, self.next_id + k, dtype=np.int64)
        rows = slice(self.n, need)
        self._data["id"][rows] = ids
        self._data["city"][rows] = city
        self._data["sector"][rows] = sector
        self._data["size"][rows] = size
        self._data["born"][rows] = born
        self._data["anchor"][rows] = anchor
        self.n = need
        self.next_id += k
        return ids

    def remove(self, index: np.ndarray) -> None:
        """Remove the firms at positions ``index`` (unique), filling holes from the tail."""
        if len(index) == 0:
            return
        new_n = self.n - len(index)
        dead_in_tail = np.zeros(self.n - new_n, dtype=bool)
        dead_in_tail[index[index >= new_n] - new_n] = True
        holes = index[index < new_n]
        sources = new_n + np.flatnonzero(~dead_in_tail)
        for arr in self._data.values():
            arr[holes] = arr[sources]
        self.n = new_n

    def positions(self, ids: np.ndarray | int) -> np.ndarray:
        """Positions of the live firms with these ids (absent ids are skipped)."""
        return np.flatnonzero(np.isin(self.id, np.atleast_1d(ids)))

    def table(self, cities: list[str], sectors: list[str], step: int) -> pd.DataFrame:
        """The live firms as a DataFrame (one row per firm, ``age`` in steps)."""
        return pd.DataFrame({
            "id": self.id.copy(),
            "city": pd.Categorical.from_codes(self.city.astype(np.int64), categories=cities),
            "sector": pd.Categorical.from_codes(self.sector.astype(np.int64), categories=sectors),
            "size": self.size.copy(),
            "age": step - self.born,
            "anchor": self.anchor.copy(),
        })


def bernoulli_subset(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    """Positions of the successes of n independent Bernoulli(p) trials, sorted.

    Drawn as a Binomial(n, p) count and a uniform subset of that size, which
    has exactly the same distribution at O(n·p) cost. A certain outcome (n = 0,
    p ≤ 0 or p ≥ 1) takes no draw from ``rng``.
    """
    if n == 0 or p <= 0:
        return np.empty(0, dtype=np.int64)
    if p >= 1:
        return np.arange(n, dtype=np.int64)
    k = int(rng.binomial(n, p))
    return np.sort(rng.choice(n, size=k, replace=False).astype(np.int64))


def thin(rng: np.random.Generator, index: np.ndarray, keep_probability: np.ndarray) -> np.ndarray:
    """Keep each candidate with its own probability (thinning of a Bernoulli(p_max) draw)."""
    if len(index) == 0:
        return index
    return index[rng.random(len(index)) < keep_probability]


def draw_categorical(rng: np.random.Generator, P: np.ndarray, row: np.ndarray) -> np.ndarray:
    """One draw per chooser from its own row of probabilities ``P[row]`` (rows sum to 1).

    One uniform per chooser against the cumulative probabilities of its row.
    """
    cumulative = np.cumsum(P, axis=1)
    cumulative[:, -1] = 1.0
    u = rng.random(len(row))
    return (u[:, None] >= cumulative[row]).sum(axis=1)


def largest_remainder(total: int, shares: np.ndarray) -> np.ndarray:
    """Split ``total`` into integers proportional to ``shares`` (largest-remainder rounding; ties to the first listed)."""
    raw = total * shares / shares.sum()
    counts = np.floor(raw).astype(np.int64)
    short = total - counts.sum()
    counts[np.argsort(-(raw - counts), kind="stable")[:short]] += 1
    return counts


SIZE_CLASSES = 16
"""Firm sizes are binned by octaves: class k has size 2**k (1 to 32,768); the top class holds the tail."""


def size_class_probabilities(zeta: float) -> np.ndarray:
    """Probability of each size class at birth: the Pareto(ζ, minimum 1) mass in [2**k, 2**(k+1))."""
    tail = 2.0 ** (-zeta * np.arange(SIZE_CLASSES + 1))  # P(size ≥ 2**k)
    probs = tail[:-1] - tail[1:]
    probs[-1] = tail[-2]
    return probs


def draw_sizes(rng: np.random.Generator, k: int, zeta: float) -> np.ndarray:
    """Sizes of ``k`` new firms: 2**class, the class drawn from :func:`size_class_probabilities`."""
    classes = rng.choice(SIZE_CLASSES, size=k, p=size_class_probabilities(zeta))
    return np.ldexp(1.0, classes).astype(np.float32)
