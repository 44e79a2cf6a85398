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
   browser runs on their own computer (their pages' other browser work still runs here);
4. (``--floor``) the same two measures on ``benchmarks/floor_page.py``, a Solara page whose Step only
   counts: what the page framework alone costs per click, and how its latency grows with the pages.

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

from browser import chromium, chromium_missing, open_students, press_step_together, run_class, served_app  # noqa: E402

FLOOR_PAGE = ROOT / "benchmarks" / "floor_page.py"

TARGET = 2.0
"""The median latency with many pages open may be at most this many times one page's."""


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (linear between order statistics)."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def run_floor(pages: int, rounds: int) -> tuple[list[float], list[float], float]:
    """Serve :data:`FLOOR_PAGE`; one page presses Step ``rounds`` times, then ``pages`` pages together.

    Returns:
        The latencies in seconds of the page alone and of every page together, and the server's CPU
        seconds per page and step while they pressed together.
    """
    import psutil
    from floor_page import START, STEPS, STEPS_PER_YEAR

    def press(students: list) -> list[float]:
        return [t for step in range(1, rounds + 1)
                for t in press_step_together(students, step, STEPS, f"{START + step / STEPS_PER_YEAR:.2f}")]

    command = ("-m", "solara", "run", str(FLOOR_PAGE), "--production", "--no-open", "--no-check-version")
    with served_app(command=command) as url, chromium() as browser:
        (server,) = [p for p in psutil.Process().children(recursive=True) if str(FLOOR_PAGE) in p.cmdline()]
        one = press(open_students(browser, url, 1))
        students = open_students(browser, url, pages)
        before = sum(server.cpu_times()[:2])
        together = press(students)
        cpu = (sum(server.cpu_times()[:2]) - before) / (pages * rounds)
    return one, together, cpu


def main() -> None:
    """Measure, print, and append to RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="scenarios/baseline.yaml")
    parser.add_argument("--pages", type=int, default=20, help="pages open and pressing Step together")
    parser.add_argument("--rounds", type=int, default=8, help="presses of Step on every page, one step each")
    parser.add_argument("--floor", action="store_true",
                        help="also measure benchmarks/floor_page.py, a Solara page whose Step only counts")
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
        if value != default) + (" --floor" if args.floor else "")

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
        f"{len(result.problems)}, {len(result.server_errors)} | none expected |"]
    if args.floor:
        alone, together, cpu = run_floor(n, args.rounds)
        floor = statistics.median(alone)
        lines += [
            f"| the framework's floor (`--floor`: a Solara page whose Step only counts), one page alone, median of "
            f"{len(alone)} | {floor:.3f} s | |",
            f"| the same, {n} pages together, median of {len(together)} | {statistics.median(together):.3f} s "
            f"(90th percentile {quantile(together, 0.9):.3f} s) | {statistics.median(together) / floor:.1f}× its one page |",
            f"| the same, server CPU per page and step | {1000 * cpu:.1f} ms | Modu's page: {1000 * result.server_cpu:.1f} ms |"]
    lines.append("")
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
