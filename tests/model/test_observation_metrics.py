"""Concentration metrics against their definitions, one run at a time and over a batch of runs."""

from __future__ import annotations

import numpy as np

from sim.model import metrics


def test_gini_is_the_mean_absolute_difference_over_twice_the_mean(monkeypatch):
    """Σ_i Σ_j |s_i − s_j| / (2 n Σ s) by a plain double loop; the block size changes nothing."""
    monkeypatch.setattr(metrics, "PAIRWISE_BLOCK", 30)  # blocks of one or a few rows
    rng = np.random.default_rng(11)
    for n in (1, 2, 3, 5, 14, 50):
        s = rng.dirichlet(np.full(n, 0.3), size=40)
        s[0] = 1.0 / n  # equal shares: 0
        s[1] = np.eye(n)[0]  # one city holds everything: 1 − 1/n
        brute = [sum(abs(a - b) for a in row for b in row) / (2 * n * row.sum()) for row in s]
        np.testing.assert_allclose(metrics.gini(s), brute, rtol=1e-12, atol=1e-15)
        assert abs(metrics.gini(s)[1] - (1 - 1 / n)) < 1e-12 and abs(metrics.gini(s)[0]) < 1e-12


def test_concentration_of_a_batch_is_that_of_each_run():
    """[run, step, city] counts give, run by run, what each run's [step, city] counts give."""
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 50, size=(6, 9, 5))
    counts[2, 4] = 0  # a step without firms: uniform shares
    counts[3, :, 1] = 100  # a leader that never changes
    pool = np.array([False, False, True, False, False])
    names = ["A", "B", "Rest", "C", "D"]
    batch = metrics.concentration(counts, pool, names)
    for r in range(len(counts)):
        one = metrics.concentration(counts[r], pool, names)
        assert set(one) == set(batch)
        for key, values in one.items():
            assert batch[key][r].shape == values.shape == (9,)
            np.testing.assert_array_equal(batch[key][r], values)
    assert "Rest" not in set(batch["leader"].ravel())
    assert not batch["lead_change"][3].any() and not batch["lead_change"][:, 0].any()
    np.testing.assert_array_equal(batch["firms"], counts[..., ~pool].sum(axis=-1))
