"""Modu: cities competing to become the "model capital" of the AI industry.

City agents spend annual policy budgets on three levers — compute centres
(stock K), data exchanges (D) and anchor-firm support (A) — while a
population of firms enters, exits and relocates. Firms choose cities by a
multinomial logit whose network term α·log(N_eff + κ) makes the choice a
generalised Pólya urn: with α > 1 one city tips to monopoly, with α = 1
shares are a martingale, with α < 1 they even out; congestion bounds the
returns. See docs/ODD.md for the full description; :meth:`ModuModel.step`
runs the phases of its "Process overview".

Every rule is implemented once, compiled, in :mod:`sim.model.kernel`. With
``engine: counts`` a step is the kernel's own step (:func:`sim.model.kernel.step`,
the one every ensemble runs, with the same random streams); with ``engine:
agents`` the cities' phases and the record are the kernel's too, while each
firm is an individual row that draws its own exit, reconsideration and choice
with the probabilities the kernel computes.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np
import pandas as pd

from sim.model.agents import City
from sim.model.firms import Firms, bernoulli_subset, draw_categorical, draw_sizes, thin
from sim.model.history import History
from sim.model.kernel import compile_scenario, empty_records, new_state, streams
from sim.model.kernel.compile import NONE
from sim.model.kernel.phases import (
    add_anchor,
    exit_probabilities,
    reconsider_probabilities,
    record,
    spend,
)
from sim.model.kernel.run import start as kernel_start
from sim.model.kernel.run import step as kernel_step
from sim.model.kernel.run import step_record
from sim.model.kernel.utility import (
    entry_probabilities,
    expected_entrants,
    lever_stocks,
    marginal_firm_gain,
    mover_probabilities,
)
from sim.model.overrides import apply_overrides
from sim.model.parameters import LEVERS

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
        compiled: the scenario as the kernel's arrays (:class:`sim.model.kernel.CountsModel`).
        state: the run's state (:class:`sim.model.kernel.State`): counts, anchors, cities' policies and stocks.
        records: what has been recorded so far (:class:`sim.model.kernel.Records`), a row per step.
        counts: with the ``counts`` engine, the ordinary firms as counts per city, sector and size class,
            ``[city, sector, class]`` (a view of the state); None with the ``agents`` engine.
        history: what has been recorded, step 0 being the initial state (views of ``records``).
        datacollector: Mesa's collector of :meth:`History.latest` (firms per city, shares, HHI,
            top-1 share, leader) at the initial state and after each step, for ``mesa.batch_run``.
    """

    def __init__(self, scenario: Scenario, rng: int | np.random.SeedSequence | np.random.Generator | None = None,
                 record_events: bool = True, **overrides: Any):
        """Build the initial state of a scenario.

        Args:
            scenario: a validated scenario (see :func:`sim.scenario.load_scenario`).
            rng: seed, ``SeedSequence`` or generator; every random draw comes from its
                seed sequence (one stream per step and phase, see :meth:`begin_phase`).
                ``None`` uses the scenario's ``seed``. With the ``counts`` engine the streams
                are the kernel's (:func:`sim.model.kernel.streams`): the run is, draw for draw,
                :func:`sim.model.kernel.simulate_counts` with the same seed.
            record_events: keep a per-firm event log (births, deaths, moves) so that
                :meth:`follow` can trace one firm (``agents`` engine); costs memory proportional to events.
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
        self.engine = scenario.engine
        self.compiled = md = compile_scenario(scenario)
        self.state = new_state(md)
        self.records = empty_records(self.n_steps, len(scenario.cities), len(self.sectors))
        self.cities = [City(self, i, spec) for i, spec in enumerate(scenario.cities)]
        self._anchor_names = [a.name for c in scenario.cities for a in c.anchors] + [
            e.add_anchor.name for e in sorted(scenario.events, key=lambda e: e.year) if e.add_anchor is not None]
        # the step each anchor slot's firm enters: 0 for the initial anchors, its event's step for the others
        self._anchor_born = np.r_[np.zeros(len(md.anchor_city0), dtype=np.int64),
                                  md.ev_step[md.ev_anchor_sector != NONE]]
        self.anchor_names: dict[int, str] = {}
        self.record_events = record_events
        self._event_log: list[tuple[int, np.ndarray, int, np.ndarray, np.ndarray]] = []
        self._next_event = 0
        self.history = History(cities=[c.name for c in self.cities], sectors=self.sectors,
                               pool=np.array([c.pool for c in scenario.cities]), flows=self.records.flows)
        if self.engine == "counts":
            self.counts = self.state.n
            self._streams = streams(self._seed)
            kernel_start(*self._streams[:3], md, self.records, self.state)
            self.anchor_names = dict(enumerate(self._anchor_names))
        else:
            self.counts = None
            self._firms = Firms(capacity=sum(c.firms for c in scenario.cities))
            self.begin_phase("setup")
            self._populate()
            record(md, self.records, 0, self.state)
        self.datacollector = mesa.DataCollector(model_reporters={
            key: functools.partial(_latest, key) for key in self.history.latest_keys()})
        self._append_record()

    # ------------------------------------------------------------------ state
    @property
    def N(self) -> np.ndarray:  # noqa: N802 (the ODD's symbol)
        """Firms per city and sector now, ``[city, sector]`` (a view of the state)."""
        return self.state.N

    @property
    def anchors_present(self) -> np.ndarray:
        """Anchor firms per city now, ``[city]`` (a view of the state)."""
        return self.state.anchors_present

    @property
    def open(self) -> np.ndarray:
        """Whether each city is open to entrants and movers now (events open and close cities)."""
        return self.state.constant != -np.inf

    @property
    def firms(self) -> Firms:
        """The individual firms (column-wise).

        Every firm with the ``agents`` engine; with ``counts``, the live anchors
        (ids are their order of creation; no size, which no rule of an anchor reads).
        """
        if self.counts is None:
            return self._firms
        st = self.state
        alive = np.flatnonzero(st.anchor_alive[:st.n_anchors[0]])
        firms = Firms(capacity=len(alive))
        firms.add(st.anchor_city[alive], st.anchor_sector[alive], np.full(len(alive), np.nan), born=0, anchor=True)
        firms.id[:] = alive
        firms.born[:] = self._anchor_born[alive]
        firms.next_id = int(st.n_anchors[0])
        return firms

    @property
    def year(self) -> float:
        """Time now, in fractional years (the scenario's start + steps / steps_per_year)."""
        return self.spec.time.start + self.steps / self.steps_per_year

    def lever_stocks(self) -> np.ndarray:
        """K, D, A_eff per city, ``[city, 3]``; A_eff = A + ω·(anchor firms present)."""
        X = np.empty((len(self.cities), 3))
        lever_stocks(self.compiled, self.state.stocks, self.state.anchors_present, X)
        return X

    def expected_entrants(self) -> np.ndarray:
        """Expected potential entrants per step by sector at the current state."""
        out = np.empty(len(self.sectors))
        expected_entrants(self.compiled, self.state.N, out)
        return out

    def entry_probabilities(self) -> np.ndarray:
        """Probability that a potential entrant of sector s picks city c now, ``[city, sector]``.

        With an outside option V₀ the alternatives are the cities and staying
        out, so each column sums to less than 1.
        """
        return self._entry_probabilities()[0]

    def _entry_probabilities(self) -> tuple[np.ndarray, np.ndarray]:
        P, stay_out = np.empty(self.state.N.shape), np.empty(len(self.sectors))
        entry_probabilities(self.compiled, self.state.N, self.lever_stocks(), self.state.constant, P, stay_out)
        return P, stay_out

    def marginal_firm_gain(self) -> np.ndarray:
        """Expected extra entrants per step per 100 M yuan on each lever, ``[city, lever]`` (analytic logit derivative)."""
        gain = np.empty((len(self.cities), 3))
        marginal_firm_gain(self.compiled, self.state.N, self.lever_stocks(), self.state.constant, gain)
        return gain

    # ------------------------------------------------------------------ one step
    def step(self) -> None:
        """Advance one step (docs/ODD.md, Process overview and scheduling)."""
        t, md, rec, st = self.steps, self.compiled, self.records, self.state
        if self.counts is not None:
            self._next_event = kernel_step(*self._streams[:3], md, rec, t, st, self._next_event)
        else:
            anchors = int(st.n_anchors[0])
            self._next_event = spend(md, rec, t, st, self._next_event)   # 1. cities spend
            self.begin_phase("events")
            for slot in range(anchors, int(st.n_anchors[0])):             # anchors the events added
                self._add_anchor_row(slot)
            self.begin_phase("exit")
            self._exit()
            if md.rho > 0:
                self.begin_phase("relocation")
                self._relocate()
            self.begin_phase("entry")
            self._enter()
            record(md, rec, t, st)
        self._append_record()
        if self.steps >= self.n_steps:
            self.running = False

    def begin_phase(self, phase: str) -> None:
        """Point ``self.draws`` at the random stream of this step's ``phase`` (``agents`` engine).

        Each (step, phase) draws from its own child of the model's seed sequence
        (spawn key + ``(step, phase index)``), so two scenarios run with the same
        seed use the same random numbers in every step and phase even after
        their states differ (common random numbers), and a difference in one
        phase does not shift the draws of the next. (The ``counts`` engine does
        the same with the kernel's Philox streams.)
        """
        key = (*self._seed.spawn_key, self.steps, PHASES.index(phase))
        self.draws = np.random.default_rng(np.random.SeedSequence(self._seed.entropy, spawn_key=key))

    def run(self) -> History:
        """Step to the scenario's end; returns the history."""
        while self.steps < self.n_steps:
            self.step()
        return self.history

    # ------------------------------------------------------------------ the agents engine's firms
    def _populate(self) -> None:
        """Create each city's initial firms: its anchors, then the rest split by its sector mix (§3.1)."""
        for c, spec in enumerate(self.spec.cities):
            for anchor in spec.anchors:
                add_anchor(self.state, c, self.sectors.index(anchor.sector))
                self._add_anchor_row(int(self.state.n_anchors[0]) - 1)
            entrants = np.zeros_like(self.state.N)
            entrants[c] = self.compiled.N0[c]
            self._add_ordinary(entrants, kind="initial")

    def _add_anchor_row(self, slot: int) -> None:
        """The individual firm of an anchor the kernel has counted (``add_anchor``): its row and size."""
        st = self.state
        city = np.array([st.anchor_city[slot]], dtype=np.int16)
        ids = self._add_firms(city, np.array([st.anchor_sector[slot]], dtype=np.int8), anchor=True,
                              kind="initial" if self.steps == 0 else "birth")
        self.anchor_names[int(ids[0])] = self._anchor_names[slot]

    def _exit(self) -> None:
        """2. Exit: each firm exits with probability μ·size^(−η), an anchor with μ·φ_exit (§3.2).

        Drawn as Bernoulli(μ) candidates kept with probability p/μ (thinning).
        """
        firms, md, st = self._firms, self.compiled, self.state
        candidates = bernoulli_subset(self.draws, firms.n, md.mu)
        keep = np.empty(len(candidates))
        exit_probabilities(md, firms.size[candidates], firms.anchor[candidates], 1.0, keep)
        dead = thin(self.draws, candidates, keep)
        city, sector = firms.city[dead], firms.sector[dead]
        deaths = self._count(city, sector)
        self.records.deaths[self.steps] += deaths
        st.N[:] -= deaths
        st.anchors_present[:] -= np.bincount(city[firms.anchor[dead]], minlength=len(self.cities))
        self._log("death", firms.id[dead], city, np.full(len(dead), -1))
        firms.remove(dead)

    def _relocate(self) -> None:
        """3. Relocation: firms that reconsider pick a city by the movers' logit, staying included (§3.4).

        A firm reconsiders with probability ρ (an anchor ρ·φ_move/(1 + A)),
        drawn as Bernoulli(ρ) candidates thinned; all choose against the counts
        at the start of the phase.
        """
        firms, md, st, rec, t = self._firms, self.compiled, self.state, self.records, self.steps
        n_city = len(self.cities)
        P = np.empty((len(self.sectors), n_city, n_city))                                        # [s, h, c]
        mover_probabilities(md, st.N, self.lever_stocks(), st.constant, P)
        candidates = bernoulli_subset(self.draws, firms.n, md.rho)
        keep = np.empty(len(candidates))
        reconsider_probabilities(md, st.stocks, firms.city[candidates].astype(np.int64), firms.anchor[candidates],
                                 1.0, keep)
        who = thin(self.draws, candidates, keep)
        home = firms.city[who].astype(np.int64)
        sector = firms.sector[who].astype(np.int64)
        dest = draw_categorical(self.draws, P.reshape(-1, n_city), sector * n_city + home)
        moves = np.zeros((len(self.sectors), n_city, n_city), dtype=np.int64)                     # [s, h, c]
        np.add.at(moves, (sector, home, dest), 1)
        moved = dest != home
        who, home, dest = who[moved], home[moved], dest[moved]
        anchor = firms.anchor[who]
        st.anchors_present[:] += np.bincount(dest[anchor], minlength=n_city) - np.bincount(home[anchor], minlength=n_city)
        firms.city[who] = dest
        self._log("move", firms.id[who], home, dest)
        # Growth accounting: the diagonal (firms that reconsidered and stayed) is not a move.
        moves[:, np.arange(n_city), np.arange(n_city)] = 0
        rec.moves_out[t] += moves.sum(axis=2).T
        rec.moves_in[t] += moves.sum(axis=1).T
        st.N[:] += rec.moves_in[t] - rec.moves_out[t]
        rec.flows[:] += moves.sum(axis=0)

    def _enter(self) -> None:
        """4. Entry: new firms are born and each picks a city by the logit, with no moving cost (§3.4).

        The number of potential entrants is ``births_per_step`` when set, else
        Poisson(b·N_total); their sectors follow the scenario's mix; each
        sector's potential entrants are one multinomial draw over cities (and,
        with an ``outside_option``, staying out).
        """
        md = self.compiled
        total = md.B if md.B != NONE else self.draws.poisson(md.b * self.state.N.sum())
        by_sector = self.draws.multinomial(total, md.sector_mix)
        P, stay_out = self._entry_probabilities()                         # [c, s], [s]
        births = np.stack([self.draws.multinomial(n, np.append(P[:, s], stay_out[s]))[:-1]
                           for s, n in enumerate(by_sector)], axis=1)
        self._add_ordinary(births, kind="birth")

    # ------------------------------------------------------------------ helpers
    def _add_ordinary(self, births: np.ndarray, kind: str) -> None:
        """Add ``births[c, s]`` ordinary (non-anchor) firms as individuals."""
        n_city, n_sector = births.shape
        city = np.repeat(np.repeat(np.arange(n_city, dtype=np.int16), n_sector), births.ravel())
        sector = np.repeat(np.tile(np.arange(n_sector, dtype=np.int8), n_city), births.ravel())
        self.state.N[:] += self._count(city, sector)
        self._add_firms(city, sector, anchor=False, kind=kind)

    def _add_firms(self, city: np.ndarray, sector: np.ndarray, anchor: bool, kind: str) -> np.ndarray:
        """The rows of new firms (counted in N by the caller), sizes drawn; births are recorded except initially."""
        size = draw_sizes(self.draws, len(city), self.params.size_tail)
        ids = self._firms.add(city, sector, size, born=self.steps, anchor=anchor)
        if kind == "birth" and not anchor:  # the kernel records an event's anchor as a birth itself
            self.records.births[self.steps] += self._count(city, sector)
        self._log(kind, ids, np.full(len(ids), -1), city)
        return ids

    def _count(self, city: np.ndarray, sector: np.ndarray) -> np.ndarray:
        """The number of firms per (city, sector), ``[city, sector]`` (one bincount)."""
        n_city, n_sector = self.state.N.shape
        cells = np.asarray(city, dtype=np.int64) * n_sector + sector
        return np.bincount(cells, minlength=n_city * n_sector).reshape(n_city, n_sector)

    def _log(self, kind: str, ids: np.ndarray, origin: np.ndarray, destination: np.ndarray) -> None:
        if self.record_events and len(ids):
            self._event_log.append((self.steps, ids.copy(), EVENT_KINDS.index(kind),
                                    np.asarray(origin, dtype=np.int16).copy(),
                                    np.asarray(destination, dtype=np.int16).copy()))

    def _append_record(self) -> None:
        """Append this step's record (the kernel has written it) to the history, then let the data collector read it."""
        self._latest: dict[str, Any] | None = None
        self.history.steps.append(step_record(self.records, self.steps, self.year))
        self.datacollector.collect(self)

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

        Requires ``record_events=True`` (the default for interactive use) and the ``agents`` engine.
        """
        if self.counts is not None:
            raise RuntimeError("the counts engine keeps no per-firm history; use engine: agents to follow firms")
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
