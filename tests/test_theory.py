"""Theory the engine must honour (docs/ODD.md §2 and §3.3), tested statistically against exact results.

* With only the network term, one sector, W = 1 and κ = 0, entry is the generalised
  Pólya urn P(c) = N_c^α / Σ N^α. Its law after n one-at-a-time entries is computed
  exactly by dynamic programming (:func:`urn_pmf`), independently of the engine, and
  the engine's replications are compared with it; for α = 1 that law is the
  beta-binomial, whose limit is Beta(a, b) (Hill, Lane & Sudderth 1980; Arthur 1990).
* An empty city with no advantages receives entrants at exactly the logit rate.
* Exit and reconsideration happen at the documented per-firm rates.

All runs use fixed seeds; every statistical check is a test with a p-value threshold of
1e-3 or a 4-sigma bound computed from the exact mean and variance. The engine runs go
through every engine of conftest's ``ENGINES`` (``ModuModel`` with ``agents`` and
``counts``, and the kernel path of the command line); the engines draw different random
numbers (``agents`` against the other two), so each is held to the same law, not to the
same draws.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from conftest import simulate
from scipy import stats

from sim.model import ModuModel
from sim.model.firms import SIZE_CLASSES, size_class_probabilities
from sim.model.kernel import compile_scenario
from sim.model.utility import entry_probabilities

P_MIN = 1e-3
"""Reject when a test's p-value falls below this."""

SIGMAS = 4.0
"""Width of mean checks, in standard deviations."""

MODEL_ENGINES = ["agents", "counts"]
"""The engines of ``ModuModel`` stepped from Python, whose state (firm sizes, counts per size class) a test can read."""


# ---------------------------------------------------------------- exact results
def urn_pmf(alpha: float, a: int, b: int, n: int) -> np.ndarray:
    """Exact law of K, the entrants city A gets in n one-at-a-time draws of the urn.

    Starting from (a, b), a draw goes to A with probability (a+k)^α / ((a+k)^α + (b+t−k)^α).
    """
    pmf = np.array([1.0])
    for t in range(n):
        k = np.arange(t + 1)
        x, y = (a + k) ** float(alpha), (b + t - k) ** float(alpha)
        p = x / (x + y)
        new = np.zeros(t + 2)
        new[:-1] += pmf * (1 - p)
        new[1:] += pmf * p
        pmf = new
    return pmf


def pooled_chisquare_pvalue(observed_k: np.ndarray, pmf: np.ndarray, min_expected: float = 5.0) -> float:
    """Chi-square goodness of fit of integer draws to ``pmf`` over 0..n, adjacent cells pooled
    until each expects at least ``min_expected`` draws."""
    R = len(observed_k)
    counts = np.bincount(observed_k, minlength=len(pmf)).astype(float)
    assert len(counts) == len(pmf), "a draw outside the support"
    expected = R * pmf
    obs_bins, exp_bins = [], []
    o = e = 0.0
    for oc, ec in zip(counts, expected, strict=True):
        o, e = o + oc, e + ec
        if e >= min_expected:
            obs_bins.append(o)
            exp_bins.append(e)
            o = e = 0.0
    if obs_bins:
        obs_bins[-1] += o
        exp_bins[-1] += e
    assert len(obs_bins) >= 3, "too few replications for a chi-square test"
    exp_arr = np.array(exp_bins)
    return float(stats.chisquare(obs_bins, exp_arr * R / exp_arr.sum()).pvalue)


# ---------------------------------------------------------------- engine runs
@pytest.fixture(scope="module")
def urn_runs(urn_factory):
    """``runs(alpha, a, b, n, reps, seed0, engine)``: entrants to city 0 in each replication (cached)."""

    @functools.cache
    def runs(alpha: float, a: int, b: int, n: int, reps: int, seed0: int, engine: str) -> np.ndarray:
        scenario = urn_factory(alpha, (a, b), steps=n, engine=engine)
        k = np.empty(reps, dtype=np.int64)
        for r in range(reps):
            last = simulate(scenario, engine, seed0 + r).steps
            assert len(last) == n + 1 and last[-1].firms.sum() == a + b + n
            k[r] = last[-1].firms[0, 0] - a
        k.setflags(write=False)
        return k

    return runs


def test_urn_oracle_is_the_beta_binomial_for_alpha_one():
    """The exact urn law (the oracle of the tests below) reduces to BetaBinomial(n, a, b) at α = 1."""
    for a, b, n in [(1, 1, 49), (3, 1, 40), (2, 5, 30)]:
        np.testing.assert_allclose(urn_pmf(1.0, a, b, n), stats.betabinom.pmf(np.arange(n + 1), n, a, b),
                                   rtol=1e-10, atol=1e-14)
    # κ = 0: a city that starts empty is never chosen, whatever α.
    assert urn_pmf(2.0, 0, 3, 20)[0] == 1.0


# ---------------------------------------------------------------- (a) one-step probability
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 3.7])
@pytest.mark.parametrize("counts", [(1, 1), (3, 1), (10, 2), (7, 0), (4, 9, 2), (100, 1, 30)])
def test_entry_probability_is_the_generalised_polya_urn(urn_factory, alpha, counts):
    """P(c) = N_c^α / Σ N^α exactly, from the engine's utility and from a freshly built model."""
    scenario = urn_factory(alpha, counts, steps=1)
    N = np.array(counts, dtype=np.int64)[:, None]
    expected = N[:, 0] ** alpha / np.sum(N[:, 0] ** alpha)
    P, _ = entry_probabilities(compile_scenario(scenario), N, np.zeros((len(counts), 3)))
    np.testing.assert_allclose(P[:, 0], expected, rtol=1e-12, atol=0)
    model = ModuModel(scenario, rng=0, record_events=False)
    np.testing.assert_array_equal(model.N, N)
    np.testing.assert_allclose(model.entry_probabilities()[:, 0], expected, rtol=1e-12, atol=0)


def test_one_step_entry_frequency_matches_the_urn(urn_factory, engine):
    """Over seeded one-step runs with one entrant, city 0 wins with probability 3^α/(3^α + 1)."""
    alpha, reps = 1.5, 800
    p = 3**alpha / (3**alpha + 1)
    scenario = urn_factory(alpha, (3, 1), steps=1, engine=engine)
    wins = 0
    for seed in range(reps):
        births = simulate(scenario, engine, 10_000 + seed).steps[-1].births[:, 0]
        assert births.sum() == 1
        wins += int(births[0])
    assert stats.binomtest(wins, reps, p).pvalue > P_MIN


def test_a_batch_of_entrants_is_one_multinomial_draw(scenario_factory, engine):
    """All entrants of a step choose against the counts at the start of the phase.

    20,000 entrants in one step into an urn at (6, 3, 1) with α = 1.5 are Multinomial with the
    start-of-step probabilities (sequential updating would make the split far more dispersed).
    """
    alpha, births = 1.5, 20_000
    counts = np.array([6, 3, 1])
    scenario = scenario_factory(cities=[{"name": f"C{i}", "firms": int(n)} for i, n in enumerate(counts)],
                                parameters={"network_effect": alpha, "network_seed": 0.0, "births_per_step": births},
                                engine=engine)
    p = counts**alpha / np.sum(counts**alpha)
    observed = simulate(scenario, engine, 3).steps[-1].births[:, 0]
    assert observed.sum() == births
    assert stats.chisquare(observed, births * p).pvalue > P_MIN


# ---------------------------------------------------------------- (b) α > 1: tipping
def test_superlinear_network_effect_tips_to_monopoly(urn_runs, engine):
    """α = 2 from (1, 1): after 100 entrants one city holds ≥ 90% in most replications."""
    alpha, a, b, n, reps = 2.0, 1, 1, 100, 150
    k = urn_runs(alpha, a, b, n, reps, 20_000, engine)
    share = (a + k) / (a + b + n)
    leader = np.maximum(share, 1 - share)
    pmf = urn_pmf(alpha, a, b, n)
    support = (a + np.arange(n + 1)) / (a + b + n)
    p_tip = pmf[np.maximum(support, 1 - support) >= 0.9].sum()
    # Theory: tipping is the rule at α = 2 (≈ 0.94) and the exception at α = 1 (exactly 0.2).
    assert p_tip > 0.9
    support1 = (a + np.arange(n + 1)) / (a + b + n)
    assert urn_pmf(1.0, a, b, n)[np.maximum(support1, 1 - support1) >= 0.9].sum() < 0.25
    tipped = int(np.sum(leader >= 0.9))
    assert tipped >= 0.85 * reps
    assert stats.binomtest(tipped, reps, p_tip).pvalue > P_MIN
    assert pooled_chisquare_pvalue(k, pmf) > P_MIN
    # Symmetric start: either city is equally likely to win.
    assert stats.binomtest(int(np.sum(share > 0.5)), reps, 0.5).pvalue > P_MIN


# ---------------------------------------------------------------- (c) α = 1: martingale
def test_linear_network_effect_gives_a_uniform_limit_from_one_one(urn_runs, engine):
    """α = 1 from (1, 1): K is uniform on 0..n (Beta(1, 1) limit) and the mean share stays 1/2."""
    alpha, a, b, n, reps = 1.0, 1, 1, 49, 300
    k = urn_runs(alpha, a, b, n, reps, 30_000, engine)
    # Exact: K ~ BetaBinomial(49, 1, 1) = uniform on 0..49; ten equiprobable bins of five values.
    assert stats.chisquare(np.bincount(k // 5, minlength=10)).pvalue > P_MIN
    # Limit: the share is Uniform(0, 1). (K + U)/(n + 1) with U ~ U(0, 1) is exactly uniform, so the
    # KS test is exact rather than blurred by the discreteness of the share.
    jitter = np.random.default_rng(0).random(reps)
    assert stats.kstest((k + jitter) / (n + 1), "uniform").pvalue > P_MIN
    share = (a + k) / (a + b + n)
    var = stats.betabinom.var(n, a, b) / (a + b + n) ** 2
    assert abs(share.mean() - 0.5) < SIGMAS * np.sqrt(var / reps)


def test_linear_network_effect_keeps_the_expected_share(urn_runs, engine):
    """α = 1 from (3, 1): the share is a martingale, so its mean stays 3/4; its law is beta-binomial."""
    alpha, a, b, n, reps = 1.0, 3, 1, 40, 200
    k = urn_runs(alpha, a, b, n, reps, 40_000, engine)
    share = (a + k) / (a + b + n)
    var = stats.betabinom.var(n, a, b) / (a + b + n) ** 2
    assert abs(share.mean() - a / (a + b)) < SIGMAS * np.sqrt(var / reps)
    assert pooled_chisquare_pvalue(k, stats.betabinom.pmf(np.arange(n + 1), n, a, b)) > P_MIN


# ---------------------------------------------------------------- (d) α < 1: evening out
def test_sublinear_network_effect_evens_shares_out(urn_runs, engine):
    """α = 1/2 from (1, 1): the final share concentrates near 1/2, far more than at α = 1."""
    a, b, n = 1, 1, 49
    k_half = urn_runs(0.5, a, b, n, 200, 50_000, engine)
    k_one = urn_runs(1.0, a, b, n, 300, 30_000, engine)  # the runs of the uniform-limit test
    share_half = (a + k_half) / (a + b + n)
    share_one = (a + k_one) / (a + b + n)
    # Theory: Var is ≈ 0.017 at α = 1/2 against ≈ 0.080 at α = 1.
    support = (a + np.arange(n + 1)) / (a + b + n)
    pmf_half = urn_pmf(0.5, a, b, n)
    var_half = np.sum(pmf_half * (support - 0.5) ** 2)
    assert var_half < 0.25 * stats.betabinom.var(n, a, b) / (a + b + n) ** 2
    # The engine: a one-sided F-test that the α = 1/2 spread is smaller, and at least halved.
    v_half, v_one = share_half.var(ddof=1), share_one.var(ddof=1)
    assert v_half < 0.5 * v_one
    assert stats.f.cdf(v_half / v_one, len(share_half) - 1, len(share_one) - 1) < P_MIN
    assert pooled_chisquare_pvalue(k_half, pmf_half) > P_MIN


def test_sublinear_network_effect_pulls_an_unequal_start_toward_half(urn_runs, engine):
    """α = 1/2 from (8, 2): the leader's expected share falls from 0.8 toward 1/2 (at α = 1 it would stay 0.8)."""
    alpha, a, b, n, reps = 0.5, 8, 2, 50, 100
    k = urn_runs(alpha, a, b, n, reps, 60_000, engine)
    share = (a + k) / (a + b + n)
    support = (a + np.arange(n + 1)) / (a + b + n)
    pmf = urn_pmf(alpha, a, b, n)
    mean = np.sum(pmf * support)
    var = np.sum(pmf * (support - mean) ** 2)
    assert mean < 0.7  # theory: ≈ 0.633
    assert abs(share.mean() - mean) < SIGMAS * np.sqrt(var / reps)
    assert stats.ttest_1samp(share, a / (a + b), alternative="less").pvalue < P_MIN


# ---------------------------------------------------------------- 3. the logit rate of an empty city
def _empty_city_scenario(scenario_factory, births_per_step: int, steps: int = 1, alpha: float = 1.2,
                         big: int = 30, mid: int = 10, policy: bool = True, engine: str = "agents"):
    """Big (talent, and a compute-centre policy), Mid, and Empty: no firms, no talent, no policy, no anchors."""
    big_city = {"name": "Big", "firms": big, "talent": 0.5}
    if policy:
        big_city["policy"] = {"budget": 5, "allocation": {"compute": 1.0, "data": 0.0, "anchor": 0.0}}
    return scenario_factory(
        cities=[big_city, {"name": "Mid", "firms": mid}, {"name": "Empty", "firms": 0}],
        parameters={"network_effect": alpha, "network_seed": 1.0, "talent_effect": 1.0,
                    "lever_effects": {"compute": {"all": 0.4}}, "births_per_step": births_per_step},
        steps=steps,
        engine=engine,
    )


def _logit_entry_probabilities(scenario, N: np.ndarray, K: np.ndarray) -> np.ndarray:
    """The spec's entry logit written out by hand: α·log(N + κ) + β_T·talent + β_K·log(1 + K)."""
    p = scenario.parameters
    talent = np.array([c.talent for c in scenario.cities])
    V = p.network_effect * np.log(N[:, 0] + p.network_seed) + p.talent_effect * talent \
        + p.lever_effects["compute"]["all"] * np.log1p(K)
    expV = np.exp(V - V.max())
    return expV / expV.sum()


def test_empty_city_receives_entrants_at_the_logit_rate(scenario_factory, engine):
    """A city with no firms and no advantages gets each entrant with probability κ^α / Σ exp(V) (κ = 1)."""
    births, reps = 50, 600
    scenario = _empty_city_scenario(scenario_factory, births, engine=engine)
    observed = np.zeros(3, dtype=np.int64)
    p = None
    for seed in range(reps):
        history = simulate(scenario, engine, 70_000 + seed)
        first = history.steps[1]
        p_run = _logit_entry_probabilities(scenario, history.steps[0].firms, first.stocks[:, 0])
        p = p_run if p is None else p
        np.testing.assert_allclose(p_run, p, rtol=1e-12)  # stocks are at their steady state: same every run
        observed += first.births[:, 0]
    assert 0.001 < p[2] < 0.01  # a small but testable rate (≈ 0.0025)
    assert stats.binomtest(int(observed[2]), births * reps, p[2]).pvalue > P_MIN
    assert stats.chisquare(observed, births * reps * p).pvalue > P_MIN


def test_entry_follows_the_logit_rate_step_by_step(scenario_factory, engine):
    """Over many steps, entrants to the initially empty city match the sum of each step's logit rate.

    Σ_t (births_t − B·p_t) is a martingale, with variance Σ_t B·p_t·(1 − p_t). Nothing exits or moves,
    so a step's entrants choose against the counts recorded at the step before.
    """
    births, steps, reps = 2, 100, 20
    scenario = _empty_city_scenario(scenario_factory, births, steps=steps, alpha=0.8, big=20, mid=5, policy=False,
                                    engine=engine)
    observed = expected = variance = 0.0
    for seed in range(reps):
        records = simulate(scenario, engine, 80_000 + seed).steps
        for before, after in zip(records[:-1], records[1:], strict=True):
            p = _logit_entry_probabilities(scenario, before.firms, after.stocks[:, 0])[2]
            observed += after.births[2, 0]
            expected += births * p
            variance += births * p * (1 - p)
    assert expected > 100  # ≈ 170 expected entrants
    assert abs(observed - expected) < SIGMAS * np.sqrt(variance)


# ---------------------------------------------------------------- 5. exit and reconsideration rules
def _exit_scenario(scenario_factory, anchor_exit_factor: float, engine: str, n_anchors: int = 400):
    return scenario_factory(
        cities=[{"name": "Only", "firms": 60_000,
                 "anchors": [{"name": f"A{i}", "sector": "all"} for i in range(n_anchors)]}],
        parameters={"exit_rate": 0.3, "exit_size_elasticity": 0.5, "size_tail": 1.06,
                    "anchor_exit_factor": anchor_exit_factor, "births_per_step": 0},
        steps=3,
        engine=engine,
    )


def _ordinary_by_size_class(model: ModuModel) -> np.ndarray:
    """Ordinary (non-anchor) firms per size class (sizes are 2**class)."""
    if model.counts is not None:
        return model.counts.sum(axis=(0, 1))
    size = model.firms.size[~model.firms.anchor].astype(float)
    classes = np.rint(np.log2(size)).astype(np.int64)
    np.testing.assert_array_equal(2.0**classes, size)
    return np.bincount(classes, minlength=SIZE_CLASSES)


def _run_exits(model: ModuModel):
    """Run the model (no entry, no relocation) to its end.

    Returns per size class the ordinary firms at risk and the exits, summed over steps, and the
    anchors at risk and exiting.
    """
    at_risk, exits = np.zeros(SIZE_CLASSES), np.zeros(SIZE_CLASSES)
    anchor_at_risk = anchor_exits = 0
    while model.steps < model.n_steps:
        before = _ordinary_by_size_class(model)
        anchor_ids = model.firms.id[model.firms.anchor]
        model.step()
        died = before - _ordinary_by_size_class(model)
        died_anchors = int(np.sum(~np.isin(anchor_ids, model.firms.id)))
        assert (died >= 0).all()
        assert died.sum() + died_anchors == model.history.steps[-1].deaths.sum()
        at_risk += before
        exits += died
        anchor_at_risk += len(anchor_ids)
        anchor_exits += died_anchors
    return at_risk, exits, anchor_at_risk, anchor_exits


def _size_class_chi2_pvalue(at_risk: np.ndarray, exits: np.ndarray, p: np.ndarray) -> float:
    """Chi-square of exits per size class against binomial expectations; sparse top classes pooled."""
    expected, variance = at_risk * p, at_risk * p * (1 - p)
    cut = int(np.argmax(np.r_[expected, 0.0] < 5))  # classes from `cut` on are pooled into one bin
    obs = np.r_[exits[:cut], exits[cut:].sum()]
    exp = np.r_[expected[:cut], expected[cut:].sum()]
    var = np.r_[variance[:cut], variance[cut:].sum()]
    keep = var > 0
    assert keep.sum() >= 5
    return float(stats.chi2.sf(np.sum((obs[keep] - exp[keep]) ** 2 / var[keep]), df=int(keep.sum())))


def test_exits_step_by_step_follow_the_size_law_on_every_engine(scenario_factory, engine):
    """What every engine records: each ordinary firm, of size class k with probability p_k (the octave mass of
    §3.2), exits in step t with probability r_t = Σ_k p_k·(1 − q_k)^(t−1)·q_k, q_k = μ·2^(−kη), independently
    of the others; so a run's exits in steps 1, 2, 3 and its survivors are one Multinomial(N, (r_1, r_2, r_3,
    1 − Σ r)). A chi-square over five runs accepts that law and rejects the size-independent rule with the same
    first-step rate (its exits would not slow down as the small firms go): ≈ 9 s.d. apart in step 2."""
    mu, eta, zeta, firms, runs = 0.3, 0.5, 1.06, 60_000, 5
    scenario = _exit_scenario(scenario_factory, 0.0, engine, n_anchors=0)
    q = mu * 2.0 ** (-eta * np.arange(SIZE_CLASSES))
    p = size_class_probabilities(zeta)

    def law(q_class: np.ndarray) -> np.ndarray:
        r = np.array([np.sum(p * (1 - q_class) ** (t - 1) * q_class) for t in (1, 2, 3)])
        return np.r_[r, 1 - r.sum()]

    observed = np.zeros(4)
    for seed in range(runs):
        h = simulate(scenario, engine, 500 + seed)
        deaths = h.stack("deaths").sum(axis=(1, 2))[1:]
        observed += np.r_[deaths, h.steps[-1].firms.sum()]
        assert deaths.sum() + h.steps[-1].firms.sum() == firms
    assert stats.chisquare(observed, runs * firms * law(q)).pvalue > P_MIN
    assert stats.chisquare(observed, runs * firms * law(np.full(SIZE_CLASSES, np.sum(p * q)))).pvalue < 1e-6


def test_anchor_exit_rate_is_mu_times_phi_on_every_engine(scenario_factory, engine):
    """A city of 400 anchors only (φ_exit = 0.5, μ = 0.3): each step's exits are Binomial(anchors alive, μ·φ_exit),
    and A_eff = ω·(anchors present) follows them (no anchor-support stock)."""
    scenario = scenario_factory(
        cities=[{"name": "Only", "firms": 400, "anchors": [{"name": f"A{i}", "sector": "all"} for i in range(400)]}],
        parameters={"exit_rate": 0.3, "anchor_exit_factor": 0.5, "births_per_step": 0}, steps=3, engine=engine)
    at_risk = exits = 0
    for seed in range(4):
        h = simulate(scenario, engine, 600 + seed)
        firms = h.stack("firms").sum(axis=(1, 2))
        at_risk += firms[:-1].sum()
        exits += h.stack("deaths").sum()
        np.testing.assert_array_equal(h.stack("A_eff")[:, 0], 10.0 * firms)
    assert stats.binomtest(int(exits), int(at_risk), 0.3 * 0.5).pvalue > P_MIN


def test_reconsideration_rates_and_destinations_on_every_engine(scenario_factory, engine):
    """One step, α = 0, three cities alike but for their firms: C0 holds 20,000 ordinary firms, C1 3,000 anchors
    (anchor-support stock A = 1/0.3), C2 none. A reconsidering firm leaves with probability
    P_leave = 2e^(−m)/(1 + 2e^(−m)) for either other city alike, so C0's moves out are Binomial(20,000, ρ·P_leave)
    and C1's Binomial(3,000, ρ·φ_move/(1 + A)·P_leave); summed over 20 runs."""
    rho, m, phi = 0.2, 0.7, 1.0
    scenario = scenario_factory(
        cities=[{"name": "C0", "firms": 20_000},
                {"name": "C1", "firms": 3000, "anchors": [{"name": f"A{j}", "sector": "all"} for j in range(3000)],
                 "policy": {"budget": 1.0, "allocation": {"compute": 0.0, "data": 0.0, "anchor": 1.0}}},
                {"name": "C2", "firms": 0}],
        parameters={"network_effect": 0.0, "relocation_rate": rho, "moving_cost": m, "anchor_relocation_factor": phi,
                    "births_per_step": 0}, engine=engine)
    p_leave = 2 * np.exp(-m) / (1 + 2 * np.exp(-m))
    moves_out, flows, runs = np.zeros(3), np.zeros((3, 3)), 20
    for seed in range(runs):
        h = simulate(scenario, engine, 700 + seed)
        A = h.steps[1].stocks[1, 2]
        moves_out += h.steps[1].moves_out[:, 0]
        flows += h.flows
    assert np.isclose(A, 1 / 0.3)  # the steady state of 1 a year all on anchor support, δ_A = 0.3
    assert stats.binomtest(int(moves_out[0]), runs * 20_000, rho * p_leave).pvalue > P_MIN
    assert stats.binomtest(int(moves_out[1]), runs * 3000, rho * phi / (1 + A) * p_leave).pvalue > P_MIN
    assert moves_out[2] == 0 and moves_out[1] > 500
    for h_, (a, b) in ((0, (1, 2)), (1, (0, 2))):  # either other city, equally likely
        assert stats.binomtest(int(flows[h_, a]), int(flows[h_, a] + flows[h_, b]), 0.5).pvalue > P_MIN


@pytest.mark.parametrize("engine", MODEL_ENGINES)
def test_exit_probability_falls_with_size_as_a_power_law(scenario_factory, engine):
    """Non-anchors exit with probability μ·size^(−η); anchors never exit when φ_exit = 0.

    Per size class, which only a model stepped from Python shows (the kernel path records no sizes; its
    exits are held to the same law through their steps, above)."""
    mu, eta = 0.3, 0.5
    model = ModuModel(_exit_scenario(scenario_factory, 0.0, engine), rng=5, record_events=False)
    at_risk, exits, anchor_at_risk, anchor_exits = _run_exits(model)
    assert anchor_exits == 0 and anchor_at_risk == 3 * 400
    assert model.anchors_present[0] == 400 and model.firms.anchor.sum() == 400
    p = mu * (2.0 ** np.arange(SIZE_CLASSES)) ** -eta
    assert _size_class_chi2_pvalue(at_risk, exits, p) > P_MIN
    # The same test has the power to reject a size-independent rule with the same mean.
    assert _size_class_chi2_pvalue(at_risk, exits, np.full(SIZE_CLASSES, exits.sum() / at_risk.sum())) < 1e-6
    # Firms of size 8 (class 3) exit at about half the rate of size-1 firms.
    rates = exits / np.maximum(at_risk, 1)
    assert rates[3] < 0.6 * rates[0]


@pytest.mark.parametrize("engine", MODEL_ENGINES)
def test_anchor_exit_rate_is_mu_times_phi(scenario_factory, engine):
    """With φ_exit = 0.5 an anchor exits with probability μ·φ_exit, whatever its size (anchors followed one by one
    among ordinary firms, in a model stepped from Python)."""
    model = ModuModel(_exit_scenario(scenario_factory, 0.5, engine), rng=6, record_events=False)
    _, _, anchor_at_risk, anchor_exits = _run_exits(model)
    assert stats.binomtest(anchor_exits, anchor_at_risk, 0.3 * 0.5).pvalue > P_MIN
    assert model.anchors_present[0] == model.firms.anchor.sum() == 400 - anchor_exits


@pytest.mark.parametrize("engine", MODEL_ENGINES)
def test_reconsideration_rate_is_rho(scenario_factory, engine):
    """Firms reconsider with probability ρ (anchors ρ·φ_move/(1 + A)) and then choose by the mover logit.

    Anchors followed one by one among ordinary firms over four steps, in a model stepped from Python.

    With the network term off (α = 0) and three identical cities, a reconsidering firm leaves with
    probability 2e^(−m)/(1 + 2e^(−m)) and picks either other city with equal chance, so moves out of a
    city are Binomial(N, ρ·P_leave) per step.
    """
    rho, m, phi, n_anchor = 0.2, 0.7, 1.0, 300
    policy = {"budget": 1.0, "allocation": {"compute": 0.0, "data": 0.0, "anchor": 1.0}}
    scenario = scenario_factory(
        cities=[{"name": f"C{i}", "firms": 20_000 + n_anchor,
                 "anchors": [{"name": f"A{i}_{j}", "sector": "all"} for j in range(n_anchor)], "policy": policy}
                for i in range(3)],
        parameters={"network_effect": 0.0, "relocation_rate": rho, "moving_cost": m,
                    "anchor_relocation_factor": phi, "births_per_step": 0},
        steps=4,
        engine=engine,
    )
    model = ModuModel(scenario, rng=9, record_events=False)
    A = np.array([c.stocks[2] for c in model.cities])
    assert np.allclose(A, A[0]) and A[0] > 1  # identical anchor-support stocks, held at steady state
    p_leave = 2 * np.exp(-m) / (1 + 2 * np.exp(-m))
    p_anchor = rho * phi / (1 + A[0]) * p_leave
    moves = trials = anchor_moves = anchor_trials = 0
    while model.steps < model.n_steps:
        is_anchor = model.firms.anchor.copy()
        anchor_ids, city_before = model.firms.id[is_anchor], model.firms.city[is_anchor]
        firms_before = int(model.N.sum())
        model.step()
        assert np.allclose([c.stocks[2] for c in model.cities], A)
        out = model.history.steps[-1].moves_out.sum()
        pos = model.firms.positions(anchor_ids)
        assert len(pos) == len(anchor_ids)
        before, after = np.argsort(anchor_ids), np.argsort(model.firms.id[pos])
        np.testing.assert_array_equal(anchor_ids[before], model.firms.id[pos][after])
        moved_anchors = int(np.sum(city_before[before] != model.firms.city[pos][after]))
        anchor_moves += moved_anchors
        anchor_trials += len(anchor_ids)
        moves += out - moved_anchors
        trials += firms_before - len(anchor_ids)
    assert stats.binomtest(int(moves), trials, rho * p_leave).pvalue > P_MIN
    assert stats.binomtest(anchor_moves, anchor_trials, p_anchor).pvalue > P_MIN
    assert anchor_moves > 0
    np.testing.assert_array_equal(model.anchors_present, np.bincount(model.firms.city[model.firms.anchor], minlength=3))
    # Destinations: each of the two other cities equally likely.
    flows = model.history.flows
    assert np.all(np.diag(flows) == 0)
    for h in range(3):
        others = [c for c in range(3) if c != h]
        assert stats.binomtest(int(flows[h, others[0]]), int(flows[h, others].sum()), 0.5).pvalue > P_MIN
