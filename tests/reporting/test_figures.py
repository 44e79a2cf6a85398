"""Rules the figures a planner reads must keep: maps hold every circle and label, every city shows, points stay apart."""

import itertools
import os

import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Ellipse, PathPatch

from sim.reporting.figures import MAX_LINES, plot_counts, plot_lock_in, plot_map
from sim.reporting.maps import HOME, outlines
from sim.reporting.style import plt
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
    from sim.reporting import files, style

    monkeypatch.setattr(files, "_fork_is_safe", lambda: False)
    serial = style.save_figures(_three_figures(), tmp_path / "serial")
    monkeypatch.setattr(files, "_fork_is_safe", lambda: True)
    monkeypatch.setattr(files.os, "cpu_count", lambda: 2)
    forked = style.save_figures(_three_figures(), tmp_path / "forked")
    rescued = style.save_figures(_three_figures(fail_unless_in=os.getpid()), tmp_path / "rescued")
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


# ---------------------------------------------------------------- one style for every figure: page width, lever
# colours, axes from 0 (or marked broken), plain years


def fake_comparison(n_cities: int = 14, scenarios: tuple[str, ...] = ("china", "no_anchor", "anchor_to_compute")):
    """The tables of a comparison of ``scenarios`` over ``n_cities`` cities, shaped as modu compare writes them."""
    from types import SimpleNamespace

    from sim.experiments.compare import NATIONAL

    rng = np.random.default_rng(5)
    cities = [f"City {i}" for i in range(n_cities)]
    summary = pd.DataFrame([{"scenario": s, "city": c, "firms": 1000.0 * (i + 1), "firms_q05": 900.0 * (i + 1),
                             "firms_q95": 1100.0 * (i + 1), "share": 1 / n_cities, "lock_in": float(i == 0),
                             "spend_compute": 10.0 * k, "spend_data": 5.0, "spend_anchor": 20.0 - 5 * k}
                            for k, s in enumerate(scenarios) for i, c in enumerate(cities)])
    effects = pd.DataFrame([{"scenario": s, "reference": scenarios[0], "city": c, "firms_gained": g,
                             "firms_gained_low": g - 50, "firms_gained_high": g + 50, "extra_spend": -40.0 if i == 0 else 0.0,
                             "firms_per_100m": 2.5, "firms_per_100m_low": 1.0, "firms_per_100m_high": 4.0}
                            for s in scenarios[1:] for i, c in enumerate([*cities, NATIONAL])
                            for g in [float(rng.normal(0, 300))]])
    counts = pd.DataFrame([{"scenario": s, "year": y, "city": c, "firms": 100.0 * (i + 1) * (1 + 0.1 * (y - 2017)),
                            "firms_q05": 90.0 * (i + 1), "firms_q95": 120.0 * (i + 1) * (1 + 0.1 * (y - 2017))}
                           for s in scenarios for y in range(2017, 2024) for i, c in enumerate([*cities, NATIONAL])])
    policy = pd.DataFrame([{"scenario": s, "no_policy": f"{s}: no policy", "city": c, "firms_gained": g,
                            "births": g, "deaths": 10.0, "moves_in": 5.0, "moves_out": 5.0}
                           for s in scenarios for c in [*cities, NATIONAL] for g in [float(rng.normal(0, 300))]])
    return SimpleNamespace(tables={"summary": summary, "effects": effects, "counts": counts, "policy": policy},
                           cities=cities, no_policy={s: None for s in scenarios},
                           arms=[SimpleNamespace(label=s) for s in scenarios])


def saved_png(fig, tmp_path, stem: str):
    """Save ``fig`` as the reports do and open its PNG: (width in pixels, dots per inch)."""
    from PIL import Image

    from sim.reporting.style import save_figure

    path = next(p for p in save_figure(fig, tmp_path, stem) if p.suffix == ".png")
    with Image.open(path) as image:
        return image.size[0], round(image.info["dpi"][0])


def test_compare_figures_fit_a_page_at_full_resolution(tmp_path):
    """Fourteen cities, three scenarios: every figure is laid out within a page, not shrunk to fit it."""
    from sim.reporting import compare_figures as compare
    from sim.reporting.style import DPI, MAX_WIDTH_PX

    comparison = fake_comparison()
    for draw in (compare.plot_counts, compare.plot_shares, compare.plot_lock_in, compare.plot_spending,
                 compare.plot_effects, compare.plot_growth_accounting):
        width, dpi = saved_png(draw(comparison), tmp_path, draw.__name__)
        assert width <= MAX_WIDTH_PX and dpi == DPI, (draw.__name__, width, dpi)


def test_a_figure_laid_out_wider_than_a_page_is_saved_at_most_a_page_wide(tmp_path):
    from sim.reporting.style import DPI, MAX_WIDTH_PX

    fig, ax = plt.subplots(figsize=(30, 3))
    ax.plot([0, 1], [0, 1])
    width, dpi = saved_png(fig, tmp_path, "wide")
    assert MAX_WIDTH_PX - 20 <= width <= MAX_WIDTH_PX and dpi < DPI


def test_lock_in_of_many_points_fits_a_page_and_is_ordered_by_the_input_that_drives_it(tmp_path):
    from sim.reporting.style import DPI, MAX_WIDTH_PX
    from sim.reporting.sweep import plot_lock_in_by_point

    rng = np.random.default_rng(2)
    a, b = rng.uniform(0, 1, 50), rng.uniform(0, 100, 50)
    summary = pd.DataFrame([{"point": p, "a": a[p], "b": b[p], "replication": r, "status": "ok",
                             "leader": "Hefei" if rng.uniform() < b[p] / 100 else "Beijing"}
                            for p in range(50) for r in range(4)])
    fig = plot_lock_in_by_point(summary, ["a", "b"])
    ax = fig.axes[0]
    shown = [float(t.get_text().replace(",", "")) for t in ax.get_xticklabels()]
    assert shown == sorted(shown) and min(shown) == pytest.approx(b.min(), rel=0.01)  # b's values, in order
    assert ax.get_xlabel().startswith("points ordered by b")
    width, dpi = saved_png(fig, tmp_path, "lock_in")
    assert width <= MAX_WIDTH_PX and dpi == DPI


def test_envelopes_of_many_points_are_coloured_by_the_input_that_drives_them():
    """The outcome moves with b only: the lines are coloured by b (a is the first swept path, and a red herring)."""
    from matplotlib.colors import to_rgba

    from sim.reporting.sweep import MAX_DISTINCT

    rng = np.random.default_rng(4)
    n = MAX_DISTINCT + 10
    a, b = rng.uniform(0.8, 1.4, n), rng.uniform(0, 100, n)
    summary = pd.DataFrame({"point": range(n), "a": a, "b": b, "replication": 0, "status": "ok", "leader": "A"})
    metrics = pd.DataFrame([{"point": p, "replication": 0, "year": y, "cities": 3,
                             "hhi": 0.34 + 0.0004 * b[p] * (y - 2017), "top1_share": 0.4 + 0.001 * b[p] * (y - 2017)}
                            for p in range(n) for y in (2017, 2020, 2023)])
    fig = plot_envelopes(summary, metrics, ["a", "b"])
    panels = [ax for ax in fig.axes if ax.get_lines()]
    bars = [ax for ax in fig.axes if not ax.get_lines()]
    assert len(panels) == 2 and len(bars) == 2
    for bar in bars:
        assert bar.get_ylabel().startswith("b") and "Spearman ρ" in bar.get_ylabel() and "+1.00" in bar.get_ylabel()
    cmap = plt.get_cmap("viridis")
    lowest, highest = int(np.argmin(b)), int(np.argmax(b))
    lines = panels[0].get_lines()
    assert to_rgba(lines[lowest].get_color()) == cmap(0.0) and to_rgba(lines[highest].get_color()) == cmap(1.0)
    plt.close(fig)


def _bar_colours(ax) -> dict[str, tuple[float, ...]]:
    return {c.get_label(): tuple(c.patches[0].get_facecolor()) for c in ax.containers}


def test_each_lever_has_one_colour_in_every_figure():
    from types import SimpleNamespace

    from matplotlib.colors import to_rgba

    from sim.reporting import compare_figures as compare
    from sim.reporting.figures import plot_spending
    from sim.reporting.palette import LEVER_COLORS
    from sim.reporting.policy import plot_allocations

    expected = {lever: to_rgba(color) for lever, color in LEVER_COLORS.items()}
    tables = run_tables({"A": 10.0, "B": 20.0})
    tables["cities"] = pd.DataFrame({"replication": 0, "city": ["A", "B"], "spend_compute": [1.0, 2.0],
                                     "spend_data": [1.0, 0.0], "spend_anchor": [3.0, 1.0]})
    mixes = pd.DataFrame({"profile": ["equilibrium", "cooperative"], "city": ["A", "A"], "compute": [0.5, 1.0],
                          "data": [0.25, 0.0], "anchor": [0.25, 0.0], "budget": [20.0, 20.0]})
    figures = {"run spending": plot_spending(tables), "compare spending": compare.plot_spending(fake_comparison()),
               "equilibrium allocations": plot_allocations(SimpleNamespace(allocations=lambda: mixes))}
    for name, fig in figures.items():
        for ax in fig.axes:
            if ax.containers:
                assert _bar_colours(ax) == expected, name
        plt.close(fig)
    lock_in = plot_lock_in(run_tables({"A": 10.0, "B": 20.0}))
    assert not set(_bar_colours(lock_in.axes[0]).values()) & set(expected.values())  # no colour means two things
    plt.close(lock_in)


def test_a_value_axis_starts_at_zero_or_is_marked_broken():
    from sim.reporting.style import is_broken, value_axis

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [609_500, 609_800, 610_200])  # a 0.1% change
    ax.set_ylabel("national firms")
    value_axis(ax, broken=False)
    assert ax.get_ylim()[0] == 0 and not is_broken(ax)
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [0.342, 0.36, 0.377])
    ax.set_ylabel("HHI")
    value_axis(ax)
    assert ax.get_ylim()[0] > 0 and is_broken(ax) and "does not start at 0" in ax.get_ylabel()
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [40.0, 50.0, 60.0])  # from 0 the data still fill a third of the axis
    value_axis(ax)
    assert ax.get_ylim()[0] == 0 and not is_broken(ax)
    plt.close("all")


def test_every_figure_starts_its_values_at_zero_or_says_it_does_not():
    from sim.reporting.style import is_broken

    counts = plot_counts(run_tables({"A": 300.0, "B": 400.0}))  # linear: the two cities are of a size
    assert counts.axes[0].get_yscale() == "linear" and counts.axes[0].get_ylim()[0] == 0
    summary, metrics, paths = sweep_tables({"parameters.network_effect": [0.8, 1.1]})
    envelopes = plot_envelopes(summary, metrics, paths)
    for ax in envelopes.axes:
        low, high = ax.get_ylim()
        assert low <= 0 <= high or is_broken(ax)
    plt.close("all")


def _tick_texts(fig, axis: str = "x") -> list[str]:
    fig.canvas.draw()
    from sim.reporting.style import number_ticks

    number_ticks(fig)  # what save_figure applies
    fig.canvas.draw()
    return [t.get_text() for ax in fig.axes if ax.get_visible()
            for t in (ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()) if t.get_text()]


def test_years_are_plain_and_other_numbers_have_separators():
    from sim.reporting import compare_figures as compare

    fig = plot_counts(run_tables({"A": 30_000.0, "B": 45_000.0}, years=tuple(range(2017, 2024))))
    years, firms = _tick_texts(fig, "x"), _tick_texts(fig, "y")
    assert years and all(t.isdigit() and len(t) == 4 for t in years)
    assert "40,000" in firms and not any("e" in t or "+" in t for t in firms)
    fig = compare.plot_counts(fake_comparison(4))
    assert all(t.isdigit() for t in _tick_texts(fig, "x"))
    plt.close("all")
