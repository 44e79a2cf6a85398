"""The simplex of three shares (sim/analysis/simplex.py) and its ternary heat map: grid counts, exactness, the plot."""

from __future__ import annotations

import math
from fractions import Fraction

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sim.analysis import simplex_divisions, simplex_grid, ternary_heatmap, to_cartesian  # noqa: E402


@pytest.mark.parametrize(("resolution", "count"), [(0.05, 231), (0.1, 66), (0.25, 15), (0.5, 6), (1, 3),
                                                    (Fraction(1, 3), 10), ("1/3", 10), (1 / 3, 10), (0.01, 5151)])
def test_grid_size_is_the_triangular_number(resolution, count):
    """With n = 1/resolution steps there are (n + 1)(n + 2)/2 mixes."""
    grid = simplex_grid(resolution)
    assert len(grid) == count
    assert list(grid.columns) == ["a", "b", "c"]
    assert not grid.duplicated().any()


def test_the_components_are_named_by_the_caller():
    grid = simplex_grid(0.5, ["compute", "data", "anchor"])
    assert list(grid.columns) == ["compute", "data", "anchor"]
    with pytest.raises(ValueError, match="three distinct component names"):
        simplex_grid(0.5, ["x", "x", "y"])


def test_grid_is_exact():
    """Every share is the correctly rounded k/20; as Fractions the shares sum to exactly 1."""
    grid = simplex_grid(0.05, ["compute", "data", "anchor"])
    allowed = {k / 20 for k in range(21)}
    assert set(np.unique(grid.to_numpy())) <= allowed
    assert 0.15 in set(grid.compute) and 0.35 in set(grid.data)  # no 0.15000000000000002
    assert np.allclose(grid.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    exact = simplex_grid(0.05, exact=True)
    assert all(sum(row) == 1 for row in exact.itertuples(index=False))
    assert all(isinstance(v, Fraction) for v in exact.to_numpy().ravel())
    assert [tuple(r) for r in simplex_grid(0.5).to_numpy()] == [
        (1.0, 0.0, 0.0), (0.5, 0.5, 0.0), (0.5, 0.0, 0.5), (0.0, 1.0, 0.0), (0.0, 0.5, 0.5), (0.0, 0.0, 1.0)]


@pytest.mark.parametrize(
    ("resolution", "message"),
    [(0.3, "resolution 0.3 does not divide 1"), (0.07, "resolution 0.07 does not divide 1"),
     (0, "resolution 0 leaves no grid point"), (1.5, "resolution 1.5 leaves no grid point"),
     (-0.1, "resolution -0.1 leaves no grid point"), (float("nan"), "resolution nan is not a number"),
     (float("inf"), "resolution inf is not a number"), ("a lot", "resolution 'a lot' is not a number")],
)
def test_bad_resolution_is_refused(resolution, message):
    with pytest.raises(ValueError, match=message):
        simplex_grid(resolution)


def test_divisions():
    assert simplex_divisions(0.05) == 20 and simplex_divisions("0.125") == 8 and simplex_divisions(1) == 1


def test_cartesian_corners():
    """The first component at (0, 0), the second at (1, 0), the third at the apex; the centre at the centroid."""
    xy = to_cartesian([(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1)])
    assert np.allclose(xy, [(0, 0), (1, 0), (0.5, math.sqrt(3) / 2), (0.5, math.sqrt(3) / 6)])
    with pytest.raises(ValueError, match="three non-negative shares"):
        to_cartesian([(1, 2)])


def test_ternary_heatmap_draws_cells_marks_and_colourbar(monkeypatch):
    """One cell per mix coloured by its value, best/current marked, hatching for the indistinguishable set."""
    monkeypatch.setattr(Figure, "savefig", lambda *a, **k: (_ for _ in ()).throw(AssertionError("savefig")))
    grid = simplex_grid(0.1, ["compute", "data", "anchor"])
    values = 100 * grid.compute + 50 * grid.data
    near = (values > 80).to_numpy()
    fig, ax = plt.subplots()
    out = ternary_heatmap(grid, values, ax=ax, best=(1, 0, 0), current=(1 / 3, 1 / 3, 1 / 3),
                          indistinguishable=near, label="national firms")
    assert out is ax
    cells = ax.collections[0]
    assert len(cells.get_paths()) == len(grid)
    assert np.allclose(cells.get_array(), values)
    assert fig.axes[-1].get_ylabel() == "national firms"  # the colour bar
    labels = [t.get_text() for t in ax.texts]
    assert {"compute", "data", "anchor", "compute share", "data share", "anchor share"} <= set(labels)  # the columns
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["indistinguishable from best", "best mix", "current mix"]
    hatched = [c for c in ax.collections if c.get_hatch()]
    assert len(hatched) == 1 and len(hatched[0].get_paths()) == near.sum()
    star = [c for c in ax.collections if c.get_label() == "best mix"][0]
    assert np.allclose(star.get_offsets(), [[0, 0]])
    plt.close(fig)


def test_ternary_heatmap_checks_lengths():
    grid = simplex_grid(0.5)
    with pytest.raises(ValueError, match="5 values for 6 points"):
        ternary_heatmap(grid, np.arange(5))
    plt.close("all")
