"""Resource guards: refuse a run up front when it would exhaust memory, disk or time.

Before ``modu run`` simulates anything, :func:`check_run` estimates what the
run needs from the scenario alone:

- **peak firms** per replication: the initial firms grown at the expected net
  rate per step, births (``birth_rate``, or ``births_per_step``) minus exits
  (``exit_rate`` times the mean of ``size**-exit_size_elasticity`` over the
  size mix at birth) — the deterministic mean path of the model's own rules;
- **memory**: with the ``agents`` engine, :data:`AGENT_BYTES_PER_FIRM` bytes per
  firm at the peak (the columns of :data:`sim.model.firms.COLUMNS` at up to twice
  their length after a capacity doubling, plus one column being copied and
  the step's temporaries); the ``counts`` engine's memory does not depend on
  the number of firms (the kernel, :mod:`sim.model.kernel`, keeps city × sector ×
  size-class counts; relocation draws a city × sector × class × city array).
  Each running worker also holds its replication's history and tables, and
  the main process gathers every replication's tables (twice: the parts and
  their concatenation) before writing them;
- **output**: rows of ``firms.csv`` = replications × (steps + 1) × cities ×
  sectors (plus the smaller tables), at :data:`CSV_BYTES_PER_ROW` bytes a row;
- **time**: a lower bound from the per-step and per-firm-event costs
  :data:`STEP_SECONDS` and :data:`EVENT_SECONDS`, well below what this code
  measures, so only runs that are hopeless on any machine are refused.

The run is refused (a :class:`ResourceError`, one line, exit code 2) when the
memory exceeds :data:`MEMORY_SHARE` of the memory available now
(``/proc/meminfo`` MemAvailable, a cgroup limit if lower, else ``os.sysconf``),
the CSVs exceed the free disk space where they go, the wall time exceeds
:data:`MAX_WALL_HOURS`, or the peak exceeds :data:`MAX_FIRMS` (beyond which
64-bit counts and Poisson draws break). The message names the figures and
suggests the counts engine or fewer replications or steps.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.model.firms import COLUMNS, SIZE_CLASSES, size_class_probabilities
from sim.scenario import Scenario, ScenarioError

ROW_BYTES = sum(dtype.itemsize for dtype in COLUMNS.values())
"""Bytes of one firm's row in the ``agents`` engine's columns (20)."""

AGENT_BYTES_PER_FIRM = 2 * ROW_BYTES + max(dtype.itemsize for dtype in COLUMNS.values()) + 8
"""Peak bytes per live firm with the ``agents`` engine: columns up to twice as long as the population
after a doubling, one column being copied, 8 bytes of per-step temporaries (56; 40 measured)."""

TABLE_ROW_BYTES = 200
"""Bytes of one row of a run's tables in memory (pandas, city and sector names as Python strings; ~190 measured)."""

CSV_BYTES_PER_ROW = {"firms": 60, "cities": 140, "metrics": 120, "flows": 30}
"""Bytes of one CSV row of each table (50, 128, 115 and 29 measured on the baseline)."""

HISTORY_BYTES_PER_ARRAY = 112
"""Overhead of one small numpy array in a step's record (11 arrays a step)."""

STEP_SECONDS = 2e-4
"""Lower bound of one step's fixed cost, seconds (about 1 ms measured with four cities)."""

EVENT_SECONDS = 2e-8
"""Lower bound of the cost of one firm event (an exit, reconsideration or entry), seconds (~250 ns measured)."""

CELL_SECONDS = 1e-9
"""Lower bound of the cost of one cell of a step's city × sector × city choice arrays, seconds."""

MEMORY_SHARE = 0.8
"""Share of the available memory a run may plan to use."""

MAX_WALL_HOURS = 7 * 24.0
"""Longest run the guard lets start (a week), by the lower-bound time estimate."""

MAX_FIRMS = 1e15
"""Largest expected peak of firms: counts are 64-bit integers and Poisson draws need λ < 9.2e18."""


class ResourceError(ScenarioError):
    """A run too large for this machine; the message names the figures and what to change."""


@dataclass(frozen=True)
class Needs:
    """What a run is expected to need.

    Attributes:
        peak_firms: expected peak of firms in one replication (``inf`` if beyond float range).
        growth_per_step: expected net growth rate per step (births − exits, as a share of the initial firms).
        engine_bytes: peak memory of one replication's firms (columns or counts), bytes.
        running: replications running at once on this machine (0 on a remote cluster).
        memory_bytes: peak memory on this machine (replications running here plus the gathered tables), bytes.
        firms_rows: rows of ``firms.csv``.
        output_bytes: size of the CSVs, bytes.
        seconds: lower bound of the wall time, seconds.
    """

    peak_firms: float
    growth_per_step: float
    engine_bytes: float
    running: int
    memory_bytes: float
    firms_rows: int
    output_bytes: float
    seconds: float


def mean_exit_hazard(scenario: Scenario) -> float:
    """Expected exit probability per step of an ordinary firm drawn from the size mix at birth: μ·E[size^(−η)]."""
    p = scenario.parameters
    sizes = np.ldexp(1.0, np.arange(SIZE_CLASSES))
    return float(p.exit_rate * np.dot(size_class_probabilities(p.size_tail), sizes ** -p.exit_size_elasticity))


def expected_firms(scenario: Scenario) -> np.ndarray:
    """Expected firms after each step 0..T of one replication (the mean path; ``inf`` once beyond float range)."""
    p = scenario.parameters
    steps = np.arange(scenario.time.steps + 1, dtype=float)
    n0 = float(sum(c.firms for c in scenario.cities))
    n0 += sum(1 for e in scenario.events if e.add_anchor is not None)
    exit_hazard = mean_exit_hazard(scenario)
    if p.births_per_step is not None:  # N[t+1] = (1 − h)·N[t] + B
        if exit_hazard == 0:
            return n0 + p.births_per_step * steps
        steady = p.births_per_step / exit_hazard
        return steady + (n0 - steady) * (1 - exit_hazard) ** steps
    with np.errstate(over="ignore"):  # N[t+1] = (1 + b − h)·N[t]; beyond float range is inf
        return n0 * np.power(1 + p.birth_rate - exit_hazard, steps) if n0 > 0 else np.zeros_like(steps)


def estimate(scenario: Scenario, replications: int | None = None, workers: int = 1) -> Needs:
    """Estimate a run's peak firms, memory, output and wall time (see the module's docstring).

    Args:
        scenario: the validated scenario.
        replications: how many (default: the scenario's).
        workers: replications running at once on this machine; 0 for a remote cluster (an executor
            ``dask:ADDRESS``), whose workers' memory is not this machine's and which may run them all at once.
    """
    p = scenario.parameters
    reps = scenario.replications if replications is None else replications
    running = max(0, min(workers, reps))
    n_city, n_sector, steps = len(scenario.cities), len(scenario.sectors), scenario.time.steps
    path = expected_firms(scenario)
    peak = float(path.max())
    exit_hazard = mean_exit_hazard(scenario)
    growth = (p.births_per_step / max(path[0], 1.0) if p.births_per_step is not None else p.birth_rate) - exit_hazard

    rows = {"firms": (steps + 1) * n_city * n_sector, "cities": (steps + 1) * n_city, "metrics": steps + 1,
            "flows": n_city * (n_city - 1)}
    tables_bytes = TABLE_ROW_BYTES * sum(rows.values())                       # one replication, in memory
    history_bytes = (steps + 1) * (8 * (5 * n_city * n_sector + 11 * n_city) + 11 * HISTORY_BYTES_PER_ARRAY)
    if scenario.engine == "agents":
        engine_bytes = AGENT_BYTES_PER_FIRM * peak
    else:  # counts per city, sector and size class, and relocation's [home, sector, class, destination] draw
        engine_bytes = 8 * n_city * n_sector * SIZE_CLASSES * (1 + (2 * n_city if p.relocation_rate > 0 else 0))
    memory_bytes = running * (engine_bytes + history_bytes + 2 * tables_bytes) + 2 * reps * tables_bytes
    output_bytes = reps * sum(CSV_BYTES_PER_ROW[name] * n for name, n in rows.items())

    cells = n_city * n_sector * (n_city if p.relocation_rate > 0 else 1) * (SIZE_CLASSES if scenario.engine == "counts" else 1)
    per_step = STEP_SECONDS + CELL_SECONDS * cells
    events = 0.0 if scenario.engine == "counts" else float(path[:-1].sum()) * (p.birth_rate + exit_hazard + p.relocation_rate)
    if p.births_per_step is not None and scenario.engine == "agents":
        events += p.births_per_step * steps
    seconds = math.ceil(reps / (running or reps)) * (steps * per_step + EVENT_SECONDS * events)
    return Needs(peak_firms=peak, growth_per_step=growth, engine_bytes=engine_bytes, running=running,
                 memory_bytes=memory_bytes, firms_rows=reps * rows["firms"], output_bytes=output_bytes, seconds=seconds)


def available_memory() -> int:
    """Bytes of memory available now: MemAvailable, or the cgroup's room if smaller (``os.sysconf`` as a fallback)."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            room = int(Path(limit_file).read_text().strip()) - int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):  # no such cgroup file, or "max"
            continue
        available = min(available, max(room, 0))
    return available


def free_disk(out: Path) -> int:
    """Free bytes on the file system that would hold ``out`` (its nearest existing ancestor)."""
    folder = out.resolve()
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def check_run(scenario: Scenario, source: str, replications: int | None = None, workers: int = 1,
              out: Path | None = None) -> Needs:
    """Refuse a run that would exhaust memory, disk or time; return its estimate otherwise.

    Args:
        scenario: the validated scenario.
        source: the scenario's file (the refusal names it).
        replications: how many (default: the scenario's).
        workers: replications running at once on this machine (0: a remote cluster).
        out: the output folder (checked for disk space), or None.

    Raises:
        ResourceError: ``source: field: figures; what to change`` on one line.
    """
    needs = estimate(scenario, replications, workers)
    reps = scenario.replications if replications is None else replications
    start = sum(c.firms for c in scenario.cities)
    firms = (f"~{needs.peak_firms:.3g} firms at the peak (from {start:,} at {needs.growth_per_step:+.2%} a step over "
             f"{scenario.time.steps} steps)")
    grows = needs.peak_firms > 2 * max(start, 1)
    firm_field = ("parameters.births_per_step" if scenario.parameters.births_per_step is not None
                  else "parameters.birth_rate") if grows else "cities"
    if needs.peak_firms > MAX_FIRMS:
        raise ResourceError(f"{source}: {firm_field}: run too large: {firms}; Modu refuses more than {MAX_FIRMS:.0e} "
                            "(64-bit counts); use fewer steps or a lower birth rate")
    allowed = MEMORY_SHARE * available_memory()
    if needs.memory_bytes > allowed:
        if scenario.engine == "agents" and needs.running * needs.engine_bytes > needs.memory_bytes / 2:
            advice = f"{firms} with engine: agents at {AGENT_BYTES_PER_FIRM} B a firm; use engine: counts, fewer steps "\
                     "or fewer replications at once (--executor processes:N)"
            field = firm_field
        else:
            advice = (f"{needs.firms_rows:,} rows of firms.csv ({reps:,} replications × "
                      f"{scenario.time.steps + 1:,} recorded steps × {len(scenario.cities)} cities × "
                      f"{len(scenario.sectors)} sectors) held in memory; "
                      "use fewer replications (--replications) or fewer steps")
            field = "replications"
        raise ResourceError(f"{source}: {field}: run too large: needs ~{_bytes(needs.memory_bytes)} of memory but "
                            f"{_bytes(allowed)} may be used ({MEMORY_SHARE:.0%} of {_bytes(allowed / MEMORY_SHARE)} "
                            f"available): {advice}")
    if out is not None and needs.output_bytes > free_disk(out):
        raise ResourceError(f"{source}: replications: output too large: ~{_bytes(needs.output_bytes)} of CSVs "
                            f"({needs.firms_rows:,} rows of firms.csv) but {_bytes(free_disk(out))} free at {out}; "
                            "use fewer replications (--replications) or fewer steps")
    if needs.seconds > MAX_WALL_HOURS * 3600:
        raise ResourceError(f"{source}: time: run too long: at least ~{needs.seconds / 86400:,.0f} days "
                            f"({reps:,} replications of {scenario.time.steps:,} steps, {firms}); Modu refuses runs "
                            f"over {MAX_WALL_HOURS / 24:.0f} days: use the counts engine, fewer replications or fewer steps")
    return needs


UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _bytes(n: float) -> str:
    """Bytes in binary units (``3.2 GiB``)."""
    if not math.isfinite(n):
        return "more bytes than a float holds"
    i = min(int(math.log(max(n, 1.0), 1024)), len(UNITS) - 1)
    return f"{n:.0f} B" if i == 0 else f"{n / 1024 ** i:.3g} {UNITS[i]}"
