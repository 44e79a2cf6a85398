"""The section of a calibration's report on whether the network effect is identified.

Regimes of α, simulation-based calibration, leave-one-pattern-out, and what data would identify what stays loose.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.inference.identify import MARTINGALE_BAND, NETWORK_EFFECT
from sim.reporting.calibration_text import CREDIBLE, PREDICTIVE, error_text, shown_as
from sim.reporting.text import (
    count,
    fixed,
    markdown_table,
    number,
    p_value,
    percent,
    signed,
    span,
)
from sim.scenario import Scenario

IDENTIFYING_DATA = {
    "network_effect": "yearly AI-related enterprise counts (the atlas's 2017-2021 years, same universe) for the big "
                      "three and at least the ten contenders: α acts through how a city's growth depends on its own "
                      "size, which two dates of three cities cannot separate from the cities' constants",
    "congestion": "the same yearly city panel, with cities far apart in size (congestion bends growth down as a "
                  "city fills up) and a measured capacity (office space, wages)",
    "relocation_rate": "firm-level relocations: registry address changes between cities, by year and city pair "
                       "(the model's moves_in/moves_out); none are published for these universes",
    "moving_cost": "the same relocation flows against the cities' attractiveness gaps (who moves where, not only how "
                   "many)",
    "birth_rate": "new registrations per year in the atlas's universe (other registries print them, e.g. "
                  "Qichacha, but count another universe)",
    "exit_rate": "deregistrations (exits) per year in the atlas's universe, or Shenzhen's 42,600 read as gross "
                 "inflow (the gross reading)",
    "contenders_share": "any contender's AI-related enterprise count in the atlas's universe, at any date",
    "coastal_share": "the atlas's count for Jiangsu or Zhejiang province, or for any city of Guangdong, Jiangsu or "
                     "Zhejiang other than Shenzhen, Guangzhou, Nanjing and Hangzhou",
    "contenders.attractiveness": "the contenders' counts at two dates in the atlas's universe",
}
"""For each calibrated quantity, the data that would identify it (named in the report when it stays unconstrained)."""


def identification_text(tables: dict[str, pd.DataFrame], options: dict, scenario: Scenario) -> str:
    """Regimes of the network effect, simulation-based calibration and leave-one-pattern-out, from their tables."""
    regimes = tables["regimes"]
    posterior = tables["posterior"].set_index("quantity").loc[NETWORK_EFFECT]
    text = ["## Is the network effect identified?\n",
            f"Network effect α: posterior median {number(posterior['median'])}, {CREDIBLE} "
            f"{span(posterior.lo, posterior.hi)}, width ratio {fixed(posterior.width_ratio)} ({posterior.verdict}). "
            f"Probability of each regime (`regimes.csv`; near-martingale, |α − 1| < {number(MARTINGALE_BAND)}, is a "
            "band inside the other two):\n",
            markdown_table(pd.DataFrame({
                "regime": regimes.regime, "condition": regimes.condition,
                "prior probability": [percent(v, 1) for v in regimes.prior],
                "posterior probability": [percent(v, 1) for v in regimes.posterior],
                "posterior odds / prior odds": regimes.bayes_factor}))]
    factors = regimes.bayes_factor.dropna()
    if len(factors) and factors.between(1 / 3, 3).all():
        text.append("\nEvery regime's odds move by less than a factor 3 from prior to posterior: the patterns do not "
                    "discriminate between tipping, a martingale and dispersion.\n")
    else:
        best = regimes.loc[regimes.bayes_factor.idxmax()]
        text.append(f"\nThe data favour **{best.regime}** ({best.condition}): odds × {number(best.bayes_factor, 2)}.\n")
    pools = [c for c in scenario.cities if c.pool]
    if pools and all(p.places == 1 for p in pools):
        text.append(f"\nCaveat: the pool ({', '.join(f'{p.name}, {count(p.firms)} firms at the start' for p in pools)}) "
                    "takes part in entry and relocation as one place, network term included, and "
                    + ("without congestion" if all(p.capacity is None for p in pools) else "with its capacity")
                    + ": a verdict on α carried by the national total or a share of it (below) depends on treating "
                    "the rest of the country as one agglomeration.\n")
    elif pools:
        text.append("\nThe rest of the country enters as pools of many places ("
                    + ", ".join(f"{p.name}: {p.places} places" for p in pools)
                    + "), each place with a fixed rank-size share of its pool's firms, its own network term and its "
                    "congestion (docs/ODD.md §3.3), not as one agglomeration; a verdict on α carried by the national "
                    "total or a share of it still rests on those assumed numbers and shares.\n")
    if "coverage" in tables:
        cov = tables["coverage"]
        text.append(f"\n**Simulation-based calibration** (Talts et al. 2018; {int(cov.datasets.iloc[0])} synthetic "
                    f"datasets from the prior, each fitted by the same ABC-SMC at {options.get('reduced_particles')} "
                    f"particles and at most {options.get('reduced_generations')} generations; "
                    f"{options.get('sbc_wall_time_s', float('nan')):.0f} s). Coverage of the {CREDIBLE} (near 90% "
                    "when the posterior means what it says; ± its binomial standard error), the p-value of a "
                    "chi-square test of uniform ranks, the mean rank (0.5 unbiased) and the intervals' median width "
                    "over the prior's (`coverage.csv`, `sbc_ranks.csv`):\n\n" + markdown_table(pd.DataFrame({
                        "quantity": cov.quantity,
                        "coverage": [f"{percent(c)} ± {percent(se)}" for c, se in
                                     zip(cov.coverage_90, cov.coverage_se, strict=True)],
                        "χ² test p-value": [p_value(p) for p in cov.chi2_p], "mean rank (0–1)": cov.mean_rank,
                        "width ratio": [fixed(w) for w in cov.width_ratio]}))
                    + "\n![SBC ranks](figures/sbc_ranks.png)\n")
    if "leave_one_out" in tables:
        lopo = tables["leave_one_out"]
        text.append("\n**Leave one pattern out** (fitted without the pattern at the same reduced settings; the pattern "
                    "predicted from the posterior particles' own simulations; `leave_one_out.csv`). The last columns "
                    "show what the fit without the pattern says about α: a pattern that carries information on α "
                    "widens α's interval when it is left out.\n\n"
                    + markdown_table(leave_one_out_table(lopo)) + "\n")
        reference, left = lopo.iloc[0], lopo.iloc[1:]
        widest = left.loc[left.alpha_width_ratio.idxmax()]
        moved = left.loc[(left.p_alpha_above_1 - reference.p_alpha_above_1).abs().idxmax()]
        text.append(f"At these settings every pattern together gives α the width ratio "
                    f"{fixed(reference.alpha_width_ratio)} and P(α > 1) = {percent(reference.p_alpha_above_1)}. "
                    f"Leaving out `{widest.left_out}` widens α's interval most (to {fixed(widest.alpha_width_ratio)}); "
                    f"leaving out `{moved.left_out}` moves P(α > 1) most (to {percent(moved.p_alpha_above_1)}). "
                    + (f"Every left-out pattern is predicted inside the {PREDICTIVE} of the fit without it."
                       if left.inside_90.astype(bool).all() else f"Not predicted inside the {PREDICTIVE} without it: "
                       + ", ".join(f"`{r.left_out}`" for r in left.itertuples() if not r.inside_90) + ".") + "\n")
    loose = tables["posterior"][tables["posterior"].verdict != "constrained"].quantity
    named = [q for q in loose if q in IDENTIFYING_DATA]
    if named:
        text.append(f"\n**What would identify what stays unidentified** (quantities whose {CREDIBLE} is more than "
                    "half as wide as their prior's):\n\n" + "\n".join(f"- `{q}`: {IDENTIFYING_DATA[q]}." for q in named) + "\n")
    return "\n".join(text)


def leave_one_out_table(lopo: pd.DataFrame) -> pd.DataFrame:
    """The leave-one-pattern-out table as the report shows it: each pattern's values in its own unit."""
    rows = []
    for r in lopo.itertuples():
        share = not np.isfinite(r.documented) and np.isfinite(r.lower)  # a documented range of a share
        shown = shown_as("group_share" if share else "firms")
        rows.append({
            "left out": r.left_out,
            "documented": shown(r.documented) if np.isfinite(r.documented) else span(r.lower, r.upper, shown),
            "predicted median": shown(r.predicted_median),
            PREDICTIVE: span(r.predicted_lo, r.predicted_hi, shown),
            "error of the median": signed(r.error_of_median, error_text),
            "inside": "–" if not isinstance(r.inside_90, bool | np.bool_) else ("yes" if r.inside_90 else "no"),
            "α median": r.alpha_median, f"α {CREDIBLE}": span(r.alpha_lo, r.alpha_hi),
            "α width ratio": fixed(r.alpha_width_ratio), "P(α > 1)": percent(r.p_alpha_above_1)})
    return pd.DataFrame(rows)
