"""Start-up time of the command line: ``modu --help`` and ``modu validate`` on the baseline, whole process.

Run: ``python benchmarks/bench_startup.py [--repeat N]``. Prints the minimum,
median and maximum wall time of each command over N runs (default 10); the
target is under 0.3 s for both.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS = {
    "modu --help": [sys.executable, "-m", "sim", "--help"],
    "modu validate scenarios/baseline.yaml": [sys.executable, "-m", "sim", "validate", str(ROOT / "scenarios" / "baseline.yaml")],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    print(f"{'command':<40} {'min s':>7} {'median s':>9} {'max s':>7}")
    for name, command in COMMANDS.items():
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        print(f"{name:<40} {min(times):7.3f} {statistics.median(times):9.3f} {max(times):7.3f}")


if __name__ == "__main__":
    main()
