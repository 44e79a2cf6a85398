"""The logit utility of a city for a firm, its choice probabilities and the strategies' targets, for arrays.

Thin wrappers of the compiled functions of :mod:`sim.model.kernel.utility` (the
one implementation of docs/ODD.md §3.3 and §3.6, which both engines and every
ensemble run), for notebooks and tests: they allocate the outputs and take
the coefficients from a compiled scenario (``md = sim.model.kernel.compile_scenario(scenario)``).
Arrays are named after the ODD's symbols and shaped ``[city, sector]`` unless said otherwise:

    U[c,s] = α·log(N_eff[c,s] + κ) + β_K[s]·log(1+K[c]) + β_D[s]·log(1+D[c])
             + β_A[s]·log(1+A_eff[c]) + ASC[c] + β_T·talent[c] + β_C·capital[c]
             − β_P·cost[c] − γ·N[c]/capacity[c] + ε,     ε ~ Gumbel(0, 1)

with ``N_eff[c, s] = Σ_s' W[s, s']·N[c, s']``. ``X`` is ``[city, 3]``: K, D and
A_eff (:func:`lever_stocks`); ``constant`` the cities' constants now (−∞ for
a closed city; default: the scenario's, every city open). A pool standing for
M places with fixed shares w_m (``places``) replaces its network and congestion
terms by their log-sum over the places,
log Σ_m exp(α·log(w_m·N_eff + κ) − γ·w_m·N/capacity) (the kernel's ``pool_term``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.model.kernel import utility as compiled

if TYPE_CHECKING:
    from sim.model.kernel.compile import CountsModel


def _inputs(md: CountsModel, N: np.ndarray, X: np.ndarray, constant: np.ndarray | None):
    """The arrays in the types the compiled functions are compiled for (one specialisation each)."""
    return (np.ascontiguousarray(N, dtype=np.int64), np.ascontiguousarray(X, dtype=float),
            np.ascontiguousarray(md.constant if constant is None else constant, dtype=float))


def lever_stocks(md: CountsModel, stocks: np.ndarray, anchors_present: np.ndarray) -> np.ndarray:
    """K, D, A_eff per city, ``[city, 3]``, from the stocks K, D, A and the anchor firms present (A_eff = A + ω·anchors)."""
    X = np.empty((len(stocks), 3))
    compiled.lever_stocks(md, np.ascontiguousarray(stocks, dtype=float),
                          np.ascontiguousarray(anchors_present, dtype=np.int64), X)
    return X


def entry_utility(md: CountsModel, N: np.ndarray, X: np.ndarray, constant: np.ndarray | None = None) -> np.ndarray:
    """Deterministic utility ``V[c, s]`` for an entrant (counts as they stand, no moving cost)."""
    N, X, constant = _inputs(md, N, X, constant)
    V = np.empty(N.shape)
    compiled.entry_utility(md, N, X, constant, V)
    return V


def entry_probabilities(md: CountsModel, N: np.ndarray, X: np.ndarray,
                        constant: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities ``P[c, s]`` that a potential entrant of sector s picks city c, and ``stay_out[s]``.

    ``stay_out`` is positive only with an outside option.
    """
    N, X, constant = _inputs(md, N, X, constant)
    P, stay_out = np.empty(N.shape), np.empty(N.shape[1])
    compiled.entry_probabilities(md, N, X, constant, P, stay_out)
    return P, stay_out


def mover_utility(md: CountsModel, N: np.ndarray, X: np.ndarray, constant: np.ndarray | None = None) -> np.ndarray:
    """Deterministic utility ``V[s, h, c]`` of city c for a mover of sector s now in city h.

    A mover counts itself where it would be: in its home city the counts are as
    they are; in any other city its own sector's N_eff rises by W[s, s] and the
    load by 1/capacity. Every city but home costs the moving cost m.
    """
    N, X, constant = _inputs(md, N, X, constant)
    C, S = N.shape
    V = np.empty((S, C, C))
    compiled.mover_utility(md, N, X, constant, V)
    return V


def mover_probabilities(md: CountsModel, N: np.ndarray, X: np.ndarray,
                        constant: np.ndarray | None = None) -> np.ndarray:
    """Choice probabilities ``P[s, h, c]`` of a reconsidering firm of sector s now in city h, staying included."""
    N, X, constant = _inputs(md, N, X, constant)
    C, S = N.shape
    P = np.empty((S, C, C))
    compiled.mover_probabilities(md, N, X, constant, P)
    return P


def expected_entrants(md: CountsModel, N: np.ndarray) -> np.ndarray:
    """Expected potential entrants per step by sector: (``births_per_step``, else b·N_total)·mix."""
    out = np.empty(len(md.sector_mix))
    compiled.expected_entrants(md, np.ascontiguousarray(N, dtype=np.int64), out)
    return out


def marginal_firm_gain(md: CountsModel, N: np.ndarray, X: np.ndarray,
                       constant: np.ndarray | None = None) -> np.ndarray:
    """Expected extra entrants per step per 100 M yuan spent on each lever, ``[city, lever]``.

    From the logit's analytic derivative ∂P[c,s]/∂X[c] = β_X[s]·P[c,s]·(1 − P[c,s])/(1 + X[c]),
    times the expected potential entrants per sector and the stock bought per 100 M yuan (1/c_X).
    """
    N, X, constant = _inputs(md, N, X, constant)
    gain = np.empty((N.shape[0], 3))
    compiled.marginal_firm_gain(md, N, X, constant, gain)
    return gain


def best_levers(gain: np.ndarray) -> np.ndarray | None:
    """The best-response target allocation for one city's gains per lever (compute, data, anchor).

    Returns:
        Shares over the levers: 1 on the lever with the highest gain, split
        equally between levers tied for best (within a relative 10⁻⁹); None
        when all levers gain the same, so that the allocation stays where it is.
    """
    target = np.empty(3)
    return target if compiled.best_levers(np.ascontiguousarray(gain, dtype=float), target) else None
