"""Modu installed from a wheel (no ``-e``) in a fresh virtual environment runs a shipped scenario, a user's own
scenario in an empty folder, and serves its page.

The shipped scenarios and calibration are package data, so nothing is read from
a source checkout: the commands run from an empty folder with the checkout off
the path. Slow (it builds a wheel and installs it and its dependencies), so it
runs in CI's slow job.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import venv
import zipfile
from pathlib import Path

import pytest

from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def run(*args: str | Path, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["MPLBACKEND"] = "Agg"
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel built by ``python -m build`` and its app extra installed; returns its bin/."""
    pytest.importorskip("build", reason="the test extra installs build: pip install -e '.[test]'")
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    built = run(sys.executable, "-m", "build", "--wheel", "--outdir", dist, ROOT, cwd=work)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(dist.glob("modu-*.whl"))
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    pip = run(bin_dir / "python", "-m", "pip", "install", "-q", f"modu[app] @ {wheel.as_uri()}", cwd=work)
    assert pip.returncode == 0, pip.stderr[-2000:]
    return bin_dir


def test_the_wheel_holds_no_checkout_paths_and_runs_a_shipped_scenario(installed: Path, tmp_path: Path):
    where = run(installed / "python", "-c", "import sim, sim.shipped; print(sim.__file__)", cwd=tmp_path)
    assert where.returncode == 0 and str(ROOT) not in where.stdout, where.stdout
    result = run(installed / "modu", "run", "baseline", "--replications", "2", "--executor", "serial", "--quiet",
                 "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["scenario"]["name"] == "baseline"
    assert manifest["scenario"]["calibration"].endswith("calibration/calibrated.yaml")
    assert "site-packages" in manifest["scenario"]["calibration"]  # the shipped calibration, not the checkout's
    assert (tmp_path / "out" / "figures" / "counts.png").exists()
    names = sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml"))
    shipped = run(installed / "modu", "validate", *names, cwd=tmp_path)  # every calibration they name is shipped too
    assert shipped.returncode == 0 and shipped.stdout.count(": ok (") == len(names), shipped.stdout + shipped.stderr
    assert f"china: {len(load_scenario(ROOT / 'scenarios' / 'china.yaml').cities)} cities" in shipped.stdout


def test_a_users_own_scenario_works_from_an_empty_folder(installed: Path, tmp_path: Path):
    """What a new user does with the wheel alone: a starter, a copy of a shipped file, shipped names, refusals."""
    modu = installed / "modu"
    made = run(modu, "init", "mine", "--from", "china", cwd=tmp_path)
    assert made.returncode == 0 and made.stdout.startswith("wrote mine.yaml (extends china)"), made.stderr
    checked = run(modu, "validate", "mine.yaml", cwd=tmp_path)
    cities = len(load_scenario(ROOT / "scenarios" / "china.yaml").cities)
    assert checked.returncode == 0 and checked.stdout.startswith(f"mine.yaml: ok (mine: {cities} cities"), checked.stderr
    assert checked.stderr == ""  # a calibration is inherited: nothing to warn about
    merged = run(modu, "validate", "--show-merged", "mine.yaml", cwd=tmp_path)
    assert merged.returncode == 0 and "#   calibration: the shipped calibration 'china' (" in merged.stdout
    assert "site-packages" in merged.stdout and "  network_effect: " in merged.stdout, merged.stdout[:2000]
    again = run(modu, "init", "mine", cwd=tmp_path)
    assert again.returncode == 2 and again.stderr == "modu: error: mine.yaml exists; choose another NAME or --out folder " \
                                                     "(nothing was written)\n"

    where = run(installed / "python", "-c", "from sim.scenario.resources import shipped_scenarios as s; "
                "print(s()['baseline'])", cwd=tmp_path)
    (tmp_path / "copy.yaml").write_bytes(Path(where.stdout.strip()).read_bytes())  # cp $(shipped)/baseline.yaml .
    copied = run(modu, "run", "copy.yaml", "--replications", "2", "--executor", "serial", "--quiet", "--no-figures",
                 "--out", "out", cwd=tmp_path)
    assert copied.returncode == 0, copied.stderr
    assert copied.stderr.splitlines() == [
        f"modu: warning: copy.yaml: calibration: no file at {tmp_path.resolve().parent}/calibration/calibrated.yaml; "
        "took the shipped calibration 'baseline' (write `calibration: baseline` to say so)"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert "site-packages" in manifest["scenario"]["calibration"]

    (tmp_path / "named.yaml").write_text("extends: baseline\nname: named\ncalibration: china\n")
    (tmp_path / "typo.yaml").write_text("extends: baseline\ncities: [{name: ShenZhen, talent: 1}]\n")
    (tmp_path / "plain.yaml").write_text("name: plain\ncities: [{name: A, firms: 10}, {name: B, firms: 5}]\n")
    named = run(modu, "validate", "named.yaml", cwd=tmp_path)
    assert named.returncode == 0 and named.stderr == "", named.stderr
    typo = run(modu, "validate", "typo.yaml", cwd=tmp_path)
    assert typo.returncode == 2 and typo.stderr == ("modu: error: typo.yaml: cities[ShenZhen]: no city 'ShenZhen' in the "
                                                    "parent (did you mean 'Shenzhen'?)\n")
    plain = run(modu, "validate", "plain.yaml", cwd=tmp_path)
    assert plain.returncode == 0 and plain.stderr.startswith("modu: warning: plain.yaml: names no calibration")
    assert plain.stderr.count("\n") == 1


def test_the_wheel_serves_the_default_page(installed: Path, tmp_path: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([str(installed / "modu"), "app", "--port", str(port)], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    try:
        deadline, page = time.monotonic() + 120, ""
        while time.monotonic() < deadline and not page:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode("utf-8", "replace")
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(1)
        assert page, "the page did not answer within 120 s"
        assert "solara" in page.lower() and "<title>Modu — baseline</title>" in page
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_wheel_declares_its_licence_and_names_its_own_install_command(installed: Path, tmp_path: Path):
    """SPDX licence metadata with the licence files; an extra's install command names the wheel it came from."""
    wheel = next((installed.parent.parent / "dist").glob("modu-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        names = archive.namelist()
    assert "License-Expression: MIT" in metadata.splitlines()
    assert {"License-File: LICENSE", "License-File: sim/reporting/geo/LICENSE.md"} <= set(metadata.splitlines())
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    command = run(installed / "python", "-c", "from sim._install import install_command; print(install_command('dask'))",
                  cwd=tmp_path)
    assert command.stdout.strip() == f'pip install "modu[dask] @ {wheel.as_uri()}"', command.stderr
