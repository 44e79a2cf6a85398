"""``modu compare``: scenarios side by side under common random numbers, written for planners.

Every scenario runs the same replications with the same root seed, so
replication r of each one draws from ``SeedSequence(seed, spawn_key=(r,))``
(:func:`sim.experiments.ensemble.run_ensemble`): its differences from the first scenario
are *paired* by replication, and their intervals are those of paired
differences (common random numbers make them narrower than independent runs
would). The first scenario is the reference.

What is compared:

- per city and for all cities together (``All cities``): firms at the end
  (mean and 5th–95th percentile of replications), share, lock-in probability (the
  share of replications a city ends first), births, deaths, moves in and
  out, and spending by lever;
- **cost-effectiveness** against the first scenario: firms gained (paired
  mean with its 95% confidence interval), extra spending, and firms gained per 100 M yuan
  of extra spending where the spending differs;
- **growth accounting against no policy**: each scenario is also run with
  every budget 0 (:func:`no_policy`; identical variants run once), and each
  city's difference is split into births, deaths, moves in and moves out, so
  a planner sees whether a city's gain is new firms for the country
  (positive-sum: the national total rises) or firms that would have been
  born or stayed elsewhere (zero-sum: the national total does not move).

Cities are matched by name. Per-city comparisons cover the cities present in
every scenario; a city only some scenarios have is listed in the report and
counted in their ``All cities`` totals only. Scenarios must share their time
span (start, end and steps per year) and have distinct names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sim.experiments.ensemble import Ensemble, run_ensemble
from sim.experiments.errors import ExperimentError
from sim.experiments.executors import Executor, ExecutorSpec, open_executor
from sim.model.history import FLOW_KINDS
from sim.model.metrics import BAND, lock_in
from sim.model.parameters import LEVERS
from sim.scenario import EVENT_ACTIONS, Scenario, load_scenario
from sim.scenario.paths import derive, draw_changes

NATIONAL = "All cities"
"""The row that sums every city of a scenario (pools and unmatched cities included)."""

CONFIDENCE = 0.95
"""Level of the intervals of paired mean differences (Student t over replications)."""

SPEND = [f"spend_{lever}" for lever in LEVERS]
POLICY_ACTIONS = ("invest", "budget", "allocation", "strategy", "learning_rate")
"""Event actions that are policy (dropped in the no-policy variant); the others (new anchors, opening and
closing cities) are facts of the world and stay."""


@dataclass
class Arm:
    """One scenario of a comparison and its replications.

    Attributes:
        label: the scenario's name (or ``<name>: no policy`` for a derived variant).
        source: the file it came from, or ``derived from <file>``.
        scenario: the validated scenario.
        ensemble: its replications, once run.
    """

    label: str
    source: str
    scenario: Scenario
    ensemble: Ensemble | None = None


@dataclass
class Comparison:
    """A finished comparison: the arms, the cities compared and the tables built from them.

    Attributes:
        arms: the scenarios in command-line order (the first is the reference).
        no_policy: for each arm's label, the arm that is its no-policy variant (None when not run).
        cities: the cities present in every scenario, in the first scenario's order.
        unmatched: for each scenario label, its cities that are not in every scenario.
        seed: the root seed all arms ran with.
        replications: replications per arm.
        tables: ``replications``, ``summary``, ``counts``, ``effects`` and ``policy`` (see :func:`compare_tables`).
    """

    arms: list[Arm]
    no_policy: dict[str, Arm | None]
    cities: list[str]
    unmatched: dict[str, list[str]]
    seed: int
    replications: int
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


# ---------------------------------------------------------------- scenarios


def no_policy(scenario: Scenario) -> Scenario:
    """The same scenario with no policy (every budget 0).

    Every city's policy is removed (so its stocks start and stay at 0) and the
    policy actions of events are dropped (invest, budget, allocation, strategy,
    learning_rate); new anchors and the opening and closing of cities stay, as
    they are not spending.
    """
    events = []
    for event in scenario.resolved()["events"]:
        kept = {k: v for k, v in event.items() if k not in POLICY_ACTIONS}
        if any(kept.get(k) is not None for k in EVENT_ACTIONS):
            events.append(kept)
    return derive(scenario, {"cities.*.policy": None, "events": events}, f"{scenario.name} (no policy)",
                  name=f"{scenario.name}: no policy",
                  description=f"{scenario.name} with every budget 0 (derived by modu compare)")


def _content(scenario: Scenario) -> str:
    """The scenario's digest without its name and description (to run identical variants once)."""
    return scenario.model_copy(update={"name": "-", "description": ""}).digest()


def plan_comparison(paths: Sequence[Path], with_no_policy: bool = True) -> tuple[list[Arm], dict[str, Arm | None]]:
    """Load and check the scenarios of a comparison, and derive their no-policy variants.

    Raises:
        ScenarioError: a file is not a valid scenario.
        ExperimentError: the scenarios cannot be compared (time spans, names, no common city).
    """
    arms = [Arm(label=(s := load_scenario(p)).name, source=str(p), scenario=s) for p in paths]
    first = arms[0]
    span = _span(first.scenario)
    seen: dict[str, Arm] = {}
    for arm in arms:
        if _span(arm.scenario) != span:
            raise ExperimentError(f"{arm.source}: time: {_span(arm.scenario)} differs from {first.source}'s {span}; "
                                "compared scenarios must cover the same years in the same steps")
        if arm.label in seen:
            raise ExperimentError(f"{arm.source}: name: {arm.label!r} is also the name of {seen[arm.label].source}; "
                                "compared scenarios need distinct names")
        seen[arm.label] = arm
    for i, arm in enumerate(arms[1:], start=2):
        if not _common_cities([a.scenario for a in arms[:i]]):
            others = first.source if i == 2 else f"the scenarios before it ({', '.join(a.source for a in arms[:i - 1])})"
            raise ExperimentError(f"{arm.source}: cities: no city in common with {others}; "
                                "compared scenarios must share city names")
    variants: dict[str, Arm | None] = {a.label: None for a in arms}
    if with_no_policy:
        by_content = {_content(a.scenario): a for a in arms}
        extra: list[Arm] = []
        for arm in arms:
            variant = no_policy(arm.scenario)
            key = _content(variant)
            if key not in by_content:
                by_content[key] = Arm(label=variant.name, source=f"derived from {arm.source}", scenario=variant)
                extra.append(by_content[key])
            variants[arm.label] = by_content[key]
        arms = arms + extra
    return arms, variants


def _span(scenario: Scenario) -> str:
    t = scenario.time
    return f"{t.start}–{t.end} by {t.steps_per_year} steps a year"


def _common_cities(scenarios: Sequence[Scenario]) -> list[str]:
    names = [c.name for c in scenarios[0].cities]
    return [n for n in names if all(any(c.name == n for c in s.cities) for s in scenarios[1:])]


def run_comparison(arms: list[Arm], variants: dict[str, Arm | None], replications: int | None = None,
                   seed: int | None = None, executor: str | ExecutorSpec | Executor = "processes",
                   progress: bool = True, draws: pd.DataFrame | None = None) -> Comparison:
    """Run every arm of a planned comparison with the same seed and replications, and build its tables.

    Args:
        arms: from :func:`plan_comparison`; the first is the reference.
        variants: each scenario's no-policy arm, from :func:`plan_comparison`.
        replications: replications per scenario (default: the first scenario's).
        seed: the root seed of every scenario (default: the first scenario's).
        executor: where replications run (see :mod:`sim.experiments.executors`).
        progress: show progress bars.
        draws: parameter draws (one column per dotted path): replication r of every scenario runs draw r
            (their number sets the replications); None runs the scenarios as written.
    """
    reference = arms[0].scenario
    replications = reference.replications if replications is None else replications
    if draws is not None:
        replications = len(draws)
    changes = None if draws is None else [draw_changes(row) for row in draws.to_dict("records")]
    seed = reference.seed if seed is None else seed
    derived = {id(v) for v in variants.values() if v is not None} - {id(a) for a in arms if a.label in variants}
    with open_executor(executor) as opened:  # one pool (or Dask cluster) for every scenario
        for arm in arms:
            own = changes
            if changes is not None and id(arm) in derived:  # a no-policy variant keeps no policy: its draws lack one
                own = [{k: v for k, v in c.items() if ".policy." not in k} for c in changes]
            arm.ensemble = run_ensemble(arm.scenario, replications=replications, seed=seed, executor=opened,
                                        progress=progress, changes=own)
    originals = [a for a in arms if a.label in variants]
    common = _common_cities([a.scenario for a in originals])
    unmatched = {a.label: [c.name for c in a.scenario.cities if c.name not in common] for a in originals}
    comparison = Comparison(arms=arms, no_policy=variants, cities=common, unmatched=unmatched, seed=seed,
                            replications=replications)
    comparison.tables = compare_tables(comparison)
    return comparison


# ---------------------------------------------------------------- tables


def outcomes(ensemble: Ensemble) -> pd.DataFrame:
    """Per replication and city, plus an ``All cities`` row: the run's end state and totals.

    Columns: ``replication, city, firms`` (at the end), ``births, deaths, moves_in, moves_out`` (over the
    run), ``spend_compute, spend_data, spend_anchor, spend`` (100 M yuan over the run), ``first`` (the city
    ends first among non-pool cities).
    """
    firms, cities, metrics = (ensemble.tables[k] for k in ("firms", "cities", "metrics"))
    last = firms.step.max()
    keys = ["replication", "city"]
    final = firms[firms.step == last].groupby(keys, sort=False)["firms"].sum()
    flows = firms.groupby(keys, sort=False)[list(FLOW_KINDS)].sum()
    spend = cities.groupby(keys, sort=False)[SPEND].sum()
    out = pd.concat([final, flows, spend], axis=1).reset_index()
    out["spend"] = out[SPEND].sum(axis=1)
    leader = metrics[metrics.step == last].set_index("replication")["leader"]
    out["first"] = out.city == out.replication.map(leader)
    national = out.drop(columns=["city", "first"]).groupby("replication", sort=True).sum().reset_index()
    national.insert(1, "city", NATIONAL)
    national["first"] = False
    return pd.concat([out, national], ignore_index=True)


def mean_interval(values: np.ndarray | pd.Series, level: float = CONFIDENCE,
                  support: tuple[float, float] = (-math.inf, math.inf)) -> tuple[float, float, float]:
    """Mean of the finite values and its Student-t confidence interval, cut to the quantity's support.

    The t interval is symmetric about the mean, so with few runs it can reach values the quantity
    cannot take (a count below 0, a probability above 1). The part outside ``support`` holds no
    possible value of the mean, so cutting it off keeps the interval's coverage.

    Args:
        values: one value per run (NaN and infinite values are left out).
        level: coverage of the interval.
        support: the values the mean can take (e.g. ``(0, inf)`` for firms, ``(0, 1)`` for a probability).

    Returns:
        ``(mean, low, high)``; NaN bounds with fewer than two values.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, max(mean - half, support[0]), min(mean + half, support[1])


def paired_differences(arm: pd.DataFrame, reference: pd.DataFrame, cities: Sequence[str]) -> pd.DataFrame:
    """Per replication and city (``cities`` and ``All cities``), ``arm − reference`` of every outcome."""
    keep = [*cities, NATIONAL]
    columns = ["firms", *FLOW_KINDS, *SPEND, "spend"]
    a = arm[arm.city.isin(keep)].set_index(["replication", "city"])[columns]
    b = reference[reference.city.isin(keep)].set_index(["replication", "city"])[columns]
    return (a - b.reindex(a.index)).reset_index()


def _pairing(arm: pd.DataFrame, reference: pd.DataFrame) -> pd.Series:
    """Per city, the correlation over replications of the paired end counts.

    It says how much pairing narrows the intervals: for equal variances, the
    variance of a paired difference is that of independent runs times
    (1 − correlation).
    """
    both = arm.merge(reference, on=["replication", "city"], suffixes=("", "_ref"))
    return both.groupby("city", sort=False)[["firms", "firms_ref"]].corr().xs("firms", level=1)["firms_ref"]


def _per_100m(gained: pd.Series, spend: pd.Series) -> pd.Series:
    """Firms per 100 M yuan, where the spending differs from 0 (else NaN)."""
    return (gained / spend).where(spend.abs() > 1e-9)


def compare_tables(comparison: Comparison) -> dict[str, pd.DataFrame]:
    """The comparison's tables (all means are over replications).

    - ``replications``: :func:`outcomes` of every arm, with a ``scenario`` column;
    - ``summary``: per scenario and city, the end state (mean and 5th–95th percentile), share, lock-in
      probability, flows and spending;
    - ``counts``: per scenario, year and city, firms (mean and 5th–95th percentile) over time;
    - ``effects``: per scenario but the first, and city: the paired difference from the first in firms
      (``firms_gained`` with its interval), spending (``extra_spend``) and ``firms_per_100m`` of extra spending;
    - ``policy``: per scenario and city: the paired difference from its no-policy variant in firms, births,
      deaths, moves in and out, the policy's spending and firms gained per 100 M yuan spent.
    """
    arms = comparison.arms
    per_arm = {a.label: outcomes(a.ensemble) for a in arms}
    replications = pd.concat([df.assign(scenario=label) for label, df in per_arm.items()], ignore_index=True)
    replications = replications[["scenario", *[c for c in replications.columns if c != "scenario"]]]

    summary_rows, count_frames = [], []
    for label, df in per_arm.items():
        total = df[df.city == NATIONAL].set_index("replication")["firms"]
        leaders = df[df["first"]].city
        p_first = lock_in(leaders, list(df.city.unique())) if len(leaders) else {}
        for city, rows in df.groupby("city", sort=False):
            share = rows.set_index("replication")["firms"] / total
            low, high = np.quantile(rows.firms, BAND)
            summary_rows.append({
                "scenario": label, "city": city,
                "firms": rows.firms.mean(), "firms_q05": low,
                "firms_q95": high, "share": share.mean(),
                "lock_in": p_first.get(city, 0.0) if city != NATIONAL else math.nan,
                **{k: rows[k].mean() for k in [*FLOW_KINDS, *SPEND, "spend"]}})
        count_frames.append(_counts_over_time(next(a for a in arms if a.label == label).ensemble, label))
    summary = pd.DataFrame(summary_rows)
    counts = pd.concat(count_frames, ignore_index=True)

    reference = arms[0]
    effect_rows = []
    for arm in arms[1:]:
        if arm.label not in comparison.no_policy:
            continue  # a derived no-policy variant is compared in `policy`, not here
        diff = paired_differences(per_arm[arm.label], per_arm[reference.label], comparison.cities)
        pairing = _pairing(per_arm[arm.label], per_arm[reference.label])
        for city, rows in diff.groupby("city", sort=False):
            gained, lo, hi = mean_interval(rows.firms)
            ratio, rlo, rhi = mean_interval(_per_100m(rows.firms, rows.spend))
            effect_rows.append({"scenario": arm.label, "reference": reference.label, "city": city,
                                "firms_gained": gained, "firms_gained_low": lo, "firms_gained_high": hi,
                                "extra_spend": rows.spend.mean(), **{f"extra_{c}": rows[c].mean() for c in SPEND},
                                "firms_per_100m": ratio, "firms_per_100m_low": rlo, "firms_per_100m_high": rhi,
                                "pairing_correlation": pairing.get(city, math.nan)})
    effects = pd.DataFrame(effect_rows, columns=[
        "scenario", "reference", "city", "firms_gained", "firms_gained_low", "firms_gained_high", "extra_spend",
        *[f"extra_{c}" for c in SPEND], "firms_per_100m", "firms_per_100m_low", "firms_per_100m_high",
        "pairing_correlation"])

    policy_rows = []
    for label, variant in comparison.no_policy.items():
        if variant is None:
            continue
        cities = [c.name for c in next(a for a in arms if a.label == label).scenario.cities]
        diff = paired_differences(per_arm[label], per_arm[variant.label], cities)
        for city, rows in diff.groupby("city", sort=False):
            gained, lo, hi = mean_interval(rows.firms)
            ratio, rlo, rhi = mean_interval(_per_100m(rows.firms, rows.spend))
            policy_rows.append({"scenario": label, "no_policy": variant.label, "city": city,
                                "firms_gained": gained, "firms_gained_low": lo, "firms_gained_high": hi,
                                **{k: rows[k].mean() for k in FLOW_KINDS}, "spend": rows.spend.mean(),
                                "firms_per_100m": ratio, "firms_per_100m_low": rlo, "firms_per_100m_high": rhi})
    policy = pd.DataFrame(policy_rows, columns=[
        "scenario", "no_policy", "city", "firms_gained", "firms_gained_low", "firms_gained_high", *FLOW_KINDS,
        "spend", "firms_per_100m", "firms_per_100m_low", "firms_per_100m_high"])
    return {"replications": replications, "summary": summary, "counts": counts, "effects": effects,
            "policy": policy}


def _counts_over_time(ensemble: Ensemble, label: str) -> pd.DataFrame:
    """Firms per year and city (and all cities): mean and 5th–95th percentile over replications."""
    per_rep = ensemble.tables["firms"].groupby(["replication", "year", "city"], sort=False)["firms"].sum()
    national = per_rep.groupby(["replication", "year"]).sum().to_frame().assign(city=NATIONAL)
    per_rep = pd.concat([per_rep.reset_index(), national.reset_index()], ignore_index=True)
    grouped = per_rep.groupby(["year", "city"], sort=False)["firms"]
    out = pd.DataFrame({"firms": grouped.mean(), "firms_q05": grouped.quantile(BAND[0]),
                        "firms_q95": grouped.quantile(BAND[1])}).reset_index()
    out.insert(0, "scenario", label)
    return out
