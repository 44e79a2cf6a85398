"""The page's views: live figures of the run (drawn by :mod:`sim.reporting.figures`, as the run's files are) and text panels.

Each view is a Solara element (the app extra), redrawn after every step; with a reference
run, the figures draw it dashed beside the current one.
"""

from __future__ import annotations

import html
from typing import Any

from sim.app.model import AppModel, reference_differences, setting_changes
from sim.model import ModuModel
from sim.model.parameters import LEVERS, Parameters


def history_tables(model: ModuModel) -> dict[str, Any]:
    """The model's history as the tables :mod:`sim.reporting.figures` draws (one replication, number 0)."""
    return {name: getattr(model.history, f"{name}_frame")().assign(replication=0)
            for name in ("firms", "cities", "metrics")}


FIGURE_SIZE = (6.4, 4.2)
"""Size of the page's figures in inches: one grid cell of the page each."""

REFERENCE_STYLE = {"linestyle": "--", "linewidth": 1.4}
"""How the reference run is drawn over the current one."""


def _figure(draw: Any, model: ModuModel, title: str, over_time: bool = True) -> Any:
    """A figure of :mod:`sim.reporting.figures` for the page, retitled for one run, as a Solara element.

    Args:
        draw: a :mod:`sim.reporting.figures` function of the tables, or a function of the tables
            that also draws more on the figure.
        model: the page's model.
        title: the figure's title (the current year is added).
        over_time: the x axis is time; fix it to the scenario's span so the lines grow across it.
    """
    import matplotlib.pyplot as plt
    import solara

    fig = draw(history_tables(model))
    label = f"{title} — {model.year:.2f}"
    if fig.get_suptitle():  # small multiples: the figure's title, not a panel's; they keep their own size
        fig.suptitle(label, fontsize=10)
    else:
        fig.axes[0].set_title(label)
        fig.set_size_inches(*FIGURE_SIZE)
    if over_time:
        for ax in fig.axes:
            ax.set_xlim(model.spec.time.start, model.spec.time.end)
    plt.close(fig)  # keep pyplot's registry empty; the figure itself is still drawable
    return solara.FigureMatplotlib(fig, format="png", bbox_inches="tight")


def _with_reference(draw: Any, lines: Any, reference: AppModel | None, **legend: Any) -> Any:
    """``draw``, then (with a reference run) its dashed ``lines(ax, reference tables, colours)`` and a legend entry.

    ``legend`` holds the keywords of the figure's legend, to redraw it in place with the new entry.
    """
    if reference is None:
        return draw

    def both(tables: dict[str, Any]) -> Any:
        from matplotlib.lines import Line2D

        from sim.reporting.figures import cities_of
        from sim.reporting.style import city_colors

        fig = draw(tables)
        ax = fig.axes[0]
        lines(ax, history_tables(reference), city_colors(cities_of(tables)))
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles + [Line2D([], [], color="0.3", **REFERENCE_STYLE)], labels + ["reference (dashed)"], **legend)
        return fig

    return both


def counts_view(model: ModuModel, reference: AppModel | None = None) -> Any:
    """Live plot: firms per city over time (and the reference run's, dashed)."""
    from sim.reporting.figures import city_totals, plot_counts

    def dashed(ax: Any, tables: dict[str, Any], colors: dict[str, Any]) -> None:
        totals = city_totals(tables["firms"])
        for city, rows in totals.groupby("city", sort=False):
            ax.plot(rows.year, rows.firms, color=colors[city], **REFERENCE_STYLE)

    return _figure(_with_reference(plot_counts, dashed, reference, fontsize=8, ncol=2), model, "Firms per city")


def shares_view(model: ModuModel, reference: AppModel | None = None) -> Any:
    """Live plot: each city's share of all firms over time (and the reference run's band edges, dashed black)."""
    from sim.reporting.figures import city_totals, plot_shares

    def dashed(ax: Any, tables: dict[str, Any], colors: dict[str, Any]) -> None:
        totals = city_totals(tables["firms"]).pivot(index="year", columns="city", values="firms")
        shares = totals[list(colors)].div(totals.sum(axis=1), axis=0)
        for _, edge in shares.cumsum(axis=1).iloc[:, :-1].items():  # the top edge of each band but the last (1)
            ax.plot(edge.index, edge.values, color="k", **REFERENCE_STYLE)

    legend = {"fontsize": 8, "loc": "center left", "bbox_to_anchor": (1, 0.5)}  # as plot_shares places it
    return _figure(_with_reference(plot_shares, dashed, reference, **legend), model, "Shares of firms")


def map_view(model: ModuModel) -> Any:
    """Live map: cities at their coordinates, sized by firms now."""
    from sim.reporting.figures import plot_map

    coordinates = {c.name: (c.lat, c.lon) for c in model.spec.cities if c.lat is not None and c.lon is not None}
    return _figure(lambda tables: plot_map(tables, coordinates, figsize=FIGURE_SIZE), model, "Firms by city",
                   over_time=False)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    """An HTML table of text cells, right-aligned (cells are escaped)."""
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (f"<table style='border-spacing: 14px 2px; text-align: right'>"
            f"<tr>{''.join(f'<th>{html.escape(h)}</th>' for h in head)}</tr>{cells}</table>")


def _symbols() -> str:
    """What the status line's symbols mean, from the parameters' own documentation."""
    fields = Parameters.model_fields
    parts = []
    for name in ("network_effect", "congestion", "network_seed"):
        extra = fields[name].json_schema_extra
        parts.append(f"{extra['symbol']}: {name.replace('_', ' ')} ({extra['unit']}) — {fields[name].description}")
    return "<br>".join(html.escape(part) for part in parts)


def state_view(model: ModuModel) -> Any:
    """Text panel: time, leader, concentration, the parameters in use (explained) and each city's policy."""
    import solara

    last = model.history.metrics_frame().iloc[-1]
    p = model.params
    rows = []
    for city in model.cities:
        capacity = "none" if city.spec.capacity is None else f"{city.spec.capacity:,.0f}"
        rows.append([city.name, f"{city.firms:,}", capacity, f"{city.budget:g}", *(f"{s:.0%}" for s in city.allocation)])
    text = (
        f"<p><b>{model.year:.2f}</b> (step {model.steps} of {model.n_steps}) · leader <b>{html.escape(last.leader)}</b>"
        f" · top-1 share {last.top1_share:.1%} · HHI {last.hhi:.3f}</p>"
        f"<p>In use: α = {p.network_effect:.3g}, γ = {p.congestion:.3g}, κ = {p.network_seed:.3g} firms</p>"
        f"<p style='font-size: 85%'>{_symbols()}</p>"
        + _html_table(["city", "firms", "capacity", "budget", *LEVERS], rows)
        + "<p>Budgets in 100 M yuan a year; lever columns are the allocation shares.<br>"
        "Move the sliders, then press <b>Reset</b> to rebuild the model with them.</p>"
    )
    return solara.HTML(tag="div", unsafe_innerHTML=text)


def comparison_view(model: AppModel, reference: AppModel | None) -> Any:
    """Text panel: how the current run differs from the reference run, in settings and at the current step."""
    import solara

    if reference is None:
        text = ("<p><b>No reference run yet.</b> Press <b>Keep as reference</b> to hold this run; then move a "
                "slider, press <b>Reset</b> and step: the plots draw the reference dashed and this panel lists "
                "the differences.</p>")
        return solara.HTML(tag="div", unsafe_innerHTML=text)
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
    return solara.HTML(tag="div", unsafe_innerHTML=text)
