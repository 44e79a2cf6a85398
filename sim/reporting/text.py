"""One formatter for the numbers and markdown tables of every report."""

from __future__ import annotations

import numpy as np
import pandas as pd

MINUS = "−"
"""The typographic minus sign reports print."""


def number(x: float) -> str:
    """A number for tables: 3 significant digits, whole thousands separated for counts, "–" when not finite."""
    if not np.isfinite(x):
        return "–"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def signed(x: float, digits: str = ",.0f") -> str:
    """A difference with its sign (``+1,234``, ``−56``), "–" when not finite."""
    return "–" if not np.isfinite(x) else f"{x:+{digits}}".replace("-", MINUS)


def interval(mean: float, low: float, high: float, digits: str = ",.0f") -> str:
    """``+mean [low, high]`` with signs, the interval left out when not finite."""
    if not np.isfinite(mean):
        return "–"
    text = f"{mean:+{digits}}"
    if np.isfinite(low) and np.isfinite(high):
        text += f" [{low:+{digits}}, {high:+{digits}}]"
    return text.replace("-", MINUS)


def markdown_table(frame: pd.DataFrame, align_numbers: bool = False) -> str:
    """A pipe table of ``frame``; floats through :func:`number`, other cells as text (``|`` escaped).

    Args:
        frame: the rows and columns to show, in order.
        align_numbers: right-align every column but the first.
    """
    cells = [[number(v) if isinstance(v, float | np.floating) else str(v).replace("|", "\\|") for v in row]
             for row in frame.itertuples(index=False)]
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" if i == 0 or not align_numbers else "---:" for i in range(len(frame.columns))) + "|"
    return "\n".join([header, rule, *("| " + " | ".join(row) + " |" for row in cells)]) + "\n"
