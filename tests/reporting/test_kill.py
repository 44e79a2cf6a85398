"""A killed ``modu run`` never leaves a silently truncated output (issue 8).

Whenever the process dies, its output folder is absent, complete (``manifest.json``,
no ``INCOMPLETE``, every file matching the manifest's SHA-256), or marked with
``INCOMPLETE``; and every visible file in it is whole: byte for byte the file an
uninterrupted run writes (runs are deterministic). Real ``SIGKILL`` at seeded random
moments, some during the writing phase; and in-process, a crash at every rename.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.experiments.ensemble import run_ensemble
from sim.reporting import files as outputs
from sim.reporting.files import INCOMPLETE, sha256
from sim.reporting.run import write_run
from sim.scenario import load_scenario

SCENARIO = """\
name: kill
time: {start: 2016, end: 2020, steps_per_year: 4}
seed: 5
replications: 6
cities:
  - {name: A, firms: 3000, lat: 30, lon: 110, policy: {budget: 5, allocation: {compute: 0.5, data: 0.25, anchor: 0.25}}}
  - {name: B, firms: 2000, lat: 31, lon: 120}
  - {name: Rest, firms: 1000, pool: true}
"""


def command(path: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "sim", "run", str(path), "--out", str(out), "--executor", "serial", "--quiet"]


def visible_files(folder: Path) -> dict[str, bytes]:
    """Every file a reader would take for an output: not hidden (``.NAME.XXXXXXXX.tmp`` are unfinished writes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)}


def check_folder(out: Path, reference: dict[str, bytes]) -> str:
    """The invariant after a kill; returns which state the folder is in."""
    if not out.exists():
        return "absent"
    files = visible_files(out)
    for name, data in files.items():  # whole files only, whatever the state
        if name not in (INCOMPLETE, "manifest.json"):
            assert data == reference[name], f"{name} differs from an uninterrupted run's (truncated?)"
    if "manifest.json" in files and INCOMPLETE not in files:
        manifest = json.loads(files["manifest.json"])
        assert manifest["complete"] is True
        assert {name: sha256(out / name) for name in manifest["files"]} == manifest["files"]
        assert set(files) == {*manifest["files"], "manifest.json"}
        return "complete"
    assert INCOMPLETE in files, f"folder neither complete nor marked incomplete: {sorted(files)}"
    return "incomplete"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict[str, bytes], float, float]:
    """An uninterrupted run: its files, its duration and when its writing phase began (seconds)."""
    root = tmp_path_factory.mktemp("kill")
    path = root / "kill.yaml"
    path.write_text(SCENARIO)
    out = root / "reference"
    start = time.perf_counter()
    process = subprocess.Popen(command(path, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    writing = None
    while process.poll() is None:
        if writing is None and out.exists():
            writing = time.perf_counter() - start
        time.sleep(0.002)
    assert process.returncode == 0, process.stderr.read()
    duration = time.perf_counter() - start
    files = visible_files(out)
    assert check_folder(out, files) == "complete"
    return path, files, duration, writing or duration


def kill_at(path: Path, out: Path, delay: float, after_writing_starts: bool) -> None:
    """Start ``modu run`` and SIGKILL its process group ``delay`` s after it starts (or after its folder appears)."""
    process = subprocess.Popen(command(path, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        if after_writing_starts:
            while not out.exists() and process.poll() is None:
                time.sleep(0.001)
        time.sleep(delay)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_sigkill_at_random_moments(reference, tmp_path: Path):
    """Seeded kill times: one anywhere in the run, one during the writing phase, one early in it (again earlier
    until it lands mid-write), one rewriting a complete folder."""  # noqa: D205
    path, files, duration, writing = reference
    rng = random.Random(8)
    states = []
    for i, (delay, in_writing) in enumerate([(rng.uniform(0, duration), False),
                                             (rng.uniform(0, duration - writing), True)]):
        out = tmp_path / f"out{i}"
        kill_at(path, out, delay, in_writing)
        states.append(check_folder(out, files))
    # One surely mid-write: early in the writing phase, and earlier again each time the run outpaced the kill (a
    # machine less busy than when the reference was timed writes faster).
    latest = 0.3 * (duration - writing)
    for attempt in range(6):
        out = tmp_path / f"mid{attempt}"
        kill_at(path, out, rng.uniform(0, latest), True)
        states.append(check_folder(out, files))
        if states[-1] == "incomplete":
            break
        latest /= 4
    # Killed while rewriting a complete folder: the old manifest must not vouch for a half-new folder.
    out = tmp_path / "rewrite"
    shutil.copytree(reference[0].parent / "reference", out)
    kill_at(path, out, rng.uniform(0, duration), False)
    states.append(check_folder(out, files))
    assert "incomplete" in states, states  # the writing phase was hit at least once


@pytest.mark.slow
def test_sigkill_at_many_moments(reference, tmp_path: Path):
    path, files, duration, writing = reference
    rng = random.Random(9)
    states = []
    for i in range(16):
        in_writing = i % 2 == 1
        out = tmp_path / f"out{i}"
        kill_at(path, out, rng.uniform(0, duration - writing if in_writing else duration), in_writing)
        states.append(check_folder(out, files))
    assert "incomplete" in states, states


class Crash(BaseException):
    """Stands for the process dying (not an Exception: nothing may catch it)."""


def test_a_crash_at_every_rename_leaves_no_truncated_file(tmp_path: Path, monkeypatch):
    """In-process and exhaustive: the write dies at the k-th rename (k = 0, 1, ...) and mid-way through a file."""
    path = tmp_path / "kill.yaml"
    path.write_text(SCENARIO)
    ensemble = run_ensemble(load_scenario(path), replications=2, executor="serial", progress=False)
    clean = tmp_path / "clean"
    write_run(ensemble, clean, figures=False)  # figures are more of the same renames (the SIGKILL tests draw them)
    reference = visible_files(clean)
    real_replace = os.replace
    k = 0
    while True:
        calls = 0

        def replace(src, dst, limit=k):
            nonlocal calls
            if calls == limit:
                raise Crash
            calls += 1
            real_replace(src, dst)

        out = tmp_path / f"crash{k}"
        monkeypatch.setattr(outputs.os, "replace", replace)
        try:
            write_run(ensemble, out, figures=False)
        except Crash:
            pass
        else:
            break
        finally:
            monkeypatch.setattr(outputs.os, "replace", real_replace)
        assert check_folder(out, reference) in ("absent", "incomplete")
        if out.exists():
            assert not list(out.rglob(".*.tmp"))  # an exception, unlike a kill, cleans its temporary file up
        k += 1
    assert k == 6 and check_folder(out, reference) == "complete"  # the marker, 4 CSVs and the manifest


def test_a_crash_inside_a_csv_write_leaves_no_partial_csv(tmp_path: Path, monkeypatch):
    path = tmp_path / "kill.yaml"
    path.write_text(SCENARIO)
    ensemble = run_ensemble(load_scenario(path), replications=2, executor="serial", progress=False)
    real_writer = csv.writer

    class HalfThenDie:
        """The csv writer of the first table: it writes half of the rows, then the process 'crashes'."""

        def __init__(self, handle, **kwargs):
            self.writer = real_writer(handle, **kwargs)

        def writerow(self, row):
            self.writer.writerow(row)

        def writerows(self, rows):
            rows = list(rows)
            self.writer.writerows(rows[:len(rows) // 2])
            raise Crash

    monkeypatch.setattr(csv, "writer", HalfThenDie)
    out = tmp_path / "out"
    with pytest.raises(Crash):
        write_run(ensemble, out)
    assert (out / INCOMPLETE).exists() and not (out / "firms.csv").exists() and not (out / "manifest.json").exists()
