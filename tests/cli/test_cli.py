"""End-to-end checks of the ``modu`` command line on small scenarios."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from sim.cli import main
from sim.scenario import load_scenario, validate

ROOT = Path(__file__).resolve().parents[2]

SMALL = """\
name: small
time: {start: 2016, end: 2018, steps_per_year: 4}
seed: 7
replications: 3
cities:
  - {name: A, firms: 400, lat: 30, lon: 110, anchors: [{name: Big, sector: downstream}],
     policy: {budget: 5, allocation: {compute: 0.5, data: 0.25, anchor: 0.25}}}
  - {name: B, firms: 300, lat: 31, lon: 120}
  - {name: Rest, firms: 200, pool: true}
"""


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def modu(*args: str) -> Result:
    """Run the CLI in-process (fast); see test_python_dash_m for the real entry point."""
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Result(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


def test_run_writes_tables_figures_and_manifest(small: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = modu("run", str(small), "--out", str(out), "--executor", "serial", "--quiet")
    assert result.returncode == 0, result.stderr
    for name in ("firms", "cities", "flows", "metrics"):
        assert (out / f"{name}.csv").stat().st_size > 0
    assert not (out / "INCOMPLETE").exists()
    firms = pd.read_csv(out / "firms.csv")
    assert list(firms.columns) == ["replication", "step", "year", "city", "sector", "firms",
                                   "births", "deaths", "moves_in", "moves_out"]
    assert sorted(firms.replication.unique()) == [0, 1, 2]
    assert firms.step.max() == 8 and firms.year.max() == 2018.0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["replications"] == 3 and manifest["complete"]
    assert manifest["scenario"]["name"] == "small" and len(manifest["scenario_hash"]) == 64
    assert set(manifest["files"]) >= {"firms.csv", "figures/counts.png", "figures/lock_in.svg"}
    for stem in ("counts", "shares", "growth_accounting", "spending", "flows", "map", "lock_in"):
        assert (out / "figures" / f"{stem}.png").exists() and (out / "figures" / f"{stem}.svg").exists()


def test_results_do_not_depend_on_the_executor(small: Path, tmp_path: Path):
    outs = []
    for executor in ("serial", "processes:2"):
        out = tmp_path / executor.replace(":", "_")
        assert modu("run", str(small), "--out", str(out), "--executor", executor, "--quiet",
                    "--no-figures").returncode == 0
        outs.append(out)
    for name in ("firms", "cities", "flows", "metrics"):
        assert (outs[0] / f"{name}.csv").read_bytes() == (outs[1] / f"{name}.csv").read_bytes()


def test_seed_option_changes_results_and_replication_r_is_stable(small: Path, tmp_path: Path):
    a, b, c = (tmp_path / n for n in "abc")
    assert modu("run", str(small), "--out", str(a), "--seed", "1", "--quiet", "--no-figures").returncode == 0
    assert modu("run", str(small), "--out", str(b), "--seed", "2", "--quiet", "--no-figures").returncode == 0
    assert modu("run", str(small), "--out", str(c), "--seed", "1", "--replications", "1", "--quiet",
                "--no-figures").returncode == 0
    fa, fb, fc = (pd.read_csv(p / "firms.csv") for p in (a, b, c))
    assert not fa.equals(fb)
    pd.testing.assert_frame_equal(fa[fa.replication == 0].reset_index(drop=True), fc)


@pytest.mark.parametrize("text, field", [
    ("name: x\ncities: [{name: A, firms: -1}]\n", "cities[A].firms"),
    ("name: x\ncities: [{name: A, firms: 10, policy: {budget: -3}}]\n", "cities[A].policy.budget"),
    ("name: x\ncities: [{name: A, firms: 10}]\nbogus: 1\n", "bogus"),
    ("name: x\ncities: [{name: A, firms: 10}, {name: A, firms: 5}]\n", "cities[A]: duplicate city 'A'"),
    ("name: x\nsectors: {a: 0.5, b: 0.4}\ncities: [{name: A, firms: 10}]\n", "sectors"),
    ("name: x\ncities: [{name: A, firms: 10, policy: {allocation: {compute: 0.9, data: 0.9}}}]\n",
     "cities[A].policy.allocation"),
    ("name: x\nparameters: {network_effect: .nan}\ncities: [{name: A, firms: 10}]\n", "parameters.network_effect"),
    ("name: x\ncities: [{name: A, firms: 10}]\nevents: [{year: 2030, city: A, invest: {compute: 1}}]\n",
     "events[0].year"),
    ("name: x\ncities: [{name: A, firms: 10}]\nevents: [{year: 2017, city: Nowhere, budget: 1}]\n",
     "events[0].city"),
    ("name: [unclosed\n", "invalid YAML"),
    ("!!python/object/apply:os.system ['echo hi']\n", "invalid YAML"),
])
def test_bad_scenarios_are_refused_with_one_line_and_exit_2(tmp_path: Path, text: str, field: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    out = tmp_path / "never"
    result = modu("run", str(path), "--out", str(out))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"modu: error: {path}:") and field in lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_validate_reports_each_file(small: Path, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncities: []\n")
    result = modu("validate", str(small), str(bad))
    assert result.returncode == 2
    assert f"{small}: ok" in result.stdout and f"{bad}: cities" in result.stderr


def test_missing_file_and_bad_executor(small: Path, tmp_path: Path):
    missing = modu("run", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr and "Traceback" not in missing.stderr
    bad = modu("run", str(small), "--executor", "threads", "--out", str(tmp_path / "o"))
    assert bad.returncode == 2 and "--executor" in bad.stderr and not (tmp_path / "o").exists()


def test_baseline_is_valid():
    root = Path(__file__).resolve().parents[2]
    assert modu("validate", str(root / "scenarios" / "baseline.yaml")).returncode == 0


def test_python_dash_m_is_the_modu_command(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncities: [{name: A, firms: 1.5}]\n")
    result = subprocess.run([sys.executable, "-m", "sim", "validate", str(bad)], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "cities[A].firms" in result.stderr
    assert subprocess.run([sys.executable, "-m", "sim", "--help"], capture_output=True).returncode == 0


def test_minimal_one_sector_scenario_is_valid_and_runs(tmp_path: Path):
    """Spec §4: one sector, no levers and only network_effect set is a valid, minimal model."""
    path = tmp_path / "urn.yaml"
    path.write_text("name: urn\nsectors: {all: 1.0}\nparameters: {network_effect: 1.0}\n"
                    "cities: [{name: A, firms: 10}, {name: B, firms: 10}]\n")
    result = modu("run", str(path), "--out", str(tmp_path / "o"), "--replications", "2", "--no-figures", "--quiet")
    assert result.returncode == 0, result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\nsectors: {all: 1.0}\nparameters: {lever_effects: {compute: {up: 1}}}\n"
                   "cities: [{name: A, firms: 10}]\n")
    result = modu("validate", str(bad))
    assert result.returncode == 2 and "parameters.lever_effects.compute.up: unknown sector" in result.stderr


@pytest.mark.parametrize("args, words", [
    (["run", "x.yaml", "--replications", "0"], "--replications"),
    (["run"], "SCENARIO"),
    (["nonsense"], "nonsense"),
    (["run", "x.yaml", "--bogus"], "--bogus"),
])
def test_usage_errors_are_one_line_with_exit_2(args: list[str], words: str):
    result = modu(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modu: error:") and words in lines[0], result.stderr


def test_bare_modu_prints_the_help_with_exit_0():
    bare, helped = modu(), modu("--help")
    assert bare.returncode == 0 and bare.stderr == ""
    assert bare.stdout == helped.stdout and bare.stdout.startswith("Usage: ") and "Commands:" in bare.stdout


class _Dist:
    """A stand-in for importlib.metadata's Distribution with a given direct_url.json (None: none)."""

    def __init__(self, direct_url: dict | None):
        self.text = None if direct_url is None else json.dumps(direct_url)

    def read_text(self, name: str) -> str | None:
        assert name == "direct_url.json"
        return self.text


def test_install_command_follows_the_way_modu_was_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A checkout (where the running package sits beside Modu's pyproject.toml), a wheel file, an index."""
    from sim import _install

    assert _install.CHECKOUT == ROOT  # these tests run from the checkout
    monkeypatch.chdir(ROOT)
    assert _install.install_command("app") == 'pip install -e ".[app]"'
    monkeypatch.chdir(tmp_path)
    assert _install.install_command("dask") == f'pip install -e "{ROOT}[dask]"'
    site = tmp_path / "site-packages"  # a wheel's sim/ has no pyproject.toml beside it
    site.mkdir()
    monkeypatch.setattr(_install, "CHECKOUT", site)
    wheel = "file:///tmp/w/modu-0.1.0-py3-none-any.whl"
    for direct_url, command in [({"url": wheel, "archive_info": {}}, f'pip install "modu[app] @ {wheel}"'),
                                (None, 'pip install "modu[app]"')]:
        monkeypatch.setattr(_install, "distribution", lambda name, d=direct_url: _Dist(d))
        assert _install.install_command("app") == command
    (site / "pyproject.toml").write_text('[project]\nname = "other"\n')  # another project's file is not a checkout
    assert _install.install_command("app") == 'pip install "modu[app]"'


def test_help_still_exits_0_and_default_out_cannot_climb():
    from sim.cli.common import default_out

    assert modu("--help").returncode == 0 and "Modu" in modu("--help").stdout
    assert default_out("..") == Path("outputs") / "_" and default_out(".") == Path("outputs") / "_"
    assert default_out("a/../b") == Path("outputs") / "a_.._b"


# ---------------------------------------------------------------- a user's own scenario: init, show-merged, warnings
SHIPPED = Path(__file__).resolve().parents[2] / "scenarios"


def uncommented(text: str) -> str:
    """A starter with every example switched on: each ``#key:`` line and the ``#  `` lines under it lose their '#'."""
    out, inside = [], False
    for line in text.splitlines():
        inside = bool(re.match(r"#[a-z_]+:", line)) or (inside and line.startswith("#  "))
        out.append(line[1:] if inside else line)
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("parent", sorted(p.stem for p in SHIPPED.glob("*.yaml")))
def test_init_writes_a_starter_that_runs_as_written_and_with_its_examples(tmp_path: Path, parent: str):
    result = modu("init", "mine", "--from", parent, "--out", str(tmp_path / "new"))
    path = tmp_path / "new" / "mine.yaml"
    assert result.returncode == 0 and result.stdout.startswith(f"wrote {path} (extends {parent})"), result.stderr
    text = path.read_text(encoding="utf-8")
    assert text.count("\nextends: ") == 1 and f"extends: {parent}  #" in text
    starter, base = load_scenario(path), load_scenario(SHIPPED / f"{parent}.yaml")
    assert starter.resolved() == {**base.resolved(), "name": "mine",
                                  "description": "The question this scenario answers, in a sentence or two."}
    changed = load_scenario(write_text(tmp_path / "on.yaml", uncommented(text)))
    assert changed.time.end == base.time.end + 3 and changed.parameters.network_effect == 1.0
    assert [c.name for c in changed.cities] == [c.name for c in base.cities] + ["NewCity"]
    assert sum(c.policy is not None and c.policy.budget == 40 for c in changed.cities) == 1
    assert len(changed.events) == 1 and changed.calibration == base.calibration


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_init_never_overwrites_and_refuses_a_bad_name(tmp_path: Path):
    existing = write_text(tmp_path / "mine.yaml", "mine\n")
    for args, words in ((["init", "mine", "--out", str(tmp_path)], f"modu: error: {existing} exists; choose another NAME"),
                        (["init", "a/b", "--out", str(tmp_path)], "modu: error: NAME: 'a/b' must be"),
                        (["init", "x.yaml", "--out", str(tmp_path)], "modu: error: NAME: 'x.yaml' must be"),
                        (["init", "x", "--from", "chian", "--out", str(tmp_path)],
                         "modu: error: --from: no shipped scenario 'chian' (did you mean 'china'?)"),
                        (["init", "x", "--out", str(existing)], "modu: error: Invalid value for '--out'")):
        result = modu(*args)
        assert result.returncode == 2 and result.stderr.startswith(words) and result.stderr.count("\n") == 1, result.stderr
    assert existing.read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == ["mine.yaml"]


def test_show_merged_prints_the_scenario_that_runs_with_each_value_labelled(tmp_path: Path):
    (tmp_path / "cal").mkdir()
    write_text(tmp_path / "cal" / "calibrated.yaml", "parameters: {congestion: 0.7}\ncities: {A: {attractiveness: 0.25}}\n")
    write_text(tmp_path / "parent.yaml", "name: p\ncalibration: cal/calibrated.yaml\ntime: {start: 2016, end: 2020}\n"
                                         "cities: [{name: A, firms: 10}, {name: B, firms: 5}]\n"
                                         "events: [{year: 2017, city: A, budget: 3}]\n")
    child = write_text(tmp_path / "child.yaml", "extends: parent.yaml\nname: c\ntime: {end: 2022}\n"
                                                "cities: [{name: B, talent: 1}]\n")
    result = modu("validate", "--show-merged", str(child))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    text = result.stdout
    lines = text.splitlines()
    for expected in ("name: c  # child.yaml", "  start: 2016  # parent.yaml", "  end: 2022  # child.yaml",
                     "  congestion: 0.7  # calibration", "  network_effect: 1.1  # default",
                     "  - name: B  # listed first by parent.yaml", "    talent: 1.0  # child.yaml",
                     "    attractiveness: 0.25  # calibration", "    attractiveness: 0.0  # default",
                     "events: [{year: 2017.0, city: A, budget: 3.0}]  # parent.yaml",
                     f"#   calibration: {(tmp_path / 'cal' / 'calibrated.yaml').resolve()}"):
        assert expected in lines, (expected, text)
    scenario = load_scenario(child)
    assert validate(yaml.safe_load(text)).digest() == scenario.digest()  # the text is the scenario that runs
    saved = write_text(tmp_path / "saved.yaml", text)
    assert load_scenario(saved).digest() == scenario.digest()
    both = modu("validate", "--show-merged", str(child), "baseline")
    docs = list(yaml.safe_load_all(both.stdout))
    assert both.returncode == 0 and [d["name"] for d in docs] == ["c", "baseline"]
    refused = modu("validate", "--show-merged", str(tmp_path / "nope.yaml"), str(child))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and yaml.safe_load(refused.stdout)["name"] == "c"


@pytest.mark.filterwarnings("always::sim.scenario.errors.UncalibratedWarning")
def test_scenario_warnings_are_one_line_each_and_do_not_fail_the_command(tmp_path: Path):
    # a copy of a scenario that names its parent and calibration by paths relative to the shipped folder
    text = (SHIPPED / "china.yaml").read_text(encoding="utf-8").replace("extends: baseline\n", "extends: baseline.yaml\n")
    text = text.replace("calibration: china ", "calibration: ../calibration/china/calibrated.yaml ")
    copy = write_text(tmp_path / "copy.yaml", text)
    result = modu("validate", str(copy))
    cities = len(load_scenario(SHIPPED / "china.yaml").cities)
    assert result.returncode == 0 and f"{copy}: ok (china: {cities} cities" in result.stdout
    assert result.stderr.splitlines() == [
        f"modu: warning: {copy}: extends: no file at {tmp_path.resolve()}/baseline.yaml; took the shipped scenario "
        "'baseline' (write `extends: baseline` to say so)",
        f"modu: warning: {copy}: calibration: no file at {tmp_path.resolve().parent}/calibration/china/calibrated.yaml; "
        "took the shipped calibration 'china' (write `calibration: china` to say so)"]
    plain = write_text(tmp_path / "plain.yaml", "name: x\ncities: [{name: A, firms: 1}]\n")
    result = modu("validate", str(plain))
    assert result.returncode == 0 and result.stderr.splitlines() == [
        f"modu: warning: {plain}: names no calibration and no city's attractiveness, so it runs on the code defaults "
        "(write `calibration: baseline` for the shipped estimates, or `calibration: null` if the defaults are meant)"]
    bad = write_text(tmp_path / "bad.yaml", "name: x\ncities: [{name: A, firms: -1}]\n")
    assert modu("validate", str(bad)).stderr.startswith(f"modu: error: {bad}: ")  # a refusal is all it says
    assert modu("validate", str(bad)).stderr.count("\n") == 1
