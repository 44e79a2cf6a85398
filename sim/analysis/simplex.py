"""The 2-simplex: a whole split between three named components, on a grid of exact shares.

Generic: a mix is a point of three non-negative shares summing to 1 (for Modu, a budget
split between compute, data and anchor; any three names work). :func:`simplex_grid` lists
the mixes whose shares are multiples of a resolution, built from integer counts so that
no float drift creeps in; :func:`to_cartesian` places mixes on a triangle, which
:func:`sim.analysis.ternary.ternary_heatmap` draws.

Triangle coordinates: the first component at the lower left corner, the second at the
lower right, the third at the top; a mix ``(a, b, c)`` sits at ``x = b + c / 2``,
``y = c * sqrt(3) / 2``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pandas as pd

__all__ = ["COMPONENTS", "HEIGHT", "simplex_divisions", "simplex_grid", "to_cartesian"]

COMPONENTS = ("a", "b", "c")
"""Default names of the three components, in order (callers name their own: Modu passes its levers)."""

HEIGHT = math.sqrt(3) / 2
"""Height of the triangle of unit side the mixes are drawn on."""


def simplex_divisions(resolution: float | Fraction | str) -> int:
    """Number of steps ``n`` with ``n * resolution == 1``.

    Args:
        resolution: step of each share, e.g. ``0.05``, ``Fraction(1, 3)`` or ``"1/3"``.

    Returns:
        ``n`` (20 for 0.05).

    Raises:
        ValueError: the resolution is not in (0, 1] or does not divide 1.
    """
    try:
        step = Fraction(resolution) if not isinstance(resolution, float) else Fraction(str(resolution))
    except (ValueError, ZeroDivisionError, TypeError, OverflowError) as error:
        raise ValueError(f"simplex: resolution {resolution!r} is not a number") from error
    if not 0 < step <= 1:
        raise ValueError(f"simplex: resolution {resolution!r} leaves no grid point (it must be in (0, 1])")
    steps = 1 / step
    if steps.denominator != 1:
        # floats such as 1/3 written as 0.3333333333333333: accept when within rounding of 1/n
        n = round(float(steps))
        if not (isinstance(resolution, float) and n > 0 and abs(n * resolution - 1) < 1e-9):
            raise ValueError(f"simplex: resolution {resolution!r} does not divide 1 (1/resolution = {float(steps):.6g})")
        return n
    return int(steps)


def simplex_grid(resolution: float | Fraction | str = 0.05, names: Sequence[str] = COMPONENTS,
                 exact: bool = False) -> pd.DataFrame:
    """Every mix whose shares are multiples of ``resolution``.

    The shares are built as integer counts ``(i, j, n - i - j) / n``: each float is the
    correctly rounded value of that fraction, and with ``exact=True`` the shares are
    :class:`fractions.Fraction` objects that sum to exactly 1.

    Args:
        resolution: step of each share (0.05 gives 231 mixes).
        names: the three components' names (the columns).
        exact: return Fractions (object columns) instead of floats.

    Returns:
        A DataFrame with one column per component (shares of the whole), ordered by the
        first share, then the second, descending.

    Raises:
        ValueError: the resolution leaves no grid point or does not divide 1.
    """
    names = _names(names)
    n = simplex_divisions(resolution)
    counts = [(i, j, n - i - j) for i in range(n, -1, -1) for j in range(n - i, -1, -1)]
    if exact:
        rows = [tuple(Fraction(c, n) for c in row) for row in counts]
        return pd.DataFrame(rows, columns=names, dtype=object)
    return pd.DataFrame(np.array(counts, dtype=float) / n, columns=names)


def _names(names: Sequence[str]) -> list[str]:
    names = [str(n) for n in names]
    if len(names) != 3 or len(set(names)) != 3:
        raise ValueError(f"simplex: need three distinct component names, got {names}")
    return names


def to_cartesian(points: pd.DataFrame | np.ndarray | Sequence[Sequence[float]],
                 names: Sequence[str] | None = None) -> np.ndarray:
    """Triangle-plot coordinates ``(x, y)`` of mixes, one row per mix.

    Args:
        points: rows of three shares; a DataFrame's columns are taken in the order ``names``
            (default: its first three columns).
        names: the components' columns of a DataFrame.

    Rows are normalised to sum to 1 first.
    """
    if isinstance(points, pd.DataFrame):
        points = points[_names(names) if names is not None else list(points.columns[:3])]
    p = np.atleast_2d(np.asarray(points, dtype=float))
    if p.shape[1] != 3 or (p < -1e-12).any():
        raise ValueError("simplex: points must be rows of three non-negative shares")
    p = p / p.sum(axis=1, keepdims=True)
    return np.column_stack([p[:, 1] + p[:, 2] / 2, p[:, 2] * HEIGHT])
