"""A scenario as the arrays the kernel reads, the records it writes and the state it changes.

:func:`compile_scenario` turns a validated scenario into a :class:`CountsModel`
(the rules' coefficients, the initial state and the events, as numbers);
:class:`Records` holds what a run records (as :class:`sim.model.history.StepRecord`);
:class:`State` is a run's state, changed in place by the phases
(:mod:`sim.model.kernel.phases`). Arrays carry the symbols of docs/ODD.md
(N, K, D, A, α, κ, γ, ρ, μ, η, ω, ...).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from sim.model.firms import SIZE_CLASSES, largest_remainder, size_class_probabilities
from sim.model.kernel.cache import jit
from sim.model.parameters import DEFAULT_LEARNING_RATE, LEVERS

if TYPE_CHECKING:
    from sim.scenario import Scenario

STRATEGIES = ("fixed", "imitate", "best_response")
"""City strategies, coded by their position (0, 1, 2) in the kernel."""
FIXED, IMITATE, BEST_RESPONSE = 0, 1, 2

NONE = -1
"""Integer code of "not set" (an event without that action, no ``births_per_step``)."""

ANY_CITY = "*"
"""In :data:`PATCHABLE`'s paths, any city (by name, or every city)."""

EVENT_TOLERANCE = 1e-9
"""Years: an event applies before the first step starting at or after its date, within this (docs/ODD.md §3.7)."""


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


class State(NamedTuple):
    """The mutable state of one run (arrays changed in place by the phases).

    The anchors are individual firms in slots, the initial ones first, then those
    events add, in the order they are added (a slot's index is the anchor's id).
    """

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


def new_state(md):
    """The state before initialisation: no firms, the initial policy and stocks, closed cities' constant −∞."""
    C, S = md.N0.shape
    n_anchor_slots = md.anchor_city0.shape[0]
    for e in range(md.ev_anchor_sector.shape[0]):
        if md.ev_anchor_sector[e] != NONE:
            n_anchor_slots += 1
    constant = md.constant.copy()
    for c in range(C):
        if not md.open0[c]:
            constant[c] = -np.inf
    return State(n=np.zeros((C, S, md.size_p.shape[0]), dtype=np.int64), N=np.zeros((C, S), dtype=np.int64),
                 anchor_city=np.zeros(n_anchor_slots, dtype=np.int64),
                 anchor_sector=np.zeros(n_anchor_slots, dtype=np.int64),
                 anchor_alive=np.zeros(n_anchor_slots, dtype=np.bool_), n_anchors=np.zeros(1, dtype=np.int64),
                 anchors_present=np.zeros(C, dtype=np.int64), stocks=md.stocks0.copy(), budget=md.budget0.copy(),
                 allocation=md.allocation0.copy(), strategy=md.strategy0.copy(),
                 learning_rate=md.learning_rate0.copy(), pending=np.zeros((C, 3)), spend=np.zeros((C, 3)),
                 constant=constant, growth=np.zeros(C))


new_state = jit(new_state)


def event_steps(years: list[float], start: float, steps_per_year: int, T: int) -> np.ndarray:
    """The step each (time-sorted) event applies before: the first step with ``year <= step_start + 1e-9``."""
    steps = np.full(len(years), T + 1, dtype=np.int64)
    t = 1
    for e, year in enumerate(years):
        while t <= T and not year <= start + (t - 1) / steps_per_year + EVENT_TOLERANCE:
            t += 1
        steps[e] = t
    return steps


def _scalars(scenario: Scenario) -> dict:
    """The behavioural scalars of §3.2–3.6 (α, κ, γ, m, V₀, μ, η, φ_exit, ρ, φ_move, b, ω)."""
    p = scenario.parameters
    return dict(alpha=float(p.network_effect), kappa=float(p.network_seed), gamma=float(p.congestion),
                m=float(p.moving_cost),
                V0=float(p.outside_option) if p.outside_option is not None else 0.0,
                has_outside_option=p.outside_option is not None,
                mu=float(p.exit_rate), eta=float(p.exit_size_elasticity), phi_exit=float(p.anchor_exit_factor),
                rho=float(p.relocation_rate), phi_move=float(p.anchor_relocation_factor), b=float(p.birth_rate),
                omega=float(p.anchor_weight))


def _constant(scenario: Scenario) -> dict:
    """Each city's constant: ASC + β_T·talent + β_C·capital − β_P·cost (§3.3)."""
    p = scenario.parameters
    return dict(constant=np.array([c.attractiveness + p.talent_effect * c.talent + p.capital_effect * c.capital
                                   - p.cost_effect * c.cost for c in scenario.cities], dtype=float))


def _capacity(scenario: Scenario) -> dict:
    """1/capacity of each city (0: no congestion)."""
    return dict(inv_capacity=np.array([0.0 if c.capacity is None else 1.0 / c.capacity for c in scenario.cities],
                                      dtype=float))


def _policy(scenario: Scenario) -> dict:
    """Each city's initial budget, allocation, strategy and learning rate, and the stocks they sustain (§3.5)."""
    p = scenario.parameters
    C, spy = len(scenario.cities), scenario.time.steps_per_year
    delta = 1 - (1 - np.array(p.depreciation.as_tuple())) ** (1 / spy)
    unit_cost = np.array(p.unit_cost.as_tuple(), dtype=float)
    budget = np.zeros(C)
    allocation = np.full((C, 3), 1 / 3)
    strategy = np.zeros(C, dtype=np.int64)
    learning_rate = np.full(C, DEFAULT_LEARNING_RATE)  # a city without a policy: events may give it a strategy
    for c, city in enumerate(scenario.cities):
        if city.policy is not None:
            budget[c] = city.policy.budget
            allocation[c] = city.policy.allocation.as_tuple()
            strategy[c] = STRATEGIES.index(city.policy.strategy)
            learning_rate[c] = city.policy.learning_rate
    # Assumption (ODD §3.1): stocks start at the initial policy's steady state X* = spend/(δ·c).
    stocks0 = budget[:, None] * allocation / spy / np.where(delta > 0, delta, np.inf) / unit_cost
    return dict(delta=delta, unit_cost=unit_cost, budget0=budget, allocation0=allocation, strategy0=strategy,
                learning_rate0=learning_rate, stocks0=stocks0)


PATCH_GROUPS = {"scalars": _scalars, "constant": _constant, "capacity": _capacity, "policy": _policy}
"""Parts of a compiled scenario that :func:`recompile` can rebuild alone, each from the fields :data:`PATCHABLE` names."""

PATCHABLE: dict[tuple[str, ...], str] = {
    **{("parameters", name): "scalars" for name in (
        "network_effect", "network_seed", "congestion", "moving_cost", "outside_option", "exit_rate",
        "exit_size_elasticity", "anchor_exit_factor", "relocation_rate", "anchor_relocation_factor", "birth_rate",
        "anchor_weight")},
    **{("parameters", name): "constant" for name in ("talent_effect", "capital_effect", "cost_effect")},
    **{("cities", ANY_CITY, name): "constant" for name in ("attractiveness", "talent", "capital", "cost")},
    ("cities", ANY_CITY, "capacity"): "capacity",
    **{("cities", ANY_CITY, "policy", name): "policy" for name in ("budget", "learning_rate")},
}
"""Scenario fields (dotted-path tokens; ``ANY_CITY`` matches a city's name or ``*``) that change numbers only:
a variant differing in these is its base's compiled model with the named :data:`PATCH_GROUPS` rebuilt.
Each is a float whose validity is an interval, whatever the other fields hold."""


def patch_group(tokens: tuple[str, ...]) -> str | None:
    """The :data:`PATCH_GROUPS` entry a field's path rebuilds, or None if changing it needs a full compile."""
    key = ("cities", ANY_CITY, *tokens[2:]) if len(tokens) > 2 and tokens[0] == "cities" else tokens
    return PATCHABLE.get(key)


def recompile(md: CountsModel, scenario: Scenario, groups: Iterable[str]) -> CountsModel:
    """``md`` with the named :data:`PATCH_GROUPS` rebuilt from ``scenario`` (a variant of md's scenario).

    Equal, array for array, to ``compile_scenario(scenario)`` when ``scenario`` differs from the one ``md`` was
    compiled from only in fields of those groups (the same functions compute them): a sweep's or a search's
    points are patched into one compiled model without deriving, validating and compiling a scenario each.
    """
    fields: dict = {}
    for group in groups:
        fields.update(PATCH_GROUPS[group](scenario))
    return md._replace(**fields)


def compile_scenario(scenario: Scenario) -> CountsModel:
    """The scenario as the kernel's arrays: the rules' coefficients, the initial state (§3.1) and the events.

    Args:
        scenario: a validated scenario; its ``engine`` is ignored (both engines read these arrays).
    """
    p = scenario.parameters
    sectors = scenario.sector_names
    cities = scenario.cities
    C, S = len(cities), len(sectors)
    spy, T = scenario.time.steps_per_year, scenario.time.steps
    beta = np.array([[p.lever_effects.get(lever, {}).get(s, 0.0) for s in sectors] for lever in LEVERS])
    n_places = np.array([c.places for c in cities], dtype=np.int64)
    place_w = np.zeros((C, int(n_places.max())))
    for c, city in enumerate(cities):
        place_w[c, : city.places] = city.place_shares()
    N0 = np.zeros((C, S), dtype=np.int64)
    anchor_city, anchor_sector = [], []
    for c, city in enumerate(cities):
        mix = city.sector_mix or scenario.sectors
        N0[c] = largest_remainder(city.firms - len(city.anchors), np.array([mix.get(s, 0.0) for s in sectors]))
        for anchor in city.anchors:
            anchor_city.append(c)
            anchor_sector.append(sectors.index(anchor.sector))
    events = sorted(scenario.events, key=lambda e: e.year)
    E = len(events)
    names = [c.name for c in cities]
    ev_allocation = np.full((E, 3), np.nan)
    ev_invest = np.zeros((E, 3))
    for e, event in enumerate(events):
        if event.invest is not None:
            ev_invest[e] = event.invest.as_tuple()
        if event.allocation is not None:
            ev_allocation[e] = event.allocation.as_tuple()
    return CountsModel(
        T=int(T), steps_per_year=int(spy),
        beta=np.ascontiguousarray(beta, dtype=float),
        W=np.ascontiguousarray(scenario.complementarity_matrix(), dtype=float),
        n_places=n_places, place_w=place_w,
        B=int(p.births_per_step) if p.births_per_step is not None else NONE,
        size_p=size_class_probabilities(p.size_tail), size=np.ldexp(1.0, np.arange(SIZE_CLASSES)),
        sector_mix=np.array(list(scenario.sectors.values()), dtype=float),
        pool=np.array([c.pool for c in cities], dtype=np.bool_),
        open0=np.array([c.open for c in cities], dtype=np.bool_),
        N0=N0, anchor_city0=np.array(anchor_city, dtype=np.int64), anchor_sector0=np.array(anchor_sector, dtype=np.int64),
        ev_step=event_steps([e.year for e in events], scenario.time.start, spy, T),
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
        **{name: value for build in PATCH_GROUPS.values() for name, value in build(scenario).items()},
    )
