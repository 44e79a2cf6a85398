"""``modu sweep``: paths and values, grids and Latin hypercubes, the resumable store, failures, figures."""

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from sim.cli import main
from sim.experiments import sweep as sweep_module
from sim.experiments.errors import ExperimentError
from sim.experiments.sweep import plan_sweep
from sim.reporting.sweep import lock_in_by_point

SCENARIO = """\
name: sweepy
time: {start: 2016, end: 2018, steps_per_year: 4}
seed: 5
replications: 3
parameters: {network_effect: 1.1, congestion: 0.5, relocation_rate: 0.01}
cities:
  - {name: A, firms: 600, capacity: 5000, anchors: [{name: Big, sector: downstream}],
     policy: {budget: 5, allocation: {compute: 0.5, data: 0.25, anchor: 0.25}}}
  - {name: B, firms: 500, capacity: 5000}
  - {name: St. Louis, firms: 300}
  - {name: Rest, firms: 300, pool: true}
events:
  - {year: 2017, city: A, invest: {compute: 10}}
"""

SLOW = """\
name: slow
time: {start: 2016, end: 2019, steps_per_year: 4}
seed: 8
cities:
  - {name: A, firms: 30000}
  - {name: B, firms: 25000}
  - {name: C, firms: 20000}
"""
"""About 30 ms a run: slow enough to be killed part-way through a sweep."""

URN = """\
name: urn
time: {start: 2000, end: 2010, steps_per_year: 4}
seed: 1
sectors: {all: 1.0}
parameters: {network_effect: 1.0, network_seed: 0.0, congestion: 0.0, relocation_rate: 0.0, exit_rate: 0.0,
             births_per_step: 25, talent_effect: 0.0, capital_effect: 0.0, cost_effect: 0.0, lever_effects: {}}
cities:
  - {name: X, firms: 5, attractiveness: 0.0}
  - {name: Y, firms: 5, attractiveness: 0.0}
"""
"""A two-city Pólya urn: α > 1 tips to one city, α < 1 evens the shares out."""

OUTPUTS = ("summary", "metrics", "trajectories", "failures")


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "sweepy.yaml"
    path.write_text(SCENARIO)
    return path


def modu(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def stored(db: Path) -> dict[tuple[int, int], tuple[str, str, int]]:
    """(point, replication) -> (status, outcome, session), read without disturbing the writer."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            rows = con.execute("SELECT point, replication, status, outcome, session FROM runs").fetchall()
    except sqlite3.OperationalError:  # not created yet
        return {}
    return {(p, r): (status, outcome, session) for p, r, status, outcome, session in rows}


# ------------------------------------------------------------------ planning
def test_paths_address_cities_by_name_create_missing_mappings_and_index_unnamed_lists(scenario: Path):
    plan = plan_sweep(scenario, ["cities.B.policy.budget=0,7", "cities[St. Louis].firms=200",
                                 "events.0.invest.compute=3"], replications=2)
    assert [p.values for p in plan.points] == [
        {"cities.B.policy.budget": 0, "cities[St. Louis].firms": 200, "events.0.invest.compute": 3},
        {"cities.B.policy.budget": 7, "cities[St. Louis].firms": 200, "events.0.invest.compute": 3}]
    for point, budget in zip(plan.points, (0, 7), strict=True):
        cities = {c.name: c for c in point.scenario.cities}
        assert cities["B"].policy.budget == budget and cities["B"].policy.strategy == "fixed"
        assert cities["St. Louis"].firms == 200 and cities["A"].firms == 600
        assert point.scenario.events[0].invest.compute == 3
    assert plan.replications == 2 and plan.n_runs == 4
    assert plan.points[0].scenario.digest() != plan.points[1].scenario.digest()


def test_grid_is_full_factorial_in_option_order_with_yaml_values(scenario: Path):
    plan = plan_sweep(scenario, ["parameters.network_effect=0.9,1e-1",
                                 "cities.A.policy.allocation={compute: 1, data: 0, anchor: 0},"
                                 "{compute: 0, data: 1, anchor: 0},{compute: 0, data: 0, anchor: 1}"])
    assert plan.replications == 3 and len(plan.points) == 6
    alpha = [p.values["parameters.network_effect"] for p in plan.points]
    assert alpha == [0.9, 0.9, 0.9, 0.1, 0.1, 0.1]
    assert [p.scenario.parameters.network_effect for p in plan.points] == alpha
    assert [p.scenario.cities[0].policy.allocation.as_tuple() for p in plan.points[:3]] == [(1, 0, 0), (0, 1, 0), (0, 0, 1)]


def test_latin_hypercube_is_stratified_seeded_and_gives_integer_fields_integers(scenario: Path):
    n = 10
    ranges = ["parameters.network_effect=0.5:1.5", "cities.B.firms=100:1099"]
    plan = plan_sweep(scenario, sample=f"lhs:{n}", ranges=ranges)
    alpha = np.array([p.values["parameters.network_effect"] for p in plan.points])
    firms = [p.values["cities.B.firms"] for p in plan.points]
    assert sorted(np.floor((alpha - 0.5) / 1.0 * n).astype(int)) == list(range(n))  # one point per stratum
    assert all(isinstance(v, int) for v in firms) and sorted((v - 100) // 100 for v in firms) == list(range(n))
    assert [p.scenario.cities[1].firms for p in plan.points] == list(firms)
    again = plan_sweep(scenario, sample=f"lhs:{n}", ranges=ranges)
    other = plan_sweep(scenario, sample=f"lhs:{n}", ranges=ranges, seed=6)
    assert [p.values for p in again.points] == [p.values for p in plan.points]
    assert [p.values for p in other.points] != [p.values for p in plan.points]
    crossed = plan_sweep(scenario, ["parameters.congestion=0,1"], sample=f"lhs:{n}", ranges=ranges[:1])
    assert len(crossed.points) == 2 * n


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "cities.Nowhere.firms=1"],
     "--set cities.Nowhere.firms: no entry named 'Nowhere' in cities (A, B, St. Louis, Rest)"),
    (["--set", "parameters.netwrk_effect=1"], "parameters: unknown key 'netwrk_effect' (did you mean 'network_effect'?)"),
    (["--set", "parameters.network_effect=1.0,-1"],
     "with parameters.network_effect=-1: parameters.network_effect: Input should be greater than or equal to 0"),
    (["--set", "cities.A.firms.x=1"], "--set cities.A.firms.x: cities.A.firms is a value, not a mapping"),
    (["--set", "parameters..x=1"], "is not a dotted path"),
    (["--set", "parameters.congestion"], "--set parameters.congestion: expected PATH=v1,v2,..."),
    (["--set", "parameters.congestion=1,1"], "a value is listed twice"),
    (["--set", "parameters.congestion=1", "--sample", "lhs:3", "--range", "parameters.congestion=0:2"], "swept twice"),
    (["--sample", "lhs:4"], "--sample: needs at least one --range"),
    (["--range", "parameters.congestion=0:1"], "--range: needs --sample lhs:N"),
    (["--sample", "sobol:4", "--range", "parameters.congestion=0:1"], "--sample: expected lhs:N"),
    (["--sample", "lhs:3", "--range", "parameters.congestion=2:1"], "the lower bound must be below the upper one"),
    (["--sample", "lhs:3", "--range", "cities.A.firms=1.5:9"], "is a whole number; give whole bounds"),
    # on the counts engine a design of patchable numbers is validated at its ends and listed values
    (["--set", "engine=counts", "--sample", "lhs:3", "--range", "parameters.exit_rate=0.5:1.5"],
     "with parameters.exit_rate=1.5: parameters.exit_rate: Input should be less than or equal to 1"),
    (["--set", "engine=counts", "--set", "parameters.network_effect=1.0,-1"],
     "with parameters.network_effect=-1: parameters.network_effect: Input should be greater than or equal to 0"),
    (["--set", "engine=counts", "--set", "cities.Nowhere.talent=1,2"],
     "--set cities.Nowhere.talent: no entry named 'Nowhere' in cities (A, B, St. Louis, Rest)"),
])
def test_bad_paths_and_values_are_one_line_errors_before_anything_runs(scenario: Path, tmp_path: Path,
                                                                       args: list[str], message: str):
    out = tmp_path / "out"
    result = modu("sweep", scenario, *args, "--out", out, "--quiet")
    assert result.exit_code == 2
    assert result.stderr.startswith("modu: error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert not out.exists()


# ------------------------------------------------------------------ running
def test_sweep_tables_seeds_figures_and_a_point_equal_to_the_scenario_reproduces_modu_run(scenario: Path,
                                                                                          tmp_path: Path):
    out = tmp_path / "sweep"
    result = modu("sweep", scenario, "--set", "parameters.network_effect=0.8,1.1", "--set", "parameters.congestion=0,0.5",
                  "--out", out, "--executor", "serial", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert "4 points × 3 replications = 12 runs; 0 already stored, 12 run now" in result.stdout
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == [
        "point", "parameters.network_effect", "parameters.congestion", "replication", "seed", "spawn_key", "status",
        "firms_A", "firms_B", "firms_St. Louis", "firms_Rest", "hhi", "top1_share", "gini", "entropy", "leader"]
    assert len(summary) == 12 and (summary.status == "ok").all() and (summary.seed == 5).all()
    assert list(summary.spawn_key) == [f"[{r}]" for r in range(3)] * 4
    assert list(summary["parameters.network_effect"]) == [0.8] * 6 + [1.1] * 6
    metrics = pd.read_csv(out / "metrics.csv")
    assert len(metrics) == 12 * 9 and metrics.groupby(["point", "replication"]).size().eq(9).all()
    trajectories = pd.read_csv(out / "trajectories.csv")
    final = trajectories[trajectories.step == 8].pivot_table(index=["point", "replication"], columns="city", values="firms")
    assert (final["A"].to_numpy() == summary.firms_A.to_numpy()).all()
    assert pd.read_csv(out / "failures.csv").empty
    for stem in ("envelopes", "lock_in_by_point", "phase"):
        assert (out / "figures" / f"{stem}.png").exists() and (out / "figures" / f"{stem}.svg").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["runs"] == 12 and manifest["failed"] == 0
    assert len(manifest["definition"]["points"]) == 4 and "summary.csv" in manifest["files"]
    assert not (out / "INCOMPLETE").exists()

    # point 2 is the scenario as written (α = 1.1, γ = 0.5): its replications are modu run's
    run = tmp_path / "run"
    assert modu("run", scenario, "--out", run, "--executor", "serial", "--quiet", "--no-figures").exit_code == 0
    run_metrics = pd.read_csv(run / "metrics.csv")
    run_final = run_metrics[run_metrics.step == run_metrics.step.max()].reset_index(drop=True)
    point = summary[summary.point == 3].reset_index(drop=True)
    assert point["parameters.congestion"].eq(0.5).all()
    pd.testing.assert_series_equal(point.hhi, run_final.hhi)
    assert list(point.leader) == list(run_final.leader)
    assert point.hhi.nunique() > 1  # replications differ from each other


def test_swept_values_reach_the_model(tmp_path: Path):
    """Through the whole pipeline, a network effect above 1 tips the urn and one below evens it out."""
    urn = tmp_path / "urn.yaml"
    urn.write_text(URN)
    out = tmp_path / "urn"
    assert modu("sweep", urn, "--set", "parameters.network_effect=0.5,3.0", "--replications", "12", "--out", out,
                "--executor", "serial", "--quiet", "--no-figures").exit_code == 0
    summary = pd.read_csv(out / "summary.csv")
    hhi = summary.groupby("parameters.network_effect").hhi.mean()
    assert hhi[0.5] < 0.53  # shares pulled towards 1/2 (HHI 0.5)
    # α = 3 tips: the mean final HHI over 200 seeds is 0.90 (sd 0.09), so a 12-replication mean
    # falls below 0.75 with probability < 0.1%
    assert hhi[3.0] > 0.75
    p = lock_in_by_point(summary)
    assert np.allclose(p.sum(axis=1), 1.0) and set(p.columns) == {"X", "Y"}
    assert p.loc[1, "X"] == (summary[summary.point == 1].leader == "X").mean()


def test_results_do_not_depend_on_the_executor(scenario: Path, tmp_path: Path):
    outs = []
    for executor in ("serial", "processes:2"):
        out = tmp_path / executor.replace(":", "_")
        assert modu("sweep", scenario, "--set", "parameters.network_effect=0.8,1.3", "--out", out, "--executor", executor,
                    "--quiet", "--no-figures").exit_code == 0
        outs.append(out)
    for name in OUTPUTS:
        assert (outs[0] / f"{name}.csv").read_bytes() == (outs[1] / f"{name}.csv").read_bytes()


def test_a_sweep_killed_with_sigkill_resumes_to_the_same_results(tmp_path: Path):
    slow = tmp_path / "slow.yaml"
    slow.write_text(SLOW)
    total = 4 * 20
    args = ["sweep", str(slow), "--set", "parameters.network_effect=0.9,1.1,1.3,1.5", "--replications", "20",
            "--executor", "serial", "--quiet", "--no-figures"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "sim", *args, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(stored(killed / "sweep.sqlite")) < 3:
        assert proc.poll() is None, "the sweep ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = stored(killed / "sweep.sqlite")
    assert 3 <= len(before) < total, "not killed part-way"
    assert (killed / "INCOMPLETE").exists() and not (killed / "summary.csv").exists()

    resumed = subprocess.run([sys.executable, "-m", "sim", *args, "--out", str(killed)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(before)} already stored, {total - len(before)} run now" in resumed.stdout
    after = stored(killed / "sweep.sqlite")
    assert len(after) == total
    assert all(after[key] == value and value[2] == 1 for key, value in before.items())  # nothing recomputed
    assert all(after[key][2] == 2 for key in after.keys() - before.keys())

    whole = tmp_path / "whole"
    assert modu(*args, "--out", whole).exit_code == 0
    for name in OUTPUTS:
        assert (killed / f"{name}.csv").read_bytes() == (whole / f"{name}.csv").read_bytes()
    assert not (killed / "INCOMPLETE").exists()


def test_a_different_sweep_in_the_same_folder_is_refused(scenario: Path, tmp_path: Path):
    out = tmp_path / "out"
    base = ["sweep", scenario, "--out", out, "--executor", "serial", "--quiet", "--no-figures"]
    assert modu(*base, "--set", "parameters.network_effect=0.8,1.3").exit_code == 0
    summary = (out / "summary.csv").read_bytes()
    for other in (["--set", "parameters.network_effect=0.8,1.4"],
                  ["--set", "parameters.network_effect=0.8,1.3", "--replications", "4"],
                  ["--set", "parameters.network_effect=0.8,1.3", "--seed", "9"]):
        result = modu(*base, *other)
        assert result.exit_code == 2 and "holds a different sweep (made by: modu sweep" in result.stderr
        assert result.stderr.count("\n") == 1
    assert (out / "summary.csv").read_bytes() == summary
    again = modu(*base, "--set", "parameters.network_effect=0.8,1.3")
    assert again.exit_code == 0 and "6 already stored, 0 run now" in again.stdout

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine")
    result = modu("sweep", scenario, "--set", "parameters.congestion=1", "--out", plain, "--quiet")
    assert result.exit_code == 2 and "is not empty and holds no sweep" in result.stderr
    (plain / "sweep.sqlite").write_text("not a database")
    result = modu("sweep", scenario, "--set", "parameters.congestion=1", "--out", plain, "--quiet")
    assert result.exit_code == 2 and "sweep.sqlite is not a readable sweep store" in result.stderr


def test_a_folder_being_written_by_another_sweep_is_refused(scenario: Path, tmp_path: Path):
    out = tmp_path / "out"
    args = ["sweep", scenario, "--set", "parameters.congestion=1", "--out", out, "--executor", "serial", "--quiet",
            "--no-figures"]
    assert modu(*args).exit_code == 0
    with open(out / "sweep.lock") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running sweep holds it
        result = modu(*args)
    assert result.exit_code == 2 and "is being written by another running sweep" in result.stderr
    assert modu(*args).exit_code == 0


def test_a_failed_run_is_reported_recorded_and_retried_without_losing_the_others(scenario: Path, tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch):
    real = sweep_module.run_point

    def flaky(scenario, replications, seed):
        if scenario.parameters.network_effect == 1.3 and 1 in replications:
            raise RuntimeError("boom")
        return real(scenario, replications, seed)

    args = ["sweep", scenario, "--set", "parameters.network_effect=0.8,1.3", "--executor", "serial", "--quiet",
            "--no-figures"]
    out = tmp_path / "out"
    monkeypatch.setattr(sweep_module, "run_point", flaky)
    result = modu(*args, "--out", out)
    assert result.exit_code == 1
    assert ("modu: run failed: point 1 (parameters.network_effect=1.3), replication 1, seed 5, spawn key [1]: "
            "RuntimeError: boom") in result.stderr
    assert "1 of 6 runs failed" in result.stderr
    failures = pd.read_csv(out / "failures.csv")
    assert failures[["point", "replication", "seed", "error"]].values.tolist() == [[1, 1, 5, "RuntimeError: boom"]]
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.status) == ["ok"] * 4 + ["failed", "ok"] and summary.hhi.isna().sum() == 1
    assert not json.loads((out / "manifest.json").read_text())["complete"]

    monkeypatch.setattr(sweep_module, "run_point", real)
    retried = modu(*args, "--out", out)
    assert retried.exit_code == 0 and "5 already stored, 1 run now" in retried.stdout
    whole = tmp_path / "whole"
    assert modu(*args, "--out", whole).exit_code == 0
    for name in OUTPUTS:
        assert (out / f"{name}.csv").read_bytes() == (whole / f"{name}.csv").read_bytes()


def test_one_swept_parameter_draws_no_phase_diagram(scenario: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert modu("sweep", scenario, "--set", "parameters.network_effect=0.8,1.3", "--out", out, "--executor", "serial",
                "--quiet").exit_code == 0
    assert (out / "figures" / "envelopes.png").exists() and (out / "figures" / "lock_in_by_point.png").exists()
    assert not (out / "figures" / "phase.png").exists()


def test_plan_refuses_sweeps_beyond_the_limit(scenario: Path):
    with pytest.raises(ExperimentError, match="more than"):
        plan_sweep(scenario, ["parameters.congestion=" + ",".join(str(i) for i in range(1000))], replications=10_000)
