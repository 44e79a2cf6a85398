"""Ternary heat maps: one value per mix of three components, drawn on the triangle of :mod:`sim.analysis.simplex`.

Generic drawing (matplotlib): each grid point's hexagonal cell coloured by its value,
the best and the current mix marked, and the mixes statistically indistinguishable from
the best hatched. The corners and edges are labelled with the components' names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.patches import Polygon

from sim.analysis.simplex import COMPONENTS, HEIGHT, to_cartesian

__all__ = ["ternary_heatmap"]


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
    names: Sequence[str] | None = None,
) -> plt.Axes:
    """Heat map of one value per mix on the triangle of three components.

    Args:
        points: mixes, rows of three shares (e.g. from :func:`sim.analysis.simplex.simplex_grid`).
        values: the value at each mix (e.g. mean national firms), same length as ``points``;
            NaN cells are drawn blank.
        ax: axes to draw on (a new figure if None).
        best: the best mix, marked with a star (None: not marked).
        current: the current mix, marked with a diamond (None: not marked).
        indistinguishable: per mix, True if statistically indistinguishable from the best;
            those cells are hatched and outlined.
        label: colour-bar label (name and units of ``values``).
        cmap: matplotlib colour map.
        names: the components' names, labelling the corners and edges (default: a DataFrame's first
            three columns, else :data:`sim.analysis.simplex.COMPONENTS`).

    Returns:
        The Axes (nothing is saved).
    """
    if names is None:
        names = list(points.columns[:3]) if isinstance(points, pd.DataFrame) else COMPONENTS
    first, second, third = names
    xy = to_cartesian(points, names)
    vals = np.asarray(values, dtype=float)
    if vals.shape != (len(xy),):
        raise ValueError(f"ternary: {len(vals)} values for {len(xy)} points")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 5.6))
    step = _spacing(xy)
    triangle = Polygon([(0, 0), (1, 0), (0.5, HEIGHT)], closed=True, facecolor="none", edgecolor="k", lw=1.2, zorder=4)
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
            raise ValueError(f"ternary: {len(mask)} indistinguishable flags for {len(xy)} points")
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
    # corner labels and edge ticks (share of each component, 0.2 steps)
    ax.text(-0.03, -0.03, first, ha="right", va="top", fontsize=11, fontweight="bold")
    ax.text(1.03, -0.03, second, ha="left", va="top", fontsize=11, fontweight="bold")
    ax.text(0.5, HEIGHT + 0.04, third, ha="center", va="bottom", fontsize=11, fontweight="bold")
    for share in (0.2, 0.4, 0.6, 0.8):
        # the second's share along the bottom edge, the third's along the right edge, the first's along the left
        ax.text(share, -0.035, f"{share:.1f}", ha="center", va="top", fontsize=7, color="0.35")
        x, y = to_cartesian([(0, 1 - share, share)])[0]
        ax.text(x + 0.025, y, f"{share:.1f}", ha="left", va="center", fontsize=7, color="0.35")
        x, y = to_cartesian([(share, 0, 1 - share)])[0]
        ax.text(x - 0.025, y, f"{share:.1f}", ha="right", va="center", fontsize=7, color="0.35")
    ax.text(0.5, -0.09, f"{second} share", ha="center", va="top", fontsize=8, color="0.35")
    ax.text(0.86, 0.47, f"{third} share", ha="center", va="center", fontsize=8, color="0.35", rotation=-60)
    ax.text(0.14, 0.47, f"{first} share", ha="center", va="center", fontsize=8, color="0.35", rotation=60)
    if handles:
        ax.legend(handles=handles, loc="upper left", fontsize=8, frameon=False, bbox_to_anchor=(-0.05, 1.02))
    ax.set_xlim(-0.12, 1.12)
    ax.set_ylim(-0.14, HEIGHT + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax
