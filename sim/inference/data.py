"""The calibration's data: documented figures (``calibration/data/*.csv``), the patterns fitted to them, the priors.

Three inputs, each validated on reading:

- the observations, ``calibration/data/*.csv`` (:func:`load_observations`):
  every figure a source prints, with its universe (the population it counts);
- the targets (``targets.yaml``, :class:`Targets`): the patterns of
  pattern-oriented modelling (Grimm et al. 2005) — city counts, the national
  total, the big three's share — each naming the data rows it comes from and
  the model time it is compared at;
- the priors (``priors.yaml``, :class:`PriorFile`).

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
from sim.scenario.factors import Factor
from sim.scenario.loading import load_model
from sim.scenario.paths import set_path
from sim.scenario.resources import CALIBRATION_DIR, shown
from sim.scenario.schema import Strict as _Strict

TARGETS_PATH = CALIBRATION_DIR / "targets.yaml"
"""The shipped targets: the documented patterns and their roles."""

PRIORS_PATH = CALIBRATION_DIR / "priors.yaml"
"""The shipped priors of the calibrated quantities."""

ASSUMPTIONS_PATH = CALIBRATION_DIR / "assumptions.yaml"
"""The shipped deep uncertainties: the quantities no data pin, with ranges and reasons."""

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


# ----------------------------------------------------------------------------- priors
class SharedFactor(Factor):
    """One value for a field of several cities (e.g. a common constant of cities no datum tells apart).

    ``target`` names the field for the first city (checked like any factor); ``cities`` lists them all.
    """

    cities: list[str] = Field(min_length=1)
    field: str = Field(min_length=1)

    def apply(self, data: dict[str, Any], value: float) -> None:
        """Set ``field`` of every listed city to ``value``, in place."""
        for city in self.cities:
            set_path(data, ("cities", city, self.field), float(value))


class SplitFactor(Factor):
    """The share of a group's firms held by named cities, a pool absorbing the rest.

    The group is ``group`` when given, else ``pool`` plus ``weights``' cities; its total is
    what the scenario gives them together (kept constant). The value (a share in [0, 1]) goes
    to the named cities in proportion to their weights; the pool takes what the group's other
    places leave. With an explicit group, several splits of one group (each naming its own
    cities, all sharing the pool) are independent of the order they are applied in.
    """

    pool: str = Field(min_length=1)
    weights: dict[str, float] = Field(min_length=1)
    group: list[str] | None = None

    def members(self) -> list[str]:
        """The places whose total the split keeps."""
        return list(self.group) if self.group is not None else [self.pool, *self.weights]

    def total(self, data: dict[str, Any]) -> int:
        """Firms of the group's places together in plain scenario data."""
        names = set(self.members())
        return sum(int(c["firms"]) for c in data["cities"] if c.get("name") in names)

    def split(self, total: int, value: float, others: int = 0) -> dict[str, int]:
        """Firms per named city and the pool for a share ``value`` of ``total`` (rounded; the group keeps ``total``).

        ``others`` is what the group's places other than the pool and the named cities hold.
        """
        weight = sum(self.weights.values())
        counts = {city: int(round(total * value * w / weight)) for city, w in self.weights.items()}
        counts[self.pool] = total - others - sum(counts.values())
        return counts

    def apply(self, data: dict[str, Any], value: float) -> None:
        """Set the named cities' and the pool's firms for the share ``value``, in place.

        Raises:
            ValueError: the group's other places leave the pool fewer than zero firms.
        """
        named = {self.pool, *self.weights}
        others = sum(int(c["firms"]) for c in data["cities"] if c.get("name") in set(self.members()) - named)
        counts = self.split(self.total(data), value, others)
        if counts[self.pool] < 0:
            raise ValueError(f"{self.label} = {value:.4g} leaves {self.pool} {counts[self.pool]:,} firms")
        for city, firms in counts.items():
            set_path(data, ("cities", city, "firms"), firms)


class OutsideShare(Factor):
    """The share of potential entrants that enter no city at the scenario's start: the outside option V₀.

    V₀ (``parameters.outside_option``) is solved for at the start's utilities, so that an
    entrant-weighted ``value`` of potential entrants stay out (docs/ODD.md §3.4); the birth
    rate (or ``births_per_step``) is divided by ``1 − value``, so that national entry at the
    start is what it was without the outside option. 0 turns the outside option off. Apply it
    after every other factor: V₀ depends on the utilities they set.
    """

    kind: Literal["outside_share"]

    @model_validator(mode="after")
    def _a_share(self) -> OutsideShare:
        if not 0 <= self.low < self.high < 1:
            raise ValueError(f"an outside share lies in [0, 1), got [{self.low}, {self.high}]")
        return self

    def apply(self, data: dict[str, Any], value: float) -> None:
        """Set V₀ for the share ``value`` at the start of the scenario ``data``, and raise entry to match, in place."""
        data["parameters"]["outside_option"] = None
        if value <= 0:
            return
        V0 = outside_option_for(Scenario.model_validate(data), float(value))
        p = data["parameters"]
        p["outside_option"] = V0
        if p.get("births_per_step") is not None:
            p["births_per_step"] = int(round(p["births_per_step"] / (1 - value)))
        else:
            p["birth_rate"] = min(float(p["birth_rate"]) / (1 - value), 1.0)


def outside_option_for(scenario: Scenario, share: float) -> float:
    """The V₀ at which an entrant-weighted ``share`` of potential entrants stay out at the scenario's start.

    By bisection on the entry probabilities of the start's state (:func:`sim.model.utility.entry_utility`).
    """
    from sim.model.model import ModuModel
    from sim.model.utility import entry_utility

    model = ModuModel(scenario.model_copy(update={"engine": "counts"}), rng=0, record_events=False)
    V = entry_utility(model.coef, model.N, model.lever_stocks())         # [city, sector]
    V = np.where(np.isfinite(V), V, -np.inf)
    top = float(np.max(V[np.isfinite(V)])) if np.isfinite(V).any() else 0.0

    def stay_out(V0: float) -> float:
        with np.errstate(over="ignore"):
            return float(model.sector_mix @ (1.0 / (1.0 + np.exp(V - V0).sum(axis=0))))

    lo, hi = top - 60.0, top + 60.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if stay_out(mid) < share else (lo, mid)
    return (lo + hi) / 2


class AssumptionFile(_Strict):
    """The assumptions file (``assumptions.yaml``): deep uncertainties as factors, outside shares last."""

    assumptions: list[OutsideShare | Factor] = Field(min_length=1)

    @model_validator(mode="after")
    def _outside_last(self) -> AssumptionFile:
        kinds = [isinstance(f, OutsideShare) for f in self.assumptions]
        if any(kinds) and (kinds.count(True) > 1 or not kinds[-1]):
            raise ValueError("one outside_share at most, and last: it is solved for at the utilities the others set")
        return self


class PriorFile(_Strict):
    """The priors file (``priors.yaml``)."""

    steps_per_year: int = Field(ge=1)
    priors: list[SplitFactor | SharedFactor | Factor] = Field(min_length=1)


def load_targets(path: Path = TARGETS_PATH, observations: pd.DataFrame | None = None) -> Targets:
    """Read and check the targets file, with values from the data rows it names.

    Raises:
        sim.scenario.ScenarioError: a malformed file (one line).
        InferenceError: a data row missing or of another universe.
    """
    targets = load_model(path, Targets)
    return targets.resolve(load_observations() if observations is None else observations, str(path))


def load_assumptions(path: Path = ASSUMPTIONS_PATH) -> AssumptionFile:
    """Read and check an assumptions file; bad input raises :class:`sim.scenario.ScenarioError` (one line)."""
    return load_model(path, AssumptionFile)


def load_priors(path: Path = PRIORS_PATH) -> PriorFile:
    """Read and check the priors file; bad input raises :class:`sim.scenario.ScenarioError` (one line)."""
    return load_model(path, PriorFile)


def default_priors(scenario: Scenario) -> Path:
    """The priors a calibration of ``scenario`` uses unless told: those beside the calibration it names, else the shipped ones."""
    if scenario.calibration is not None and (own := CalibrationFiles.of(scenario).priors).is_file():
        return own
    return PRIORS_PATH


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
