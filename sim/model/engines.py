"""One run to the end with the scenario's engine: the one place the layers above call the model.

``engine: counts`` runs the compiled kernel (:mod:`sim.model.kernel`, the
counts dynamics of docs/ODD.md §4 at hundreds of runs per second);
``engine: agents`` steps :class:`sim.model.model.ModuModel` with every firm an
individual. Both return the same :class:`sim.model.history.History`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from sim.model.history import History

if TYPE_CHECKING:
    from sim.scenario import Scenario


def simulate(scenario: Scenario, seed: int | np.random.SeedSequence) -> History:
    """Run ``scenario`` from its initial state to its end with the given seed; returns what was recorded.

    Args:
        scenario: a validated scenario; its ``engine`` chooses the implementation.
        seed: the run's seed sequence (``sim.experiments.ensemble.replication_seed(seed, r)``) or an integer.
    """
    if scenario.engine == "counts":
        from sim.model.kernel import simulate_counts

        return simulate_counts(scenario, seed)
    from sim.model.model import ModuModel

    return ModuModel(scenario, rng=seed, record_events=False).run()


class Flows(NamedTuple):
    """A run's counts, flows and spending over time (step 0 the initial state).

    ``firms``, ``births``, ``deaths``, ``moves_in``, ``moves_out`` are ``[step, city, sector]``;
    ``spend`` is the policy spending in each step, ``[step, city, lever]``, 100 M yuan.
    """

    firms: np.ndarray
    births: np.ndarray
    deaths: np.ndarray
    moves_in: np.ndarray
    moves_out: np.ndarray
    spend: np.ndarray


def simulate_flows(scenario: Scenario, seed: int | np.random.SeedSequence) -> Flows:
    """As :func:`simulate`, the counts and flows only (the kernel builds no step records: for ensembles)."""
    if scenario.engine == "counts":
        from sim.model.kernel import run_records

        rec = run_records(scenario, seed)
        return Flows(rec.firms, rec.births, rec.deaths, rec.moves_in, rec.moves_out, rec.spend)
    history = simulate(scenario, seed)
    return Flows(*(history.stack(name) for name in Flows._fields))
