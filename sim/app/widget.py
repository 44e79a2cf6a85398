"""The page's chart widget: an ECharts chart in the browser, fed an option by the server (needs the app extra).

ECharts itself is the copy that solara-assets ships (version 5.4.0), served by the page's own
server, so the page needs no network. The browser side is ``chart.vue``.
"""

from __future__ import annotations

import json
from typing import Any

import ipyvuetify
import traitlets


class Chart(ipyvuetify.VuetifyTemplate):
    """One chart of a fixed size: the browser draws ``option`` whenever it changes.

    The option and the maps travel as JSON text: the page's framework (Reacton) walks every list and
    dict it is given in search of elements, which for a chart's thousands of numbers and a map's
    outlines cost more than the step itself; a string it passes as it is.

    Attributes:
        option: the ECharts option as JSON (plain data, as :mod:`sim.app.charts` makes them).
        maps: GeoJSON collections by name, as JSON, registered with ECharts before the first drawing.
        width: width in pixels.
        height: height in pixels.
    """

    template_file = (__file__, "chart.vue")

    option = traitlets.Unicode("{}").tag(sync=True)
    maps = traitlets.Unicode("{}").tag(sync=True)
    width = traitlets.Int(440).tag(sync=True)
    height = traitlets.Int(330).tag(sync=True)


def chart(option: dict[str, Any], size: tuple[int, int], maps: str = "{}") -> Any:
    """A :class:`Chart` as a Solara element (its widget is kept, and only what changed is sent, across renders).

    Args:
        option: the ECharts option.
        size: width and height in pixels.
        maps: the maps' JSON (:attr:`sim.app.charts.Setting.maps`), the same text at every step, so sent once.
    """
    width, height = size
    return Chart.element(option=json.dumps(option, separators=(",", ":")), maps=maps, width=width, height=height)
