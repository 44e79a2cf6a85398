"""The one way the benchmarks publish a table: printed, and appended to benchmarks/RESULTS.md."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
"""Where every benchmark's tables accumulate, newest last."""


def publish(title: str, command: str, rows: Sequence[Sequence[str]], write: bool = True,
            columns: Sequence[str] = ("what", "measured", "against")) -> str:
    """Print a section of RESULTS.md (heading with date, cores and load, the command, a table) and append it.

    Args:
        title: the heading's subject, e.g. ``"Ensembles"`` (the date, cores and load average are added).
        command: how to reproduce it, a line of Markdown.
        rows: the table's rows, one cell per column.
        write: append to RESULTS.md as well as print.
        columns: the table's header.
    """
    load = os.getloadavg()[0]
    lines = [f"## {title} ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, load average {load:.1f} at the end)",
             "", command, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
             *("| " + " | ".join(row) + " |" for row in rows), ""]
    text = "\n".join(lines)
    print(text)
    if write:
        with open(RESULTS, "a", encoding="utf-8") as handle:
            handle.write("\n" + text)
    return text
