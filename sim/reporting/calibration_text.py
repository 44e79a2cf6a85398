"""The names and number formats a calibration's report, its sections and its figures share."""

from __future__ import annotations

from collections.abc import Callable

from sim.model.metrics import BAND
from sim.reporting.text import count, interval_name, percent

CREDIBLE = interval_name("credible", BAND[1] - BAND[0])
"""The name of a posterior interval of a calibrated quantity (its 5th to 95th percentile)."""

PREDICTIVE = interval_name("predictive", BAND[1] - BAND[0])
"""The name of a posterior predictive interval of an output (its 5th to 95th percentile)."""


def figure_stem(city: str) -> str:
    """The file stem of a city's forecast figure (``forecast_<stem>.png``)."""
    return city.lower().replace(" ", "_")


def shown_as(quantity: str) -> Callable[[float], str]:
    """How a value of a documented figure's quantity is shown: a share in percent, a count of firms whole."""
    return (lambda v: percent(v, 1)) if quantity == "group_share" else count


def unit_of(quantity: str) -> str:
    """The unit of a documented figure's quantity."""
    return "share of national firms" if quantity == "group_share" else "firms"


def error_text(e: float) -> str:
    """A relative error in percent, two decimals."""
    return percent(e, 2)
