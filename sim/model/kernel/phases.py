"""The phases of a step (docs/ODD.md §1.3), one function each, on the counts of :class:`~sim.model.kernel.compile.State`.

Ordinary firms are counts ``n[c, s, k]`` per city, sector and size class
(exchangeable, so their exits and reconsiderations are binomial and their
destinations multinomial draws: exactly the per-firm rules in distribution) and
anchors are individual firms in slots. The city phases (:func:`spend`) and the
record (:func:`record`) serve both engines; the ``agents`` engine draws its
individual firms' exits and reconsiderations with :func:`exit_probabilities`
and :func:`reconsider_probabilities`.
"""

from __future__ import annotations

import math

import numpy as np

from sim.model.kernel.cache import jit
from sim.model.kernel.compile import BEST_RESPONSE, FIXED, IMITATE, NONE
from sim.model.kernel.streams import categorical, multinomial, take_uniform
from sim.model.kernel.utility import (
    best_levers,
    entry_probabilities,
    fastest_growing,
    lever_stocks,
    marginal_firm_gain,
    mover_probabilities,
)


# ============================================================================ rules of a firm (§3.2, §3.4)
def exit_probability(md, size, anchor, rate):
    """§3.2: ``rate``·size^(−η) for an ordinary firm, ``rate``·φ_exit for an anchor (``rate`` = μ: the exit probability).

    With ``rate`` = 1 it is the probability of keeping a candidate drawn at rate μ (thinning).
    """
    if anchor:
        return rate * md.phi_exit
    return rate * size ** -md.eta


exit_probability = jit(exit_probability, inline=True)


def reconsider_probability(md, A_home, anchor, rate):
    """§3.4: ``rate`` for an ordinary firm, ``rate``·φ_move/(1 + A) for an anchor whose city's anchor stock is A.

    ``rate`` = ρ gives the reconsideration probability; 1, the thinning probability of a candidate drawn at ρ.
    """
    if anchor:
        return rate * md.phi_move / (1.0 + A_home)
    return rate


reconsider_probability = jit(reconsider_probability, inline=True)


def exit_probabilities(md, size, anchor, rate, out):
    """:func:`exit_probability` of each firm of a list (sizes and anchor flags), into ``out``."""
    for i in range(out.shape[0]):
        out[i] = exit_probability(md, float(size[i]), anchor[i], rate)


exit_probabilities = jit(exit_probabilities)


def reconsider_probabilities(md, stocks, city, anchor, rate, out):
    """:func:`reconsider_probability` of each firm of a list (cities and anchor flags), into ``out``."""
    for i in range(out.shape[0]):
        out[i] = reconsider_probability(md, stocks[city[i], 2], anchor[i], rate)


reconsider_probabilities = jit(reconsider_probabilities)


# ============================================================================ set-up (§3.1) and anchors
def add_anchor(st, city, sector):
    """A new anchor firm (initial, or an event's ``add_anchor``) in the next free slot."""
    a = st.n_anchors[0]
    st.anchor_city[a] = city
    st.anchor_sector[a] = sector
    st.anchor_alive[a] = True
    st.n_anchors[0] = a + 1
    st.anchors_present[city] += 1
    st.N[city, sector] += 1


add_anchor = jit(add_anchor)


def populate(rng, md, st):
    """§3.1 Initialisation: each city's anchors, then its ordinary firms, size classes one multinomial per (c, s)."""
    C, S = md.N0.shape
    for a in range(md.anchor_city0.shape[0]):
        add_anchor(st, md.anchor_city0[a], md.anchor_sector0[a])
    size_classes = np.empty(md.size_p.shape[0], dtype=np.int64)
    for c in range(C):
        for s in range(S):
            multinomial(rng, md.N0[c, s], md.size_p, size_classes)
            for k in range(size_classes.shape[0]):
                st.n[c, s, k] += size_classes[k]
            st.N[c, s] += md.N0[c, s]


populate = jit(populate)


# ============================================================================ 1. cities spend (§3.5–3.7)
def close_year(md, rec, t, st):
    """§3.6 Sensing: each city's growth over the year that just ended (for ``imitate``), 0 where it had no firms."""
    C, S = st.N.shape
    ago = t - 1 - md.steps_per_year
    for c in range(C):
        now = 0.0
        year_ago = 0.0
        for s in range(S):
            now += rec.firms[t - 1, c, s]
            year_ago += rec.firms[ago, c, s]
        st.growth[c] = (now - year_ago) / year_ago if year_ago > 0 else 0.0


close_year = jit(close_year)


def adapt_allocations(md, st):
    """§3.6 City strategies (yearly): ``fixed`` keeps, ``imitate`` and ``best_response`` move toward a target.

    A city closes a share ``learning_rate`` of the gap to its target; a city
    with no budget keeps its allocation. ``imitate`` copies the allocation (at
    the start of this year) of last year's fastest-growing non-pool city with
    a budget; ``best_response`` targets the lever of highest marginal gain.
    """
    C = st.N.shape[0]
    year_start = st.allocation.copy()
    gain = np.zeros((C, 3))
    for c in range(C):
        if st.strategy[c] == BEST_RESPONSE and st.budget[c] > 0:
            X = np.empty((C, 3))
            lever_stocks(md, st.stocks, st.anchors_present, X)
            marginal_firm_gain(md, st.N, X, st.constant, gain)
            break
    target = np.empty(3)
    for c in range(C):
        if st.strategy[c] == FIXED or st.budget[c] <= 0:
            continue
        if st.strategy[c] == IMITATE:
            best = fastest_growing(md, st.budget, st.growth)
            if best < 0:
                continue
            target[:] = year_start[best]
        elif not best_levers(gain[c], target):
            continue
        lr = st.learning_rate[c]
        for x in range(3):
            st.allocation[c, x] = (1 - lr) * st.allocation[c, x] + lr * target[x]


adapt_allocations = jit(adapt_allocations)


def apply_events(md, rec, t, st, next_event):
    """§3.7 Events dated at or before the start of step t, in the order written; returns the next event's index."""
    e = next_event
    while e < md.ev_step.shape[0] and md.ev_step[e] == t:
        c = md.ev_city[e]
        for x in range(3):
            st.pending[c, x] += md.ev_invest[e, x]
        if not math.isnan(md.ev_budget[e]):
            st.budget[c] = md.ev_budget[e]
        if not math.isnan(md.ev_allocation[e, 0]):
            st.allocation[c] = md.ev_allocation[e]
        if md.ev_strategy[e] != NONE:
            st.strategy[c] = md.ev_strategy[e]
        if not math.isnan(md.ev_learning_rate[e]):
            st.learning_rate[c] = md.ev_learning_rate[e]
        if md.ev_anchor_sector[e] != NONE:
            add_anchor(st, c, md.ev_anchor_sector[e])
            rec.births[t, c, md.ev_anchor_sector[e]] += 1  # an added anchor is a birth
        if md.ev_open[e] != NONE:
            st.constant[c] = md.constant[c] if md.ev_open[e] == 1 else -np.inf  # a closed city: utility −∞
        e += 1
    return e


apply_events = jit(apply_events, inline=True)


def invest(md, st):
    """§3.5 Policy stocks and spending: spend budget·allocation/steps_per_year plus one-offs; X ← (1 − δ)·X + spend/c."""
    for c in range(st.stocks.shape[0]):
        for x in range(3):
            st.spend[c, x] = st.budget[c] * st.allocation[c, x] / md.steps_per_year + st.pending[c, x]
            st.pending[c, x] = 0.0
            st.stocks[c, x] = (1 - md.delta[x]) * st.stocks[c, x] + st.spend[c, x] / md.unit_cost[x]


invest = jit(invest, inline=True)


def spend(md, rec, t, st, next_event):
    """Phase 1 of step t, cities spend (§3.5–3.7); draws nothing; returns the next event's index.

    At the first step of each year after the first, last year's growth and the
    strategies' adaptation; then the events due; then spending.
    """
    if (t - 1) % md.steps_per_year == 0 and t > 1:
        close_year(md, rec, t, st)
        adapt_allocations(md, st)
    next_event = apply_events(md, rec, t, st, next_event)
    invest(md, st)
    return next_event


spend = jit(spend, inline=True)


# ============================================================================ 2.–4. firms exit, relocate, enter
def exits(rng, md, rec, t, st):
    """§3.2 Exit: a firm of size class k exits with μ·size^(−η); an anchor with μ·φ_exit (:func:`exit_probability`)."""
    C, S, K = st.n.shape
    p_anchor = exit_probability(md, 1.0, True, md.mu)
    for a in range(st.n_anchors[0]):
        if st.anchor_alive[a] and rng.random() < p_anchor:
            st.anchor_alive[a] = False
            c, s = st.anchor_city[a], st.anchor_sector[a]
            st.anchors_present[c] -= 1
            st.N[c, s] -= 1
            rec.deaths[t, c, s] += 1
    for k in range(K):
        p = exit_probability(md, md.size[k], False, md.mu)
        if p <= 0.0:
            continue
        for c in range(C):
            for s in range(S):
                if st.n[c, s, k] > 0:
                    dead = rng.binomial(st.n[c, s, k], p)
                    st.n[c, s, k] -= dead
                    st.N[c, s] -= dead
                    rec.deaths[t, c, s] += dead


exits = jit(exits, inline=True)


def count_move(rec, t, origin, destination, s, firms):
    """Growth accounting of ``firms`` moves of sector s from ``origin`` to ``destination``."""
    rec.moves_out[t, origin, s] += firms
    rec.moves_in[t, destination, s] += firms
    rec.flows[origin, destination] += firms


count_move = jit(count_move)


def relocation(rng, md, rec, t, st):
    """§3.4 Relocation: reconsiderers (:func:`reconsider_probability`) pick a city by the movers' logit, staying included.

    All deciding firms act against the counts at the start of the phase. A
    move is counted out of its origin and into its destination; a firm that
    reconsidered and stayed is no move.

    Ordinary firms of city h and sector s are drawn together, exactly as
    independent per-firm decisions (and per-class Binomial/Multinomial draws):
    the reconsiderers are Binomial(n_hs, ρ), their choices one
    Multinomial(R, P[s, h]), and the firms that leave for each other city a
    uniform subset of the city's firms of that sector, so their size classes
    are drawn one by one without replacement (:func:`~sim.model.kernel.streams.take_uniform`).
    Which reconsiderers stayed need not be drawn: staying changes nothing.
    """
    C, S, K = st.n.shape
    X = np.empty((C, 3))
    lever_stocks(md, st.stocks, st.anchors_present, X)
    P = np.empty((S, C, C))
    mover_probabilities(md, st.N, X, st.constant, P)
    arrived = np.zeros((C, S, K), dtype=np.int64)
    choice = np.empty(C, dtype=np.int64)
    rho = reconsider_probability(md, 0.0, False, md.rho)
    for h in range(C):
        for s in range(S):
            n_hs = 0
            for k in range(K):
                n_hs += st.n[h, s, k]
            if n_hs == 0:
                continue
            reconsider = rng.binomial(n_hs, rho)
            if reconsider == 0:
                continue
            multinomial(rng, reconsider, P[s, h], choice)
            for c in range(C):
                if c != h and choice[c] > 0:
                    n_hs = take_uniform(rng, st.n[h, s], n_hs, choice[c], arrived[c, s])
                    count_move(rec, t, h, c, s, choice[c])
    n = st.n
    n += arrived  # the movers arrive after all have chosen (a local name: numba cannot assign to a tuple's field)
    moved = np.zeros(st.n_anchors[0], dtype=np.int64) - 1
    for a in range(st.n_anchors[0]):
        if not st.anchor_alive[a]:
            continue
        h, s = st.anchor_city[a], st.anchor_sector[a]
        if rng.random() < reconsider_probability(md, st.stocks[h, 2], True, md.rho):
            c = categorical(rng, P[s, h])
            if c != h:
                moved[a] = c
                count_move(rec, t, h, c, s, 1)
    for a in range(moved.shape[0]):  # anchors count in A_eff where they are after the phase
        if moved[a] >= 0:
            st.anchors_present[st.anchor_city[a]] -= 1
            st.anchors_present[moved[a]] += 1
            st.anchor_city[a] = moved[a]
    for c in range(C):
        for s in range(S):
            st.N[c, s] += rec.moves_in[t, c, s] - rec.moves_out[t, c, s]


relocation = jit(relocation, inline=True)


def entry(rng, md, rec, t, st):
    """§3.4 Entry: B or Poisson(b·N_total) potential entrants, sectors by the mix, cities (or staying out) by the logit."""
    C, S, K = st.n.shape
    total = md.B if md.B != NONE else rng.poisson(md.b * st.N.sum())
    by_sector = np.empty(S, dtype=np.int64)
    multinomial(rng, total, md.sector_mix, by_sector)
    X = np.empty((C, 3))
    lever_stocks(md, st.stocks, st.anchors_present, X)
    P = np.empty((C, S))
    stay_out = np.empty(S)
    entry_probabilities(md, st.N, X, st.constant, P, stay_out)
    p = np.empty(C + 1)
    births = np.empty(C + 1, dtype=np.int64)
    size_classes = np.empty(K, dtype=np.int64)
    for s in range(S):
        for c in range(C):
            p[c] = P[c, s]
        p[C] = stay_out[s]
        multinomial(rng, by_sector[s], p, births)
        for c in range(C):
            if births[c] == 0:
                continue
            multinomial(rng, births[c], md.size_p, size_classes)
            for k in range(K):
                st.n[c, s, k] += size_classes[k]
            st.N[c, s] += births[c]
            rec.births[t, c, s] += births[c]


entry = jit(entry, inline=True)


# ============================================================================ 5. record (§3.8)
def record(md, rec, t, st):
    """§3.8 Observation: the step's counts, stocks, A_eff, spending, allocation and budget (flows are counted in place)."""
    C, S = st.N.shape
    for c in range(C):
        for s in range(S):
            rec.firms[t, c, s] = st.N[c, s]
        for x in range(3):
            rec.stocks[t, c, x] = st.stocks[c, x]
            rec.spend[t, c, x] = st.spend[c, x]
            rec.allocation[t, c, x] = st.allocation[c, x]
        rec.A_eff[t, c] = st.stocks[c, 2] + md.omega * st.anchors_present[c]
        rec.budget[t, c] = st.budget[c]


record = jit(record, inline=True)
