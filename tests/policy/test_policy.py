"""Policy design: modu discover, modu optimise, modu equilibrium (known answers, brute force, reproducibility)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from sim.analysis.games import brute_force_equilibria
from sim.cli import main
from sim.experiments.ensemble import replication_seed
from sim.experiments.executors import open_executor
from sim.experiments.store import RunStore
from sim.experiments.sweep import parse_range
from sim.inference.draws import factor_draws, posterior_draws
from sim.inference.errors import InferenceError
from sim.inference.quantities import SharedFactor, SplitFactor, load_priors
from sim.policy import discover, optimise, plan_game, plan_optimisation, solve_game
from sim.policy.optimisation import compute_optimisation, optimisation_result
from sim.policy.race import GameRuns
from sim.policy.runs import final_counts
from sim.reporting.policy import recommendation
from sim.scenario import load_scenario
from sim.scenario.paths import derive
from sim.scenario.resources import SCENARIOS_DIR


def modu(*args: str):
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture(scope="module")
def short():
    """The baseline over 2016-2018 with the counts engine: four cities, fast."""
    return derive(load_scenario(SCENARIOS_DIR / "baseline.yaml"), {"time.end": 2018, "engine": "counts"})


def test_two_city_equilibrium_matches_brute_force_over_the_full_grid(short):
    plan = plan_game(short, ["Beijing", "Shanghai"], resolution=0.5, replications=2, seed=7)
    result = solve_game(plan, "serial", progress=False)
    with open_executor("serial") as ex:
        runs = GameRuns(plan, ex)
        sizes = [len(plan.strategies)] * 2
        equilibria = brute_force_equilibria(runs.payoffs, sizes)
        national = {p: runs.national(p) for p in itertools.product(range(sizes[0]), range(sizes[1]))}
    assert len(national) == 36  # 6 mixes per city at resolution 0.5
    if result.dynamics.converged:
        assert result.dynamics.profile in equilibria
    else:
        assert not any(p in equilibria for p in result.dynamics.cycle)
    assert national[result.cooperative] == max(national.values())
    assert result.price_of_anarchy == pytest.approx(max(national.values()) / national[result.dynamics.profile])
    assert 0 <= result.involution_equilibrium["index"] <= 1


def test_game_payoff_is_the_mean_of_independent_runs_with_common_seeds(short):
    plan = plan_game(short, ["Beijing", "Shanghai"], resolution=0.5, replications=2, seed=7)
    profile = (1, 4)
    with open_executor("serial") as ex:
        payoff = GameRuns(plan, ex).payoffs(profile)
    scenario = derive(short, plan.changes(profile))
    firms = np.mean([final_counts(scenario, replication_seed(7, 0, r))[0] for r in range(2)], axis=0)
    names = [c.name for c in short.cities]
    assert payoff.tolist() == [firms[names.index("Beijing")], firms[names.index("Shanghai")]]


def test_a_high_cost_of_spending_makes_every_player_choose_the_smallest_budget(short):
    plan = plan_game(short, ["Beijing", "Shanghai"], resolution=1, budgets=[5, 20], cost=1e6, replications=1, seed=7)
    result = solve_game(plan, "serial", progress=False)
    assert result.dynamics.converged
    assert (result.allocations().query("profile == 'equilibrium'").budget == 5).all()


def test_top_k_game_payoffs_are_probabilities_and_per100m_is_refused(short):
    plan = plan_game(short, ["Beijing", "Shanghai"], resolution=1, objective="top:1", replications=2, seed=7)
    with open_executor("serial") as ex:
        payoffs = GameRuns(plan, ex).payoffs(plan.start)
    assert set(payoffs) <= {0.0, 0.5, 1.0}
    with pytest.raises(ValueError, match="per100m"):
        plan_game(short, ["Beijing", "Shanghai"], objective="per100m")


def test_involution_index_of_a_pure_transfer_is_one_and_of_pure_growth_zero():
    from sim.policy.race import involution
    from sim.policy.runs import TOTALS

    ref = np.zeros((1, 1, len(TOTALS), 2))
    transfer = ref.copy()
    transfer[0, 0, 0] = [10, -10]           # firms
    transfer[0, 0, 3] = [10, 0]             # moves in
    transfer[0, 0, 4] = [0, 10]             # moves out
    assert involution(transfer, ref, ["A", "B"])["index"] == 1.0
    assert involution(transfer, ref, ["A", "B"])["moved"] == 10
    growth = ref.copy()
    growth[0, 0, 0] = [10, 0]
    growth[0, 0, 1] = [10, 0]               # births
    assert involution(growth, ref, ["A", "B"])["index"] == 0.0


def _plan(short, **kw):
    draws = factor_draws([parse_range("parameters.network_effect=0.3:1.2")], 2, seed=3).fields
    return plan_optimisation(short, "Shanghai", resolution=0.5, draws=draws, draws_source="test", replications=2,
                             seed=11, **kw)


def _stored(plan, folder: Path, executor: str):
    """Run (or resume) ``plan`` into the store in ``folder``: its scored result, runs found stored, runs made now."""
    with RunStore(folder, plan.definition(), "test") as store:
        totals, resumed, ran = compute_optimisation(plan, executor, store, progress=False)
    return optimisation_result(plan, totals), resumed, ran


def test_optimise_is_identical_on_serial_and_processes_and_resumes(short, tmp_path):
    plan = _plan(short)
    serial, _, ran = _stored(plan, tmp_path / "a", "serial")
    assert ran == plan.n_runs == (6 + 2) * 2 * 2  # 6 mixes, the current mix (off the grid), no spending
    processes, _, _ = _stored(plan, tmp_path / "b", "processes:2")
    pd.testing.assert_frame_equal(serial.to_df(), processes.to_df())
    resumed_result, resumed, ran = _stored(plan, tmp_path / "a", "serial")
    assert (resumed, ran) == (plan.n_runs, 0)
    pd.testing.assert_frame_equal(resumed_result.to_df(), serial.to_df())


def test_optimise_best_and_paired_tests(short):
    result = optimise(_plan(short), "serial", progress=False)
    t = result.to_df()
    grid = t[t.kind == "grid"]
    assert t.objective.iloc[result.best] == t.objective[t.feasible].max()
    assert t.indistinguishable.iloc[result.best] and not t.feasible[t.kind == "no spending"].any()
    assert len(grid) == 6 and t.current.sum() == 1
    assert result.regret()[0] == pytest.approx(t.objective.iloc[result.best] - t.objective.iloc[result.current])
    # firms_gained is paired against the same runs with the city's budget 0
    k = 0
    city = [c.name for c in result.plan.scenario.cities].index("Shanghai")
    gained = result.totals[k, :, :, 0, city] - result.totals[result.plan.reference, :, :, 0, city]
    assert t.firms_gained.iloc[k] == pytest.approx(gained.mean())


def test_the_interval_of_expected_firms_never_goes_below_zero(short):
    """Two draws far apart, one replication each: Student t's interval (t = 12.7) reaches below 0 and is cut there."""
    draws = pd.DataFrame({"cities.Shanghai.attractiveness": [-3.0, 1.0]})  # Shanghai nearly empty, then thriving
    plan = plan_optimisation(short, "Shanghai", resolution=0.5, draws=draws, draws_source="test", replications=1,
                             seed=11)
    result = optimise(plan, "serial", progress=False)
    t = result.to_df()
    values = result.values.reshape(len(t), -1)
    uncut = values.mean(axis=1) - stats.t.ppf(0.975, 1) * values.std(axis=1, ddof=1) / np.sqrt(2)
    assert (uncut < 0).any()                                     # the t interval alone would go below 0 ...
    assert (t.objective_low >= 0).all()                          # ... the reported one never does
    assert (t.objective_low[uncut < 0] == 0).all()
    assert t.objective_low[uncut >= 0].to_numpy() == pytest.approx(uncut[uncut >= 0])
    assert (t.objective_high - t.objective).to_numpy() == pytest.approx(t.objective - uncut)  # the upper end: t's
    text = recommendation(result)
    assert "95% confidence interval 0 to" in text and "cut at 0: firms cannot be negative" in text
    assert re.search(r"staying costs \S+ firms", text)


def test_the_race_path_starts_both_axes_at_zero(short):
    """National firms move by a fraction of a percent along the path: from 0 it looks the size it is."""
    plan = plan_game(short, ["Beijing", "Shanghai"], resolution=0.5, replications=1, seed=7)
    ax = solve_game(plan, "serial", progress=False).plot()
    assert len(ax.figure.axes) == 2                              # national firms and the players' payoffs
    for axis in ax.figure.axes:
        low, high = axis.get_ylim()
        assert low <= 0 < high
    assert "firms" in ax.get_ylabel() and "payoff" in ax.figure.axes[1].get_ylabel()


def test_top_k_over_every_ranked_city_is_certain_so_nothing_is_distinguishable(short):
    result = optimise(_plan(short, objective="top:3"), "serial", progress=False)  # 3 non-pool cities
    t = result.to_df()
    assert (t.objective[t.kind != "no spending"] == 1.0).all()
    assert t.indistinguishable[t.feasible].all()


def test_constraint_filters_candidates(short):
    result = optimise(_plan(short, constraint="anchor <= 0"), "serial", progress=False)
    t = result.to_df()
    assert (t[t.feasible].anchor == 0).all() and t.anchor.iloc[result.best] == 0


def test_posterior_draws_resample_the_last_generation():
    baseline = load_scenario(SCENARIOS_DIR / "baseline.yaml")
    draws = posterior_draws(50, seed=1, scenario=baseline).fields
    assert "parameters.network_effect" in draws.columns and len(draws) == 50
    assert draws.equals(posterior_draws(50, seed=1, scenario=baseline).fields)
    last = pd.read_csv(SCENARIOS_DIR.parent / "calibration" / "populations.csv")
    last = last[last.generation == last.generation.max()]
    assert set(draws["parameters.network_effect"]) <= set(last.network_effect)


def test_china_draws_come_from_china_calibration_with_its_split_and_shared_quantities_expanded():
    china = load_scenario(SCENARIOS_DIR / "china.yaml")
    folder = Path(china.calibration).parent
    assert folder.name == "china"
    drawn = posterior_draws(40, seed=3, scenario=china)
    draws = drawn.fields
    assert list(drawn.quantities.columns) == [f.label for f in load_priors(folder / "priors.yaml").priors]
    assert "calibration/china/populations.csv" in drawn.source
    last = pd.read_csv(folder / "populations.csv")
    last = last[last.generation == last.generation.max()]
    assert set(draws["parameters.network_effect"]) <= set(last.network_effect)
    baseline_last = pd.read_csv(SCENARIOS_DIR.parent / "calibration" / "populations.csv")
    assert not set(draws["parameters.network_effect"]) & set(baseline_last.network_effect)
    priors = load_priors(folder / "priors.yaml").priors
    splits = [f for f in priors if isinstance(f, SplitFactor)]
    shared = next(f for f in priors if isinstance(f, SharedFactor))
    firms = [c for c in draws.columns if c.endswith(".firms")]
    named = {p.split("[")[-1].split(".")[-2].rstrip("]") if "[" in p else p.split(".")[1] for p in firms}
    assert named == {place for split in splits for place in (split.pool, *split.weights)}
    group = sum(c.firms for c in china.cities if c.name in set(splits[0].members()))
    assert (draws[firms].sum(axis=1) == group).all()     # the splits keep the group's total
    constants = draws[[f"cities.{c}.attractiveness" if c.isidentifier() else f"cities[{c}].attractiveness"
                       for c in shared.cities]]
    assert (constants.nunique(axis=1) == 1).all()         # one constant shared by the contenders
    assert set(constants.iloc[:, 0]) <= set(last[shared.label])
    for d in range(len(draws)):                           # every draw is a valid scenario
        derive(china, draws.iloc[d].to_dict())


def test_optimise_and_equilibrium_on_china_name_and_use_china_calibration(tmp_path):
    out = tmp_path / "o"
    result = modu("optimise", "china", "Hefei", "--resolution", "0.5", "--draws", "2", "--replications", "1",
                  "--executor", "serial", "--no-figures", "--quiet", "--out", str(out))
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "calibration/china/populations.csv" in report
    draws = pd.read_csv(out / "draws.csv")
    china_last = pd.read_csv(SCENARIOS_DIR.parent / "calibration" / "china" / "populations.csv")
    assert set(draws["parameters.network_effect"]) <= set(china_last.network_effect)
    assert any(c.endswith(".firms") for c in draws.columns)
    out = tmp_path / "e"
    result = modu("equilibrium", "china", "--cities", "Hefei,Hangzhou", "--resolution", "1", "--draws", "2",
                  "--replications", "1", "--executor", "serial", "--no-figures", "--quiet", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "calibration/china/populations.csv" in (out / "report.md").read_text(encoding="utf-8")


def test_a_scenario_without_calibration_has_no_posterior_to_draw_from(short, tmp_path):
    bare = derive(short, {"calibration": None})
    with pytest.raises(InferenceError, match="names no calibration"):
        posterior_draws(3, seed=1, scenario=bare)


@pytest.mark.parametrize("args, message", [
    (["optimise", "china", "Paris"], "CITY: 'Paris' is not a city of china"),
    (["optimise", "china", "Hefei", "--objective", "best"], "--objective: unknown objective 'best'"),
    (["optimise", "china", "Hefei", "--resolution", "0"], "--resolution: resolution '0' leaves no grid point"),
    (["optimise", "china", "Hefei", "--constraint", "cost < 3"], "--constraint: expression: unknown column 'cost'"),
    (["equilibrium", "china", "--cities", "Hefei"], "--cities: need at least two distinct cities"),
    (["equilibrium", "china", "--cities", "Hefei,Paris"], "--cities: 'Paris' is not a city of china"),
])
def test_refusals_are_one_line_with_exit_2(args, message, tmp_path):
    result = modu(*args, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"modu: error: {message}") and result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.fixture
def sweep_summary():
    """A planted truth: the outcome holds exactly when x > 0.6 (y is noise)."""
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, 400), rng.uniform(0, 1, 400)
    return pd.DataFrame({"point": range(400), "x": x, "y": y, "replication": 0, "status": "ok",
                         "leader": np.where(x > 0.6, "Hefei", "Beijing")})


def test_discover_finds_the_planted_box(sweep_summary):
    found = discover(sweep_summary, ["x", "y"], "leader == 'Hefei'")
    box = found.box()
    assert list(box.index) == ["x"] and box.low.iloc[0] == pytest.approx(0.6, abs=0.03)
    assert found.prim.box.density == 1.0 and found.prim.box.coverage > 0.9
    assert "coverage" in found.sentence() and "density" in found.sentence()


def test_discover_explains_a_box_that_restricts_nothing(tmp_path):
    """Planted: 'Hefei' leads exactly where x ≥ 0.05 (about 95% of 40 runs): too few runs to keep the restriction, so
    the command and the report say the outcome is too common and show the best restricted box (x ≥ about 0.05)."""
    x, y = np.random.default_rng(0).uniform(0, 1, (40, 2)).T
    summary = pd.DataFrame({"point": range(40), "x": x, "y": y, "replication": 0, "status": "ok",
                            "leader": np.where(x >= 0.05, "Hefei", "Beijing")})
    folder = tmp_path / "sweep"
    folder.mkdir()
    summary.to_csv(folder / "summary.csv", index=False)
    result = modu("discover", str(folder), "--outcome", "leader == 'Hefei'", "--out", str(tmp_path / "d"))
    assert result.exit_code == 0, result.stderr
    share = f"{(x >= 0.05).mean():.0%}"
    lines = result.stdout.splitlines()
    assert "with no restriction on the inputs" in lines[0]
    assert lines[1].startswith(f"`leader == 'Hefei'` is too common at this threshold: it holds in {share} of all runs, "
                               "against a density threshold of 80%")
    assert lines[2].startswith("The best restricted box on the peeling trajectory, box ")
    assert "holds in 100% of the runs (density) with x ≥ " in lines[2]
    out = tmp_path / "d"
    best = pd.read_csv(out / "best_restricted_box.csv")
    assert list(best.input) == ["x"] and x[x < 0.05].max() < best.low[0] <= 0.15
    assert pd.read_csv(out / "box.csv").empty
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Why no restriction" in report and lines[1] in report and lines[2] in report
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert f"## The best restricted box on the trajectory (box {manifest['best_restricted_box']})" in report
    assert {"best_restricted_box.csv", "figures/box.png", "figures/trajectory.png"} <= set(manifest["files"])


def test_discover_says_which_box_it_kept_when_none_reaches_the_threshold(recwarn):
    """Planted: the outcome only where x > 0.97 (about 12 of 400 runs), boxes of at least 5% (20 runs): no box can
    reach 80%, so the densest is kept, and the summary says so instead of a Python warning."""
    x, y = np.random.default_rng(1).uniform(0, 1, (400, 2)).T
    summary = pd.DataFrame({"x": x, "y": y, "leader": np.where(x > 0.97, "Hefei", "Beijing")})
    found = discover(summary, ["x", "y"], "leader == 'Hefei'")
    densest = max(b.k / b.n for b in found.prim.trajectory)
    assert densest < 0.8 and found.prim.trajectory[found.prim.chosen].k / found.prim.trajectory[found.prim.chosen].n == densest
    assert found.prim.box.restricted and 0.9 < found.prim.box.limits["x"][0] <= 0.97
    note = (f"No box on the peeling trajectory reaches the density threshold of 80%: box {found.prim.chosen}, the "
            f"densest ({densest:.0%}), was kept.")
    assert found.threshold_note() == note and found.summary().splitlines() == [found.sentence(), note]
    assert not [w for w in recwarn if "no box reaches" in str(w.message)]


def test_discover_writes_its_folder_and_refuses_bad_outcomes(sweep_summary, tmp_path):
    folder = tmp_path / "sweep"
    folder.mkdir()
    sweep_summary.to_csv(folder / "summary.csv", index=False)
    ok = modu("discover", str(folder), "--outcome", "leader == 'Hefei'", "--out", str(tmp_path / "d"), "--no-figures")
    assert ok.exit_code == 0, ok.stderr
    assert {"trajectory.csv", "box.csv", "report.md", "manifest.json"} <= {p.name for p in (tmp_path / "d").iterdir()}
    for outcome, message in [("leeder == 'Hefei'", "unknown column 'leeder'"), ("x > 2", "never true"),
                             ("x >= 0", "always true")]:
        bad = modu("discover", str(folder), "--outcome", outcome, "--out", str(tmp_path / "e"))
        assert bad.exit_code == 2 and message in bad.stderr and bad.stderr.count("\n") == 1
    sweep_summary.drop(columns=["x", "y"]).assign(x="a").to_csv(folder / "summary.csv", index=False)
    bad = modu("discover", str(folder), "--outcome", "leader == 'Hefei'", "--out", str(tmp_path / "e"))
    assert bad.exit_code == 2 and "no swept numeric column" in bad.stderr
    assert not (tmp_path / "e").exists()
