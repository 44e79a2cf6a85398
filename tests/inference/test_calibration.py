"""Calibration machinery: ABC-SMC against exact posteriors, targets and priors, the summaries, the
command on a tiny budget, and the shipped calibration reproducing the documented 2023 counts."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from sim.analysis.abc_smc import (
    Population,
    Prior,
    abc_smc,
    populations_frame,
    populations_from_frame,
    weighted_correlation,
    weighted_quantile,
)
from sim.cli import main
from sim.experiments.ensemble import run_ensemble
from sim.experiments.executors import mapper, parse_executor
from sim.inference.data import TARGETS_PATH, documented_counts, load_targets
from sim.inference.estimates import MIN_ESS, posterior_table, too_few_particles
from sim.inference.identify import NONE_LEFT_OUT, FitSettings, leave_one_out, simulation_based_calibration
from sim.inference.problem import BASELINE_PATH, Layout, make_problem, summarise
from sim.inference.quantities import PRIORS_PATH
from sim.model import ModuModel
from sim.model.engines import Flows
from sim.scenario import load_scenario
from sim.scenario.factors import Factor as PriorSpec
from sim.scenario.loading import load_calibration
from sim.scenario.paths import PathError
from sim.scenario.resources import CALIBRATION_DIR, SCENARIOS_DIR


def normal_model(values, seeds):
    """y ~ N(θ, 0.5²): one summary per row."""
    return np.array([[np.random.default_rng(s).normal(v[0], 0.5)] for v, s in zip(values, seeds, strict=True)])


def sum_model(values, seeds):
    """y ~ N(θ1 + θ2, 0.05²): only the sum is identified."""
    return np.array([[np.random.default_rng(s).normal(v[0] + v[1], 0.05)] for v, s in zip(values, seeds, strict=True)])


def test_abc_smc_recovers_the_conjugate_normal_posterior():
    # Prior N(0, 1) (truncated at ±6, immaterial), one observation y = 1 with noise sd 0.5:
    # the exact posterior is N(0.8, 1/5).
    prior = Prior((PriorSpec(target="theta", kind="normal", mean=0.0, sd=1.0, low=-6, high=6, why="test"),))
    pops = abc_smc(normal_model, lambda s: np.abs(s[:, 0] - 1.0), prior, n_particles=600, max_generations=12,
                   min_epsilon=0.03, seed=3)
    post = pops[-1]
    assert post.epsilon <= 0.05
    mean = np.average(post.theta[:, 0], weights=post.weights)
    sd = np.sqrt(np.average((post.theta[:, 0] - mean) ** 2, weights=post.weights))
    se = np.sqrt(0.2 / post.ess())
    assert abs(mean - 0.8) < 4 * se + 0.01
    assert abs(sd - np.sqrt(0.2)) / np.sqrt(0.2) < 0.15
    assert [p.epsilon for p in pops[1:]] == sorted([p.epsilon for p in pops[1:]], reverse=True)


def test_abc_smc_reports_a_non_identified_pair_as_unconstrained_and_correlated():
    uniform = dict(kind="uniform", low=0.0, high=1.0, why="test")
    prior = Prior((PriorSpec(target="a", **uniform), PriorSpec(target="b", **uniform)))
    pops = abc_smc(sum_model, lambda s: np.abs(s[:, 0] - 1.0), prior, n_particles=400, max_generations=8,
                   min_epsilon=0.05, seed=5)
    post = pops[-1]
    table = posterior_table(prior, post).set_index("quantity")
    total = post.theta.sum(axis=1)
    assert abs(np.average(total, weights=post.weights) - 1.0) < 0.05            # the sum is pinned...
    assert (table.width_ratio > 0.6).all()                                       # ...each part is not
    assert weighted_correlation(post.theta, post.weights)[0, 1] < -0.8


def test_verdicts_need_an_effective_sample_size_of_min_ess():
    uniform = dict(kind="uniform", low=0.0, high=1.0, why="test")
    prior = Prior((PriorSpec(target="a", **uniform),))
    theta = np.linspace(0.45, 0.55, MIN_ESS)[:, None]                     # a tenth of the prior's width
    equal = Population(1, 0.1, theta, np.full(MIN_ESS, 1 / MIN_ESS), np.zeros(MIN_ESS), np.zeros((MIN_ESS, 1)), MIN_ESS)
    table = posterior_table(prior, equal)
    assert table.ess.item() == pytest.approx(MIN_ESS) and table.verdict.item() == "constrained"
    assert table.reason.item() == "" and too_few_particles(equal) == ""
    skewed = Population(**{**vars(equal), "weights": np.r_[0.5, np.full(MIN_ESS - 1, 0.5 / (MIN_ESS - 1))]})
    assert skewed.ess() < MIN_ESS                                           # ≈ 4: one particle holds half the weight
    table = posterior_table(prior, skewed)
    assert table.verdict.item() == "not interpretable"
    assert table.reason.item().startswith(f"effective sample size 4, below the {MIN_ESS} needed")


def test_abc_smc_is_the_same_on_every_executor():
    problem = make_problem(BASELINE_PATH, TARGETS_PATH, PRIORS_PATH, "gross")
    runs = [abc_smc(problem.simulator(), problem.distance, problem.prior, n_particles=8, max_generations=2,
                    min_epsilon=0.0, seed=11, imap=mapper(parse_executor(e)), chunk=3)
            for e in ("serial", "processes:2")]
    for a, b in zip(*runs, strict=True):
        assert a.simulations == b.simulations
        np.testing.assert_array_equal(a.theta, b.theta)
        np.testing.assert_array_equal(a.summaries, b.summaries)


def test_sbc_and_leave_one_out_are_the_same_on_every_executor():
    problem = make_problem(BASELINE_PATH, TARGETS_PATH, PRIORS_PATH, "gross")
    settings, ids = FitSettings(particles=8, generations=2), [f.id for f in problem.fitted[:2]]
    sbc = [simulation_based_calibration(problem, 3, settings, 5, parse_executor(e), progress=False)
           for e in ("serial", "processes:2")]
    pd.testing.assert_frame_equal(sbc[0].to_df(), sbc[1].to_df())
    assert sbc[0].simulations == sbc[1].simulations > 3 * 8
    lopo = [leave_one_out(problem, settings, 5, parse_executor(e), ids=ids) for e in ("serial", "processes:2")]
    pd.testing.assert_frame_equal(lopo[0], lopo[1])
    assert list(lopo[0].left_out) == [NONE_LEFT_OUT, *ids]


def test_populations_round_trip_through_their_table():
    problem = make_problem(BASELINE_PATH, TARGETS_PATH, PRIORS_PATH, "gross")
    pops = abc_smc(problem.simulator(), problem.distance, problem.prior, n_particles=6, max_generations=2,
                   min_epsilon=0.0, seed=2)
    back = populations_from_frame(problem.prior, populations_frame(problem.prior, pops))
    for a, b in zip(pops, back, strict=True):
        np.testing.assert_allclose(a.theta, b.theta)
        np.testing.assert_allclose(a.weights, b.weights)
        assert (a.generation, a.simulations) == (b.generation, b.simulations)


def test_a_resumed_run_continues_as_if_never_interrupted():
    prior = Prior((PriorSpec(target="theta", kind="normal", mean=0.0, sd=1.0, low=-6, high=6, why="test"),))
    kwargs = dict(n_particles=50, min_epsilon=0.0, seed=8)
    distance = lambda s: np.abs(s[:, 0] - 1.0)  # noqa: E731
    whole = abc_smc(normal_model, distance, prior, max_generations=4, **kwargs)
    first = abc_smc(normal_model, distance, prior, max_generations=2, **kwargs)
    saved = populations_from_frame(prior, populations_frame(prior, first))
    resumed = abc_smc(normal_model, distance, prior, max_generations=4, start=saved, **kwargs)
    assert [p.generation for p in resumed] == [0, 1, 2, 3]
    for a, b in zip(whole[2:], resumed[2:], strict=True):
        np.testing.assert_allclose(a.theta, b.theta)
        assert a.epsilon == b.epsilon and a.simulations == b.simulations
    assert resumed[-1].wall_time >= resumed[1].wall_time


def test_resume_refuses_a_table_of_other_particles_or_quantities(tmp_path: Path):
    table = tmp_path / "populations.csv"
    table.write_text("generation,epsilon,simulations,weight,distance,network_effect\n0,inf,2,0.5,0.1,1.0\n")
    result = CliRunner().invoke(main, ["calibrate", "--resume", str(table), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--resume" in result.stderr and "missing" in result.stderr
    assert not (tmp_path / "o").exists()


def test_weighted_quantile_with_equal_weights_is_the_hazen_quantile_and_ignores_zero_weights():
    x = np.random.default_rng(0).normal(size=101)
    for q in (0.05, 0.5, 0.95):
        assert weighted_quantile(x, np.ones_like(x), q) == pytest.approx(np.quantile(x, q, method="hazen"))
    assert weighted_quantile(np.array([1.0, 2.0, 100.0]), np.array([1.0, 1.0, 0.0]), 0.5) == pytest.approx(1.5)


def test_targets_record_every_figure_with_its_source_and_every_reading():
    targets = load_targets()
    assert all(f.source for f in targets.figures)
    by_id = {f.id: f for f in targets.figures}
    assert by_id["beijing_2016"].value == 39800 and by_id["shenzhen_2023"].value == 63800
    assert "4.26万" in by_id["shenzhen_gross_2016_2023"].source
    gross = {f.id for f in targets.fitted("gross")}
    misprint = {f.id for f in targets.fitted("misprint")}
    assert gross - misprint == {"shenzhen_gross_2016_2023"}
    assert misprint == {"beijing_2023", "shenzhen_2023", "national_2022", "big_three_share_2022",
                        "shenzhen_first_2022", "beijing_top3_2022", "shanghai_top3_2022"}
    assert set(targets.shenzhen_increment["readings"]) == {"gross", "misprint", "count-2016"}
    assert {f.id for f in targets.fitted("count-2016")} == misprint     # its own initial count, in its own targets


def test_problem_checks_the_scenario_against_the_documented_initial_counts(tmp_path: Path):
    raw = yaml.safe_load(BASELINE_PATH.read_text())
    raw["calibration"] = str(CALIBRATION_DIR / "calibrated.yaml")
    raw["cities"][0]["firms"] = 40000
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True))
    result = CliRunner().invoke(main, ["calibrate", "--scenario", str(bad), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "cities[Beijing].firms: 40,000 in 2017" in result.stderr and "39,800 (beijing_2016)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_targets_and_priors_files_are_refused_in_one_line(tmp_path: Path):
    targets = tmp_path / "t.yaml"
    targets.write_text("name: x\nuniverse: u\ndating: d\nfigures: [{id: a, city: Nowhere, year: 2022, quantity: firms, "
                       "value: 1, role: target, source: s}]\nshenzhen_increment: {}\n")
    result = CliRunner().invoke(main, ["calibrate", "--targets", str(targets), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "figures[a].city: 'Nowhere'" in result.stderr
    priors = tmp_path / "p.yaml"
    priors.write_text("steps_per_year: 4\npriors: [{target: parameters.no_such, kind: uniform, low: 0, high: 1, why: w}]\n")
    result = CliRunner().invoke(main, ["calibrate", "--priors", str(priors), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "priors[0].target" in result.stderr and "no_such" in result.stderr
    result = CliRunner().invoke(main, ["calibrate", "--shenzhen-increment", "net"])
    assert result.exit_code == 2
    result = CliRunner().invoke(main, ["calibrate", "--other-reading", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--other-reading" in result.stderr and "not a calibration folder" in result.stderr
    assert not (tmp_path / "o").exists()


def set_value(data, target, value, scale=False):
    Factor = PriorSpec
    Factor(target=target, low=-1e9, high=1e9, scale=scale).apply(data, value)


def test_factors_reach_parameters_nested_weights_cities_and_budgets():
    data = load_scenario(BASELINE_PATH).resolved()
    set_value(data, "parameters.network_effect", 0.7)
    set_value(data, "parameters.lever_effects.compute.upstream", 0.9)
    set_value(data, "cities.Shanghai.attractiveness", -0.5)
    budgets = [c["policy"]["budget"] for c in data["cities"] if c.get("policy")]
    set_value(data, "cities.*.policy.budget", 2.0, scale=True)
    assert data["parameters"]["network_effect"] == 0.7
    assert data["parameters"]["lever_effects"]["compute"]["upstream"] == 0.9
    assert next(c for c in data["cities"] if c["name"] == "Shanghai")["attractiveness"] == -0.5
    assert [c["policy"]["budget"] for c in data["cities"] if c.get("policy")] == [2 * b for b in budgets]
    assert [c["policy"] for c in data["cities"] if not c.get("policy")] == [None] * (len(data["cities"]) - len(budgets))
    with pytest.raises(PathError, match="Atlantis"):
        set_value(data, "cities.Atlantis.attractiveness", 1.0)


@pytest.mark.parametrize("engine", ["agents", "counts"])
def test_summaries_follow_the_growth_accounting(engine: str):
    raw = load_scenario(BASELINE_PATH).resolved()
    raw.update(engine=engine)
    from sim.scenario import Scenario

    scenario = Scenario.model_validate(raw)
    model = ModuModel(scenario, rng=4, record_events=False)
    model.run()
    layout = Layout.of(scenario)
    s = summarise(Flows(*(model.history.stack(k) for k in Flows._fields)), scenario.time.steps_per_year)
    frame = model.history.firms_frame()
    final = frame[frame.step == frame.step.max()].groupby("city", sort=False).firms.sum()
    np.testing.assert_array_equal(layout.firms(s)[-1], final[list(layout.cities)].to_numpy())
    flows = frame.groupby("city", sort=False)[["births", "deaths", "moves_in", "moves_out"]].sum().loc[list(layout.cities)]
    np.testing.assert_array_equal(layout.inflow(s)[-1], (flows.births + flows.moves_in).to_numpy())
    assert layout.moves(s)[-1] == flows.moves_in.sum() == flows.moves_out.sum()
    outflow = layout.inflow(s)[-1] - (layout.firms(s)[-1] - layout.firms(s)[0])
    np.testing.assert_array_equal(outflow, (flows.deaths + flows.moves_out).to_numpy())


def test_documented_counts_cover_only_the_scenarios_cities_and_span():
    points = documented_counts(load_scenario(BASELINE_PATH))
    assert set(zip(points.city, points.year, points.firms, strict=True)) == {
        ("Beijing", 2017.0, 39800), ("Shenzhen", 2017.0, 36100), ("Shanghai", 2017.0, 26500),
        ("Beijing", 2023.0, 47800), ("Shenzhen", 2023.0, 63800)}


CALIBRATED_SCENARIOS = [(BASELINE_PATH, CALIBRATION_DIR), (SCENARIOS_DIR / "china.yaml", CALIBRATION_DIR / "china")]
"""The shipped scenarios that claim a calibration of their own, with its folder."""


@pytest.mark.parametrize(("path", "folder"), CALIBRATED_SCENARIOS, ids=lambda x: getattr(x, "stem", None))
def test_shipped_calibration_is_what_the_scenario_reads_and_it_reproduces_the_documented_counts(path, folder):
    calibrated = load_calibration(folder / "calibrated.yaml")
    scenario = load_scenario(path)
    assert scenario.calibration == str((folder / "calibrated.yaml").resolve())
    for name, value in calibrated.parameters.items():
        assert getattr(scenario.parameters, name) == pytest.approx(value)
    for city in scenario.cities:
        for field, value in calibrated.cities.get(city.name, {}).items():
            assert getattr(city, field) == pytest.approx(value), (city.name, field)
    firms = run_ensemble(scenario, executor="serial", progress=False).tables["firms"]
    end = firms[firms.year == scenario.time.end].groupby(["replication", "city"]).firms.sum().unstack()
    targets = load_targets()
    for fig in targets.fitted("misprint"):
        if fig.quantity == "firms":
            assert end[fig.city].median() == pytest.approx(fig.value, rel=0.10), fig.id
        elif fig.quantity == "national_firms":
            assert end.sum(axis=1).median() == pytest.approx(fig.value, rel=0.10), fig.id
    assert (end["Shenzhen"] > end["Beijing"]).mean() >= 0.8


@pytest.mark.slow
def test_calibrate_command_writes_everything_on_a_tiny_budget(tmp_path: Path):
    raw = yaml.safe_load(BASELINE_PATH.read_text())
    raw["calibration"] = str(CALIBRATION_DIR / "calibrated.yaml")
    raw["replications"] = 3
    scenario = tmp_path / "baseline.yaml"
    scenario.write_text(yaml.safe_dump(raw, allow_unicode=True))
    shipped = (CALIBRATION_DIR / "calibrated.yaml").read_bytes()
    out = tmp_path / "cal"
    result = CliRunner().invoke(main, ["calibrate", "--scenario", str(scenario), "--particles", "12",
                                       "--generations", "2", "--predictive", "12", "--executor", "serial",
                                       "--sbc", "3", "--leave-one-out", "--reduced-particles", "10",
                                       "--reduced-generations", "2", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (CALIBRATION_DIR / "calibrated.yaml").read_bytes() == shipped                      # only --out is written
    for name in ("calibrated.yaml", "report.md", "populations.csv", "posterior.csv", "predictive.csv",
                 "manifest.json", "figures/fit.png", "figures/posterior.png", "figures/pairs.png",
                 "figures/forecast_shanghai.png", "regimes.csv", "coverage.csv", "sbc_ranks.csv",
                 "leave_one_out.csv", "figures/sbc_ranks.png"):
        assert (out / name).exists(), name
    coverage = pd.read_csv(out / "coverage.csv")
    assert set(coverage.quantity) == set(pd.read_csv(out / "posterior.csv").quantity) and (coverage.datasets == 3).all()
    ranks = pd.read_csv(out / "sbc_ranks.csv")
    assert ranks["rank"].between(0, 99).all() and len(ranks) == 3 * len(coverage)
    lopo = pd.read_csv(out / "leave_one_out.csv")
    assert lopo.left_out.iloc[0].startswith("(none")
    assert set(lopo.left_out.iloc[1:]) == {f.id for f in load_targets().fitted("gross")}
    assert "## Is the network effect identified?" in (out / "report.md").read_text()
    assert not (out / "INCOMPLETE").exists()
    values = load_calibration(out / "calibrated.yaml").model_dump()
    priors = {s.target: s for s in make_problem(scenario, TARGETS_PATH, PRIORS_PATH, "gross").prior.specs}
    for name, value in values["parameters"].items():
        spec = priors[f"parameters.{name}"]
        assert spec.low <= value <= spec.high
    assert set(values["cities"]) == {"Beijing", "Shenzhen", "Shanghai"}
    report = (out / "report.md").read_text()
    for section in ("## Data", "## Posterior and identification", "## Fit", "## Forecast", "## Validation"):
        assert section in report
    # 12 particles: an effective sample size of at most 12, so no verdict is stated as a finding
    table = pd.read_csv(out / "posterior.csv")
    assert (table.verdict == "not interpretable").all() and (table.ess <= 12).all()
    assert "posterior intervals and verdicts not interpretable: effective sample size" in result.output
    assert "**Not interpretable:** the intervals and verdicts below rest on too few particles" in report
    assert "Constrained at least weakly" not in report


def test_the_china_scenario_meets_the_sources_statements_about_who_leads_or_its_report_says_why():
    """`modu run china` (its 20 replications, seed and calibration; the compiled kernel): every ranking and ordering
    statement of the sources holds in at least 80% of the replications, or the calibration report lists it with the
    reason the sources give the model no way to meet it (a known conflict, `note:` in the targets)."""
    from sim.experiments.ensemble import replication_seed
    from sim.inference.problem import Layout, summarise
    from sim.model.engines import simulate_flows
    from sim.scenario.paths import derive

    china = derive(load_scenario(SCENARIOS_DIR / "china.yaml"), {"engine": "counts"})
    layout = Layout.of(china)
    sums = np.array([summarise(simulate_flows(china, replication_seed(china.seed, r)), china.time.steps_per_year)
                     for r in range(china.replications)])
    targets = load_targets(CALIBRATION_DIR / "china" / "targets.yaml")
    report = (CALIBRATION_DIR / "china" / "report.md").read_text(encoding="utf-8")
    statements = [f for f in targets.figures if f.statement]
    assert len(statements) >= 10
    for fig in statements:
        share = layout.holds(sums, fig).mean()
        if share < 0.8:
            assert fig.note and f"`{fig.id}`" in report, (fig.id, share)
    documented = [f for f in statements if not f.inferred and f.universe is None]   # the atlas's own words
    assert all(layout.holds(sums, f).mean() >= 0.8 for f in documented)
