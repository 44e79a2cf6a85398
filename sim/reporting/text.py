"""One number style for every report, table, console line and figure.

- Numbers: thousands separated from 1,000 up (``18,480``), three significant digits below
  (``193``, ``0.597``, ``0.0000123``), never scientific notation, the typographic minus
  sign (``−56``), "–" for a missing value (:func:`number`).
- Shares and probabilities as percentages (:func:`percent`).
- Each kind of interval has one name, used in every report (:func:`interval_name`,
  :func:`percentile_name`): a *confidence interval* is Student t over independent runs of a
  mean; a *percentile range* is where the middle of the runs' outcomes fall (it does not
  shrink with more runs); *credible* and *predictive* intervals are posterior quantiles.
- Intervals in tables as ``value [low, high]`` under a header that names them
  (:func:`estimate`), in prose as ``low to high`` (:func:`span`).
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from sim.scenario import Scenario
from sim.scenario.paths import parse_path

MINUS = "−"
"""The typographic minus sign reports print."""

DIGITS = 3
"""Significant digits of numbers below 1,000."""

INTERVALS = {
    "confidence": "confidence interval",
    "bootstrap": "bootstrap confidence interval",
    "credible": "credible interval",
    "predictive": "predictive interval",
}
"""The kinds of interval a report may name (see :func:`interval_name`)."""


def _finite(x: object) -> bool:
    try:
        return math.isfinite(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def number(x: float, digits: int = DIGITS) -> str:
    """A number: thousands separated from 1,000 up, ``digits`` significant digits below, "–" when not finite.

    Never scientific notation: ``17390.4`` → ``17,390``; ``192.8`` → ``193``; ``0.5`` → ``0.5``;
    ``-1.2e-05`` → ``−0.000012``.
    """
    if not _finite(x):
        return "–"
    x = float(x)
    if abs(x) >= 1000:
        text = f"{x:,.0f}"
    elif x == 0:
        text = "0"
    else:
        decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
        text = f"{x:,.{decimals}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text.replace("-", MINUS)


def count(x: float) -> str:
    """A number of firms (or a mean of one): whole from 10 up (``57``, ``18,480``), :func:`number` below."""
    return number(round(float(x))) if _finite(x) and abs(float(x)) >= 10 else number(x)


def fixed(x: float, decimals: int = 2) -> str:
    """A number to a fixed number of decimals (a correlation ``−0.69``, a ratio ``0.67``), "–" when not finite."""
    if not _finite(x):
        return "–"
    text = f"{float(x):,.{decimals}f}"
    return text.lstrip("-") if float(text.replace(",", "")) == 0 else text.replace("-", MINUS)


def signed(x: float, format: Callable[[float], str] = number) -> str:  # noqa: A002
    """A difference with its sign (``+1,234``, ``−56``, ``0``), "–" when not finite."""
    text = format(x)
    return f"+{text}" if _finite(x) and text not in ("0", "–") and float(x) > 0 else text


P_FLOOR = 0.0001
"""p-values below this are printed as ``< 0.0001``: their digits say nothing more."""


def p_value(p: float) -> str:
    """A p-value: two significant digits, ``< 0.0001`` below :data:`P_FLOOR`, "–" when not finite."""
    return "–" if not _finite(p) else (f"< {P_FLOOR:g}" if float(p) < P_FLOOR else number(p, 2))


def percent(x: float, decimals: int = 0) -> str:
    """A share or probability as a percentage (``0.274`` → ``27%``), "–" when not finite."""
    if not _finite(x):
        return "–"
    text = f"{float(x):.{decimals}%}"
    return f"{0:.{decimals}%}" if float(text.rstrip("%")) == 0 else text.replace("-", MINUS)


def span(low: float, high: float, format: Callable[[float], str] = number) -> str:  # noqa: A002
    """An interval in prose: ``9,791 to 24,980`` (each end through ``format``), "–" when an end is not finite."""
    if not (_finite(low) and _finite(high)):
        return "–"
    return f"{format(low)} to {format(high)}"


def estimate(value: float, low: float, high: float, format: Callable[[float], str] = number) -> str:  # noqa: A002
    """``value [low, high]`` for a table cell whose header names the interval.

    The brackets are left out when an end is not finite.
    """
    text = format(value)
    if _finite(value) and _finite(low) and _finite(high):
        text += f" [{format(low)}, {format(high)}]"
    return text


def interval(mean: float, low: float, high: float, format: Callable[[float], str] = count) -> str:  # noqa: A002
    """A paired difference (by default of firms) with its interval, signs shown: ``+1,234 [+56, +2,410]``."""
    return estimate(mean, low, high, lambda x: signed(x, format))


def interval_name(kind: str, level: float) -> str:
    """The one name of an interval: ``95% confidence interval``, ``90% credible interval``, ...

    Args:
        kind: ``confidence`` (Student t of a mean over runs), ``bootstrap`` (a bootstrap confidence
            interval), ``credible`` (posterior quantiles of a parameter) or ``predictive`` (quantiles of
            the posterior predictive distribution of an output); see :data:`INTERVALS`.
        level: its coverage, e.g. 0.95.
    """
    return f"{level:.0%} {INTERVALS[kind]}"


def _ordinal(p: float) -> str:
    value = f"{100 * p:g}"
    suffix = "th" if value.endswith(("11", "12", "13")) else {"1": "st", "2": "nd", "3": "rd"}.get(value[-1], "th")
    return value + suffix


def percentile_name(band: tuple[float, float], over: str | None = "replications") -> str:
    """``5th–95th percentile of replications``: where the middle of the runs' outcomes fall.

    Not an interval of a mean: it does not narrow with more runs. Percentiles stay within the
    values the runs take, so a range of counts never goes below zero.
    """
    return f"{_ordinal(band[0])}–{_ordinal(band[1])} percentile" + (f" of {over}" if over else "")


def tick(x: float, step: float) -> str:
    """A tick label of an axis whose ticks are ``step`` apart: separators, as many decimals as the step needs."""
    if not _finite(x):
        return ""
    decimals = next((d for d in range(12) if abs(round(step, d) - step) <= 1e-9 * abs(step)), 12) if step > 0 else 0
    text = f"{x:,.{decimals}f}"
    return ("0" if float(x) == 0 or text.strip("-0.,") == "" else text).replace("-", MINUS)


def percent_tick(x: float, step: float) -> str:
    """A tick label of a share axis in percent (``x`` and ``step`` as shares: 0.25 → ``25%``)."""
    return tick(100 * x, 100 * step) + "%" if _finite(x) else ""


def path_unit(path: str) -> str:
    """The unit (or, lacking one, the meaning) of a scenario field from the schema, "" when it says nothing.

    ``parameters.network_effect`` → ``utility per log-firm``; ``cities.Shenzhen.policy.budget`` → ``annual
    policy budget, 100 M yuan``.
    """
    node: Any = Scenario
    field, matched = None, False
    try:
        tokens = parse_path(path)
    except ValueError:
        return ""
    for token in tokens:
        fields = getattr(node, "model_fields", None) or {}
        matched = token in fields  # else a city's name or a list index
        if matched:
            field = fields[token]
            node = next((a for a in (field.annotation, *typing.get_args(field.annotation))
                         if isinstance(a, type) and issubclass(a, BaseModel)), None)
    if not matched or field is None:
        return ""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return str(extra.get("unit") or field.description or "")


def path_label(path: str) -> str:
    """A scenario field's path with its unit: ``cities.Shenzhen.policy.budget (annual policy budget, 100 M yuan)``."""
    unit = path_unit(path)
    return f"{path} ({unit})" if unit else path


def markdown_table(frame: pd.DataFrame, align_numbers: bool = False, plain: tuple[str, ...] = ("year",)) -> str:
    """A pipe table of ``frame``; numbers through :func:`number`, other cells as text (``|`` escaped).

    Args:
        frame: the rows and columns to show, in order.
        align_numbers: right-align every column but the first.
        plain: columns whose whole numbers are labels, printed as they are (years: ``2023``, not ``2,023``).
    """
    def cell(column: str, v: object) -> str:
        if v is None or isinstance(v, bool | np.bool_):
            return "–" if v is None else ("yes" if v else "no")
        if isinstance(v, int | np.integer) and column in plain:
            return str(v)
        if isinstance(v, float | np.floating | int | np.integer):
            return number(v)
        return str(v).replace("|", "\\|")

    columns = [str(c) for c in frame.columns]
    cells = [[cell(c, v) for c, v in zip(columns, row, strict=True)] for row in frame.itertuples(index=False)]
    header = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" if i == 0 or not align_numbers else "---:" for i in range(len(columns))) + "|"
    return "\n".join([header, rule, *("| " + " | ".join(row) + " |" for row in cells)]) + "\n"
