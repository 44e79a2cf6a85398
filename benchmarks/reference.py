"""A plain, per-agent reference implementation of Modu's firm rules (the idiomatic Mesa way).

Every firm is a ``mesa.Agent`` with its own ``step``; the firm population is
scheduled with ``AgentSet.shuffle_do("step")`` and each firm makes its own
draws one at a time with scalar random numbers. Nothing here is vectorised
over firms: this is the "obviously right but slow" version of the rules in
:mod:`sim.model.firms` / :meth:`sim.model.ModuModel.step`, used to

* cross-check the vectorised engine statistically (``tests/test_reference.py``),
* measure the engine's speed-up (``benchmarks/bench_engine.py``).

What is shared with the engine, on purpose: the City agents, their spending,
events and strategies (this class subclasses :class:`~sim.model.ModuModel` and
keeps its ``step``, so the phase order is the engine's by construction), the
deterministic utilities of :mod:`sim.model.utility`, and the per-step records
(:class:`~sim.model.history.History`). What is re-implemented independently: every
firm decision, and the firm counts ``N`` (a census of the agents, never
book-kept incrementally).

The rules (docs/ODD.md §1.3), per step, after the cities have invested:

2. **Exit** — each firm exits with probability μ·size^(−η); an anchor with μ·φ_exit.
   Sizes are drawn at birth as in the engine: 2**k, the octave class k with the
   Pareto(ζ, minimum 1) mass of [2**k, 2**(k+1)).
3. **Relocation** — each firm reconsiders with probability ρ (an anchor with
   ρ·φ_move/(1 + A[c]), A its city's anchor-support stock); a reconsidering
   firm takes the city with the highest ``V[s, home, c] + ε_c``, ε i.i.d.
   Gumbel(0, 1), where V is the mover utility computed from the counts at the
   start of the phase (staying included, moving cost for any other city).
4. **Entry** — the model creates ``births_per_step`` or Poisson(b·N_total)
   entrants, their sectors multinomial over the scenario's mix; each picks the
   city with the highest ``V[c, s] + ε_c`` on the entry utility at the counts
   at the start of the phase.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.model import ModuModel
from sim.model.firms import SIZE_CLASSES, largest_remainder, size_class_probabilities
from sim.model.utility import entry_utility, mover_utility
from sim.scenario import Scenario

EXIT, RELOCATION = "exit", "relocation"


class Firm(mesa.Agent):
    """One firm: where it is, its sector, size, birth step and whether it is an anchor."""

    def __init__(self, model: ReferenceModel, city: int, sector: int, born: int, anchor: bool = False):
        super().__init__(model)
        self.city = city
        self.sector = sector
        self.born = born
        self.anchor = anchor
        self.size = self.draw_size(model)

    @staticmethod
    def draw_size(model: ReferenceModel) -> float:
        """Size at birth 2**k, the octave class k drawn by one uniform against the classes' cumulative probabilities.

        The class probabilities are the Pareto(ζ, minimum 1) mass in [2**k, 2**(k+1)), as in the engine
        (:func:`sim.model.firms.size_class_probabilities`).
        """
        k = int(np.searchsorted(model.size_cdf, model.rng.random(), side="right"))
        return 2.0 ** min(k, SIZE_CLASSES - 1)

    # The model runs the firms through one phase at a time (all exits, then all
    # relocations), as the engine does; ``step`` does this firm's part of it.
    def step(self) -> None:
        if self.model.phase == EXIT:
            self.consider_exit()
        elif self.model.phase == RELOCATION:
            self.consider_moving()

    def exit_probability(self) -> float:
        p = self.model.params
        if self.anchor:
            return p.exit_rate * p.anchor_exit_factor
        return p.exit_rate * self.size ** (-p.exit_size_elasticity)

    def consider_exit(self) -> None:
        if self.model.rng.random() < self.exit_probability():
            self.model.deaths[self.city, self.sector] += 1
            self.remove()

    def reconsider_probability(self) -> float:
        p = self.model.params
        if self.anchor:
            A = self.model.cities[self.city].stocks[2]
            return p.relocation_rate * p.anchor_relocation_factor / (1.0 + A)
        return p.relocation_rate

    def consider_moving(self) -> None:
        model = self.model
        if model.rng.random() >= self.reconsider_probability():
            return
        V = model.mover_V[self.sector, self.city]                 # utility of each city, seen from home
        dest = int(np.argmax(V + model.rng.gumbel(size=len(V))))
        if dest != self.city:
            model.record_move(self, dest)
            self.city = dest


class ReferenceModel(ModuModel):
    """ModuModel with one ``mesa.Agent`` per firm and per-agent decisions.

    Same constructor, ``step``, ``run`` and ``history`` as the engine; the
    column store ``firms`` and the ``counts`` engine are not used
    (``firm_agents`` holds the firms), whatever the scenario's ``engine``.
    """

    def __init__(self, scenario: Scenario, rng: int | np.random.SeedSequence | np.random.Generator | None = None):
        self.phase: str | None = None
        self.size_cdf = np.cumsum(size_class_probabilities(scenario.parameters.size_tail))
        super().__init__(scenario, rng=rng, record_events=False)
        self.firms = None    # the engine's column store is not used here,
        self.counts = None   # nor its counts engine

    # ------------------------------------------------------------------ population
    @property
    def firm_agents(self) -> mesa.agent.AgentSet:
        """The live firms."""
        return self.agents_by_type.get(Firm) or mesa.agent.AgentSet([], random=self.random)

    def _populate(self) -> None:
        """Each city's anchors, then its other firms split by its sector mix (as the engine does)."""
        for city, spec in zip(self.cities, self.spec.cities, strict=True):
            for anchor in spec.anchors:
                firm = Firm(self, city.index, self.sectors.index(anchor.sector), born=0, anchor=True)
                self.anchor_names[firm.unique_id] = anchor.name
            mix = spec.sector_mix or self.spec.sectors
            shares = np.array([mix.get(s, 0.0) for s in self.sectors])
            counts = largest_remainder(spec.firms - len(spec.anchors), shares)
            for sector, n in enumerate(counts):
                for _ in range(n):
                    Firm(self, city.index, sector, born=0)
        self._census()

    def _add_anchor(self, city: int, name: str, sector: str, born: int) -> None:
        """An anchor added by an event is a birth."""
        s = self.sectors.index(sector)
        firm = Firm(self, city, s, born=born, anchor=True)
        self.anchor_names[firm.unique_id] = name
        self._flows_this_step["births"][city, s] += 1
        self._census()

    def _census(self) -> None:
        """Count the live firms per city and sector, and the anchors per city."""
        self.N = np.zeros((len(self.cities), len(self.sectors)), dtype=np.int64)
        self.anchors_present = np.zeros(len(self.cities), dtype=np.int64)
        for firm in self.firm_agents:
            self.N[firm.city, firm.sector] += 1
            if firm.anchor:
                self.anchors_present[firm.city] += 1

    # ------------------------------------------------------------------ the firm phases
    @property
    def deaths(self) -> np.ndarray:
        return self._flows_this_step["deaths"]

    def record_move(self, firm: Firm, dest: int) -> None:
        self._flows_this_step["moves_out"][firm.city, firm.sector] += 1
        self._flows_this_step["moves_in"][dest, firm.sector] += 1
        self.history.flows[firm.city, dest] += 1

    def exit(self) -> None:
        self.phase = EXIT
        self.firm_agents.shuffle_do("step")
        self.phase = None
        self._census()

    def relocate(self) -> None:
        if self.params.relocation_rate == 0:   # nobody reconsiders (and mover utilities need not exist)
            return
        self.phase = RELOCATION
        self.mover_V = mover_utility(self.coef, self.N, self.lever_stocks())   # [s, h, c], counts at phase start
        self.firm_agents.shuffle_do("step")
        self.phase = None
        self._census()

    def enter(self) -> None:
        p = self.params
        total = p.births_per_step if p.births_per_step is not None else self.rng.poisson(p.birth_rate * self.N.sum())
        by_sector = self.rng.multinomial(total, self.sector_mix)
        V = entry_utility(self.coef, self.N, self.lever_stocks())              # [c, s], counts at phase start
        for sector, n in enumerate(by_sector):
            for _ in range(n):
                city = int(np.argmax(V[:, sector] + self.rng.gumbel(size=V.shape[0])))
                Firm(self, city, sector, born=self.steps)
                self._flows_this_step["births"][city, sector] += 1
        self._census()


__all__ = ["Firm", "ReferenceModel"]
