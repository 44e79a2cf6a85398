"""The calibration's data: documented figures (``calibration/data/*.csv``) and the patterns fitted to them.

Two inputs, each validated on reading (the third, the priors, is :mod:`sim.inference.quantities`'):

- the observations, ``calibration/data/*.csv`` (:func:`load_observations`):
  every figure a source prints, with its universe (the population it counts);
- the targets (``targets.yaml``, :class:`Targets`): the patterns of
  pattern-oriented modelling (Grimm et al. 2005) — city counts, the national
  total, the big three's share — each naming the data rows it comes from and
  the model time it is compared at.

Dating rule (docs/ODD.md §3.1): the model records the state at the start of
each year, and the record at ``t.0`` stands for the stock at the end of year
``t − 1``. A figure for the stock at the end of year ``y`` (its ``stock_end``)
is compared at model time ``y + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from sim.inference.errors import InferenceError
from sim.scenario import Scenario
from sim.scenario.reading import load_model
from sim.scenario.resources import CALIBRATION_DIR, shown
from sim.scenario.schema import Strict as _Strict

TARGETS_PATH = CALIBRATION_DIR / "targets.yaml"
"""The shipped targets: the documented patterns and their roles."""


DATA_DIR = CALIBRATION_DIR / "data"
"""The documented figures with their sources, one CSV per family."""

COLUMNS = ("city", "year", "quantity", "value", "unit", "universe", "source", "sentence", "translation",
           "reference", "value_as_written", "place", "note")
"""The columns every data file has, in order (``calibration/data/README.md``)."""

NATIONAL = "China"
"""The ``city`` of national figures in the data and the targets."""


# ----------------------------------------------------------------------------- a scenario's calibration
@dataclass(frozen=True)
class CalibrationFiles:
    """The files of one calibration: the folder of the ``calibrated.yaml`` a scenario names.

    ``modu calibrate --out DIR`` writes them together, so a scenario's ``calibration:`` key
    names its priors, its posterior and its ABC populations too. Every command that draws
    parameters (optimise, equilibrium, sensitivity, notebooks) takes them from here.
    """

    folder: Path

    @property
    def calibrated(self) -> Path:
        """The point estimate scenarios take (``calibrated.yaml``)."""
        return self.folder / "calibrated.yaml"

    @property
    def priors(self) -> Path:
        """The priors the calibration used (``priors.yaml``; the shipped baseline's beside its calibration)."""
        return self.folder / "priors.yaml"

    @property
    def targets(self) -> Path:
        """The patterns the calibration fitted (``targets.yaml`` beside it; the shipped baseline's in ``calibration/``)."""
        return self.folder / "targets.yaml"

    @property
    def populations(self) -> Path:
        """The ABC-SMC populations; the last generation is the posterior sample (``populations.csv``)."""
        return self.folder / "populations.csv"

    @property
    def posterior(self) -> Path:
        """Posterior medians and 90% intervals per quantity (``posterior.csv``)."""
        return self.folder / "posterior.csv"

    @property
    def name(self) -> str:
        """The folder as a reader would type it (``calibration/china``)."""
        return shown(self.folder)

    @classmethod
    def of(cls, scenario: Scenario) -> CalibrationFiles:
        """The calibration a scenario names in its ``calibration:`` key.

        Raises:
            InferenceError: the scenario names none (it runs on the code's defaults).
        """
        if scenario.calibration is None:
            raise InferenceError(f"{scenario.name}: names no calibration (no `calibration:` key), so it has no "
                                 "posterior or priors to draw from; name one (e.g. `calibration: "
                                 "../calibration/calibrated.yaml`) or give ranges (--range PATH=LO:HI)")
        return cls(Path(scenario.calibration).parent)


# ----------------------------------------------------------------------------- observations
def load_observations(folder: Path = DATA_DIR) -> pd.DataFrame:
    """Every documented figure of ``folder/*.csv`` as one tidy frame, with a ``file`` column.

    Raises:
        InferenceError: a file without the documented columns, a row without a
            universe, source or sentence, or a value that is not a number.
    """
    frames = []
    for path in sorted(folder.glob("*.csv")):
        frame = pd.read_csv(path, dtype={"year": "Int64"}, keep_default_na=False, na_values={"year": [""]})
        if tuple(frame.columns) != COLUMNS:
            raise InferenceError(f"{path}: columns {list(frame.columns)}, expected {list(COLUMNS)}")
        for col in ("city", "quantity", "universe", "source", "sentence", "value_as_written"):
            empty = frame.index[frame[col].astype(str).str.strip() == ""]
            if len(empty):
                raise InferenceError(f"{path}: row {empty[0] + 2}: {col} is empty")
        values = pd.to_numeric(frame["value"], errors="coerce")
        if values.isna().any():
            bad = frame.index[values.isna()][0]
            raise InferenceError(f"{path}: row {bad + 2}: value {frame.value[bad]!r} is not a number")
        frames.append(frame.assign(value=values, file=path.name))
    if not frames:
        raise InferenceError(f"{folder}: no data files (*.csv)")
    return pd.concat(frames, ignore_index=True)


class DataRef(_Strict):
    """A row of the observations, by city, year and quantity, in the targets' universe."""

    city: str
    year: int
    quantity: str = "enterprises"

    def label(self) -> str:
        """``Beijing 2016 enterprises``."""
        return f"{self.city} {self.year} {self.quantity}"


# ----------------------------------------------------------------------------- patterns
class Figure(_Strict):
    """One pattern: a documented figure (or a bound derived from documented figures) and its role.

    Attributes:
        id: the pattern's name.
        city: the city (``China`` for national figures).
        year: the year the source attaches to the figure (as in the data file).
        stock_end: the year at whose end the counted stock stands (default ``year``);
            the figure is compared at model time ``stock_end + 1``.
        quantity: ``firms`` (a city's stock), ``national_firms`` (all cities and pools),
            ``gross_inflow`` (births plus arrivals since ``from_stock_end``),
            ``group_share`` (the combined share of ``cities``, else of ``city``, in the national total),
            ``group_firms`` (the combined stock of the places a group, e.g. a province, stands for),
            ``overtake_by`` (``city`` ahead of ``other`` no later than the time),
            ``rank`` (``city``'s place among the members of the set ``among``, 1 = most firms: exactly
            ``value``, or at most ``upper`` for "in the top k"; with ``from_stock_end`` ranked by the
            increment since then), ``order`` (the places ``order`` hold decreasing stocks).
        value: the figure; from the data row ``data`` when not written.
        lower, upper: bounds of a pattern known only as an interval (``group_share``; ``rank``: ``upper``).
        data: the data row the value comes from.
        role: ``initial`` (sets and checks the initial state), ``target`` (fitted) or ``validation``.
        source: where it comes from, with the original sentence or the derivation.
        universe: the universe of the data behind the figure when it is not the targets' (another
            register of firms); allowed only for ``rank`` and ``order``, with a ``measurement``.
        measurement: the stated measurement equation relating that register to the model's counts.
        inferred: the figure reads an order the source implies (e.g. the order of a list) rather than states.
        note: what the report should say when the model cannot meet the figure (a known conflict between sources).
        members: filled in from the targets' ``groups`` and ``sets`` (:meth:`Targets.resolve`): for
            ``rank`` the subject first, then every other member of the set; for ``order`` the places in
            order; each member is the list of scenario places it sums.
    """

    id: str
    city: str
    year: int
    stock_end: int | None = None
    quantity: Literal["firms", "national_firms", "gross_inflow", "group_share", "group_firms", "overtake_by", "rank",
                      "order"]
    value: float | None = None
    lower: float | None = None
    upper: float | None = None
    data: DataRef | None = None
    role: Literal["initial", "target", "validation"]
    source: str = Field(min_length=1)
    from_stock_end: int | None = None
    other: str | None = None
    cities: list[str] | None = None
    reading: str | None = None
    among: str | None = None
    order: list[str] | None = Field(None, min_length=2)
    universe: str | None = None
    measurement: str | None = None
    inferred: bool = False
    note: str = ""
    members: list[list[str]] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Figure:
        if self.stock_end is None:
            self.stock_end = self.year
        if self.quantity == "rank":
            if self.among is None:
                raise ValueError("rank needs among (a set of the targets file)")
            if self.lower is not None:
                raise ValueError("rank takes an exact value or an upper bound (top k), not a lower one")
        if self.quantity == "order" and self.order is None:
            raise ValueError("order needs order (the places, most firms first)")
        if self.universe is not None and (self.measurement is None or self.quantity not in ("rank", "order")):
            raise ValueError("a figure of another register must be a rank or an order and state its measurement")
        if self.quantity == "overtake_by" and self.other is None:
            raise ValueError("overtake_by needs the other city")
        if self.quantity == "gross_inflow" and self.from_stock_end is None:
            raise ValueError("gross_inflow needs from_stock_end")
        bounded = self.lower is not None or self.upper is not None
        if bounded and (self.value is not None or self.data is not None):
            raise ValueError("a figure has a value (or data row) or bounds, not both")
        if self.lower is not None and self.upper is not None and not self.lower < self.upper:
            raise ValueError(f"lower ({self.lower}) must be below upper ({self.upper})")
        if self.quantity not in ("overtake_by", "order") and self.value is None and self.data is None and not bounded:
            raise ValueError(f"{self.quantity} needs a value, a data row or bounds")
        return self

    @property
    def time(self) -> int:
        """Model time (a year's start) at which the figure is compared: ``stock_end + 1``."""
        return int(self.stock_end) + 1

    @property
    def from_time(self) -> int | None:
        """Model time from which a gross inflow is counted."""
        return None if self.from_stock_end is None else self.from_stock_end + 1

    @property
    def group(self) -> list[str]:
        """The cities a figure counts (``cities`` of a share, else ``city``)."""
        return list(self.cities) if self.cities else [self.city]

    @property
    def statement(self) -> bool:
        """Whether the figure is a ranking or ordering statement (holds or not) rather than a number."""
        return self.quantity in ("rank", "order")

    def relative_error(self, simulated: Any) -> Any:
        """Relative error of simulated values: ``sim/value − 1``, or the relative distance outside the bounds."""
        sim = np.asarray(simulated, dtype=float)
        if self.value is not None:
            return sim / self.value - 1.0
        over = np.maximum(sim / self.upper - 1.0, 0.0) if self.upper is not None else 0.0
        under = np.maximum(1.0 - sim / self.lower, 0.0) if self.lower is not None else 0.0
        return over + under

    def inside(self, lo: float, hi: float) -> bool:
        """Whether a band [lo, hi] holds the value, or overlaps the bounds of a bounded figure."""
        if self.value is not None:
            return bool(lo <= self.value <= hi)
        return bool(hi >= (self.lower if self.lower is not None else -np.inf)
                    and lo <= (self.upper if self.upper is not None else np.inf))

    def describe(self) -> str:
        """The value, or the bounds, as text."""
        if self.quantity == "rank":
            what = f"rank {self.value:.0f}" if self.value is not None else f"top {self.upper:.0f}"
            return f"{what} among {self.among}" + (" by increment" if self.from_stock_end is not None else "")
        if self.quantity == "order":
            return " > ".join(self.order)
        if self.value is not None:
            return f"{self.value:,.4g}" if self.value < 1 else f"{self.value:,.0f}"
        return f"[{'' if self.lower is None else f'{self.lower:.4g}'}, {'' if self.upper is None else f'{self.upper:.4g}'}]"


class Targets(_Strict):
    """The targets file: the patterns, their universe and the dating rule."""

    name: str
    universe: str = Field(min_length=1)
    dating: str = Field(min_length=1)
    figures: list[Figure] = Field(min_length=1)
    shenzhen_increment: dict[str, Any]
    groups: dict[str, list[str]] = Field(default_factory=dict)
    sets: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> Targets:
        ids = [f.id for f in self.figures]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"figure ids repeat: {dup}")
        readings = set(self.shenzhen_increment.get("readings", {}))
        unknown = sorted({f.reading for f in self.figures if f.reading is not None} - readings)
        if unknown:
            raise ValueError(f"figures name readings {unknown} that shenzhen_increment.readings does not define")
        return self

    def fitted(self, reading: str) -> list[Figure]:
        """The figures fitted under a reading of the Shenzhen increment (``gross`` or ``misprint``)."""
        return [f for f in self.figures if f.role == "target" and (f.reading is None or f.reading == reading)]

    def initial(self) -> list[Figure]:
        """The figures that set the initial state."""
        return [f for f in self.figures if f.role == "initial"]

    def validation(self) -> list[Figure]:
        """The figures held out of the fit."""
        return [f for f in self.figures if f.role == "validation"]

    def resolve(self, observations: pd.DataFrame, source: str) -> Targets:
        """The targets with every ``data`` row's value filled in from the observations.

        Raises:
            InferenceError: a data row that is missing, repeated, of another universe,
                or whose value differs from the one written.
        """
        figures = []
        for fig in self.figures:
            if fig.data is not None:
                ref = fig.data
                rows = observations[(observations.city == ref.city) & (observations.year == ref.year)
                                    & (observations.quantity == ref.quantity)]
                where = f"{source}: figures[{fig.id}].data"
                if rows.empty:
                    raise InferenceError(f"{where}: no data row {ref.label()}")
                universe = fig.universe or self.universe
                same = rows[rows.universe == universe].drop_duplicates(subset=["value"])
                if same.empty:
                    raise InferenceError(f"{where}: {ref.label()} counts universe {rows.universe.iloc[0]}, "
                                         f"{'the figure' if fig.universe else 'the targets'}' is {universe}")
                if len(same) > 1:
                    raise InferenceError(f"{where}: {len(same)} different values for {ref.label()} in {universe}")
                row = same.iloc[0]
                if fig.value is not None and fig.value != row.value:
                    raise InferenceError(f"{where}: value {fig.value:g} differs from the data's {row.value:g}")
                bound = fig.quantity == "rank" and ref.quantity.endswith("_upper_bound")
                fig = fig.model_copy(update={"upper" if bound else "value": float(row.value)})
            figures.append(self._members(fig, source))
        return self.model_copy(update={"figures": figures})

    def places(self, name: str) -> list[str]:
        """The scenario places a name stands for: a group's places, else the name itself."""
        return list(self.groups.get(name, [name]))

    def _members(self, fig: Figure, source: str) -> Figure:
        """Fill in a statement's members (and a group's places) from ``groups`` and ``sets``."""
        where = f"{source}: figures[{fig.id}]"
        if fig.quantity == "group_firms":
            if fig.cities is None and fig.city not in self.groups:
                raise InferenceError(f"{where}.city: {fig.city!r} is not a group of the targets file (groups:)")
            return fig.model_copy(update={"cities": fig.cities or self.places(fig.city)})
        if fig.quantity == "rank":
            if fig.among not in self.sets:
                raise InferenceError(f"{where}.among: {fig.among!r} is not a set of the targets file (sets:)")
            if fig.city not in self.sets[fig.among]:
                raise InferenceError(f"{where}: {fig.city!r} is not a member of the set {fig.among!r}")
            others = [m for m in self.sets[fig.among] if m != fig.city]
            return fig.model_copy(update={"members": [self.places(m) for m in [fig.city, *others]]})
        if fig.quantity == "order":
            return fig.model_copy(update={"members": [self.places(m) for m in fig.order]})
        return fig


def load_targets(path: Path = TARGETS_PATH, observations: pd.DataFrame | None = None) -> Targets:
    """Read and check the targets file, with values from the data rows it names.

    Raises:
        sim.scenario.ScenarioError: a malformed file (one line).
        InferenceError: a data row missing or of another universe.
    """
    targets = load_model(path, Targets)
    return targets.resolve(load_observations() if observations is None else observations, str(path))


def default_targets(scenario: Scenario) -> Path:
    """The targets a calibration of ``scenario`` fits unless told: beside the calibration it names, else the shipped ones."""
    if scenario.calibration is not None and (own := CalibrationFiles.of(scenario).targets).is_file():
        return own
    return TARGETS_PATH


def documented_counts(scenario: Scenario, targets: Targets | None = None) -> pd.DataFrame:
    """The documented city counts (initial and fitted figures) that a scenario covers, as ``city, year, firms``.

    ``year`` is the model time the figure stands at (``stock_end + 1``). For
    drawing on a run's counts figure: figures of cities the scenario has, in its
    span. Reads ``calibration/targets.yaml`` when ``targets`` is None (no rows if
    that file is missing).
    """
    if targets is None:
        if not TARGETS_PATH.exists():
            return pd.DataFrame(columns=["city", "year", "firms"])
        targets = load_targets(TARGETS_PATH)
    names = {c.name for c in scenario.cities}
    rows = [{"city": f.city, "year": float(f.time), "firms": f.value} for f in targets.figures
            if f.quantity == "firms" and f.role in ("initial", "target") and f.city in names
            and scenario.time.start <= f.time <= scenario.time.end]
    return pd.DataFrame(rows, columns=["city", "year", "firms"])
