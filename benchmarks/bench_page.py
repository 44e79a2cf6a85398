"""A class on the page: latency from pressing Step to the new plots, one page alone and many pages at once.

Run from the repository root (needs the app and browser extras and Debian's Chromium,
``apt-get install chromium``; nothing is downloaded)::

    python benchmarks/bench_page.py                     # 20 pages, 8 presses of Step, baseline
    python benchmarks/bench_page.py --pages 8 --rounds 3 --no-write

It serves ``modu app [SCENARIO]`` on a free local port and drives headless Chromium with
:func:`run_class` of tests/app/browser.py (the browser test's load test runs the same code):

1. one page alone presses Step ``--rounds`` times;
2. ``--pages`` pages, each in its own browser context (a student each), press Step together
   ``--rounds`` times, every page drawn by this machine's browser;
3. ``--pages`` sessions again press together, one drawn here and the others with an ECharts that
   draws nothing: to the server they are the same pages, clicks and messages, but their drawing
   no longer competes for this machine's two cores, as it would not in a class where each student's
   browser runs on their own computer (their pages' other browser work still runs here).

A latency runs from a page's click to the moment its status shows the new step and every chart
has drawn the new year, measured in the page. The CPU that each page and step cost the server and
the browser is measured during part 2.

Prints the figures and appends them to benchmarks/RESULTS.md unless ``--no-write``. Exit
status 1 if a page reported an error, lost a click, or the server logged an error.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "app"))

from browser import chromium_missing, run_class  # noqa: E402

TARGET = 2.0
"""The median latency with many pages open may be at most this many times one page's."""


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (linear between order statistics)."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def main() -> None:
    """Measure, print, and append to RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="scenarios/baseline.yaml")
    parser.add_argument("--pages", type=int, default=20, help="pages open and pressing Step together")
    parser.add_argument("--rounds", type=int, default=8, help="presses of Step on every page, one step each")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    reason = chromium_missing()
    if reason:
        raise SystemExit(f"bench_page: {reason}")
    result = run_class(args.scenario, args.pages, args.rounds)
    one = statistics.median(result.one)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    command = "python benchmarks/bench_page.py" + "".join(
        f" --{name} {value}" for name, value, default in (("pages", args.pages, 20), ("rounds", args.rounds, 8),
                                                          ("scenario", args.scenario, "scenarios/baseline.yaml"))
        if value != default)

    def row(what: str, latencies: list[float]) -> str:
        median = statistics.median(latencies)
        return (f"| {what}, median of {len(latencies)} | {median:.3f} s (90th percentile {quantile(latencies, 0.9):.3f} s, "
                f"max {max(latencies):.3f} s) | {median / one:.1f}× one page (target ≤ {TARGET:g}×) |")

    n = args.pages
    lines = [
        f"## The page, {n} pages pressing Step together ({time.strftime('%Y-%m-%d')}, commit {commit}, "
        f"{os.cpu_count()} cores shared by the server and every browser, load average {result.load:.1f} "
        "before the class)",
        "", f"`{command}` — {args.scenario}, {args.rounds} presses of Step; latency from a click to the page's new "
        "step and every chart drawn with it, measured in the page", "",
        "| what | measured | against |", "|---|---|---|",
        f"| one page alone, median of {len(result.one)} | {one:.3f} s (max {max(result.one):.3f} s) | |",
        row(f"{n} pages together, all drawn in this machine's browser", result.together),
        f"| CPU per page and step while all {n} drew here | server {1000 * result.server_cpu:.1f} ms, "
        f"browser {1000 * result.browser_cpu:.1f} ms | |",
        row(f"{n} pages together, one drawn here and {n - 1} drawn elsewhere (a class: each student's browser on "
            "their own computer)", result.classroom),
        f"| opening the {n} pages (until each shows its charts) | {result.opening:.1f} s | |",
        f"| lost clicks, console warnings or failed requests, server errors | {result.lost}, "
        f"{len(result.problems)}, {len(result.server_errors)} | none expected |", ""]
    text = "\n".join(lines)
    print(text)
    for problem in result.problems[:10] + result.server_errors[:10]:
        print("  ", problem)
    if not args.no_write:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as handle:
            handle.write("\n" + text)
    if not result.ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
