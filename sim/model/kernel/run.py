"""Whole simulations: a step, a run, a batch of runs, and their results as Python objects.

:func:`step` is the schedule of docs/ODD.md §1.3 on the counts: every step of
every ensemble and of ``ModuModel(engine="counts")`` is this function.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from sim.model.history import History, StepRecord
from sim.model.kernel.cache import jit
from sim.model.kernel.compile import CountsModel, Records, compile_scenario, empty_records, new_state
from sim.model.kernel.phases import entry, exits, populate, record, relocation, spend
from sim.model.kernel.streams import ENTRY, EXIT, RELOCATION, SETUP, begin_phase, philox_keys, streams

if TYPE_CHECKING:
    from sim.scenario import Scenario


def start(rng, counter, state, md, rec, st):
    """The initial state (§3.1), drawn from the set-up stream, recorded as step 0 (flows of ``rec`` zeroed)."""
    rec.births[:] = 0
    rec.deaths[:] = 0
    rec.moves_in[:] = 0
    rec.moves_out[:] = 0
    rec.flows[:] = 0
    begin_phase(counter, state, 0, SETUP)
    populate(rng, md, st)
    record(md, rec, 0, st)


start = jit(start, inline=True)


def step(rng, counter, state, md, rec, t, st, next_event):
    """Step t (docs/ODD.md §1.3); returns the index of the next event due.

    Cities spend, firms exit, reconsider and enter, each phase drawing from its
    own stream; the step is recorded.
    """
    # 1. Cities spend: yearly adaptation, then events, then spending (§3.5–3.7)
    next_event = spend(md, rec, t, st, next_event)
    # 2. Exit (§3.2)
    begin_phase(counter, state, t, EXIT)
    exits(rng, md, rec, t, st)
    # 3. Relocation (§3.4)
    if md.rho > 0:
        begin_phase(counter, state, t, RELOCATION)
        relocation(rng, md, rec, t, st)
    # 4. Entry (§3.4)
    begin_phase(counter, state, t, ENTRY)
    entry(rng, md, rec, t, st)
    # 5. Record (§3.8)
    record(md, rec, t, st)
    return next_event


step = jit(step, inline=True)


def run_kernel(rng, counter, state, md, rec):
    """Run one simulation of the compiled scenario ``md`` with generator ``rng``, writing into ``rec``.

    Args:
        rng: the run's ``numpy.random.Generator`` over Philox (every draw comes from it).
        counter: its Philox counter, rewound at each phase (:class:`~sim.model.kernel.streams.Streams`).
        state: its Philox state words (:class:`~sim.model.kernel.streams.Streams`).
        md: the compiled scenario (:func:`~sim.model.kernel.compile.compile_scenario`).
        rec: records of ``md.T`` steps (:func:`~sim.model.kernel.compile.empty_records`); overwritten.
    """
    st = new_state(md)
    start(rng, counter, state, md, rec, st)
    next_event = 0
    for t in range(1, md.T + 1):
        next_event = step(rng, counter, state, md, rec, t, st, next_event)


run_kernel = jit(run_kernel)


def run_batch(rng, counter, state, key, keys, phase_counter, phase_state, md, rec, firms, births, deaths, moves_in,
              moves_out):
    """Run one simulation per row of ``keys``, run i keyed by ``keys[i]``; its per-step, per-city totals go in row i.

    One generator serves the whole batch: before each run its Philox key is set
    to the run's and its counter to 0, so run i draws exactly what a fresh
    ``Generator(Philox(seeds[i]))`` would. The phases rewind ``phase_counter``
    and ``phase_state``: the generator's own ``counter`` and ``state`` (a stream
    per phase), or spare arrays (each run then draws from its one stream in order).
    """
    for i in range(keys.shape[0]):
        key[0] = keys[i, 0]
        key[1] = keys[i, 1]
        begin_phase(counter, state, 0, SETUP)  # a fresh stream under the new key
        run_kernel(rng, phase_counter, phase_state, md, rec)
        write_totals(rec, i, firms, births, deaths, moves_in, moves_out)


run_batch = jit(run_batch)


def write_totals(rec, i, firms, births, deaths, moves_in, moves_out):
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


write_totals = jit(write_totals)


# ============================================================================ Python side
def run_records(scenario: Scenario | CountsModel, seed: int | np.random.SeedSequence) -> Records:
    """One run's raw records (arrays over steps), for checks and custom summaries."""
    md = scenario if isinstance(scenario, CountsModel) else compile_scenario(scenario)
    rec = empty_records(md.T, *md.N0.shape)
    rng, counter, state, _ = streams(seed)
    run_kernel(rng, counter, state, md, rec)
    return rec


def history_from_records(scenario: Scenario, rec: Records) -> History:
    """The :class:`sim.model.history.History` of a run's records (what ``ModuModel.run()`` returns)."""
    spy, start_year = scenario.time.steps_per_year, scenario.time.start
    history = History(cities=[c.name for c in scenario.cities], sectors=scenario.sector_names,
                      pool=np.array([c.pool for c in scenario.cities]), flows=rec.flows)
    for t in range(rec.firms.shape[0]):
        history.steps.append(step_record(rec, t, start_year + t / spy))
    return history


def step_record(rec: Records, t: int, year: float) -> StepRecord:
    """Step t of the records as a :class:`sim.model.history.StepRecord` (views, not copies)."""
    return StepRecord(step=t, year=year, firms=rec.firms[t], births=rec.births[t], deaths=rec.deaths[t],
                      moves_in=rec.moves_in[t], moves_out=rec.moves_out[t], stocks=rec.stocks[t], A_eff=rec.A_eff[t],
                      spend=rec.spend[t], allocation=rec.allocation[t], budget=rec.budget[t])


def simulate_counts(scenario: Scenario, seed: int | np.random.SeedSequence) -> History:
    """Run one simulation with the compiled kernel; returns the same History as ``ModuModel(scenario, rng=seed).run()``.

    Args:
        scenario: a validated scenario (run with the counts dynamics whatever its ``engine``).
        seed: the run's seed sequence (e.g. ``sim.experiments.ensemble.replication_seed(seed, r)``) or an integer;
            every draw comes from the Philox streams it keys (:func:`~sim.model.kernel.streams.streams`).
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

    Run i draws from the Philox streams keyed by ``seeds[i]`` alone, so its
    results are those of :func:`simulate_counts` with that seed, whatever the batch size or
    the number of threads. The whole batch is one compiled call per thread (no Python per run).

    Args:
        scenario: a validated scenario, or one already compiled with
            :func:`~sim.model.kernel.compile.compile_scenario`.
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
        rng, counter, state, key = streams(0)
        spare = streams(0)  # phases rewind its counter and state, not the run's: one stream per run
        phase_counter, phase_state = (counter, state) if per_phase_streams else (spare.counter, spare.state)
        run_batch(rng, counter, state, key, keys[lo:hi], phase_counter, phase_state, md, empty_records(md.T, C, S),
                  *(totals[lo:hi] for totals in out))

    bounds = np.linspace(0, n, max(1, min(threads, n)) + 1).astype(int)
    if len(bounds) <= 2:
        work(0, n)
        return out
    with ThreadPoolExecutor(len(bounds) - 1) as executor:
        for done in [executor.submit(work, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]:
            done.result()  # re-raises a worker's exception
    return out
