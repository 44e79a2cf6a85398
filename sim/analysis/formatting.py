"""How the generic analyses write numbers in their sentences and figures (box limits, quasi-p-values)."""

from __future__ import annotations

import math

__all__ = ["number_text", "p_value_text"]


def number_text(value: float) -> str:
    """A number as Modu's reports print them: thousands separated from 1,000 up, three significant digits below,
    never scientific notation (the same style as ``sim.reporting.text.number``, which this leaf does not import)."""  # noqa: D205, D209
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    text = f"{value:.3g}"
    if "e" not in text:
        return text
    fixed = f"{value:.{max(0, 2 - math.floor(math.log10(abs(value))))}f}"
    return fixed.rstrip("0").rstrip(".") if "." in fixed else fixed


def p_value_text(value: float) -> str:
    """A quasi-p-value as the reports print p-values: ``< 0.0001`` below it, two significant digits above."""
    return "< 0.0001" if value < 1e-4 else number_text(float(f"{value:.2g}"))
