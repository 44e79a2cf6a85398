"""Does a planner's answer hold across what no data pin? Conclusions draw by draw, and where they turn over.

A policy question's answer (which lever mix is best, whether the subsidy race settles where it
settled, who wins it, how much of it is relocation, the sign of a scenario's effect on a city) is
reached on draws that join the calibration posterior to the deep uncertainties of an assumptions
file (:func:`sim.inference.draws.parameter_draws`). Here each answer is checked draw by draw
(:class:`Robustness`: does it hold in this draw?), and where it fails in some draws, scenario
discovery (PRIM, :func:`sim.policy.discovery.discover`) looks for the region of the drawn
quantities where it turns over. The quantities are labelled: deep uncertainties (assumptions no
data pin), estimates the data constrain, and estimates the data leave at their prior.

An answer that an assumption fixes is not a finding; :func:`involution_robustness` says so when the
outside option is off (national entry does not depend on policy, so the involution index is 1 by
construction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.experiments.compare import NATIONAL, Comparison, paired_differences
from sim.inference.draws import Draws
from sim.model.parameters import LEVERS
from sim.policy.discovery import Discovery, discover
from sim.policy.errors import PolicyError
from sim.policy.objectives import ROBUST_WITHIN
from sim.policy.optimisation import OptimiseResult
from sim.policy.race import EquilibriumResult, involution
from sim.policy.runs import TOTALS

MIN_DRAWS = 20
"""Fewest draws over which scenario discovery looks for where an answer turns over."""

MIN_FAILURES = 3
"""Fewest draws in which an answer fails for discovery to look for where (fewer: noise, not a region)."""

DISCOVERY_DENSITY = 0.6
"""Least share of failing draws in the box PRIM reports (its density threshold)."""

INVOLUTION_WITHIN = 0.1
"""A draw's involution index agrees with the answer's when it is within this distance of it."""


@dataclass
class Robustness:
    """One answer checked draw by draw.

    Attributes:
        question: what was asked (``best mix of Hefei``).
        answer: the answer over all draws (``compute 0.50, data 0.10, anchor 0.40``).
        holds: per draw, whether the answer holds in it.
        quantities: per draw, the drawn quantities (posterior estimates and deep uncertainties).
        assumptions: which quantities are deep uncertainties (assumptions no data pin).
        by_construction: set when an assumption fixes the answer: what fixes it.
        discovery: where the answer fails (PRIM over the quantities), when looked for.
        why_not: why discovery was not run (too few draws, no failures, ...), else None.
    """

    question: str
    answer: str
    holds: np.ndarray
    quantities: pd.DataFrame
    assumptions: tuple[str, ...]
    by_construction: str | None = None
    discovery: Discovery | None = None
    why_not: str | None = None

    @property
    def share(self) -> float:
        """Share of the draws in which the answer holds."""
        return float(np.mean(self.holds)) if len(self.holds) else math.nan

    def turns_over(self) -> str:
        """Where the answer fails, as one clause (``where anchor_weight < 4.3 (an assumption) ...``), or why not known."""
        if self.discovery is None:
            return self.why_not or ""
        box = self.discovery.prim.box
        conditions = box.conditions()
        if not conditions:
            return ("no region of the drawn quantities concentrates the failures (PRIM's best box restricts "
                    "nothing): they are spread over the draws, as noise or several quantities together")
        parts = [f"{text} ({self.kind(name)})" for name, text in zip(box.restricted, conditions, strict=True)]
        if box.density < DISCOVERY_DENSITY:
            return (f"no region of the drawn quantities holds {DISCOVERY_DENSITY:.0%} failing draws (the densest box "
                    f"PRIM found, where {' and '.join(parts)}, holds {box.density:.0%}): the failures look like noise "
                    "or depend on several quantities together")
        return (f"it turns over where {' and '.join(parts)}: {box.density:.0%} of the draws there fail, "
                f"holding {box.coverage:.0%} of all failures")

    def kind(self, quantity: str) -> str:
        """``an assumption`` for a deep uncertainty, ``an estimate`` otherwise."""
        return "an assumption no data pin" if quantity in self.assumptions else "a calibrated estimate"

    def sentence(self) -> str:
        """The answer, how often it holds across the draws, and where it turns over."""
        if self.by_construction:
            return f"{self.question}: {self.answer} — true by construction: {self.by_construction}."
        n = len(self.holds)
        if self.share == 1:
            return (f"{self.question}: {self.answer} — holds in all {n} draws"
                    + (" of the deep uncertainties and the posterior" if self.assumptions else "")
                    + ".")
        return f"{self.question}: {self.answer} — holds in {self.share:.0%} of {n} draws; {self.turns_over()}."

    def to_df(self) -> pd.DataFrame:
        """The draws' quantities with a ``holds`` column."""
        return self.quantities.assign(holds=self.holds)


def _check(question: str, answer: str, holds: np.ndarray, draws: Draws, by_construction: str | None = None,
           replications: int = 1) -> Robustness:
    """Build a :class:`Robustness`, running discovery where the answer fails in enough draws."""
    quantities = draws.quantities.reset_index(drop=True)
    result = Robustness(question, answer, np.asarray(holds, dtype=bool), quantities, draws.assumptions,
                        by_construction)
    failures = int((~result.holds).sum())
    varied = [c for c in quantities.columns if quantities[c].nunique() >= 2]
    if by_construction or failures == 0:
        return result
    if len(result.holds) < MIN_DRAWS:
        result.why_not = (f"{len(result.holds)} draws are too few to say where it turns over (scenario discovery "
                          f"needs {MIN_DRAWS}; --draws)")
    elif failures < MIN_FAILURES:
        result.why_not = f"it fails in {failures} draws, too few to locate (noise of {replications} replications?)"
    elif not varied:
        result.why_not = "no drawn quantity varies (fixed draws)"
    else:
        frame = quantities[varied].assign(fails=(~result.holds).astype(int))
        try:
            result.discovery = discover(frame, varied, "fails == 1", threshold=DISCOVERY_DENSITY)
        except PolicyError as exc:
            result.why_not = f"scenario discovery found nothing to report ({exc})"
    return result


# ----------------------------------------------------------------------------- optimise
def optimise_robustness(result: OptimiseResult, draws: Draws) -> list[Robustness]:
    """Whether the best mix is the best in each draw: within ``ROBUST_WITHIN`` of the draw's own best mix.

    Args:
        result: a finished optimisation whose plan ran ``draws``.
        draws: the draws it ran, with their quantities.
    """
    t, plan = result.table, result.plan
    _same_draws(len(plan.draws), draws)
    feasible = t.feasible.to_numpy()
    with np.errstate(invalid="ignore"):
        per_draw = np.nanmean(result.values, axis=2)                   # [candidate, draw]
    draw_best = np.nanmax(np.where(feasible[:, None], per_draw, -np.inf), axis=0)
    holds = per_draw[result.best] >= draw_best - ROBUST_WITHIN * np.abs(draw_best)
    b = t.iloc[result.best]
    mix = ", ".join(f"{lever} {b[lever]:.2f}" for lever in LEVERS)
    return [_check(f"best mix of {plan.city} ({plan.objective.label(plan.city)}, within {ROBUST_WITHIN:.0%} of each "
                   "draw's own best)", mix, holds, draws, replications=plan.replications)]


# ----------------------------------------------------------------------------- the subsidy race
def equilibrium_robustness(result: EquilibriumResult, draws: Draws) -> list[Robustness]:
    """The race's answers draw by draw: the equilibrium, who wins it, and the involution index.

    Args:
        result: the solved game (with every evaluated profile's totals and the no-policy runs).
        draws: the draws the game ran, with their quantities.
    """
    plan, totals, no_policy = result.plan, result.totals, result.no_policy_totals
    _same_draws(len(plan.draws), draws)
    names = [c.name for c in plan.scenario.cities]
    index = [names.index(c) for c in plan.cities]
    profile = tuple(result.dynamics.profile)
    at = totals[profile]
    firms = at[:, :, TOTALS.index("firms"), :].mean(axis=1)              # [draw, city]

    def payoff(t: np.ndarray, player: int) -> np.ndarray:
        j = index[player]
        ranked = np.array([not c.pool for c in plan.scenario.cities])
        value = np.stack([plan.objective.values(t[d:d + 1], j, ranked, t[d:d + 1]).mean() for d in range(len(t))])
        return value - plan.cost * t[:, :, -1, j].mean(axis=1)

    stable = np.ones(len(firms), dtype=bool)
    checked = 0
    for player in range(len(plan.cities)):
        own = payoff(at, player)
        for s in range(len(plan.strategies)):
            deviation = (*profile[:player], s, *profile[player + 1:])
            if s == profile[player] or deviation not in totals:
                continue
            checked += 1
            other = payoff(totals[deviation], player)
            stable &= own >= other - ROBUST_WITHIN * np.abs(other)
    what = "equilibrium" if result.dynamics.converged else "last profile of the best-response path"
    mixes = "; ".join(f"{city}: " + ", ".join(f"{lv} {plan.strategies.iloc[s][lv]:.2f}" for lv in LEVERS)
                      for city, s in zip(plan.cities, profile, strict=True))
    answers = [_check(f"the race's {what} (no player gains more than {ROBUST_WITHIN:.0%} by deviating, over the "
                      f"{checked} deviations evaluated)", mixes, stable, draws, replications=plan.replications)]
    players = firms[:, index]
    winner = int(np.argmax(players.mean(axis=0)))
    answers.append(_check("who ends with the most firms at the " + what, plan.cities[winner],
                          players.argmax(axis=1) == winner, draws, replications=plan.replications))
    answers.append(involution_robustness(at, no_policy, names, plan.scenario.parameters.outside_option, draws,
                                         f"the involution index at the {what}"))
    return answers


def involution_robustness(totals: np.ndarray, no_policy: np.ndarray, cities: Sequence[str],
                          outside_option: float | None, draws: Draws, question: str) -> Robustness:
    """The involution index (:func:`sim.policy.race.involution`) draw by draw.

    With the outside option off in the scenario and not drawn, national entry does not depend on
    policy (every potential entrant enters some city), so the index is 1 up to noise: the answer
    is true by construction, and says so.
    """
    overall = involution(totals, no_policy, cities)["index"]
    per_draw = np.array([involution(totals[d:d + 1], no_policy[d:d + 1], cities)["index"] for d in range(len(totals))])
    construction = None
    if outside_option is None and not _drawn_outside(draws):
        construction = ("the outside option is off (no potential entrant can stay out), so policy cannot change "
                        "national entry and every firm a city gains is taken from another; the index is 1 but "
                        "for noise. Draw the outside share (the assumptions file) to ask the question")
    holds = np.abs(per_draw - overall) <= INVOLUTION_WITHIN
    return _check(f"{question} (within {INVOLUTION_WITHIN:g} of the overall index in each draw)",
                  f"{overall:.2f}", np.where(np.isnan(per_draw), False, holds), draws, construction)


# ----------------------------------------------------------------------------- compare
def compare_robustness(comparison: Comparison, draws: Draws) -> list[Robustness]:
    """The sign of each scenario's effect on each city, and on all cities, draw by draw (replication r is draw r)."""
    _same_draws(comparison.replications, draws)
    per_arm = comparison.tables["replications"]
    reference = comparison.arms[0]
    answers = []
    for arm in comparison.arms[1:]:
        if arm.label not in comparison.no_policy:
            continue
        diff = paired_differences(per_arm[per_arm.scenario == arm.label], per_arm[per_arm.scenario == reference.label],
                                  comparison.cities)
        for city, rows in diff.groupby("city", sort=False):
            gained = rows.set_index("replication").firms.reindex(range(comparison.replications)).to_numpy()
            mean = float(np.nanmean(gained))
            sign = "gains" if mean > 0 else "loses" if mean < 0 else "is unchanged"
            lo, hi = np.nanquantile(gained, [0.05, 0.95])
            where = "all cities together" if city == NATIONAL else city
            construction = None
            if city == NATIONAL and not _outside_option_on(reference.scenario, draws):
                construction = ("the outside option is off (every potential entrant enters some city), so policy "
                                "cannot change national entry: the national effect is 0 but for noise")
            answers.append(_check(
                f"{arm.label} against {reference.label}: effect on {where}",
                f"{sign} {abs(mean):,.0f} firms on average (5–95% of draws: {lo:+,.0f} to {hi:+,.0f})",
                np.sign(gained) == np.sign(mean), draws, construction, replications=1))
    return answers


def _drawn_outside(draws: Draws) -> bool:
    return "parameters.outside_option" in draws.fields.columns


def _outside_option_on(scenario: object, draws: Draws) -> bool:
    return scenario.parameters.outside_option is not None or _drawn_outside(draws)


def _same_draws(n: int, draws: Draws) -> None:
    if len(draws.quantities) != n:
        raise PolicyError(f"the result ran {n} draws, the draws table has {len(draws.quantities)}")
