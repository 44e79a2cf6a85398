"""Scaling a study beyond one machine: the measured figures behind the scaling model in benchmarks/README.md.

Run from the repository root (the Dask rows need the dask extra)::

    python benchmarks/bench_scale.py                  # about two minutes on 2 cores
    python benchmarks/bench_scale.py --no-write       # print only

Everything runs the baseline on the compiled kernel (``--set engine=counts``, as the ensemble
benchmarks do) through ``run_points`` of :mod:`sim.experiments.sweep`, the function every chunk of
a sweep runs. It measures:

CPU time rather than wall time for the costs, so that other work on a shared machine does not
count as overhead. It measures:

1. *kernel CPU per run*: ``run_points`` on chunks of 64 runs of one point in this process (one
   core), each run's outcome JSON included (what a worker sends back); and the kernel's extra CPU
   per call, from chunks of 1 against 64 in this process, ``(S₁ − S₆₄) / (chunks₁ − chunks₆₄)``
   (a chunk is one call per point it holds);
2. *per-chunk CPU* of each executor (``processes:2``, ``dask:2`` on a LocalCluster) beyond that:
   the same runs sent in chunks of 1 and of 64, the difference per chunk, in the worker processes
   (less the kernel's per-call CPU) and in this process (the client; a LocalCluster's scheduler
   runs here too);
3. the CPU of a task that computes nothing and returns 1 kB, workers and this process: what this
   process spends per task bounds the tasks per second it can hand out, however many workers;
4. *throughput* of 2 workers at chunks of 64 (wall clock) against twice the one-core kernel;
5. the *result store*: a real 10,000-run ``modu sweep`` (1,000 Latin-hypercube points of α × 10
   replications, processes:2, no figures) whole process; its ``sweep.sqlite`` and tables per run;
   committing its runs again into a fresh store in chunks of 64 (runs per second, serial); and
   reading its runs back and writing its tables (seconds, and peak traced memory, per run).

Prints a table and appends it to benchmarks/RESULTS.md unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from results import publish  # noqa: E402

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


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User and system CPU seconds the processes have used so far (those that have ended count 0)."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += sum(process.cpu_times()[:2])
    return total


def serial_cpu(runs: list[tuple], size: int, repeats: int) -> float:
    """One core: CPU seconds of ``run_points`` on chunks of ``size`` in this process (least of ``repeats``)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for (chunk,) in chunks_of(runs, size):
            run_points(chunk)
        best = min(best, time.process_time() - start)
    return best


def through(executor: object, fn: object, tasks: list[tuple]) -> tuple[float, float, float]:
    """Run every task on an open executor: (wall seconds, CPU seconds of this process — the client and, for a
    LocalCluster, its scheduler —, CPU seconds of the worker processes)."""  # noqa: D205
    me = psutil.Process()
    workers = me.children(recursive=True)
    wall, client, work = time.perf_counter(), cpu_seconds([me]), cpu_seconds(workers)
    for _ in executor.imap_unordered(fn, tasks):
        pass
    return time.perf_counter() - wall, cpu_seconds([me]) - client, cpu_seconds(workers) - work


def kernel_figures(runs: list[tuple], repeats: int) -> dict[str, float]:
    """CPU per run at chunks of :data:`CHUNK`, and the extra CPU of each call of the kernel (chunks of 1 against 64)."""
    run_points(runs[:CHUNK])  # the kernel loaded (compiled on a first run in a fresh tree)
    small, large = serial_cpu(runs, 1, repeats), serial_cpu(runs, CHUNK, repeats)
    calls = len(runs) - len(chunks_of(runs, CHUNK))
    return {"run": large / len(runs), "call": (small - large) / calls}


def executor_figures(kind: str, runs: list[tuple], call: float, repeats: int) -> dict[str, float]:
    """CPU each chunk costs the workers (beyond the kernel's per-call ``call``) and the client, per no-op task
    too, and the throughput at chunks of :data:`CHUNK`, on 2 workers."""  # noqa: D205
    with open_executor(ExecutorSpec(kind, 2)) as executor:
        through(executor, run_points, chunks_of(runs[:2 * CHUNK], CHUNK))  # workers up, kernel loaded
        small, large, noop = chunks_of(runs, 1), chunks_of(runs, CHUNK), [(1000,)] * 2000

        def median(tasks: list, fn: object = run_points) -> list[float]:
            return [statistics.median(x) for x in zip(*(through(executor, fn, tasks) for _ in range(repeats)),
                                                     strict=True)]

        (_, client_1, workers_1), (wall_64, client_64, workers_64) = median(small), median(large)
        _, client_noop, workers_noop = median(noop, bytes)
    chunks = len(small) - len(large)
    return {"workers": (workers_1 - workers_64) / chunks - call, "client": (client_1 - client_64) / chunks,
            "noop_client": client_noop / len(noop), "noop_workers": workers_noop / len(noop),
            "throughput": len(runs) / wall_64}


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

    def tables(folder: Path) -> tuple[list, float, float]:
        """Read every run back and write the tables, as ``modu sweep`` does at its end: (runs, seconds each)."""
        folder.mkdir()
        with RunStore(out, plan.definition(), plan.command()) as store:
            start = time.perf_counter()
            stored = list(store.runs())
            read = time.perf_counter() - start
        start = time.perf_counter()
        write_sweep_tables(plan, stored, folder, figures=False)
        return stored, read, time.perf_counter() - start

    stored, read, build = tables(tmp / "tables")
    del stored
    tracemalloc.start()  # a second time, traced (tracing slows it): what it holds at once
    stored, _, _ = tables(tmp / "traced")
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
    rows = [("kernel CPU per run, 1 core, in process (chunks of 64, outcome JSON included)",
             f"{1000 * kernel:.3f} ms", f"{1 / kernel:,.0f} runs/s"),
            ("kernel: extra CPU of each call (a chunk, or a point within one)", f"{1000 * measured['call']:.2f} ms",
             f"{measured['call'] / kernel:.2f} runs' worth")]
    for kind, f in figures.items():
        rows += [(f"{kind}:2, CPU per chunk beyond the kernel's: in the workers / in this process (chunks of 1 "
                  f"against 64, {args.runs} runs)", f"{1000 * f['workers']:.2f} ms / {1000 * f['client']:.2f} ms",
                  f"{(f['workers'] + f['client']) / kernel:.1f} runs' worth"),
                 (f"{kind}:2, CPU per task returning 1 kB and computing nothing: workers / this process (2,000 tasks)",
                  f"{1000 * f['noop_workers']:.2f} ms / {1000 * f['noop_client']:.2f} ms",
                  f"at most {1 / f['noop_client']:,.0f} tasks/s through this process"),
                 (f"{kind}:2, throughput at chunks of 64 (wall clock)", f"{f['throughput']:,.0f} runs/s",
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
    command = "python benchmarks/bench_scale.py" + (f" --runs {args.runs}" if args.runs != 1024 else "")
    publish(f"Scaling figures, commit {commit}", f"`{command}` — baseline, compiled kernel; the scaling model in "
            "benchmarks/README.md projects from these", rows, write=not args.no_write)

if __name__ == "__main__":
    main()
