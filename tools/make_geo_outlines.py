"""Convert Natural Earth and US Census outlines (TopoJSON from npm packages) to the simplified GeoJSON the map draws.

Run once, by hand, when the outlines should change; the result is package data
(``sim/reporting/geo/outlines.geojson``) so that no figure downloads anything::

    cd /tmp && npm pack world-atlas@2.0.2 us-atlas@3.0.1
    mkdir world us && tar xzf world-atlas-2.0.2.tgz -C world && tar xzf us-atlas-3.0.1.tgz -C us
    python tools/make_geo_outlines.py /tmp/world/package/countries-50m.json /tmp/us/package/states-10m.json

Countries come from Natural Earth's Admin 0 boundaries at 1:50m (world-atlas
2.0.2), US states from the Census Bureau's cartographic boundaries at 1:10m
(us-atlas 3.0.1); both are public domain. Lines are simplified
(Douglas–Peucker, ``TOLERANCE`` degrees), rings smaller than ``MIN_AREA``
square degrees dropped and coordinates rounded to ``DIGITS`` decimals.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "sim" / "reporting" / "geo" / "outlines.geojson"
TOLERANCE = 0.08
"""Simplification tolerance, degrees (about 8 km): finer than a map of a country shows."""
MIN_AREA = 0.05
"""Rings smaller than this many square degrees (small islands) are dropped."""
DIGITS = 2
"""Decimals kept (0.01° ≈ 1 km)."""


def decode_arcs(topology: dict) -> list[np.ndarray]:
    """The topology's arcs as absolute lon/lat arrays (undoing delta encoding and quantisation)."""
    scale, translate = np.array(topology["transform"]["scale"]), np.array(topology["transform"]["translate"])
    return [np.cumsum(np.array(arc, dtype=float), axis=0) * scale + translate for arc in topology["arcs"]]


def ring(arcs: list[np.ndarray], indices: list[int]) -> np.ndarray:
    """A ring stitched from arc indices (a negative index ~i is arc i reversed)."""
    parts = [arcs[i] if i >= 0 else arcs[~i][::-1] for i in indices]
    return np.vstack([parts[0], *(p[1:] for p in parts[1:])])


def simplify(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas–Peucker simplification of a polyline (iterative, keeps both ends)."""
    keep = np.zeros(len(points), dtype=bool)
    keep[[0, -1]] = True
    stack = [(0, len(points) - 1)]
    while stack:
        a, b = stack.pop()
        if b <= a + 1:
            continue
        seg = points[b] - points[a]
        rel = points[a + 1:b] - points[a]
        norm = np.hypot(*seg)
        dist = np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / norm if norm > 0 else np.hypot(rel[:, 0], rel[:, 1])
        i = int(np.argmax(dist))
        if dist[i] > tolerance:
            keep[a + 1 + i] = True
            stack += [(a, a + 1 + i), (a + 1 + i, b)]
    return points[keep]


def area(points: np.ndarray) -> float:
    """Absolute shoelace area of a ring, square degrees."""
    x, y = points[:, 0], points[:, 1]
    return abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


def features(path: Path, name: str, kind: str) -> list[dict]:
    """GeoJSON features (one MultiPolygon each) of a TopoJSON object's geometries."""
    topology = json.loads(path.read_text())
    arcs = decode_arcs(topology)
    out = []
    for geometry in topology["objects"][name]["geometries"]:
        polygons = {"Polygon": [geometry.get("arcs")], "MultiPolygon": geometry.get("arcs")}.get(geometry["type"], [])
        kept = []
        for polygon in polygons:
            rings = [ring(arcs, r) for r in polygon]
            if not rings or area(rings[0]) < MIN_AREA:
                continue
            rings = [simplify(r, TOLERANCE) for r in rings if area(r) >= MIN_AREA]
            kept.append([np.round(r, DIGITS).tolist() for r in rings if len(r) >= 4])
        if kept:
            out.append({"type": "Feature", "properties": {"name": geometry["properties"]["name"], "kind": kind},
                        "geometry": {"type": "MultiPolygon", "coordinates": kept}})
    return out


def main(countries: str, states: str) -> None:
    """Write ``OUT`` from the countries (world-atlas) and states (us-atlas) TopoJSON files."""
    collection = {"type": "FeatureCollection",
                  "features": features(Path(countries), "countries", "country")
                  + features(Path(states), "states", "state")}
    OUT.write_text(json.dumps(collection, separators=(",", ":")))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} kB, {len(collection['features'])} features)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
