"""The page's chart widget: an ECharts chart in the browser, fed an option by the server (needs the app extra).

ECharts itself is the copy that solara-assets ships (version 5.4.0), served by the page's own
server, so the page needs no network. The browser side is ``chart.vue``.
"""

from __future__ import annotations

from typing import Any

import ipyvuetify
import traitlets


class Chart(ipyvuetify.VuetifyTemplate):
    """One chart of a fixed size: the browser draws ``option`` whenever it changes.

    Attributes:
        option: the ECharts option (plain data, as :mod:`sim.app.charts` makes them).
        maps: GeoJSON collections by name, registered with ECharts before the first drawing.
        width: width in pixels.
        height: height in pixels.
    """

    template_file = (__file__, "chart.vue")

    option = traitlets.Dict().tag(sync=True)
    maps = traitlets.Dict().tag(sync=True)
    width = traitlets.Int(440).tag(sync=True)
    height = traitlets.Int(330).tag(sync=True)


def chart(option: dict[str, Any], size: tuple[int, int], maps: dict[str, Any] | None = None) -> Any:
    """A :class:`Chart` as a Solara element (its widget is kept, and only what changed is sent, across renders)."""
    width, height = size
    return Chart.element(option=option, maps=maps or {}, width=width, height=height)
