"""The map of cities: country (and US state) outlines, a circle per city whose area is its firms, labels that avoid each other.

The outlines are package data (``geo/outlines.geojson``, public domain, see
``geo/LICENSE.md``; made by ``tools/make_geo_outlines.py``): nothing is downloaded.
:func:`draw_map` draws on any axes; the run's ``map`` figure and the page's
live map both go through it.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse, PathPatch
from matplotlib.path import Path as MplPath
from matplotlib.transforms import Bbox

from sim.reporting.palette import INK

OUTLINES = Path(__file__).with_name("geo") / "outlines.geojson"
"""Simplified Natural Earth country outlines and US Census state outlines (lon/lat degrees)."""

LARGEST_RADIUS = 0.07
"""Radius of the largest city's circle, as a share of the cities' span (a drawing choice)."""

MIN_SPAN = 10.0
"""The map shows at least this many degrees of latitude (north–south), so the coast gives context."""

PAD = 0.15
"""Margin around the circles, as a share of the span."""

SEA, LAND, HOME, EDGE = "#e3eef5", "#f4f2ec", "#e9e3cf", "#8c8c8c"


@functools.cache
def _features() -> tuple[dict, ...]:
    """The shipped outlines' GeoJSON features (read once)."""
    return tuple(json.loads(OUTLINES.read_text())["features"])


@functools.cache
def outlines() -> tuple[tuple[str, str, MplPath], ...]:
    """The shipped outlines as ``(name, kind, path)``; kind is ``country`` or ``state``, the path in lon/lat."""
    shapes = []
    for feature in _features():
        rings = [np.asarray(r, dtype=float) for polygon in feature["geometry"]["coordinates"] for r in polygon]
        vertices = np.vstack(rings)
        codes = np.concatenate([[MplPath.MOVETO] + [MplPath.LINETO] * (len(r) - 1) for r in rings])
        shapes.append((feature["properties"]["name"], feature["properties"]["kind"], MplPath(vertices, codes)))
    return tuple(shapes)


def outlines_in_view(x0: float, x1: float, y0: float, y1: float) -> dict:
    """The shipped outlines that reach into a view (lon ``x0``–``x1``, lat ``y0``–``y1``), clipped to it.

    For a drawing that does not clip to its frame (the page's map in the browser). Returns a GeoJSON
    collection of MultiPolygons (degrees rounded to 0.001), each feature's ``name`` and ``kind`` kept.
    """
    view = Bbox([[x0, y0], [x1, y1]])
    features = []
    for feature, (_, _, path) in zip(_features(), outlines(), strict=True):
        if not path.get_extents().overlaps(view):
            continue
        polygons = []
        for polygon in feature["geometry"]["coordinates"]:
            rings = [MplPath(np.asarray(ring, dtype=float)).clip_to_bbox(view).vertices for ring in polygon]
            if rings and len(rings[0]) >= 4:  # the outer ring reaches into the view (holes kept if they do too)
                polygons.append([np.round(ring, 3).tolist() for ring in rings if len(ring) >= 4])
        if polygons:
            features.append({"type": "Feature", "properties": feature["properties"],
                             "geometry": {"type": "MultiPolygon", "coordinates": polygons}})
    return {"type": "FeatureCollection", "features": features}


def home_countries(lon: np.ndarray, lat: np.ndarray) -> set[str]:
    """Names of the countries that contain at least one of the points (shaded on the map)."""
    points = np.column_stack([lon, lat])
    return {name for name, kind, path in outlines() if kind == "country" and path.contains_points(points).any()}


def _draw_outlines(ax: Axes, lon: np.ndarray, lat: np.ndarray) -> None:
    """Countries in view (those holding a city shaded), and US states as thin lines."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    view = Bbox([[x0, y0], [x1, y1]])
    home = home_countries(lon, lat)
    for name, kind, path in outlines():
        if not path.get_extents().overlaps(view):
            continue
        if kind == "country":
            ax.add_patch(PathPatch(path, facecolor=HOME if name in home else LAND, edgecolor=EDGE,
                                   linewidth=0.7, zorder=1))
        else:
            ax.add_patch(PathPatch(path, facecolor="none", edgecolor="#b5b5b5", linewidth=0.4, zorder=1.5))
    ax.set_facecolor(SEA)


def _nice(value: float) -> float:
    """``value`` rounded down to 1, 2 or 5 times a power of ten."""
    power = 10 ** math.floor(math.log10(value))
    return max(m for m in (1, 2, 5, 10) if m * power <= value) * power


def size_keys(top: float) -> list[float]:
    """The firms the size legend's circles stand for: round numbers near ``top``, a quarter and a sixteenth of it."""
    return sorted({_nice(top), _nice(top / 4), _nice(top / 16)} if top > 0 else set(), reverse=True)


def map_scale(lat: np.ndarray, lon: np.ndarray) -> tuple[float, float]:
    """The map's east–west stretch and its span.

    Returns:
        ``stretch``, degrees of longitude drawn as long as one degree of latitude (1/cos of the
        cities' mean latitude, so distances read alike both ways), and ``span``, the degrees the
        cities spread over (north–south, or east–west shrunk by the stretch; at least 1).
    """
    stretch = 1 / math.cos(math.radians(float(np.mean(lat))))
    return stretch, max(float(np.ptp(lat)), float(np.ptp(lon)) / stretch, 1.0)


def circle_radii(values: np.ndarray, span: float) -> np.ndarray:
    """Circle radii in degrees of latitude, AREA proportional to ``values``; the largest is ``LARGEST_RADIUS * span``."""
    return LARGEST_RADIUS * span * np.sqrt(values / max(float(values.max()), 1e-12))


def map_bounds(lat: np.ndarray, lon: np.ndarray, radii: np.ndarray, ratio: float) -> tuple[float, float, float, float]:
    """The view ``(x0, x1, y0, y1)`` in degrees: every circle with a margin, at least ``MIN_SPAN`` degrees
    north–south, grown (never cut) to the drawing area's shape.

    Args:
        lat: the cities' latitudes (degrees).
        lon: their longitudes (degrees).
        radii: their circles' radii (degrees of latitude).
        ratio: width / height of the drawing area.
    """  # noqa: D205
    stretch, span = map_scale(lat, lon)
    x0, x1 = float(np.min(lon - radii * stretch)), float(np.max(lon + radii * stretch))
    y0, y1 = float(np.min(lat - radii)), float(np.max(lat + radii))
    pad = PAD * span
    y0, y1 = y0 - pad, y1 + pad
    grow = max(MIN_SPAN - (y1 - y0), 0) / 2
    y0, y1 = y0 - grow, y1 + grow
    xpad = pad * stretch + max(MIN_SPAN * 0.8 * stretch - (x1 - x0 + 2 * pad * stretch), 0) / 2
    x0, x1 = x0 - xpad, x1 + xpad
    if (x1 - x0) / stretch / (y1 - y0) < ratio:
        grow = ((y1 - y0) * ratio * stretch - (x1 - x0)) / 2
        x0, x1 = x0 - grow, x1 + grow
    else:
        grow = ((x1 - x0) / stretch / ratio - (y1 - y0)) / 2
        y0, y1 = y0 - grow, y1 + grow
    return x0, x1, y0, y1


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Overlapping area of two boxes ``[x0, y0, x1, y1]`` (display pixels)."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _place_labels(ax: Axes, names: list[str], texts: list[str], centres: np.ndarray,
                  radii: np.ndarray) -> None:
    """Put each label next to its circle where it overlaps the fewest other labels, circles and the frame.

    Greedy, largest city first: candidate positions in eight directions at
    growing distances from the circle; a label set off from its circle gets a
    thin leader line.
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer).extents
    to_px = ax.transData.transform
    centre_px = to_px(centres)
    radius_px = np.abs(to_px(centres + np.column_stack([np.zeros_like(radii), radii]))[:, 1] - centre_px[:, 1])
    circle_boxes = np.column_stack([centre_px - radius_px[:, None], centre_px + radius_px[:, None]])
    directions = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1)]
    placed: list[np.ndarray] = []
    for i in np.argsort(-radii, kind="stable"):
        text = ax.text(0, 0, texts[i], fontsize=8, ha="center", va="center", zorder=4, linespacing=1.1)
        extent = text.get_window_extent(renderer)
        half = np.array([extent.width, extent.height]) / 2 + 2
        best, best_cost = None, math.inf
        for step, gap in enumerate((3, 3 + 1.2 * half[1], 3 + 2.6 * half[1], 3 + 4.2 * half[1])):
            for dx, dy in directions:
                direction = np.array([dx, dy], dtype=float) / math.hypot(dx, dy)
                offset = direction * (radius_px[i] + gap) + np.array([dx, dy]) * half
                centre = centre_px[i] + offset
                box = np.r_[centre - half, centre + half]
                outside = (box[2] - box[0]) * (box[3] - box[1]) - _overlap(box, frame)
                cost = (50 * outside + 20 * sum(_overlap(box, other) for other in placed)
                        + 3 * sum(_overlap(box, c) for j, c in enumerate(circle_boxes) if j != i)
                        + 0.02 * step * half.prod() + 0.001 * abs(dy) * half.prod())
                if cost < best_cost - 1e-9:
                    best, best_cost, best_step = box, cost, step
        centre = (best[:2] + best[2:]) / 2
        text.set_position(ax.transData.inverted().transform(centre))
        placed.append(best)
        if best_step > 0:  # set off from its circle: a leader line from the circle's edge to the label
            edge = ax.transData.inverted().transform(_toward(centre_px[i], radius_px[i], centre))
            anchor = ax.transData.inverted().transform(_nearest_point(best, centre_px[i]))
            ax.plot([edge[0], anchor[0]], [edge[1], anchor[1]], color="0.35", linewidth=0.6, zorder=3)
        text.set_gid(f"label:{names[i]}")


def _toward(centre: np.ndarray, radius: float, target: np.ndarray) -> np.ndarray:
    """The point of a circle (pixels) on the way to ``target``."""
    d = target - centre
    return centre + d / max(np.hypot(*d), 1e-9) * radius


def _nearest_point(box: np.ndarray, point: np.ndarray) -> np.ndarray:
    """The point of a box ``[x0, y0, x1, y1]`` nearest to ``point``."""
    return np.clip(point, box[:2], box[2:])


def draw_map(ax: Axes, firms: Mapping[str, float], coordinates: Mapping[str, tuple[float, float]],
             unit: str = "firms") -> Axes:
    """Cities on a map: outlines around them, a circle per city with AREA proportional to its firms, labelled.

    The view holds every circle with a margin (at least ``MIN_SPAN`` degrees
    north–south); east–west is shrunk by cos(latitude) so distances read alike
    both ways. Labels are placed so they avoid each other, other circles and
    the frame. A size legend sits right of the map; cities without
    coordinates (pools) are named under it with their firms.

    Args:
        ax: where to draw (its figure is drawn once to measure the labels).
        firms: firms per city (any order; cities missing from ``coordinates`` are listed, not drawn).
        coordinates: ``city -> (lat, lon)`` in degrees.
        unit: what the numbers count, for the legend.

    Returns:
        ``ax``.
    """
    placed = [c for c in firms if c in coordinates]
    off_map = [c for c in firms if c not in coordinates]
    if not placed:
        ax.text(0.5, 0.5, "no city has coordinates", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    lat = np.array([coordinates[c][0] for c in placed], dtype=float)
    lon = np.array([coordinates[c][1] for c in placed], dtype=float)
    values = np.array([max(float(firms[c]), 0.0) for c in placed])
    stretch, span = map_scale(lat, lon)
    largest = LARGEST_RADIUS * span
    radii = circle_radii(values, span)
    box = ax.get_position()  # the view takes the axes' shape: no strip, nothing cut
    x0, x1, y0, y1 = map_bounds(lat, lon, radii, box.width * ax.figure.get_figwidth()
                                / (box.height * ax.figure.get_figheight()))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect(stretch, adjustable="box")
    _draw_outlines(ax, lon, lat)
    for city, x, y, r in zip(placed, lon, lat, radii, strict=True):
        ax.add_patch(Ellipse((x, y), 2 * r * stretch, 2 * r, facecolor=INK, alpha=0.55, edgecolor="k",
                             linewidth=0.8, zorder=2, gid=f"city:{city}"))
    ax.scatter(lon, lat, s=4, color="k", zorder=3)
    ax.set(xlabel="longitude (°E)" if lon.mean() >= 0 else "longitude (°, west negative)", ylabel="latitude (°N)")
    ax.tick_params(labelsize=8)
    handles = _size_legend(ax, values, unit, off_map, firms)
    fig = ax.figure
    fig.canvas.draw()  # lay the figure out with its legend, then keep that layout: sizes below are in final pixels
    if fig.get_layout_engine() is not None:
        fig.set_layout_engine("none")
    points_per_degree = ax.get_window_extent().height / np.ptp(ax.get_ylim()) * 72 / fig.dpi
    for handle, key in handles:
        handle.set_markersize(2 * largest * math.sqrt(key / values.max()) * points_per_degree)
    _place_labels(ax, placed, [f"{c}\n{firms[c]:,.0f}" for c in placed], np.column_stack([lon, lat]), radii)
    return ax


def _size_legend(ax: Axes, values: np.ndarray, unit: str, off_map: list[str],
                 firms: Mapping[str, float]) -> list[tuple[Line2D, float]]:
    """A legend of circle sizes right of the map (and the cities not on it).

    Returns:
        The legend's markers with the firms each stands for; their sizes are set
        once the layout is final, so that they match the map's circles.
    """
    top = values.max()
    keys = size_keys(top)
    handles = [Line2D([], [], linestyle="none", marker="o", markerfacecolor=INK, alpha=0.55,
                      markeredgecolor="k", markersize=40 * math.sqrt(key / top), label=f"{key:,.0f}") for key in keys]
    legend = ax.legend(handles=handles, title=f"{unit}\n(circle area)", loc="upper left", bbox_to_anchor=(1.02, 1),
                       frameon=False, fontsize=8, title_fontsize=8, labelspacing=1.6, borderpad=1, handletextpad=1.2)
    if off_map:
        ax.annotate("not on the map:\n" + "\n".join(f"{c}: {firms[c]:,.0f}" for c in off_map),
                    xy=(0, 0), xycoords=legend, xytext=(0, -8), textcoords="offset points", va="top",
                    fontsize=8)
    return list(zip(legend.legend_handles, keys, strict=True))
