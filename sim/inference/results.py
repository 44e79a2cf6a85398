"""A finished calibration as a result object: every number its report states, as tables.

:class:`CalibrationResult` holds what ``modu calibrate`` computed (the ABC
populations, the point estimate and its runs, the posterior predictive) and
builds the tables the report formats (:meth:`CalibrationResult.tables`): each
is saved as a CSV beside ``report.md``, so a number in the report can be found
in a file. Facts about the scenario (anchors, pools, capacities) and the data
(documented figures) come from the scenario and the targets, never from text.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sim._progress import tqdm
from sim.analysis.abc_smc import Population, abc_smc, populations_frame, weighted_correlation, weighted_quantile
from sim.experiments.executors import Executor, ExecutorSpec, mapper, open_executor
from sim.inference.estimates import (
    INTERVAL,
    point_estimate,
    posterior_predictive,
    posterior_table,
    predictive_outputs,
    symmetric_run,
    validation_column,
)
from sim.inference.identify import (
    FitSettings,
    SBCResult,
    coverage_table,
    leave_one_out,
    regime_table,
    simulation_based_calibration,
)
from sim.inference.problem import Problem
from sim.inference.quantities import SharedFactor, SplitFactor
from sim.model.metrics import band

STRONG_CORRELATION = 0.5
"""|r| from which a posterior correlation between two quantities is reported as strong."""

PINNED_CORRELATION = 0.9
"""|r| from which the pinned combination (difference or sum) of a pair is reported."""

DRIVER_CORRELATION = 0.3
"""|Spearman ρ| from which a calibrated quantity is named as driving a predicted output."""

MIN_DRIVER_DRAWS = 10
"""Fewest finite predictive draws of an output for its Spearman correlations to be computed."""


@dataclass
class CalibrationResult:
    """What a calibration computed.

    Attributes:
        problem: what was calibrated, against what.
        populations: the ABC-SMC generations, the prior sample first.
        point: the point estimate (natural scale), one value per calibrated quantity.
        point_sums: summaries of the scenario's replications at the point estimate ``[r, m]``.
        symmetric_sums: the same with the fitted cities' constants equalised ``[r, m]``.
        values: the posterior predictive draws' values ``[draws, d]``.
        sums: their summaries ``[draws, m]``.
        wall_time: seconds the calibration took.
        seed: the root seed.
        executor: where the simulations ran.
        options: the settings (particles, generations, engine, ...).
        others: the posterior tables of calibrations under other readings, if compared.
        sbc: the simulation-based calibration, if run.
        lopo: the leave-one-pattern-out table, if run.
    """

    problem: Problem
    populations: list[Population]
    point: np.ndarray
    point_sums: np.ndarray
    symmetric_sums: np.ndarray
    values: np.ndarray
    sums: np.ndarray
    wall_time: float
    seed: int
    executor: str
    options: dict[str, Any] = field(default_factory=dict)
    others: list[pd.DataFrame] = field(default_factory=list)
    sbc: SBCResult | None = None
    lopo: pd.DataFrame | None = None

    @property
    def posterior(self) -> Population:
        """The last generation."""
        return self.populations[-1]

    def to_df(self) -> pd.DataFrame:
        """The posterior table: per quantity, prior and posterior median and 90% interval, width ratio, verdict."""
        return posterior_table(self.problem.prior, self.posterior)

    def outputs(self) -> pd.DataFrame:
        """Per posterior predictive draw: every city's final count, national total, relocations, validation quantities."""
        return predictive_outputs(self.problem, self.sums)

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table the report states, by file stem (each written as ``<stem>.csv``)."""
        posterior = self.to_df()
        outputs = self.outputs()
        identification = {"coverage": coverage_table(self.sbc), "sbc_ranks": self.sbc.to_df()} if self.sbc else {}
        if self.lopo is not None:
            identification["leave_one_out"] = self.lopo
        return {
            "posterior": posterior,
            "populations": populations_frame(self.problem.prior, self.populations),
            "predictive": pd.concat([pd.DataFrame(self.values, columns=self.problem.prior.labels), outputs], axis=1),
            "generations": generations_table(self.populations),
            "correlations": correlation_table(self.problem, self.posterior),
            "combinations": combinations_table(self.problem, self.posterior),
            "fit": fit_table(self.problem, self.point_sums, self.sums),
            "statements": statements_table(self.problem, self.point_sums, self.sums),
            "overtaking": overtaking_table(self.problem, self.point_sums, self.symmetric_sums),
            "forecasts": forecast_table(self.problem, outputs, posterior),
            "validation": validation_table(self.problem, outputs),
            "drivers": drivers_table(self.problem, posterior, self.values, outputs),
            "regimes": regime_table(self.problem, self.posterior),
            **identification,
        }


def generations_table(populations: list[Population]) -> pd.DataFrame:
    """One row per ABC-SMC generation: tolerance, simulations, acceptance rate, effective sample size."""
    return pd.DataFrame([{"generation": p.generation, "epsilon": p.epsilon, "simulations": p.simulations,
                          "acceptance": p.acceptance, "ess": p.ess()} for p in populations])


def correlation_table(problem: Problem, posterior: Population) -> pd.DataFrame:
    """Every pair of calibrated quantities with its weighted posterior correlation (sampling scale), strongest first."""
    corr = weighted_correlation(posterior.theta, posterior.weights)
    labels = problem.prior.labels
    rows = [{"a": labels[i], "b": labels[j], "r": corr[i, j]} for i in range(len(labels)) for j in range(i)]
    frame = pd.DataFrame(rows, columns=["a", "b", "r"])
    return frame.reindex(frame.r.abs().sort_values(ascending=False).index).reset_index(drop=True)


def combinations_table(problem: Problem, posterior: Population, rng_seed: int = 1) -> pd.DataFrame:
    """The combination of each very strongly correlated pair that the data pin: its difference (r > 0) or sum (r < 0).

    Columns: ``combination``, ``median``, ``lo``, ``hi`` (90% interval, sampling scale) and ``width_ratio``
    (its interval's width over the prior's).
    """
    prior, labels = problem.prior, problem.prior.labels
    corr = weighted_correlation(posterior.theta, posterior.weights)
    prior_draws = prior.sample(np.random.default_rng(rng_seed), 20000)
    rows = []
    for i in range(len(labels)):
        for j in range(i):
            if abs(corr[i, j]) < PINNED_CORRELATION:
                continue
            sign = -1.0 if corr[i, j] > 0 else 1.0
            post = posterior.theta[:, i] + sign * posterior.theta[:, j]
            before = prior_draws[:, i] + sign * prior_draws[:, j]
            lo, mid, hi = weighted_quantile(post, posterior.weights, np.array([INTERVAL[0], 0.5, INTERVAL[1]]))
            plo, phi = np.quantile(before, INTERVAL)
            rows.append({"combination": f"{labels[i]} {'−' if sign < 0 else '+'} {labels[j]}", "median": mid,
                         "lo": lo, "hi": hi, "width_ratio": (hi - lo) / (phi - plo)})
    return pd.DataFrame(rows, columns=["combination", "median", "lo", "hi", "width_ratio"])


def fit_table(problem: Problem, point_sums: np.ndarray, sums: np.ndarray) -> pd.DataFrame:
    """Each fitted number: documented value (or bounds), the point estimate's median and the predictive band.

    Errors are relative (:meth:`sim.inference.data.Figure.relative_error`): 0 inside a bounded pattern's interval.
    Ranking and ordering statements are in :func:`statements_table`.
    """
    rows = []
    for fig in problem.fitted:
        if fig.statement:
            continue
        at_point = float(np.median(problem.layout.value(point_sums, fig)))
        lo, mid, hi = band(problem.layout.value(sums, fig))
        rows.append({"figure": fig.id, "city": fig.city, "year": fig.year, "model_time": fig.time,
                     "quantity": fig.quantity, "documented": math.nan if fig.value is None else fig.value,
                     "lower": fig.lower, "upper": fig.upper, "point_median": at_point,
                     "point_error": float(fig.relative_error(at_point)), "predictive_median": mid, "predictive_lo": lo,
                     "predictive_hi": hi, "predictive_error": float(fig.relative_error(mid))})
    return pd.DataFrame(rows, columns=["figure", "city", "year", "model_time", "quantity", "documented", "lower", "upper",
                                       "point_median", "point_error", "predictive_median", "predictive_lo",
                                       "predictive_hi", "predictive_error"])


def statements_table(problem: Problem, point_sums: np.ndarray, sums: np.ndarray) -> pd.DataFrame:
    """Every ranking and ordering statement of the targets: how often the model meets it.

    ``holds_point``: share of the point estimate's replications in which the statement holds;
    ``holds_predictive``: share of the posterior predictive draws; ``fitted``: whether the
    calibration fitted it (else it was left out, e.g. under another reading); ``inferred``: the
    source implies rather than states it; ``universe``: the register of its data.
    """
    layout = problem.layout
    rows = [{"figure": f.id, "statement": f"{f.city}: {f.describe()}" if f.quantity == "rank" else f.describe(),
             "model_time": f.time, "universe": f.universe or problem.targets.universe, "inferred": f.inferred,
             "fitted": f in problem.fitted, "holds_point": float(layout.holds(point_sums, f).mean()),
             "holds_predictive": float(layout.holds(sums, f).mean()), "note": " ".join(f.note.split())}
            for f in problem.targets.figures if f.statement]
    return pd.DataFrame(rows, columns=["figure", "statement", "model_time", "universe", "inferred", "fitted",
                                       "holds_point", "holds_predictive", "note"])


def overtaking_table(problem: Problem, point_sums: np.ndarray, symmetric_sums: np.ndarray) -> pd.DataFrame:
    """Fitted cities' end counts: documented, at the point estimate, and with their constants equalised (medians)."""
    layout, end = problem.layout, problem.scenario.time.end
    y = layout.years.index(end)
    rows = []
    for fig in problem.fitted:
        if fig.quantity != "firms" or fig.time != end:
            continue
        c = layout.cities.index(fig.city)
        start = next((f.value for f in problem.targets.initial() if f.city == fig.city), math.nan)
        rows.append({"city": fig.city, "documented_start": start, "documented_end": fig.value,
                     "point_median": float(np.median(layout.firms(point_sums)[:, y, c])),
                     "equalised_median": float(np.median(layout.firms(symmetric_sums)[:, y, c]))})
    return pd.DataFrame(rows, columns=["city", "documented_start", "documented_end", "point_median", "equalised_median"])


def forecast_cities(problem: Problem) -> list[str]:
    """Documented cities with an initial count but no fitted count at the end: their end counts are forecasts."""
    fitted = {f.city for f in problem.fitted if f.quantity == "firms"}
    return [f.city for f in problem.targets.initial() if f.quantity == "firms" and f.city not in fitted]


def constant_of(problem: Problem, city: str) -> str | None:
    """The label of the calibrated quantity that sets a city's constant (its own, or one shared), if any."""
    for spec in problem.prior.specs:
        if isinstance(spec, SharedFactor) and spec.field == "attractiveness" and city in spec.cities:
            return spec.label
        if not isinstance(spec, SharedFactor | SplitFactor) and spec.target in (f"cities.{city}.attractiveness",
                                                                                f"cities[{city}].attractiveness"):
            return spec.label
    return None


def forecast_table(problem: Problem, outputs: pd.DataFrame, posterior: pd.DataFrame) -> pd.DataFrame:
    """Every city's count at the end: posterior predictive median and 90% interval, and whether it was fitted.

    ``prior_driven`` marks a city whose constant (its own, or one it shares) the data do not constrain,
    so that its interval is mostly the prior's.
    """
    end = problem.scenario.time.end
    fitted = {f.city for f in problem.fitted if f.quantity == "firms"}
    verdict = posterior.set_index("quantity").verdict
    rows = []
    for city in problem.layout.cities:
        lo, mid, hi = band(outputs[f"{city} {end}"])
        constant = constant_of(problem, city)
        rows.append({"city": city, "year": end, "median": mid, "lo": lo, "hi": hi, "fitted": city in fitted,
                     "prior_driven": bool(constant is not None and verdict.get(constant) == "not constrained")})
    return pd.DataFrame(rows)


def validation_table(problem: Problem, outputs: pd.DataFrame) -> pd.DataFrame:
    """Each figure held out of the fit against the posterior predictive, with a verdict either way.

    Overtaking figures: the share of draws in which the overtaking happens by the year (``consistent`` from 50%)
    and the share in which it never does. Statements (ranks, orders): the share of draws in which they hold
    (``consistent`` from 50%). Numbers (counts, totals, shares): the predictive median, its relative error
    against the documented value and the 90% interval, ``inside`` when the interval holds the documented value
    (or meets its bounds). The last row is the rarity of relocation (relocations per year, % of firms;
    ``consistent`` when the interval is under 1%).
    """
    rows = []
    blank = {"documented": math.nan, "lower": math.nan, "upper": math.nan, "share_by_year": math.nan,
             "share_never": math.nan, "share_holds": math.nan, "median": math.nan, "lo": math.nan, "hi": math.nan,
             "error": math.nan}
    for fig in problem.targets.validation():
        column = outputs[validation_column(fig)]
        row = {"figure": fig.id, "quantity": fig.quantity, "city": fig.city, "other": fig.other, "year": fig.year,
               "model_time": fig.time, **blank}
        if fig.quantity == "overtake_by":
            share_by = float(np.mean(column <= fig.time))
            row.update(share_by_year=share_by, share_never=float(np.mean(column.isna())),
                       median=float(np.nanmedian(column)), verdict="consistent" if share_by >= 0.5 else "not consistent")
        elif fig.statement:
            holds = float(np.mean(column))
            row.update(other=fig.describe(), share_holds=holds, verdict="consistent" if holds >= 0.5 else "not consistent")
        else:
            lo, mid, hi = band(column)
            row.update(documented=fig.value, lower=fig.lower, upper=fig.upper, median=mid, lo=lo, hi=hi,
                       error=float(fig.relative_error(mid)), verdict="inside" if fig.inside(lo, hi) else "outside")
        rows.append(row)
    lo, mid, hi = band(outputs["relocations per year, % of firms"])
    rows.append({"figure": "relocation_rare", "quantity": "relocations_per_year_pct", "city": None, "other": None,
                 "year": math.nan, "model_time": problem.scenario.time.end, **blank, "median": mid, "lo": lo, "hi": hi,
                 "verdict": "consistent" if hi < 1 else "not consistent"})
    return pd.DataFrame(rows)


def drivers_table(problem: Problem, posterior: pd.DataFrame, values: np.ndarray, outputs: pd.DataFrame) -> pd.DataFrame:
    """Spearman ρ between each calibrated quantity and each predicted output over the predictive draws.

    One row per output × quantity with |ρ| ≥ :data:`DRIVER_CORRELATION`, with the output's median and 90%
    band and the quantity's verdict (an output driven by a 'not constrained' quantity inherits its prior).
    """
    verdict = posterior.set_index("quantity").verdict
    rows = []
    for col in outputs.columns:
        y = outputs[col].to_numpy(dtype=float)
        ok = np.isfinite(y)
        if ok.sum() < MIN_DRIVER_DRAWS or np.ptp(y[ok]) == 0:
            continue
        lo, mid, hi = band(y[ok])
        for j, name in enumerate(problem.prior.labels):
            rho = stats.spearmanr(values[ok, j], y[ok]).statistic
            if np.isfinite(rho) and abs(rho) >= DRIVER_CORRELATION:
                rows.append({"output": col, "median": mid, "lo": lo, "hi": hi, "quantity": name, "rho": rho,
                             "verdict": verdict.get(name, "")})
    frame = pd.DataFrame(rows, columns=["output", "median", "lo", "hi", "quantity", "rho", "verdict"])
    position = {name: i for i, name in enumerate(outputs.columns)}
    order = frame.assign(position=frame.output.map(position), strength=-frame.rho.abs())
    return frame.loc[order.sort_values(["position", "strength"], kind="stable").index].reset_index(drop=True)


def run_calibration(problem: Problem, particles: int, generations: int, min_epsilon: float, predictive: int, seed: int,
                    executor: ExecutorSpec | Executor, progress: bool = True, resumed: list[Population] | None = None,
                    others: list[pd.DataFrame] | None = None, options: dict[str, Any] | None = None, sbc: int = 0,
                    lopo: bool = False, reduced: FitSettings | None = None) -> CalibrationResult:
    """Calibrate: ABC-SMC, the point estimate, its run with the constants equalised, and the posterior predictive.

    Args:
        problem: what is calibrated (:func:`sim.inference.problem.make_problem`).
        particles: ABC particles per generation.
        generations: most generations, the prior sample included.
        min_epsilon: stop once the tolerance reaches this.
        predictive: posterior predictive simulations.
        seed: root seed of every stream.
        executor: where the simulations run (an executor spec, or one opened for many calls).
        progress: show progress bars.
        resumed: the populations of an earlier run with the same settings, to continue from.
        others: the posterior tables of calibrations under other readings, for the report.
        options: settings recorded with the result (they do not change the computation).
        sbc: synthetic datasets of the simulation-based calibration (0: none).
        lopo: also fit without each pattern in turn (leave-one-pattern-out).
        reduced: the ABC settings of those many fits.
    """
    start = time.perf_counter()
    with open_executor(executor) as ex:
        populations = abc_smc(problem.simulator(), problem.distance, problem.prior, particles, generations,
                              min_epsilon, seed, mapper(ex), progress=tqdm if progress else None, start=resumed)
        point, point_sums = point_estimate(problem, populations[-1], ex, problem.scenario.replications)
        symmetric_sums = symmetric_run(problem, point, ex, problem.scenario.replications)
        values, sums = posterior_predictive(problem, populations[-1], predictive, seed, ex, progress=progress)
        reduced = reduced or FitSettings()
        t_id = time.perf_counter()
        sbc_result = simulation_based_calibration(problem, sbc, reduced, seed, ex, progress) if sbc else None
        t_sbc = time.perf_counter() - t_id
        lopo_table = leave_one_out(problem, reduced, seed, ex) if lopo else None
        t_lopo = time.perf_counter() - t_id - t_sbc
        described = ex.describe()
    earlier = resumed[-1].wall_time if resumed and math.isfinite(resumed[-1].wall_time) else 0.0
    recorded = {"particles": particles, "generations": generations, "min_epsilon": min_epsilon,
                "predictive": predictive, "abc_wall_time_s": populations[-1].wall_time,
                "sbc_datasets": sbc, "sbc_wall_time_s": t_sbc, "leave_one_out": lopo, "lopo_wall_time_s": t_lopo,
                "reduced_particles": reduced.particles, "reduced_generations": reduced.generations,
                **(options or {})}
    return CalibrationResult(problem, populations, point, point_sums, symmetric_sums, values, sums,
                             wall_time=time.perf_counter() - start + earlier, seed=seed, executor=described,
                             options=recorded, others=list(others or []), sbc=sbc_result, lopo=lopo_table)
