"""``modu compare``: common random numbers, cost-effectiveness, growth accounting against no policy, refusals."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from sim.cli import main
from sim.experiments.compare import NATIONAL, POLICY_ACTIONS, mean_interval, no_policy, plan_comparison, run_comparison
from sim.reporting.compare_figures import per_100m_text, plot_counts, plot_effects
from sim.scenario import EVENT_ACTIONS, load_scenario

BASE = """\
name: base
time: {start: 2016, end: 2018, steps_per_year: 4}
seed: 5
replications: 4
parameters: {birth_rate: 0.04, exit_rate: 0.01, relocation_rate: 0.01, congestion: 0.0,
             lever_effects: {compute: {upstream: 0.6, midstream: 0.3, downstream: 0.3}}}
cities:
  - {name: A, firms: 300, policy: {budget: 10, allocation: {compute: 1.0, data: 0.0, anchor: 0.0}}}
  - {name: B, firms: 300, policy: {budget: 10, allocation: {compute: 0.0, data: 1.0, anchor: 0.0}}}
  - {name: Rest, firms: 300, pool: true}
"""


def modu(*args: str):
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write(tmp_path, "base.yaml", BASE)


def run_compare(tmp_path: Path, *files: Path, extra: tuple[str, ...] = ("--no-figures",)) -> Path:
    """The comparison of ``files`` as written (the deep uncertainties held: these tests check its arithmetic)."""
    out = tmp_path / "out"
    result = modu("compare", *map(str, files), "--out", str(out), "--executor", "serial", "--quiet",
                  "--fixed-assumptions", *extra)
    assert result.exit_code == 0, result.stderr
    return out


def test_compare_writes_report_figures_tables_and_manifest(tmp_path: Path, base: Path):
    big = write(tmp_path, "big.yaml", "extends: base.yaml\nname: big\ncities: [{name: B, policy: {budget: 30}}]\n")
    out = run_compare(tmp_path, base, big, extra=())
    report = (out / "report.md").read_text()
    embedded = [line[line.index("(") + 1:-1] for line in report.splitlines() if line.startswith("![")]
    assert {"figures/effects.png", "figures/growth_accounting.png", "figures/counts.png"} <= set(embedded)
    for figure in embedded:
        assert (out / figure).stat().st_size > 0 and (out / figure).with_suffix(".svg").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["label"] for s in manifest["scenarios"]] == ["base", "big", "base: no policy"]
    assert manifest["seed"] == 5 and manifest["replications"] == 4 and manifest["complete"]
    assert set(manifest["files"]) >= {"report.md", "effects.csv", "policy.csv", "figures/spending.svg"}
    assert not (out / "INCOMPLETE").exists()
    assert "**big**" in report and "| B |" in report and "| All cities |" in report


def test_the_same_scenario_twice_gives_exactly_zero_differences(tmp_path: Path, base: Path):
    """Common random numbers: identical scenarios under two names draw identical replications."""
    twin = write(tmp_path, "twin.yaml", "extends: base.yaml\nname: twin\n")
    out = run_compare(tmp_path, base, twin, extra=("--no-figures", "--skip-no-policy"))
    effects = pd.read_csv(out / "effects.csv")
    assert set(effects.city) == {"A", "B", "Rest", NATIONAL}
    assert (effects[["firms_gained", "firms_gained_low", "firms_gained_high", "extra_spend"]] == 0).all().all()
    assert effects.pairing_correlation.dropna().to_numpy() == pytest.approx(1.0)
    reps = pd.read_csv(out / "replications.csv")
    a, b = (reps[reps.scenario == s].drop(columns="scenario").reset_index(drop=True) for s in ("base", "twin"))
    pd.testing.assert_frame_equal(a, b)


def test_cost_effectiveness_spending_and_paired_ratio(tmp_path: Path, base: Path):
    """B's budget rises from 10 to 30 a year for the two years: 40 (100 M yuan) more, all on data. The
    ratio is the mean over replications of (B's firms − reference's)/40, with its t interval."""
    big = write(tmp_path, "big.yaml", "extends: base.yaml\nname: big\ncities: [{name: B, policy: {budget: 30}}]\n")
    out = run_compare(tmp_path, base, big, extra=("--no-figures", "--skip-no-policy", "--replications", "6"))
    effects = pd.read_csv(out / "effects.csv").set_index("city")
    assert effects.loc["B", "extra_spend"] == pytest.approx(40)
    assert effects.loc["B", "extra_spend_data"] == pytest.approx(40) and effects.loc["B", "extra_spend_compute"] == 0
    assert effects.loc[NATIONAL, "extra_spend"] == pytest.approx(40) and effects.loc["A", "extra_spend"] == 0
    assert math.isnan(effects.loc["A", "firms_per_100m"])          # same spending: no per-yuan figure
    reps = pd.read_csv(out / "replications.csv")
    firms = reps[reps.city == "B"].pivot(index="replication", columns="scenario", values="firms")
    gained = firms["big"] - firms["base"]
    half = stats.t.ppf(0.975, 5) * gained.std(ddof=1) / math.sqrt(6)
    assert effects.loc["B", "firms_gained"] == pytest.approx(gained.mean())
    assert effects.loc["B", "firms_gained_high"] == pytest.approx(gained.mean() + half)
    assert effects.loc["B", "firms_per_100m"] == pytest.approx(gained.mean() / 40)


def test_a_budget_cut_reads_as_firms_lost_per_yuan_saved_in_report_and_figure(tmp_path: Path, base: Path):
    """A's budget falls from 10 to 0 and A loses firms: the positive ratio is worded as a loss per yuan saved."""
    cut = write(tmp_path, "cut.yaml", "extends: base.yaml\nname: cut\ncities: [{name: A, policy: {budget: 0}}]\n")
    out = run_compare(tmp_path, base, cut, extra=("--skip-no-policy",))
    effects = pd.read_csv(out / "effects.csv").set_index("city")
    assert effects.loc["A", "extra_spend"] == pytest.approx(-20) and effects.loc["A", "firms_gained"] < 0
    ratio = effects.loc["A", "firms_per_100m"]
    assert ratio > 0
    row = next(line for line in (out / "report.md").read_text().splitlines() if line.startswith("| A |"))
    assert f"{ratio:.3g} [" in row and row.endswith("firms lost per 100 M yuan saved |") and "+" not in row.split("|")[4]
    assert "firms gained per 100 M yuan spent" not in row
    figure = plot_effects(run_comparison(*plan_comparison([base, cut], with_no_policy=False), executor="serial",
                                         progress=False))
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert any(t.startswith(f"{ratio:.3g} [") and t.endswith("firms lost per 100 M yuan saved") for t in texts)


def test_per_100m_wording_follows_the_sign_of_spending():
    assert per_100m_text(40, 2.5, 1.0, 4.0) == "2.5 [1, 4] firms gained per 100 M yuan spent"
    assert per_100m_text(-40, 2.5, 1.0, 4.0) == "2.5 [1, 4] firms lost per 100 M yuan saved"
    assert per_100m_text(-40, -0.5, -2.0, 1.0) == "−0.5 [−2, 1] firms lost per 100 M yuan saved"
    assert per_100m_text(0, math.nan, math.nan, math.nan) == "–"


def test_compare_count_panels_start_at_zero_and_say_so(tmp_path: Path, base: Path):
    big = write(tmp_path, "big.yaml", "extends: base.yaml\nname: big\ncities: [{name: B, policy: {budget: 30}}]\n")
    comparison = run_comparison(*plan_comparison([base, big], with_no_policy=False), executor="serial", progress=False)
    fig = plot_counts(comparison)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == [*comparison.cities, NATIONAL]
    assert all(ax.get_ylim()[0] == 0 for ax in shown)
    assert "every axis from 0" in fig.get_suptitle()


def test_a_city_that_spends_on_an_effective_lever_gains_firms_against_no_policy(tmp_path: Path, base: Path):
    """A spends 10 a year on compute, which all sectors value; against no policy, its interval is above 0.
    B's data stock has no effect (lever_effects gives data none), so B's policy buys nothing."""
    out = run_compare(tmp_path, base, extra=("--no-figures", "--replications", "8"))
    policy = pd.read_csv(out / "policy.csv").set_index("city")
    assert policy.loc["A", "firms_gained_low"] > 0
    assert policy.loc["A", "spend"] == pytest.approx(20) and policy.loc["B", "spend"] == pytest.approx(20)
    assert policy.loc["A", "firms_per_100m"] > policy.loc["B", "firms_per_100m"]


def test_growth_accounting_against_no_policy_is_exact(tmp_path: Path, base: Path):
    """Against the same initial state, Δfirms = Δbirths − Δdeaths + Δmoves_in − Δmoves_out in every
    replication, so also in the means; nationally moves cancel."""
    out = run_compare(tmp_path, base, extra=("--no-figures",))
    policy = pd.read_csv(out / "policy.csv")
    net = policy.births - policy.deaths + policy.moves_in - policy.moves_out
    np.testing.assert_allclose(policy.firms_gained, net, atol=1e-9)
    national = policy[policy.city == NATIONAL].iloc[0]
    assert national.moves_in == pytest.approx(national.moves_out)
    assert set(policy.city) == {"A", "B", "Rest", NATIONAL} and (policy.no_policy == "base: no policy").all()


def test_no_policy_variant_keeps_anchors_and_openings_and_drops_spending(tmp_path: Path, base: Path):
    events = """events:
  - {year: 2016.5, city: A, invest: {compute: 5}, add_anchor: {name: X, sector: upstream}}
  - {year: 2017, city: B, budget: 3, strategy: imitate}
  - {year: 2017, city: B, open: false}
"""
    path = write(tmp_path, "events.yaml", BASE + events)
    variant = no_policy(load_scenario(path))
    assert all(c.policy is None for c in variant.cities)
    assert [(e.year, e.invest, e.budget, e.strategy, e.add_anchor and e.add_anchor.name, e.open)
            for e in variant.events] == [(2016.5, None, None, None, "X", None), (2017, None, None, None, None, False)]
    assert set(POLICY_ACTIONS) < set(EVENT_ACTIONS)


def test_identical_no_policy_variants_run_once(tmp_path: Path, base: Path):
    realloc = write(tmp_path, "realloc.yaml", "extends: base.yaml\nname: realloc\n"
                                              "cities: [{name: A, policy: {allocation: {data: 1.0}}}]\n")
    plain = write(tmp_path, "plain.yaml", BASE.replace("name: base", "name: plain").split("cities:")[0]
                  + "cities:\n  - {name: A, firms: 300}\n  - {name: B, firms: 300}\n  - {name: Rest, firms: 300, "
                    "pool: true}\n")
    arms, variants = plan_comparison([base, realloc, plain])
    assert [a.label for a in arms] == ["base", "realloc", "plain"]        # plain has no policy: it is the variant
    assert {k: v.label for k, v in variants.items()} == {"base": "plain", "realloc": "plain", "plain": "plain"}


def test_a_scenario_without_policy_is_its_own_counterfactual(tmp_path: Path, base: Path):
    plain = write(tmp_path, "plain.yaml", "extends: base.yaml\nname: plain\n"
                                          "cities: [{name: A, policy: null}, {name: B, policy: null}]\n")
    out = run_compare(tmp_path, plain, base, extra=("--no-figures",))
    policy = pd.read_csv(out / "policy.csv")
    assert set(policy.no_policy) == {"plain"}
    assert (policy[policy.scenario == "plain"][["firms_gained", "births", "spend"]] == 0).all().all()
    report = (out / "report.md").read_text()
    assert "plain has no policy: nothing to account for." in report and "| base |" in report
    assert json.loads((out / "manifest.json").read_text())["no_policy"] == {"plain": "plain", "base": "plain"}


def test_cities_only_some_scenarios_have_are_reported_and_counted_nationally(tmp_path: Path, base: Path):
    more = write(tmp_path, "more.yaml", "extends: base.yaml\nname: more\ncities: [{name: New, firms: 50}]\n")
    out = run_compare(tmp_path, base, more, extra=("--no-figures", "--skip-no-policy"))
    effects = pd.read_csv(out / "effects.csv")
    assert "New" not in set(effects.city)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["unmatched_cities"] == {"base": [], "more": ["New"]}
    assert "more: New" in (out / "report.md").read_text()
    reps = pd.read_csv(out / "replications.csv")
    more_reps = reps[reps.scenario == "more"]
    by_rep = more_reps[more_reps.city != NATIONAL].groupby("replication").firms.sum()
    np.testing.assert_array_equal(by_rep, more_reps[more_reps.city == NATIONAL].set_index("replication").firms)


@pytest.mark.parametrize("second, where", [
    ("extends: base.yaml\nname: long\ntime: {end: 2019}\n",
     "time: 2016–2019 by 4 steps a year differs from"),
    ("extends: base.yaml\n", "name: 'base' is also the name of"),
    ("name: other\ntime: {start: 2016, end: 2018}\ncities: [{name: X, firms: 10}]\n",
     "cities: no city in common with"),
    ("extends: base.yaml\nname: bad\ncities: [{name: A, policy: {budget: -1}}]\n", "cities[A].policy.budget"),
])
def test_scenarios_that_cannot_be_compared_are_refused_before_anything_runs(tmp_path: Path, base: Path,
                                                                             second: str, where: str):
    other = write(tmp_path, "second.yaml", second)
    out = tmp_path / "never"
    result = modu("compare", str(base), str(other), "--out", str(out), "--executor", "serial", "--quiet")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"modu: error: {other}") and where in lines[0], result.stderr
    assert not out.exists()


def test_bad_options_are_refused(tmp_path: Path, base: Path):
    out = tmp_path / "never"
    result = modu("compare", str(base), "--skip-no-policy", "--out", str(out))
    assert result.exit_code == 2 and "nothing to compare" in result.stderr and not out.exists()
    result = modu("compare", str(base), "--executor", "threads", "--out", str(out))
    assert result.exit_code == 2 and "--executor" in result.stderr and not out.exists()


def test_results_do_not_depend_on_the_executor(tmp_path: Path, base: Path):
    big = write(tmp_path, "big.yaml", "extends: base.yaml\nname: big\ncities: [{name: B, policy: {budget: 30}}]\n")
    outs = []
    for executor in ("serial", "processes:2"):
        out = tmp_path / executor.replace(":", "_")
        assert modu("compare", str(base), str(big), "--out", str(out), "--executor", executor, "--quiet",
                    "--no-figures", "--replications", "3").exit_code == 0
        outs.append(out)
    for name in ("replications", "effects", "policy", "robustness", "robustness_draws"):   # the draws too
        assert (outs[0] / f"{name}.csv").read_bytes() == (outs[1] / f"{name}.csv").read_bytes()


def test_mean_interval():
    mean, low, high = mean_interval(np.array([1.0, 2.0, 3.0, np.nan]))
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert mean_interval(np.array([4.0]))[0] == 4.0 and math.isnan(mean_interval(np.array([4.0]))[1])
    assert all(math.isnan(v) for v in mean_interval(np.array([np.nan])))


def test_an_interval_cut_to_the_support_keeps_its_coverage():
    """Counts of a rare event, three runs each: Student t reaches below 0 in most samples; cut at 0, the interval
    still holds the true mean as often (it lies inside the support), and never goes below 0."""
    assert mean_interval(np.array([0.0, 0.0, 9.0]), support=(0.0, math.inf)) == pytest.approx(
        (3.0, 0.0, 3.0 + stats.t.ppf(0.975, 2) * math.sqrt(27) / math.sqrt(3)))
    assert mean_interval(np.array([0.9, 1.0, 1.0]), support=(0.0, 1.0))[2] == 1.0
    rng = np.random.default_rng(8)
    samples = rng.poisson(0.8, size=(4000, 3)).astype(float)
    cut = np.array([mean_interval(x, support=(0.0, math.inf)) for x in samples])
    plain = np.array([mean_interval(x) for x in samples])
    assert (plain[:, 1] < 0).mean() > 0.5 and (cut[:, 1] >= 0).all()
    covers = lambda i: np.nan_to_num((i[:, 1] <= 0.8) & (0.8 <= i[:, 2])).mean()  # noqa: E731
    assert covers(cut) == covers(plain)


def test_compare_reports_say_whether_each_scenario_is_calibrated_and_to_which_data(tmp_path: Path):
    from sim.reporting.compare import calibration_status
    from sim.scenario import load_scenario
    from sim.scenario.resources import SCENARIOS_DIR

    baseline = calibration_status(load_scenario(SCENARIOS_DIR / "baseline.yaml"))
    assert baseline.startswith("calibrated: its own calibration, `calibration/` (2017–2023)")
    assert "universe `qixinbao_ai_related`" in baseline and "national_2022" in baseline
    wave = calibration_status(load_scenario(SCENARIOS_DIR / "compute_wave.yaml"))
    assert "the calibration of `china` (inherited), `calibration/china/`" in wave
    bare = tmp_path / "bare.yaml"
    bare.write_text("name: bare\ncities: [{name: A, firms: 3}, {name: B, firms: 2}]\n")
    assert calibration_status(load_scenario(bare)).startswith("not calibrated")
