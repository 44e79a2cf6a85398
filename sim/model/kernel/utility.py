"""The logit utility of docs/ODD.md §3.3, its choice probabilities, and what the city strategies read (§3.6).

Arrays in, arrays out: the state enters as counts ``N[c, s]``, lever stocks
``X[c, 3]`` (K, D, A_eff; :func:`lever_stocks`) and the city constants now
(``constant[c]``, −∞ for a closed city); the coefficients come from the compiled
scenario ``md`` (:class:`sim.model.kernel.compile.CountsModel`). Both engines
and every ensemble call these functions (``sim.model.utility`` wraps them for
Python callers)::

    U[c,s] = α·log(N_eff[c,s] + κ) + Σ_X β_X[s]·log(1 + X[c])
             + constant[c] − γ·N[c]/capacity[c] + ε,      ε ~ Gumbel(0, 1)

with ``N_eff[c, s] = Σ_s' W[s, s']·N[c, s']``. A pool standing for several places
(:func:`pool_term`) has the log-sum over its places of their network and
congestion terms instead.
"""

from __future__ import annotations

import math

import numpy as np

from sim.model.kernel.cache import jit
from sim.model.kernel.compile import NONE

BEST_LEVERS_RTOL = 1e-9
"""Gains within this relative distance of the highest count as tied (docs/ODD.md §3.6)."""


def log(x):
    """The natural logarithm of x, −∞ at 0 (``math.log`` raises there, and the kernel also runs uncompiled)."""
    if x <= 0.0:
        return -np.inf
    return math.log(x)


log = jit(log)


def softmax(V, out):
    """The multinomial-logit probabilities exp(V)/Σ exp(V), into ``out``; alternatives with V = −∞ get 0."""
    top = -np.inf
    for v in V:
        top = max(top, v)
    if not math.isfinite(top):
        top = 0.0
    total = 0.0
    for j in range(V.shape[0]):
        out[j] = math.exp(V[j] - top)
        total += out[j]
    for j in range(V.shape[0]):
        out[j] /= total


softmax = jit(softmax)


def lever_stocks(md, stocks, anchors_present, X):
    """K, D, A_eff per city into ``X[c, 3]``; A_eff = A + ω·(anchor firms present)."""
    for c in range(X.shape[0]):
        X[c, 0] = stocks[c, 0]
        X[c, 1] = stocks[c, 1]
        X[c, 2] = stocks[c, 2] + md.omega * anchors_present[c]


lever_stocks = jit(lever_stocks)


def fixed_utility(md, X, constant, fixed):
    """The terms that do not depend on the chooser's home, ``fixed[c, s]``.

    Σ_X β_X[s]·log(1 + X[c]) + ASC[c] + β_T·talent[c] + β_C·capital[c] − β_P·cost[c] (−∞ when closed).
    """
    C, S = fixed.shape
    for c in range(C):
        for s in range(S):
            lever = 0.0
            for x in range(3):
                lever += math.log1p(X[c, x]) * md.beta[x, s]
            fixed[c, s] = lever + constant[c]


fixed_utility = jit(fixed_utility)


def effective_counts(md, N, N_eff, load):
    """N_eff[c, s] = Σ_s' W[s, s']·N[c, s'] and the congestion load N[c]/capacity[c]."""
    C, S = N.shape
    for c in range(C):
        total = 0
        for s in range(S):
            total += N[c, s]
            acc = 0.0
            for s2 in range(S):
                acc += md.W[s, s2] * N[c, s2]
            N_eff[c, s] = acc
        load[c] = total * md.inv_capacity[c]


effective_counts = jit(effective_counts)


def urn_empty(mass):
    """Whether every alternative has N_eff + κ = 0 (the empty urn of ODD §3.3), ``mass`` = N_eff + κ."""
    for j in range(mass.shape[0]):
        if mass[j] > 0.0:
            return False
    return True


urn_empty = jit(urn_empty)


def network_term(alpha, mass, out):
    """α·log(N_eff + κ) over the alternatives, ``mass`` = N_eff + κ (ODD §3.3 conventions).

    With α = 0 the term is 0; if every alternative has N_eff + κ = 0 (an empty
    urn) it is 0; otherwise an alternative with N_eff + κ = 0 gets −∞.
    """
    empty = urn_empty(mass)
    for j in range(mass.shape[0]):
        out[j] = 0.0 if alpha == 0.0 or empty else alpha * log(mass[j])


network_term = jit(network_term)


def log_sum_exp(v):
    """The logarithm of Σ_j exp(v[j]), shifted by the largest v for stability; −∞ if every v is −∞."""
    top = -np.inf
    for x in v:
        top = max(top, x)
    if not math.isfinite(top):
        return top
    total = 0.0
    for x in v:
        total += math.exp(x - top)
    return top + math.log(total)


log_sum_exp = jit(log_sum_exp)


def pool_term(md, c, n_eff, load, own, own_load, empty):
    """Network and congestion terms of a pool of places (ODD §3.3): their log-sum over its places.

    log Σ_m exp(α·log(w_m·N_eff + own + κ) − γ·(w_m·load + own_load)), place m holding the fixed
    share w_m of the pool's counts; ``own``/``own_load`` are what a mover adds where it would be;
    ``empty`` (every alternative empty) sets the network term to 0, as for single places.
    """
    v = np.empty(md.n_places[c])
    for k in range(v.shape[0]):
        w = md.place_w[c, k]
        net = 0.0 if md.alpha == 0.0 or empty else md.alpha * log(w * n_eff + own + md.kappa)
        v[k] = net - md.gamma * (w * load + own_load)
    return log_sum_exp(v)


pool_term = jit(pool_term)


def utility_inputs(md, N, X, constant):
    """The parts of utility every chooser shares: the fixed terms ``[c, s]``, N_eff ``[c, s]`` and the load ``[c]``."""
    C, S = N.shape
    fixed = np.empty((C, S))
    fixed_utility(md, X, constant, fixed)
    N_eff = np.empty((C, S))
    load = np.empty(C)
    effective_counts(md, N, N_eff, load)
    return fixed, N_eff, load


utility_inputs = jit(utility_inputs)


def entry_utility(md, N, X, constant, V):
    """Deterministic utility ``V[c, s]`` of city c for an entrant of sector s: the counts as they stand, no moving cost."""
    C, S = N.shape
    fixed, N_eff, load = utility_inputs(md, N, X, constant)
    mass = np.empty(C)
    net = np.empty(C)
    for s in range(S):
        for c in range(C):
            mass[c] = N_eff[c, s] + md.kappa
        network_term(md.alpha, mass, net)
        empty = urn_empty(mass)
        for c in range(C):
            if md.n_places[c] > 1:
                V[c, s] = pool_term(md, c, N_eff[c, s], load[c], 0.0, 0.0, empty) + fixed[c, s]
            else:
                V[c, s] = net[c] + fixed[c, s] - md.gamma * load[c]


entry_utility = jit(entry_utility, inline=True)


def entry_probabilities(md, N, X, constant, P, stay_out):
    """Probability that a potential entrant of sector s picks city c, ``P[c, s]``, and stays out, ``stay_out[s]``.

    The logit over the entry utilities (:func:`entry_utility`); with an outside
    option V₀ staying out is one more alternative.
    """
    C, S = N.shape
    V = np.empty((C, S))
    entry_utility(md, N, X, constant, V)
    v = np.empty(C + 1) if md.has_outside_option else np.empty(C)
    p = np.empty(v.shape[0])
    for s in range(S):
        for c in range(C):
            v[c] = V[c, s]
        if md.has_outside_option:
            v[C] = md.V0
        softmax(v, p)
        chosen = 0.0
        for c in range(C):
            P[c, s] = p[c]
            chosen += p[c]
        stay_out[s] = min(max(1.0 - chosen, 0.0), 1.0)


entry_probabilities = jit(entry_probabilities)


def mover_utility(md, N, X, constant, V):
    """Deterministic utility ``V[s, h, c]`` of city c for a reconsidering firm of sector s now in city h.

    A mover counts itself where it would be: at home the counts are as they
    are; in any other city its own sector's N_eff rises by W[s, s] and the load
    by 1/capacity; every city but home costs the moving cost m.
    """
    S, C = V.shape[0], V.shape[1]
    fixed, N_eff, load = utility_inputs(md, N, X, constant)
    mass = np.empty(C)
    net = np.empty(C)
    pool_home = np.empty(C)  # a pool's terms for a mover at home in it and for one joining it (urn not empty)
    pool_away = np.empty(C)
    for s in range(S):
        for c in range(C):
            if md.n_places[c] > 1:
                pool_home[c] = pool_term(md, c, N_eff[c, s], load[c], 0.0, 0.0, False)
                pool_away[c] = pool_term(md, c, N_eff[c, s], load[c], md.W[s, s], md.inv_capacity[c], False)
        for h in range(C):
            for c in range(C):
                away = 0.0 if c == h else 1.0
                mass[c] = N_eff[c, s] + md.W[s, s] * away + md.kappa
            network_term(md.alpha, mass, net)
            empty = urn_empty(mass)
            for c in range(C):
                away = 0.0 if c == h else 1.0
                if md.n_places[c] > 1:
                    if empty:
                        agglomeration = pool_term(md, c, N_eff[c, s], load[c], md.W[s, s] * away,
                                                  md.inv_capacity[c] * away, True)
                    else:
                        agglomeration = pool_away[c] if c != h else pool_home[c]
                    V[s, h, c] = agglomeration + fixed[c, s] - md.m * away
                else:
                    V[s, h, c] = net[c] + fixed[c, s] - md.gamma * (load[c] + md.inv_capacity[c] * away) - md.m * away


mover_utility = jit(mover_utility, inline=True)


def mover_probabilities(md, N, X, constant, P):
    """Choice probabilities ``P[s, h, c]`` of a reconsidering firm of sector s now in city h, staying included."""
    S, C = P.shape[0], P.shape[1]
    V = np.empty((S, C, C))
    mover_utility(md, N, X, constant, V)
    for s in range(S):
        for h in range(C):
            softmax(V[s, h], P[s, h])


mover_probabilities = jit(mover_probabilities)


def expected_entrants(md, N, out):
    """Expected potential entrants per step by sector, ``out[s]``: (B, else b·N_total)·mix_s."""
    total = float(md.B) if md.B != NONE else md.b * N.sum()
    for s in range(out.shape[0]):
        out[s] = total * md.sector_mix[s]


expected_entrants = jit(expected_entrants)


def marginal_firm_gain(md, N, X, constant, gain):
    """Expected extra entrants per step per 100 M yuan on each lever, ``gain[c, lever]``.

    The logit's analytic derivative ∂P[c,s]/∂X[c] = β_X[s]·P[c,s]·(1 − P[c,s])/(1 + X[c]),
    weighted by the expected potential entrants per sector and divided by c_X.
    """
    C, S = N.shape
    P = np.empty((C, S))
    stay_out = np.empty(S)
    entry_probabilities(md, N, X, constant, P, stay_out)
    n = np.empty(S)
    expected_entrants(md, N, n)
    for c in range(C):
        for x in range(3):
            per_stock = 0.0
            for s in range(S):
                per_stock += P[c, s] * (1.0 - P[c, s]) * n[s] * md.beta[x, s]
            gain[c, x] = per_stock / (1.0 + X[c, x]) / md.unit_cost[x]


marginal_firm_gain = jit(marginal_firm_gain)


def best_levers(gain, target):
    """The best-response target into ``target``: 1 on the best lever, split between ties; False = no target.

    Gains within a relative :data:`BEST_LEVERS_RTOL` of the highest are tied. No
    target when every lever gains the same (no lever has an effect, or a closed
    city no firm chooses), so that the allocation stays rather than drifting
    toward an arbitrary lever.
    """
    top = gain[0]
    for x in range(1, 3):
        top = max(top, gain[x])
    tie = top - BEST_LEVERS_RTOL * abs(top)  # a gain at least this high is tied with the top
    tied = 0
    for x in range(3):
        if gain[x] >= tie:
            tied += 1
    if tied == 3:
        return False
    for x in range(3):
        target[x] = 1.0 / tied if gain[x] >= tie else 0.0
    return True


best_levers = jit(best_levers)


def fastest_growing(md, budget, growth):
    """``imitate``'s model: last year's fastest-growing non-pool city with a budget, the first listed of equals; −1 if none."""
    best = -1
    for j in range(budget.shape[0]):
        if not md.pool[j] and budget[j] > 0 and (best < 0 or growth[j] > growth[best]):
            best = j
    return best


fastest_growing = jit(fastest_growing)
