"""Wall time of ``modu optimise`` on scenarios/china.yaml (Hefei, counts engine).

The full setting is 231 mixes (resolution 0.05) × 20 posterior draws × 5 replications
(23,300 runs with the current mix and the no-spending reference); run it with::

    python benchmarks/bench_policy.py                                  # the full setting
    python benchmarks/bench_policy.py --resolution 0.25 --draws 2 --replications 2 --executor serial

Each setting runs as its own ``modu optimise`` process into a fresh folder, without
figures; the script prints the runs, the wall time of the whole command and the
seconds per run, and extrapolates linearly to the full setting.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FULL_RUNS = (231 + 2) * 20 * 5  # grid, the current mix (off the grid), no spending
RUNS = re.compile(r"([\d,]+) runs; [\d,]+ already stored, ([\d,]+) run now in ([\d.]+) s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", default="0.05")
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--replications", type=int, default=5)
    parser.add_argument("--executor", default="processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "sim", "optimise", "scenarios/china.yaml", "Hefei",
                               "--resolution", args.resolution, "--draws", str(args.draws), "--replications",
                               str(args.replications), "--executor", args.executor, "--out", str(Path(tmp) / "out"),
                               "--quiet", "--no-figures"], capture_output=True, text=True, cwd=ROOT, check=True)
        wall = time.perf_counter() - start
    runs, _, compute = RUNS.search(done.stdout).groups()
    runs = int(runs.replace(",", ""))
    per_run = float(compute) / runs
    print(f"modu optimise china Hefei --resolution {args.resolution} --draws {args.draws} "
          f"--replications {args.replications} --executor {args.executor}")
    print(f"  {runs:,} runs: {wall:.1f} s wall ({compute} s computing, {1000 * per_run:.1f} ms per run)")
    print(f"  extrapolated to 231 mixes × 20 draws × 5 replications ({FULL_RUNS:,} runs): "
          f"{FULL_RUNS * per_run / 60:.1f} min of computing at this rate")


if __name__ == "__main__":
    main()
