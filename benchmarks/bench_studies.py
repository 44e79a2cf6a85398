"""Studies of many points against the kernel they run on: sweeps, policy search and SBC, ratios from the same run.

Run from the repository root on a quiet machine (about 6 minutes; add ``--sbc`` for the SBC row, about 5 minutes more)::

    python benchmarks/bench_studies.py [--sbc] [--no-write]

Prints, and appends to benchmarks/RESULTS.md unless ``--no-write``:

* ``modu sweep`` of the baseline on the counts engine (``--set engine=counts``), ``--sample lhs:1000
  --replications 10`` over the network effect and congestion, ``--executor processes:2``, whole process with its
  tables, as a share of the bare kernel's rate on two processes measured here;
* the same design at 2,000 points × 1 replication on one process (``--executor serial``) against 1 point × 2,000
  replications (the same number of runs, so the same store, outcomes and tables): the time outside the kernel that
  the points themselves cost, per point, that is the difference of the two whole processes less the difference of
  their kernel times (each point's compiled model, and the one point's, run warm in this process); and the time
  outside the kernel per run of the one-point sweep (start-up, store, tables);
* ``modu optimise china Hefei --resolution 0.05 --draws 20 --replications 5 --executor processes:2`` (231 mixes,
  23,300 runs with the current mix and no spending), whole process without figures, as a share of the China
  kernel's rate on two processes;
* with ``--sbc``: ``modu calibrate --sbc 60 --leave-one-out`` of the baseline, each fit at the settings of the
  shipped calibration (calibration/manifest.json: 150 particles, 7 generations), processes:2, the main fit at
  the smallest settings (the many fits do not depend on it): the SBC's and leave-one-out's times as the manifest
  records them, and the whole process.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ensembles import counts_variant, kernel_rate, whole_process  # noqa: E402
from results import publish  # noqa: E402

from sim.experiments.ensemble import replication_seed  # noqa: E402
from sim.experiments.sweep import PatchedPoint, plan_sweep  # noqa: E402
from sim.model.kernel import compile_scenario, simulate_batch  # noqa: E402

RANGES = ["--range", "parameters.network_effect=0.6:1.4", "--range", "parameters.congestion=0:1"]
"""The sampled design: the calibrated network effect and congestion around their estimates."""


def sweep_command(out: str, points: int, replications: int, executor: str) -> list[str]:
    """The ``modu sweep`` of ``points`` Latin-hypercube points of the baseline on the counts engine (one point: the
    scenario as written)."""  # noqa: D205
    sample = ["--sample", f"lhs:{points}", *RANGES] if points > 1 else []
    return [sys.executable, "-m", "sim", "sweep", "scenarios/baseline.yaml", "--set", "engine=counts", *sample,
            "--replications", str(replications), "--executor", executor, "--quiet", "--no-figures", "--out", out]


def kernel_seconds(points: int, replications: int = 1) -> float:
    """One core's time in the kernel for the runs of the sampled design (warm, in this process); one point is the
    scenario as written, its replications one batch, as the sweep runs them."""  # noqa: D205
    ranges = [RANGES[i + 1] for i in range(0, len(RANGES), 2)] if points > 1 else []
    plan = plan_sweep(ROOT / "scenarios" / "baseline.yaml", sets=["engine=counts"],
                      sample=f"lhs:{points}" if points > 1 else None, ranges=ranges, replications=replications)
    if plan.design is None:
        models = [compile_scenario(p.scenario) for p in plan.points]
    else:
        models = [plan.design.model_at(PatchedPoint.of(plan.design, p).values) for p in plan.points]
    seeds = [[replication_seed(plan.seed_of(p), r) for r in range(replications)] for p in plan.points]
    simulate_batch(models[0], seeds[0][:1])
    start = time.perf_counter()
    for model, seed in zip(models, seeds, strict=True):
        simulate_batch(model, seed)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sbc", action="store_true", help="also time modu calibrate --sbc 60 at the shipped settings")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    baseline, china = counts_variant("baseline"), counts_variant("china")
    with tempfile.TemporaryDirectory() as tmp:
        whole_process(sweep_command(f"{tmp}/warm", 1, 1, "serial"))  # the kernel's cache, compiled
        two = kernel_rate(baseline, 4000, 2)
        seconds = whole_process(sweep_command(f"{tmp}/lhs", 1000, 10, "processes:2"))
        rate = 10_000 / seconds
        rows.append(("`modu sweep` baseline, `--sample lhs:1000 --replications 10`, processes:2, with tables",
                     f"{seconds:.1f} s = {rate:,.0f} runs/s", f"{rate / two:.2f} of the kernel ({two:,.0f} runs/s)",
                     "≥ 0.5"))

        many = min(whole_process(sweep_command(f"{tmp}/many{i}", 2000, 1, "serial")) for i in range(2))
        one = min(whole_process(sweep_command(f"{tmp}/one{i}", 1, 2000, "serial")) for i in range(2))
        bare = min(whole_process(sweep_command(f"{tmp}/bare{i}", 1, 1, "serial")) for i in range(2))
        k_many, k_one = kernel_seconds(2000), kernel_seconds(1, 2000)
        per_point = ((many - k_many) - (one - k_one)) / 2000
        per_run = (one - k_one - bare) / 1999
        rows.append(("`modu sweep` baseline, 2,000 points × 1 replication against 1 point × 2,000, serial",
                     f"{many:.2f} s against {one:.2f} s; in the kernel {k_many:.2f} s against {k_one:.2f} s",
                     f"{per_point * 1000:.2f} ms per point outside the kernel (and {per_run * 1000:.2f} ms per run, "
                     "the store and tables, either way)", "≤ 0.3 ms per point"))

        china_two = kernel_rate(china, 2000, 2)
        seconds = whole_process([sys.executable, "-m", "sim", "optimise", "scenarios/china.yaml", "Hefei",
                                 "--resolution", "0.05", "--draws", "20", "--replications", "5",
                                 "--executor", "processes:2", "--quiet", "--no-figures", "--out", f"{tmp}/optimise"])
        runs = (231 + 2) * 20 * 5
        rows.append(("`modu optimise china Hefei`, 231 mixes × 20 draws × 5 replications (+ current, no spending)",
                     f"{seconds:.1f} s = {runs / seconds:,.0f} runs/s",
                     f"{runs / seconds / china_two:.2f} of the China kernel ({china_two:,.0f} runs/s)", "≥ 0.6"))

        if args.sbc:
            shipped = json.loads((ROOT / "calibration" / "manifest.json").read_text())["options"]
            particles, generations, n = (shipped[k] for k in ("reduced_particles", "reduced_generations", "sbc_datasets"))
            # the main fit at the smallest settings: SBC's and leave-one-out's fits do not depend on it
            seconds = whole_process([sys.executable, "-m", "sim", "calibrate", "--sbc", str(n), "--leave-one-out",
                                     "--reduced-particles", str(particles), "--reduced-generations", str(generations),
                                     "--particles", "20", "--generations", "1", "--predictive", "10",
                                     "--executor", "processes:2", "--quiet", "--out", f"{tmp}/sbc"])
            timed = json.loads(Path(f"{tmp}/sbc/manifest.json").read_text())["options"]
            lopo_fits = len(Path(f"{tmp}/sbc/leave_one_out.csv").read_text().splitlines()) - 1
            rows.append((f"SBC, {n} fits at the shipped settings ({particles} particles, {generations} generations), "
                         "baseline, processes:2",
                         f"{timed['sbc_wall_time_s']:.0f} s (leave-one-out's {lopo_fits} fits "
                         f"{timed['lopo_wall_time_s']:.0f} s)", f"{seconds:.0f} s whole process", "< 300 s"))

    publish("Studies at the kernel's speed", "`python benchmarks/bench_studies.py" + (" --sbc" if args.sbc else "")
            + "` (each command is in its docstring)", rows, write=not args.no_write,
            columns=("what", "measured", "against", "target"))

if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
