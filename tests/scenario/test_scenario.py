"""Scenario files: ``extends`` merging, relative paths, cycles, refusals, safe YAML, and the scenario library."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import main
from sim.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = sorted((ROOT / "scenarios").glob("**/*.yaml"))

PARENT = """\
name: parent
description: two cities
time: {start: 2016, end: 2020, steps_per_year: 4}
seed: 3
sectors: {upstream: 0.2, downstream: 0.8}
parameters: {network_effect: 1.2, congestion: 0.3}
cities:
  - name: A
    firms: 100
    talent: 0.5
    anchors: [{name: Big, sector: upstream}]
    policy: {budget: 10, allocation: {compute: 0.2, data: 0.2, anchor: 0.6}, strategy: fixed}
  - name: B
    firms: 50
events:
  - {year: 2017, city: A, invest: {compute: 5}}
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- extends


def test_child_merges_mappings_and_cities_by_name(tmp_path: Path):
    write(tmp_path, "parent.yaml", PARENT)
    child = write(tmp_path, "child.yaml", """\
extends: parent.yaml
name: child
parameters: {congestion: 0.9}
cities:
  - {name: A, policy: {budget: 4}}
  - {name: C, firms: 7}
""")
    s = load_scenario(child)
    assert s.name == "child" and s.description == "two cities" and s.seed == 3
    assert s.parameters.congestion == 0.9 and s.parameters.network_effect == 1.2      # mappings merge key by key
    assert [c.name for c in s.cities] == ["A", "B", "C"]                               # updated in place, new appended
    a = s.cities[0]
    assert a.policy.budget == 4 and a.policy.allocation.anchor == 0.6 and a.talent == 0.5 and a.firms == 100
    assert [x.name for x in a.anchors] == ["Big"]
    assert s.events[0].invest.compute == 5                                             # inherited when not written


def test_share_mappings_and_lists_are_replaced_whole(tmp_path: Path):
    write(tmp_path, "parent.yaml", PARENT)
    child = write(tmp_path, "child.yaml", """\
extends: parent.yaml
name: child
sectors: {downstream: 1.0}
cities:
  - {name: A, anchors: [{name: Other, sector: downstream}], policy: {allocation: {compute: 0.5, data: 0.5}}}
events: []
""")
    s = load_scenario(child)
    assert s.sectors == {"downstream": 1.0}                       # not {upstream: 0.2, downstream: 1.0}
    assert s.cities[0].policy.allocation.as_tuple() == (0.5, 0.5, 0.0)   # the parent's anchor share is not kept
    assert [x.name for x in s.cities[0].anchors] == ["Other"]
    assert s.events == []


def test_extends_is_relative_to_the_file_and_chains(tmp_path: Path):
    write(tmp_path / "base", "parent.yaml", PARENT)
    write(tmp_path / "mid", "middle.yaml", "extends: ../base/parent.yaml\nname: middle\nseed: 9\n")
    child = write(tmp_path / "mid" / "deeper", "child.yaml", "extends: ../middle.yaml\nname: child\n")
    s = load_scenario(child)
    assert (s.name, s.seed, len(s.cities)) == ("child", 9, 2)


@pytest.mark.parametrize("files, start", [
    ({"a.yaml": "extends: a.yaml\nname: a\n"}, "a.yaml"),
    ({"a.yaml": "extends: b.yaml\nname: a\n", "b.yaml": "extends: sub/../a.yaml\nname: b\n"}, "a.yaml"),
])
def test_extends_cycles_are_refused(tmp_path: Path, files: dict[str, str], start: str):
    (tmp_path / "sub").mkdir()
    for name, text in files.items():
        write(tmp_path, name, text)
    message = refusal(tmp_path / start)
    assert "extends: cycle" in message and message.startswith(str(tmp_path))


def test_errors_in_a_parent_name_the_parent(tmp_path: Path):
    parent = write(tmp_path / "base", "parent.yaml", PARENT.replace("firms: 50", "firms: -50"))
    child = write(tmp_path, "child.yaml", "extends: base/parent.yaml\nname: child\n")
    message = refusal(child)
    assert message.startswith(f"{parent.resolve()}: cities[B].firms:")
    bad_yaml = write(tmp_path / "base", "broken.yaml", "name: [unclosed\n")
    child2 = write(tmp_path, "child2.yaml", "extends: base/broken.yaml\nname: child\n")
    assert refusal(child2).startswith(f"{bad_yaml.resolve()}: invalid YAML")


def test_errors_the_child_introduces_name_the_child(tmp_path: Path):
    write(tmp_path, "parent.yaml", PARENT)
    child = write(tmp_path, "child.yaml", "extends: parent.yaml\nname: c\ncities: [{name: A, policy: {budget: -1}}]\n")
    assert refusal(child).startswith(f"{child}: cities[A].policy.budget:")
    partial = write(tmp_path, "partial.yaml", "extends: parent.yaml\ncities: [{name: A, policy: "
                                              "{allocation: {compute: 0.5}}}]\n")
    assert "cities[A].policy.allocation: allocation must sum to 1, got 0.5" in refusal(partial)


@pytest.mark.parametrize("extends, reason", [
    ("missing.yaml", "extends: no scenario file at"),
    ("[a, b]", "extends: must be a path"),
    ("''", "extends: must be a path"),
])
def test_bad_extends_values(tmp_path: Path, extends: str, reason: str):
    child = write(tmp_path, "child.yaml", f"extends: {extends}\nname: c\n")
    assert reason in refusal(child)


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("text, where", [
    ("name: x\ncities: [{name: A, firms: 1}]\nname: y\n", "line 3: duplicate key 'name'"),
    ("name: x\ncities: [{name: A, firms: 1, talent: 1, talent: 2}]\n", "duplicate key 'talent'"),
    ("!!python/object/apply:os.system ['echo hi']\n", "invalid YAML"),
    ("name: x\ncities: !!python/name:os.system\n", "invalid YAML"),
    ("- just\n- a list\n", "(top level): a scenario must be a mapping"),
    ("name: x\ncities: [{name: A, firms: 10, anchors: [{name: Z, sector: nowhere}]}]\n", "cities[A].anchors[Z].sector"),
    ("name: x\ncities: [{name: A, firms: 1, anchors: [{name: P, sector: upstream}, {name: Q, sector: upstream}]}]\n",
     "cities[A]: 2 anchors but only 1 firms"),
    ("name: x\ncities: [{name: A, firms: 10}]\nevents: [{year: 2017, city: A}]\n", "events[0]: an event needs one of"),
    ("name: x\ncities: [{name: A, firms: 10}]\nevents: [{year: 2017, city: A, allocation: {compute: 2}}]\n",
     "events[0].allocation.compute"),
    ("name: x\ncities: [{name: A, firms: 10}]\nevents: [{year: 2017, city: A, add_anchor: {name: N, sector: s}}]\n",
     "events[0].add_anchor.sector: unknown sector"),
    ("name: x\ncities: [{name: A, firms: 10}]\nevents: [{year: 2015, city: A, budget: 1}]\n",
     "events[0].year: 2015 is outside the run [2016, 2023)"),
    ("name: x\ncities: [{name: A, firms: 10}]\nevents: [{year: 2017, city: A, learning_rate: 2}]\n",
     "events[0].learning_rate"),
    ("name: x\ncities: [{name: A, firms: 10}]\nevents: [{year: 2017, city: A, budget: 1, bogus: 1}]\n",
     "events[0]: unknown key 'bogus'"),
])
def test_refusals_name_the_field_and_reason_in_one_line(tmp_path: Path, text: str, where: str):
    path = write(tmp_path, "bad.yaml", text)
    message = refusal(path)
    assert message.startswith(f"{path}: ") and where in message


def test_a_misspelt_required_key_is_named_first_not_the_missing_field(tmp_path: Path):
    path = write(tmp_path, "bad.yaml", "name: x\ncitiess: [{name: A, firms: 10}]\n")
    message = refusal(path)
    assert message.startswith(f"{path}: (top level): unknown key 'citiess' (did you mean 'cities'?)")
    assert "Field required" not in message.split(";")[0]


@pytest.mark.parametrize("cities, events, where", [
    ("[{name: A, firms: 10}, {name: B, firms: 5}]", "[{year: 2017, city: A, open: true}]",
     "events[0].open: A is already open at 2017"),
    ("[{name: A, firms: 10}, {name: B, firms: 5, open: false}]", "[{year: 2018, city: B, open: false}]",
     "events[0].open: B is already closed at 2018"),
    ("[{name: A, firms: 10}, {name: B, firms: 5}]",
     "[{year: 2019, city: B, open: false}, {year: 2017, city: A, open: false}]",
     "events[0].open: closes the last open city at 2019"),
    ("[{name: A, firms: 10, open: false}, {name: B, firms: 5, open: false}]", "[]",
     "cities: every city starts closed"),
])
def test_open_and_close_events_are_checked_in_time_order(tmp_path: Path, cities: str, events: str, where: str):
    path = write(tmp_path, "bad.yaml", f"name: x\ncities: {cities}\nevents: {events}\n")
    assert where in refusal(path)


def test_closing_a_city_needs_a_positive_network_seed(tmp_path: Path):
    text = ("name: x\nparameters: {network_seed: 0}\ncities: [{name: A, firms: 10}, {name: B, firms: 5}]\n"
            "events: [{year: 2017, city: B, open: false}]\n")
    assert "parameters.network_seed: must be > 0 when a city is closed" in refusal(write(tmp_path, "bad.yaml", text))
    reopened = text.replace("open: false}]", "open: false}, {year: 2018, city: B, open: true}]")
    reopened = reopened.replace("network_seed: 0", "network_seed: 0.5")
    s = load_scenario(write(tmp_path, "ok.yaml", reopened))
    assert [e.open for e in s.events] == [False, True]


def test_validate_says_one_city_and_one_replication_in_the_singular(tmp_path: Path):
    one = write(tmp_path, "one.yaml", "name: one\nreplications: 1\ncities: [{name: A, firms: 10}]\n")
    assert "ok (one: 1 city, 2016–2023, 1 replication)" in CliRunner().invoke(main, ["validate", str(one)]).stdout


def test_validate_command_checks_every_file_and_writes_nothing(tmp_path: Path):
    good = write(tmp_path, "good.yaml", PARENT)
    bad = write(tmp_path, "bad.yaml", PARENT.replace("budget: 10", "budget: -10"))
    child = write(tmp_path, "child.yaml", "extends: bad.yaml\nname: c\n")
    before = sorted(tmp_path.iterdir())
    result = CliRunner().invoke(main, ["validate", str(good), str(bad), str(child)])
    assert result.exit_code == 2
    assert f"{good}: ok (parent: 2 cities, 2016–2020" in result.stdout
    errors = result.stderr.strip().splitlines()
    assert errors == [f"modu: error: {bad}: cities[A].policy.budget: Input should be greater than or equal to 0",
                      f"modu: error: {bad.resolve()}: cities[A].policy.budget: Input should be greater than or "
                      "equal to 0"]
    assert sorted(tmp_path.iterdir()) == before


# ---------------------------------------------------------------- the library


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.name)
def test_every_library_scenario_is_valid(path: Path):
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.stderr


NUMBER = re.compile(r"(?<![\w.])-?\d+(\.\d+)?(?![\w.])")
RUN_SETTINGS = re.compile(r"\b(seed|replications|steps_per_year):\s*\d+")
TEXT_KEY = re.compile(r"^(\s*)-?\s*(name|description):")


def unlabelled_numbers(text: str) -> list[str]:
    """Lines with a number that has no comment on its line or on the comment line just above it.

    Run settings (``seed``, ``replications``, ``steps_per_year``) are not claims about the world and are exempt;
    so are names and descriptions (``name: "360"``, a ``description: >-`` block).
    """
    found, previous, text_indent = [], "", None
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if text_indent is not None and (not line.strip() or indent > text_indent):
            continue  # inside a description block
        text_indent = None
        key = TEXT_KEY.match(line)
        if key:
            text_indent = len(key.group(1)) if re.search(r":\s*[>|][-+]?\s*$", line.split("#", 1)[0]) else None
            code = ""
        else:
            code = RUN_SETTINGS.sub("", re.sub(r"\"[^\"]*\"", "", line.split("#", 1)[0]))
        if NUMBER.search(code) and "#" not in line and not previous.lstrip().startswith("#"):
            found.append(line)
        if line.strip():
            previous = line
    return found


def test_the_label_check_finds_unlabelled_numbers():
    text = ("# a comment\nfirms: 10\nbudget: 5\nseed: 3\nname: \"360\"\nlat: 3.5  # geography\n"
            "description: >-\n  In 2016 the\n  counts were 5\ntime: {start: 2016, steps_per_year: 4}\n"
            "cities:\n  - {name: A, firms: 3}\n")
    assert unlabelled_numbers(text) == ["budget: 5", "time: {start: 2016, steps_per_year: 4}", "  - {name: A, firms: 3}"]


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.name)
def test_every_number_in_a_library_scenario_carries_a_source_label(path: Path):
    assert unlabelled_numbers(path.read_text(encoding="utf-8")) == []


def test_china_keeps_the_baseline_national_total():
    """The multi-city scenario carves its added places out of the baseline's rest-of-China pool."""
    baseline = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    china = load_scenario(ROOT / "scenarios" / "china.yaml")
    assert sum(c.firms for c in china.cities) == sum(c.firms for c in baseline.cities)
    for city in baseline.cities:
        if not city.pool:
            assert next(c for c in china.cities if c.name == city.name).firms == city.firms
    names = {c.name for c in china.cities}
    assert names >= {"Beijing", "Shenzhen", "Shanghai", "Hangzhou", "Hefei", "Guangzhou", "Chengdu", "Nanjing",
                     "Wuhan", "Xi'an", "Zhengzhou", "Jinan", "Hebei"}
    pools = {c.name for c in china.cities if c.pool}
    assert pools == {"Rest of China", "Rest of Guangdong", "Rest of Jiangsu", "Rest of Zhejiang", "Hebei"}
    assert all(c.places > 1 and c.capacity is not None for c in china.cities if c.pool)   # many places, congested
