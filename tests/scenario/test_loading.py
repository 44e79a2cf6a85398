"""The scenario loader word for word: YAML edge cases, file limits, ``extends``, calibration precedence, unknown keys.

A refusal is what a user reads, so most tests here compare the whole one-line
message (after the ``file: `` prefix) with one worked out from the input.
"""

from __future__ import annotations

import errno
import os
import pathlib
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from pydantic import model_validator

from sim.scenario import LookAlikeCityWarning, ScenarioError, load_raw, load_scenario, merge, validate
from sim.scenario.errors import ShippedFileWarning, UncalibratedWarning, located, quoted
from sim.scenario.loading import MAX_EXTENDS_DEPTH, Calibrated, Origin, trace
from sim.scenario.reading import MAX_FILE_BYTES, UniqueKeySafeLoader, load_model
from sim.scenario.resources import shipped_calibrations, shipped_scenarios
from sim.scenario.schema import Strict

OK = "cities: [{name: A, firms: 1}]\n"
TOO_BIG = f"a scenario and the files it extends may be at most {MAX_FILE_BYTES} bytes together"
SCENARIO_KEYS = ("name, description, extends, calibration, time, seed, engine, replications, sectors, complementarity, "
                 "parameters, cities, events")


def write(folder: Path, name: str, text: str | bytes) -> Path:
    """Write ``text`` to ``folder/name`` (folders created) and return the path."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def refusal(load, path: Path | str) -> str:
    """The one-line message of the :class:`ScenarioError` that ``load(path)`` raises."""
    with pytest.raises(ScenarioError) as info:
        load(path)
    return str(info.value)


def padded(head: str, tail: str, size: int) -> str:
    """``head``, a comment line, ``tail``: exactly ``size`` bytes of ASCII."""
    pad = size - len(head) - len(tail) - 2
    assert pad >= 0
    return head + "#" + "x" * pad + "\n" + tail


# ---------------------------------------------------------------- YAML: values, keys, structure


@pytest.mark.parametrize("text, reason", [
    # a tagged value that cannot be built: its line, a 40-character excerpt, the type and Python's reason
    ("name: x\nseed: !!int abc\n" + OK,
     "invalid YAML: line 2: cannot read 'abc' as int: invalid literal for int() with base 10: 'abc'"),
    ("name: x\nseed: !!int " + "a" * 45 + "\n" + OK,
     "invalid YAML: line 2: cannot read '" + "a" * 40 + "' as int: invalid literal for int() with base 10: '" + "a" * 45 + "'"),
    ("name: x\ndescription: 2016-13-45\n" + OK,
     "invalid YAML: line 2: cannot read '2016-13-45' as timestamp: month must be in 1..12"),
    # PyYAML's own slips (IndexError, AttributeError) are not quoted: they would mean nothing to a user
    ("name: x\nseed: !!float\n" + OK, "invalid YAML: line 2: cannot read '' as float"),
    ("name: x\nseed: !!timestamp\n" + OK, "invalid YAML: line 2: cannot read '' as timestamp"),
    # a mapping carrying its value under YAML's `=` key: not a scalar, so no excerpt
    ("name: x\nseed: !!int {=: abc}\n" + OK,
     "invalid YAML: line 2: cannot read this value as int: invalid literal for int() with base 10: 'abc'"),
    ('name: "\\ud800"\n' + OK,
     "invalid YAML: line 1: cannot read '\\ud800' as str: "
     "'utf-8' codec can't encode character '\\ud800' in position 0: surrogates not allowed"),
    # keys written twice, around merge keys and unhashable keys
    ("name: x\nseed: 1\nseed: 2\n" + OK, "invalid YAML: line 3: duplicate key 'seed'"),
    ("<<: {seed: 3}\nname: x\nname: y\n" + OK, "invalid YAML: line 3: duplicate key 'name'"),
    ("name: x\n? [a]\n: 1\nname: y\n" + OK, "invalid YAML: line 4: duplicate key 'name'"),
    ("name: x\n? [a, b]\n: 1\n" + OK, "invalid YAML: line 2: found unhashable key"),
    ("name: x\ncities: [{name: A, firms: 1}, {name: B, firms: 2, firms: 3}]\n", "invalid YAML: line 2: duplicate key 'firms'"),
    # structure
    ("name: x\ncities: !!map abc\n", "invalid YAML: line 2: expected a mapping node, but found scalar"),
    ("name: x\x00\n" + OK,
     'invalid YAML: unacceptable character #x0000: special characters are not allowed in "<unicode string>", position 7'),
    ("name: x\ndescription: " + "[" * 100_000 + "]" * 100_000 + "\n", "invalid YAML: nested too deeply"),
    ("&a {name: x, description: *a, cities: [{name: A, firms: 1}]}\n", "description: Input should be a valid string"),
    ("name: x\ndescription: &d {self: *d}\n" + OK, "description: Input should be a valid string"),  # built lazily: no loop
    (b"name: \xff\xfe\n", "not UTF-8 text (byte 6)"),
    ("- a\n- b\n", "(top level): a scenario must be a mapping, got list"),
    ("", "(top level): a scenario must be a mapping, got NoneType"),
])
def test_yaml_refusals_word_for_word(tmp_path: Path, text: str | bytes, reason: str):
    path = write(tmp_path, "bad.yaml", text)
    assert refusal(load_scenario, path) == f"{path}: {reason}"


def test_merge_keys_may_repeat_and_written_keys_win(tmp_path: Path):
    """``<<`` keys are not duplicates of each other, and a key written beside them overrides the merged one."""
    path = write(tmp_path, "ok.yaml", "<<: {name: merged, seed: 3}\n<<: {replications: 2}\nname: x\n" + OK)
    s = load_scenario(path)
    assert (s.name, s.seed, s.replications) == ("x", 3, 2)


def test_a_duplicate_key_is_a_pyyaml_error_naming_both_lines():
    """The loader class on its own: the mapping's start and the repeated key, as PyYAML words its errors."""
    with pytest.raises(yaml.constructor.ConstructorError) as info:
        yaml.load("a:\n  b: 1\n  b: 2\n", Loader=UniqueKeySafeLoader)
    assert str(info.value) == ('while constructing a mapping\n  in "<unicode string>", line 2, column 3:\n      b: 1\n      ^\n'
                               'duplicate key \'b\'\n  in "<unicode string>", line 3, column 3:\n      b: 2\n      ^')


# ---------------------------------------------------------------- files: paths, sizes, read errors


def test_missing_files_and_odd_paths(tmp_path: Path):
    missing = tmp_path / "missing.yaml"
    assert refusal(load_scenario, missing) == f"{missing}: cannot read: No such file or directory"
    assert refusal(lambda p: load_model(p, Calibrated), missing) == f"{missing}: cannot read: No such file or directory"
    assert refusal(load_scenario, "a\0b.yaml") == "a\0b.yaml: cannot read: embedded null byte"
    assert refusal(lambda p: load_model(p, Calibrated), "a\0b.yaml") == "a\0b.yaml: cannot read: embedded null byte"
    assert refusal(lambda p: load_model(p, Calibrated), tmp_path) == f"{tmp_path}: cannot read: not a regular file"


def test_a_file_of_exactly_the_limit_loads_and_one_byte_more_is_refused(tmp_path: Path):
    head = "name: x\n" + OK
    exact = write(tmp_path, "exact.yaml", padded(head, "seed: 12\n", MAX_FILE_BYTES))
    assert exact.stat().st_size == MAX_FILE_BYTES
    assert load_scenario(exact).seed == 12  # the last line counts: the whole file was read
    over = write(tmp_path, "over.yaml", padded(head, "seed: 12\n", MAX_FILE_BYTES + 1))
    assert refusal(load_scenario, over) == f"{over}: file is {MAX_FILE_BYTES + 1} bytes; {TOO_BIG}"


def test_a_file_that_grows_after_it_was_measured_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path, "growing.yaml", padded("name: x\n" + OK, "seed: 1\n", MAX_FILE_BYTES + 10))
    real_stat = pathlib.Path.stat

    def stat_when_small(self, *args, **kwargs):
        info = real_stat(self, *args, **kwargs)
        if self == path:  # as measured before the writer appended
            return os.stat_result((info.st_mode, *info[1:6], 100, *info[7:]))
        return info

    monkeypatch.setattr(pathlib.Path, "stat", stat_when_small)
    assert refusal(load_scenario, path) == f"{path}: file is over {MAX_FILE_BYTES} bytes; {TOO_BIG}"


def test_a_read_error_is_refused_with_its_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path, "ok.yaml", "name: x\n" + OK)

    def failing_open(self, *args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(pathlib.Path, "open", failing_open)
    assert refusal(load_scenario, path) == f"{path}: cannot read: Input/output error"


def test_the_size_limit_counts_a_scenario_and_its_parent_together(tmp_path: Path):
    parent_text = "name: p\n" + OK
    child_text = padded("extends: parent.yaml\n", "seed: 5\n", MAX_FILE_BYTES - len(parent_text))
    parent = write(tmp_path, "parent.yaml", parent_text)
    child = write(tmp_path, "child.yaml", child_text)
    assert load_scenario(child).seed == 5  # exactly the limit together
    parent.write_text(parent_text + "#\n")
    assert refusal(load_scenario, child) == f"{parent.resolve()}: file is {len(parent_text) + 2} bytes; {TOO_BIG}"


# ---------------------------------------------------------------- extends


def test_an_extends_cycle_is_refused_showing_the_cycle(tmp_path: Path):
    root = tmp_path.resolve()
    write(root, "a.yaml", "extends: b.yaml\nname: a\n")
    write(root, "b.yaml", "extends: a.yaml\nname: b\n")
    a, b = root / "a.yaml", root / "b.yaml"
    assert refusal(load_scenario, a) == f"{a}: extends: cycle {a} -> {b} -> {a}"


def test_an_extends_chain_may_have_at_most_the_maximum_depth(tmp_path: Path):
    root = tmp_path.resolve()
    n = MAX_EXTENDS_DEPTH
    for i in range(n + 1):  # s0 extends s1 ... s{n-1} extends s{n}; s{n} has no parent
        write(root, f"s{i}.yaml", f"extends: s{i + 1}.yaml\nseed: {i}\n" if i < n else "name: x\nseed: 99\n" + OK)
    assert load_scenario(root / "s1.yaml").seed == 1  # s1 ... s{n}: n files, n - 1 parents
    assert refusal(load_scenario, root / "s0.yaml") == f"{root / f's{n}.yaml'}: extends: chain longer than {n}"


SHIPPED_SCENARIOS = ", ".join(shipped_scenarios())
SHIPPED_CALIBRATIONS = ", ".join(shipped_calibrations())


@pytest.mark.parametrize("key, value, reason", [
    ("extends", "[a, b]", "extends: must be a path to another scenario"),
    ("extends", "missing.yaml", "extends: no scenario file at {folder}/missing.yaml; write a path relative to this file "
                                f"or the name of a shipped scenario: {SHIPPED_SCENARIOS}"),
    ("extends", "chian", "extends: no scenario file at {folder}/chian, nor a shipped scenario named 'chian' "
                         "(did you mean 'china'?)"),
    ("extends", "zzz", f"extends: no scenario file at {{folder}}/zzz, nor a shipped scenario named 'zzz'; "
                       f"shipped: {SHIPPED_SCENARIOS}"),
    ("extends", "../scenarios/missing.yaml",
     "extends: no scenario file at {folder.parent}/scenarios/missing.yaml; write a path relative to this file or the name "
     f"of a shipped scenario: {SHIPPED_SCENARIOS}"),
    ("calibration", "[a, b]", "calibration: must be a path to a calibration file"),
    ("calibration", "'  '", "calibration: must be a path to a calibration file"),
    ("calibration", "missing.yaml", "calibration: no calibration file at {folder}/missing.yaml; write a path relative to "
                                    f"this file or the name of a shipped calibration: {SHIPPED_CALIBRATIONS}"),
    ("calibration", "Baseline", "calibration: no calibration file at {folder}/Baseline, nor a shipped calibration named "
                                "'Baseline' (did you mean 'baseline'?)"),
    # a shipped file that is not a calibration is no fallback
    ("calibration", "../calibration/priors.yaml", "calibration: no calibration file at {folder.parent}/calibration/priors.yaml; "
                                                  "write a path relative to this file or the name of a shipped calibration: "
                                                  f"{SHIPPED_CALIBRATIONS}"),
    ("calibration", '"a\\0b"', "calibration: cannot use 'a\\x00b': embedded null byte"),
    ("extends", '"a\\0b"', "extends: cannot use 'a\\x00b': embedded null byte"),
])
def test_files_a_scenario_names_are_checked(tmp_path: Path, key: str, value: str, reason: str):
    path = write(tmp_path, "s.yaml", f"name: x\n{key}: {value}\n" + OK)
    assert refusal(load_scenario, path) == f"{path}: " + reason.format(folder=tmp_path.resolve())


PARENT = """\
name: parent
seed: 3
time: {start: 2016, end: 2020}
sectors: {upstream: 0.5, downstream: 0.5}
parameters: {congestion: 0.3, depreciation: {compute: 0.5}}
cities:
  - {name: A, firms: 10, policy: {budget: 2, allocation: {compute: 0.5, data: 0.5}}}
  - {name: B, firms: 20}
"""


def test_load_raw_merges_a_child_onto_its_parent(tmp_path: Path):
    """The merged data, worked out by hand: mappings by key, cities by name, shares and other values replaced whole."""
    write(tmp_path, "parent.yaml", PARENT)
    child = write(tmp_path, "child.yaml", """\
extends: parent.yaml
name: child
time: 5
sectors: {downstream: 1.0}
parameters: {depreciation: {data: 0.2}}
cities:
  - {name: B, talent: 1.5}
  - {name: C, firms: 4}
  - 7
  - {name: A, policy: {allocation: {anchor: 1.0}}}
""")
    assert load_raw(child) == {
        "name": "child", "seed": 3, "time": 5, "sectors": {"downstream": 1.0},
        "parameters": {"congestion": 0.3, "depreciation": {"compute": 0.5, "data": 0.2}},
        "cities": [{"name": "A", "firms": 10, "policy": {"budget": 2, "allocation": {"anchor": 1.0}}},
                   {"name": "B", "firms": 20, "talent": 1.5}, {"name": "C", "firms": 4}, 7],
    }
    assert refusal(load_scenario, child) == (f"{child}: time: Input should be a valid dictionary or instance of Time "
                                             "(+1 more)")


def test_merge_of_odd_values():
    """``merge`` is public: values that are not mappings replace, and unnamed parent cities are kept."""
    assert merge(5, {"a": 1}) == {"a": 1}
    assert merge({"a": {"b": 1}}, {"a": 2}) == {"a": 2}
    assert merge({"a": [1]}, {"a": {"b": 1}}) == {"a": {"b": 1}}
    parent = {"cities": [{"firms": 1}, "x", {"name": "A", "firms": 2}]}
    assert merge(parent, {"cities": [{"name": "A", "firms": 3}, {"firms": 4}]}) == {
        "cities": [{"firms": 1}, "x", {"name": "A", "firms": 3}, {"firms": 4}]}


@pytest.mark.parametrize("parent_cities, child_cities, reason", [
    # a city listed twice in one file: refused in the child and in the parent, naming that file
    ("[{name: A, firms: 10}, {name: B, firms: 20}]", "[{name: A, talent: 1}, {name: A, talent: 2}]",
     "{child}: cities[A]: duplicate city 'A' (entries 1 and 2 of this file); list each city once"),
    ("[{name: A, firms: 10}, {name: B, firms: 20}, {name: A, firms: 30}]", "[{name: B, talent: 1}]",
     "{parent}: cities[A]: duplicate city 'A' (entries 1 and 3 of this file); list each city once"),
    ("[{name: A, firms: 10}]", "[{talent: 1}, {name: A, talent: 1}, {name: A, talent: 2}]",  # after an entry without a name
     "{child}: cities[A]: duplicate city 'A' (entries 2 and 3 of this file); list each city once"),
    # a child's city the parent does not have, without the fields a new city needs: a misspelt name
    ("[{name: Shenzhen, firms: 10}, {name: Beijing, firms: 20}]", "[{name: ShenZhen, talent: 1}]",
     "{child}: cities[ShenZhen]: no city 'ShenZhen' in the parent (did you mean 'Shenzhen'?)"),
    ("[{name: Shenzhen, firms: 10}, {name: Beijing, firms: 20}]", "[{name: Shenzen, policy: {budget: 1}}]",
     "{child}: cities[Shenzen]: no city 'Shenzen' in the parent (did you mean 'Shenzhen'?)"),
    ("[{name: Shenzhen, firms: 10}, {name: Beijing, firms: 20}]", "[{name: Hefei, talent: 1}]",
     "{child}: cities[Hefei]: no city 'Hefei' in the parent; a new city needs firms (the parent's cities: Shenzhen, Beijing)"),
])
def test_extends_refuses_cities_listed_twice_or_misspelt(tmp_path: Path, parent_cities: str, child_cities: str, reason: str):
    parent = write(tmp_path, "parent.yaml", f"name: p\ncities: {parent_cities}\n")
    child = write(tmp_path, "child.yaml", f"extends: parent.yaml\nname: c\ncities: {child_cities}\n")
    assert refusal(load_scenario, child) == reason.format(child=child, parent=parent.resolve())


def test_a_file_without_extends_lists_each_city_once(tmp_path: Path):
    path = write(tmp_path, "s.yaml", "name: x\ncities: [{name: A, firms: 1}, {name: B, firms: 1}, {name: B, firms: 2}]\n")
    assert refusal(load_scenario, path) == (f"{path}: cities[B]: duplicate city 'B' (entries 2 and 3 of this file); "
                                            "list each city once")


def test_a_complete_new_city_is_added_and_a_grandchild_sees_the_merged_parent(tmp_path: Path):
    write(tmp_path, "parent.yaml", "name: p\ncities: [{name: A, firms: 10}]\n")
    write(tmp_path, "child.yaml", "extends: parent.yaml\ncities: [{name: Newtown, firms: 5}]\n")
    grandchild = write(tmp_path, "grandchild.yaml", "extends: child.yaml\ncities: [{name: Newtown, talent: 1}]\n")
    assert [(c.name, c.firms, c.talent) for c in load_scenario(grandchild).cities] == [("A", 10, 0.0), ("Newtown", 5, 1.0)]
    typo = write(tmp_path, "typo.yaml", "extends: child.yaml\ncities: [{name: newtown, talent: 1}]\n")
    assert refusal(load_scenario, typo) == f"{typo}: cities[newtown]: no city 'newtown' in the parent (did you mean 'Newtown'?)"


# ---------------------------------------------------------------- calibration

CALIBRATION = """\
parameters: {network_effect: 1.5, congestion: 0.7}
cities:
  A: {attractiveness: 0.25, talent: 0.3}
  B: {attractiveness: 0.5}
"""


def test_calibration_fills_only_what_the_scenario_does_not_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cal = write(tmp_path / "cal", "calibrated.yaml", CALIBRATION)
    path = write(tmp_path / "scen", "s.yaml", "name: x\ncalibration: ../cal/calibrated.yaml\nparameters: {network_effect: 0.9}\n"
                                             "cities: [{name: A, firms: 1}, {name: B, firms: 2, attractiveness: -1}, "
                                             "{name: C, firms: 3}]\n")
    monkeypatch.chdir(tmp_path)  # the calibration path is relative to the scenario's folder, not to the working folder
    s = load_scenario(path)
    assert s.calibration == str(cal.resolve())
    assert (s.parameters.network_effect, s.parameters.congestion) == (0.9, 0.7)
    assert [(c.attractiveness, c.talent) for c in s.cities] == [(0.25, 0.3), (-1.0, 0.0), (0.0, 0.0)]


def test_calibration_applies_to_a_scenario_without_parameters(tmp_path: Path):
    write(tmp_path, "cal.yaml", CALIBRATION)
    s = load_scenario(write(tmp_path, "s.yaml", "name: x\ncalibration: cal.yaml\n" + OK))
    assert (s.parameters.network_effect, s.parameters.congestion, s.cities[0].attractiveness) == (1.5, 0.7, 0.25)


def test_an_inherited_calibration_applies_to_the_cities_the_child_adds(tmp_path: Path):
    write(tmp_path / "base", "cal.yaml", CALIBRATION)
    write(tmp_path / "base", "parent.yaml", "name: p\ncalibration: cal.yaml\ncities: [{name: C, firms: 1}]\n")
    child = write(tmp_path, "child.yaml", "extends: base/parent.yaml\nparameters: {congestion: 0.1}\n"
                                         "cities: [{name: B, firms: 2}]\n")
    s = load_scenario(child)
    assert [(c.name, c.attractiveness) for c in s.cities] == [("C", 0.0), ("B", 0.5)]
    assert (s.parameters.network_effect, s.parameters.congestion) == (1.5, 0.1)
    assert s.calibration == str((tmp_path / "base" / "cal.yaml").resolve())


LEVER_CALIBRATION = "parameters: {lever_effects: {compute: {upstream: 0.4, a: 0.2}, data: {b: 0.1}}}\n"


@pytest.mark.parametrize("sectors, written, expected", [
    ("{a: 0.5, upstream: 0.5}", None, {"compute": {"upstream": 0.4, "a": 0.2}, "data": {}}),
    ("{a: 1.0}", None, {"compute": {"a": 0.2}, "data": {}}),
    ("{a: 1.0}", "{compute: {a: 0.7}}", {"compute": {"a": 0.7}}),
])
def test_calibrated_lever_weights_are_kept_for_the_scenarios_sectors(tmp_path: Path, sectors: str, written: str | None,
                                                                      expected: dict):
    write(tmp_path, "cal.yaml", LEVER_CALIBRATION)
    params = f"parameters: {{lever_effects: {written}}}\n" if written else ""
    s = load_scenario(write(tmp_path, "s.yaml", f"name: x\ncalibration: cal.yaml\nsectors: {sectors}\n{params}" + OK))
    assert s.parameters.lever_effects == expected


@pytest.mark.parametrize("calibration, scenario, reason", [
    # weights the scenario writes itself are checked strictly, calibrated or not
    (LEVER_CALIBRATION, "sectors: {a: 1.0}\nparameters: {lever_effects: {compute: {zz: 0.7}}}\n" + OK,
     "parameters.lever_effects.compute.zz: unknown sector 'zz'"),
    ("parameters: {lever_effects: {compute: 5}}\n", OK, "parameters.lever_effects.compute: Input should be a valid dictionary"),
    (CALIBRATION, "cities: [5]\n", "cities[0]: Input should be a valid dictionary or instance of City"),
    (CALIBRATION, "cities: [{name: [1], firms: 1}]\n", "cities[0].name: Input should be a valid string"),
])
def test_calibrated_scenarios_are_still_checked(tmp_path: Path, calibration: str, scenario: str, reason: str):
    write(tmp_path, "cal.yaml", calibration)
    path = write(tmp_path, "s.yaml", "name: x\ncalibration: cal.yaml\n" + scenario)
    assert refusal(load_scenario, path) == f"{path}: {reason}"


@pytest.mark.parametrize("calibration, reason", [
    ("parameter: {congestion: 1}\n", "(top level): unknown key 'parameter' (did you mean 'parameters'?)"),
    ("- 1\n", "(top level): the file must be a mapping, got list"),
    ("cities: {A: 5}\n", "cities.A: Input should be a valid dictionary"),
])
def test_a_bad_calibration_file_is_named(tmp_path: Path, calibration: str, reason: str):
    cal = write(tmp_path, "cal.yaml", calibration)
    path = write(tmp_path, "s.yaml", "name: x\ncalibration: cal.yaml\n" + OK)
    assert refusal(load_scenario, path) == f"{cal.resolve()}: {reason}"


# ---------------------------------------------------------------- shipped names, copies of shipped files, defaults


def test_extends_and_calibration_take_a_shipped_name(tmp_path: Path):
    path = write(tmp_path, "mine.yaml", "extends: baseline\nname: mine\ncalibration: china\n")
    s = load_scenario(path)
    assert s.calibration == str(shipped_calibrations()["china"].resolve())
    assert [c.name for c in s.cities] == [c.name for c in load_scenario(shipped_scenarios()["baseline"]).cities]
    china = Calibrated.model_validate(yaml.safe_load(shipped_calibrations()["china"].read_text(encoding="utf-8")))
    assert s.parameters.network_effect == china.parameters["network_effect"]
    assert s.cities[0].attractiveness == china.cities["Beijing"]["attractiveness"]


def test_a_file_beside_the_scenario_wins_over_a_shipped_name(tmp_path: Path):
    write(tmp_path, "baseline", "name: local\n" + OK)  # a file literally named like the shipped scenario
    write(tmp_path, "baseline.yaml", "name: local_yaml\n" + OK)
    assert load_scenario(write(tmp_path, "a.yaml", "extends: baseline\n")).name == "local"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShippedFileWarning)  # no notice: the file is there
        assert load_scenario(write(tmp_path, "b.yaml", "extends: baseline.yaml\n")).name == "local_yaml"


@pytest.mark.parametrize("name", [n for n, path in shipped_scenarios().items()   # those naming files by relative paths
                                  if any(str(yaml.safe_load(path.read_text(encoding="utf-8")).get(k, "")).endswith(".yaml")
                                         for k in ("extends", "calibration"))])
def test_a_copy_of_a_shipped_scenario_runs_the_shipped_one_with_a_notice_per_path(tmp_path: Path, name: str):
    shipped = shipped_scenarios()[name]
    copy = write(tmp_path, "copy.yaml", shipped.read_bytes())
    with pytest.warns(ShippedFileWarning) as record:
        scenario = load_scenario(copy)
    assert scenario.digest() == load_scenario(shipped).digest()  # the same run: same calibration file, same values
    raw = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    expected = []
    for key, noun, names in (("extends", "scenario", shipped_scenarios()),
                             ("calibration", "calibration", shipped_calibrations())):
        if key in raw:
            found = next(n for n, p in names.items() if p.resolve() == (shipped.parent / raw[key]).resolve())
            expected.append(f"{copy}: {key}: no file at {(tmp_path / raw[key]).resolve()}; took the shipped {noun} "
                            f"{found!r} (write `{key}: {found}` to say so)")
    assert [str(w.message) for w in record] == expected and expected


@pytest.mark.filterwarnings("always::sim.scenario.errors.UncalibratedWarning")
def test_a_scenario_on_the_code_defaults_is_warned_once_valid(tmp_path: Path):
    path = write(tmp_path, "s.yaml", "name: x\n" + OK)
    with pytest.warns(UncalibratedWarning) as record:
        load_scenario(path)
    assert [str(w.message) for w in record] == [
        f"{path}: names no calibration and no city's attractiveness, so it runs on the code defaults (write "
        "`calibration: baseline` for the shipped estimates, or `calibration: null` if the defaults are meant)"]
    child = write(tmp_path, "child.yaml", "extends: s.yaml\nseed: 3\n")
    with pytest.warns(UncalibratedWarning, match="child.yaml: names no calibration"):
        load_scenario(child)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for text in ("name: x\ncalibration: null\n" + OK,  # the defaults are meant
                     "name: x\ncities: [{name: A, firms: 1, attractiveness: 0.5}]\n",  # constants of its own
                     "name: x\ncalibration: baseline\n" + OK):
            load_scenario(write(tmp_path, "quiet.yaml", text))
        write(tmp_path, "null.yaml", "name: x\ncalibration: null\n" + OK)
        load_scenario(write(tmp_path, "null_child.yaml", "extends: null.yaml\n"))  # inherited
        with pytest.raises(ScenarioError):  # a refusal is the only thing said
            load_scenario(write(tmp_path, "bad.yaml", "name: x\ncities: [{name: A, firms: -1}]\n"))


def test_every_city_of_a_child_is_checked_whatever_comes_before_it(tmp_path: Path):
    """A parent's city or a complete new city ahead in the list does not end the checks of those after it."""
    write(tmp_path, "parent.yaml", "name: p\ncities: [{name: Shenzhen, firms: 10}, {name: Beijing, firms: 20}]\n")
    child = write(tmp_path, "child.yaml", "extends: parent.yaml\n"
                                         "cities: [{name: Beijing, talent: 1}, {name: Shenzen, talent: 1}]\n")
    assert refusal(load_scenario, child) == f"{child}: cities[Shenzen]: no city 'Shenzen' in the parent " \
                                            "(did you mean 'Shenzhen'?)"
    child = write(tmp_path, "child.yaml", "extends: parent.yaml\n"
                                         "cities: [{name: Beijing, talent: 1}, {name: Hefei, firms: 3},"
                                         " {name: ShenZhen, firms: 5}]\n")
    with pytest.warns(LookAlikeCityWarning, match=r"cities\[ShenZhen\]: a new city beside the parent's 'Shenzhen'"):
        load_scenario(child)


def test_a_look_alike_city_anywhere_in_a_chain_is_said(tmp_path: Path):
    """A middle file of a chain adding a look-alike of its parent's city is warned of when its child is loaded."""
    write(tmp_path, "root.yaml", "name: r\ncities: [{name: Shenzhen, firms: 10}]\n")
    middle = write(tmp_path, "middle.yaml", "extends: root.yaml\ncities: [{name: ShenZhen, firms: 5}]\n")
    write(tmp_path, "leaf.yaml", "extends: middle.yaml\nseed: 2\n")
    with pytest.warns(LookAlikeCityWarning) as record:
        load_scenario(tmp_path / "leaf.yaml")
    said = [str(w.message) for w in record if w.category is LookAlikeCityWarning]
    assert [line.split(": cities[")[0] for line in said] == [str(middle)]
    assert "a new city beside the parent's 'Shenzhen'" in said[0]


def test_load_raw_warns_of_what_load_scenario_warns_of(tmp_path: Path):
    """A sweep reads its scenario with ``load_raw``: a shipped file taken and a look-alike city are said there too,
    and each loader's warnings point at the caller's line, not inside the package."""  # noqa: D205
    write(tmp_path, "parent.yaml", "name: p\ncalibration: ../calibration/calibrated.yaml\n"
                                   "cities: [{name: Shenzhen, firms: 10}]\n")
    child = write(tmp_path, "child.yaml", "extends: parent.yaml\ncities: [{name: ShenZhen, firms: 5}]\n")
    write(tmp_path, "plain.yaml", "name: x\n" + OK)  # no calibration: UncalibratedWarning
    said = []
    for load in (load_scenario, trace, load_raw):
        for path in (child, tmp_path / "plain.yaml"):
            with warnings.catch_warnings(record=True) as record:
                warnings.simplefilter("always")
                load(path)
            said.append([(w.category, str(w.message)) for w in record])
            if "mutmut.mutation.trampoline" not in sys.modules:  # mutmut's wrappers add frames between the loader's
                assert all(w.filename == __file__ for w in record)  # functions, moving the line a warning names
    assert said[0] == said[2] == said[4]
    assert {category for category, _ in said[0]} == {ShippedFileWarning, LookAlikeCityWarning}
    assert said[1] == said[3] and {category for category, _ in said[1]} == {UncalibratedWarning}
    assert said[5] == []  # load_raw does not validate, so does not judge the calibration


# ---------------------------------------------------------------- trace: where each value comes from


def test_trace_names_the_file_calibration_or_default_of_each_value(tmp_path: Path):
    cal = write(tmp_path / "cal", "calibrated.yaml", CALIBRATION)
    parent = write(tmp_path, "parent.yaml", "name: p\ncalibration: cal/calibrated.yaml\nseed: 3\ntime: {start: 2016, end: 2020}\n"
                                            "cities: [{name: A, firms: 10}, {name: B, firms: 5}]\n")
    child = write(tmp_path, "child.yaml", "extends: parent.yaml\nname: c\ntime: {end: 2022}\nparameters: {congestion: 2}\n"
                                         "cities: [{name: B, talent: 1},"
                                         " {name: C, firms: 1, anchors: [{name: X, sector: upstream}]}]\n"
                                         "events: [{year: 2017, city: A, invest: {data: 1}}]\n")
    traced = trace(child)
    assert traced.scenario.digest() == load_scenario(child).digest()
    assert traced.files == (parent.resolve(), child)
    mine, theirs, calibrated = Origin(child), Origin(parent.resolve()), Origin(cal.resolve(), calibration=True)
    o = traced.origins
    assert (o["name"], o["seed"], o["time"], o["calibration"]) == (mine, theirs, {"start": theirs, "end": mine}, theirs)
    assert o["parameters"] == {"network_effect": calibrated, "congestion": mine}  # the calibration's 0.7 yields
    assert o["cities"] == [{"name": "A", "firms": theirs, "attractiveness": calibrated, "talent": calibrated},
                           {"name": "B", "firms": theirs, "talent": mine, "attractiveness": calibrated},
                           {"name": "C", "firms": mine, "anchors": mine}]  # lists other than cities are whole
    assert o["events"] == mine
    assert traced.added == {"A": parent.resolve(), "B": parent.resolve(), "C": child}


# ---------------------------------------------------------------- validate


def test_validate_names_its_source_and_drops_extends():
    data = {"name": "x", "cities": [{"name": "A", "firms": -1}]}
    assert refusal(validate, data) == "<scenario>: cities[A].firms: Input should be greater than or equal to 0"
    assert validate({"name": "x", "extends": "parent.yaml", "cities": [{"name": "A", "firms": 1}]}).extends is None


def test_a_one_sector_scenario_without_parameters_keeps_no_default_weights():
    s = validate({"name": "urn", "sectors": {"all": 1.0}, "cities": [{"name": "A", "firms": 1}]})
    assert s.parameters.lever_effects == {"compute": {}, "data": {}, "anchor": {}}


# ---------------------------------------------------------------- unknown keys


@pytest.mark.parametrize("text, reason", [
    ("cities: [{name: A, firms: 1, polcy: {}}]\n", "cities[A]: unknown key 'polcy' (did you mean 'policy'?)"),
    ("cities: [{name: A, firms: 1, policy: {budgt: 1}}]\n", "cities[A].policy: unknown key 'budgt' (did you mean 'budget'?)"),
    ("cities: [{name: A, firms: 1, policy: {qqq: 1}}]\n",
     "cities[A].policy: unknown key 'qqq'; known keys: budget, allocation, strategy, learning_rate"),
    ("cities: [{name: A, firms: 1, anchors: [{name: Big, sector: upstream, sectr: 1}]}]\n",
     "cities[A].anchors[Big]: unknown key 'sectr' (did you mean 'sector'?)"),
    (OK + "events: [{year: 2017, city: A, invest: {dat: 1}}]\n", "events[0].invest: unknown key 'dat' (did you mean 'data'?)"),
    ("parameters: {depreciation: {compte: 0.1}}\n" + OK,
     "parameters.depreciation: unknown key 'compte' (did you mean 'compute'?)"),
    ("cities: [{name: A, firms: 1, policy: {" + "z" * 100 + ": 1}}]\n",
     "cities[A].policy: unknown key '" + "z" * 80 + "…'; known keys: budget, allocation, strategy, learning_rate"),
    ("qqq: 1\n" + OK, f"(top level): unknown key 'qqq'; known keys: {SCENARIO_KEYS}"),
])
def test_an_unknown_key_is_named_with_the_closest_known_key(tmp_path: Path, text: str, reason: str):
    path = write(tmp_path, "s.yaml", "name: x\n" + text)
    assert refusal(load_scenario, path) == f"{path}: {reason}"


class Inner(Strict):
    """A small model for :func:`load_model`."""

    x: int = 0


class Outer(Strict):
    """Models under a mapping (whose keys are data) and under an optional field."""

    items: dict[str, Inner] = {}
    one: Inner | None = None


@pytest.mark.parametrize("text, reason", [
    ("one: {y: 1}\n", "one: unknown key 'y'; known keys: x"),
    ("items: {k: {y: 1}}\n", "items.k: unknown key 'y'"),  # the schema is not followed through data keys: no guess
    ("zz: 1\n", "(top level): unknown key 'zz'; known keys: items, one"),
    ("items: 5\n", "items: Input should be a valid dictionary"),
    ("[1]\n", "(top level): the file must be a mapping, got list"),
])
def test_load_model_refusals(tmp_path: Path, text: str, reason: str):
    path = write(tmp_path, "input.yaml", text)
    assert refusal(lambda p: load_model(p, Outer), path) == f"{path}: {reason}"
    assert load_model(write(tmp_path, "good.yaml", "one: {x: 2}\nitems: {k: {x: 3}}\n"), Outer) == Outer(
        one=Inner(x=2), items={"k": Inner(x=3)})


class Fragile(Strict):
    """A model whose checks fail after construction, and with errors pydantic does not wrap.

    pydantic wraps a ``ValueError`` (a located one included) raised by a
    validator or by ``model_post_init`` into its ``ValidationError``; an
    ``ArithmeticError`` (``int(inf)``, ``10.0 ** 400``) or a runaway recursion
    escapes it, and the loader must still refuse in one line.
    """

    x: float = 0

    def model_post_init(self, context: object) -> None:
        if self.x == 1:
            raise located(("x",), "checked after construction")

    @model_validator(mode="after")
    def _arithmetic(self) -> Fragile:
        if self.x == 2:
            int(float("inf"))  # OverflowError: cannot convert float infinity to integer
        if self.x == 3:
            raise RecursionError("maximum recursion depth exceeded")
        return self


@pytest.mark.parametrize("text, reason", [
    ("x: 1\n", "x: checked after construction"),
    ("x: 2\n", "(top level): cannot be validated: cannot convert float infinity to integer"),
    ("x: 3\n", "(top level): cannot be validated: maximum recursion depth exceeded"),
])
def test_errors_after_construction_or_outside_pydantic_are_one_line_refusals(tmp_path: Path, text: str, reason: str):
    path = write(tmp_path, "input.yaml", text)
    assert refusal(lambda p: load_model(p, Fragile), path) == f"{path}: {reason}"
    assert load_model(write(tmp_path, "good.yaml", "x: 4\n"), Fragile) == Fragile(x=4)


@pytest.mark.parametrize(("child_city", "parent_city"), [
    ("{name: ShenZhen, firms: 5}", "Shenzhen"), ("{name: XIAN, firms: 5}", "Xi'an"),
    ("{name: 'Hong  Kong', firms: 5}", "Hong Kong"),
])
def test_a_complete_new_city_named_like_a_parents_city_is_added_with_a_warning(tmp_path: Path, child_city: str,
                                                                                   parent_city: str):
    write(tmp_path, "parent.yaml", f"name: p\ncities: [{{name: \"{parent_city}\", firms: 10}}, {{name: Beijing, firms: 20}}]\n")
    child = write(tmp_path, "child.yaml", f"extends: parent.yaml\ncities: [{child_city}, {{name: Beijing2, firms: 3}}]\n")
    with pytest.warns(LookAlikeCityWarning) as caught:
        scenario = load_scenario(child)
    assert len(scenario.cities) == 4
    look_alikes = [w for w in caught if w.category is LookAlikeCityWarning]
    assert len(look_alikes) == 1  # Beijing2 is a different name, not a different spelling
    name = scenario.cities[2].name
    assert str(look_alikes[0].message) == (
        f"{child}: cities[{quoted(name)}]: a new city beside the parent's {parent_city!r} (the names differ only in "
        f"case, spaces or punctuation); to change {parent_city!r}, write its name as the parent does")
