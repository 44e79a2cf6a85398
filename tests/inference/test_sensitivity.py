"""Sensitivity analysis: indices that must be zero are zero, the leading factor leads, outputs are
consistent, the command writes its files and refuses bad input."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from sim.cli import main
from sim.experiments.executors import parse_executor
from sim.inference.problem import BASELINE_PATH
from sim.inference.quantities import SharedFactor, SplitFactor
from sim.inference.sensitivity import (
    MAX_RELATIVE_CONF,
    MIN_SAMPLES,
    Factor,
    analyse,
    default_factors,
    leading_factors,
    outputs_of,
)
from sim.scenario import Scenario, load_scenario, validate
from sim.scenario.resources import SCENARIOS_DIR

SMALL = {
    "name": "small",
    "time": {"start": 2016, "end": 2018, "steps_per_year": 4},
    "seed": 7,
    "engine": "counts",
    "parameters": {"relocation_rate": 0.0, "network_effect": 1.0, "birth_rate": 0.02, "exit_rate": 0.01,
                   "congestion": 0.0},
    "cities": [{"name": "A", "firms": 400, "attractiveness": 0.0},
               {"name": "B", "firms": 300, "attractiveness": 0.0},
               {"name": "Rest", "firms": 200, "pool": True, "attractiveness": 0.0}],
}

FACTORS = [Factor(target="parameters.birth_rate", low=0.0, high=0.1),
           Factor(target="parameters.moving_cost", low=0.0, high=4.0)]
"""With relocation off, the moving cost cannot matter; the birth rate drives the counts."""


@pytest.fixture(scope="module")
def small() -> Scenario:
    return validate(SMALL)


@pytest.mark.parametrize("method,samples", [("sobol", 32), ("morris", 6)])
def test_an_inert_factor_gets_zero_and_the_driver_leads(small: Scenario, method: str, samples: int):
    analysis = analyse(small, FACTORS, method, samples, replications=1, seed=3, executor=parse_executor("serial"),
                       progress=False)
    idx = analysis.indices.set_index(["output", "factor"])
    key = "ST" if method == "sobol" else "mu_star"
    for out in ("firms A", "firms B", "firms Rest"):
        assert idx.loc[(out, "moving_cost"), key] == 0.0          # common random numbers: exactly no effect
        assert idx.loc[(out, "birth_rate"), key] > 0
    if method == "sobol":
        assert idx.loc[("firms A", "birth_rate"), "S1"] > 0.8
    assert len(analysis.outputs) == len(analysis.X)


def test_outputs_are_final_counts_shares_of_non_pool_cities_and_their_hhi(small: Scenario):
    summaries = np.zeros((2, 3 * (2 * 3 + 1)))
    summaries[:, 6:9] = [[30, 10, 500], [20, 20, 0]]                     # the final year's counts
    out = outputs_of(small, summaries)
    assert list(out.columns) == ["firms A", "firms B", "firms Rest", "share A", "share B", "hhi"]
    np.testing.assert_allclose(out["share A"], [0.75, 0.5])
    np.testing.assert_allclose(out["hhi"], [0.75 ** 2 + 0.25 ** 2, 0.5])


def test_default_factors_cover_calibrated_quantities_levers_and_budgets():
    baseline = load_scenario(BASELINE_PATH)
    targets = [f.target for f in default_factors(baseline, ranges="prior")]
    assert "parameters.network_effect" in targets and "cities.Shanghai.attractiveness" in targets
    assert "parameters.lever_effects.compute.upstream" in targets
    budget = next(f for f in default_factors(baseline, ranges="prior") if f.label == "budget_scale")
    assert budget.target == "cities.*.policy.budget" and budget.scale
    small = validate(SMALL)
    assert not any(t.startswith("cities.") for t in (f.target for f in default_factors(small, ranges="prior")))
    for f in default_factors(baseline):
        assert f.low < f.high


def test_sensitivity_command_writes_indices_figure_report_and_manifest(tmp_path: Path):
    scenario = tmp_path / "small.yaml"
    scenario.write_text(yaml.safe_dump(SMALL))
    factors = tmp_path / "factors.yaml"
    factors.write_text(yaml.safe_dump({"factors": [f.model_dump() for f in FACTORS]}))
    out = tmp_path / "sens"
    result = CliRunner().invoke(main, ["sensitivity", str(scenario), "--method", "morris", "--samples", "3",
                                       "--factors", str(factors), "--executor", "serial", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    indices = pd.read_csv(out / "indices.csv")
    assert set(indices.factor) == {"birth_rate", "moving_cost"}
    for name in ("samples.csv", "report.md", "manifest.json", "figures/sensitivity.png", "figures/sensitivity.svg"):
        assert (out / name).exists()
    assert not (out / "INCOMPLETE").exists()


def test_sensitivity_refuses_bad_input_in_one_line(tmp_path: Path):
    scenario = tmp_path / "small.yaml"
    scenario.write_text(yaml.safe_dump(SMALL))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"factors": [{"target": "parameters.nothing", "low": 0, "high": 1},
                                               {"target": "birth_rate", "low": 0, "high": 1}]}))
    out = tmp_path / "out"
    for args, expect in ((["--factors", str(bad)], "factors[0].target"),
                         (["--samples", "10"], "power of 2"),
                         (["--method", "fast"], "fast")):
        result = CliRunner().invoke(main, ["sensitivity", str(scenario), "--out", str(out), *args])
        assert result.exit_code == 2 and expect in result.stderr, result.stderr
        assert not out.exists()


def indices_of(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["output", "factor", "ST", "ST_conf"])


def test_a_leading_factor_is_a_finding_only_with_enough_samples_and_a_narrow_interval():
    indices = indices_of([("a", "x", 0.8, 0.1), ("a", "y", 0.1, 0.3),          # x leads, ±0.1 on 0.8
                          ("b", "x", 15.6, 4.5e3), ("b", "y", 0.2, 0.1),       # ±4.5e3 on 15.6: no finding
                          ("c", "x", np.nan, np.nan), ("c", "y", np.nan, np.nan)])  # a constant output
    lead = leading_factors(indices, "sobol", samples=MIN_SAMPLES["sobol"]).set_index("output")
    assert lead.factor.tolist() == ["x", "x", ""]
    assert lead.interpretable.tolist() == [True, False, False]
    assert lead.loc["a", "relative_conf"] == pytest.approx(0.125) and lead.loc["a", "reason"] == ""
    assert lead.loc["b", "relative_conf"] == pytest.approx(4.5e3 / 15.6)
    assert "is 288 times the index 15.6" in lead.loc["b", "reason"]
    assert "no finite ST" in lead.loc["c", "reason"]
    edge = indices_of([("a", "x", 1.0, MAX_RELATIVE_CONF)])
    assert leading_factors(edge, "sobol", samples=MIN_SAMPLES["sobol"]).interpretable.item()
    few = leading_factors(indices, "sobol", samples=MIN_SAMPLES["sobol"] // 2)
    assert not few.interpretable.any() and not few.enough_samples.any()
    assert few.reason[0].startswith(f"{MIN_SAMPLES['sobol'] // 2} Sobol' base samples, fewer than the 64 needed")


def test_the_command_says_plainly_when_its_figures_are_not_interpretable(tmp_path: Path):
    scenario = tmp_path / "small.yaml"
    scenario.write_text(yaml.safe_dump(SMALL))
    factors = tmp_path / "factors.yaml"
    factors.write_text(yaml.safe_dump({"factors": [f.model_dump() for f in FACTORS]}))
    runs = {}
    for samples in (2, MIN_SAMPLES["sobol"]):
        out = tmp_path / f"sens{samples}"
        result = CliRunner().invoke(main, ["sensitivity", str(scenario), "--samples", str(samples), "--factors",
                                           str(factors), "--executor", "serial", "--out", str(out), "--quiet"])
        assert result.exit_code == 0, result.output
        runs[samples] = (result.output, (out / "report.md").read_text(), pd.read_csv(out / "leading.csv"))
    output, report, lead = runs[2]
    assert "figures not interpretable: only 2 Sobol' base samples, fewer than the 64 needed" in output
    assert "leading factor by" not in output and not lead.interpretable.any()
    assert f"**Not interpretable: {len(lead)} of {len(lead)} outputs.**" in report
    output, report, lead = runs[MIN_SAMPLES["sobol"]]
    assert lead.interpretable.all() and (lead.factor == "birth_rate").all()    # the planted driver, stated
    assert "leading factor by ST: firms A ← birth_rate, firms B ← birth_rate, firms Rest ← birth_rate" in output
    assert "not interpretable" not in output.lower() + report.lower()


def test_default_factors_of_china_come_from_its_own_calibration_and_keep_split_and_shared_quantities():
    china = load_scenario(SCENARIOS_DIR / "china.yaml")
    factors = {f.label: f for f in default_factors(china)}
    posterior = pd.read_csv(SCENARIOS_DIR.parent / "calibration" / "china" / "posterior.csv").set_index("quantity")
    split, shared = factors["contenders_share"], factors["contenders.attractiveness"]
    assert isinstance(split, SplitFactor) and isinstance(shared, SharedFactor)
    assert (split.low, split.high) == (posterior.loc["contenders_share", "lo"], posterior.loc["contenders_share", "hi"])
    assert "calibration/china" in factors["network_effect"].why
    data = china.resolved()
    split.apply(data, split.high)       # sets the contenders' firms, never the pool's to a share
    assert all(isinstance(c["firms"], int) and c["firms"] > 100 for c in data["cities"])
