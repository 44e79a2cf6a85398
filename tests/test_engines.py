"""The exact ``counts`` engine (the compiled kernel) and the per-firm ``agents`` engine implement the same model.

They draw different random numbers (one per firm decision against one per class of firms), so they agree in
distribution; ``tests/test_kernel.py`` checks that ``ModuModel(engine="counts")`` is the kernel draw for draw.
"""

import numpy as np
import pytest
from scipy import stats

from sim.model import ModuModel
from sim.model.firms import SIZE_CLASSES, size_class_probabilities
from sim.scenario import validate

SCENARIO = {
    "name": "engines",
    "time": {"start": 2016, "end": 2019, "steps_per_year": 4},
    "sectors": {"up": 0.3, "down": 0.7},
    "parameters": {"exit_rate": 0.04, "exit_size_elasticity": 0.7, "relocation_rate": 0.05, "moving_cost": 0.5,
                   "birth_rate": 0.05, "network_effect": 0.8, "congestion": 1.0,
                   "lever_effects": {"compute": {"up": 0.5}, "anchor": {"down": 0.4}}},
    "cities": [
        {"name": "A", "firms": 900, "capacity": 3000, "anchors": [{"name": "Big", "sector": "down"}],
         "policy": {"budget": 4, "allocation": {"compute": 0.5, "data": 0.0, "anchor": 0.5}}},
        {"name": "B", "firms": 600, "capacity": 2000, "talent": 0.5},
        {"name": "C", "firms": 300, "pool": True},
    ],
}


def outcomes(engine: str, seeds: range) -> dict[str, np.ndarray]:
    scenario = validate({**SCENARIO, "engine": engine})
    rows = []
    for seed in seeds:
        model = ModuModel(scenario, rng=seed, record_events=False)
        history = model.run()
        rows.append([*model.N.sum(axis=1), *(history.stack(k).sum() for k in ("births", "deaths", "moves_in"))])
    names = ["final_A", "final_B", "final_C", "births", "deaths", "moves"]
    return dict(zip(names, np.array(rows, dtype=float).T, strict=True))


def test_counts_and_agents_engines_agree_in_distribution():
    agents, counts = outcomes("agents", range(60)), outcomes("counts", range(1000, 1060))
    for name in agents:
        a, c = agents[name], counts[name]
        assert stats.ks_2samp(a, c).pvalue > 1e-3, name
        se = np.sqrt(a.var(ddof=1) / len(a) + c.var(ddof=1) / len(c))
        assert abs(a.mean() - c.mean()) < 4 * se, name
    assert counts["moves"].mean() > 50 and counts["deaths"].mean() > 200  # the check has power


def test_counts_engine_keeps_exact_growth_accounting_and_its_counts_consistent():
    model = ModuModel(validate({**SCENARIO, "engine": "counts"}), rng=3)
    history = model.run()
    firms = history.stack("firms")
    change = history.stack("births") - history.stack("deaths") + history.stack("moves_in") - history.stack("moves_out")
    np.testing.assert_array_equal(firms[1:], firms[:-1] + change[1:])
    np.testing.assert_array_equal(history.stack("moves_in").sum(axis=(1, 2)), history.stack("moves_out").sum(axis=(1, 2)))
    assert history.flows.sum() == history.stack("moves_in").sum()
    # the counts plus the individual anchors are the model's N
    individual = np.zeros_like(model.N)
    np.add.at(individual, (model.firms.city, model.firms.sector), 1)
    np.testing.assert_array_equal(model.counts.sum(axis=2) + individual, model.N)
    assert model.firms.anchor.all() and (model.counts >= 0).all()
    with pytest.raises(RuntimeError, match="counts"):
        model.firm_table()


def test_size_classes_follow_the_binned_pareto_distribution():
    zeta = 1.06
    p = size_class_probabilities(zeta)
    assert p.shape == (SIZE_CLASSES,) and np.isclose(p.sum(), 1) and (p > 0).all()
    # P(size >= 2**k) = 2**(-k*zeta) for the Pareto(zeta, 1) distribution
    assert np.allclose(p[::-1].cumsum()[::-1], 2.0 ** (-zeta * np.arange(SIZE_CLASSES)))
    model = ModuModel(validate({**SCENARIO, "parameters": {**SCENARIO["parameters"], "size_tail": zeta}}), rng=0)
    classes = np.log2(model.firms.size).astype(int)
    observed = np.bincount(classes, minlength=SIZE_CLASSES)
    top = 4  # pool the sparse tail for the chi-square test
    expected = np.r_[p[:top], p[top:].sum()] * len(classes)
    assert stats.chisquare(np.r_[observed[:top], observed[top:].sum()], expected).pvalue > 1e-3
