"""Rules the figures a planner reads must keep: maps hold every circle and label, every city shows, points stay apart."""

import itertools
import os

import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Ellipse, PathPatch

from sim.reporting.figures import MAX_LINES, plot_counts, plot_lock_in, plot_map, plt
from sim.reporting.maps import HOME, outlines
from sim.reporting.sweep import label_decimals, plot_envelopes, plot_phase, point_styles
from sim.scenario import load_scenario
from sim.scenario.resources import SCENARIOS_DIR


def run_tables(firms_by_city: dict[str, float], years=(2020, 2021), replications=2, leader=None) -> dict:
    """Synthetic run tables: each city's firms constant over years and replications; ``leader`` ends first."""
    cities = list(firms_by_city)
    rows = [(r, y, c, firms_by_city[c]) for r in range(replications) for y in years for c in cities]
    firms = pd.DataFrame(rows, columns=["replication", "year", "city", "firms"])
    metrics = pd.DataFrame({"replication": list(range(replications)), "step": 4, "leader": leader or cities[0]})
    return {"firms": firms, "cities": pd.DataFrame({"city": cities}), "metrics": metrics}


def coordinates(name: str) -> dict[str, tuple[float, float]]:
    scenario = load_scenario(SCENARIOS_DIR / f"{name}.yaml")
    return {c.name: (c.lat, c.lon) for c in scenario.cities if c.lat is not None and c.lon is not None}


def boxes_overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("name", ["baseline", "china", "us"])
def test_map_holds_every_circle_and_label_and_labels_do_not_overlap(name: str):
    coords = coordinates(name)
    scenario = load_scenario(SCENARIOS_DIR / f"{name}.yaml")
    firms = {c.name: 1000.0 * (i + 1) ** 1.5 for i, c in enumerate(scenario.cities)}
    fig = plot_map(run_tables(firms), coords)
    ax = fig.axes[0]
    fig.canvas.draw()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    circles = [p for p in ax.patches if isinstance(p, Ellipse)]
    assert sorted(p.get_gid() for p in circles) == sorted(f"city:{c}" for c in coords)
    for p in circles:
        cx, cy = p.center
        assert x0 <= cx - p.width / 2 and cx + p.width / 2 <= x1 and y0 <= cy - p.height / 2 and cy + p.height / 2 <= y1
        assert p.width / p.height == pytest.approx(1 / np.cos(np.radians(np.mean([c[0] for c in coords.values()]))))
    frame = ax.get_window_extent()
    labels = [t.get_window_extent() for t in ax.texts if (t.get_gid() or "").startswith("label:")]
    assert len(labels) == len(coords)
    for box in labels:
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    for a, b in itertools.combinations(labels, 2):
        assert not boxes_overlap(a, b)
    view_ratio = frame.width / frame.height
    assert 0.6 < view_ratio < 2.5  # no strip
    plt.close(fig)


def test_map_circle_area_is_proportional_to_firms_and_pools_are_named():
    coords = {"A": (30.0, 110.0), "B": (35.0, 115.0), "C": (25.0, 105.0)}
    fig = plot_map(run_tables({"A": 400.0, "B": 100.0, "C": 25.0, "Pool": 50.0}), coords)
    ax = fig.axes[0]
    area = {p.get_gid().removeprefix("city:"): p.width * p.height for p in ax.patches if isinstance(p, Ellipse)}
    assert area["A"] / area["B"] == pytest.approx(4) and area["B"] / area["C"] == pytest.approx(4)
    assert any("not on the map" in t.get_text() and "Pool: 50" in t.get_text() for t in ax.texts)
    plt.close(fig)


def test_map_of_china_shades_china_and_of_the_us_draws_states():
    fig = plot_map(run_tables({"Beijing": 10.0, "Shanghai": 5.0}), {"Beijing": (39.9, 116.4), "Shanghai": (31.2, 121.5)})
    shaded = [p for p in fig.axes[0].patches if isinstance(p, PathPatch) and p.get_facecolor()[:3] != (0, 0, 0)]
    home = [p for p in shaded if np.allclose(p.get_facecolor()[:3], plt.matplotlib.colors.to_rgb(HOME))]
    china = next(path for name, kind, path in outlines() if name == "China")
    assert len(home) == 1 and np.array_equal(home[0].get_path().vertices, china.vertices)
    plt.close(fig)
    assert sum(kind == "state" for _, kind, _ in outlines()) >= 50
    fig = plot_map(run_tables({"Bay Area": 10.0}), {"Bay Area": (37.77, -122.42)})
    states = [p for p in fig.axes[0].patches if isinstance(p, PathPatch) and p.get_facecolor()[3] == 0]
    assert len(states) >= 5  # California and its neighbours at least
    plt.close(fig)


def test_lock_in_shows_every_city_even_at_zero():
    cities = {f"City {i}": 100.0 for i in range(14)}
    fig = plot_lock_in(run_tables(cities, leader="City 3"))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(cities)
    labels = [t.get_text() for t in ax.texts]
    assert labels.count("0%") == 13 and labels.count("100%") == 1
    plt.close(fig)


def test_counts_of_many_cities_are_small_multiples_one_city_each():
    many = {f"City {i}": 100.0 * (i + 1) for i in range(MAX_LINES + 6)}
    fig = plot_counts(run_tables(many))
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title().split(":")[0] for ax in shown] == list(many)
    assert all(ax.get_yscale() == "log" for ax in shown)
    plt.close(fig)
    few = dict(itertools.islice(many.items(), MAX_LINES))
    fig = plot_counts(run_tables(few))
    assert len(fig.axes) == 1 and [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == list(few)
    plt.close(fig)


def sweep_tables(grid: dict[str, list[float]], outcome=lambda values: 0.3 + 0.01 * sum(values)) -> tuple:
    """Synthetic sweep summary and metrics: one point per grid combination, two replications, two years."""
    paths = list(grid)
    summary, metrics = [], []
    for point, values in enumerate(itertools.product(*grid.values())):
        for rep in range(2):
            hhi = outcome(values)
            summary.append({"point": point, **dict(zip(paths, values, strict=True)), "replication": rep, "status": "ok",
                            "hhi": hhi, "leader": "A"})
            metrics += [{"point": point, "replication": rep, "year": y, "cities": 3, "hhi": hhi * f,
                         "top1_share": hhi * f} for y, f in ((2020, 0.9), (2021, 1.0))]
    return pd.DataFrame(summary), pd.DataFrame(metrics), paths


@pytest.mark.parametrize("grid", [
    {"parameters.network_effect": [0.8, 1.1], "parameters.congestion": [0.0, 0.5]},
    {"parameters.network_effect": [0.6, 0.8, 1.0, 1.2], "parameters.congestion": [0.0, 0.5, 1.0, 2.0]},
    {"parameters.network_effect": [0.6, 0.8, 1.0], "parameters.congestion": [0.0, 0.5, 1.0, 2.0, 3.0]},
    {"parameters.network_effect": [0.5, 1.0]},
])
def test_every_envelope_point_has_its_own_colour_and_style(grid):
    summary, metrics, paths = sweep_tables(grid)
    fig = plot_envelopes(summary, metrics, paths)
    n_points = summary.point.nunique()
    for ax in fig.axes:
        looks = {(tuple(line.get_color()), line.get_linestyle()) for line in ax.get_lines()}
        assert len(ax.get_lines()) == n_points and len(looks) == n_points
    assert len(fig.axes[-1].get_legend().get_texts()) == n_points
    plt.close(fig)


def test_point_styles_colour_the_first_parameter_and_style_the_second():
    summary, _, paths = sweep_tables({"a": [1.0, 2.0], "b": [0.0, 5.0]})
    points = summary.drop_duplicates("point").set_index("point")[paths]
    styles = point_styles(points)
    by_a = {a: {styles[p][0] for p in points.index[points.a == a]} for a in (1.0, 2.0)}
    assert all(len(colors) == 1 for colors in by_a.values()) and by_a[1.0] != by_a[2.0]
    assert {styles[p][1] for p in points.index[points.b == 0.0]} == {"-"}


def test_label_decimals_tell_different_values_apart():
    assert label_decimals(np.array([0.35, 0.36, 0.36])) == 2
    assert label_decimals(np.array([0.3612, 0.3648])) == 3
    assert label_decimals(np.array([0.36121, 0.36139])) == 4


def test_phase_axes_hold_only_swept_values_and_cells_read_apart():
    grid = {"parameters.network_effect": [0.6, 0.8, 1.0, 1.2], "parameters.congestion": [0.0, 0.5, 1.0, 2.0]}
    rank = {v: i for i, v in enumerate(itertools.product(*grid.values()))}
    summary, metrics, _ = sweep_tables(grid, outcome=lambda v: 0.36 + 0.0003 * rank[v])  # 3 decimals would merge some
    fig = plot_phase(summary, metrics, *grid)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.6", "0.8", "1", "1.2"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "0.5", "1", "2"]
    assert ax.get_xlim() == (-0.5, 3.5) and ax.get_ylim() == (-0.5, 3.5)
    assert len(ax.collections) == 1  # the cells only: no unexplained contour lines
    cells = [t.get_text() for t in ax.texts]
    assert len(cells) == 16 and len(set(cells)) == 16  # 16 different values, 16 different labels
    plt.close(fig)


def test_phase_of_a_sample_stays_within_the_sampled_ranges_and_says_it_interpolates():
    rng = np.random.default_rng(3)
    summary, metrics, _ = sweep_tables({"x": [0.0], "y": [0.0]})
    rows = [summary.iloc[[0]].assign(point=i, x=x, y=y, hhi=0.3 + 0.1 * x * y)
            for i, (x, y) in enumerate(rng.uniform([0.6, 0.0], [1.2, 2.0], size=(10, 2)))]
    sample = pd.concat(rows, ignore_index=True)
    fig = plot_phase(sample, metrics, "x", "y")
    ax = fig.axes[0]
    assert ax.get_xlim() == (sample.x.min(), sample.x.max()) and ax.get_ylim() == (sample.y.min(), sample.y.max())
    assert "interpolated" in ax.get_title()
    plt.close(fig)


def _three_figures(fail_unless_in: int | None = None) -> dict:
    """Three small figures; with ``fail_unless_in``, each fails when drawn in any other process (a failing child)."""
    def draw(k: int):
        def figure():
            if fail_unless_in is not None and os.getpid() != fail_unless_in:
                raise RuntimeError("the child fails")
            fig, ax = plt.subplots(figsize=(3, 2))
            ax.plot([0, 1, 2], [k, 2 * k, k])
            ax.set_title(f"figure {k}")
            return fig
        return figure
    return {"a": draw(1), "b": draw(2), "c": draw(3)}


def test_figures_drawn_with_a_forked_child_are_the_bytes_drawn_here(tmp_path, monkeypatch):
    """save_figures: the same files whether a child draws some of them, fails at once, or no child is used."""
    from sim.reporting import figures, files

    monkeypatch.setattr(files, "_fork_is_safe", lambda: False)
    serial = figures.save_figures(_three_figures(), tmp_path / "serial")
    monkeypatch.setattr(files, "_fork_is_safe", lambda: True)
    monkeypatch.setattr(files.os, "cpu_count", lambda: 2)
    forked = figures.save_figures(_three_figures(), tmp_path / "forked")
    rescued = figures.save_figures(_three_figures(fail_unless_in=os.getpid()), tmp_path / "rescued")
    assert [p.name for p in serial] == ["a.png", "a.svg", "b.png", "b.svg", "c.png", "c.svg"]
    for made in (forked, rescued):
        assert [p.name for p in made] == [p.name for p in serial]
        for path, expected in zip(made, serial, strict=True):
            assert path.read_bytes() == expected.read_bytes()
    assert not list(tmp_path.glob("*/.*.tmp"))  # no half-written file left by the failed child


def test_two_processes_share_the_jobs(tmp_path, monkeypatch):
    """run_in_two: a job that waits for another one finishes only if the other runs in the other process."""
    import time

    from sim.reporting import files

    monkeypatch.setattr(files, "_fork_is_safe", lambda: True)
    monkeypatch.setattr(files.os, "cpu_count", lambda: 2)

    def waiting():
        deadline = time.monotonic() + 20
        while not (tmp_path / "other").exists():
            assert time.monotonic() < deadline, "the other job never ran beside this one"
            time.sleep(0.01)
        (tmp_path / "waiting").write_text(str(os.getpid()))

    def other():
        (tmp_path / "other").write_text(str(os.getpid()))

    files.run_in_two([waiting, other])
    assert (tmp_path / "waiting").read_text() != (tmp_path / "other").read_text()
    assert os.getpid() in {int((tmp_path / name).read_text()) for name in ("waiting", "other")}
