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


_last_compiled: list = []
"""The last scenario compiled for the kernel and its compiled model: replications of one scenario compile it once."""


def _compiled(scenario: Scenario) -> object:
    """The kernel's compiled model of ``scenario`` (the same object as last time: reused)."""
    from sim.model.kernel import compile_scenario

    if not _last_compiled or _last_compiled[0] is not scenario:
        _last_compiled[:] = [scenario, compile_scenario(scenario)]
    return _last_compiled[1]


def simulate_flows(scenario: Scenario, seed: int | np.random.SeedSequence) -> Flows:
    """As :func:`simulate`, the counts, flows and spending only (the kernel builds no step records: for ensembles)."""
    if scenario.engine == "counts":
        return kernel_flows(_compiled(scenario), seed)
    history = simulate(scenario, seed)
    return Flows(*(history.stack(name) for name in Flows._fields))


def kernel_flows(model: object, seed: int | np.random.SeedSequence) -> Flows:
    """:func:`simulate_flows` of a scenario already compiled for the kernel (:class:`sim.model.kernel.CountsModel`)."""
    from sim.model.kernel import run_records

    rec = run_records(model, seed)
    return Flows(rec.firms, rec.births, rec.deaths, rec.moves_in, rec.moves_out, rec.spend)


def simulate_firms(scenario: Scenario, seeds: list[np.random.SeedSequence] | list[int]) -> np.ndarray:
    """Firms per city over time of one run per seed, ``[run, step, city]`` (step 0 the initial state).

    Run i is :func:`simulate` with ``seeds[i]``; the counts engine runs them all as one compiled batch
    (:func:`sim.model.kernel.simulate_batch`: no Python per run), for sweeps.
    """
    if scenario.engine == "counts":
        from sim.model.kernel import simulate_batch

        return simulate_batch(_compiled(scenario), seeds).firms
    C = len(scenario.cities)
    return np.stack([simulate(scenario, seed).stack("firms").sum(axis=2) for seed in seeds]).reshape(
        len(seeds), scenario.time.steps + 1, C)
