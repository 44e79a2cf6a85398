"""The compiled dynamics of docs/ODD.md: one implementation of every rule, run by both engines and every ensemble.

Ordinary firms are counts ``n[c, s, k]`` per city, sector and size class and
the anchors individual firms; each phase of a step is one compiled function
named after its paragraph of the ODD. ``ModuModel(engine="counts")`` steps these
functions with the same random streams as an ensemble, so a notebook and the
command line give the same run draw for draw; the ``agents`` engine keeps
every firm as an individual but takes its probabilities and the cities'
phases from here too.

Modules, each doing one thing:

- :mod:`~sim.model.kernel.cache` — compilation with numba and its on-disk cache;
- :mod:`~sim.model.kernel.streams` — Philox streams per step and phase, and the draws on them;
- :mod:`~sim.model.kernel.compile` — a scenario as arrays (:func:`compile_scenario`), the state and the records;
- :mod:`~sim.model.kernel.utility` — the logit utility and choice probabilities, the strategies' targets;
- :mod:`~sim.model.kernel.phases` — one function per phase of a step;
- :mod:`~sim.model.kernel.run` — a step, a run, a batch of runs.

Entry points:

- :func:`simulate_counts` — one run, returned as the :class:`sim.model.history.History`
  ``ModuModel(scenario, rng=seed).run()`` returns, so every table writer works.
- :func:`simulate_batch` — many runs, returned as arrays per run, step and city
  (no Python object per step), optionally on several threads (the kernel
  releases the GIL).
- :func:`run_records` — one run's raw records.
- :func:`compile_scenario` — the scenario as the arrays the kernel reads.

A simulation's results depend only on its scenario and seed sequence (root
seed and spawn key), never on the batch, the threads or the processes that ran it.
"""

from sim.model.kernel.compile import CountsModel, Records, State, compile_scenario, empty_records, new_state
from sim.model.kernel.run import (
    Batch,
    history_from_records,
    run_kernel,
    run_records,
    simulate_batch,
    simulate_counts,
    start,
    step,
)
from sim.model.kernel.streams import Streams, philox_keys, streams

__all__ = ["Batch", "CountsModel", "Records", "State", "Streams", "compile_scenario", "empty_records",
           "history_from_records", "new_state", "philox_keys", "run_kernel", "run_records", "simulate_batch",
           "simulate_counts", "start", "step", "streams"]
