"""The data layer (observations, patterns, dating, universes), the China contenders' split, and the
identification tools (SBC coverage, regimes, leave-one-out) on known answers."""

import copy
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.analysis.abc_smc import Population
from sim.inference.data import DATA_DIR, TARGETS_PATH, Figure, Targets, load_observations, load_targets
from sim.inference.errors import InferenceError
from sim.inference.identify import RANK_DRAWS, SBCResult, coverage_table, regime_table
from sim.inference.problem import BASELINE_PATH, Layout, make_problem
from sim.inference.quantities import PRIORS_PATH, SharedFactor, SplitFactor, load_priors
from sim.scenario import load_scenario
from sim.scenario.resources import CALIBRATION_DIR, SCENARIOS_DIR

CHINA = SCENARIOS_DIR / "china.yaml"
CHINA_PRIORS = CALIBRATION_DIR / "china" / "priors.yaml"


def test_observations_are_tidy_and_every_row_names_its_universe_and_source():
    obs = load_observations()
    assert len(obs) == sum(len(pd.read_csv(p)) for p in DATA_DIR.glob("*.csv"))
    assert (obs.universe.str.len() > 0).all() and (obs.source.str.len() > 0).all()
    atlas = obs[obs.universe == "qixinbao_ai_related"].set_index(["city", "year", "quantity"]).value
    assert atlas["China", 2016, "enterprises"] == 279500 and atlas["China", 2022, "enterprises"] == 600500


def test_a_data_file_with_other_columns_or_a_non_number_is_refused(tmp_path: Path):
    shutil.copy(DATA_DIR / "ai_related_enterprises_qixinbao.csv", tmp_path / "a.csv")
    frame = pd.read_csv(tmp_path / "a.csv", dtype=str)
    frame.loc[0, "value"] = "many"
    frame.to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(InferenceError, match=r"a.csv: row 2: value 'many' is not a number"):
        load_observations(tmp_path)
    frame.drop(columns="universe").to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(InferenceError, match="columns"):
        load_observations(tmp_path)


def test_targets_take_their_values_from_data_rows_of_their_own_universe_only(tmp_path: Path):
    targets = load_targets()
    by_id = {f.id: f for f in targets.figures}
    assert targets.universe == "qixinbao_ai_related"
    assert by_id["national_2016"].value == 279500 and by_id["national_2022"].value == 600500
    assert by_id["beijing_2023"].value == 47800 and by_id["shenzhen_gross_2016_2023"].value == 42600
    # a figure pointing at a row of another universe is refused, not silently mixed
    text = TARGETS_PATH.read_text(encoding="utf-8").replace("universe: qixinbao_ai_related",
                                                            "universe: tianyancha_ai_related")
    other = tmp_path / "targets.yaml"
    other.write_text(text, encoding="utf-8")
    with pytest.raises(InferenceError, match="counts universe qixinbao_ai_related, the targets' is tianyancha"):
        load_targets(other)


def test_the_dating_rule_puts_end_of_year_stocks_at_the_next_year_start():
    by_id = {f.id: f for f in load_targets().figures}
    assert by_id["beijing_2016"].time == 2017                    # end-2016 stock
    assert by_id["beijing_2023"].year == 2023 and by_id["beijing_2023"].time == 2023   # "2023" = end-2022 stock
    assert by_id["national_2022"].time == 2023
    assert by_id["shenzhen_gross_2016_2023"].from_time == 2017
    scenario = load_scenario(BASELINE_PATH)
    assert (scenario.time.start, scenario.time.end, scenario.time.steps_per_year) == (2017, 2023, 4)


def test_the_rest_of_china_pool_is_the_atlas_total_less_the_big_three():
    obs = load_observations()
    atlas = obs[(obs.universe == "qixinbao_ai_related") & (obs.year == 2016)].set_index("city").value
    for path in (BASELINE_PATH, CHINA):
        scenario = load_scenario(path)
        assert sum(c.firms for c in scenario.cities) == atlas["China"]
    pool = next(c for c in load_scenario(BASELINE_PATH).cities if c.pool)
    assert pool.firms == atlas["China"] - atlas[["Beijing", "Shenzhen", "Shanghai"]].sum() == 177100


def test_bounded_patterns_cost_nothing_inside_and_their_relative_distance_outside():
    fig = Figure(id="s", city="China", year=2022, quantity="group_share", cities=["A", "B"], lower=0.2, upper=0.25,
                 role="target", source="x")
    np.testing.assert_allclose(fig.relative_error([0.1, 0.2, 0.22, 0.25, 0.3]), [0.5, 0, 0, 0, 0.2])
    point = Figure(id="n", city="China", year=2022, quantity="national_firms", value=200, role="target", source="x")
    np.testing.assert_allclose(point.relative_error([100, 200, 300]), [-0.5, 0, 0.5])
    with pytest.raises(ValueError, match="not both"):
        Figure(id="b", city="China", year=2022, quantity="group_share", value=0.2, upper=0.3, role="target", source="x")


def test_layout_values_of_national_totals_shares_and_inflows():
    scenario = load_scenario(BASELINE_PATH)
    layout = Layout.of(scenario)
    Y, C = len(layout.years), len(layout.cities)
    firms = np.arange(Y * C, dtype=float).reshape(Y, C) + 1
    inflow = np.cumsum(np.ones((Y, C)), axis=0)
    sums = np.concatenate([firms.ravel(), inflow.ravel(), np.zeros(Y)])
    by_id = {f.id: f for f in load_targets().figures}
    end = Y - 1
    assert layout.value(sums, by_id["national_2022"]) == firms[end].sum()
    share = layout.value(sums, by_id["big_three_share_2022"])
    assert share == pytest.approx(firms[end, :3].sum() / firms[end].sum())
    assert layout.value(sums, by_id["shenzhen_gross_2016_2023"]) == inflow[end, 1] - inflow[0, 1] == 6


def test_the_contenders_and_coastal_splits_keep_the_group_total_in_any_order_and_follow_their_weights():
    specs = {s.label: s for s in load_priors(CHINA_PRIORS).priors}
    contenders, coastal = specs["contenders_share"], specs["coastal_share"]
    assert isinstance(contenders, SplitFactor) and isinstance(specs["contenders.attractiveness"], SharedFactor)
    base = load_scenario(CHINA).resolved()
    total = contenders.total(base)
    assert total == 177100 == coastal.total(base)                   # 279,500 less the big three
    for share, other in ((0.05, 0.3), (0.3, 0.2), (0.6, 0.35)):
        one, two = copy.deepcopy(base), copy.deepcopy(base)
        contenders.apply(one, share)
        coastal.apply(one, other)
        coastal.apply(two, other)
        contenders.apply(two, share)
        counts = {c["name"]: c["firms"] for c in one["cities"]}
        assert counts == {c["name"]: c["firms"] for c in two["cities"]}   # the order does not matter
        assert contenders.total(one) == total
        assert sum(counts[c] for c in contenders.weights) == pytest.approx(share * total, abs=len(contenders.weights))
        assert sum(counts[c] for c in coastal.weights) == pytest.approx(other * total, abs=len(coastal.weights))
        assert counts["Guangzhou"] == pytest.approx(2 * counts["Hangzhou"], abs=1)
        assert counts["Guangzhou"] == pytest.approx(10 * counts["Hebei"], abs=10)
        assert counts["Rest of Guangdong"] == pytest.approx(3 * counts["Rest of Zhejiang"], abs=3)
    with pytest.raises(ValueError, match="leaves Rest of China"):
        coastal.apply(one, 0.9)                                      # more than the pool can give
    specs["contenders.attractiveness"].apply(base, 0.7)
    assert {c["name"] for c in base["cities"] if c.get("attractiveness") == 0.7} == set(
        specs["contenders.attractiveness"].cities)


def test_the_china_scenario_counts_are_the_splits_at_their_calibrated_shares():
    problem = make_problem(CHINA, CALIBRATION_DIR / "china" / "targets.yaml", CHINA_PRIORS, "gross")
    posterior = pd.read_csv(CALIBRATION_DIR / "china" / "posterior.csv").set_index("quantity")
    data = copy.deepcopy(problem.template)
    splits = [s for s in problem.prior.specs if isinstance(s, SplitFactor)]
    for split in splits:
        split.apply(data, float(posterior.loc[split.label, "median"]))
    expected = {c["name"]: c["firms"] for c in data["cities"]}
    counts = {c.name: c.firms for c in problem.scenario.cities}
    assert {c: counts[c] for c in expected} == expected


def test_a_problem_without_a_pattern_or_with_synthetic_values_keeps_the_rest():
    problem = make_problem(BASELINE_PATH, TARGETS_PATH, PRIORS_PATH, "gross")
    ids = [f.id for f in problem.fitted]
    assert [f.id for f in problem.without("national_2022").fitted] == [i for i in ids if i != "national_2022"]
    with pytest.raises(InferenceError, match="cannot leave out"):
        problem.without("beijing_2016")
    synthetic = problem.with_observed(np.arange(1.0, len(ids) + 1))
    assert [f.value for f in synthetic.fitted] == list(np.arange(1.0, len(ids) + 1))
    assert all(f.lower is None and f.upper is None for f in synthetic.fitted)


def _sbc(ranks: np.ndarray, covered: np.ndarray) -> SBCResult:
    n = len(ranks)
    return SBCResult(["a"], np.zeros((n, 1)), ranks[:, None], covered[:, None], np.ones((n, 1)), np.zeros(n), n)


def test_coverage_table_accepts_a_calibrated_posterior_and_rejects_an_overconfident_one():
    rng = np.random.default_rng(0)
    n = 400
    # calibrated: the truth is one more draw from the posterior, so its rank is uniform on 0..RANK_DRAWS
    ranks = rng.integers(0, RANK_DRAWS + 1, n)
    good = coverage_table(_sbc(ranks, (ranks >= 5) & (ranks <= 94))).iloc[0]
    assert good.coverage_90 == pytest.approx(0.9, abs=3 * good.coverage_se)
    assert good.chi2_p > 0.001 and good.mean_rank == pytest.approx(0.5, abs=0.05)
    # overconfident: the truth falls in the tails far too often
    tails = np.where(rng.random(n) < 0.5, rng.integers(0, 5, n), rng.integers(95, RANK_DRAWS + 1, n))
    ranks = np.where(rng.random(n) < 0.5, tails, ranks)
    bad = coverage_table(_sbc(ranks, (ranks >= 5) & (ranks <= 94))).iloc[0]
    assert bad.coverage_90 < 0.9 - 3 * bad.coverage_se and bad.chi2_p < 1e-6


def test_regime_probabilities_of_a_planted_posterior():
    problem = make_problem(BASELINE_PATH, TARGETS_PATH, PRIORS_PATH, "gross")
    d = len(problem.prior.specs)
    j = problem.prior.labels.index("network_effect")
    theta = np.zeros((4, d))
    theta[:, j] = [0.5, 0.95, 1.05, 1.3]
    post = Population(1, 0.1, theta, np.array([0.1, 0.2, 0.3, 0.4]), np.zeros(4), np.zeros((4, 0)), 4)
    table = regime_table(problem, post).set_index("regime")
    assert table.loc["tipping", "posterior"] == pytest.approx(0.7)
    assert table.loc["near-martingale", "posterior"] == pytest.approx(0.5)
    assert table.loc["dispersion", "posterior"] == pytest.approx(0.3)
    # uniform prior on [0, 1.5]: P(α > 1) = 1/3, P(|α − 1| < 0.1) = 0.2/1.5
    assert table.loc["tipping", "prior"] == pytest.approx(1 / 3, abs=0.01)
    assert table.loc["near-martingale", "prior"] == pytest.approx(0.2 / 1.5, abs=0.01)
    assert table.loc["tipping", "bayes_factor"] == pytest.approx((0.7 / 0.3) / (table.loc["tipping", "prior"] /
                                                                                 (1 - table.loc["tipping", "prior"])))
    assert not math.isnan(table.loc["dispersion", "bayes_factor"])


# ---------------------------------------------------------------------------- statements about who leads
def test_a_statements_violation_is_the_log_ratio_by_which_the_stocks_miss_it():
    layout = Layout(years=(2017,), cities=("A", "B", "C", "P"), place_shares=((1.0,), (1.0,), (1.0,), (0.5, 0.3, 0.2)))
    summaries = np.zeros((1, layout.size))
    layout.firms(summaries)[0, 0] = [99, 199, 49, 1000]           # P's places hold 500, 300, 200
    sets = {"cities": ["A", "B", "C", "P[1]"]}

    def fig(**kw):
        return Targets(name="t", universe="u", dating="d", shenzhen_increment={}, sets=sets, groups={"AB": ["A", "B"]},
                       figures=[Figure(id="f", city=kw.pop("city", "A"), year=2016, role="target", source="s", **kw)]
                       ).resolve(pd.DataFrame(columns=["city", "year", "quantity"]), "t").figures[0]

    first = fig(quantity="rank", among="cities", value=1)          # A is 3rd: P[1] (500) is above it, by log(501/100)
    assert layout.error(summaries, first)[0] == pytest.approx(math.log(501 / 100))
    assert layout.value(summaries, first)[0] == 3
    top4 = fig(quantity="rank", among="cities", upper=4)
    assert layout.error(summaries, top4)[0] == 0 and layout.holds(summaries, top4)[0]
    exactly_2 = fig(city="B", quantity="rank", among="cities", value=2)   # B (199) is 2nd, below P[1] and above A
    assert layout.error(summaries, exactly_2)[0] == 0
    exactly_1 = fig(city="B", quantity="rank", among="cities", value=1)
    assert layout.error(summaries, exactly_1)[0] == pytest.approx(math.log(501 / 200))
    order = fig(quantity="order", order=["AB", "P[2]", "C"])        # 298 > 300? misses by log(301/299)
    assert layout.error(summaries, order)[0] == pytest.approx(math.log(301 / 299))
    assert layout.value(summaries, order)[0] == 1                    # one neighbouring pair out of order


def test_the_china_targets_keep_the_baselines_figures_and_the_variants_theirs():
    base = {f.id: f for f in load_targets().figures}
    china = {f.id: f for f in load_targets(CALIBRATION_DIR / "china" / "targets.yaml").figures}
    assert all(china[i].model_copy(update={"members": None}) == f.model_copy(update={"members": None})
               for i, f in base.items())                             # the sets differ: China has more places
    statements = [f for f in china.values() if f.statement]
    assert {f.id for f in statements} >= {"shenzhen_first_2022", "shanghai_top3_2022", "guangdong_first_province_2022"}
    assert all(f.universe in (None, "cngai_ai_enterprises") for f in statements)
    assert all(f.measurement for f in statements if f.universe)      # another register states its measurement
    backtest = {f.id: f for f in load_targets(CALIBRATION_DIR / "china" / "backtest" / "targets.yaml").figures}
    assert backtest.keys() == china.keys()
    for i, f in china.items():
        known = f.role != "target" or f.stock_end <= 2020
        assert backtest[i] == (f if known else f.model_copy(update={"role": "validation"}))
    count = {f.id: f for f in load_targets(CALIBRATION_DIR / "count_2016" / "targets.yaml").figures}
    assert count["shenzhen_2016"].value == 63800 - 42600
    assert {i for i in base if count[i] != base[i]} == {"shenzhen_2016", "big_three_share_2016"}


def test_an_unknown_reading_of_the_increment_is_refused():
    with pytest.raises(InferenceError, match="--shenzhen-increment: 'typo' is not a reading of .*gross, misprint, count-2016"):
        make_problem(BASELINE_PATH, TARGETS_PATH, PRIORS_PATH, "typo")
