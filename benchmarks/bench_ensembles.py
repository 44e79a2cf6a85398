"""Ensembles on the compiled kernel against a model stepped from Python: the targets of the fast-ensembles work, in one run.

Run from the repository root (a quiet machine; about 10 minutes with ``--calibration``)::

    python benchmarks/bench_ensembles.py [--calibration] [--sweep-runs 10000] [--no-write]

Prints, and appends to benchmarks/RESULTS.md unless ``--no-write``:

* baseline simulations per second: ``ModuModel`` with ``engine: counts`` stepped from Python on one core
  (the kernel's step, one call per step, with a History and Mesa's data collection), the kernel (lean
  batch) on one core and on two cores (two processes);
* the China scenario on the kernel, two cores;
* ``modu sweep`` of N baseline runs (``engine: counts``, ``--executor processes:2``), whole
  process with its tables and figures, against the bare kernel's rate measured here;
* ``modu run`` of 2·10^6 firms over 50 cities (28 quarterly steps, 4 replications) with figures, whole process, in firm-steps
  per second, against the one-agent-per-firm Mesa model written from docs/ODD.md (tests/reference_odd.py);
* the run figures alone (7 figures, PNG and SVG) of that run and of a baseline run, drawn from their tables;
* with ``--calibration``: ``modu calibrate`` at the shipped settings (300 particles,
  12 generations), whole process, compile included.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_engine import make_scenario, run_worker  # noqa: E402
from results import publish  # noqa: E402

from sim.experiments.ensemble import replication_seed  # noqa: E402
from sim.model import ModuModel  # noqa: E402
from sim.model.kernel import compile_scenario, simulate_batch  # noqa: E402
from sim.scenario import Scenario, load_scenario  # noqa: E402
from sim.scenario.paths import derive  # noqa: E402


def counts_variant(name: str) -> Scenario:
    """A shipped scenario with ``engine: counts``."""
    return derive(load_scenario(ROOT / "scenarios" / f"{name}.yaml"), {"engine": "counts"})


def engine_rate(scenario: Scenario, n: int) -> float:
    """Simulations per second of ``ModuModel.run()`` with the counts engine, one core."""
    start = time.perf_counter()
    for k in range(n):
        ModuModel(scenario, rng=replication_seed(1, k), record_events=False).run()
    return n / (time.perf_counter() - start)


def _kernel_share(args: tuple[Scenario, int, int]) -> float:
    scenario, lo, hi = args
    model = compile_scenario(scenario)
    simulate_batch(model, [replication_seed(1, k) for k in range(lo, lo + 2)])  # compiled and warm
    start = time.perf_counter()
    simulate_batch(model, [replication_seed(1, k) for k in range(lo, hi)])
    return time.perf_counter() - start


def kernel_rate(scenario: Scenario, n: int, processes: int) -> float:
    """Simulations per second of the kernel's lean batch on ``processes`` processes (wall clock, warm)."""
    if processes == 1:
        return n / _kernel_share((scenario, 0, n))
    shares = [(scenario, i * n // processes, (i + 1) * n // processes) for i in range(processes)]
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(_kernel_share, [(scenario, 0, 4)] * processes))  # compile in every worker first
        start = time.perf_counter()
        list(pool.map(_kernel_share, shares))
        return n / (time.perf_counter() - start)


def whole_process(command: list[str]) -> float:
    """Wall seconds of a command run as its own process (it must succeed)."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def figure_seconds(folder: Path, scenario: Scenario) -> float:
    """Wall seconds of drawing a run's figures from the tables in its folder (matplotlib imported and warm)."""
    import pandas as pd

    from sim.experiments.ensemble import TABLES
    from sim.reporting.figures import save_run_figures

    tables = {name: pd.read_csv(folder / f"{name}.csv") for name in TABLES}
    coordinates = {c.name: (c.lat, c.lon) for c in scenario.cities if c.lat is not None and c.lon is not None}
    with tempfile.TemporaryDirectory() as tmp:
        save_run_figures(tables, Path(tmp) / "warm", coordinates)
        start = time.perf_counter()
        save_run_figures(tables, Path(tmp) / "figures", coordinates)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=2000, help="kernel simulations per rate (default %(default)s)")
    parser.add_argument("--sweep-runs", type=int, default=10_000, help="runs of the sweep (default %(default)s)")
    parser.add_argument("--calibration", action="store_true", help="also time modu calibrate at the shipped settings")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    modu = [sys.executable, "-m", "sim"]
    rows: list[tuple[str, str, str]] = []
    baseline, china = counts_variant("baseline"), counts_variant("china")

    python_rate = engine_rate(baseline, 100)
    one, two = kernel_rate(baseline, args.sims, 1), kernel_rate(baseline, args.sims, 2)
    rows += [("baseline, ModuModel (counts) stepped from Python, 1 core", f"{python_rate:,.0f} sims/s", ""),
             ("baseline, kernel, 1 core", f"{one:,.0f} sims/s", f"{one / python_rate:.1f}× ModuModel stepped"),
             ("baseline, kernel, 2 cores", f"{two:,.0f} sims/s", f"target ≥ 2,000 ({two / python_rate:.1f}× ModuModel stepped)")]
    china_two = kernel_rate(china, args.sims // 2, 2)
    rows.append((f"China ({len(china.cities)} regions), kernel, 2 cores", f"{china_two:,.0f} sims/s", "target ≥ 300"))

    with tempfile.TemporaryDirectory() as tmp:
        seconds = whole_process([*modu, "sweep", "scenarios/baseline.yaml", "--set", "engine=counts", "--replications",
                                 str(args.sweep_runs), "--executor", "processes:2", "--quiet",
                                 "--out", f"{tmp}/sweep"])
        rate = args.sweep_runs / seconds
        rows.append((f"modu sweep, {args.sweep_runs:,} baseline runs, processes:2, whole process",
                     f"{seconds:.1f} s = {rate:,.0f} runs/s", f"{rate / two:.0%} of the bare kernel (target ≥ 40%)"))

        big = make_scenario(2_000_000, 50, steps=28)
        path = Path(tmp) / "big.yaml"
        path.write_text(yaml.safe_dump(big.resolved(), sort_keys=False, allow_unicode=True), encoding="utf-8")
        seconds = whole_process([*modu, "run", str(path), "--replications", "4", "--executor", "processes:2", "--quiet",
                                 "--out", f"{tmp}/big"])
        firm_steps = 2_000_000 * big.time.steps * 4
        reference = run_worker("reference", 20_000, 50, 12, 1, memory=False)["throughput"]
        rows.append(("modu run, 2·10^6 firms × 50 cities × 28 steps × 4 replications (processes:2) with figures, "
                     "whole process",
                     f"{seconds:.1f} s = {firm_steps / seconds:,.0f} firm-steps/s",
                     f"{firm_steps / seconds / reference:,.0f}× the one-agent-per-firm ODD reference "
                     f"({reference:,.0f} firm-steps/s; target ≥ 50×)"))

        baseline_out = f"{tmp}/baseline"
        whole_process([*modu, "run", "scenarios/baseline.yaml", "--quiet", "--no-figures", "--out", baseline_out])
        for label, folder, scenario in (("2·10^6 firms × 50 cities", f"{tmp}/big", big),
                                        ("baseline (4 regions)", baseline_out, baseline)):
            seconds = figure_seconds(Path(folder), scenario)
            rows.append((f"run figures alone (7, PNG and SVG), {label}", f"{seconds:.2f} s", "target < 1 s"))

        if args.calibration:
            seconds = whole_process([*modu, "calibrate", "--particles", "300", "--generations", "12",
                                     "--executor", "processes:2", "--quiet", "--out", f"{tmp}/cal"])
            rows.append(("modu calibrate, 300 particles, 12 generations, whole process", f"{seconds:.0f} s",
                         "target < 60 s"))

    publish("Ensembles", "`python benchmarks/bench_ensembles.py" + (" --calibration" if args.calibration else "") + "`",
            rows, write=not args.no_write)

if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
