"""The Modu calibration problem: what is fitted (``calibration/targets.yaml``), by which quantities (priors), how.

The data are documented counts — cities at the start, which set the initial state, and
the counts, shares, inflows and statements fitted later — each a data row of
``calibration/data/*.csv``. The behavioural parameters and the cities' attractiveness
constants have priors (``calibration/priors.yaml``). A simulation's summary vector
(:class:`Layout`) holds every city's firms per year, its cumulative gross inflow and the
national moves, from which every figure's simulated counterpart is read; the distance to
the data is the root mean square relative error over the fitted figures. The posterior
is approximated by the generic ABC-SMC of :mod:`sim.analysis.abc_smc`;
:mod:`sim.inference.estimates` turns it into the point estimate and predictive tables.
"""

from __future__ import annotations

import dataclasses
import functools
import pickle
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.analysis.abc_smc import Prior, Simulator
from sim.experiments.patching import PatchedDesign, factor_design
from sim.inference.data import NATIONAL, Figure, Targets, load_targets
from sim.inference.errors import InferenceError
from sim.inference.quantities import PriorFile, SharedFactor, SplitFactor, load_priors
from sim.model.engines import Flows, kernel_flows, simulate_flows
from sim.scenario import Scenario, derive, load_scenario, validate
from sim.scenario.factors import Factor, check_factors
from sim.scenario.paths import parse_path
from sim.scenario.resources import SCENARIOS_DIR

BASELINE_PATH = SCENARIOS_DIR / "baseline.yaml"
"""The scenario calibrated by default."""


# ----------------------------------------------------------------------------- scenario variants
def variant(template: dict[str, Any], factors: Sequence[Factor], values: Iterable[float]) -> Scenario:
    """The scenario ``template`` (a resolved scenario dict) with each factor set to its value (natural scale)."""
    return derive(template, {}, factors=list(zip(factors, values, strict=True)))


@dataclass(frozen=True)
class Layout:
    """Where each summary sits in a simulation's flat summary vector.

    The vector holds, for every year ``start..end`` (state at year.0): firms per
    city ``[year, city]``; the cumulative gross inflow (births + moves in) per
    city since the start ``[year, city]``; and the cumulative national number of
    relocations ``[year]``.
    """

    years: tuple[int, ...]
    cities: tuple[str, ...]
    place_shares: tuple[tuple[float, ...], ...] = ()

    @classmethod
    def of(cls, scenario: Scenario) -> Layout:
        """The layout of a scenario's summaries."""
        return cls(tuple(range(scenario.time.start, scenario.time.end + 1)), tuple(c.name for c in scenario.cities),
                   tuple(tuple(c.place_shares()) for c in scenario.cities))

    def place(self, name: str) -> tuple[int, float]:
        """A place a statement names: a city (its index, share 1), or ``POOL[k]``, the k-th place of a pool.

        Raises:
            InferenceError: no such city, or a pool with fewer places.
        """
        pool, _, k = name[:-1].rpartition("[") if name.endswith("]") else (name, "", "")
        if pool not in self.cities:
            raise InferenceError(f"{name!r} is not a city or a pool's place of the scenario")
        c = self.cities.index(pool)
        if not k:
            return c, 1.0
        shares = self.place_shares[c] if self.place_shares else (1.0,)
        if not k.isdigit() or not 1 <= int(k) <= len(shares):
            raise InferenceError(f"{name!r}: {pool} has places 1 to {len(shares)}")
        return c, shares[int(k) - 1]

    @property
    def size(self) -> int:
        """Length of the summary vector."""
        return len(self.years) * (2 * len(self.cities) + 1)

    def firms(self, summaries: np.ndarray) -> np.ndarray:
        """Firms ``[..., year, city]``."""
        Y, C = len(self.years), len(self.cities)
        return summaries[..., : Y * C].reshape(*summaries.shape[:-1], Y, C)

    def inflow(self, summaries: np.ndarray) -> np.ndarray:
        """Cumulative gross inflow since the start ``[..., year, city]``."""
        Y, C = len(self.years), len(self.cities)
        return summaries[..., Y * C: 2 * Y * C].reshape(*summaries.shape[:-1], Y, C)

    def moves(self, summaries: np.ndarray) -> np.ndarray:
        """Cumulative national relocations ``[..., year]``."""
        Y, C = len(self.years), len(self.cities)
        return summaries[..., 2 * Y * C:]

    def value(self, summaries: np.ndarray, figure: Figure) -> np.ndarray:
        """The simulated counterpart of a figure (any quantity but ``overtake_by``) at its model time.

        A ``rank`` figure's counterpart is the subject's simulated rank (1 = most firms); an ``order``
        figure's, the number of neighbouring pairs out of order (0 when the order holds).
        """
        y = self.years.index(figure.time)
        firms = self.firms(summaries)
        if figure.quantity == "firms":
            return firms[..., y, self.cities.index(figure.city)]
        if figure.quantity == "national_firms":
            return firms[..., y, :].sum(axis=-1)
        if figure.quantity == "group_share":
            idx = [self.cities.index(c) for c in figure.group]
            return firms[..., y, idx].sum(axis=-1) / firms[..., y, :].sum(axis=-1)
        if figure.quantity == "group_firms":
            return firms[..., y, [self.cities.index(c) for c in figure.group]].sum(axis=-1)
        if figure.quantity == "gross_inflow":
            c, y0 = self.cities.index(figure.city), self.years.index(figure.from_time)
            inflow = self.inflow(summaries)
            return inflow[..., y, c] - inflow[..., y0, c]
        if figure.quantity == "rank":
            sizes = self.members(summaries, figure)
            return 1 + (sizes[..., 1:] > sizes[..., :1]).sum(axis=-1)
        if figure.quantity == "order":
            sizes = self.members(summaries, figure)
            return (sizes[..., 1:] > sizes[..., :-1]).sum(axis=-1)
        raise InferenceError(f"figure {figure.id}: {figure.quantity} has no simulated value")

    def members(self, summaries: np.ndarray, figure: Figure) -> np.ndarray:
        """The stocks (or increments since ``from_stock_end``) of a statement's members ``[..., member]``."""
        firms = self.firms(summaries)
        at = firms[..., self.years.index(figure.time), :]
        if figure.from_time is not None:
            at = at - firms[..., self.years.index(figure.from_time), :]
        columns = []
        for places in figure.members:
            located = [self.place(name) for name in places]
            columns.append(sum(at[..., c] * share for c, share in located))
        return np.stack(columns, axis=-1).astype(float)

    def error(self, summaries: np.ndarray, figure: Figure) -> np.ndarray:
        """A fitted figure's error: relative for a number (0 inside bounds), the violation for a statement.

        A statement's violation is the log ratio by which the stocks miss it (0 when it holds): for
        "rank r" the subject must lie between the (r−1)-th and the r-th largest of the others, for
        "top k" above the k-th largest, for an order each place above the next (the largest miss
        counts). Logs of ``1 + firms``, so that empty places stay finite.
        """
        if not figure.statement:
            return figure.relative_error(self.value(summaries, figure))
        sizes = np.log1p(np.maximum(self.members(summaries, figure), 0.0))
        if figure.quantity == "order":
            return np.maximum(sizes[..., 1:] - sizes[..., :-1], 0.0).max(axis=-1)
        subject, others = sizes[..., 0], -np.sort(-sizes[..., 1:], axis=-1)   # others largest first
        k = int(figure.value if figure.value is not None else figure.upper)
        miss = np.maximum(others[..., k - 1] - subject, 0.0) if k <= others.shape[-1] else np.zeros_like(subject)
        if figure.value is not None and k >= 2:  # exactly rank k: also below the (k−1)-th largest other
            miss = miss + np.maximum(subject - others[..., k - 2], 0.0)
        return miss

    def holds(self, summaries: np.ndarray, figure: Figure) -> np.ndarray:
        """Whether a statement holds in each simulation (its violation is 0)."""
        return self.error(summaries, figure) == 0.0


def summarise(flows: Flows, steps_per_year: int) -> np.ndarray:
    """A finished run's summary vector (see :class:`Layout`) from its counts and flows."""
    spy = steps_per_year
    firms = flows.firms.sum(axis=2)
    inflow = np.cumsum((flows.births + flows.moves_in).sum(axis=2), axis=0)
    moves = np.cumsum(flows.moves_in.sum(axis=(1, 2)))
    return np.concatenate([firms[::spy].ravel(), inflow[::spy].ravel(), moves[::spy]]).astype(float)


def simulate_chunk(template: dict[str, Any], factors: Sequence[Factor], values: np.ndarray,
                   seeds: list[np.random.SeedSequence], design: PatchedDesign | None = None) -> np.ndarray:
    """Run one simulation per row of ``values`` (natural scale) with its seed; returns summaries ``[k, m]``.

    The :data:`sim.analysis.abc_smc.Simulator` of a Modu problem; module-level so that executors
    can pickle it (with :func:`functools.partial`). With ``design`` (the factors as patches of one
    compiled model, :func:`sim.experiments.patching.factor_design`, validated at their ranges' ends)
    each row patches the compiled template instead of deriving and compiling a scenario: the same runs.
    """
    out = []
    for row, seed in zip(values, seeds, strict=True):
        if design is not None:
            flows, spy = kernel_flows(design.model_at(row), seed), design.scenario.time.steps_per_year
        else:
            scenario = variant(template, factors, row)
            flows, spy = simulate_flows(scenario, seed), scenario.time.steps_per_year
        out.append(summarise(flows, spy))
    return np.array(out)


# ----------------------------------------------------------------------------- the Modu problem
@dataclass
class Problem:
    """What is calibrated, against what, from which scenario.

    Attributes:
        scenario: the scenario whose initial state and assumptions are used.
        template: its resolved dict with ``engine`` set as requested.
        prior: the priors.
        fitted: the figures fitted.
        layout: the summary layout.
        reading: the reading of the Shenzhen increment.
        priors_path: the priors file (copied beside the calibration it produces).
        targets_path: the targets file (copied likewise).
    """

    scenario: Scenario
    template: dict[str, Any]
    prior: Prior
    fitted: list[Figure]
    layout: Layout
    reading: str
    targets: Targets = field(repr=False)
    priors_file: PriorFile = field(repr=False)
    priors_path: Path | None = None
    targets_path: Path | None = None

    def simulator(self) -> Simulator:
        """The picklable simulator of this problem (its priors patched into one compiled model where they can be)."""
        return functools.partial(simulate_chunk, self.template, self.prior.specs, design=self.design)

    @functools.cached_property
    def design(self) -> PatchedDesign | None:
        """The priors as patches of the compiled template (:func:`sim.experiments.patching.factor_design`), or None.

        The priors' ranges were validated at their ends when the problem was made (:func:`make_problem`).
        """
        return factor_design(validate(self.template, "the calibrated scenario"), self.prior.specs)

    def simulated(self, summaries: np.ndarray) -> np.ndarray:
        """The fitted figures' simulated counterparts ``[..., figure]``."""
        return np.stack([self.layout.value(summaries, f) for f in self.fitted], axis=-1)

    def errors(self, summaries: np.ndarray) -> np.ndarray:
        """Relative error of each fitted figure ``[..., figure]`` (0 inside a bounded pattern's interval)."""
        return np.stack([self.layout.error(summaries, f) for f in self.fitted], axis=-1)

    def distance(self, summaries: np.ndarray) -> np.ndarray:
        """Root mean square relative error over the fitted figures."""
        return np.sqrt(np.mean(self.errors(summaries) ** 2, axis=-1))

    def with_observed(self, values: np.ndarray) -> Problem:
        """The same problem fitted to other values of its patterns (a synthetic dataset; bounds become points)."""
        fitted = [f.model_copy(update={"value": float(v), "lower": None, "upper": None, "data": None})
                  for f, v in zip(self.fitted, values, strict=True)]
        return dataclasses.replace(self, fitted=fitted)

    def without(self, figure_id: str) -> Problem:
        """The same problem with one fitted figure left out (leave-one-pattern-out validation)."""
        fitted = [f for f in self.fitted if f.id != figure_id]
        if len(fitted) == len(self.fitted) or not fitted:
            raise InferenceError(f"cannot leave out {figure_id!r}: not one of several fitted figures")
        return dataclasses.replace(self, fitted=fitted)


def check_figures(scenario: Scenario, targets: Targets, targets_source: str, scenario_source: str) -> None:
    """Refuse targets that do not fit a scenario: unknown cities, times outside its span, other initial counts.

    Raises:
        InferenceError: one line naming the figure and what is wrong.
    """
    names = [c.name for c in scenario.cities]
    layout = Layout.of(scenario)
    for fig in targets.figures:
        if fig.statement:
            for name in (name for member in fig.members for name in member):
                try:
                    layout.place(name)
                except InferenceError as exc:
                    raise InferenceError(f"{targets_source}: figures[{fig.id}]: {exc} ({scenario_source})") from None
        for city in [] if fig.statement else [*fig.group, fig.other]:
            if city is not None and city != NATIONAL and city not in names:
                raise InferenceError(f"{targets_source}: figures[{fig.id}].city: {city!r} is not a city of {scenario_source}")
        if fig.time not in layout.years:
            raise InferenceError(f"{targets_source}: figures[{fig.id}]: model time {fig.time} (end-{fig.stock_end} stock) "
                                 f"is outside {scenario_source}'s span {scenario.time.start}-{scenario.time.end}")
    counts = {c.name: c.firms for c in scenario.cities}
    total = sum(counts.values())
    for fig in targets.initial():
        if fig.time != scenario.time.start:
            raise InferenceError(f"{targets_source}: figures[{fig.id}]: an initial figure at model time {fig.time}, "
                                 f"but {scenario_source} starts in {scenario.time.start}")
        value = (total if fig.quantity == "national_firms" else counts.get(fig.city) if fig.quantity == "firms"
                 else sum(counts[c] for c in fig.group) / max(total, 1) if fig.quantity == "group_share" else None)
        if value is None or abs(float(fig.relative_error(value))) > 5e-4:
            where = {"firms": f"cities[{fig.city}].firms", "national_firms": "cities[*].firms (total)"}.get(
                fig.quantity, f"cities[{', '.join(fig.group)}].firms ({fig.quantity})")
            raise InferenceError(f"{scenario_source}: {where}: {value:,.6g} in {scenario.time.start}, but "
                                 f"{targets_source} documents {fig.describe()} ({fig.id})")


def make_problem(scenario_path: Path, targets_path: Path, priors_path: Path, reading: str,
                 engine: str = "counts") -> Problem:
    """Load and cross-check the scenario, targets and priors.

    Raises:
        InferenceError: a figure's city or year is not in the scenario, the
            scenario's initial counts differ from the documented ones, a prior
            names no quantity of the scenario, or the step lengths differ.
    """
    scenario = load_scenario(scenario_path)
    targets = load_targets(targets_path)
    priors = load_priors(priors_path)
    check_figures(scenario, targets, f"{targets_path}", f"{scenario_path}")
    if priors.steps_per_year != scenario.time.steps_per_year:
        raise InferenceError(f"{priors_path}: steps_per_year: the priors are per step of 1/{priors.steps_per_year} year, "
                            f"{scenario_path} steps 1/{scenario.time.steps_per_year} year")
    template = scenario.resolved()
    template["engine"] = engine
    check_factors(template, priors.priors, f"{priors_path}: priors")
    readings = targets.shenzhen_increment.get("readings", {})
    if reading not in readings:
        raise InferenceError(f"--shenzhen-increment: {reading!r} is not a reading of {targets_path} "
                             f"({', '.join(readings)})")
    fitted = targets.fitted(reading)
    if not fitted:
        raise InferenceError(f"{targets_path}: figures: no figure has role target")
    return Problem(scenario=scenario, template=template, prior=Prior(tuple(priors.priors)), fitted=fitted,
                   layout=Layout.of(scenario), reading=reading, targets=targets, priors_file=priors,
                   priors_path=Path(priors_path), targets_path=Path(targets_path))


def assignments(problem: Problem, values: np.ndarray) -> list[tuple[str, str | None, str, float]]:
    """What a point in parameter space (natural scale) sets in the scenario: ``(label, city, field, value)`` rows.

    ``city`` is None for a parameter. A shared constant gives one row per city; a
    split gives each named city's and the pool's firms.
    """
    rows: list[tuple[str, str | None, str, float]] = []
    data = pickle.loads(pickle.dumps(problem.template))
    for spec, value in zip(problem.prior.specs, values, strict=True):
        spec.apply(data, float(value))
    firms = {c["name"]: c["firms"] for c in data["cities"]}
    splits = [spec for spec in problem.prior.specs if isinstance(spec, SplitFactor)]
    for spec, value in zip(problem.prior.specs, values, strict=True):
        if isinstance(spec, SplitFactor):
            last = spec is next(s for s in reversed(splits) if s.pool == spec.pool)  # a pool shared by splits: once
            rows += [(spec.label, city, "firms", float(firms[city])) for city in [*spec.weights, *[spec.pool] * last]]
        elif isinstance(spec, SharedFactor):
            rows += [(spec.label, city, spec.field, float(value)) for city in spec.cities]
        else:
            tokens = parse_path(spec.target)
            city = tokens[1] if tokens[0] == "cities" else None
            rows.append((spec.label, city, tokens[-1], float(value)))
    return rows
