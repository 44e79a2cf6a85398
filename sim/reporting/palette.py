"""The colours of every figure, defined once.

A lever, a part of the growth accounting, or a single series has the same colour in every
figure it appears in; no colour means two things.
"""

from __future__ import annotations

LEVER_COLORS = {"compute": "#264653", "data": "#e9c46a", "anchor": "#e76f51"}
"""One colour per policy lever (compute, data, anchor), in every figure that shows levers."""

FLOW_COLORS = {"births": "#2a9d8f", "moves in": "#8ab17d", "deaths": "#b23a48", "moves out": "#f4a261"}
"""One colour per part of the growth accounting, in every figure that shows it."""

INK = "#1f6f8b"
"""A single series that is not a lever, a flow, a city or a scenario: a histogram, a lock-in bar, a map circle."""

INK_LIGHT = "#9ecae1"
"""A second series beside :data:`INK` (e.g. first-order against total Sobol' indices)."""

HIGHLIGHT = "#7b2cbf"
"""What a figure points out: a documented value, a strong correlation."""
