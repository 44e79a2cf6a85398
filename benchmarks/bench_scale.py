"""Scaling a study beyond one machine: the measured figures behind the scaling model in benchmarks/README.md.

Run from the repository root (the Dask rows need the dask extra)::

    python benchmarks/bench_scale.py                  # about two minutes on 2 cores
    python benchmarks/bench_scale.py --no-write       # print only

Everything runs the baseline on the compiled kernel (``--set engine=counts``, as the ensemble
benchmarks do) through ``run_points`` of :mod:`sim.experiments.sweep`, the function every chunk of
a sweep runs. It measures:

1. *kernel time per run*: ``run_points`` on chunks of 64 runs of one point in this process (one
   core), each run's outcome JSON included (what a worker sends back); and the kernel's extra cost
   per call, from chunks of 1 against 64 in this process, ``(S₁ − S₆₄) / (chunks₁ − chunks₆₄)``
   (a chunk is one call per point it holds);
2. *per-chunk overhead* of each executor (``processes:2``, ``dask:2`` on a LocalCluster) beyond
   that: the same runs sent in chunks of 1 and of 64, ``2 (T₁ − T₆₄) / (chunks₁ − chunks₆₄)`` minus
   the kernel's per-call cost, both workers taken as busy throughout;
3. the executor's *dispatch ceiling*: tasks per second of a task that does nothing but return 1 kB,
   through 2 workers (submission, scheduling and the result's way back, all serial in the client);
4. *throughput* of 2 workers at chunks of 64 against twice the one-core kernel rate;
5. the *result store*: a real 10,000-run ``modu sweep`` (1,000 Latin-hypercube points of α × 10
   replications, processes:2, no figures) whole process; its ``sweep.sqlite`` and tables per run;
   committing its runs again into a fresh store in chunks of 64 (runs per second, serial); and
   reading its runs back and writing its tables (seconds, and peak traced memory, per run).

Prints a table and appends it to benchmarks/RESULTS.md unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.experiments.executors import ExecutorSpec, open_executor  # noqa: E402
from sim.experiments.store import STORE_FILE, FinishedRun, RunStore  # noqa: E402
from sim.experiments.sweep import plan_sweep, run_points  # noqa: E402

SCENARIO = "scenarios/baseline.yaml"
CHUNK = 64
"""Runs per chunk in a large sweep (``MAX_CHUNK`` of :mod:`sim.experiments.sweep`)."""

COUNTS = "engine=counts"
"""The baseline on the compiled kernel (``--set engine=counts``), as the ensemble benchmarks run it."""

SAMPLE, RANGE, REPLICATIONS = "lhs:1000", "parameters.network_effect=0.8:1.4", 10
"""The sweep whose store and tables are measured: 1,000 Latin-hypercube points × 10 replications."""


def chunks_of(runs: list[tuple], size: int) -> list[tuple[list[tuple]]]:
    """Executor tasks of ``run_points``: the runs cut into chunks of ``size``."""
    return [(runs[i:i + size],) for i in range(0, len(runs), size)]


def serial_seconds(runs: list[tuple], size: int, repeats: int) -> float:
    """One core: ``run_points`` on chunks of ``size`` in this process; best of ``repeats``, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for (chunk,) in chunks_of(runs, size):
            run_points(chunk)
        best = min(best, time.perf_counter() - start)
    return best


def through(executor: object, fn: object, tasks: list[tuple]) -> float:
    """Seconds to run every task on an open executor and collect the results."""
    start = time.perf_counter()
    for _ in executor.imap_unordered(fn, tasks):
        pass
    return time.perf_counter() - start


def kernel_figures(runs: list[tuple], repeats: int) -> dict[str, float]:
    """Per run at chunks of :data:`CHUNK`, and the extra cost of each call of the kernel (chunks of 1 against 64)."""
    run_points(runs[:CHUNK])  # the kernel loaded (compiled on a first run in a fresh tree)
    small, large = serial_seconds(runs, 1, repeats), serial_seconds(runs, CHUNK, repeats)
    calls = len(runs) - len(chunks_of(runs, CHUNK))
    return {"run": large / len(runs), "call": (small - large) / calls}


def executor_figures(kind: str, runs: list[tuple], call: float, repeats: int) -> dict[str, float]:
    """Per-chunk overhead (beyond the kernel's own per-call cost ``call``), dispatch ceiling and throughput, 2 workers."""
    with open_executor(ExecutorSpec(kind, 2)) as executor:
        through(executor, run_points, chunks_of(runs[:2 * CHUNK], CHUNK))  # workers up, kernel loaded
        small, large = chunks_of(runs, 1), chunks_of(runs, CHUNK)
        t_small = statistics.median(through(executor, run_points, small) for _ in range(repeats))
        t_large = statistics.median(through(executor, run_points, large) for _ in range(repeats))
        noop = [(1000,)] * 2000
        t_noop = statistics.median(through(executor, bytes, noop) for _ in range(repeats))
    return {"overhead": 2 * (t_small - t_large) / (len(small) - len(large)) - call,
            "ceiling": len(noop) / t_noop, "throughput": len(runs) / t_large}


def sweep_figures(tmp: Path) -> dict[str, float]:
    """A real 10,000-run sweep: whole process, its files per run; its store refilled; its tables rebuilt."""
    from sim.reporting.sweep import write_sweep_tables

    out = tmp / "sweep"
    start = time.perf_counter()
    options = ["--set", COUNTS, "--sample", SAMPLE, "--range", RANGE, "--replications", str(REPLICATIONS)]
    done = subprocess.run([sys.executable, "-m", "sim", "sweep", SCENARIO, *options, "--out", str(out),
                           "--executor", "processes:2", "--quiet", "--no-figures"],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    whole = time.perf_counter() - start
    runs_now, loop = re.search(r"([\d,]+) run now in ([\d.]+) s", done.stdout).groups()
    n = int(runs_now.replace(",", ""))
    sizes = {name: (out / name).stat().st_size / n for name in
             (STORE_FILE, "summary.csv", "metrics.csv", "trajectories.csv")}
    plan = plan_sweep(SCENARIO, sets=[COUNTS], sample=SAMPLE, ranges=[RANGE], replications=REPLICATIONS)
    tables = tmp / "tables"
    tables.mkdir()
    tracemalloc.start()  # what writing the tables holds at once: every run read back, then the tables
    with RunStore(out, plan.definition(), plan.command()) as store:
        start = time.perf_counter()
        stored = list(store.runs())
        read = time.perf_counter() - start
    start = time.perf_counter()
    write_sweep_tables(plan, stored, tables, figures=False)
    build = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # the outcomes as workers send them (json.dumps of the parsed outcome gives back the stored text)
    finished = [FinishedRun(r.point, r.replication, r.seed, r.spawn_key, outcome=json.dumps(r.outcome))
                for r in stored]
    with RunStore(tmp / "again", plan.definition(), plan.command()) as fresh:
        start = time.perf_counter()
        for i in range(0, len(finished), CHUNK):
            fresh.record_many(finished[i:i + CHUNK])
        commit = time.perf_counter() - start
    return {"runs": n, "whole": whole, "loop": float(loop), "read": read / n, "tables": build / n,
            "tables_peak": peak / n, "store_rate": n / commit, **{f"bytes {k}": v for k, v in sizes.items()}}


def main() -> None:
    """Measure, print, append to RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1024, help="runs for the kernel and executor figures")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--executors", nargs="+", default=["processes", "dask"])
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    plan = plan_sweep(SCENARIO, sets=[COUNTS], replications=args.runs)
    point = plan.points[0]
    runs = [(point.scenario, r, plan.seed_of(point)) for r in range(args.runs)]
    measured = kernel_figures(runs, args.repeats)
    kernel = measured["run"]
    print(f"kernel: {measured}", file=sys.stderr)
    figures = {}
    for kind in args.executors:
        figures[kind] = executor_figures(kind, runs, measured["call"], args.repeats)
        print(f"{kind}: {figures[kind]}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        sweep = sweep_figures(Path(tmp))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    rows = [("kernel time per run, 1 core, in process (chunks of 64, outcome JSON included)",
             f"{1000 * kernel:.3f} ms", f"{1 / kernel:,.0f} runs/s"),
            ("kernel: extra cost of each call (a chunk, or a point within one), 1 core", f"{1000 * measured['call']:.2f} ms",
             f"{measured['call'] / kernel:.1f} runs' worth")]
    for kind, f in figures.items():
        rows += [(f"{kind}:2, per-chunk overhead beyond the kernel's per call (chunks of 1 against 64, {args.runs} runs)",
                  f"{1000 * f['overhead']:.2f} ms", f"{f['overhead'] / kernel:.1f} runs' worth"),
                 (f"{kind}:2, dispatch ceiling (tasks returning 1 kB, 2,000 tasks)", f"{f['ceiling']:,.0f} tasks/s", ""),
                 (f"{kind}:2, throughput at chunks of 64", f"{f['throughput']:,.0f} runs/s",
                  f"{f['throughput'] * kernel / 2:.0%} of 2 × the one-core kernel")]
    rows += [(f"modu sweep, {sweep['runs']:,} runs (lhs:1000 × 10), processes:2, no figures, whole process",
              f"{sweep['whole']:.1f} s", f"compute loop {sweep['loop']:.1f} s"),
             ("store: sweep.sqlite per run", f"{sweep[f'bytes {STORE_FILE}']:,.0f} bytes", ""),
             ("store: committing runs in chunks of 64 (serial, one writer)", f"{sweep['store_rate']:,.0f} runs/s", ""),
             ("store: reading every run back (parsed)", f"{1e6 * sweep['read']:.1f} µs per run", ""),
             ("tables: summary.csv / metrics.csv / trajectories.csv per run",
              f"{sweep['bytes summary.csv']:,.0f} / {sweep['bytes metrics.csv']:,.0f} / "
              f"{sweep['bytes trajectories.csv']:,.0f} bytes", "4 cities × 25 steps"),
             ("tables: building and writing them from the runs read back", f"{1e6 * sweep['tables']:,.0f} µs per run",
              f"peak {sweep['tables_peak'] / 1024:,.1f} kB of traced memory per run, reading included")]
    load = os.getloadavg()[0]
    command = "python benchmarks/bench_scale.py" + (f" --runs {args.runs}" if args.runs != 1024 else "")
    lines = [f"## Scaling figures ({time.strftime('%Y-%m-%d')}, commit {commit}, {os.cpu_count()} cores, "
             f"load average {load:.1f} at the end)", "", f"`{command}` — baseline, compiled kernel; the scaling "
             "model in benchmarks/README.md projects from these", "",
             "| what | measured | against |", "|---|---|---|", *(f"| {a} | {b} | {c} |" for a, b, c in rows), ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as handle:
            handle.write("\n" + text)


if __name__ == "__main__":
    main()
