"""A compiled kernel of the ``counts`` dynamics: one whole simulation in one numba call.

The kernel runs the model of docs/ODD.md with ordinary firms kept as counts
``n[c, s, k]`` per city, sector and size class (as :class:`sim.model.firms.FirmCounts`)
and the anchors as individual firms, and writes every record the engines write
(:class:`sim.model.history.StepRecord`). Each phase function below is one paragraph
of the ODD and is named after it; arrays carry the ODD's symbols (N, K, D, A,
α, κ, γ, ρ, μ, η, ω, ...).

Randomness: one :class:`numpy.random.Generator` per simulation, passed into the
kernel (numba's ``binomial``, ``poisson`` and ``random`` reproduce numpy's draw
for draw), over a counter-based Philox bit generator keyed by the run's seed
sequence. Each phase of each step (set-up, exit, relocation, entry) draws from
its own stream: the kernel sets the Philox counter to ``(0, 0, step, phase)``
when the phase begins (:func:`_begin_phase`), exactly the stream of
``Generator(Philox(key, counter=(0, 0, step, phase)))``. So, as with
``ModuModel``'s child seed sequences (which cost 141 seeded generators per
run), two scenarios run with the same seed share their random numbers phase by
phase (common random numbers), and a difference in one phase does not shift the
next phase's draws. Multinomials are sequential conditional binomials (numpy's
own algorithm). A simulation's results depend only on its scenario and seed
sequence (root seed and spawn key), never on the batch, the threads or the
processes that ran it. The streams differ from ``ModuModel``'s, so the two
agree in distribution, not draw by draw.

Entry points:

- :func:`simulate_counts` — one run, returned as the :class:`sim.model.history.History`
  ``ModuModel(scenario, rng=seed).run()`` returns, so every table writer works.
- :func:`simulate_batch` — many runs, returned as arrays per run, step and city
  (no Python object per step), optionally on several threads (the kernel
  releases the GIL).
- :func:`compile_scenario` — the scenario as the arrays the kernel reads.

Compilation happens once per machine (``cache=True``); when the package folder
is read-only numba caches in the user's cache folder, and when that is not
writable either, in a temporary folder (:func:`_jit`).
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, NamedTuple

import numba
import numpy as np

from sim.model.firms import SIZE_CLASSES, largest_remainder, size_class_probabilities
from sim.model.history import History, StepRecord
from sim.model.utility import Coefficients

if TYPE_CHECKING:
    from sim.scenario import Scenario

STRATEGIES = ("fixed", "imitate", "best_response")
"""City strategies, coded by their position (0, 1, 2) in the kernel."""
FIXED, IMITATE, BEST_RESPONSE = 0, 1, 2

BEST_LEVERS_RTOL = 1e-9
"""Gains within this relative distance of the highest count as tied (``sim.model.agents.best_levers``' default)."""

PHASES = ("setup", "events", "exit", "relocation", "entry")
"""Phases with their own random stream, numbered as ``sim.model.PHASES`` (events draw nothing here)."""
SETUP, EXIT, RELOCATION, ENTRY = 0, 2, 3, 4

NONE = -1
"""Integer code of "not set" (an event without that action, no ``births_per_step``)."""


def _jit(function):
    """``numba.njit(cache=True, nogil=True)``, caching wherever a cache can be written.

    Numba caches next to the source, else in the user's cache folder. If
    neither is writable (a read-only install with a read-only home), it
    refuses to cache at all; then the cache goes to a temporary folder
    (``NUMBA_CACHE_DIR`` set by the user always wins).
    """
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        user = os.getuid() if hasattr(os, "getuid") else "user"
        numba.config.CACHE_DIR = os.path.join(tempfile.gettempdir(), f"modu-numba-cache-{user}")
        return numba.njit(cache=True, nogil=True)(function)


# ============================================================================ inputs and records
class CountsModel(NamedTuple):
    """A scenario compiled to the arrays the kernel reads (see :func:`compile_scenario`).

    Shapes: C cities, S sectors, 3 levers (K, D, A), 16 size classes, E events,
    A0 initial anchors. Money in 100 M yuan, stocks in stock units.
    """

    T: int                      # steps
    steps_per_year: int
    # utility (§3.3)
    alpha: float                # α, network effect
    kappa: float                # κ, network seed (firms)
    gamma: float                # γ, congestion
    m: float                    # moving cost (utility)
    beta: np.ndarray            # β_X[s], [3, S]
    W: np.ndarray               # complementarity W[s, s'], [S, S]
    constant: np.ndarray        # ASC + β_T·talent + β_C·capital − β_P·cost when open, [C]
    inv_capacity: np.ndarray    # 1/capacity (0 = no congestion), [C]
    n_places: np.ndarray        # places a city stands for (a pool of several places: > 1), int [C]
    place_w: np.ndarray         # each place's fixed share w_m of its city's counts, [C, max places] (0-padded)
    V0: float                   # outside option's utility (used when has_outside_option)
    has_outside_option: bool
    # demography (§3.2, §3.4)
    mu: float                   # μ, exit rate of a size-1 firm per step
    eta: float                  # η, exit size elasticity
    phi_exit: float             # φ_exit, anchors exit at μ·φ_exit
    rho: float                  # ρ, relocation rate per step
    phi_move: float             # φ_move, anchors reconsider at ρ·φ_move/(1 + A)
    b: float                    # birth rate per step (share of all firms)
    B: int                      # births_per_step, NONE = Poisson(b·N)
    size_p: np.ndarray          # size-class probabilities at birth, [16]
    size: np.ndarray            # size of each class, 2**k, [16]
    sector_mix: np.ndarray      # entrants' sector mix, [S]
    # cities and policy (§3.5, §3.6)
    omega: float                # ω, A_eff = A + ω·anchors present
    delta: np.ndarray           # δ_X per step, [3]
    unit_cost: np.ndarray       # c_X, [3]
    pool: np.ndarray            # bool [C]
    open0: np.ndarray           # bool [C], open at the start
    budget0: np.ndarray         # [C], 100 M yuan per year
    allocation0: np.ndarray     # [C, 3]
    strategy0: np.ndarray       # int [C], FIXED / IMITATE / BEST_RESPONSE
    learning_rate0: np.ndarray  # [C]
    stocks0: np.ndarray         # K, D, A at the start (steady state of the initial policy), [C, 3]
    # initial firms (§3.1)
    N0: np.ndarray              # ordinary (non-anchor) firms per city and sector, int [C, S]
    anchor_city0: np.ndarray    # int [A0]
    anchor_sector0: np.ndarray  # int [A0]
    # events (§3.7), in the order they apply
    ev_step: np.ndarray         # int [E], the step before which the event applies (> T: never)
    ev_city: np.ndarray         # int [E]
    ev_invest: np.ndarray       # [E, 3], one-off spending (0 = none)
    ev_budget: np.ndarray       # [E], NaN = unchanged
    ev_allocation: np.ndarray   # [E, 3], NaN = unchanged
    ev_strategy: np.ndarray     # int [E], NONE = unchanged
    ev_learning_rate: np.ndarray  # [E], NaN = unchanged
    ev_anchor_sector: np.ndarray  # int [E], sector of an added anchor, NONE = no anchor
    ev_open: np.ndarray         # int [E], 1 opens, 0 closes, NONE = unchanged


class Records(NamedTuple):
    """Everything one run records, step 0 being the initial state (as :class:`sim.model.history.StepRecord`)."""

    firms: np.ndarray       # int [T+1, C, S]
    births: np.ndarray      # int [T+1, C, S]
    deaths: np.ndarray      # int [T+1, C, S]
    moves_in: np.ndarray    # int [T+1, C, S]
    moves_out: np.ndarray   # int [T+1, C, S]
    stocks: np.ndarray      # K, D, A [T+1, C, 3]
    A_eff: np.ndarray       # [T+1, C]
    spend: np.ndarray       # [T+1, C, 3], 100 M yuan in the step
    allocation: np.ndarray  # [T+1, C, 3]
    budget: np.ndarray      # [T+1, C], 100 M yuan per year
    flows: np.ndarray       # int [C, C], origin → destination moves over the run


def empty_records(T: int, C: int, S: int) -> Records:
    """Allocate the records of one run of T steps, C cities and S sectors."""
    count = np.zeros((T + 1, C, S), dtype=np.int64)
    return Records(firms=count, births=count.copy(), deaths=count.copy(), moves_in=count.copy(),
                   moves_out=count.copy(), stocks=np.zeros((T + 1, C, 3)), A_eff=np.zeros((T + 1, C)),
                   spend=np.zeros((T + 1, C, 3)), allocation=np.zeros((T + 1, C, 3)), budget=np.zeros((T + 1, C)),
                   flows=np.zeros((C, C), dtype=np.int64))


class _State(NamedTuple):
    """The mutable state of one run (arrays changed in place by the phases)."""

    n: np.ndarray               # ordinary firms n[c, s, k]
    N: np.ndarray               # all firms N[c, s] (ordinary + anchors)
    anchor_city: np.ndarray     # city of each anchor (slots for those added by events)
    anchor_sector: np.ndarray
    anchor_alive: np.ndarray    # bool
    n_anchors: np.ndarray       # [1], anchors created so far (slots used)
    anchors_present: np.ndarray  # [C]
    stocks: np.ndarray          # K, D, A [C, 3]
    budget: np.ndarray          # [C]
    allocation: np.ndarray      # [C, 3]
    strategy: np.ndarray        # [C]
    learning_rate: np.ndarray   # [C]
    pending: np.ndarray         # one-off investment of this step [C, 3]
    spend: np.ndarray           # [C, 3]
    constant: np.ndarray        # city constant now: −∞ for closed cities [C]
    growth: np.ndarray          # last year's growth per city (for imitate) [C]


# ============================================================================ random draws
class Streams(NamedTuple):
    """A run's random streams: a Generator over Philox, and views of the Philox state the kernel rewinds.

    ``counter`` is the Philox counter (4 × uint64, least significant first);
    ``state`` the 64-byte ``philox_state`` struct of numpy as 8 words (word 2
    holds the buffer position, word 7 the cached 32-bit half); ``key`` the
    Philox key (2 × uint64). All are views of memory owned by ``rng``'s bit
    generator, so a batch re-keys one generator per run instead of building one.
    """

    rng: np.random.Generator
    counter: np.ndarray
    state: np.ndarray
    key: np.ndarray


def streams(seed: int | np.random.SeedSequence) -> Streams:
    """The random streams of a run with this seed sequence (Philox keyed by it, as ``np.random.Philox(seed)``)."""
    _check_philox_layout()
    bit_generator = np.random.Philox(seed)
    state = np.ctypeslib.as_array((ctypes.c_uint64 * 8).from_address(bit_generator.ctypes.state_address))
    counter = np.ctypeslib.as_array((ctypes.c_uint64 * 4).from_address(int(state[0])))
    key = np.ctypeslib.as_array((ctypes.c_uint64 * 2).from_address(int(state[1])))
    return Streams(np.random.Generator(bit_generator), counter, state, key)


def philox_keys(seeds: list[np.random.SeedSequence] | list[int]) -> np.ndarray:
    """The Philox key of each seed, ``[run, 2]`` uint64: what ``np.random.Philox(seed)`` is keyed by."""
    keys = np.empty((len(seeds), 2), dtype=np.uint64)
    for i, seed in enumerate(seeds):
        sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        keys[i] = sequence.generate_state(2, np.uint64)
    return keys


@functools.cache
def _check_philox_layout() -> None:
    """Check once that rewinding the counter as :func:`_begin_phase` does gives Philox's public stream.

    Raises:
        RuntimeError: if numpy's ``philox_state`` layout is not the one assumed here.
    """
    bit_generator = np.random.Philox(key=[3, 5])
    state = np.ctypeslib.as_array((ctypes.c_uint64 * 8).from_address(bit_generator.ctypes.state_address))
    counter = np.ctypeslib.as_array((ctypes.c_uint64 * 4).from_address(int(state[0])))
    rng = np.random.Generator(bit_generator)
    rng.random(3)
    rng.integers(0, 2**31, dtype=np.uint32)  # leaves a cached 32-bit half
    getattr(_begin_phase, "py_func", _begin_phase)(counter, state, 7, 2)  # plain Python: no compilation here
    key = np.ctypeslib.as_array((ctypes.c_uint64 * 2).from_address(int(state[1])))
    if not np.array_equal(key, [3, 5]):
        raise RuntimeError(f"numpy {np.__version__}'s Philox state layout differs from sim/kernel.py's assumption")
    expected = np.random.Generator(np.random.Philox(key=[3, 5], counter=[0, 0, 7, 2]))
    if not (np.array_equal(rng.random(6), expected.random(6))
            and rng.integers(0, 2**31, dtype=np.uint32) == expected.integers(0, 2**31, dtype=np.uint32)):
        raise RuntimeError(f"numpy {np.__version__}'s Philox state layout differs from sim/kernel.py's assumption")


@_jit
def _begin_phase(counter, state, step, phase):
    """Point the run's Generator at the stream of this step's phase: Philox counter (0, 0, step, phase).

    The buffered block and the cached 32-bit half are dropped, so the next draw
    starts a fresh block, as a new ``Philox(key, counter=(0, 0, step, phase))`` would.
    """
    counter[0] = 0
    counter[1] = 0
    counter[2] = step
    counter[3] = phase
    state[2] = 4  # buffer_pos = PHILOX_BUFFER_SIZE: the buffer is spent
    state[7] = 0  # has_uint32 = 0


@_jit
def _multinomial(rng, n, p, out):
    """One Multinomial(n, p) draw into ``out``, as sequential conditional binomials (numpy's algorithm)."""
    d = p.shape[0]
    for j in range(d):
        out[j] = 0
    remaining = n
    remaining_p = 1.0
    for j in range(d - 1):
        if remaining <= 0:
            return
        q = min(max(p[j] / remaining_p, 0.0), 1.0) if remaining_p > 0.0 else 1.0
        out[j] = rng.binomial(remaining, q)
        remaining -= out[j]
        remaining_p -= p[j]
    out[d - 1] = remaining


@_jit
def _categorical(rng, p):
    """One draw from the probabilities ``p``: one uniform against their cumulative sum (``firms.draw_categorical``)."""
    u = rng.random()
    cumulative = 0.0
    for j in range(p.shape[0] - 1):
        cumulative += p[j]
        if u < cumulative:
            return j
    return p.shape[0] - 1


# ============================================================================ utility (§3.3)
@_jit
def _log(x):
    """Natural log with log(0) = −∞ (Python's ``math.log`` raises there; the reference runs uncompiled)."""
    if x <= 0.0:
        return -np.inf
    return math.log(x)


@_jit
def _softmax(V, out):
    """Multinomial-logit probabilities softmax(V) into ``out``; alternatives with V = −∞ get 0."""
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


@_jit
def _lever_stocks(md, st, X):
    """K, D, A_eff per city into ``X[c, 3]``; A_eff = A + ω·(anchor firms present)."""
    for c in range(X.shape[0]):
        X[c, 0] = st.stocks[c, 0]
        X[c, 1] = st.stocks[c, 1]
        X[c, 2] = st.stocks[c, 2] + md.omega * st.anchors_present[c]


@_jit
def _fixed_utility(md, st, X, fixed):
    """The terms that do not depend on the chooser's home, ``fixed[c, s]``.

    Σ_X β_X[s]·log(1 + X[c]) + ASC[c] + β_T·talent[c] + β_C·capital[c] − β_P·cost[c] (−∞ when closed).
    """
    C, S = fixed.shape
    for c in range(C):
        for s in range(S):
            lever = 0.0
            for x in range(3):
                lever += math.log1p(X[c, x]) * md.beta[x, s]
            fixed[c, s] = lever + st.constant[c]


@_jit
def _effective_counts(md, N, N_eff, load):
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


@_jit
def _network_term(alpha, mass, out):
    """α·log(N_eff + κ) over the alternatives, ``mass`` = N_eff + κ (ODD §3.3 conventions).

    With α = 0 the term is 0; if every alternative has N_eff + κ = 0 (an empty
    urn) it is 0; otherwise an alternative with N_eff + κ = 0 gets −∞.
    """
    empty = True
    for j in range(mass.shape[0]):
        if mass[j] > 0.0:
            empty = False
    for j in range(mass.shape[0]):
        out[j] = 0.0 if alpha == 0.0 or empty else alpha * _log(mass[j])


@_jit
def _pool_term(md, c, n_eff, load, own, own_load, empty):
    """Network and congestion terms of a pool of places (ODD §3.3): their log-sum over its places.

    log Σ_m exp(α·log(w_m·N_eff + own + κ) − γ·(w_m·load + own_load)), place m holding the fixed
    share w_m of the pool's counts; ``own``/``own_load`` are what a mover adds where it would be;
    ``empty`` (every alternative empty) sets the network term to 0, as for single places.
    """
    top = -np.inf
    for k in range(md.n_places[c]):
        w = md.place_w[c, k]
        net = 0.0 if md.alpha == 0.0 or empty else md.alpha * _log(w * n_eff + own + md.kappa)
        top = max(top, net - md.gamma * (w * load + own_load))
    if not math.isfinite(top):
        return top
    total = 0.0
    for k in range(md.n_places[c]):
        w = md.place_w[c, k]
        net = 0.0 if md.alpha == 0.0 or empty else md.alpha * _log(w * n_eff + own + md.kappa)
        total += math.exp(net - md.gamma * (w * load + own_load) - top)
    return top + math.log(total)


@_jit
def _urn_empty(mass):
    """Whether every alternative has N_eff + κ = 0 (the empty urn of ODD §3.3)."""
    for j in range(mass.shape[0]):
        if mass[j] > 0.0:
            return False
    return True


@_jit
def _entry_probabilities(md, st, P, stay_out):
    """Probability that a potential entrant of sector s picks city c, ``P[c, s]``, and stays out, ``stay_out[s]``.

    Entry utility: the counts as they stand, no moving cost; with an outside
    option V₀ staying out is one more alternative.
    """
    C, S = P.shape
    fixed, N_eff, load = _utility_inputs(md, st)
    mass = np.empty(C)
    net = np.empty(C)
    V = np.empty(C + 1) if md.has_outside_option else np.empty(C)
    p = np.empty(V.shape[0])
    for s in range(S):
        for c in range(C):
            mass[c] = N_eff[c, s] + md.kappa
        _network_term(md.alpha, mass, net)
        empty = _urn_empty(mass)
        for c in range(C):
            if md.n_places[c] > 1:
                V[c] = _pool_term(md, c, N_eff[c, s], load[c], 0.0, 0.0, empty) + fixed[c, s]
            else:
                V[c] = net[c] + fixed[c, s] - md.gamma * load[c]
        if md.has_outside_option:
            V[C] = md.V0
        _softmax(V, p)
        chosen = 0.0
        for c in range(C):
            P[c, s] = p[c]
            chosen += p[c]
        stay_out[s] = min(max(1.0 - chosen, 0.0), 1.0)


@_jit
def _utility_inputs(md, st):
    """The parts of utility every chooser shares: the fixed terms ``[c, s]``, N_eff ``[c, s]`` and the load ``[c]``."""
    C, S = st.N.shape
    X = np.empty((C, 3))
    _lever_stocks(md, st, X)
    fixed = np.empty((C, S))
    _fixed_utility(md, st, X, fixed)
    N_eff = np.empty((C, S))
    load = np.empty(C)
    _effective_counts(md, st.N, N_eff, load)
    return fixed, N_eff, load


@_jit
def _mover_probabilities(md, st, P):
    """Choice probabilities ``P[s, h, c]`` of a reconsidering firm of sector s now in city h.

    A mover counts itself where it would be: at home the counts are as they
    are; in any other city its own sector's N_eff rises by W[s, s] and the load
    by 1/capacity; every city but home costs the moving cost m.
    """
    S, C = P.shape[0], P.shape[1]
    fixed, N_eff, load = _utility_inputs(md, st)
    mass = np.empty(C)
    net = np.empty(C)
    V = np.empty(C)
    pool_home = np.empty(C)  # a pool's terms for a mover at home in it and for one joining it (no urn empty)
    pool_away = np.empty(C)
    for s in range(S):
        for c in range(C):
            if md.n_places[c] > 1:
                pool_home[c] = _pool_term(md, c, N_eff[c, s], load[c], 0.0, 0.0, False)
                pool_away[c] = _pool_term(md, c, N_eff[c, s], load[c], md.W[s, s], md.inv_capacity[c], False)
        for h in range(C):
            for c in range(C):
                away = 0.0 if c == h else 1.0
                mass[c] = N_eff[c, s] + md.W[s, s] * away + md.kappa
            _network_term(md.alpha, mass, net)
            empty = _urn_empty(mass)
            for c in range(C):
                away = 0.0 if c == h else 1.0
                if md.n_places[c] > 1:
                    if empty:
                        agglomeration = _pool_term(md, c, N_eff[c, s], load[c], md.W[s, s] * away,
                                                   md.inv_capacity[c] * away, True)
                    else:
                        agglomeration = pool_away[c] if c != h else pool_home[c]
                    V[c] = agglomeration + fixed[c, s] - md.m * away
                else:
                    V[c] = net[c] + fixed[c, s] - md.gamma * (load[c] + md.inv_capacity[c] * away) - md.m * away
            _softmax(V, P[s, h])


# ============================================================================ phases
@_jit
def _populate(rng, md, st):
    """§3.1 Initialisation: each city's anchors, then its ordinary firms, sizes drawn by class."""
    C, S = md.N0.shape
    for a in range(md.anchor_city0.shape[0]):
        _add_anchor(md, st, md.anchor_city0[a], md.anchor_sector0[a])
    size_classes = np.empty(md.size_p.shape[0], dtype=np.int64)
    for c in range(C):
        for s in range(S):
            _multinomial(rng, md.N0[c, s], md.size_p, size_classes)
            for k in range(size_classes.shape[0]):
                st.n[c, s, k] += size_classes[k]
            st.N[c, s] += md.N0[c, s]


@_jit
def _add_anchor(md, st, city, sector):
    """A new anchor firm (initial, or an event's ``add_anchor``)."""
    a = st.n_anchors[0]
    st.anchor_city[a] = city
    st.anchor_sector[a] = sector
    st.anchor_alive[a] = True
    st.n_anchors[0] = a + 1
    st.anchors_present[city] += 1
    st.N[city, sector] += 1


@_jit
def _close_year(md, rec, t, st):
    """§3.6 Sensing: each city's growth over the year that just ended (for ``imitate``)."""
    C, S = st.N.shape
    ago = t - 1 - md.steps_per_year
    for c in range(C):
        now = 0.0
        year_ago = 0.0
        for s in range(S):
            now += rec.firms[t - 1, c, s]
            year_ago += rec.firms[ago, c, s]
        st.growth[c] = (now - year_ago) / year_ago if year_ago > 0 else 0.0


@_jit
def _best_levers(gain, target):
    """The best-response target into ``target``: 1 on the best lever, split between ties; False = no target.

    No target when every lever gains the same (no lever has an effect, or a
    closed city no firm chooses), so the allocation stays (``sim.model.agents.best_levers``).
    """
    top = gain[0]
    for x in range(1, 3):
        top = max(top, gain[x])
    tied = 0
    for x in range(3):
        if gain[x] >= top - BEST_LEVERS_RTOL * abs(top):
            tied += 1
    if tied == 3:
        return False
    for x in range(3):
        target[x] = 1.0 / tied if gain[x] >= top - BEST_LEVERS_RTOL * abs(top) else 0.0
    return True


@_jit
def _marginal_firm_gain(md, st, gain):
    """Expected extra entrants per step per 100 M yuan on each lever, ``gain[c, lever]``.

    The logit's analytic derivative ∂P[c,s]/∂X[c] = β_X[s]·P[c,s]·(1 − P[c,s])/(1 + X[c]),
    weighted by the expected potential entrants per sector and divided by c_X.
    """
    C, S = st.N.shape
    P = np.empty((C, S))
    stay_out = np.empty(S)
    _entry_probabilities(md, st, P, stay_out)
    X = np.empty((C, 3))
    _lever_stocks(md, st, X)
    total = float(md.B) if md.B != NONE else md.b * st.N.sum()
    for c in range(C):
        for x in range(3):
            per_stock = 0.0
            for s in range(S):
                per_stock += P[c, s] * (1.0 - P[c, s]) * (total * md.sector_mix[s]) * md.beta[x, s]
            gain[c, x] = per_stock / (1.0 + X[c, x]) / md.unit_cost[x]


@_jit
def _adapt_allocations(md, st):
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
            _marginal_firm_gain(md, st, gain)
            break
    target = np.empty(3)
    for c in range(C):
        if st.strategy[c] == FIXED or st.budget[c] <= 0:
            continue
        if st.strategy[c] == IMITATE:
            best = -1
            for j in range(C):
                if not md.pool[j] and st.budget[j] > 0 and (best < 0 or st.growth[j] > st.growth[best]):
                    best = j
            if best < 0:
                continue
            target[:] = year_start[best]
        elif not _best_levers(gain[c], target):
            continue
        lr = st.learning_rate[c]
        for x in range(3):
            st.allocation[c, x] = (1 - lr) * st.allocation[c, x] + lr * target[x]


@_jit
def _apply_events(md, rec, t, st, next_event):
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
            _add_anchor(md, st, c, md.ev_anchor_sector[e])
            rec.births[t, c, md.ev_anchor_sector[e]] += 1  # an added anchor is a birth
        if md.ev_open[e] != NONE:
            st.constant[c] = md.constant[c] if md.ev_open[e] == 1 else -np.inf  # a closed city: utility −∞
        e += 1
    return e


@_jit
def _invest(md, st):
    """§3.5 Policy stocks and spending: spend budget·allocation/steps_per_year plus one-offs; X ← (1 − δ)·X + spend/c."""
    for c in range(st.stocks.shape[0]):
        for x in range(3):
            st.spend[c, x] = st.budget[c] * st.allocation[c, x] / md.steps_per_year + st.pending[c, x]
            st.pending[c, x] = 0.0
            st.stocks[c, x] = (1 - md.delta[x]) * st.stocks[c, x] + st.spend[c, x] / md.unit_cost[x]


@_jit
def _exit(rng, md, rec, t, st):
    """§3.2 Exit: a firm of size class k exits with μ·size^(−η); an anchor with μ·φ_exit."""
    C, S, K = st.n.shape
    p_anchor = md.mu * md.phi_exit
    for a in range(st.n_anchors[0]):
        if st.anchor_alive[a] and rng.random() < p_anchor:
            st.anchor_alive[a] = False
            c, s = st.anchor_city[a], st.anchor_sector[a]
            st.anchors_present[c] -= 1
            st.N[c, s] -= 1
            rec.deaths[t, c, s] += 1
    for k in range(K):
        p = md.mu * md.size[k] ** -md.eta
        if p <= 0.0:
            continue
        for c in range(C):
            for s in range(S):
                if st.n[c, s, k] > 0:
                    dead = rng.binomial(st.n[c, s, k], p)
                    st.n[c, s, k] -= dead
                    st.N[c, s] -= dead
                    rec.deaths[t, c, s] += dead


@_jit
def _relocate(rng, md, rec, t, st):
    """§3.4 Relocation: reconsiderers (ρ; anchors ρ·φ_move/(1 + A)) pick a city by the movers' logit, staying included.

    All deciding firms act against the counts at the start of the phase. A
    move is counted out of its origin and into its destination; a firm that
    reconsidered and stayed is no move.

    Ordinary firms of city h and sector s are drawn together, exactly as
    independent per-firm decisions (and per-class Binomial/Multinomial draws):
    the reconsiderers are Binomial(n_hs, ρ), their choices one
    Multinomial(R, P[s, h]), and the firms that leave for each other city a
    uniform subset of the city's firms of that sector, so their size classes
    are drawn one by one without replacement (:func:`_take_uniform`). Which
    reconsiderers stayed need not be drawn: staying changes nothing.
    """
    C, S, K = st.n.shape
    P = np.empty((S, C, C))
    _mover_probabilities(md, st, P)
    arrived = np.zeros((C, S, K), dtype=np.int64)
    choice = np.empty(C, dtype=np.int64)
    for h in range(C):
        for s in range(S):
            n_hs = 0
            for k in range(K):
                n_hs += st.n[h, s, k]
            if n_hs == 0:
                continue
            reconsider = rng.binomial(n_hs, md.rho)
            if reconsider == 0:
                continue
            _multinomial(rng, reconsider, P[s, h], choice)
            for c in range(C):
                if c != h and choice[c] > 0:
                    n_hs = _take_uniform(rng, st.n[h, s], n_hs, choice[c], arrived[c, s])
                    _count_move(rec, t, h, c, s, choice[c])
    n = st.n
    n += arrived  # the movers arrive after all have chosen (a local name: numba cannot assign to a tuple's field)
    moved = np.zeros(st.n_anchors[0], dtype=np.int64) - 1
    for a in range(st.n_anchors[0]):
        if not st.anchor_alive[a]:
            continue
        h, s = st.anchor_city[a], st.anchor_sector[a]
        if rng.random() < md.rho * md.phi_move / (1.0 + st.stocks[h, 2]):
            c = _categorical(rng, P[s, h])
            if c != h:
                moved[a] = c
                _count_move(rec, t, h, c, s, 1)
    for a in range(moved.shape[0]):  # anchors count in A_eff where they are after the phase
        if moved[a] >= 0:
            st.anchors_present[st.anchor_city[a]] -= 1
            st.anchors_present[moved[a]] += 1
            st.anchor_city[a] = moved[a]
    for c in range(C):
        for s in range(S):
            st.N[c, s] += rec.moves_in[t, c, s] - rec.moves_out[t, c, s]


@_jit
def _take_uniform(rng, pool, total, m, taken):
    """Move a uniform random subset of ``m`` of the ``total`` firms counted by class in ``pool`` into ``taken``.

    One firm at a time without replacement: a uniform position among the firms
    left, its class by the cumulative counts. Returns the firms left.
    """
    for _ in range(m):
        j = min(int(rng.random() * total), total - 1)
        k = 0
        cumulative = pool[0]
        while j >= cumulative:
            k += 1
            cumulative += pool[k]
        pool[k] -= 1
        taken[k] += 1
        total -= 1
    return total


@_jit
def _count_move(rec, t, origin, destination, s, firms):
    """Growth accounting of ``firms`` moves of sector s from ``origin`` to ``destination``."""
    rec.moves_out[t, origin, s] += firms
    rec.moves_in[t, destination, s] += firms
    rec.flows[origin, destination] += firms


@_jit
def _enter(rng, md, rec, t, st):
    """§3.4 Entry: B or Poisson(b·N_total) potential entrants, sectors by the mix, cities (or staying out) by the logit."""
    C, S, K = st.n.shape
    total = md.B if md.B != NONE else rng.poisson(md.b * st.N.sum())
    by_sector = np.empty(S, dtype=np.int64)
    _multinomial(rng, total, md.sector_mix, by_sector)
    P = np.empty((C, S))
    stay_out = np.empty(S)
    _entry_probabilities(md, st, P, stay_out)
    p = np.empty(C + 1)
    births = np.empty(C + 1, dtype=np.int64)
    size_classes = np.empty(K, dtype=np.int64)
    for s in range(S):
        for c in range(C):
            p[c] = P[c, s]
        p[C] = stay_out[s]
        _multinomial(rng, by_sector[s], p, births)
        for c in range(C):
            if births[c] == 0:
                continue
            _multinomial(rng, births[c], md.size_p, size_classes)
            for k in range(K):
                st.n[c, s, k] += size_classes[k]
            st.N[c, s] += births[c]
            rec.births[t, c, s] += births[c]


@_jit
def _record(md, rec, t, st):
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


# ============================================================================ one simulation
@_jit
def _new_state(md):
    """The state before initialisation: no firms, the initial policy and stocks."""
    C, S = md.N0.shape
    n_anchor_slots = md.anchor_city0.shape[0]
    for e in range(md.ev_anchor_sector.shape[0]):
        if md.ev_anchor_sector[e] != NONE:
            n_anchor_slots += 1
    constant = md.constant.copy()
    for c in range(C):
        if not md.open0[c]:
            constant[c] = -np.inf
    return _State(n=np.zeros((C, S, md.size_p.shape[0]), dtype=np.int64), N=np.zeros((C, S), dtype=np.int64),
                  anchor_city=np.zeros(n_anchor_slots, dtype=np.int64),
                  anchor_sector=np.zeros(n_anchor_slots, dtype=np.int64),
                  anchor_alive=np.zeros(n_anchor_slots, dtype=np.bool_), n_anchors=np.zeros(1, dtype=np.int64),
                  anchors_present=np.zeros(C, dtype=np.int64), stocks=md.stocks0.copy(), budget=md.budget0.copy(),
                  allocation=md.allocation0.copy(), strategy=md.strategy0.copy(),
                  learning_rate=md.learning_rate0.copy(), pending=np.zeros((C, 3)), spend=np.zeros((C, 3)),
                  constant=constant, growth=np.zeros(C))


@_jit
def run_kernel(rng, counter, state, md, rec):
    """Run one simulation of the compiled scenario ``md`` with generator ``rng``, writing into ``rec``.

    Docs/ODD.md §1.3: each step, cities adapt (yearly) and spend, events apply,
    firms exit, reconsider and enter, and the step is recorded.

    Args:
        rng: the run's ``numpy.random.Generator`` over Philox (every draw comes from it).
        counter: its Philox counter, rewound at each phase (:class:`Streams`).
        state: its Philox state words (:class:`Streams`).
        md: the compiled scenario (:func:`compile_scenario`).
        rec: records of ``md.T`` steps (:func:`empty_records`); overwritten.
    """
    rec.births[:] = 0
    rec.deaths[:] = 0
    rec.moves_in[:] = 0
    rec.moves_out[:] = 0
    rec.flows[:] = 0
    st = _new_state(md)
    _begin_phase(counter, state, 0, SETUP)
    _populate(rng, md, st)
    _record(md, rec, 0, st)
    next_event = 0
    for t in range(1, md.T + 1):
        # 1. Cities spend: yearly adaptation, then events, then spending (§3.5–3.7)
        if (t - 1) % md.steps_per_year == 0 and t > 1:
            _close_year(md, rec, t, st)
            _adapt_allocations(md, st)
        next_event = _apply_events(md, rec, t, st, next_event)
        _invest(md, st)
        # 2. Exit (§3.2)
        _begin_phase(counter, state, t, EXIT)
        _exit(rng, md, rec, t, st)
        # 3. Relocation (§3.4)
        if md.rho > 0:
            _begin_phase(counter, state, t, RELOCATION)
            _relocate(rng, md, rec, t, st)
        # 4. Entry (§3.4)
        _begin_phase(counter, state, t, ENTRY)
        _enter(rng, md, rec, t, st)
        # 5. Record (§3.8)
        _record(md, rec, t, st)


@_jit
def _run_batch(rng, counter, state, key, keys, per_phase, md, rec, lo, hi, firms, births, deaths, moves_in, moves_out):
    """Run simulations ``lo`` to ``hi - 1``, run i keyed by ``keys[i]``; their per-step, per-city totals go in row i.

    One generator serves the whole batch: before each run its Philox key is set
    to the run's and its counter to 0, so run i draws exactly what a fresh
    ``Generator(Philox(seeds[i]))`` would. With ``per_phase`` False the phases
    are not rewound: each run draws from its one stream in order.
    """
    phase_counter = counter if per_phase else np.zeros(4, dtype=np.uint64)
    phase_state = state if per_phase else np.zeros(8, dtype=np.uint64)
    for i in range(lo, hi):
        key[0] = keys[i, 0]
        key[1] = keys[i, 1]
        _begin_phase(counter, state, 0, SETUP)  # a fresh stream under the new key
        run_kernel(rng, phase_counter, phase_state, md, rec)
        _write_totals(rec, i, firms, births, deaths, moves_in, moves_out)


@_jit
def _write_totals(rec, i, firms, births, deaths, moves_in, moves_out):
    """Sum one run's records over sectors into row ``i`` of the batch arrays."""
    T1, C, S = rec.firms.shape
    for t in range(T1):
        for c in range(C):
            f = b = d = mi = mo = 0
            for s in range(S):
                f += rec.firms[t, c, s]
                b += rec.births[t, c, s]
                d += rec.deaths[t, c, s]
                mi += rec.moves_in[t, c, s]
                mo += rec.moves_out[t, c, s]
            firms[i, t, c] = f
            births[i, t, c] = b
            deaths[i, t, c] = d
            moves_in[i, t, c] = mi
            moves_out[i, t, c] = mo


# ============================================================================ Python side
def _event_steps(years: list[float], start: float, steps_per_year: int, T: int) -> np.ndarray:
    """The step each (time-sorted) event applies before: the first step with ``year <= step_start + 1e-9``."""
    steps = np.full(len(years), T + 1, dtype=np.int64)
    t = 1
    for e, year in enumerate(years):
        while t <= T and not year <= start + (t - 1) / steps_per_year + 1e-9:
            t += 1
        steps[e] = t
    return steps


def compile_scenario(scenario: Scenario) -> CountsModel:
    """The scenario as the kernel's arrays (the same rules as ``ModuModel``'s set-up).

    Args:
        scenario: a validated scenario; its ``engine`` is ignored (the kernel is the counts dynamics).
    """
    p = scenario.parameters
    sectors = scenario.sector_names
    C, S = len(scenario.cities), len(sectors)
    spy, T = scenario.time.steps_per_year, scenario.time.steps
    coef = Coefficients.from_scenario(scenario)
    n_places = np.array([c.places for c in scenario.cities], dtype=np.int64)
    place_w = np.zeros((C, int(n_places.max())))
    for c, city in enumerate(scenario.cities):
        place_w[c, : city.places] = city.place_shares()
    delta = 1 - (1 - np.array(p.depreciation.as_tuple())) ** (1 / spy)
    unit_cost = np.array(p.unit_cost.as_tuple(), dtype=float)
    budget = np.zeros(C)
    allocation = np.full((C, 3), 1 / 3)
    strategy = np.zeros(C, dtype=np.int64)
    learning_rate = np.full(C, 0.2)  # Policy().learning_rate, the default for cities without a policy
    N0 = np.zeros((C, S), dtype=np.int64)
    anchor_city, anchor_sector = [], []
    for c, city in enumerate(scenario.cities):
        if city.policy is not None:
            budget[c] = city.policy.budget
            allocation[c] = city.policy.allocation.as_tuple()
            strategy[c] = STRATEGIES.index(city.policy.strategy)
            learning_rate[c] = city.policy.learning_rate
        mix = city.sector_mix or scenario.sectors
        N0[c] = largest_remainder(city.firms - len(city.anchors), np.array([mix.get(s, 0.0) for s in sectors]))
        for anchor in city.anchors:
            anchor_city.append(c)
            anchor_sector.append(sectors.index(anchor.sector))
    # Assumption (ODD §3.1): stocks start at the initial policy's steady state X* = spend/(δ·c).
    stocks0 = budget[:, None] * allocation / spy / np.where(delta > 0, delta, np.inf) / unit_cost
    events = sorted(scenario.events, key=lambda e: e.year)
    E = len(events)
    names = [c.name for c in scenario.cities]
    ev_allocation = np.full((E, 3), np.nan)
    ev_invest = np.zeros((E, 3))
    for e, event in enumerate(events):
        if event.invest is not None:
            ev_invest[e] = event.invest.as_tuple()
        if event.allocation is not None:
            ev_allocation[e] = event.allocation.as_tuple()
    return CountsModel(
        T=int(T), steps_per_year=int(spy),
        alpha=float(coef.alpha), kappa=float(coef.kappa), gamma=float(coef.gamma), m=float(coef.moving_cost),
        beta=np.ascontiguousarray(coef.beta, dtype=float), W=np.ascontiguousarray(coef.W, dtype=float),
        constant=np.asarray(coef.city_constant, dtype=float), inv_capacity=np.asarray(coef.inv_capacity, dtype=float),
        n_places=n_places, place_w=place_w,
        V0=float(p.outside_option) if p.outside_option is not None else 0.0, has_outside_option=p.outside_option is not None,
        mu=float(p.exit_rate), eta=float(p.exit_size_elasticity), phi_exit=float(p.anchor_exit_factor),
        rho=float(p.relocation_rate), phi_move=float(p.anchor_relocation_factor), b=float(p.birth_rate),
        B=int(p.births_per_step) if p.births_per_step is not None else NONE,
        size_p=size_class_probabilities(p.size_tail), size=np.ldexp(1.0, np.arange(SIZE_CLASSES)),
        sector_mix=np.array(list(scenario.sectors.values()), dtype=float),
        omega=float(p.anchor_weight), delta=delta, unit_cost=unit_cost,
        pool=np.array([c.pool for c in scenario.cities], dtype=np.bool_),
        open0=np.array([c.open for c in scenario.cities], dtype=np.bool_),
        budget0=budget, allocation0=allocation, strategy0=strategy, learning_rate0=learning_rate, stocks0=stocks0,
        N0=N0, anchor_city0=np.array(anchor_city, dtype=np.int64), anchor_sector0=np.array(anchor_sector, dtype=np.int64),
        ev_step=_event_steps([e.year for e in events], scenario.time.start, spy, T),
        ev_city=np.array([names.index(e.city) for e in events], dtype=np.int64),
        ev_invest=ev_invest,
        ev_budget=np.array([np.nan if e.budget is None else e.budget for e in events], dtype=float),
        ev_allocation=ev_allocation,
        ev_strategy=np.array([NONE if e.strategy is None else STRATEGIES.index(e.strategy) for e in events],
                             dtype=np.int64),
        ev_learning_rate=np.array([np.nan if e.learning_rate is None else e.learning_rate for e in events], dtype=float),
        ev_anchor_sector=np.array([NONE if e.add_anchor is None else sectors.index(e.add_anchor.sector) for e in events],
                                  dtype=np.int64),
        ev_open=np.array([NONE if e.open is None else int(e.open) for e in events], dtype=np.int64),
    )


def run_records(scenario: Scenario | CountsModel, seed: int | np.random.SeedSequence) -> Records:
    """One run's raw records (arrays over steps), for checks and custom summaries."""
    md = scenario if isinstance(scenario, CountsModel) else compile_scenario(scenario)
    rec = empty_records(md.T, *md.N0.shape)
    rng, counter, state, _ = streams(seed)
    run_kernel(rng, counter, state, md, rec)
    return rec


def history_from_records(scenario: Scenario, rec: Records) -> History:
    """The :class:`sim.model.history.History` of a run's records (what ``ModuModel.run()`` returns)."""
    spy, start = scenario.time.steps_per_year, scenario.time.start
    history = History(cities=[c.name for c in scenario.cities], sectors=scenario.sector_names,
                      pool=np.array([c.pool for c in scenario.cities]), flows=rec.flows.copy())
    for t in range(rec.firms.shape[0]):
        history.steps.append(StepRecord(
            step=t, year=start + t / spy, firms=rec.firms[t], births=rec.births[t], deaths=rec.deaths[t],
            moves_in=rec.moves_in[t], moves_out=rec.moves_out[t], stocks=rec.stocks[t], A_eff=rec.A_eff[t],
            spend=rec.spend[t], allocation=rec.allocation[t], budget=rec.budget[t]))
    return history


def simulate_counts(scenario: Scenario, seed: int | np.random.SeedSequence) -> History:
    """Run one simulation with the compiled kernel; returns the same History as ``ModuModel(scenario, rng=seed).run()``.

    Args:
        scenario: a validated scenario (run with the counts dynamics whatever its ``engine``).
        seed: the run's seed sequence (e.g. ``sim.experiments.ensemble.replication_seed(seed, r)``) or an integer;
            every draw comes from the Philox streams it keys (:func:`streams`).
    """
    return history_from_records(scenario, run_records(scenario, seed))


class Batch(NamedTuple):
    """Per-run, per-step, per-city totals over sectors, ``[run, step, city]`` (step 0 the initial state)."""

    firms: np.ndarray
    births: np.ndarray
    deaths: np.ndarray
    moves_in: np.ndarray
    moves_out: np.ndarray

    @property
    def final(self) -> np.ndarray:
        """Firms per city at the end of each run, ``[run, city]``."""
        return self.firms[:, -1]


def simulate_batch(scenario: Scenario | CountsModel, seeds: list[np.random.SeedSequence] | list[int],
                   threads: int = 1, per_phase_streams: bool = True) -> Batch:
    """Run one simulation per seed; returns arrays only (no Python object per step), for calibration and sweeps.

    Run i draws from the Philox streams keyed by ``seeds[i]`` alone (:func:`streams`), so its
    results are those of :func:`simulate_counts` with that seed, whatever the batch size or
    the number of threads. The whole batch is one compiled call per thread (no Python per run).

    Args:
        scenario: a validated scenario, or one already compiled with :func:`compile_scenario`.
        seeds: one seed sequence (or integer seed) per run.
        threads: threads to run on (the kernel releases the GIL); each runs a contiguous share of the seeds.
        per_phase_streams: False draws each run from its one Philox stream in order, without the per-phase
            rewinds (no common random numbers phase by phase), to measure what they gain.
    """
    md = scenario if isinstance(scenario, CountsModel) else compile_scenario(scenario)
    C, S = md.N0.shape
    n = len(seeds)
    keys = philox_keys(seeds)
    out = Batch(*(np.zeros((n, md.T + 1, C), dtype=np.int64) for _ in Batch._fields))

    def work(lo: int, hi: int) -> None:
        _run_batch(*streams(0), keys, per_phase_streams, md, empty_records(md.T, C, S), lo, hi, *out)

    bounds = np.linspace(0, n, max(1, min(threads, n)) + 1).astype(int)
    if len(bounds) <= 2:
        work(0, n)
        return out
    with ThreadPoolExecutor(len(bounds) - 1) as executor:
        for done in [executor.submit(work, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]:
            done.result()  # re-raises a worker's exception
    return out


__all__ = ["Batch", "CountsModel", "Records", "Streams", "compile_scenario", "empty_records", "history_from_records",
           "philox_keys", "run_kernel", "run_records", "simulate_batch", "simulate_counts", "streams"]
