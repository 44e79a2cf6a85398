"""Pure-strategy games on finite strategy grids: best responses, equilibria, price of anarchy.

Generic: any payoff function of a profile, any finite grids. Each of ``n`` players
(e.g. cities) picks one strategy from its own finite grid (e.g. points of
:func:`sim.analysis.simplex.simplex_grid`). A *profile* is a tuple of strategy
indices, one per player; ``payoffs(profile)`` returns every player's payoff as an array
of length ``n`` (e.g. each city's firms after the horizon). Payoffs are assumed
expensive (a simulation ensemble each), so every function evaluates a profile at most
once through :class:`CachedPayoffs`.

* :func:`iterated_best_response` — players update in turn (Gauss-Seidel), each switching
  to its best response to the others' current strategies, until a full round changes
  nothing (a pure Nash equilibrium on the grid) or the dynamics revisit a state (a
  cycle, reported with its profiles) or ``max_rounds`` is reached.
* :func:`brute_force_equilibria` — every pure Nash equilibrium, by evaluating every
  profile (small games only).
* :func:`cooperative_optimum` and :func:`price_of_anarchy` — the profile maximising a
  welfare function (e.g. national firms) and how much equilibrium play loses.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "BestResponseResult",
    "CachedPayoffs",
    "best_response",
    "brute_force_equilibria",
    "cooperative_optimum",
    "is_equilibrium",
    "iterated_best_response",
    "price_of_anarchy",
]

Profile = tuple[int, ...]


class CachedPayoffs:
    """A payoff function that evaluates each profile once and checks its output.

    Args:
        payoffs: ``payoffs(profile) -> array of n_players payoffs``.
        n_players: number of players (length of profiles and payoff arrays).

    Attributes:
        cache: payoffs of every profile evaluated so far.
    """

    def __init__(self, payoffs: Callable[[Profile], Sequence[float]], n_players: int):
        self.function = payoffs
        self.n_players = n_players
        self.cache: dict[Profile, np.ndarray] = {}

    @property
    def evaluations(self) -> int:
        """Number of distinct profiles evaluated (calls to the underlying function)."""
        return len(self.cache)

    def __call__(self, profile: Sequence[int]) -> np.ndarray:
        """Payoffs of ``profile`` (a read-only array of length ``n_players``)."""
        key = tuple(int(i) for i in profile)
        if key not in self.cache:
            values = np.array(self.function(key), dtype=float).reshape(-1)
            if values.shape != (self.n_players,):
                raise ValueError(f"games: payoffs{key} returned {values.size} values for {self.n_players} players")
            if not np.isfinite(values).all():
                raise ValueError(f"games: payoffs{key} returned a non-finite value: {values}")
            values.setflags(write=False)
            self.cache[key] = values
        return self.cache[key]


def _cached(payoffs: Callable | CachedPayoffs, n_players: int) -> CachedPayoffs:
    if isinstance(payoffs, CachedPayoffs):
        if payoffs.n_players != n_players:
            raise ValueError(f"games: cached payoffs for {payoffs.n_players} players, grids for {n_players}")
        return payoffs
    return CachedPayoffs(payoffs, n_players)


def _sizes(grids: Sequence[Sequence | int]) -> list[int]:
    sizes = [g if isinstance(g, int) else len(g) for g in grids]
    if len(sizes) < 1 or min(sizes) < 1:
        raise ValueError(f"games: every player needs at least one strategy, grid sizes {sizes}")
    return sizes


def best_response(
    payoffs: Callable | CachedPayoffs,
    grids: Sequence[Sequence | int],
    profile: Sequence[int],
    player: int,
    tie_break: str = "lowest",
    tol: float = 1e-12,
) -> int:
    """The strategy index maximising ``player``'s payoff with the others' strategies fixed.

    Args:
        payoffs: payoff function (or a :class:`CachedPayoffs`).
        grids: per player, its strategy grid (or its size).
        profile: current strategy indices.
        player: whose best response.
        tie_break: ``"lowest"``: lowest index among the maximisers; ``"stay"``: the current
            strategy if it is a maximiser, else the lowest.
        tol: payoffs within ``tol`` of the maximum count as maximal (payoff units).

    Returns:
        The index of the best response in the player's grid.
    """
    if tie_break not in ("lowest", "stay"):
        raise ValueError(f"games: unknown tie_break {tie_break!r} (use 'lowest' or 'stay')")
    sizes = _sizes(grids)
    cached = _cached(payoffs, len(sizes))
    current = list(profile)
    values = np.empty(sizes[player])
    for s in range(sizes[player]):
        current[player] = s
        values[s] = cached(current)[player]
    top = values.max()
    maximisers = np.flatnonzero(values >= top - tol)
    if tie_break == "stay" and profile[player] in maximisers:
        return int(profile[player])
    return int(maximisers[0])


@dataclass
class BestResponseResult:
    """Outcome of iterated best response.

    Attributes:
        status: ``"equilibrium"`` (a full round changed nothing), ``"cycle"`` (a state
            recurred) or ``"max_rounds"`` (neither within the allowed rounds).
        profile: the last profile reached (the equilibrium if status is "equilibrium").
        payoffs: every player's payoff at ``profile``.
        path: every profile visited, in order, starting with the starting profile (one
            entry per strategy change).
        cycle: for a cycle, its profiles in order (returning to the first); else empty.
        rounds: rounds played (a round = each player updating once).
        evaluations: distinct profiles evaluated (calls to the payoff function).
    """

    status: str
    profile: Profile
    payoffs: np.ndarray
    path: list[Profile] = field(default_factory=list)
    cycle: list[Profile] = field(default_factory=list)
    rounds: int = 0
    evaluations: int = 0

    @property
    def converged(self) -> bool:
        """True if a pure Nash equilibrium was reached."""
        return self.status == "equilibrium"

    def to_df(self, grids: Sequence[Sequence] | None = None) -> pd.DataFrame:
        """The path as a table: one row per profile, one column per player (indices, or grid values if given)."""
        rows = [list(p) if grids is None else [grids[i][s] for i, s in enumerate(p)] for p in self.path]
        frame = pd.DataFrame(rows, columns=[f"player_{i}" for i in range(len(self.profile))])
        frame["in_cycle"] = [p in set(self.cycle) for p in self.path]
        return frame


def iterated_best_response(
    payoffs: Callable | CachedPayoffs,
    grids: Sequence[Sequence | int],
    start: Sequence[int] | None = None,
    max_rounds: int = 100,
    tie_break: str = "stay",
    tol: float = 1e-12,
) -> BestResponseResult:
    """Players take turns best-responding (Gauss-Seidel) until a fixed point or a cycle.

    In each round players ``0, 1, …, n-1`` update in turn, each seeing the others'
    latest strategies. A round in which nobody changes ends at a pure Nash equilibrium
    of the grid game. The dynamics are deterministic, so a profile recurring at the
    start of a round proves a cycle; it is reported with every profile it passes through.

    Args:
        payoffs: ``payoffs(profile) -> array of n_players payoffs`` (or a :class:`CachedPayoffs`
            to share evaluations between calls).
        grids: per player, its strategy grid (or its size).
        start: starting profile (default: every player at index 0).
        max_rounds: most rounds played.
        tie_break: ``"stay"`` (default: keep the current strategy when it is among the best)
            or ``"lowest"`` (the lowest-index best strategy).
        tol: payoffs within ``tol`` of the best count as ties (payoff units).

    Returns:
        The :class:`BestResponseResult`.
    """
    sizes = _sizes(grids)
    n = len(sizes)
    cached = _cached(payoffs, n)
    profile = tuple(0 for _ in sizes) if start is None else tuple(int(s) for s in start)
    if len(profile) != n or any(not 0 <= s < size for s, size in zip(profile, sizes, strict=True)):
        raise ValueError(f"games: start {profile} is not a profile of grids of sizes {sizes}")
    path: list[Profile] = [profile]
    round_starts: dict[Profile, int] = {profile: 0}  # profile at the start of a round -> index in path
    for round_number in range(1, max_rounds + 1):
        changed = False
        for player in range(n):
            choice = best_response(cached, sizes, profile, player, tie_break, tol)
            if choice != profile[player]:
                profile = profile[:player] + (choice,) + profile[player + 1 :]
                path.append(profile)
                changed = True
        if not changed:
            return BestResponseResult("equilibrium", profile, cached(profile), path, [], round_number, cached.evaluations)
        if profile in round_starts:
            first = round_starts[profile]
            cycle = path[first:]
            return BestResponseResult("cycle", profile, cached(profile), path, cycle, round_number, cached.evaluations)
        round_starts[profile] = len(path) - 1
    return BestResponseResult("max_rounds", profile, cached(profile), path, [], max_rounds, cached.evaluations)


def _payoff_table(cached: CachedPayoffs, sizes: list[int]) -> np.ndarray:
    table = np.empty((*sizes, len(sizes)))
    for profile in itertools.product(*(range(s) for s in sizes)):
        table[profile] = cached(profile)
    return table


def brute_force_equilibria(
    payoffs: Callable | CachedPayoffs,
    grids: Sequence[Sequence | int],
    tol: float = 1e-12,
) -> list[Profile]:
    """Every pure Nash equilibrium of the grid game, by evaluating all profiles.

    A profile is an equilibrium if no player can raise its payoff by more than ``tol``
    by changing its own strategy alone.

    Args:
        payoffs: payoff function (or a :class:`CachedPayoffs`).
        grids: per player, its strategy grid (or its size).
        tol: payoff gains up to ``tol`` do not count (payoff units).

    Returns:
        The equilibria, in lexicographic order (empty if there is none).
    """
    sizes = _sizes(grids)
    table = _payoff_table(_cached(payoffs, len(sizes)), sizes)
    stable = np.ones(sizes, dtype=bool)
    for player in range(len(sizes)):
        own = table[..., player]
        stable &= own >= own.max(axis=player, keepdims=True) - tol
    return [tuple(int(i) for i in p) for p in np.argwhere(stable)]


def is_equilibrium(
    payoffs: Callable | CachedPayoffs, grids: Sequence[Sequence | int], profile: Sequence[int], tol: float = 1e-12
) -> bool:
    """Whether no player gains more than ``tol`` by deviating alone from ``profile``."""
    sizes = _sizes(grids)
    cached = _cached(payoffs, len(sizes))
    here = cached(profile)
    for player in range(len(sizes)):
        best = best_response(cached, sizes, profile, player, "stay", tol)
        alternative = list(profile)
        alternative[player] = best
        if cached(alternative)[player] > here[player] + tol:
            return False
    return True


def cooperative_optimum(welfare: Callable[[Profile], float], grids: Sequence[Sequence | int]) -> tuple[Profile, float]:
    """The profile maximising a welfare function, by enumeration.

    Args:
        welfare: ``welfare(profile) -> float``, e.g. national firms (the sum of the cities'
            payoffs) for a planner choosing every city's strategy.
        grids: per player, its strategy grid (or its size).

    Returns:
        ``(profile, welfare)``; ties go to the lexicographically first profile.
    """
    sizes = _sizes(grids)
    best_profile, best_value = None, -np.inf
    for profile in itertools.product(*(range(s) for s in sizes)):
        value = float(welfare(profile))
        if not np.isfinite(value):
            raise ValueError(f"games: welfare{profile} is not finite: {value}")
        if value > best_value:
            best_profile, best_value = profile, value
    return best_profile, best_value


def price_of_anarchy(welfare_at_equilibrium: float | Sequence[float], best_welfare: float) -> float:
    """Ratio of the best achievable welfare to equilibrium welfare (≥ 1; 1 = no loss).

    Args:
        welfare_at_equilibrium: welfare at an equilibrium, or at each of several equilibria
            (the worst is used, as in the definition of the price of anarchy).
        best_welfare: welfare of the cooperative optimum (same units, positive).

    Returns:
        ``best_welfare / min(welfare_at_equilibrium)``.

    Raises:
        ValueError: no equilibrium given, non-positive welfare, or an equilibrium better
            than the stated optimum.
    """
    values = np.atleast_1d(np.asarray(welfare_at_equilibrium, dtype=float))
    if values.size == 0:
        raise ValueError("games: price of anarchy needs at least one equilibrium welfare")
    worst = float(values.min())
    if worst <= 0 or best_welfare <= 0:
        raise ValueError(f"games: price of anarchy needs positive welfare, got equilibrium {worst} and best {best_welfare}")
    if values.max() > best_welfare * (1 + 1e-12):
        raise ValueError(f"games: equilibrium welfare {values.max()} exceeds the stated best {best_welfare}")
    return best_welfare / worst
