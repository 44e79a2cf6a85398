"""The logit utility of a city for a firm, and the choice probabilities it implies.

Arrays are named after the symbols of docs/ODD.md (Details, "Location
choice") and shaped ``[city, sector]`` unless said otherwise:

    U[c,s] = α·log(N_eff[c,s] + κ) + β_K[s]·log(1+K[c]) + β_D[s]·log(1+D[c])
             + β_A[s]·log(1+A_eff[c]) + ASC[c] + β_T·talent[c] + β_C·capital[c]
             − β_P·cost[c] − γ·N[c]/capacity[c] + ε,     ε ~ Gumbel(0, 1)

with ``N_eff = N @ Wᵀ`` (W the sector complementarity matrix). A pool standing for M places
with fixed shares w_m (``places``) replaces its network and congestion terms by their log-sum over
the places, log Σ_m exp(α·log(w_m·N_eff + κ) − γ·w_m·N/capacity) (:func:`pool_term`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.model.parameters import LEVERS

if TYPE_CHECKING:
    from sim.scenario.schema import Scenario


@dataclass(frozen=True)
class Coefficients:
    """The utility's coefficients and the cities' fixed terms, as arrays.

    Attributes:
        alpha: network effect α.
        kappa: network seed κ (firms).
        gamma: congestion γ.
        moving_cost: m, utility paid by a mover for any city but its own.
        beta: lever weights β_X[s], shape ``[lever, sector]`` (levers K, D, A).
        W: complementarity W[s, s'], shape ``[sector, sector]``.
        city_constant: ASC[c] + β_T·talent[c] + β_C·capital[c] − β_P·cost[c], shape ``[city]``.
        inv_capacity: 1/capacity[c] (0 where a city has no capacity limit), shape ``[city]``.
        place_shares: for each pool of several places, its index and the places' shares w_m
            (every other city is one place of share 1).
    """

    alpha: float
    kappa: float
    gamma: float
    moving_cost: float
    beta: np.ndarray
    W: np.ndarray
    city_constant: np.ndarray
    inv_capacity: np.ndarray
    place_shares: tuple[tuple[int, np.ndarray], ...] = ()

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> Coefficients:
        """Read the coefficients of a validated scenario."""
        p = scenario.parameters
        sectors = scenario.sector_names
        beta = np.array([[p.lever_effects.get(lever, {}).get(s, 0.0) for s in sectors] for lever in LEVERS])
        cities = scenario.cities
        constant = np.array([c.attractiveness + p.talent_effect * c.talent + p.capital_effect * c.capital
                             - p.cost_effect * c.cost for c in cities])
        inv_capacity = np.array([0.0 if c.capacity is None else 1.0 / c.capacity for c in cities])
        places = tuple((i, np.array(c.place_shares())) for i, c in enumerate(cities) if c.places > 1)
        return cls(alpha=p.network_effect, kappa=p.network_seed, gamma=p.congestion, moving_cost=p.moving_cost,
                   beta=beta, W=np.asarray(scenario.complementarity_matrix(), dtype=float),
                   city_constant=constant, inv_capacity=inv_capacity, place_shares=places)


def network_term(coef: Coefficients, N_eff: np.ndarray) -> np.ndarray:
    """α·log(N_eff + κ), with the conventions that keep the urn well defined.

    With α = 0 the term is 0. Where a sector has N_eff + κ = 0 in *every* city
    (an empty urn) the term is 0 for that sector, so choice falls back on the
    other terms. Otherwise a city with N_eff + κ = 0 gets −∞: it is never chosen
    (the pure Pólya urn).
    """
    if coef.alpha == 0:
        return np.zeros_like(N_eff, dtype=float)
    mass = N_eff + coef.kappa
    with np.errstate(divide="ignore"):
        term = coef.alpha * np.log(mass)
    empty_urn = np.all(mass <= 0, axis=0)
    term[..., empty_urn] = 0.0
    return term


def lever_term(coef: Coefficients, stocks: np.ndarray) -> np.ndarray:
    """Σ_X β_X[s]·log(1 + X[c]) for X in (K, D, A_eff); ``stocks`` is ``[city, lever]``."""
    return np.log1p(stocks) @ coef.beta


def pool_term(coef: Coefficients, shares: np.ndarray, N_eff: np.ndarray, load: np.ndarray | float,
              own: np.ndarray | float = 0.0, own_load: np.ndarray | float = 0.0,
              empty_urn: np.ndarray | bool = False) -> np.ndarray:
    """The network and congestion terms of a pool of places with fixed shares ``shares`` (w_m).

    log Σ_m exp(α·log(w_m·N_eff + own + κ) − γ·(w_m·load + own_load)): the chooser picks the pool
    with the probability of picking any one of its places, the place holding w_m of the pool's
    counts, plus what the chooser adds where it would be (``own``, ``own_load``). The network
    term's conventions (:func:`network_term`) hold place by place; ``empty_urn`` marks choosers
    for whom every alternative is empty (the network term is then 0).
    """
    own, own_load = np.asarray(own, dtype=float), np.asarray(own_load, dtype=float)
    mass = np.asarray(N_eff, dtype=float)[..., None] * shares + own[..., None] + coef.kappa     # [..., place]
    with np.errstate(divide="ignore"):
        network = np.zeros_like(mass) if coef.alpha == 0 else coef.alpha * np.log(mass)
    network = np.where(np.asarray(empty_urn)[..., None], 0.0, network)
    x = network - coef.gamma * (np.asarray(load, dtype=float)[..., None] * shares + own_load[..., None])
    top = np.max(x, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(x - top).sum(axis=-1)) + top[..., 0]


def entry_utility(coef: Coefficients, N: np.ndarray, stocks: np.ndarray) -> np.ndarray:
    """Deterministic utility ``V[c, s]`` for an entrant (counts as they stand, no moving cost).

    Args:
        coef: the coefficients.
        N: firms per city and sector, ``[city, sector]``.
        stocks: K, D, A_eff per city, ``[city, 3]``.
    """
    N_eff = N @ coef.W.T
    load = N.sum(axis=1) * coef.inv_capacity
    lever = lever_term(coef, stocks)
    V = network_term(coef, N_eff) + lever + (coef.city_constant - coef.gamma * load)[:, None]
    empty_urn = np.all(N_eff + coef.kappa <= 0, axis=0)
    for c, shares in coef.place_shares:
        V[c] = pool_term(coef, shares, N_eff[c], load[c], empty_urn=empty_urn) + lever[c] + coef.city_constant[c]
    return V


def mover_utility(coef: Coefficients, N: np.ndarray, stocks: np.ndarray) -> np.ndarray:
    """Deterministic utility ``V[s, h, c]`` of city c for a mover of sector s now in city h.

    A mover counts itself where it would be: in its home city the counts are as
    they are; in any other city its own sector's N_eff rises by W[s, s] and the
    load by 1/capacity (in a pool, those of the place it would join). Every city
    but home costs the moving cost m.
    """
    n_city, n_sector = N.shape
    N_eff = N @ coef.W.T                                      # [c, s]
    own = np.diag(coef.W)                                     # W[s, s]
    load = N.sum(axis=1) * coef.inv_capacity                  # [c]
    away = 1.0 - np.eye(n_city)                               # [h, c]: 1 where c != h
    # [s, h, c]: N_eff[c, s] + W[s, s]·1{c≠h}
    N_eff_seen = N_eff.T[:, None, :] + own[:, None, None] * away[None, :, :]
    load_seen = load[None, :] + coef.inv_capacity[None, :] * away   # [h, c]
    lever = lever_term(coef, stocks)                          # [c, s]
    fixed = (lever.T + coef.city_constant[None, :])           # [s, c]
    network = np.moveaxis(network_term(coef, np.moveaxis(N_eff_seen, -1, 0)), 0, -1)   # choice over the last axis
    V = network + fixed[:, None, :] - coef.gamma * load_seen[None, :, :] - coef.moving_cost * away[None, :, :]
    empty_urn = np.all(N_eff_seen + coef.kappa <= 0, axis=-1)   # [s, h]
    for c, shares in coef.place_shares:
        V[:, :, c] = (pool_term(coef, shares, N_eff[c][:, None], load[c], own=own[:, None] * away[None, :, c],
                                own_load=coef.inv_capacity[c] * away[None, :, c], empty_urn=empty_urn)
                      + fixed[:, c][:, None] - coef.moving_cost * away[None, :, c])
    return V


def choice_probabilities(V: np.ndarray, axis: int) -> np.ndarray:
    """Multinomial-logit probabilities softmax(V) along ``axis`` (Gumbel scale 1).

    Cities with V = −∞ get probability 0. Numerically stable (max subtracted).
    """
    top = np.max(V, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    expV = np.exp(V - top)
    return expV / expV.sum(axis=axis, keepdims=True)


def marginal_firm_gain(coef: Coefficients, P: np.ndarray, choosers: np.ndarray, stocks: np.ndarray,
                       unit_cost: np.ndarray) -> np.ndarray:
    """Expected extra firms per step per 100 M yuan spent on each lever, ``[city, lever]``.

    From the logit's analytic derivative: ∂P[c,s]/∂X[c] = β_X[s]·P[c,s]·(1 − P[c,s])/(1 + X[c]),
    times the expected choosers per sector and the stock bought per 100 M yuan (1/c_X).

    Args:
        coef: the coefficients.
        P: entry choice probabilities ``[city, sector]``.
        choosers: expected firms choosing per step, per sector ``[sector]``.
        stocks: K, D, A_eff ``[city, 3]``.
        unit_cost: c_X per lever ``[3]``.
    """
    dP = P * (1.0 - P)                                       # [c, s]
    per_stock = (dP * choosers[None, :]) @ coef.beta.T       # [c, lever]: Σ_s β_X[s]·n_s·P(1−P)
    return per_stock / (1.0 + stocks) / unit_cost[None, :]
