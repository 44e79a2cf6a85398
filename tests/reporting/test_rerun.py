"""``modu rerun``: a run's manifest reproduces it byte for byte; a bad manifest is one line and exit 2."""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cli import main
from sim.reporting.files import package_versions
from sim.scenario import digest_of

SMALL = """\
name: small
time: {start: 2016, end: 2018, steps_per_year: 4}
seed: 7
replications: 3
sectors: {upstream: 0.15, midstream: 0.25, downstream: 0.6}
cities:
  - {name: A, firms: 400, lat: 30, lon: 110, anchors: [{name: Big, sector: downstream}],
     policy: {budget: 5, allocation: {compute: 0.5, data: 0.25, anchor: 0.25}, strategy: best_response}}
  - {name: B, firms: 300, lat: 31, lon: 120, policy: {budget: 3, strategy: imitate}}
  - {name: Rest, firms: 200, pool: true}
events: [{year: 2017, city: B, invest: {compute: 10}}]
"""


def modu(*args: str, cwd: Path | None = None):
    before = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, list(args))
    finally:
        os.chdir(before)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A run with figures, on two worker processes; returns its folder."""
    root = tmp_path_factory.mktemp("rerun")
    path = root / "small.yaml"
    path.write_text(SMALL)
    result = modu("run", str(path), "--out", str(root / "run"), "--executor", "processes:2", "--quiet")
    assert result.exit_code == 0, result.stderr
    return root / "run"


@pytest.fixture(scope="module")
def recorded_without_figures(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rerun_nofig")
    path = root / "small.yaml"
    path.write_text(SMALL.replace("replications: 3", "replications: 2"))
    result = modu("run", str(path), "--out", str(root / "run"), "--executor", "serial", "--quiet", "--no-figures")
    assert result.exit_code == 0, result.stderr
    return root / "run"


def test_rerun_reproduces_every_file_byte_for_byte_from_the_manifest_alone(recorded: Path, tmp_path: Path):
    """The scenario file is edited, then moved away: the rerun uses the scenario the manifest recorded."""
    source = recorded.parent / "small.yaml"
    source.write_text(SMALL.replace("firms: 400", "firms: 999"))
    source.rename(recorded.parent / "moved.yaml")
    out = tmp_path / "again"
    result = modu("rerun", str(recorded / "manifest.json"), "--out", str(out), "--executor", "serial", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # same installation: no version warning
    original, again = files_of(recorded), files_of(out)
    assert any(name.endswith(".svg") for name in original) and any(name.endswith(".png") for name in original)
    for name, data in original.items():
        if name != "manifest.json":
            assert again[name] == data, f"{name} differs"
    assert set(again) == set(original)
    n = len(original) - 1
    assert result.stdout.startswith(f"reproduced byte for byte: {n} of {n} files (small, seed 7, 3 replications)")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rerun_of"] == {"manifest": str(recorded / "manifest.json"),
                                    "scenario_hash": json.loads((recorded / "manifest.json").read_text())["scenario_hash"]}


def test_the_manifest_keeps_the_order_of_sectors(recorded: Path):
    """The order of sectors decides the random stream; a manifest with sorted keys could not be rerun."""
    manifest = json.loads((recorded / "manifest.json").read_text())
    assert list(manifest["scenario"]["sectors"]) == ["upstream", "midstream", "downstream"]
    assert digest_of(manifest["scenario"]) == manifest["scenario_hash"]
    reordered = dict(manifest["scenario"], sectors={"downstream": 0.6, "midstream": 0.25, "upstream": 0.15})
    assert digest_of(reordered) != manifest["scenario_hash"]


def test_the_default_output_folder_is_beside_the_recorded_one(recorded_without_figures: Path):
    result = modu("rerun", str(recorded_without_figures / "manifest.json"), "--executor", "serial", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert (recorded_without_figures.parent / "run-rerun" / "manifest.json").exists()


def write_manifest(folder: Path, record: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.json"
    path.write_text(json.dumps(record, indent=2))
    return path


def test_a_version_difference_is_one_warning_line(recorded_without_figures: Path, tmp_path: Path):
    record = json.loads((recorded_without_figures / "manifest.json").read_text())
    record["versions"]["numpy"] = "0.0.1"
    path = write_manifest(tmp_path / "edited", record)
    result = modu("rerun", str(path), "--out", str(tmp_path / "out"), "--executor", "serial", "--quiet")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "modu: warning: installed versions differ from the manifest's, results may differ: "
        f"numpy {package_versions()['numpy']} (recorded 0.0.1)"]


def test_files_that_do_not_match_the_record_are_named_with_exit_1(recorded_without_figures: Path, tmp_path: Path):
    record = json.loads((recorded_without_figures / "manifest.json").read_text())
    record["files"]["metrics.csv"] = "0" * 64
    path = write_manifest(tmp_path / "edited", record)
    result = modu("rerun", str(path), "--out", str(tmp_path / "out"), "--executor", "serial", "--quiet")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"modu: rerun: 1 of 4 files differ from the record: metrics.csv "
                                          f"(rerun in {tmp_path / 'out'}/)"]


def edited(record: dict, change) -> dict:
    record = copy.deepcopy(record)
    change(record)
    return record


def rehash(record: dict) -> None:
    record["scenario_hash"] = digest_of(record["scenario"])


BAD = {
    "tool": (lambda r: r.pop("tool"), "tool: not a modu manifest"),
    "scenario": (lambda r: r.pop("scenario"), "scenario: missing"),
    "tampered": (lambda r: r["scenario"]["cities"][0].update(firms=401), "scenario_hash: does not match"),
    "hash": (lambda r: r.update(scenario_hash=None), "scenario_hash: does not match"),
    "seed": (lambda r: r.update(seed="7"), "seed: must be a whole number"),
    "negative_seed": (lambda r: r.update(seed=-1), "seed: must be a whole number"),
    "replications": (lambda r: r.update(replications=0), "replications: must be a whole number"),
    "spawn_keys": (lambda r: r.update(spawn_keys=[[0], [5]]), "spawn_keys: must be"),
    "files": (lambda r: r.update(files={"firms.csv": "xyz"}), "files: must map each file"),
    "versions": (lambda r: r.update(versions=[1]), "versions: must map"),
    "incomplete": (lambda r: r.update(complete=False), "complete: the recorded run did not complete"),
    "rule": (lambda r: r.update(seed_rule="something else"), "seed_rule: 'something else' is not this modu's rule"),
    "invalid": (lambda r: (r["scenario"]["cities"][0].update(firms=-1), rehash(r)),
                "scenario: cities[A].firms: Input should be greater than or equal to 0"),
    "unknown": (lambda r: (r["scenario"].update(bogus=1), rehash(r)), "scenario: (top level): unknown key 'bogus'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_manifest_is_refused_in_one_line_with_exit_2(recorded_without_figures: Path, tmp_path: Path, case: str):
    change, expected = BAD[case]
    record = edited(json.loads((recorded_without_figures / "manifest.json").read_text()), change)
    path = write_manifest(tmp_path / "m", record)
    refused(path, tmp_path, expected)


def refused(path: Path, tmp_path: Path, expected: str) -> None:
    out = tmp_path / "never"
    result = modu("rerun", str(path), "--out", str(out), "--executor", "serial", "--quiet", cwd=tmp_path)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"modu: error: {path}: ") and expected in lines[0], lines
    assert not out.exists()


@pytest.mark.parametrize("content, expected", [
    (None, "(file): cannot read: No such file or directory"),
    (b"", "(file): cannot read a JSON manifest: Expecting value"),
    (b"\xff\xfe{}", "(file): cannot read a JSON manifest: 'utf-8' codec can't decode"),
    (b"[1, 2]", "(top level): a manifest is a JSON object, got list"),
    (b"[" * 100_000 + b"]" * 100_000, "(file): cannot read a JSON manifest: nested too deeply"),
    (b'{"tool": "modu", "scenario": "x"}', "scenario: missing"),
])
def test_an_unreadable_manifest_is_refused_in_one_line_with_exit_2(tmp_path: Path, content, expected):
    path = tmp_path / "manifest.json"
    if content is not None:
        path.write_bytes(content)
    refused(path, tmp_path, expected)


def test_a_folder_or_the_recorded_folder_as_output_is_refused(recorded_without_figures: Path, tmp_path: Path):
    refused(tmp_path, tmp_path, "(file): cannot read: not a regular file")
    manifest = recorded_without_figures / "manifest.json"
    result = modu("rerun", str(manifest), "--out", str(recorded_without_figures), "--quiet")
    assert result.exit_code == 2 and "is the recorded run's own folder" in result.stderr


LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**20), st.floats(allow_nan=True), st.text(max_size=5),
                   st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_manifests_rerun_or_are_refused_in_one_line(recorded_without_figures: Path, tmp_path: Path, data):
    """Random edits of a manifest (with or without a matching hash): exit 0 or 1 with a complete folder, or exit 2,
    one line and nothing written."""
    record = json.loads((recorded_without_figures / "manifest.json").read_text())
    for _ in range(data.draw(st.integers(1, 3))):
        node, path = record, []
        while isinstance(node, dict | list) and node and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
            path.append(key)
            node = node[key]
        if not path:
            continue
        parent = record
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(LEAVES)
    if data.draw(st.booleans()) and isinstance(record.get("scenario"), dict):
        rehash(record)
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # one per example
    manifest = write_manifest(folder, record)
    out = folder / "out"
    result = modu("rerun", str(manifest), "--out", str(out), "--executor", "serial", "--quiet")
    if result.exit_code == 2:
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(f"modu: error: {manifest}: ")
        assert not out.exists()
    else:
        assert result.exit_code in (0, 1), result.stderr
        assert (out / "manifest.json").exists() and not (out / "INCOMPLETE").exists()
