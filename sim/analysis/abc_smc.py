"""Approximate Bayesian computation by sequential Monte Carlo (ABC-SMC) over any simulator.

Generic: a simulator maps parameter values (and their seeds) to summary vectors, a
distance maps summaries to their distance from the data, and independent priors (uniform,
log-uniform or truncated normal) span the parameters. The posterior is approximated by
populations of weighted particles (Toni et al. 2009; Beaumont et al. 2009): each
generation accepts the proposals whose distance falls within a tolerance ε, set to a
quantile of the previous distances, and perturbs with a Gaussian kernel of twice the
previous population's weighted covariance.

Reproducibility: proposal batch ``b`` of generation ``g`` draws from
``SeedSequence(seed, spawn_key=(0, g, b))`` and proposal ``k`` simulates with
``SeedSequence(seed, spawn_key=(1, g, k))``; proposals are accepted in index order, so
the result does not depend on how ``imap`` runs the simulations.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import logsumexp

__all__ = ["Imap", "Population", "Prior", "PriorSpec", "Simulator", "abc_smc", "populations_frame",
           "populations_from_frame", "run_batch", "serial_imap", "weighted_correlation", "weighted_quantile"]


class PriorSpec(Protocol):
    """One quantity's prior: what :class:`Prior` reads of it (Modu's :class:`~sim.scenario.factors.Factor` is one)."""

    target: str
    label: str
    kind: str  # "uniform", "loguniform" or "normal" (truncated to [low, high])
    low: float
    high: float
    mean: float | None
    sd: float | None


def _seed(seed: int, *key: int) -> np.random.SeedSequence:
    """The seed sequence of one stream of the run, keyed by its identity."""
    return np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key))


class _NoBar:
    """A progress bar that shows nothing (``progress=None``)."""

    n = 0

    def update(self, n: int) -> None:
        self.n += n


def _bar(progress: Callable[..., Any] | None, **options: Any) -> Any:
    return progress(**options) if progress is not None else contextlib.nullcontext(_NoBar())


# ----------------------------------------------------------------------------- priors
@dataclass(frozen=True)
class Prior:
    """Independent priors over named quantities, sampled and perturbed on an internal scale.

    The internal scale is the natural one except for log-uniform priors, which
    are uniform in log10; the ABC kernel perturbs on the internal scale.
    """

    specs: tuple[PriorSpec, ...]

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


# ----------------------------------------------------------------------------- simulations
Simulator = Callable[[np.ndarray, list[np.random.SeedSequence]], np.ndarray]
"""``simulate(values [k, d], seeds) -> summaries [k, m]``; picklable."""


Imap = Callable[[Callable[..., Any], list[tuple[Any, ...]]], Iterable[tuple[int, Any]]]
"""``imap(fn, tasks)`` runs ``fn(*task)`` for every task and yields ``(task index, result)`` in any order
(:func:`serial_imap` in this process; Modu passes its executors' map)."""


def serial_imap(fn: Callable[..., Any], tasks: list[tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
    """The tasks one after the other, in this process: an :data:`Imap`."""
    for i, task in enumerate(tasks):
        yield i, fn(*task)


def run_batch(simulate: Simulator, values: np.ndarray, seeds: list[np.random.SeedSequence],
              imap: Imap = serial_imap, chunk: int = 25, bar: Any | None = None) -> np.ndarray:
    """Run ``simulate`` over rows of ``values`` in chunks of ``chunk`` rows through ``imap``; results in row order.

    ``bar``: a progress bar with ``update(n)`` (tqdm's), advanced by each chunk's rows.
    """
    starts = list(range(0, len(values), chunk))
    tasks = [(values[s: s + chunk], seeds[s: s + chunk]) for s in starts]
    parts: dict[int, np.ndarray] = {}
    for i, result in imap(simulate, tasks):
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
        ValueError: if the table's columns are not this prior's quantities (one line naming ``source``).
    """
    missing = [c for c in ["generation", "epsilon", "simulations", "weight", "distance", *prior.labels]
               if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: columns: missing {', '.join(missing)} (was it written with these priors?)")
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
            max_generations: int, min_epsilon: float, seed: int, imap: Imap = serial_imap,
            quantile: float = 0.5, min_acceptance: float = 0.02, chunk: int = 25,
            progress: Callable[..., Any] | None = None, start: list[Population] | None = None) -> list[Population]:
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
        simulate: ``simulate(values, seeds) -> summaries``, run through ``imap``.
        distance: summaries ``[k, m]`` → distances ``[k]``.
        prior: the priors.
        n_particles: particles per generation.
        max_generations: generations including the prior sample.
        min_epsilon: the tolerance at which to stop.
        seed: root seed (see the module docstring for the streams).
        imap: how the simulations run (:data:`Imap`; in this process by default).
        quantile: the tolerance schedule's quantile.
        min_acceptance: the lowest acceptance rate worth paying for.
        chunk: simulations per task.
        progress: a progress-bar class called as ``progress(total=, desc=, unit=)`` (tqdm's); None: no bars.
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
        rng = np.random.default_rng(_seed(seed, 0, 0, 0))
        theta = prior.sample(rng, n_particles)
        seeds = [_seed(seed, 1, 0, k) for k in range(n_particles)]
        with _bar(progress, total=n_particles, desc="ABC generation 0 (prior)", unit="sim") as bar:
            summaries = run_batch(simulate, prior.natural(theta), seeds, imap, chunk, bar)
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
        with _bar(progress, total=n_particles, desc=f"ABC generation {g} (ε={epsilon:.4g})", unit="acc") as bar:
            while len(accepted) < n_particles and proposed < budget:
                need = n_particles - len(accepted)
                size = min(int(math.ceil(1.2 * need / rate)) + 2, budget - proposed)
                brng = np.random.default_rng(_seed(seed, 0, g, batch))
                props = _propose(brng, prev, kernel, prior, size)
                bseeds = [_seed(seed, 1, g, proposed + k) for k in range(size)]
                sums = run_batch(simulate, prior.natural(props), bseeds, imap, chunk)
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


def weighted_correlation(theta: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted Pearson correlation matrix of the particles (internal scale)."""
    cov = np.atleast_2d(np.cov(theta.T, aweights=weights))
    sd = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
    return cov / np.outer(sd, sd)
