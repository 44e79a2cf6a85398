"""The page's views: live charts of the run, drawn in the browser (:mod:`sim.app.charts`), and text panels.

Each view is a panel, plain data: a chart's ECharts option and size, or a text's HTML.
:func:`views` lays them out in one widget (:mod:`sim.app.widget`), rebuilt after every step
from the model's records: a step sends the browser its new numbers, in one message, not a
picture. With a reference run, the charts draw it dashed beside the current one.
"""

from __future__ import annotations

import functools
import html
from typing import Any

from sim.app.charts import HEIGHT, WIDTH, Run, Setting, counts_chart, map_chart, shares_chart
from sim.app.model import AppModel, reference_differences, setting_changes
from sim.model import ModuModel
from sim.model.parameters import LEVERS, Parameters

Panel = dict[str, Any]
"""A chart ``{"option": ECharts option, "width": px, "height": px}`` or a text ``{"html": text}``."""


def _chart(option: dict[str, Any], size: tuple[int, int]) -> Panel:
    width, height = size
    return {"option": option, "width": width, "height": height}


def counts_view(model: ModuModel, reference: AppModel | None = None) -> Panel:
    """Live chart: firms per city over time (the reference run's dashed, documented counts as dots)."""
    option, size = counts_chart(Run.of(model), Setting.of(model.spec), model.year,
                                None if reference is None else Run.of(reference))
    return _chart(option, size)


def shares_view(model: ModuModel, reference: AppModel | None = None) -> Panel:
    """Live chart: each city's share of all firms over time (and the reference run's band edges, dashed black)."""
    option = shares_chart(Run.of(model), Setting.of(model.spec), model.year, None if reference is None else Run.of(reference))
    return _chart(option, (WIDTH, HEIGHT))


def map_view(model: ModuModel) -> Panel:
    """Live map: cities at their coordinates, sized by firms now (its outlines are :attr:`Setting.maps`)."""
    return _chart(map_chart(Run.of(model), Setting.of(model.spec), model.year), (WIDTH, HEIGHT))


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    """An HTML table of text cells, right-aligned (cells are escaped)."""
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (f"<table style='border-spacing: 14px 2px; text-align: right'>"
            f"<tr>{''.join(f'<th>{html.escape(h)}</th>' for h in head)}</tr>{cells}</table>")


@functools.cache
def _symbols() -> str:
    """What the status line's symbols mean, from the parameters' own documentation."""
    fields = Parameters.model_fields
    parts = []
    for name in ("network_effect", "congestion", "network_seed"):
        extra = fields[name].json_schema_extra
        parts.append(f"{extra['symbol']}: {name.replace('_', ' ')} ({extra['unit']}) — {fields[name].description}")
    return "<br>".join(html.escape(part) for part in parts)


def state_view(model: ModuModel) -> Panel:
    """Text panel: time, leader, concentration, the parameters in use (explained) and each city's policy."""
    last = model.history.latest()
    p = model.params
    rows = []
    for city in model.cities:
        capacity = "none" if city.spec.capacity is None else f"{city.spec.capacity:,.0f}"
        rows.append([city.name, f"{city.firms:,}", capacity, f"{city.budget:g}", *(f"{s:.0%}" for s in city.allocation)])
    text = (
        f"<p><b>{model.year:.2f}</b> (step {model.steps} of {model.n_steps}) · leader <b>{html.escape(last['leader'])}</b>"
        f" · top-1 share {last['top1_share']:.1%} · HHI {last['hhi']:.3f}</p>"
        f"<p>In use: α = {p.network_effect:.3g}, γ = {p.congestion:.3g}, κ = {p.network_seed:.3g} firms</p>"
        f"<p style='font-size: 85%'>{_symbols()}</p>"
        + _html_table(["city", "firms", "capacity", "budget", *LEVERS], rows)
        + "<p>Budgets in 100 M yuan a year; lever columns are the allocation shares.<br>"
        "Move the sliders, then press <b>Reset</b> to rebuild the model with them.</p>"
    )
    return {"html": text}


def comparison_view(model: AppModel, reference: AppModel | None) -> Panel:
    """Text panel: how the current run differs from the reference run, in settings and at the current step."""
    if reference is None:
        text = ("<p><b>No reference run yet.</b> Press <b>Keep as reference</b> to hold this run; then move a "
                "slider, press <b>Reset</b> and step: the charts draw the reference dashed and this panel lists "
                "the differences.</p>")
        return {"html": text}
    changes = setting_changes(reference, model)
    settings = ("; ".join(f"{label}: {before:.4g} → {after:.4g}" for label, before, after in changes)
                or "none (the same settings: the same run)")
    table = reference_differences(reference, model)
    rows = [[city, f"{row.firms:,.0f}", f"{row['reference firms']:,.0f}", f"{row.difference:+,.0f}",
             f"{row.share:.1%}", f"{row['reference share']:.1%}", f"{100 * row['share difference']:+.1f}"]
            for city, row in table.iterrows()]
    text = (f"<p><b>This run against the reference</b> at step {model.steps} ({model.year:.2f})</p>"
            f"<p>Settings changed since the reference: {html.escape(settings)}</p>"
            + _html_table(["city", "firms", "reference", "difference", "share", "reference", "difference, points"], rows))
    return {"html": text}


def views(model: AppModel, reference: AppModel | None = None) -> Any:
    """The page's views of a model as one Solara element (one widget), row by row.

    The counts and shares; the comparison with the reference; the map and the state. A narrow window wraps
    a row's panels.
    """
    from sim.app.widget import dashboard

    rows = [[counts_view(model, reference), shares_view(model, reference)], [comparison_view(model, reference)],
            [map_view(model), state_view(model)]]
    return dashboard(rows, Setting.of(model.spec).maps)
