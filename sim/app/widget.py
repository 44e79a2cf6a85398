"""The page's views as one widget: ECharts charts and text panels in the browser, fed by the server (needs the app extra).

ECharts itself is the copy that solara-assets ships (version 5.4.0), served by the page's own
server, so the page needs no network. The browser side is ``dashboard.vue``.
"""

from __future__ import annotations

import json
from typing import Any

import ipyvuetify
import traitlets


class Dashboard(ipyvuetify.VuetifyTemplate):
    """Rows of charts of fixed sizes and text panels; the browser redraws whatever the new rows change.

    One widget for all the views, so a step costs the server one message to the browser, not one per view.
    The rows and the maps travel as JSON text: the page's framework (Reacton) walks every list and dict it
    is given in search of elements, which for a chart's thousands of numbers and a map's outlines cost more
    than the step itself; a string it passes as it is.

    Attributes:
        rows: the panels row by row, as JSON: a list of rows, each a list of panels, a panel either a chart
            ``{"option": ECharts option, "width": pixels, "height": pixels}`` or a text ``{"html": text}``.
        maps: GeoJSON collections by name, as JSON, registered with ECharts before the first drawing.
    """

    template_file = (__file__, "dashboard.vue")

    rows = traitlets.Unicode("[]").tag(sync=True)
    maps = traitlets.Unicode("{}").tag(sync=True)


def dashboard(rows: list[list[dict[str, Any]]], maps: str = "{}") -> Any:
    """A :class:`Dashboard` as a Solara element (its widget is kept across renders; only what changed is sent).

    Args:
        rows: the panels row by row (see :attr:`Dashboard.rows`).
        maps: the maps' JSON (:attr:`sim.app.charts.Setting.maps`), the same text at every step, so sent once.
    """
    return Dashboard.element(rows=json.dumps(rows, separators=(",", ":")), maps=maps)
