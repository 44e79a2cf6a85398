"""Throughput of one sweep on each executor: runs per second of ``modu sweep`` on the baseline.

Run from the repository root (the Dask rows need the dask extra)::

    python benchmarks/bench_executors.py                       # 10 points x 20 replications = 200 runs
    python benchmarks/bench_executors.py --executors serial processes:2 dask:2 --repeats 3

Each sweep runs as its own ``modu sweep`` process into a fresh folder, without
figures. Two rates are reported, both medians over the repeats: *runs/s* over
the compute loop (what the command prints: runs finished / seconds from the
executor's start-up — worker processes or the Dask cluster — to the last
result stored) and *end-to-end runs/s* (runs / wall time of the whole command:
interpreter start, imports, validation, pool or cluster start-up, the store,
writing the tables). The same sweep must give byte-identical ``summary.csv`` on
every executor; the script checks it.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATE = re.compile(r"([\d,]+) run now in ([\d.]+) s")


def sweep_once(executor: str, args: list[str], folder: Path) -> tuple[float, float, bytes]:
    """One sweep: (compute-loop runs/s, end-to-end runs/s, summary.csv bytes)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sim", "sweep", *args, "--out", str(folder), "--executor", executor,
                           "--quiet", "--no-figures"], capture_output=True, text=True, cwd=ROOT, check=True)
    wall = time.perf_counter() - start
    text, seconds = RATE.search(done.stdout).groups()
    runs = int(text.replace(",", ""))  # 10,000
    return runs / float(seconds), runs / wall, (folder / "summary.csv").read_bytes()


def main() -> None:
    """Run the sweeps and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="scenarios/baseline.yaml")
    parser.add_argument("--points", type=int, default=10, help="values of parameters.network_effect in [0.8, 1.4]")
    parser.add_argument("--replications", type=int, default=20)
    parser.add_argument("--executors", nargs="+", default=["serial", "processes:2", "dask:2"])
    parser.add_argument("--repeats", type=int, default=1)
    opts = parser.parse_args()
    values = ",".join(f"{0.8 + 0.6 * i / max(opts.points - 1, 1):.4g}" for i in range(opts.points))
    args = [opts.scenario, "--set", f"parameters.network_effect={values}", "--replications", str(opts.replications)]
    print(f"modu sweep {' '.join(args)}: {opts.points * opts.replications} runs\n")
    print("| executor | runs/s (compute loop) | runs/s (end to end) |\n|---|---:|---:|")
    summaries = set()
    with tempfile.TemporaryDirectory() as tmp:
        for executor in opts.executors:
            loop, whole = [], []
            for repeat in range(opts.repeats):
                a, b, summary = sweep_once(executor, args, Path(tmp) / f"{executor.replace(':', '_')}-{repeat}")
                loop.append(a)
                whole.append(b)
                summaries.add(summary)
            print(f"| {executor} | {statistics.median(loop):.1f} | {statistics.median(whole):.1f} |")
    print(f"\nsummary.csv identical on every executor: {len(summaries) == 1}")


if __name__ == "__main__":
    main()
