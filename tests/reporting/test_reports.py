"""Every report and console summary prints numbers one way (sim/reporting/text.py).

Small scenarios with few replications are run through the command line; each report and
console line is then scanned: no number in scientific notation, every interval under the
one name of its kind (a confidence interval is not also a "band"; a percentile range is not
an "interval"), one name per kind within a report, and units where a quantity is stated.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from sim.cli import main
from sim.reporting.text import (
    INTERVALS,
    count,
    estimate,
    fixed,
    interval_name,
    number,
    p_value,
    percent,
    percentile_name,
    signed,
    span,
    tick,
)
from sim.scenario import load_scenario
from sim.scenario.paths import derive
from sim.scenario.resources import SCENARIOS_DIR

SCIENTIFIC = re.compile(r"(?<![\w.])\d+(?:\.\d+)?[eE][+−-]?\d+(?![\w])")
"""A number in scientific notation (``1.739e+04``, ``2E5``)."""

NAMED = re.compile(r"(\d+(?:\.\d+)?)% ((?:[a-zα-ω]+ ){0,3}?)(interval|band|range)s?\b")
"""A percentage naming an interval, band or range: ``95% confidence interval``, ``5–95% band``'s ``95% band``."""

LONG = re.compile(r"\d\.\d{8,}")
"""A number with more decimals than anyone reads (a p-value of 0.0000000000912): the reports say ``< 0.0001``."""

OLD_BANDS = re.compile(r"\d+(?:\.\d+)?%?\s?[–-]\s?\d+(?:\.\d+)?% (?:band|interval|range)")
"""A band named by its two ends in percent (``5–95% band``, ``5%–95% band``): the reports say ``5th–95th percentile``."""


def style_faults(text: str) -> list[str]:
    """Every breach of the number style in ``text``, quoted."""
    faults = [f"scientific notation: {m.group()!r}" for m in SCIENTIFIC.finditer(text)]
    faults += [f"a band named by its ends: {m.group()!r}" for m in OLD_BANDS.finditer(text)]
    faults += [f"more decimals than anyone reads: {m.group()!r}" for m in LONG.finditer(text)]
    kinds: dict[str, set[str]] = {}
    for m in NAMED.finditer(text):
        name = m.group(2) + m.group(3)
        if name not in INTERVALS.values():
            faults.append(f"not the name of an interval: {m.group()!r}")
        kinds.setdefault(name, set()).add(m.group(1))
    faults += [f"one kind of interval at several levels: {name} at {sorted(levels)}%"
               for name, levels in kinds.items() if len(levels) > 1]
    return faults


def test_the_scan_finds_what_the_issue_found():
    """Report lines in the styles the reports once mixed fail the scan; their rewrites pass."""
    assert style_faults("1.739e+04 (95% interval 9,791 to 2.498e+04)") == [
        "scientific notation: '1.739e+04'", "scientific notation: '2.498e+04'",
        "not the name of an interval: '95% interval'"]
    assert style_faults("Firm counts show the mean and the 5%–95% band; brackets are 95% intervals")[0].startswith(
        "a band named by its ends")
    assert style_faults("quasi-p-value 0.0000000000000912") == ["more decimals than anyone reads: '0.0000000000000912'"]
    assert style_faults("a 95% confidence interval, then a 90% confidence interval") == [
        "one kind of interval at several levels: confidence interval at ['90', '95']%"]
    assert not style_faults("17,390 firms (95% confidence interval 9,791 to 24,980 firms); the 5th–95th percentile "
                            "of replications; a 90% credible interval and a 90% predictive interval; 99% of counts")


@pytest.mark.parametrize("x", [*np.logspace(-9, 12, 43), *-np.logspace(-9, 12, 43), 0.0, -0.0, 999.7, 0.99996])
def test_numbers_are_never_in_scientific_notation_and_keep_three_digits(x: float):
    text = number(x)
    assert "e" not in text.lower() and (x >= 0 or text.startswith("−") or float(text.replace(",", "")) == 0)
    value = float(text.replace(",", "").replace("−", "-"))
    assert value == pytest.approx(x, rel=5e-3, abs=0 if x else 1e-12)
    if abs(x) >= 1000:
        assert text.replace("−", "") == f"{abs(round(x)):,}"


def test_the_formatter_by_example():
    assert [number(v) for v in (17390.4, 192.8, 0.5, -1.2e-05, 0.597, math.nan)] == [
        "17,390", "193", "0.5", "−0.000012", "0.597", "–"]
    assert [count(v) for v in (57.3, 1.67, 18476.2)] == ["57", "1.67", "18,476"]
    assert [signed(v) for v in (1234.0, -56.0, 0.0)] == ["+1,234", "−56", "0"]
    assert [percent(v) for v in (0.274, -0.001, 1.0)] == ["27%", "0%", "100%"]
    assert fixed(-0.6912) == "−0.69" and fixed(-0.001) == "0.00"
    assert estimate(18480.0, 0.0, 63610.0) == "18,480 [0, 63,610]" and estimate(5.0, math.nan, 1.0) == "5"
    assert span(9791.0, 24980.0) == "9,791 to 24,980"
    assert interval_name("confidence", 0.95) == "95% confidence interval"
    assert percentile_name((0.05, 0.95)) == "5th–95th percentile of replications"
    assert [tick(v, 0.025) for v in (0.025, 0.05)] == ["0.025", "0.050"] and tick(609_500, 100) == "609,500"
    assert [p_value(p) for p in (9.1e-48, 0.03779, 1.0)] == ["< 0.0001", "0.038", "1"]


# ---------------------------------------------------------------- the reports of small runs

SMALL = """\
name: small
time: {start: 2016, end: 2018, steps_per_year: 4}
seed: 5
replications: 3
engine: counts
parameters: {birth_rate: 0.04, exit_rate: 0.01, relocation_rate: 0.01, congestion: 0.0,
             lever_effects: {compute: {upstream: 0.6, midstream: 0.3, downstream: 0.3}}}
cities:
  - {name: A, firms: 3000, policy: {budget: 10, allocation: {compute: 1.0, data: 0.0, anchor: 0.0}}}
  - {name: B, firms: 3000, policy: {budget: 10, allocation: {compute: 0.0, data: 1.0, anchor: 0.0}}}
  - {name: Rest, firms: 30000, pool: true}
"""


def modu(*args: str, serial: bool = True) -> str:
    """Run a command (on the serial executor unless it has none); return what it printed."""
    result = CliRunner().invoke(main, [*args, *(["--executor", "serial", "--quiet"] if serial else [])])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The report (and console lines) of each command on small scenarios."""
    folder = tmp_path_factory.mktemp("reports")
    small = folder / "small.yaml"
    small.write_text(SMALL)
    cut = folder / "cut.yaml"
    cut.write_text("extends: small.yaml\nname: cut\ncities: [{name: A, policy: {budget: 0}}]\n")
    short = folder / "short.yaml"  # the baseline's four cities over 2016-2018: draws from its posterior apply
    short.write_text(yaml.safe_dump(derive(load_scenario(SCENARIOS_DIR / "baseline.yaml"),
                                           {"time.end": 2018, "engine": "counts"}).resolved(), allow_unicode=True))
    texts = {"run": modu("run", str(small), "--out", str(folder / "run"), "--no-figures")}
    texts["compare"] = modu("compare", str(small), str(cut), "--out", str(folder / "compare"), "--no-figures")
    texts["sweep"] = modu("sweep", str(small), "--sample", "lhs:4", "--range", "cities.A.policy.budget=0:40",
                          "--out", str(folder / "sweep"), "--no-figures")
    planted = folder / "planted"  # the outcome holds exactly when x > 6,000 (y is noise)
    planted.mkdir()
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 10_000, 300), rng.uniform(0, 1e-5, 300)
    pd.DataFrame({"point": range(300), "x": x, "y": y, "replication": 0, "status": "ok",
                  "leader": np.where(x > 6000, "A", "B")}).to_csv(planted / "summary.csv", index=False)
    texts["discover"] = modu("discover", str(planted), "--outcome", "leader == 'A'", "--out",
                             str(folder / "discover"), "--no-figures", serial=False)
    texts["optimise"] = modu("optimise", str(short), "Shanghai", "--resolution", "0.5", "--draws", "2",
                             "--replications", "1", "--out", str(folder / "optimise"), "--no-figures")
    texts["equilibrium"] = modu("equilibrium", str(short), "--cities", "Beijing,Shanghai", "--resolution", "0.5",
                                "--draws", "1", "--replications", "1", "--out", str(folder / "equilibrium"),
                                "--no-figures")
    factors = folder / "factors.yaml"
    factors.write_text(yaml.safe_dump({"factors": [{"target": "parameters.birth_rate", "low": 0.0, "high": 0.1},
                                                   {"target": "parameters.moving_cost", "low": 0.0, "high": 4.0}]}))
    texts["sensitivity"] = modu("sensitivity", str(small), "--method", "morris", "--samples", "3", "--factors",
                                str(factors), "--out", str(folder / "sensitivity"))
    for name in ("compare", "discover", "optimise", "equilibrium", "sensitivity"):
        texts[name] += (folder / name / "report.md").read_text(encoding="utf-8")
    return texts


@pytest.mark.parametrize("name", ["run", "compare", "sweep", "discover", "optimise", "equilibrium", "sensitivity"])
def test_every_report_keeps_the_number_style(outputs: dict[str, str], name: str):
    assert outputs[name] and style_faults(outputs[name]) == []


def test_the_compare_report_names_its_band_and_its_intervals_apart(outputs: dict[str, str]):
    text = outputs["compare"]
    assert "95% confidence interval" in text and percentile_name((0.05, 0.95)) in text
    assert not re.search(r"\d\]", text.split("\n\n")[1])  # the first table: no bracket, its range has its own column


def test_the_optimise_report_states_units_and_how_its_interval_respects_zero(outputs: dict[str, str]):
    text = outputs["optimise"]
    assert re.search(r"staying costs \S+ firms \(95% confidence interval \S+ to \S+ firms", text)
    assert "cut to the values the objective can take (firms cannot be negative)" in text
    table = [line for line in text.splitlines() if line.startswith("| ") and "grid" in line]
    lows = [float(m.group(1).replace(",", "")) for line in table for m in [re.search(r"\[([\d,.]+), ", line)] if m]
    assert lows and all(low >= 0 for low in lows)


def test_p_values_say_when_they_are_below_what_their_digits_can_tell(outputs: dict[str, str]):
    box = next(line for line in outputs["discover"].splitlines() if line.startswith("| x |"))
    assert box.endswith("| < 0.0001 |") and "6,0" in box  # the planted limit x > 6,000, with its separator


def test_console_lines_count_with_separators(outputs: dict[str, str]):
    assert re.search(r"firms in all cities at the end: small \d{2},\d{3}", outputs["compare"])
    assert re.search(r"leader at the end: \w+ \d+%", outputs["run"])


@pytest.mark.slow
def test_the_calibration_report_keeps_the_number_style(tmp_path: Path):
    from sim.inference.problem import BASELINE_PATH
    from sim.scenario.resources import CALIBRATION_DIR

    raw = yaml.safe_load(BASELINE_PATH.read_text())
    raw["calibration"] = str(CALIBRATION_DIR / "calibrated.yaml")
    raw["replications"] = 3
    scenario = tmp_path / "baseline.yaml"
    scenario.write_text(yaml.safe_dump(raw, allow_unicode=True))
    printed = modu("calibrate", "--scenario", str(scenario), "--particles", "12", "--generations", "2",
                   "--predictive", "12", "--sbc", "3", "--leave-one-out", "--reduced-particles", "10",
                   "--reduced-generations", "2", "--out", str(tmp_path / "cal"))
    text = printed + (tmp_path / "cal" / "report.md").read_text(encoding="utf-8")
    assert style_faults(text) == []
    assert "90% credible interval" in text and "90% predictive interval" in text
    fit = pd.read_csv(tmp_path / "cal" / "fit.csv")
    share = fit[fit.quantity == "group_share"].iloc[0]
    assert f"| {share.figure} | share of national firms | {percent(share.lower, 1)} to " in text
