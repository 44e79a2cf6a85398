"""Calibration to the documented 2016–2023 enterprise counts by ABC-SMC (``modu calibrate``).

The data (``calibration/targets.yaml``) are five documented counts — three
cities in 2016, which set the initial state, and Beijing and Shenzhen in
2023, which are fitted — plus, under the ``gross`` reading of the source,
Shenzhen's gross inflow of 42,600 firms over 2016–2023. The behavioural
parameters and the cities' attractiveness constants have priors
(``calibration/priors.yaml``); the posterior is approximated by Approximate
Bayesian Computation with sequential Monte Carlo (Toni et al. 2009; Beaumont
et al. 2009): populations of weighted particles, each generation accepting
the proposals whose simulated targets fall within a shrinking tolerance ε of
the documented ones, perturbed with a Gaussian kernel of twice the previous
population's weighted covariance.

Reproducibility: proposal batch ``b`` of generation ``g`` draws from
``SeedSequence(seed, spawn_key=(0, g, b))`` and proposal ``k`` simulates with
``SeedSequence(seed, spawn_key=(1, g, k))``; proposals are accepted in index
order, so the result is the same whichever executor ran the simulations.

The point estimate written to ``calibrated.yaml`` takes the posterior median
of every parameter, then re-solves the constants of the cities with a fitted
count so that the median of the scenario's own replications hits the
documented counts (a BLP-style contraction, Berry 1994): the medians of a
non-identified posterior need not fit jointly, the re-solved constants do.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pickle
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import logsumexp

from sim._progress import tqdm
from sim.experiments.ensemble import replication_seed
from sim.experiments.executors import Executor, ExecutorSpec, imap_unordered
from sim.inference.data import (
    NATIONAL,
    Figure,
    PriorFile,
    SharedFactor,
    SplitFactor,
    Targets,
    load_priors,
    load_targets,
)
from sim.inference.errors import InferenceError
from sim.model.engines import Flows, simulate_flows
from sim.model.metrics import BAND as INTERVAL
from sim.scenario import Scenario, load_scenario
from sim.scenario.factors import Factor, check_factors
from sim.scenario.paths import parse_path
from sim.scenario.resources import SCENARIOS_DIR

BASELINE_PATH = SCENARIOS_DIR / "baseline.yaml"
"""The scenario calibrated by default."""

MIN_ESS = 100
"""Smallest effective sample size of the final ABC population whose intervals and verdicts are read.

Assumption: each 5% tail of a weighted 90% interval then rests on about 5 effective particles;
with fewer, the interval's width, and so the width ratio behind 'constrained', is mostly noise
(a tiny calibration with ESS 6 would call quantities 'constrained' from its few particles)."""

CONSTRAINED = ("constrained", "weakly constrained")
"""The verdicts that say the data narrow a quantity (see :func:`posterior_table`)."""


# ----------------------------------------------------------------------------- priors
@dataclass(frozen=True)
class Prior:
    """Independent priors over named quantities, sampled and perturbed on an internal scale.

    The internal scale is the natural one except for log-uniform priors, which
    are uniform in log10; the ABC kernel perturbs on the internal scale.
    """

    specs: tuple[Factor, ...]

    @property
    def names(self) -> list[str]:
        """The targets, in order (``parameters.X`` or ``cities.NAME.attractiveness``)."""
        return [s.target for s in self.specs]

    @property
    def labels(self) -> list[str]:
        """Short names for tables and figures (``network_effect``, ``Beijing.attractiveness``)."""
        return [s.label for s in self.specs]

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array([math.log10(s.low) if s.kind == "loguniform" else s.low for s in self.specs])
        hi = np.array([math.log10(s.high) if s.kind == "loguniform" else s.high for s in self.specs])
        return lo, hi

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws on the internal scale, ``[n, d]``."""
        out = np.empty((n, len(self.specs)))
        for j, s in enumerate(self.specs):
            if s.kind == "normal":
                a, b = (s.low - s.mean) / s.sd, (s.high - s.mean) / s.sd
                out[:, j] = stats.truncnorm.rvs(a, b, loc=s.mean, scale=s.sd, size=n, random_state=rng)
            else:
                lo, hi = (math.log10(s.low), math.log10(s.high)) if s.kind == "loguniform" else (s.low, s.high)
                out[:, j] = rng.uniform(lo, hi, size=n)
        return out

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        """Log prior density on the internal scale (up to a constant), ``-inf`` outside the support."""
        x = np.atleast_2d(x)
        lo, hi = self._bounds()
        inside = np.all((x >= lo) & (x <= hi), axis=1)
        out = np.zeros(len(x))
        for j, s in enumerate(self.specs):
            if s.kind == "normal":
                out += stats.norm.logpdf(x[:, j], s.mean, s.sd)
        return np.where(inside, out, -np.inf)

    def natural(self, x: np.ndarray) -> np.ndarray:
        """Internal scale → natural values (10**x for log-uniform priors)."""
        x = np.array(x, dtype=float, copy=True)
        for j, s in enumerate(self.specs):
            if s.kind == "loguniform":
                x[..., j] = 10.0 ** x[..., j]
        return x

    def internal(self, values: np.ndarray) -> np.ndarray:
        """Natural values → internal scale."""
        x = np.array(values, dtype=float, copy=True)
        for j, s in enumerate(self.specs):
            if s.kind == "loguniform":
                x[..., j] = np.log10(x[..., j])
        return x


# ----------------------------------------------------------------------------- scenario variants
def variant(template: dict[str, Any], factors: Sequence[Factor], values: Iterable[float]) -> Scenario:
    """The scenario ``template`` (a resolved scenario dict) with each factor set to its value (natural scale)."""
    data = pickle.loads(pickle.dumps(template))  # a deep copy of plain data, several times faster than copy.deepcopy
    for factor, value in zip(factors, values, strict=True):
        factor.apply(data, value)
    return Scenario.model_validate(data)


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
                   seeds: list[np.random.SeedSequence]) -> np.ndarray:
    """Run one simulation per row of ``values`` (natural scale) with its seed; returns summaries ``[k, m]``.

    Module-level so that executors can pickle it (with :func:`functools.partial`).
    """
    out = []
    for row, seed in zip(values, seeds, strict=True):
        scenario = variant(template, factors, row)
        out.append(summarise(simulate_flows(scenario, seed), scenario.time.steps_per_year))
    return np.array(out)


Simulator = Callable[[np.ndarray, list[np.random.SeedSequence]], np.ndarray]
"""``simulate(values [k, d], seeds) -> summaries [k, m]``; picklable."""


def run_batch(simulate: Simulator, values: np.ndarray, seeds: list[np.random.SeedSequence],
              executor: ExecutorSpec | Executor, chunk: int, bar: tqdm | None = None) -> np.ndarray:
    """Run ``simulate`` over rows of ``values`` in chunks on the executor; results in row order."""
    starts = list(range(0, len(values), chunk))
    tasks = [(values[s: s + chunk], seeds[s: s + chunk]) for s in starts]
    parts: dict[int, np.ndarray] = {}
    for i, result in imap_unordered(executor, simulate, tasks):
        parts[i] = result
        if bar is not None:
            bar.update(len(result))
    return np.concatenate([parts[i] for i in range(len(tasks))]) if tasks else np.empty((0, 0))


# ----------------------------------------------------------------------------- ABC-SMC
@dataclass
class Population:
    """One ABC-SMC generation.

    Attributes:
        generation: 0 for the prior sample.
        epsilon: the tolerance the particles met (``inf`` for generation 0).
        theta: particles on the prior's internal scale ``[n, d]``.
        weights: importance weights, summing to 1.
        distances: each particle's distance to the data.
        summaries: each particle's summary vector.
        simulations: proposals simulated to fill the generation.
        wall_time: seconds from the start of the run to the end of this generation
            (``nan`` when not recorded).
    """

    generation: int
    epsilon: float
    theta: np.ndarray
    weights: np.ndarray
    distances: np.ndarray
    summaries: np.ndarray
    simulations: int
    wall_time: float = math.nan

    @property
    def acceptance(self) -> float:
        """Accepted / simulated."""
        return len(self.theta) / max(self.simulations, 1)

    def ess(self) -> float:
        """Effective sample size of the weights."""
        return float(1.0 / np.sum(self.weights ** 2))


def populations_frame(prior: Prior, populations: list[Population]) -> pd.DataFrame:
    """All generations as one table (natural scale), one row per particle.

    Columns: generation, epsilon, simulations, wall_time_s, weight, distance, then each quantity.
    """
    parts = []
    for pop in populations:
        frame = pd.DataFrame(prior.natural(pop.theta), columns=prior.labels)
        frame.insert(0, "distance", pop.distances)
        frame.insert(0, "weight", pop.weights)
        frame.insert(0, "wall_time_s", pop.wall_time)
        frame.insert(0, "simulations", pop.simulations)
        frame.insert(0, "epsilon", pop.epsilon)
        frame.insert(0, "generation", pop.generation)
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def populations_from_frame(prior: Prior, frame: pd.DataFrame, source: str = "populations") -> list[Population]:
    """Read back :func:`populations_frame` (without the summaries, which it does not keep), e.g. to resume.

    Raises:
        InferenceError: if the table's columns are not this prior's quantities.
    """
    missing = [c for c in ["generation", "epsilon", "simulations", "weight", "distance", *prior.labels]
               if c not in frame.columns]
    if missing:
        raise InferenceError(f"{source}: columns: missing {', '.join(missing)} (was it written with these priors?)")
    pops = []
    for g, rows in frame.groupby("generation", sort=True):
        pops.append(Population(int(g), float(rows.epsilon.iloc[0]), prior.internal(rows[prior.labels].to_numpy()),
                               rows.weight.to_numpy(), rows.distance.to_numpy(), np.empty((len(rows), 0)),
                               int(rows.simulations.iloc[0]),
                               float(rows.wall_time_s.iloc[0]) if "wall_time_s" in rows else math.nan))
    return pops


def weighted_quantile(x: np.ndarray, weights: np.ndarray, q: float | np.ndarray) -> np.ndarray:
    """Quantile(s) of ``x`` under ``weights`` (inverse of the weighted empirical CDF, midpoint rule)."""
    order = np.argsort(x)
    x, w = np.asarray(x, dtype=float)[order], np.asarray(weights, dtype=float)[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(q, cdf, x)


def abc_smc(simulate: Simulator, distance: Callable[[np.ndarray], np.ndarray], prior: Prior, n_particles: int,
            max_generations: int, min_epsilon: float, seed: int, executor: ExecutorSpec | Executor,
            quantile: float = 0.5, min_acceptance: float = 0.02, chunk: int = 25,
            progress: bool = True, start: list[Population] | None = None) -> list[Population]:
    """Approximate the posterior by ABC-SMC with adaptive tolerances.

    Generation 0 samples the prior. Generation t ≥ 1 sets ε_t to the weighted
    ``quantile`` of the previous distances (not below ``min_epsilon``),
    proposes by resampling the previous particles and perturbing them with
    N(0, 2Σ) (Σ their weighted covariance; Beaumont et al. 2009), keeps the
    first ``n_particles`` proposals in index order with distance ≤ ε_t and
    weighs them ``π(θ)/Σ_j w_j K(θ | θ_j)``.

    Stops after ``max_generations`` generations, once ε reaches
    ``min_epsilon``, or when a generation would need more than
    ``n_particles / min_acceptance`` simulations (that generation is dropped).

    Args:
        simulate: ``simulate(values, seeds) -> summaries``, run through the executor.
        distance: summaries ``[k, m]`` → distances ``[k]``.
        prior: the priors.
        n_particles: particles per generation.
        max_generations: generations including the prior sample.
        min_epsilon: the tolerance at which to stop.
        seed: root seed (see the module docstring for the streams).
        executor: where the simulations run.
        quantile: the tolerance schedule's quantile.
        min_acceptance: the lowest acceptance rate worth paying for.
        chunk: simulations per executor task.
        progress: show progress bars.
        start: the populations of an earlier run with the same settings, to resume from
            (the generations' seeds do not depend on when they run).

    Returns:
        The populations, generation 0 first.
    """
    budget = int(math.ceil(n_particles / min_acceptance))
    t0 = time.perf_counter()
    if start:
        populations = list(start)
        done = populations[-1].wall_time
        offset = done if math.isfinite(done) else 0.0
    else:
        offset = 0.0
        rng = np.random.default_rng(replication_seed(seed, 0, 0, 0))
        theta = prior.sample(rng, n_particles)
        seeds = [replication_seed(seed, 1, 0, k) for k in range(n_particles)]
        with tqdm(total=n_particles, desc="ABC generation 0 (prior)", unit="sim", disable=not progress) as bar:
            summaries = run_batch(simulate, prior.natural(theta), seeds, executor, chunk, bar)
        populations = [Population(0, math.inf, theta, np.full(n_particles, 1.0 / n_particles), distance(summaries),
                                  summaries, n_particles, time.perf_counter() - t0)]
    for g in range(len(populations), max_generations):
        prev = populations[-1]
        if prev.epsilon <= min_epsilon:
            break
        epsilon = max(float(weighted_quantile(prev.distances, prev.weights, quantile)), min_epsilon)
        cov = 2.0 * np.atleast_2d(np.cov(prev.theta.T, aweights=prev.weights))
        kernel = stats.multivariate_normal(mean=np.zeros(len(prior.specs)), cov=cov, allow_singular=True)
        accepted: list[tuple[np.ndarray, float, np.ndarray]] = []
        proposed, batch, rate = 0, 0, max(prev.acceptance if g > 1 else 0.5, min_acceptance)
        with tqdm(total=n_particles, desc=f"ABC generation {g} (ε={epsilon:.4g})", unit="acc",
                  disable=not progress) as bar:
            while len(accepted) < n_particles and proposed < budget:
                need = n_particles - len(accepted)
                size = min(int(math.ceil(1.2 * need / rate)) + 2, budget - proposed)
                brng = np.random.default_rng(replication_seed(seed, 0, g, batch))
                props = _propose(brng, prev, kernel, prior, size)
                bseeds = [replication_seed(seed, 1, g, proposed + k) for k in range(size)]
                sums = run_batch(simulate, prior.natural(props), bseeds, executor, chunk)
                d = distance(sums)
                for k in np.flatnonzero(d <= epsilon):
                    if len(accepted) < n_particles:
                        accepted.append((props[k], d[k], sums[k]))
                proposed += size
                batch += 1
                rate = max(len(accepted) / proposed, min_acceptance)
                bar.update(min(len(accepted), n_particles) - bar.n)
        if len(accepted) < n_particles:
            break  # acceptance fell below min_acceptance: keep the last complete generation
        theta = np.array([a[0] for a in accepted])
        log_w = prior.logpdf(theta) - logsumexp(
            np.log(prev.weights)[None, :] + kernel.logpdf(theta[:, None, :] - prev.theta[None, :, :]
                                                          ).reshape(len(theta), -1), axis=1)
        w = np.exp(log_w - log_w.max())
        populations.append(Population(g, epsilon, theta, w / w.sum(), np.array([a[1] for a in accepted]),
                                      np.array([a[2] for a in accepted]), proposed, offset + time.perf_counter() - t0))
    return populations


def _propose(rng: np.random.Generator, prev: Population, kernel: Any, prior: Prior, size: int) -> np.ndarray:
    """``size`` proposals inside the prior's support: resample, perturb, redraw those outside."""
    out = np.empty((0, prev.theta.shape[1]))
    while len(out) < size:
        idx = rng.choice(len(prev.theta), size=size, p=prev.weights)
        cand = prev.theta[idx] + np.atleast_2d(kernel.rvs(size=size, random_state=rng)).reshape(size, -1)
        out = np.vstack([out, cand[np.isfinite(prior.logpdf(cand))]])
    return out[:size]


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
        """The picklable simulator of this problem."""
        return functools.partial(simulate_chunk, self.template, self.prior.specs)

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


def point_estimate(problem: Problem, posterior: Population, executor: ExecutorSpec | Executor, replications: int,
                   tolerance: float = 0.002, max_iterations: int = 30, chunk: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Posterior medians, with the constants of fitted cities re-solved to hit their counts.

    Each iteration runs the scenario's ``replications`` (its own seeds, common
    random numbers) and moves each fitted city's constant by
    ``log(1 + gap / inflow)``, the gap between the documented and the median
    simulated count relative to the median gross inflow — a damped BLP-style
    contraction. Stops when every gap is within ``tolerance`` (relative).

    Returns:
        The point estimate (natural scale) and the summaries of its replications ``[r, m]``.
    """
    values = problem.prior.natural(np.array([weighted_quantile(posterior.theta[:, j], posterior.weights, 0.5)
                                             for j in range(posterior.theta.shape[1])]))
    simulate = problem.simulator()
    seeds = [replication_seed(problem.scenario.seed, r) for r in range(replications)]
    solved = [(problem.prior.names.index(f"cities.{f.city}.attractiveness"), f) for f in problem.fitted
              if f.quantity == "firms" and f"cities.{f.city}.attractiveness" in problem.prior.names]
    for _ in range(max_iterations):
        sums = run_batch(simulate, np.tile(values, (replications, 1)), seeds, executor, chunk)
        gaps = []
        for j, fig in solved:
            med = float(np.median(problem.layout.value(sums, fig)))
            inflow_fig = fig.model_copy(update={"quantity": "gross_inflow",
                                                "from_stock_end": problem.scenario.time.start - 1})
            inflow = float(np.median(problem.layout.value(sums, inflow_fig)))
            gaps.append(fig.value / med - 1.0)
            values[j] += math.log(max(1.0 + (fig.value - med) / max(inflow, 1.0), 0.05))
        if not gaps or max(abs(g) for g in gaps) <= tolerance:
            break
    sums = run_batch(simulate, np.tile(values, (replications, 1)), seeds, executor, chunk)
    return values, sums


def symmetric_run(problem: Problem, point: np.ndarray, executor: ExecutorSpec | Executor, replications: int,
                  chunk: int = 5) -> np.ndarray:
    """The point estimate with the fitted cities' constants set to their mean, on the scenario's seeds.

    Shows what the *assumed* city differences (sector mixes, anchors, policies)
    do without the estimated difference between the constants. Returns the
    summaries ``[r, m]``.
    """
    idx = [problem.prior.names.index(f"cities.{f.city}.attractiveness") for f in problem.fitted
           if f.quantity == "firms" and f"cities.{f.city}.attractiveness" in problem.prior.names]
    values = np.array(point, dtype=float)
    if idx:
        values[idx] = values[idx].mean()
    seeds = [replication_seed(problem.scenario.seed, r) for r in range(replications)]
    return run_batch(problem.simulator(), np.tile(values, (replications, 1)), seeds, executor, chunk)


def posterior_predictive(problem: Problem, posterior: Population, draws: int, seed: int, executor: ExecutorSpec | Executor,
                         chunk: int = 25, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``draws`` particles by weight and simulate each with a fresh seed.

    Returns:
        The draws' values (natural scale) ``[draws, d]`` and summaries ``[draws, m]``.
    """
    rng = np.random.default_rng(replication_seed(seed, 2, 0))
    idx = rng.choice(len(posterior.theta), size=draws, p=posterior.weights)
    values = problem.prior.natural(posterior.theta[idx])
    seeds = [replication_seed(seed, 3, k) for k in range(draws)]
    with tqdm(total=draws, desc="posterior predictive", unit="sim", disable=not progress) as bar:
        sums = run_batch(problem.simulator(), values, seeds, executor, chunk, bar)
    return values, sums


# ----------------------------------------------------------------------------- results
def posterior_table(prior: Prior, posterior: Population, rng_seed: int = 0) -> pd.DataFrame:
    """Per calibrated quantity: prior and posterior median and 90% interval, width ratio, verdict.

    ``width_ratio`` is the posterior's 90% interval width over the prior's, on
    the internal scale (log10 for log-uniform priors): near 1 the data say
    nothing; ``constrained`` below 0.5, ``weakly constrained`` below 0.8. Every
    verdict is ``not interpretable`` when the population's effective sample size
    is below :data:`MIN_ESS`; ``ess`` and ``reason`` say so in the table.
    """
    reason = too_few_particles(posterior)
    prior_draws = prior.sample(np.random.default_rng(rng_seed), 20000)
    qs = [INTERVAL[0], 0.5, INTERVAL[1]]
    rows = []
    for j, (name, spec) in enumerate(zip(prior.labels, prior.specs, strict=True)):
        before = np.quantile(prior_draws[:, j], qs)
        after = weighted_quantile(posterior.theta[:, j], posterior.weights, np.array(qs))
        ratio = (after[2] - after[0]) / (before[2] - before[0])
        nat_before, nat_after = (10.0 ** q if spec.kind == "loguniform" else q for q in (before, after))
        rows.append({"quantity": name, "prior": spec.kind, "prior_median": nat_before[1], "prior_lo": nat_before[0],
                     "prior_hi": nat_before[2], "median": nat_after[1], "lo": nat_after[0], "hi": nat_after[2],
                     "width_ratio": ratio,
                     "verdict": "not interpretable" if reason else "constrained" if ratio < 0.5
                     else "weakly constrained" if ratio < 0.8 else "not constrained",
                     "ess": posterior.ess(), "reason": reason})
    return pd.DataFrame(rows)


def too_few_particles(posterior: Population) -> str:
    """Why the population's intervals and verdicts are not interpretable (its ESS below :data:`MIN_ESS`); '' if they are."""
    ess = posterior.ess()
    if ess >= MIN_ESS:
        return ""
    return (f"effective sample size {ess:.0f}, below the {MIN_ESS} needed for 90% credible intervals to rest on more than "
            "a few particles in each tail; rerun with more --particles")


def weighted_correlation(theta: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted Pearson correlation matrix of the particles (internal scale)."""
    cov = np.atleast_2d(np.cov(theta.T, aweights=weights))
    sd = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
    return cov / np.outer(sd, sd)


def overtake_year(layout: Layout, summaries: np.ndarray, first: str, second: str) -> np.ndarray:
    """First recorded year in which ``first`` has more firms than ``second`` (``nan`` if never)."""
    firms = layout.firms(summaries)
    ahead = firms[..., layout.cities.index(first)] > firms[..., layout.cities.index(second)]
    years = np.array(layout.years, dtype=float)
    return np.where(ahead.any(axis=-1), years[np.argmax(ahead, axis=-1)], np.nan)


def validation_column(figure: Figure) -> str:
    """The column of :func:`predictive_outputs` holding a validation figure's simulated counterpart."""
    if figure.quantity == "overtake_by":
        return f"year {figure.city} overtakes {figure.other}"
    if figure.statement:
        return f"{figure.id} holds"
    return f"{figure.id} at {figure.time}"


def predictive_outputs(problem: Problem, summaries: np.ndarray) -> pd.DataFrame:
    """Per predictive draw: every city's final count, national total, relocations per year, and validation quantities."""
    layout, end = problem.layout, problem.scenario.time.end
    firms = layout.firms(summaries)
    out = {f"{c} {end}": firms[:, -1, i] for i, c in enumerate(layout.cities)}
    out[f"national {end}"] = firms[:, -1].sum(axis=1)
    years = len(layout.years) - 1
    out["relocations per year, % of firms"] = 100 * layout.moves(summaries)[:, -1] / years / firms.sum(-1).mean(-1)
    for fig in problem.targets.validation():
        if fig.quantity == "overtake_by":
            out[validation_column(fig)] = overtake_year(layout, summaries, fig.city, fig.other)
        elif fig.statement:
            out[validation_column(fig)] = layout.holds(summaries, fig).astype(float)   # 1 where it holds
        else:
            out[validation_column(fig)] = layout.value(summaries, fig)
    return pd.DataFrame(out)


def other_reading(folder: Path, reading: str) -> pd.DataFrame:
    """The posterior table of a calibration under the other reading (its ``posterior.csv``), for comparison.

    Raises:
        InferenceError: the folder holds no calibration, or one under the same reading.
    """
    import json

    try:
        recorded = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("reading")
        table = pd.read_csv(folder / "posterior.csv")
    except (OSError, ValueError) as exc:
        raise InferenceError(f"--other-reading: {folder}: not a calibration folder ({' '.join(str(exc).split())})") from None
    if recorded == reading:
        raise InferenceError(f"--other-reading: {folder}: calibrated under the same reading ({reading})")
    table.attrs["reading"] = recorded
    table.attrs["folder"] = str(folder)
    return table


def resume_populations(path: Path, prior: Prior, particles: int) -> list[Population]:
    """The populations of an earlier run, checked against this run's priors and particle count.

    Raises:
        InferenceError: unreadable file, other quantities or another number of particles.
    """
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InferenceError(f"--resume: {path}: cannot read: {' '.join(str(exc).split())}") from None
    populations = populations_from_frame(prior, frame, f"--resume: {path}")
    sizes = {len(p.theta) for p in populations}
    if sizes != {particles}:
        raise InferenceError(f"--resume: {path}: generations of {sorted(sizes)} particles, but --particles is {particles}")
    return populations
