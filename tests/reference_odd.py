"""An independent reference model of Modu, written from docs/ODD.md alone.

It shares no code with ``sim/model/``: only the validated scenario (``sim.scenario``)
and numpy's random draws. Firms are ``mesa.Agent`` objects that each draw their own
exit, reconsideration and Gumbel noise one at a time; utilities are computed city by
city in plain Python from the formulas of ODD §3.3; stocks, strategies and events follow
§3.5–§3.7. ``tests/test_reference_odd.py`` cross-checks both engines of
``sim.model.ModuModel`` against it in distribution.

Section references (§) are to docs/ODD.md.
"""

from __future__ import annotations

import math

import mesa
import numpy as np

LEVERS = ("compute", "data", "anchor")          # §1.2: stocks K, D, A
DEFAULT_LEARNING_RATE = 0.2                     # §3.6: a city without a policy
EVENT_TOLERANCE = 1e-9                          # §3.7: years
TIE_TOLERANCE = 1e-9                            # §3.6: relative
SIZE_CLASSES = 16                               # §3.2: sizes 2**0 .. 2**15


class Firm(mesa.Agent):
    """One firm (§1.2): city, sector, size, birth step and whether it is an anchor."""

    def __init__(self, model: OddModel, city: int, sector: int, anchor: bool):
        super().__init__(model)
        self.city, self.sector, self.anchor, self.born = city, sector, anchor, model.steps
        classes = model.size_probabilities
        self.size = 2.0 ** int(model.random_gen.choice(SIZE_CLASSES, p=classes))


class OddCity:
    """A city's endowments, policy and stocks (§1.2)."""

    def __init__(self, spec, model: OddModel):
        self.name, self.pool, self.open = spec.name, spec.pool, spec.open
        self.firms_at_start, self.anchors = spec.firms, spec.anchors
        self.mix = dict(spec.sector_mix or model.spec.sectors)
        p = model.params
        self.constant = spec.attractiveness + p.talent_effect * spec.talent + p.capital_effect * spec.capital \
            - p.cost_effect * spec.cost
        self.capacity = spec.capacity
        # §3.3: a pool of several places; place m holds the share m^-exponent / Σ of its counts
        raw = [m ** -spec.places_exponent for m in range(spec.places_from, spec.places_from + spec.places)]
        self.shares = [r / sum(raw) for r in raw]
        policy = spec.policy
        self.budget = policy.budget if policy else 0.0
        self.allocation = list(policy.allocation.as_tuple()) if policy else [1 / 3] * 3
        self.strategy = policy.strategy if policy else "fixed"
        self.learning_rate = policy.learning_rate if policy else DEFAULT_LEARNING_RATE
        self.pending = [0.0, 0.0, 0.0]
        self.spend = [0.0, 0.0, 0.0]
        # §3.1: the steady state of the initial policy, X* = spend per step / (δ_X·c_X), 0 where δ_X = 0
        self.stocks = [self.budget * a / model.spy / (d * c) if d > 0 else 0.0
                       for a, d, c in zip(self.allocation, model.delta, model.unit_cost, strict=True)]


class OddModel(mesa.Model):
    """The model of docs/ODD.md, step by step, with one agent per firm."""

    def __init__(self, scenario, seed: int):
        super().__init__(rng=seed)
        self.random_gen = np.random.default_rng(seed)
        self.spec, self.params = scenario, scenario.parameters
        p = self.params
        self.sectors = list(scenario.sectors)
        self.sector_mix = [scenario.sectors[s] for s in self.sectors]
        self.spy = scenario.time.steps_per_year
        self.start = scenario.time.start
        self.n_steps = (scenario.time.end - scenario.time.start) * self.spy
        # §3.5: per-step depreciation from the annual rate
        self.delta = [1 - (1 - d) ** (1 / self.spy) for d in p.depreciation.as_tuple()]
        self.unit_cost = list(p.unit_cost.as_tuple())
        self.beta = [[p.lever_effects.get(lever, {}).get(s, 0.0) for s in self.sectors] for lever in LEVERS]
        self.W = scenario.complementarity_matrix()
        tail = [2.0 ** (-p.size_tail * k) for k in range(SIZE_CLASSES + 1)]  # P(size ≥ 2**k), Pareto(ζ, 1)
        self.size_probabilities = [tail[k] - tail[k + 1] for k in range(SIZE_CLASSES - 1)] + [tail[SIZE_CLASSES - 1]]
        self.cities = [OddCity(c, self) for c in scenario.cities]
        self.events = sorted(scenario.events, key=lambda e: e.year)   # stable: one date in the order written
        self.history: list[dict] = []
        self.flows = self._no_flows()
        for i, city in enumerate(self.cities):
            for anchor in city.anchors:
                Firm(self, i, self.sectors.index(anchor.sector), anchor=True)
            shares = [city.mix.get(s, 0.0) for s in self.sectors]
            for s, n in enumerate(largest_remainder(city.firms_at_start - len(city.anchors), shares)):
                for _ in range(n):
                    Firm(self, i, s, anchor=False)
        self.firm_set = self.agents_by_type[Firm]
        self.record()

    # ------------------------------------------------------------ state
    def counts(self) -> list[list[int]]:
        """N[c][s], a census of the firm agents."""
        N = [[0] * len(self.sectors) for _ in self.cities]
        for firm in self.agents_by_type[Firm]:
            N[firm.city][firm.sector] += 1
        return N

    def a_eff(self, c: int) -> float:
        """A_eff = A + ω·(anchor firms in c) (§3.3)."""
        anchors = sum(1 for f in self.agents_by_type[Firm] if f.anchor and f.city == c)
        return self.cities[c].stocks[2] + self.params.anchor_weight * anchors

    def _no_flows(self) -> dict[str, np.ndarray]:
        return {k: np.zeros((len(self.cities), len(self.sectors)), dtype=int)
                for k in ("births", "deaths", "moves_in", "moves_out")}

    def record(self) -> None:
        self.history.append({"firms": np.array(self.counts()), **self.flows,
                             "allocation": np.array([c.allocation for c in self.cities]),
                             "stocks": np.array([c.stocks for c in self.cities])})

    # ------------------------------------------------------------ utility (§3.3)
    def alternatives(self) -> list[tuple[int, float]]:
        """Every place a firm can choose: (city, the place's share of the city's counts); a pool has several."""
        return [(c, share) for c, city in enumerate(self.cities) for share in city.shares]

    def utility(self, N: list[list[int]], s: int, c: int, a_eff: list[float], extra: float = 0.0,
                extra_load: float = 0.0, all_masses: list[float] | None = None, share: float = 1.0) -> float:
        """V for a firm of sector s of a place of city c holding ``share`` of its counts; ``extra`` firms of
        sector s are added to the place's N_eff (a mover counting itself)."""
        p, city = self.params, self.cities[c]
        if not city.open:
            return -math.inf
        v = 0.0
        if p.network_effect != 0:
            mass = share * sum(self.W[s][t] * N[c][t] for t in range(len(self.sectors))) + extra + p.network_seed
            if all(m <= 0 for m in all_masses):
                v += 0.0                                     # an empty urn: the term is 0 for the sector
            elif mass <= 0:
                return -math.inf                             # the pure urn never picks an empty city
            else:
                v += p.network_effect * math.log(mass)
        stocks = [city.stocks[0], city.stocks[1], a_eff[c]]
        v += sum(self.beta[x][s] * math.log(1 + stocks[x]) for x in range(3))
        v += city.constant
        if city.capacity is not None:
            v -= p.congestion * (share * sum(N[c]) + extra_load) / city.capacity
        return v

    def entry_values(self, N, a_eff) -> list[list[float]]:
        """V[s][c] for entrants (counts as they stand)."""
        out = []
        for s in range(len(self.sectors)):
            masses = [sum(self.W[s][t] * N[c][t] for t in range(len(self.sectors))) + self.params.network_seed
                      for c in range(len(self.cities))]
            out.append([self.utility(N, s, c, a_eff, all_masses=masses, share=w) for c, w in self.alternatives()])
        return out

    def mover_values(self, N, a_eff, s: int, h: int) -> list[float]:
        """V[c] for a mover of sector s in city h: it counts itself in c ≠ h and pays m there (§3.4)."""
        own = self.W[s][s]
        masses = [sum(self.W[s][t] * N[c][t] for t in range(len(self.sectors))) + (own if c != h else 0.0)
                  + self.params.network_seed for c in range(len(self.cities))]
        return [self.utility(N, s, c, a_eff, extra=own if c != h else 0.0, extra_load=1.0 if c != h else 0.0,
                             all_masses=masses, share=w) - (self.params.moving_cost if c != h else 0.0)
                for c, w in self.alternatives()]

    def gumbel_choice(self, values: list[float]) -> int:
        """The alternative of highest V + ε, ε i.i.d. Gumbel(0, 1)."""
        noisy = [v + self.random_gen.gumbel() if v > -math.inf else -math.inf for v in values]
        return int(np.argmax(noisy))

    # ------------------------------------------------------------ one step (§1.3)
    def step(self) -> None:
        self.flows = self._no_flows()
        step_start = self.start + (self.steps - 1) / self.spy
        if (self.steps - 1) % self.spy == 0 and self.steps > 1:
            self.adapt()
        for event in [e for e in self.events if e.year <= step_start + EVENT_TOLERANCE]:
            self.events.remove(event)
            self.apply(event)
        for city in self.cities:                                          # §3.5
            city.spend = [city.budget * a / self.spy + x for a, x in zip(city.allocation, city.pending, strict=True)]
            city.pending = [0.0, 0.0, 0.0]
            city.stocks = [(1 - d) * x + sp / c for x, d, sp, c in
                           zip(city.stocks, self.delta, city.spend, self.unit_cost, strict=True)]
        self.exit_phase()
        self.relocation_phase()
        self.entry_phase()
        self.record()

    def exit_phase(self) -> None:
        p = self.params
        for firm in list(self.agents_by_type[Firm]):
            prob = p.exit_rate * p.anchor_exit_factor if firm.anchor else p.exit_rate * firm.size ** -p.exit_size_elasticity
            if self.random_gen.random() < prob:
                self.flows["deaths"][firm.city, firm.sector] += 1
                firm.remove()

    def relocation_phase(self) -> None:
        p = self.params
        if p.relocation_rate == 0:
            return
        N = self.counts()
        a_eff = [self.a_eff(c) for c in range(len(self.cities))]
        moves = []
        for firm in list(self.agents_by_type[Firm]):
            prob = p.relocation_rate
            if firm.anchor:
                prob *= p.anchor_relocation_factor / (1 + self.cities[firm.city].stocks[2])
            if self.random_gen.random() < prob:
                dest = self.alternatives()[self.gumbel_choice(self.mover_values(N, a_eff, firm.sector, firm.city))][0]
                if dest != firm.city:
                    moves.append((firm, dest))
        for firm, dest in moves:                       # simultaneous: all against the counts at the phase start
            self.flows["moves_out"][firm.city, firm.sector] += 1
            self.flows["moves_in"][dest, firm.sector] += 1
            firm.city = dest

    def entry_phase(self) -> None:
        p = self.params
        N = self.counts()
        total = p.births_per_step if p.births_per_step is not None else self.random_gen.poisson(
            p.birth_rate * sum(map(sum, N)))
        by_sector = self.random_gen.multinomial(total, self.sector_mix)
        a_eff = [self.a_eff(c) for c in range(len(self.cities))]
        V = self.entry_values(N, a_eff)
        choices = []
        for s, n in enumerate(by_sector):
            values = V[s] + ([p.outside_option] if p.outside_option is not None else [])
            places = self.alternatives()
            for _ in range(n):
                a = self.gumbel_choice(values)
                if a < len(places):
                    choices.append((places[a][0], s))
        for c, s in choices:
            Firm(self, c, s, anchor=False)
            self.flows["births"][c, s] += 1

    # ------------------------------------------------------------ strategies (§3.6) and events (§3.7)
    def adapt(self) -> None:
        spy = self.spy
        now, year_ago = self.history[-1]["firms"].sum(axis=1), self.history[-1 - spy]["firms"].sum(axis=1)
        growth = [(n - a) / a if a > 0 else 0.0 for n, a in zip(now, year_ago, strict=True)]
        allocations = [list(c.allocation) for c in self.cities]
        gains = self.marginal_gains()
        for i, city in enumerate(self.cities):
            if city.strategy == "fixed" or city.budget <= 0:
                continue
            if city.strategy == "imitate":
                candidates = [j for j, c in enumerate(self.cities) if not c.pool and c.budget > 0]
                target = allocations[max(candidates, key=lambda j: growth[j])] if candidates else None
            else:
                top = max(gains[i])
                best = [g >= top - TIE_TOLERANCE * abs(top) for g in gains[i]]
                target = None if all(best) else [b / sum(best) for b in best]
            if target is not None:
                city.allocation = [(1 - city.learning_rate) * a + city.learning_rate * t
                                   for a, t in zip(city.allocation, target, strict=True)]

    def marginal_gains(self) -> list[list[float]]:
        """Expected extra entrants per step per 100 M yuan on each lever, per city (§3.6)."""
        p = self.params
        N = self.counts()
        total = p.births_per_step if p.births_per_step is not None else p.birth_rate * sum(map(sum, N))
        a_eff = [self.a_eff(c) for c in range(len(self.cities))]
        V = self.entry_values(N, a_eff)
        gains = []
        for c, city in enumerate(self.cities):
            stocks = [city.stocks[0], city.stocks[1], a_eff[c]]
            row = []
            for x in range(3):
                g = 0.0
                for s in range(len(self.sectors)):
                    values = V[s] + ([p.outside_option] if p.outside_option is not None else [])
                    top = max(values)
                    weights = [math.exp(v - top) if v > -math.inf else 0.0 for v in values]
                    P = sum(w for w, (d, _) in zip(weights, self.alternatives(), strict=False) if d == c) / sum(weights)
                    g += self.beta[x][s] * total * self.sector_mix[s] * P * (1 - P)
                row.append(g / (1 + stocks[x]) / self.unit_cost[x])
            gains.append(row)
        return gains

    def apply(self, event) -> None:
        i = next(j for j, c in enumerate(self.cities) if c.name == event.city)
        city = self.cities[i]
        if event.invest is not None:
            city.pending = [a + b for a, b in zip(city.pending, event.invest.as_tuple(), strict=True)]
        if event.budget is not None:
            city.budget = event.budget
        if event.allocation is not None:
            city.allocation = list(event.allocation.as_tuple())
        if event.strategy is not None:
            city.strategy = event.strategy
        if event.learning_rate is not None:
            city.learning_rate = event.learning_rate
        if event.add_anchor is not None:
            Firm(self, i, self.sectors.index(event.add_anchor.sector), anchor=True)
            self.flows["births"][i, self.sectors.index(event.add_anchor.sector)] += 1
        if event.open is not None:
            city.open = event.open

    def run(self) -> list[dict]:
        while self.steps < self.n_steps:
            self.step()
        return self.history


def largest_remainder(total: int, shares: list[float]) -> list[int]:
    """Split ``total`` in proportion to ``shares``: floors, then one more to the largest remainders (§3.1)."""
    raw = [total * s / sum(shares) for s in shares]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda k: -(raw[k] - counts[k]))   # stable: ties to the sector listed first
    for k in order[: total - sum(counts)]:
        counts[k] += 1
    return counts
