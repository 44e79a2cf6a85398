"""The style of every figure: one number format on the axes, value axes from 0 (or marked broken), a page's width,
and saving as PNG and SVG with stable bytes.

Every figure of every command is saved by :func:`save_figure`: tick labels in the reports' number style
(:func:`number_ticks`), at most a page wide (:data:`MAX_WIDTH_PX`), no timestamps in the files. Importing
this module selects matplotlib's files-only backend (Agg) unless a notebook's inline backend is in use.
"""  # noqa: D205

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib
import matplotlib.collections
import matplotlib.layout_engine
import matplotlib.ticker

if "inline" not in matplotlib.get_backend():  # a notebook keeps its inline backend and shows the figures
    matplotlib.use("Agg")  # elsewhere files only: no GUI window, no display needed

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sim.model.metrics import BAND  # noqa: E402
from sim.reporting.files import atomic_write, run_in_two  # noqa: E402
from sim.reporting.text import percent_tick, percentile_name, tick  # noqa: E402

# ---------------------------------------------------------------- one style for every figure

DPI = 120
"""Resolution of every PNG (dots per inch)."""

MAX_WIDTH_PX = 2000
"""Widest PNG written: a page at :data:`DPI`. Figures are laid out to fit (wrapping panels into rows);
:func:`save_figure` lowers the resolution of any that would not."""

PAGE_WIDTH = MAX_WIDTH_PX / DPI - 0.5
"""Widest figure to lay out, inches (a margin left for the cropping pad)."""

MIN_FILL = 0.25
"""A value axis starts at 0 unless the data would then fill less than this share of it: such an axis keeps
the data's range and is marked as broken (:func:`value_axis`)."""

BREAK_GID = "axis-break"
"""The ``gid`` of the marks drawn on an axis that does not start at 0."""

BAND_NAME = percentile_name(BAND)
"""The name of every band over replications in figures and reports."""


class NumberFormatter(matplotlib.ticker.Formatter):
    """Tick labels in the reports' number style (:func:`sim.reporting.text.tick`).

    Thousands separators, no offset or scientific notation, as many decimals as the tick spacing needs.
    """

    step = 1.0

    def set_locs(self, locs: list[float]) -> None:  # noqa: D102
        spacing = np.diff(np.sort(np.asarray(locs, dtype=float)))
        self.step = float(spacing.min()) if len(spacing) else 1.0

    def __call__(self, x: float, pos: int | None = None) -> str:  # noqa: D102
        return tick(x, self.step)


class PercentFormatter(NumberFormatter):
    """Tick labels of a share or probability as percentages (``25%``)."""

    def __call__(self, x: float, pos: int | None = None) -> str:  # noqa: D102
        return percent_tick(x, self.step)


def number_ticks(fig: plt.Figure) -> None:
    """Give every linear axis of ``fig`` still on matplotlib's default formatter the reports' number style."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "linear" and type(axis.get_major_formatter()) is matplotlib.ticker.ScalarFormatter:
                axis.set_major_formatter(NumberFormatter())


def year_axis(ax: plt.Axes) -> None:
    """Label the x axis ``year`` with plain digits (2023, not 2,023); axes that share it follow."""
    ax.xaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:.0f}"))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("year", fontsize=ax.xaxis.label.get_fontsize())


def share_axis(ax: plt.Axes, axis: str = "y") -> None:
    """Label a share or probability axis in percent."""
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter())


def value_axis(ax: plt.Axes, axis: str = "y", broken: bool = True) -> None:
    """Start a value axis at 0, or mark it as broken.

    From 0 a difference reads at its true size. Where the data would then fill less than
    :data:`MIN_FILL` of the axis (e.g. a concentration index moving between 0.34 and 0.38) and
    ``broken`` allows it, the axis keeps the data's range instead and is marked: two slanted
    strokes at its foot (``gid`` :data:`BREAK_GID`) and "axis does not start at 0" in its label.
    """
    get, set_ = (ax.get_ylim, ax.set_ylim) if axis == "y" else (ax.get_xlim, ax.set_xlim)
    low, high = get()
    if low <= 0 <= high:
        return
    fill = (high - low) / max(abs(low), abs(high))
    if not broken or fill >= MIN_FILL:
        set_(min(low, 0.0), max(high, 0.0))
        return
    foot = 0.0 if high > 0 else 1.0  # the end nearest 0
    strokes = [[(-0.02, foot + d - 0.012), (0.02, foot + d + 0.012)] for d in (-0.012, 0.012)]
    if axis == "x":
        strokes = [[(y, x) for x, y in stroke] for stroke in strokes]
    # a collection, not data lines: it stays out of ax.lines and of the autoscaling
    ax.add_collection(matplotlib.collections.LineCollection(strokes, colors="k", linewidths=1, clip_on=False,
                                                            transform=ax.transAxes, gid=BREAK_GID), autolim=False)
    label = ax.yaxis.label if axis == "y" else ax.xaxis.label
    label.set_text((label.get_text() + "\n" if label.get_text() else "") + "(axis does not start at 0)")


def is_broken(ax: plt.Axes) -> bool:
    """Whether :func:`value_axis` marked ``ax`` as not starting at 0."""
    return any(c.get_gid() == BREAK_GID for c in ax.collections)


def city_colors(cities: list[str]) -> dict[str, tuple[float, ...]]:
    """Each city's colour, in the order given (the same city, the same colour, in every figure of a run)."""
    cmap = plt.get_cmap("tab10" if len(cities) <= 10 else "tab20")
    return {c: cmap(i % cmap.N) for i, c in enumerate(cities)}


def save_figure(fig: plt.Figure, folder: Path, stem: str) -> list[Path]:
    """Save a figure as PNG and SVG atomically (SVG text as text, in the figure's font); returns the paths.

    Every linear axis gets the reports' number style (:func:`number_ticks`). A figure with
    constrained layout is saved as laid out; others are cropped to their content (the box
    ``bbox_inches="tight"`` would find, computed once for both files). A PNG never exceeds
    :data:`MAX_WIDTH_PX`: a figure laid out wider is saved at a lower resolution.
    """
    number_ticks(fig)
    crop = None
    if not isinstance(fig.get_layout_engine(), matplotlib.layout_engine.ConstrainedLayoutEngine):
        # what bbox_inches="tight" computes, once for both files (it costs a layout pass per file)
        crop = fig.get_tightbbox(fig.canvas.get_renderer()).padded(matplotlib.rcParams["savefig.pad_inches"])
    width = crop.width if crop is not None else fig.get_figwidth()
    dpi = min(DPI, int(MAX_WIDTH_PX / width))
    paths = []
    for ext in ("png", "svg"):
        path = folder / f"{stem}.{ext}"
        # SVG ids from a fixed salt, not a random UUID; text kept as text (editable, searchable, smaller)
        with matplotlib.rc_context({"svg.hashsalt": stem, "svg.fonttype": "none"}):
            atomic_write(path, lambda h, ext=ext: fig.savefig(h, format=ext, dpi=dpi, bbox_inches=crop,
                                                              metadata=_STABLE_METADATA[ext]), mode="wb")
        paths.append(path)
    plt.close(fig)
    return paths


_STABLE_METADATA = {"png": {"Software": None}, "svg": {"Date": None}}  # no timestamps: same run, same bytes


def save_figures(figures: dict[str, Callable[[], plt.Figure]], folder: Path) -> list[Path]:
    """Draw and save several figures as PNG and SVG, two at a time (:func:`sim.reporting.files.run_in_two`).

    Args:
        figures: file stem → a function that draws the figure.
        folder: where the files go.

    Returns:
        The paths written, in the order given.
    """
    run_in_two(figure_jobs(figures, folder))
    return [folder / f"{stem}.{ext}" for stem in figures for ext in ("png", "svg")]


def save_drawn(out: Path, drawn: dict[str, plt.Figure]) -> list[str]:
    """Save figures already drawn (stem → figure) into ``out/figures`` as PNG and SVG; the files, relative to ``out``."""
    written = []
    for stem, fig in drawn.items():
        written += [str(p.relative_to(out)) for p in save_figure(fig, out / "figures", stem)]
    return written


def figure_jobs(figures: dict[str, Callable[[], plt.Figure]], folder: Path) -> list[Callable[[], list[Path]]]:
    """One job per figure: draw it and save it as ``folder/<stem>.png`` and ``.svg``."""
    return [lambda stem=stem, draw=draw: save_figure(draw(), folder, stem) for stem, draw in figures.items()]


