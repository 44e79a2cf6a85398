"""The 2-simplex of lever allocations: a budget split between compute, data and anchor.

A mix is a point ``(compute, data, anchor)`` of non-negative shares summing to 1.
:func:`simplex_grid` lists the mixes whose shares are multiples of a resolution, built
from integer counts so that no float drift creeps in; :func:`ternary_heatmap` draws a
value per mix on a triangle (each grid point's hexagonal cell coloured by its value),
marks the best and the current mix, and hatches the mixes statistically
indistinguishable from the best.

Triangle coordinates: compute at the lower left corner, data at the lower right, anchor
at the top; a mix sits at ``x = data + anchor / 2``, ``y = anchor * sqrt(3) / 2``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.patches import Polygon

__all__ = ["LEVERS", "simplex_divisions", "simplex_grid", "ternary_heatmap", "to_cartesian"]

LEVERS = ("compute", "data", "anchor")
"""Names of the three components, in order."""

_HEIGHT = math.sqrt(3) / 2


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


def simplex_grid(resolution: float | Fraction | str = 0.05, exact: bool = False) -> pd.DataFrame:
    """Every mix whose shares are multiples of ``resolution``.

    The shares are built as integer counts ``(i, j, n - i - j) / n``: each float is the
    correctly rounded value of that fraction, and with ``exact=True`` the shares are
    :class:`fractions.Fraction` objects that sum to exactly 1.

    Args:
        resolution: step of each share (0.05 gives 231 mixes).
        exact: return Fractions (object columns) instead of floats.

    Returns:
        A DataFrame with columns ``compute``, ``data``, ``anchor`` (shares of the budget),
        ordered by compute share, then data share, descending.

    Raises:
        ValueError: the resolution leaves no grid point or does not divide 1.
    """
    n = simplex_divisions(resolution)
    counts = [(i, j, n - i - j) for i in range(n, -1, -1) for j in range(n - i, -1, -1)]
    if exact:
        rows = [tuple(Fraction(c, n) for c in row) for row in counts]
        return pd.DataFrame(rows, columns=list(LEVERS), dtype=object)
    return pd.DataFrame(np.array(counts, dtype=float) / n, columns=list(LEVERS))


def to_cartesian(points: pd.DataFrame | np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Triangle-plot coordinates ``(x, y)`` of mixes ``(compute, data, anchor)``, one row per mix.

    Rows are normalised to sum to 1 first.
    """
    p = np.asarray(points[list(LEVERS)] if isinstance(points, pd.DataFrame) else points, dtype=float)
    p = np.atleast_2d(p)
    if p.shape[1] != 3 or (p < -1e-12).any():
        raise ValueError("simplex: points must be rows of three non-negative shares (compute, data, anchor)")
    p = p / p.sum(axis=1, keepdims=True)
    return np.column_stack([p[:, 1] + p[:, 2] / 2, p[:, 2] * _HEIGHT])


def _spacing(xy: np.ndarray) -> float:
    """Smallest distance between two distinct points (the lattice step), 1 if fewer than two."""
    if len(xy) < 2:
        return 1.0
    from scipy.spatial import cKDTree

    distances, _ = cKDTree(xy).query(xy, k=2)
    step = distances[:, 1]
    step = step[step > 1e-12]
    return float(step.min()) if step.size else 1.0


def _hexagons(xy: np.ndarray, step: float) -> np.ndarray:
    """Hexagonal cells (Voronoi cells of the triangular lattice of the given step) around each point."""
    radius = step / math.sqrt(3)
    angles = np.deg2rad(np.arange(30, 390, 60))
    offsets = np.column_stack([np.cos(angles), np.sin(angles)]) * radius
    return xy[:, None, :] + offsets[None, :, :]


def _outline(hexagons: np.ndarray) -> list[np.ndarray]:
    """Edges of a union of hexagons that belong to one hexagon only (the region's boundary)."""
    counts: dict[tuple, int] = {}
    segments: dict[tuple, np.ndarray] = {}
    for hexagon in hexagons:
        for a, b in zip(hexagon, np.roll(hexagon, -1, axis=0), strict=True):
            key = tuple(sorted([tuple(np.round(a, 9)), tuple(np.round(b, 9))]))
            counts[key] = counts.get(key, 0) + 1
            segments[key] = np.array([a, b])
    return [segments[key] for key, count in counts.items() if count == 1]


def ternary_heatmap(
    points: pd.DataFrame | np.ndarray,
    values: Sequence[float] | np.ndarray,
    ax: plt.Axes | None = None,
    best: Sequence[float] | None = None,
    current: Sequence[float] | None = None,
    indistinguishable: Sequence[bool] | np.ndarray | None = None,
    label: str = "value",
    cmap: str = "viridis",
) -> plt.Axes:
    """Heat map of one value per lever mix on the compute/data/anchor triangle.

    Args:
        points: mixes, rows of ``(compute, data, anchor)`` (e.g. from :func:`simplex_grid`).
        values: the value at each mix (e.g. mean national firms), same length as ``points``;
            NaN cells are drawn blank.
        ax: axes to draw on (a new figure if None).
        best: the best mix, marked with a star (None: not marked).
        current: the current mix, marked with a diamond (None: not marked).
        indistinguishable: per mix, True if statistically indistinguishable from the best;
            those cells are hatched and outlined.
        label: colour-bar label (name and units of ``values``).
        cmap: matplotlib colour map.

    Returns:
        The Axes (nothing is saved).
    """
    xy = to_cartesian(points)
    vals = np.asarray(values, dtype=float)
    if vals.shape != (len(xy),):
        raise ValueError(f"simplex: {len(vals)} values for {len(xy)} points")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 5.6))
    step = _spacing(xy)
    triangle = Polygon([(0, 0), (1, 0), (0.5, _HEIGHT)], closed=True, facecolor="none", edgecolor="k", lw=1.2, zorder=4)
    ax.add_patch(triangle)
    cells = PolyCollection(_hexagons(xy, step), array=np.ma.masked_invalid(vals), cmap=cmap, edgecolor="face",
                           linewidth=0.3, zorder=1)
    ax.add_collection(cells)
    cells.set_clip_path(triangle)
    bar = ax.figure.colorbar(cells, ax=ax, shrink=0.8, pad=0.02)
    bar.set_label(label)
    handles = []
    if indistinguishable is not None:
        mask = np.asarray(indistinguishable, dtype=bool)
        if mask.shape != (len(xy),):
            raise ValueError(f"simplex: {len(mask)} indistinguishable flags for {len(xy)} points")
        if mask.any():
            hexagons = _hexagons(xy[mask], step)
            hatch = PolyCollection(hexagons, facecolor="none", edgecolor="k", hatch="///", linewidth=0.0, zorder=2)
            ax.add_collection(hatch)
            hatch.set_clip_path(triangle)
            outline = LineCollection(_outline(hexagons), colors="k", linewidths=1.6, zorder=3)
            ax.add_collection(outline)
            outline.set_clip_path(triangle)
            handles.append(Polygon([(0, 0)], facecolor="none", edgecolor="k", hatch="///",
                                   label="indistinguishable from best"))
    if best is not None:
        bx, by = to_cartesian([best])[0]
        handles.append(ax.scatter([bx], [by], marker="*", s=320, color="gold", edgecolor="k", linewidth=1.0, zorder=6,
                                  label="best mix"))
    if current is not None:
        cx, cy = to_cartesian([current])[0]
        handles.append(ax.scatter([cx], [cy], marker="D", s=90, color="white", edgecolor="k", linewidth=1.3, zorder=6,
                                  label="current mix"))
    # corner labels and edge ticks (share of each lever, 0.2 steps)
    ax.text(-0.03, -0.03, "compute", ha="right", va="top", fontsize=11, fontweight="bold")
    ax.text(1.03, -0.03, "data", ha="left", va="top", fontsize=11, fontweight="bold")
    ax.text(0.5, _HEIGHT + 0.04, "anchor", ha="center", va="bottom", fontsize=11, fontweight="bold")
    for share in (0.2, 0.4, 0.6, 0.8):
        # data share along the bottom edge, anchor share along the right edge, compute share along the left edge
        ax.text(share, -0.035, f"{share:.1f}", ha="center", va="top", fontsize=7, color="0.35")
        x, y = to_cartesian([(0, 1 - share, share)])[0]
        ax.text(x + 0.025, y, f"{share:.1f}", ha="left", va="center", fontsize=7, color="0.35")
        x, y = to_cartesian([(share, 0, 1 - share)])[0]
        ax.text(x - 0.025, y, f"{share:.1f}", ha="right", va="center", fontsize=7, color="0.35")
    ax.text(0.5, -0.09, "data share", ha="center", va="top", fontsize=8, color="0.35")
    ax.text(0.86, 0.47, "anchor share", ha="center", va="center", fontsize=8, color="0.35", rotation=-60)
    ax.text(0.14, 0.47, "compute share", ha="center", va="center", fontsize=8, color="0.35", rotation=60)
    if handles:
        ax.legend(handles=handles, loc="upper left", fontsize=8, frameon=False, bbox_to_anchor=(-0.05, 1.02))
    ax.set_xlim(-0.12, 1.12)
    ax.set_ylim(-0.14, _HEIGHT + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax
