"""Speed of the compiled kernel (sim/model/kernel/) run whole and stepped from Python, and how well it pairs.

Run from the repository root::

    python benchmarks/bench_kernel.py            # a few minutes on a quiet 2-core machine
    python benchmarks/bench_kernel.py --quick    # fewer simulations (< 1 minute once compiled)
    python benchmarks/bench_kernel.py --read-only   # only: does a read-only install run and cache?

Prints:

* compile time: a fresh process importing the kernel and running one simulation,
  with an empty numba cache (cold) and again with the cache it left (warm);
* baseline (scenarios/baseline.yaml) simulations per second on one core:
  ``ModuModel`` with ``engine: counts`` (``run()``: the kernel's step called from
  Python, with Mesa's data collection) against the kernel returning a History
  (:func:`sim.model.kernel.simulate_counts`) and the lean batch
  (:func:`sim.model.kernel.simulate_batch`, arrays only);
* the kernel on two cores: two threads (the kernel releases the GIL) and two processes;
* the same for the China scenario (scenarios/china.yaml, 14 cities);
* common random numbers: per city, the correlation over replications of the end
  counts of the baseline and of a budget change (Shanghai's budget doubled),
  as ``sim.experiments.compare._pairing`` computes it: the agents engine's child seed
  sequence per (step, phase), the kernel drawing from one stream per run, and the
  kernel with its Philox stream per (step, phase) (which ``ModuModel``'s counts engine uses too).
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
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.experiments.compare import _pairing  # noqa: E402
from sim.experiments.ensemble import replication_seed  # noqa: E402
from sim.model import ModuModel  # noqa: E402
from sim.model.kernel import compile_scenario, simulate_batch, simulate_counts  # noqa: E402
from sim.model.kernel.cache import temporary_cache_dir  # noqa: E402
from sim.scenario import Scenario, load_scenario  # noqa: E402

COMPILE = """
import time
t = time.perf_counter()
import numpy as np
from sim.model.kernel import simulate_counts
from sim.scenario import load_scenario
simulate_counts(load_scenario("scenarios/baseline.yaml"), np.random.SeedSequence(0))
print(time.perf_counter() - t)
"""


def compile_seconds(cache: str) -> float:
    """Seconds for a fresh process to import the kernel and run one simulation, caching in ``cache``."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", COMPILE], env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


READ_ONLY = """
import os, sys
import numba.core.caching as caching
allowed = sys.argv[1]
original = caching._CacheLocator.ensure_cache_path
def only_allowed(self):  # as if every other folder (the package's __pycache__ included) were read-only
    if not self.get_cache_path().startswith(allowed):
        raise PermissionError(self.get_cache_path())
    return original(self)
caching._CacheLocator.ensure_cache_path = only_allowed
import numpy as np
from sim.model.kernel import simulate_counts
from sim.scenario import load_scenario
simulate_counts(load_scenario("scenarios/baseline.yaml"), np.random.SeedSequence(0))
cached = 0
for folder, _, files in os.walk(os.path.dirname(allowed)):
    if folder.startswith(allowed):
        cached += sum(f.endswith(".nbi") for f in files)
print(cached)
"""


def read_only_check() -> None:
    """Run one simulation as if the install were read-only: with a writable home, and with none."""
    fallback = temporary_cache_dir()  # the kernel's last resort
    with tempfile.TemporaryDirectory() as home:
        for label, env, allowed in [("read-only package, writable home", {"HOME": home}, os.path.join(home, ".cache")),
                                    ("read-only package and home", {"HOME": "/nonexistent"}, fallback)]:
            environment = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
            environment.pop("NUMBA_CACHE_DIR", None)
            out = subprocess.run([sys.executable, "-c", READ_ONLY, allowed], env=environment, cwd=ROOT,
                                 capture_output=True, text=True)
            result = f"ran, {out.stdout.split()[-1]} cache files under {allowed}*" if out.returncode == 0 else out.stderr
            print(f"{label}: {result}")


def rate(function, runs: int) -> str:
    """Simulations per second of ``function(runs)``: per wall-clock second, and per CPU second of this process.

    On a shared machine the CPU-second figure is the fairer single-core one
    (time spent waiting for a core is not counted); with two threads it is per
    CPU second of both together.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    function(runs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return f"{runs / wall:9.0f} /s wall {runs / cpu:9.0f} /s CPU"


def seeds(runs: int, offset: int = 0) -> list[np.random.SeedSequence]:
    return [replication_seed(42, r) for r in range(offset, offset + runs)]


def engine_runs(scenario: Scenario, runs: int) -> None:
    counts = scenario.model_copy(update={"engine": "counts"})
    for seed in seeds(runs):
        ModuModel(counts, rng=seed, record_events=False).run()


def history_runs(scenario: Scenario, runs: int) -> None:
    for seed in seeds(runs):
        simulate_counts(scenario, seed)


def _half(args: tuple[Scenario, int, int]) -> int:
    scenario, runs, offset = args
    simulate_batch(scenario, seeds(runs, offset))
    return runs


def two_processes(scenario: Scenario, runs: int) -> str:
    """Simulations per second of the lean batch split over two worker processes (started and warmed up first)."""
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_half, [(scenario, 2, 0), (scenario, 2, 0)]))  # import and load the compiled kernel
        start = time.perf_counter()
        list(pool.map(_half, [(scenario, runs // 2, 0), (scenario, runs - runs // 2, runs // 2)]))
        return f"{runs / (time.perf_counter() - start):9.0f} /s wall"


def speed(label: str, scenario: Scenario, runs: int, engine: int) -> None:
    md = compile_scenario(scenario)
    simulate_batch(md, seeds(2))  # compiled (or loaded) before timing
    simulate_counts(scenario, seeds(1)[0])
    print(f"\n{label}: simulations per second")
    print(f"  ModuModel (counts), stepped, 1 core   {rate(lambda n: engine_runs(scenario, n), engine)}")
    print(f"  kernel, History, 1 core               {rate(lambda n: history_runs(scenario, n), runs)}")
    print(f"  kernel, lean batch, 1 core            {rate(lambda n: simulate_batch(md, seeds(n)), runs)}")
    print(f"  kernel, lean batch, 2 threads         {rate(lambda n: simulate_batch(md, seeds(n), threads=2), runs)}")
    print(f"  kernel, lean batch, 2 processes       {two_processes(scenario, runs)}")


def pairing(scenario: Scenario, changed: Scenario, replications: int) -> pd.DataFrame:
    """Per city, the pairing correlation of the end counts between the two scenarios, per-phase streams vs one stream."""

    def end_counts(run) -> pd.DataFrame:
        rows = [(r, city, firms) for r in range(replications)
                for city, firms in zip([c.name for c in scenario.cities], run(r), strict=True)]
        return pd.DataFrame(rows, columns=["replication", "city", "firms"])

    def engine(sc: Scenario):
        agents = sc.model_copy(update={"engine": "agents"})
        return lambda r: ModuModel(agents, rng=replication_seed(42, r), record_events=False).run().steps[-1].firms.sum(axis=1)

    def kernel(sc: Scenario, per_phase: bool):
        batch = simulate_batch(sc, seeds(replications), per_phase_streams=per_phase)
        return lambda r: batch.final[r]

    return pd.DataFrame({
        "agents engine: child seed per (step, phase)": _pairing(end_counts(engine(changed)), end_counts(engine(scenario))),
        "kernel: one stream per run": _pairing(end_counts(kernel(changed, False)), end_counts(kernel(scenario, False))),
        "kernel: Philox stream per (step, phase)": _pairing(end_counts(kernel(changed, True)),
                                                            end_counts(kernel(scenario, True))),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer simulations")
    parser.add_argument("--skip-compile", action="store_true", help="do not time the cold and warm compilation")
    parser.add_argument("--read-only", action="store_true", help="only check that a read-only install runs and caches")
    args = parser.parse_args()
    if args.read_only:
        read_only_check()
        return
    runs, engine, replications = (400, 20, 100) if args.quick else (4000, 100, 400)

    if not args.skip_compile:
        with tempfile.TemporaryDirectory() as cache:
            cold, warm = compile_seconds(cache), compile_seconds(cache)
        print(f"compile + first simulation in a fresh process: cold cache {cold:.1f} s, warm cache {warm:.1f} s")

    baseline = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    speed("baseline (4 regions, 3 sectors, 28 steps)", baseline, runs, engine)
    speed("china (14 regions, 3 sectors, 28 steps)", load_scenario(ROOT / "scenarios" / "china.yaml"), runs // 4, engine // 2)

    cities = [c.model_copy(update={"policy": c.policy.model_copy(update={"budget": 2 * c.policy.budget})})
              if c.name == "Shanghai" else c for c in baseline.cities]
    changed = baseline.model_copy(update={"cities": cities})
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
        print(f"\npairing correlation of end counts, baseline vs Shanghai's budget doubled ({replications} replications):")
        print(pairing(baseline, changed, replications).to_string())


if __name__ == "__main__":
    main()
