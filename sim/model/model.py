"""Modu: cities competing to become the "model capital" of the AI industry.

City agents spend annual policy budgets on three levers — compute centres
(stock K), data exchanges (D) and anchor-firm support (A) — while a
population of firms enters, exits and relocates. Firms choose cities by a
multinomial logit whose network term α·log(N_eff + κ) makes the choice a
generalised Pólya urn: with α > 1 one city tips to monopoly, with α = 1
shares are a martingale, with α < 1 they even out; congestion bounds the
returns. See docs/ODD.md for the full description; each phase of
:meth:`ModuModel.step` is one paragraph of its "Process overview".
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np
import pandas as pd

from sim.model.agents import City
from sim.model.firms import (
    FirmCounts,
    Firms,
    draw_categorical,
    draw_exits,
    draw_reconsiderers,
    draw_sizes,
    largest_remainder,
)
from sim.model.history import History, StepRecord
from sim.model.overrides import apply_overrides
from sim.model.parameters import LEVERS
from sim.model.utility import Coefficients, choice_probabilities, entry_utility, marginal_firm_gain, mover_utility

if TYPE_CHECKING:  # the model reads a validated scenario; it does not import the input layer
    from sim.scenario.schema import Scenario

PHASES = ("setup", "events", "exit", "relocation", "entry")
"""The phases that draw random numbers, each from its own stream per step (:meth:`ModuModel.begin_phase`)."""

EVENT_KINDS = ("initial", "birth", "death", "move")
"""Kinds of firm events in the optional per-firm log (codes 0..3)."""


class ModuModel(mesa.Model):
    """Cities and firms over the scenario's span, one step per ``1/steps_per_year`` year.

    Attributes:
        spec: the validated scenario (not ``scenario``: Mesa ≥ 3.5 reserves that name).
        cities: the City agents, in scenario order (``cities[i].index == i``).
        firms: the individual firms (column-wise): all firms with the ``agents``
            engine, only the named anchors with the ``counts`` engine.
        counts: with the ``counts`` engine, the ordinary firms as counts per
            city, sector and size class (None with the ``agents`` engine).
        N: firms per city and sector now, ``[city, sector]``.
        open: whether each city is open to entrants and movers now (events open and close cities);
            ``coef.city_constant`` is −∞ for closed cities.
        history: what has been recorded, step 0 being the initial state.
        datacollector: Mesa's collector of :meth:`History.latest` (firms per city, shares, HHI,
            top-1 share, leader) at the initial state and after each step, for ``mesa.batch_run``.
    """

    def __init__(self, scenario: Scenario, rng: int | np.random.SeedSequence | np.random.Generator | None = None,
                 record_events: bool = True, **overrides: Any):
        """Build the initial state of a scenario.

        Args:
            scenario: a validated scenario (see :func:`sim.scenario.load_scenario`).
            rng: seed, ``SeedSequence`` or generator; every random draw comes from its
                seed sequence (one child stream per step and phase, see :meth:`begin_phase`).
                ``None`` uses the scenario's ``seed``.
            record_events: keep a per-firm event log (births, deaths, moves) so that
                :meth:`follow` can trace one firm; costs memory proportional to events.
            overrides: scenario fields to change before building, by bare parameter name
                (``network_effect=1.2``) or dotted path (``**{"cities.Beijing.policy.budget": 50}``).
                The scenario layer applies them (:func:`sim.scenario.paths.apply_overrides`, through
                :mod:`sim.model.overrides`), so ``mesa.batch_run`` can sweep them.
        """
        if overrides:
            scenario = apply_overrides(scenario, overrides)
        super().__init__(rng=scenario.seed if rng is None else rng)
        self._seed = self.rng.bit_generator.seed_seq
        self.spec = scenario
        self.params = scenario.parameters
        self.sectors = scenario.sector_names
        self.steps_per_year = scenario.time.steps_per_year
        self.n_steps = scenario.time.steps
        self.depreciation_per_step = 1 - (1 - np.array(self.params.depreciation.as_tuple())) ** (1 / self.steps_per_year)
        self.unit_cost = np.array(self.params.unit_cost.as_tuple())
        self.sector_mix = np.array(list(scenario.sectors.values()))
        self.coef = Coefficients.from_scenario(scenario)
        self.open = np.array([c.open for c in scenario.cities], dtype=bool)
        self._constant_when_open = self.coef.city_constant
        self._apply_openness()

        self.cities = [City(self, i, spec) for i, spec in enumerate(scenario.cities)]
        n_city, n_sector = len(self.cities), len(self.sectors)
        self.N = np.zeros((n_city, n_sector), dtype=np.int64)
        self.anchors_present = np.zeros(n_city, dtype=np.int64)
        self.anchor_names: dict[int, str] = {}
        self.engine = scenario.engine
        self.counts = FirmCounts(n_city, n_sector, self.params.size_tail) if self.engine == "counts" else None
        individual = sum(len(c.anchors) if self.counts else c.firms for c in scenario.cities)
        self.firms = Firms(capacity=individual)
        self.record_events = record_events
        self._event_log: list[tuple[int, np.ndarray, int, np.ndarray, np.ndarray]] = []
        self._pending_events = sorted(scenario.events, key=lambda e: e.year)
        self._flows_this_step = self._zero_flows()
        self._last_year_growth = np.zeros(n_city)

        self.begin_phase("setup")
        self._populate()
        self.history = History(cities=[c.name for c in self.cities], sectors=self.sectors,
                               pool=np.array([c.pool for c in scenario.cities]),
                               flows=np.zeros((n_city, n_city), dtype=np.int64))
        self.datacollector = mesa.DataCollector(model_reporters={
            key: functools.partial(_latest, key) for key in self.history.latest_keys()})
        self._record()

    # ------------------------------------------------------------------ set-up
    def _populate(self) -> None:
        """Create each city's initial firms: its anchors, then the rest split by its sector mix."""
        for city, spec in zip(self.cities, self.spec.cities, strict=True):
            mix = spec.sector_mix or self.spec.sectors
            shares = np.array([mix.get(s, 0.0) for s in self.sectors])
            for anchor in spec.anchors:
                self._add_anchor(city.index, anchor.name, anchor.sector, born=0)
            counts = largest_remainder(spec.firms - len(spec.anchors), shares)
            births = np.zeros_like(self.N)
            births[city.index] = counts
            self._add_ordinary(births, kind="initial")
        self._flows_this_step = self._zero_flows()  # the initial state is not a birth

    def _zero_flows(self) -> dict[str, np.ndarray]:
        shape = self.N.shape
        return {kind: np.zeros(shape, dtype=np.int64) for kind in ("births", "deaths", "moves_in", "moves_out")}

    # ------------------------------------------------------------------ time
    @property
    def year(self) -> float:
        """Time now, in fractional years (the scenario's start + steps / steps_per_year)."""
        return self.spec.time.start + self.steps / self.steps_per_year

    # ------------------------------------------------------------------ one step
    def step(self) -> None:
        """Advance one step (docs/ODD.md, Process overview and scheduling)."""
        step_start = self.spec.time.start + (self.steps - 1) / self.steps_per_year
        self._flows_this_step = self._zero_flows()
        if (self.steps - 1) % self.steps_per_year == 0 and self.steps > 1:
            self._close_year()
            self.adapt_allocations()
        self.begin_phase("events")
        self.apply_events(step_start)
        for city in self.cities:
            city.invest()
        self.begin_phase("exit")
        self.exit()
        self.begin_phase("relocation")
        self.relocate()
        self.begin_phase("entry")
        self.enter()
        self._record()
        if self.steps >= self.n_steps:
            self.running = False

    def begin_phase(self, phase: str) -> None:
        """Point ``self.draws`` at the random stream of this step's ``phase``.

        Each (step, phase) draws from its own child of the model's seed sequence
        (spawn key + ``(step, phase index)``), so two scenarios run with the same
        seed use the same random numbers in every step and phase even after
        their states differ (common random numbers), and a difference in one
        phase does not shift the draws of the next.
        """
        key = (*self._seed.spawn_key, self.steps, PHASES.index(phase))
        self.draws = np.random.default_rng(np.random.SeedSequence(self._seed.entropy, spawn_key=key))

    def run(self) -> History:
        """Step to the scenario's end; returns the history."""
        while self.steps < self.n_steps:
            self.step()
        return self.history

    # 1. Cities spend -----------------------------------------------------------
    def adapt_allocations(self) -> None:
        """At the first step of each year after the first, each city's strategy sets its allocation."""
        self._allocations_at_year_start = np.array([c.allocation for c in self.cities])
        for city in self.cities:
            city.adapt_allocation()

    def apply_events(self, step_start: float) -> None:
        """Apply the scenario's events dated at or before the start of this step."""
        while self._pending_events and self._pending_events[0].year <= step_start + 1e-9:
            event = self._pending_events.pop(0)
            city = next(c for c in self.cities if c.name == event.city)
            if event.invest is not None:
                city.pending_investment += np.array(event.invest.as_tuple())
            if event.budget is not None:
                city.budget = event.budget
            if event.allocation is not None:
                city.allocation = np.array(event.allocation.as_tuple())
            if event.strategy is not None:
                city.strategy = event.strategy
            if event.learning_rate is not None:
                city.learning_rate = event.learning_rate
            if event.add_anchor is not None:
                self._add_anchor(city.index, event.add_anchor.name, event.add_anchor.sector, born=self.steps)
            if event.open is not None:
                self.open[city.index] = event.open
                self._apply_openness()

    def _apply_openness(self) -> None:
        """Give closed cities utility −∞ (their alternative-specific constant).

        No entrant or mover chooses a closed city, and its own firms leave when
        they reconsider (staying is not an alternative); its spending, exits and
        anchors are unaffected.
        """
        self.coef = dataclasses.replace(self.coef, city_constant=np.where(self.open, self._constant_when_open, -np.inf))

    def lever_stocks(self) -> np.ndarray:
        """K, D, A_eff per city, ``[city, 3]``; A_eff = A + ω·(anchor firms present)."""
        stocks = np.array([c.stocks for c in self.cities])
        stocks[:, 2] += self.params.anchor_weight * self.anchors_present
        return stocks

    # 2. Exit ------------------------------------------------------------------
    def exit(self) -> None:
        """Each firm exits with probability μ·size^(−η) (anchors μ·φ_exit)."""
        p = self.params
        dead = draw_exits(self.draws, self.firms, p.exit_rate, p.exit_size_elasticity, p.anchor_exit_factor)
        city, sector = self.firms.city[dead], self.firms.sector[dead]
        self._count(self._flows_this_step["deaths"], city, sector)
        self.N -= self._flows_this_step["deaths"]
        self.anchors_present -= np.bincount(city[self.firms.anchor[dead]], minlength=len(self.cities))
        self._log("death", self.firms.id[dead], city, np.full(len(dead), -1))
        self.firms.remove(dead)
        if self.counts is not None:
            deaths = self.counts.draw_exits(self.draws, p.exit_rate, p.exit_size_elasticity)
            self._flows_this_step["deaths"] += deaths
            self.N -= deaths

    # 3. Relocation --------------------------------------------------------------
    def relocate(self) -> None:
        """Firms that reconsider pick the best city, staying included; moving costs m."""
        p = self.params
        if p.relocation_rate == 0:
            return
        n_city = len(self.cities)
        P = choice_probabilities(mover_utility(self.coef, self.N, self.lever_stocks()), axis=-1)  # [s, h, c]
        moves = np.zeros((len(self.sectors), n_city, n_city), dtype=np.int64)                     # [s, h, c]
        if self.counts is not None:
            moves += self.counts.relocate(self.draws, p.relocation_rate, P).transpose(1, 0, 2)
        A = np.array([c.stocks[2] for c in self.cities])
        who = draw_reconsiderers(self.draws, self.firms, p.relocation_rate, p.anchor_relocation_factor, A)
        home = self.firms.city[who].astype(np.int64)
        sector = self.firms.sector[who].astype(np.int64)
        dest = draw_categorical(self.draws, P.reshape(-1, n_city), sector * n_city + home)
        np.add.at(moves, (sector, home, dest), 1)
        moved = dest != home
        who, home, dest = who[moved], home[moved], dest[moved]
        anchor = self.firms.anchor[who]
        self.anchors_present += (np.bincount(dest[anchor], minlength=n_city)
                                 - np.bincount(home[anchor], minlength=n_city))
        self.firms.city[who] = dest
        self._log("move", self.firms.id[who], home, dest)
        # Growth accounting: the diagonal (firms that reconsidered and stayed) is not a move.
        moves[:, np.arange(n_city), np.arange(n_city)] = 0
        self._flows_this_step["moves_out"] += moves.sum(axis=2).T
        self._flows_this_step["moves_in"] += moves.sum(axis=1).T
        self.N += self._flows_this_step["moves_in"] - self._flows_this_step["moves_out"]
        self.history.flows += moves.sum(axis=0)

    # 4. Entry -------------------------------------------------------------------
    def enter(self) -> None:
        """New firms are born and each picks a city by the logit, with no moving cost.

        The number of potential entrants is ``births_per_step`` when set, else
        Poisson(b·N_total); their sectors follow the scenario's mix; each
        sector's potential entrants are one multinomial draw over cities (and,
        with an ``outside_option``, staying out).
        """
        p = self.params
        total = p.births_per_step if p.births_per_step is not None else self.draws.poisson(p.birth_rate * self.N.sum())
        by_sector = self.draws.multinomial(total, self.sector_mix)
        P = self.entry_probabilities()                                   # [c, s]
        stay_out = np.clip(1.0 - P.sum(axis=0), 0.0, 1.0)                # the outside option's share
        births = np.stack([self.draws.multinomial(n, np.append(P[:, s], stay_out[s]))[:-1]
                           for s, n in enumerate(by_sector)], axis=1)
        self._add_ordinary(births, kind="birth")

    # ------------------------------------------------------------------ helpers
    def _add_ordinary(self, births: np.ndarray, kind: str) -> None:
        """Add ``births[c, s]`` ordinary (non-anchor) firms: as individuals, or as counts with the counts engine."""
        if self.counts is not None:
            self.counts.add(self.draws, births)
            self.N += births
            self._flows_this_step["births"] += births
            return
        n_city, n_sector = births.shape
        city = np.repeat(np.repeat(np.arange(n_city, dtype=np.int16), n_sector), births.ravel())
        sector = np.repeat(np.tile(np.arange(n_sector, dtype=np.int8), n_city), births.ravel())
        self._add_firms(city, sector, born=self.steps, kind=kind)

    def _add_firms(self, city: np.ndarray, sector: np.ndarray, born: int, kind: str, anchor: bool = False) -> np.ndarray:
        size = draw_sizes(self.draws, len(city), self.params.size_tail)
        ids = self.firms.add(city, sector, size, born=born, anchor=anchor)
        added = np.zeros_like(self.N)
        self._count(added, city, sector)
        self.N += added
        self._flows_this_step["births"] += added
        self._log(kind, ids, np.full(len(ids), -1), city)
        return ids

    def _add_anchor(self, city: int, name: str, sector: str, born: int) -> None:
        ids = self._add_firms(np.array([city], dtype=np.int16), np.array([self.sectors.index(sector)], dtype=np.int8),
                              born=born, kind="initial" if born == 0 and self.steps == 0 else "birth", anchor=True)
        self.anchor_names[int(ids[0])] = name
        self.anchors_present[city] += 1

    def _count(self, out: np.ndarray, city: np.ndarray, sector: np.ndarray) -> None:
        """Add the number of firms per (city, sector) to ``out`` (one bincount)."""
        n_sector = out.shape[1]
        out += np.bincount(np.asarray(city, dtype=np.int64) * n_sector + sector, minlength=out.size).reshape(out.shape)

    def _log(self, kind: str, ids: np.ndarray, origin: np.ndarray, destination: np.ndarray) -> None:
        if self.record_events and len(ids):
            self._event_log.append((self.steps, ids.copy(), EVENT_KINDS.index(kind),
                                    np.asarray(origin, dtype=np.int16).copy(),
                                    np.asarray(destination, dtype=np.int16).copy()))

    def _record(self) -> None:
        """Append this step's record to the history, then let the data collector read it."""
        f = self._flows_this_step
        self._latest: dict[str, Any] | None = None
        self.history.steps.append(StepRecord(
            step=self.steps, year=self.year, firms=self.N.copy(),
            births=f["births"], deaths=f["deaths"], moves_in=f["moves_in"], moves_out=f["moves_out"],
            stocks=np.array([c.stocks for c in self.cities]), A_eff=self.lever_stocks()[:, 2],
            spend=np.array([c.spend for c in self.cities]), allocation=np.array([c.allocation for c in self.cities]),
            budget=np.array([c.budget for c in self.cities])))
        self.datacollector.collect(self)

    # ------------------------------------------------------------------ strategies' information
    def _close_year(self) -> None:
        """Remember each city's growth over the year that just ended (for ``imitate``)."""
        firms_now = self.N.sum(axis=1).astype(float)
        year_ago = self.history.steps[-1 - self.steps_per_year].firms.sum(axis=1).astype(float)
        self._last_year_growth = np.divide(firms_now - year_ago, year_ago, out=np.zeros_like(firms_now),
                                           where=year_ago > 0)

    def fastest_growing_allocation(self) -> np.ndarray | None:
        """The allocation, at the start of this year, of last year's fastest-growing non-pool city with a budget."""
        candidates = [c for c in self.cities if not c.spec.pool and c.budget > 0]
        if not candidates:
            return None
        best = max(candidates, key=lambda c: self._last_year_growth[c.index])
        return self._allocations_at_year_start[best.index]

    def expected_entrants(self) -> np.ndarray:
        """Expected potential entrants per step by sector at the current state."""
        p = self.params
        total = p.births_per_step if p.births_per_step is not None else p.birth_rate * self.N.sum()
        return total * self.sector_mix

    def entry_probabilities(self) -> np.ndarray:
        """Probability that a potential entrant of sector s picks city c now, ``[city, sector]``.

        With an outside option V₀ the alternatives are the cities and staying
        out, so each column sums to less than 1.
        """
        V = entry_utility(self.coef, self.N, self.lever_stocks())
        if self.params.outside_option is None:
            return choice_probabilities(V, axis=0)
        V0 = np.full((1, V.shape[1]), self.params.outside_option)
        return choice_probabilities(np.vstack([V, V0]), axis=0)[:-1]

    def marginal_firm_gain(self) -> np.ndarray:
        """Expected extra entrants per step per 100 M yuan on each lever, ``[city, lever]`` (analytic logit derivative)."""
        return marginal_firm_gain(self.coef, self.entry_probabilities(), self.expected_entrants(), self.lever_stocks(),
                                  self.unit_cost)

    # ------------------------------------------------------------------ agent-level views
    def firm_table(self) -> pd.DataFrame:
        """The live firms now, one row each: id, city, sector, size, age (steps), anchor, anchor_name.

        Raises:
            RuntimeError: with the ``counts`` engine, which keeps ordinary firms as counts.
        """
        if self.counts is not None:
            raise RuntimeError("the counts engine keeps ordinary firms as counts; use engine: agents to list firms")
        table = self.firms.table([c.name for c in self.cities], self.sectors, self.steps)
        table["anchor_name"] = table["id"].map(self.anchor_names)
        return table

    def follow(self, firm_id: int) -> pd.DataFrame:
        """One firm's history: its entry, every move and its exit, with step and year.

        Requires ``record_events=True`` (the default for interactive use).
        """
        if not self.record_events:
            raise RuntimeError("this model was built with record_events=False; rebuild it to follow firms")
        names = [c.name for c in self.cities]
        rows = []
        for step, ids, kind, origin, destination in self._event_log:
            for i in np.flatnonzero(ids == firm_id):
                rows.append({"step": step, "year": self.spec.time.start + step / self.steps_per_year,
                             "event": EVENT_KINDS[kind],
                             "origin": names[origin[i]] if origin[i] >= 0 else None,
                             "destination": names[destination[i]] if destination[i] >= 0 else None})
        if not rows:
            raise KeyError(f"no firm with id {firm_id}")
        return pd.DataFrame(rows)

    def sample_firm(self, sector: str | None = None, city: str | None = None, seed: int = 0) -> int:
        """The id of a live firm picked at random (optionally of a sector and/or city), for notebooks.

        Uses its own generator (``seed``), so picking a firm does not change the model's random stream.
        """
        mask = np.ones(self.firms.n, dtype=bool)
        if sector is not None:
            mask &= self.firms.sector == self.sectors.index(sector)
        if city is not None:
            mask &= self.firms.city == [c.name for c in self.cities].index(city)
        index = np.flatnonzero(mask)
        if len(index) == 0:
            raise KeyError("no live firm matches")
        return int(self.firms.id[np.random.default_rng(seed).choice(index)])


def _latest(key: str, model: ModuModel) -> Any:
    """One model reporter: ``key`` of the history's last record in brief (computed once per step)."""
    if model._latest is None:
        model._latest = model.history.latest()
    return model._latest[key]


__all__ = ["ModuModel", "LEVERS"]
