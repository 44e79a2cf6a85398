"""The page's charts as ECharts options: plain data (numbers, names, colours) that the browser draws.

After a step the page sends each chart's option, a few kilobytes, and ECharts draws it in the
browser (the copy solara-assets ships, served by the page's own server: no network). The server
draws no picture, so many open pages cost it little more than one.

The charts follow the run's figures (:mod:`sim.reporting.figures`, :mod:`sim.reporting.maps`) and
share their rules: one panel of lines up to ``MAX_LINES`` cities, small multiples up to
``MAX_PANELS``, the ``MAX_LINES`` largest in colour beyond; a log axis when the largest city has
more than ``LOG_SPREAD`` times the firms of the smallest; documented counts as dots; the cities'
colours; the map's outlines, view, circle areas and size legend. Years run on a time axis (ECharts
prints a plain number axis with thousands separators, 2,024). Nothing here needs the app extra.
"""

from __future__ import annotations

import functools
import json
import math
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from matplotlib.colors import to_hex

from sim.inference.data import documented_counts
from sim.model import ModuModel
from sim.reporting import maps
from sim.reporting.figures import counts_layout, leaders, wide_spread
from sim.reporting.palette import INK
from sim.reporting.style import city_colors
from sim.scenario import Scenario

WIDTH, HEIGHT = 440, 330
"""Size of a chart in pixels: two side by side beside the sidebar on a 1400-pixel screen (small multiples
and the leaders' legend take more)."""

PANEL_WIDTH, PANEL_HEIGHT, PANEL_COLUMNS = 210, 150, 4
"""Size of one panel of the small multiples in pixels, and panels per row."""

MAP_NAME = "modu"
"""The name the map's outlines are registered under in the browser."""

MAP_BOX = {"left": 8, "top": 36, "right": 118, "bottom": 8}
"""Where the map sits in its chart (pixels from each edge); the size legend takes the right margin."""

GREY, OTHERS_GREY = "#d1d1d1", "#cccccc"
"""The other cities behind a small multiple's city, and the leaders view's grey (matplotlib's 0.82 and 0.8)."""

CIRCLE = to_hex(INK) + "8c"
"""A city's circle on the map: ink at 55% opacity, as on the run's map (the label stays opaque)."""

REFERENCE = "reference (dashed)"
"""The legend entry of the reference run's lines."""

_DASHED = {"type": "dashed", "width": 1.4}
_YEAR_AXIS = {"type": "time", "minInterval": 365 * 86_400_000,
              "axisLabel": {"formatter": "{yyyy}", "showMinLabel": True, "showMaxLabel": True}}
_VALUE_NAME = {"nameLocation": "middle", "nameGap": 58}
_BASE = {"animation": False, "useUTC": True, "textStyle": {"fontFamily": "sans-serif"}}


def epoch_ms(years: np.ndarray | float) -> np.ndarray:
    """Model years (2024.25 = a quarter into 2024) as milliseconds since 1970 (UTC), the time axis' unit."""
    years = np.asarray(years, dtype=float)
    return np.vectorize(_year_ms, otypes=[float])(years) if years.ndim else np.asarray(_year_ms(float(years)))


@functools.lru_cache(maxsize=4096)
def _year_ms(year: float) -> float:
    """One model year in ms since 1970 (cached: a page asks for the same steps' times at every step)."""
    whole = math.floor(year)
    begin, end = (datetime(y, 1, 1, tzinfo=UTC).timestamp() * 1000 for y in (whole, whole + 1))
    return round(begin + (year - whole) * (end - begin))


@dataclass(frozen=True)
class Run:
    """A run's firms per city (sectors summed) at each step so far.

    Attributes:
        cities: the cities, in the scenario's order.
        time: each step's time, ms since 1970 (:func:`epoch_ms`).
        firms: ``[step, city]`` firms.
    """

    cities: tuple[str, ...]
    time: np.ndarray
    firms: np.ndarray

    @classmethod
    def of(cls, model: ModuModel) -> Run:
        """The model's run so far (made once per model and step: the page's charts share it)."""
        steps = model.history.steps
        made = _RUNS.get(model)
        if made is None or len(made.time) != len(steps):
            made = _RUNS[model] = cls(tuple(model.history.cities), epoch_ms([r.year for r in steps]),
                                      np.stack([r.firms.sum(axis=1) for r in steps]))
        return made

    def points(self, column: np.ndarray, log: bool = False) -> list[list[float | None]]:
        """``[[time, value], ...]`` for a line; on a log axis a value ≤ 0 is a gap (``None``)."""
        values = [None if log and v <= 0 else v for v in column.tolist()]
        return [[t, v] for t, v in zip(self.time.tolist(), values, strict=True)]

    def shares(self) -> np.ndarray:
        """``[step, city]`` share of all firms, in percent (0 where a step has no firm)."""
        total = self.firms.sum(axis=1, keepdims=True)
        return np.round(100 * self.firms / np.where(total > 0, total, 1), 2)


_RUNS: weakref.WeakKeyDictionary[ModuModel, Run] = weakref.WeakKeyDictionary()
"""The last :class:`Run` made of each live model."""


@dataclass(frozen=True)
class Setting:
    """What the charts of one scenario's page share at every step: colours, documented counts, the map's frame.

    The map's view holds every city's circle at its largest, so it stays put while the circles grow.
    """

    cities: tuple[str, ...]
    colors: dict[str, str]
    span: tuple[float, float]
    documented: dict[str, list[list[float]]]
    coordinates: dict[str, tuple[float, float]]
    bounds: tuple[float, float, float, float] | None
    stretch: float
    largest_px: float
    outlines: dict[str, Any]
    home: frozenset[str]

    @functools.cached_property
    def maps(self) -> str:
        """The map's outlines as the JSON the chart registers (``{MAP_NAME: GeoJSON}``), made once."""
        return json.dumps({MAP_NAME: self.outlines}, separators=(",", ":"))

    @classmethod
    def of(cls, scenario: Scenario) -> Setting:
        """The setting of a scenario's charts, made once per cities, coordinates and span (the sliders change none)."""
        key = (tuple((c.name, c.lat, c.lon) for c in scenario.cities), scenario.time.start, scenario.time.end)
        if key not in _SETTINGS:
            _SETTINGS[key] = _setting(scenario)
        return _SETTINGS[key]


_SETTINGS: dict[tuple, Setting] = {}
"""The settings made so far, by cities, coordinates and span: one per scenario a page shows."""


def _setting(scenario: Scenario) -> Setting:
    """A scenario's chart setting (see :meth:`Setting.of`)."""
    cities = tuple(c.name for c in scenario.cities)
    documented: dict[str, list[list[float]]] = {}
    for row in documented_counts(scenario).itertuples():
        documented.setdefault(row.city, []).append([float(epoch_ms(row.year)), float(row.firms)])
    coordinates = {c.name: (c.lat, c.lon) for c in scenario.cities if c.lat is not None and c.lon is not None}
    bounds, stretch, largest_px, outlines, home = None, 1.0, 0.0, {"type": "FeatureCollection", "features": []}, set()
    if coordinates:
        lat, lon = (np.array([coordinates[c][i] for c in coordinates]) for i in (0, 1))
        stretch, span = maps.map_scale(lat, lon)
        width = WIDTH - MAP_BOX["left"] - MAP_BOX["right"]
        height = HEIGHT - MAP_BOX["top"] - MAP_BOX["bottom"]
        bounds = maps.map_bounds(lat, lon, np.full(len(lat), maps.LARGEST_RADIUS * span), width / height)
        largest_px = maps.LARGEST_RADIUS * span * height / (bounds[3] - bounds[2])
        outlines = maps.outlines_in_view(*bounds)
        home = maps.home_countries(lon, lat)
    return Setting(cities, {c: to_hex(rgba) for c, rgba in city_colors(list(cities)).items()},
                   (float(epoch_ms(scenario.time.start)), float(epoch_ms(scenario.time.end))), documented,
                   coordinates, bounds, stretch, largest_px, outlines, frozenset(home))


def _legend_rows(names: list[str], width: int) -> int:
    """Lines a horizontal legend of these names takes in a chart ``width`` pixels wide (about 7 px a character)."""
    used, rows = 0.0, 1
    for name in names:
        item = 40 + 7 * len(name)
        if used + item > width - 20 and used:
            rows, used = rows + 1, 0.0
        used += item
    return rows


def _title(text: str, **extra: Any) -> dict[str, Any]:
    return {"text": text, "left": "center", "textStyle": {"fontSize": 14, "lineHeight": 18},
            "subtextStyle": {"fontSize": 11, "lineHeight": 14}, "itemGap": 2, **extra}


def _year_axis(setting: Setting, **extra: Any) -> dict[str, Any]:
    return {**_YEAR_AXIS, "min": setting.span[0], "max": setting.span[1], **extra}


def _line(name: str, points: list, color: str, **extra: Any) -> dict[str, Any]:
    """A line without markers, but for a line of one point (step 0), which would otherwise not show."""
    return {"name": name, "type": "line", "data": points, "color": color, "showSymbol": len(points) == 1,
            "symbolSize": 5, "z": 2, **extra}


def _dots(name: str, points: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Documented counts: dots in their city's colour with a black edge; the legend's dot is white."""
    return {"name": name, "type": "scatter", "data": points, "symbolSize": 8, "z": 5,
            "itemStyle": {"color": "#ffffff", "borderColor": "#000000", "borderWidth": 1}, **extra}


def counts_chart(run: Run, setting: Setting, year: float, reference: Run | None = None) -> tuple[dict, tuple[int, int]]:
    """Firms per city over time, the reference run dashed and documented counts as dots.

    Laid out as the run's counts figure: one panel of lines up to ``MAX_LINES`` cities (a log
    axis when the largest has more than ``LOG_SPREAD`` times the smallest now), small multiples up
    to ``MAX_PANELS`` (each city in ink over the others in grey, a shared log axis), the
    ``MAX_LINES`` largest in colour over the rest in grey beyond.

    Args:
        run: the current run so far.
        setting: the scenario's chart setting.
        year: the current model year (in the title).
        reference: the whole reference run, if one is kept.

    Returns:
        The ECharts option and the chart's size in pixels ``(width, height)``.
    """
    layout = counts_layout(len(run.cities))
    if layout == "panels":
        return _counts_panels(run, setting, year, reference)
    now = dict(zip(run.cities, run.firms[-1].tolist(), strict=True))
    shown = list(run.cities) if layout == "lines" else leaders(now)
    log = layout == "leaders" or wide_spread(list(now.values()))
    colors = setting.colors if layout == "lines" else {c: to_hex(rgba) for c, rgba in city_colors(shown).items()}
    series = []
    if layout == "leaders":
        others = [c for c in run.cities if c not in shown]
        series += [_line(f"the other {len(others)} cities", run.points(run.firms[:, run.cities.index(c)], log),
                         OTHERS_GREY, lineStyle={"width": 0.7}, z=1) for c in others]
    series += [_line(c, run.points(run.firms[:, run.cities.index(c)], log), colors[c], lineStyle={"width": 2})
               for c in shown]
    if reference is not None:
        series += [_line(REFERENCE, reference.points(reference.firms[:, reference.cities.index(c)], log), colors[c],
                         lineStyle=_DASHED) for c in shown]
    dots = [{"value": point, "itemStyle": {"color": colors[c]}} for c in shown for point in setting.documented.get(c, [])]
    if dots:
        series.append(_dots("documented", dots))
    legend = [*(s["name"] for s in series if s["type"] == "line" and s["name"] != REFERENCE)]
    legend = list(dict.fromkeys(legend)) + (["documented"] if dots else [])
    if reference is not None:
        legend.append({"name": REFERENCE, "itemStyle": {"color": "#4d4d4d"},
                       "lineStyle": {"color": "#4d4d4d", "type": "dashed"}})
    wide = layout == "leaders"
    rows = 1 if wide else _legend_rows([item if isinstance(item, str) else item["name"] for item in legend], WIDTH)
    option = {
        **_BASE,
        "title": _title(f"Firms per city — {year:.2f}",
                        **({"subtext": f"the {len(shown)} largest now in colour"} if wide else {})),
        "tooltip": {"trigger": "axis"},
        "legend": ({"data": legend, "type": "scroll", "orient": "vertical", "right": 4, "top": "middle"} if wide
                   else {"data": legend, "top": 26, "itemGap": 8}),
        "grid": {"left": 78, "right": 190 if wide else 20, "top": 80 if wide else 44 + 22 * rows, "bottom": 44},
        "xAxis": _year_axis(setting, name="year", nameLocation="middle", nameGap=26),
        "yAxis": {"type": "log" if log else "value", "name": "AI firms" + (" (log scale)" if log else ""),
                  **_VALUE_NAME},
        "series": series,
    }
    return option, (WIDTH + (150 if wide else 0), HEIGHT)


def _counts_panels(run: Run, setting: Setting, year: float, reference: Run | None) -> tuple[dict, tuple[int, int]]:
    """Small multiples: each city in ink over every other city in grey, on one shared log axis."""
    n = len(run.cities)
    rows = -(-n // PANEL_COLUMNS)
    top, left = 64, 64
    positive = [v for v in run.firms.ravel().tolist() + ([] if reference is None else reference.firms.ravel().tolist())
                + [p[1] for points in setting.documented.values() for p in points] if v > 0]
    low = 10 ** math.floor(math.log10(min(positive, default=1)))
    high = 10 ** math.ceil(math.log10(max(positive, default=10)))
    titles, grids, xs, ys, series = [], [], [], [], []
    for i, city in enumerate(run.cities):
        row, col = divmod(i, PANEL_COLUMNS)
        x, y = left + col * PANEL_WIDTH, top + row * PANEL_HEIGHT
        titles.append({"text": f"{city}: {run.firms[-1, i]:,.0f}", "left": x + (PANEL_WIDTH - 30) / 2, "top": y - 18,
                       "textAlign": "center", "textStyle": {"fontSize": 11, "fontWeight": "normal"}})
        grids.append({"left": x, "top": y + 4, "width": PANEL_WIDTH - 30, "height": PANEL_HEIGHT - 44})
        bottom_row = i + PANEL_COLUMNS >= n
        xs.append(_year_axis(setting, gridIndex=i, axisLabel={**_YEAR_AXIS["axisLabel"], "show": bottom_row,
                                                               "fontSize": 9}))
        ys.append({"type": "log", "gridIndex": i, "min": low, "max": high, "axisLabel": {"show": col == 0, "fontSize": 9},
                   **({"name": "AI firms (log)", "nameTextStyle": {"fontSize": 9}, "nameLocation": "middle",
                       "nameGap": 46} if col == 0 else {})})
        axes = {"xAxisIndex": i, "yAxisIndex": i}
        series += [_line(other, run.points(run.firms[:, j], log=True), GREY, lineStyle={"width": 0.8}, silent=True, z=1,
                         **axes) for j, other in enumerate(run.cities) if j != i]
        series.append(_line(city, run.points(run.firms[:, i], log=True), INK, lineStyle={"width": 2}, **axes))
        if reference is not None:
            series.append(_line(REFERENCE, reference.points(reference.firms[:, i], log=True), INK, lineStyle=_DASHED,
                                **axes))
        if city in setting.documented:
            series.append(_dots("documented", [{"value": p, "itemStyle": {"color": INK}} for p in setting.documented[city]],
                                symbolSize=6, **axes))
    notes = "grey: the other cities" + ("; dots: documented" if setting.documented else "") + (
        "; dashed: the reference run" if reference is not None else "")
    option = {**_BASE, "title": [_title(f"Firms per city — {year:.2f}", subtext=notes), *titles],
              "grid": grids, "xAxis": xs, "yAxis": ys, "series": series}
    return option, (left + PANEL_COLUMNS * PANEL_WIDTH, top + rows * PANEL_HEIGHT + 10)


def shares_chart(run: Run, setting: Setting, year: float, reference: Run | None = None) -> dict:
    """Each city's share of all firms over time, stacked; the reference run's band edges dashed black.

    Beyond ``MAX_PANELS`` cities the ``MAX_LINES`` largest now are stacked and the rest summed as
    "other cities", as in the run's shares figure.
    """
    shares, names, colors = run.shares(), list(run.cities), dict(setting.colors)
    ref = reference.shares() if reference is not None else None
    if counts_layout(len(names)) == "leaders":
        kept = leaders(dict(zip(names, shares[-1].tolist(), strict=True)))
        index = [names.index(c) for c in kept]

        def fold(table: np.ndarray) -> np.ndarray:
            return np.column_stack([table[:, index], table.sum(axis=1) - table[:, index].sum(axis=1)])

        shares, ref = fold(shares), None if ref is None else fold(ref)
        names = [*kept, "other cities"]
        colors = {**{c: to_hex(rgba) for c, rgba in city_colors(kept).items()}, "other cities": OTHERS_GREY}
    series = [_line(c, run.points(shares[:, i]), colors[c], stack="shares", areaStyle={"opacity": 0.85},
                    lineStyle={"width": 0}) for i, c in enumerate(names)]
    if ref is not None:
        edges = np.round(np.cumsum(ref, axis=1)[:, :-1], 2)  # the top of each band but the last (100%)
        series += [_line(REFERENCE, reference.points(edges[:, i]), "#000000", lineStyle=_DASHED)
                   for i in range(edges.shape[1])]
    legend = [{"name": c, "icon": "rect"} for c in names] + ([REFERENCE] if ref is not None else [])
    return {**_BASE, "title": _title(f"Shares of firms — {year:.2f}"), "tooltip": {"trigger": "axis"},
            "legend": {"data": legend, "type": "scroll", "orient": "vertical", "right": 2, "top": "middle",
                       "itemWidth": 14, "itemGap": 6, "textStyle": {"fontSize": 11}},
            "grid": {"left": 64, "right": 140, "top": 40, "bottom": 44},
            "xAxis": _year_axis(setting, name="year", nameLocation="middle", nameGap=26),
            "yAxis": {"type": "value", "min": 0, "max": 100, "name": "share of all firms",
                      "axisLabel": {"formatter": "{value}%"}, **_VALUE_NAME, "nameGap": 42},
            "series": series}


def map_chart(run: Run, setting: Setting, year: float) -> dict:
    """Cities on the map (outlines from :mod:`sim.reporting.maps`), circle AREA proportional to firms now.

    The view, the shaded home countries, the largest circle's size (``LARGEST_RADIUS`` of the
    cities' span) and the size legend's round numbers are the run map's; labels are moved
    apart by ECharts. Cities without coordinates (pools) are listed under the legend.
    """
    firms = dict(zip(run.cities, run.firms[-1].tolist(), strict=True))
    title = _title(f"Firms by city — {year:.2f}")
    if setting.bounds is None:
        return {**_BASE, "title": [title, {"text": "no city has coordinates", "left": "center", "top": "middle"}]}
    placed = [c for c in run.cities if c in setting.coordinates]
    top = max(max(firms[c] for c in placed), 1e-12)

    def radius(value: float) -> float:
        return setting.largest_px * math.sqrt(max(value, 0) / top)

    data = [{"name": c, "value": [setting.coordinates[c][1], setting.coordinates[c][0], firms[c]],
             "symbolSize": round(2 * radius(firms[c]), 1), "label": {"formatter": f"{c}\n{firms[c]:,.0f}"}}
            for c in placed]
    x0, x1, y0, y1 = setting.bounds
    regions = [{"name": f["properties"]["name"], "itemStyle": {"areaColor": "rgba(0,0,0,0)", "borderColor": "#b5b5b5",
                                                                "borderWidth": 0.4}}
               for f in setting.outlines["features"] if f["properties"]["kind"] == "state"]
    regions += [{"name": name, "itemStyle": {"areaColor": maps.HOME}} for name in sorted(setting.home)]
    return {**_BASE, "backgroundColor": "#ffffff", "title": title,
            "geo": {"map": MAP_NAME, "boundingCoords": [[x0, y1], [x1, y0]], "aspectScale": 1 / setting.stretch,
                    **MAP_BOX, "silent": True, "regions": regions,
                    "itemStyle": {"areaColor": maps.LAND, "borderColor": maps.EDGE, "borderWidth": 0.7}},
            "series": [{"type": "scatter", "coordinateSystem": "geo", "data": data, "z": 3,
                        "itemStyle": {"color": CIRCLE, "borderColor": "#000000", "borderWidth": 0.8},
                        "label": {"show": True, "position": "right", "distance": 4, "fontSize": 11,
                                  "color": "#000000", "lineHeight": 13},
                        "labelLayout": {"moveOverlap": "shiftY"}}],
            "graphic": _map_legend(top, radius, [c for c in run.cities if c not in setting.coordinates], firms)}


def _map_legend(top: float, radius: Any, off_map: list[str], firms: dict[str, float]) -> list[dict[str, Any]]:
    """The map's size legend in its right margin: a circle per round number (:func:`maps.size_keys`), then the
    cities not on the map with their firms; sea behind the map's box.
    """  # noqa: D205
    box = MAP_BOX
    x = WIDTH - box["right"] + 16
    sea = {"type": "rect", "z": -10, "silent": True, "shape": {
        "x": box["left"], "y": box["top"], "width": WIDTH - box["left"] - box["right"],
        "height": HEIGHT - box["top"] - box["bottom"]}, "style": {"fill": maps.SEA}}
    text = {"fontSize": 11, "lineHeight": 14, "fill": "#000000"}
    items: list[dict[str, Any]] = [sea, {"type": "text", "x": x, "y": box["top"], "silent": True,
                                         "style": {**text, "text": "firms\n(circle area)"}}]
    keys = maps.size_keys(top)
    widest = max((radius(k) for k in keys), default=0)
    y = box["top"] + 40
    for key in keys:
        r = radius(key)
        items += [{"type": "circle", "silent": True, "shape": {"cx": x + widest, "cy": y + r, "r": r},
                   "style": {"fill": CIRCLE, "stroke": "#000000", "lineWidth": 0.8}},
                  {"type": "text", "x": x + 2 * widest + 8, "y": y + r - 6, "silent": True,
                   "style": {**text, "text": f"{key:,.0f}"}}]
        y += 2 * r + 12
    if off_map:
        listed = "not on the map:\n" + "\n".join(f"{c}:\n  {firms[c]:,.0f}" for c in off_map)
        items.append({"type": "text", "x": x, "y": y + 8, "silent": True, "style": {**text, "text": listed}})
    return items
