"""Writing a comparison (see :mod:`sim.experiments.compare`): CSVs, figures (PNG and SVG), ``report.md`` and a manifest.

Planners read ``report.md``: it embeds the figures and shows the
cost-effectiveness and growth-accounting tables with their intervals; the
CSVs hold every number for analysts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from sim.experiments.compare import CONFIDENCE, NATIONAL, SPEND, Comparison
from sim.policy.robustness import Robustness
from sim.reporting.compare_figures import SPEND_CHANGED, per_100m_text, save_comparison_figures
from sim.reporting.files import atomic_write, manifest, output_folder, write_json, write_tables
from sim.reporting.robustness import robustness_section, write_robustness
from sim.reporting.style import BAND_NAME
from sim.reporting.text import count, interval, interval_name, markdown_table, number, percent, signed, span
from sim.scenario import Scenario
from sim.scenario.resources import CALIBRATION_DIR

TABLE_FILES = {
    "replications": "per scenario, replication and city: firms at the end, births, deaths, moves in and out, "
                    "spending by lever (100 M yuan), whether the city ends first",
    "summary": f"per scenario and city: means over replications, the {BAND_NAME} of firms "
               "(firms_q05, firms_q95), share, lock-in probability",
    "counts": f"per scenario, year and city: firms (mean and the {BAND_NAME}) over time",
    "effects": "per scenario and city: paired difference from the first scenario, with "
               f"{interval_name('confidence', CONFIDENCE)}s (_low, _high), and firms_per_100m = firms gained / "
               "extra spending (100 M yuan; after a cut both are negative, so a positive value is firms lost per "
               "100 M yuan saved)",
    "policy": "per scenario and city: paired difference from the same scenario without policy (growth accounting)",
}

REPORT_TOP_OTHERS = 3
"""Besides the cities whose spending changed, the report's effect tables show this many largest changes."""


# ---------------------------------------------------------------- figures


# ---------------------------------------------------------------- the report


def _effect_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows for the report: cities whose spending changed, clear other changes, and all cities."""
    cities = rows[rows.city != NATIONAL]
    changed = cities[(cities[[f"extra_{c}" for c in SPEND]].abs() > SPEND_CHANGED).any(axis=1)]
    others = cities.drop(changed.index)
    others = others[(others.firms_gained_low > 0) | (others.firms_gained_high < 0)]
    others = others.reindex(others.firms_gained.abs().sort_values(ascending=False).index).head(REPORT_TOP_OTHERS)
    return pd.concat([changed, others, rows[rows.city == NATIONAL]])


def calibration_status(scenario: Scenario) -> str:
    """Whether a scenario is calibrated and to which data, from its ``calibration:`` key and that calibration's manifest."""
    if scenario.calibration is None:
        return "not calibrated (code defaults and the file's own values)"
    folder = Path(scenario.calibration).parent
    try:
        recorded = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"takes `{scenario.calibration}` (no manifest beside it: data unknown)"
    targets = recorded.get("targets") or {}
    calibrated = (recorded.get("scenario") or {}).get("name")
    span = (recorded.get("scenario") or {}).get("time") or {}
    own = "its own calibration" if calibrated == scenario.name else f"the calibration of `{calibrated}` (inherited)"
    data = (f"{targets.get('name')} (universe `{targets.get('universe')}`; patterns: "
            f"{', '.join(targets.get('fitted') or [])})" if targets else "data not recorded (an older calibration)")
    root = CALIBRATION_DIR.resolve()
    inside = root == folder.resolve() or root in folder.resolve().parents
    shown = Path("calibration", folder.resolve().relative_to(root)) if inside else folder
    return f"calibrated: {own}, `{shown}/` ({span.get('start')}–{span.get('end')}), fitted to {data}"


def report_text(comparison: Comparison, figures: bool) -> str:
    """The Markdown report: what was compared, the answers with intervals, the figures, the files."""
    arms = comparison.arms
    reference = arms[0]
    given = [a for a in arms if a.label in comparison.no_policy]
    summary, effects, policy = (comparison.tables[k] for k in ("summary", "effects", "policy"))
    ci = interval_name("confidence", CONFIDENCE)
    lines = [f"# Comparison: {', '.join(a.label for a in given)}", ""]
    national = summary[summary.city == NATIONAL].set_index("scenario")
    lines += [markdown_table(pd.DataFrame({
        "scenario": [a.label for a in arms],
        "file": [f"`{a.source}`" for a in arms],
        "description": [" ".join(a.scenario.description.split()) for a in arms],
        "cities": [str(len(a.scenario.cities)) for a in arms],
        "calibration": [calibration_status(a.scenario) for a in arms],
        "firms at the end, all cities (mean)": [count(national.loc[a.label].firms) for a in arms],
        BAND_NAME: [span(national.loc[a.label].firms_q05, national.loc[a.label].firms_q95, count) for a in arms],
    }), align_numbers=True).rstrip()]
    t = reference.scenario.time
    lines += ["", f"Each scenario ran {comparison.replications} replications of {t.start}–{t.end} "
              f"({t.steps_per_year} steps a year) with root seed {comparison.seed}: replication r of every scenario "
              f"draws from `SeedSequence({comparison.seed}, spawn_key=(r,))` (common random numbers), so differences "
              f"are paired by replication. Brackets are {ci}s of the mean paired difference (Student t over "
              "replications); an interval that includes 0 means the replications cannot tell the difference from "
              f"chance. Firm counts show the mean and the {BAND_NAME}: where the middle 90% of replications end "
              "(a spread of outcomes, not an interval of the mean: it does not narrow with more replications)."]
    lines += ["", f"Cities compared (present in every scenario): {', '.join(comparison.cities)}."]
    extra = {k: v for k, v in comparison.unmatched.items() if v}
    if extra:
        lines.append("Cities only some scenarios have are left out of the per-city comparisons and counted only in "
                     "their scenario's *All cities* total: "
                     + "; ".join(f"{k}: {', '.join(v)}" for k, v in extra.items()) + ".")

    if len(effects):
        lines += ["", f"## What changes against {reference.label}", "",
                  "Firms at the end minus the reference's, per replication; extra spending over the run in 100 M "
                  "yuan (negative: a cut); where spending differs, firms gained per 100 M yuan spent or, for a cut, "
                  "firms lost per 100 M yuan saved. Shown: the cities whose spending on some lever "
                  f"changed, up to {REPORT_TOP_OTHERS} other cities whose change is clear of 0 (largest first), and "
                  "all cities; every city is in `effects.csv`.", ""]
        pairing = effects[effects.city != NATIONAL].groupby("scenario", sort=False)["pairing_correlation"].median()
        lines += ["With many cities, about one in twenty will look clear of 0 by chance. How much the common random "
                  "numbers pair the runs: the median over cities of the correlation between a scenario's and the "
                  "reference's end counts is " + ", ".join(f"{k} {number(v)}" for k, v in pairing.items())
                  + " (1: differences free of chance; 0: as noisy as independent runs).", ""]
        for label, rows in effects.groupby("scenario", sort=False):
            table = _effect_rows(rows)
            lines += [f"**{label}**", "", markdown_table(pd.DataFrame({
                "city": table.city,
                f"firms gained [{ci}]": [interval(*r) for r in zip(table.firms_gained, table.firms_gained_low,
                                                                      table.firms_gained_high, strict=True)],
                "extra spend (100 M yuan over the run)": [signed(x if abs(x) > SPEND_CHANGED else 0.0)
                                                          for x in table.extra_spend],
                f"per 100 M yuan [{ci}]": [
                    per_100m_text(*r) for r in zip(table.extra_spend, table.firms_per_100m, table.firms_per_100m_low,
                                                    table.firms_per_100m_high, strict=True)],
            }), align_numbers=True).rstrip(), ""]
        if figures:
            lines += ["![Firms gained against the first scenario](figures/effects.png)", ""]

    if len(policy):
        lines += ["## New firms or firms taken from other cities?", "",
                  "Each scenario against itself without policy (every budget 0; anchors and city openings kept). "
                  "A city's gain is extra births plus extra moves in, less extra deaths and moves out. Only a rise "
                  "in the *All cities* total is new to the country (positive-sum); the rest of a city's gain is "
                  "firms that would otherwise have been born in, or stayed in, other cities (zero-sum). In this "
                  "model the national number of entrants depends on the national number of firms, not on where "
                  "they locate, so policy mostly moves firms between cities.", ""]
        rows, own = [], []
        for label, group in policy.groupby("scenario", sort=False):
            if (group.no_policy == label).all():
                own.append(label)
                continue
            national = group[group.city == NATIONAL].iloc[0]
            cities = group[group.city != NATIONAL]
            gains = cities.firms_gained.clip(lower=0).sum()
            losses = cities.firms_gained.clip(upper=0).sum()
            top = cities.loc[cities.firms_gained.idxmax()] if len(cities) else None
            new_share = national.firms_gained / gains if gains > 0 else math.nan
            rows.append({
                "scenario": label,
                f"all cities, firms [{ci}]": interval(national.firms_gained, national.firms_gained_low,
                                                       national.firms_gained_high),
                "extra births (firms)": signed(national.births, count), "extra deaths (firms)": signed(national.deaths, count),
                "gains of gaining cities (firms)": signed(gains, count), "losses of losing cities (firms)": signed(losses, count),
                "new to the country": percent(new_share),
                "largest gain (firms)": "–" if top is None or top.firms_gained <= 0
                else f"{top.city} {signed(top.firms_gained, count)}",
            })
        if rows:
            lines += [markdown_table(pd.DataFrame(rows), align_numbers=True).rstrip(), ""]
        if own:
            lines += [f"{', '.join(own)} {'has' if len(own) == 1 else 'have'} no policy: nothing to account for.", ""]
        if figures and rows:
            lines += ["![Growth accounting against no policy](figures/growth_accounting.png)", ""]

    if figures:
        lines += ["## Firm counts", "", "![Firms per city over time](figures/counts.png)", "",
                  "## Shares and lock-in", "", "![Shares at the end](figures/shares.png)", "",
                  "![Lock-in probability](figures/lock_in.png)", "",
                  "## Spending", "", "![Spending by lever](figures/spending.png)", ""]
    lines += ["## Files", ""]
    lines += [f"- `{name}.csv`: {meaning}" for name, meaning in TABLE_FILES.items()]
    lines += ["- `figures/`: every figure as PNG and SVG", "- `manifest.json`: the resolved scenarios and their "
              "hashes, seed, replications and spawn keys, executor, versions, wall time, each file's SHA-256", ""]
    return "\n".join(lines)


def write_comparison(comparison: Comparison, out: Path, figures: bool = True, wall_time: float | None = None,
                     executor: str | None = None, robustness: list[Robustness] | None = None,
                     draws_source: str | None = None) -> list[str]:
    """Write a comparison's folder: the CSVs, figures, ``report.md`` and ``manifest.json`` last.

    ``robustness``: the answers checked draw by draw (:func:`sim.policy.robustness.compare_robustness`), when
    replication r ran draw r (``draws_source`` says of what).

    Returns:
        The files written, relative to ``out``.
    """
    with output_folder(out):
        written = write_tables(out, comparison.tables, TABLE_FILES) + write_robustness(out, robustness or [])
        if figures:
            written += [str(p.relative_to(out)) for p in save_comparison_figures(comparison, out / "figures")]
        text = report_text(comparison, figures)
        if draws_source:
            text += "\n" + robustness_section(robustness or [], draws_source)
        atomic_write(out / "report.md", lambda h: h.write(text))
        written.append("report.md")
        write_json(out / "manifest.json", manifest(
            out, written,
            scenarios=[{"label": a.label, "source": a.source, "scenario_hash": a.scenario.digest(),
                        "scenario": a.scenario.resolved()} for a in comparison.arms],
            reference=comparison.arms[0].label,
            no_policy={k: (v.label if v else None) for k, v in comparison.no_policy.items()},
            cities_compared=comparison.cities, unmatched_cities=comparison.unmatched,
            seed=comparison.seed, replications=comparison.replications,
            spawn_keys=[[r] for r in range(comparison.replications)],
            seed_rule="SeedSequence(seed, spawn_key=(replication,)), the same for every scenario",
            confidence=CONFIDENCE, executor=executor, wall_time_s=wall_time, draws_source=draws_source,
            complete=True))
    return written + ["manifest.json"]
