"""Property-based fuzzing of the scenario loader (issue 8).

Every document -- mutated valid scenarios, random YAML token soup, random
trees, random bytes -- must end in either a valid :class:`Scenario` or a
:class:`ScenarioError` whose message is one line ``file: field: reason``;
never another exception, never a hang, never a file written. Most examples
call :func:`sim.scenario.load_scenario` in-process; a few hundred go through
the ``modu`` command (in-process with click's runner, and a few real
subprocesses) to check exit code 2, one line on stderr and nothing written.
"""

from __future__ import annotations

import copy
import datetime
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import rich_scenario_dict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cli import main
from sim.scenario import Scenario, ScenarioError, load_scenario
from sim.scenario.errors import MAX_MESSAGE_CHARS
from sim.scenario.reading import MAX_FILE_BYTES

EXAMPLE_TIME_LIMIT_S = 30
"""An example taking longer than this is a hang (loading a small file takes milliseconds)."""



def fuzz(examples: int) -> settings:
    """Hypothesis settings of a fuzz test: no per-example deadline (the machine may be loaded; hangs are
    caught by :func:`time_limit`), ``examples`` examples."""
    return settings(max_examples=examples, deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


@contextmanager
def time_limit(seconds: float = EXAMPLE_TIME_LIMIT_S) -> Iterator[None]:
    """Fail (instead of hanging the suite) if the body runs longer than ``seconds``."""
    def alarm(signum, frame):
        raise TimeoutError(f"example took more than {seconds} s")
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def snapshot(root: Path) -> dict[str, int]:
    """Every file and folder under ``root`` with its size (folders: -1)."""
    return {str(p.relative_to(root)): (-1 if p.is_dir() else p.stat().st_size) for p in root.rglob("*")}


def load_outcome(path: Path) -> Scenario | ScenarioError:
    """Load a scenario, in bounded time, inside a folder that must not change; returns the scenario or the refusal."""
    before = snapshot(path.parent)
    with time_limit():
        try:
            outcome: Scenario | ScenarioError = load_scenario(path)
        except ScenarioError as exc:
            outcome = exc
    assert snapshot(path.parent) == before, "loading a scenario wrote a file"
    if isinstance(outcome, ScenarioError):
        check_message(str(outcome), path)
    return outcome


def check_message(message: str, path: Path) -> None:
    """One line, ``file: field: reason`` (the file being this one or one it extends), bounded, no Python internals."""
    assert "\n" not in message and len(message.splitlines()) == 1, message
    assert len(message) <= MAX_MESSAGE_CHARS
    match = re.match(r"(?P<file>[^:]+): (?P<rest>.+)$", message)
    assert match and (match["file"] == str(path) or Path(match["file"]).parent == path.parent), message
    assert re.match(r".+?: \S", match["rest"]) or match["rest"].startswith(("file is", "not UTF-8")), message
    assert "Traceback" not in message and "object at 0x" not in message, message


def write(folder: Path, text: str | bytes, name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


# ------------------------------------------------------------------ documents and mutations
BASE = rich_scenario_dict()
PARENT = {"name": "parent", "time": {"start": 2016, "end": 2018, "steps_per_year": 2}, "replications": 2,
          "cities": [{"name": "A", "firms": 100, "policy": {"budget": 3}}, {"name": "B", "firms": 50}]}
CHILD = {"extends": "parent.yaml", "name": "child", "cities": [{"name": "A", "firms": 120}, {"name": "C", "firms": 5}],
         "parameters": {"birth_rate": 0.01}}
DOCUMENTS = {"rich": BASE, "child": CHILD}

DICT_FIELDS = {"sectors", "sector_mix", "complementarity", "lever_effects"}
"""Mappings whose keys are data (sector or lever names), not field names."""
UNKNOWN_KEYS = st.from_regex(r"zz[a-z_]{0,10}", fullmatch=True)
"""Keys no model has."""
REQUIRED = {("name",), ("cities",), ("cities", "*", "name"), ("cities", "*", "firms"), ("cities", "*", "anchors", "*", "name"),
            ("cities", "*", "anchors", "*", "sector"), ("events", "*", "year"), ("events", "*", "city")}


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a document (keys and list indices), the root excluded."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from paths(child, (*prefix, key))


def label(doc: Any, path: tuple[Any, ...]) -> str:
    """The field path as refusals write it: dotted, list items by their ``name`` when they have one."""
    parts: list[str] = []
    node = doc
    for key in path:
        if isinstance(key, int):
            item = node[key] if isinstance(node, list) and key < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            parts[-1] += f"[{name}]" if isinstance(name, str) else f"[{key}]"
        else:
            parts.append(str(key))
        node = node[key] if isinstance(node, dict | list) and _has(node, key) else None
    return ".".join(parts)


def _has(node: dict | list, key: Any) -> bool:
    return key in node if isinstance(node, dict) else isinstance(key, int) and key < len(node)


def get_parent(doc: Any, path: tuple[Any, ...]) -> Any:
    node = doc
    for key in path[:-1]:
        node = node[key]
    return node


def is_model_mapping(path: tuple[Any, ...]) -> bool:
    """Whether the mapping at ``path`` has fixed field names (unknown keys are refused)."""
    named = [k for k in path if isinstance(k, str)]
    return not (named and named[-1] in DICT_FIELDS) and not (len(named) > 1 and named[-2] in DICT_FIELDS)


def one_line_text() -> st.SearchStrategy[str]:
    return st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**62, max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([-0.0, 5e-324, 1e308, -1e308, 0.5, 1 / 3]),
    one_line_text(), st.dates(), st.binary(max_size=20),
    st.sampled_from(["", " ", "agents", "counts", "fixed", "imitate", "A", "Beijing", "upstream", "1e3", "0x10", "nan",
                     "yes", "on", "~", "null", "2016-13-45", "\n", "a\nb", "\x85", "\u2028", "é", "模都"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.one_of(one_line_text(), SCALARS), inner, max_size=4)),
                      max_leaves=12)


@st.composite
def mutated(draw: st.DrawFn, wrong_kind: bool = False) -> tuple[str, dict[str, Any], tuple[str, tuple[Any, ...]]]:
    """A document with one to three mutations; returns (document name, document, (last operation, its path)).

    With ``wrong_kind``, one mutation of the document without ``extends`` (whose paths are the merged paths):
    a value replaced by one of the wrong kind (a list for a mapping, a mapping for anything else).
    """
    name = "rich" if wrong_kind else draw(st.sampled_from(sorted(DOCUMENTS)))
    doc = copy.deepcopy(DOCUMENTS[name])
    ops = ["wrong_kind"] if wrong_kind else draw(st.lists(st.sampled_from(
        ["delete", "replace", "unknown_key", "rename", "duplicate_item", "wrap", "wrong_kind", "nest"]), min_size=1, max_size=3))
    last: tuple[str, tuple[Any, ...]] = ("none", ())
    for op in ops:
        candidates = list(paths(doc))
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent, key = get_parent(doc, path), path[-1]
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(VALUES)
        elif op == "unknown_key" and isinstance(parent[key], dict):
            new = draw(UNKNOWN_KEYS)
            parent[key][new] = draw(VALUES)
            path = (*path, new)
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(one_line_text())] = parent.pop(key)
        elif op == "duplicate_item" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        elif op == "wrap":
            parent[key] = [parent[key]]
        elif op == "wrong_kind":
            parent[key] = [[1]] if isinstance(parent[key], dict) else {"x": [[1]]}
        elif op == "nest":
            depth = draw(st.integers(1, 60))
            value: Any = parent[key]
            for _ in range(depth):
                value = {"k": value} if draw(st.booleans()) else [value]
            parent[key] = value
        last = (op, path)
    return name, doc, last


def dump(doc: Any, flow: bool | None = None, unicode: bool = True) -> str:
    return yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=unicode, sort_keys=False, width=10**6)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    """A folder holding the parent scenario; each example writes its document next to it."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "parent.yaml").write_text(dump(PARENT), encoding="utf-8")
        yield root


def test_the_unmutated_documents_are_valid(folder: Path):
    for doc in DOCUMENTS.values():
        assert isinstance(load_outcome(write(folder, dump(doc))), Scenario)


@fuzz(700)
@given(case=mutated(), flow=st.sampled_from([None, True, False]), unicode=st.booleans())
def test_mutated_scenarios_load_or_are_refused_in_one_line(folder: Path, case, flow, unicode):
    _, doc, (op, path) = case
    outcome = load_outcome(write(folder, dump(doc, flow, unicode)))
    if isinstance(outcome, Scenario):
        assert outcome.digest() == Scenario.model_validate(outcome.resolved()).digest()


@fuzz(300)
@given(case=mutated(wrong_kind=True))
def test_a_value_of_the_wrong_kind_is_refused_naming_its_field(folder: Path, case):
    """A mapping where a list or scalar belongs (or the reverse) is refused, and the message names that field."""
    _, doc, (op, path) = case
    outcome = load_outcome(write(folder, dump(doc)))
    assert isinstance(outcome, ScenarioError)
    assert f": {label(doc, path)}" in str(outcome), (label(doc, path), str(outcome))


@fuzz(150)
@given(data=st.data())
def test_a_missing_required_field_or_an_unknown_key_is_named(folder: Path, data):
    doc = copy.deepcopy(BASE)  # without extends: the paths written are the paths validated
    unknown = not data.draw(st.booleans())
    if not unknown:  # drop a required field
        required = [p for p in paths(doc) if tuple("*" if isinstance(k, int) else k for k in p) in REQUIRED]
        path = data.draw(st.sampled_from(required))
        del get_parent(doc, path)[path[-1]]
    else:  # add a key no model has
        mappings = [()] + [p for p in paths(doc) if isinstance(get_parent(doc, p)[p[-1]], dict) and is_model_mapping(p)]
        where = data.draw(st.sampled_from(mappings))
        target = doc
        for key in where:
            target = target[key]
        new = data.draw(UNKNOWN_KEYS)
        target[new] = data.draw(VALUES)
        path = (*where, new)
    outcome = load_outcome(write(folder, dump(doc)))
    assert isinstance(outcome, ScenarioError)
    if unknown:  # named first, at the mapping that holds it, whatever else is missing
        where_label = label(doc, path[:-1]) if path[:-1] else "(top level)"
        assert f": {where_label}: unknown key " in str(outcome), (where_label, str(outcome))
    else:
        assert f": {label(doc, path)}: " in str(outcome), (label(doc, path), str(outcome))


YAML_TOKENS = st.sampled_from([
    "name", "cities", "firms", "sectors", "parameters", "time", "events", "extends", "policy", "budget", ": ", ":", " ",
    "\n", "\n  ", "\n    ", "- ", "[", "]", "{", "}", ", ", "&a ", "*a", "&b ", "*b", "<<: ", "!!python/object:os.system ",
    "!!python/object/apply:os.system ['true'] ", "!!binary ", "!!int ", "!!float ", "!!timestamp ", "!!set ", "!!omap ",
    "!!pairs ", "!!str ", "!!map ", "!!seq ", "!custom ", "'", '"', "# c", "|", ">", "? ", "---\n", "...\n", "%YAML 1.1\n",
    "%TAG ! tag:x,2000:\n", ".nan", ".inf", "-.inf", "1e999", "9" * 5000, "2016-13-45", "2016-01-01 25:61:61", "~", "null",
    "yes", "1:20", "0x1F", "0o17", "0b2", "\t", "\ufeff", "\x00", "\x85", "\u2028", '"\\ud800"', '"\\x00"', "extends: .",
    "extends: /dev/zero", "extends: scenario.yaml", "extends: parent.yaml", "extends: missing.yaml", "A", "1", "-1", "0.5",
])


@fuzz(500)
@given(tokens=st.lists(st.one_of(YAML_TOKENS, one_line_text()), max_size=40), prefix=st.booleans())
def test_random_yaml_text_loads_or_is_refused_in_one_line(folder: Path, tokens, prefix):
    text = (dump(BASE) if prefix else "") + "".join(tokens)
    load_outcome(write(folder, text))


@fuzz(250)
@given(tree=VALUES, flow=st.sampled_from([None, True, False]))
def test_random_trees_load_or_are_refused_in_one_line(folder: Path, tree, flow):
    load_outcome(write(folder, dump(tree, flow)))


@fuzz(250)
@given(data=st.data())
def test_byte_level_mutations_load_or_are_refused_in_one_line(folder: Path, data):
    raw = bytearray(dump(data.draw(st.sampled_from([BASE, CHILD])), data.draw(st.sampled_from([None, True]))).encode())
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if op == "flip":
            raw[i] = data.draw(st.integers(0, 255))
        elif op == "insert":
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del raw[i:i + data.draw(st.integers(1, 16))]
    load_outcome(write(folder, bytes(raw)))


# ------------------------------------------------------------------ the command line
def cli_refuses(args: list[str], root: Path) -> str:
    """Run ``modu ARGS`` in-process in ``root``; it must exit 2 with one line on stderr and write nothing."""
    before = snapshot(root)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        with time_limit():
            result = CliRunner().invoke(main, args)
    finally:
        os.chdir(cwd)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("modu: error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(root) == before, "a refused run wrote something"
    return lines[0]


@fuzz(120)
@given(case=mutated(wrong_kind=True))
def test_modu_run_refuses_bad_scenarios_with_exit_2_one_line_and_nothing_written(folder: Path, case):
    _, doc, _ = case
    path = write(folder, dump(doc), "bad.yaml")
    line = cli_refuses(["run", str(path), "--out", str(folder / "out"), "--quiet"], folder)
    assert line.startswith(f"modu: error: {path}: ")
    line = cli_refuses(["run", str(path), "--quiet"], folder)  # the default output folder is not created either


@fuzz(80)
@given(tokens=st.lists(st.one_of(YAML_TOKENS, one_line_text()), max_size=30))
def test_modu_validate_never_fails_otherwise_than_by_exit_2(folder: Path, tokens):
    path = write(folder, "".join(tokens), "any.yaml")
    before = snapshot(folder)
    with time_limit():
        result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert (result.exit_code, len(result.stderr.splitlines())) in ((0, 0), (2, 1)), result.stderr
    assert snapshot(folder) == before


# ------------------------------------------------------------------ what the fuzzer found, kept as regressions
LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
BOMB = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + LAUGHS
MAP_BOMB = "m0: &m0 {x: 1, y: 2}\n" + "".join(f"m{i}: &m{i} {{p: *m{i - 1}, q: *m{i - 1}}}\n" for i in range(1, 26))
OK_CITIES = "cities: [{name: A, firms: 1}]\n"


@pytest.mark.parametrize("text, expected", ids=lambda value: re.sub(r"\W+", "_", value[:24]), argvalues=[
    ("name: x\ndescription: 2016-13-45\n" + OK_CITIES, "line 2: cannot read '2016-13-45' as timestamp: month must be in 1..12"),
    ("name: x\nseed: " + "9" * 5000 + "\n" + OK_CITIES, "line 2: cannot read '" + "9" * 40 + "' as int: Exceeds the limit"),
    ("name: x\nseed: !!int abc\n" + OK_CITIES, "line 2: cannot read 'abc' as int: invalid literal"),
    ("name: x\nseed: !!float abc\n" + OK_CITIES, "line 2: cannot read 'abc' as float: could not convert"),
    ("name: x\nseed: !!float\n" + OK_CITIES, "line 2: cannot read '' as float"),
    ("name: x\nseed: !!timestamp\n" + OK_CITIES, "line 2: cannot read '' as timestamp"),
    ("name: x\npool: !!bool\n" + OK_CITIES, "line 2: cannot read '' as bool"),
    ("!!map name\n", "line 1: expected a mapping node, but found scalar"),
    ("!!set : \n", "line 1: found unhashable key"),
    ("name: x\ncities: !!set [a]\n", "line 2: expected a mapping node, but found sequence"),
    ('name: "\\ud800"\n' + OK_CITIES, "line 1: cannot read '\\ud800' as str: 'utf-8' codec can't encode"),
    ("name: x\nname: y\n" + OK_CITIES, "duplicate key 'name'"),
    ('name: x\n"a\\nb": 1\n' + OK_CITIES, ": (top level): unknown key 'a\\nb'"),
    ('name: x\ncities: [{name: "A\\nB", firms: -1}]\n', ": cities['A\\nB'].firms: Input should be greater than or equal to 0"),
    ("name: x\ncities: [{name: A, firms: 1, sector_mix: {" + "z" * 1000 + ": 1}}]\n", ": unknown sector 'zzzz"),
    ("name: x\n" + BOMB + OK_CITIES, ": (top level): unknown key 'l0'"),
    ("name: x\ncities: &c [*c]\n", ": cities[0]: Input should be a valid dictionary"),
    ("&a {name: x, cities: [*a]}\n", "cities[x]: unknown key 'cities'"),
    ("name: x\ndescription: " + "[" * 100_000 + "]" * 100_000 + "\n", "invalid YAML: nested too deeply"),
    ("name: x\ndescription: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", "invalid YAML: nested too deeply"),
    ("!!python/object/apply:os.system ['touch pwned']\n", "could not determine a constructor"),
    ("name: !!python/name:os.system\n" + OK_CITIES, "could not determine a constructor"),
    ("name: x\n? [a, b]\n: 1\n" + OK_CITIES, "found unhashable key"),
    ("name: x\n2016-01-01: 1\n" + OK_CITIES, "datetime.date(2016, 1, 1): Keys should be strings"),
    ("name: x\n~: 1\n" + OK_CITIES, "None: Keys should be strings"),
    ("", "(top level): a scenario must be a mapping, got NoneType"),
    ("- a\n- b\n", "(top level): a scenario must be a mapping, got list"),
    ("name: x\x00\n", "unacceptable character #x0000"),
    ('extends: "a\\0b"\nname: x\n' + OK_CITIES, "extends: cannot use 'a\\x00b': embedded null byte"),
    ("extends: " + "a" * 5000 + "\nname: x\n" + OK_CITIES, "extends: cannot use"),
    ("extends: [parent.yaml]\nname: x\n", "extends: must be a path to another scenario"),
    ("extends: missing.yaml\nname: x\n", "extends: no scenario file at"),
    ("extends: .\nname: x\n", "extends: no scenario file at"),
    ("extends: scenario.yaml\nname: x\n", "extends: cycle"),
    ("extends: list_names.yaml\ncities: [{name: [2], firms: 1}]\n",
     "list_names.yaml: cities[0].name: Input should be a valid string"),
])
def test_found_bugs_stay_fixed(tmp_path: Path, text: str, expected: str):
    (tmp_path / "parent.yaml").write_text(dump(PARENT), encoding="utf-8")
    (tmp_path / "list_names.yaml").write_text("name: p\ncities: [{name: [1], firms: 1}]\n", encoding="utf-8")
    outcome = load_outcome(write(tmp_path, text))
    assert isinstance(outcome, ScenarioError) and expected in str(outcome), str(outcome)
    assert not (tmp_path / "pwned").exists()


def test_a_bom_is_allowed_and_other_encodings_are_refused(tmp_path: Path):
    assert isinstance(load_outcome(write(tmp_path, b"\xef\xbb\xbfname: x\n" + OK_CITIES.encode())), Scenario)
    outcome = load_outcome(write(tmp_path, ("name: x\n" + OK_CITIES).encode("utf-16")))
    assert isinstance(outcome, ScenarioError) and "not UTF-8 text (byte 0)" in str(outcome)
    outcome = load_outcome(write(tmp_path, b"name: \xff\xfe\n"))
    assert isinstance(outcome, ScenarioError) and "not UTF-8 text (byte 6)" in str(outcome)


def test_alias_expansion_through_extends_stays_fast(tmp_path: Path):
    """A parent and a child that both hold 2**25-leaf alias trees under one key would take minutes to merge."""
    (tmp_path / "bomb.yaml").write_text("name: x\n" + OK_CITIES + "parameters:\n" + textwrap.indent(MAP_BOMB, "  "))
    outcome = load_outcome(write(tmp_path, "extends: bomb.yaml\nparameters:\n" + textwrap.indent(MAP_BOMB, "  ")))
    assert isinstance(outcome, ScenarioError) and "bomb.yaml: parameters: unknown key 'm0'" in str(outcome)


def test_things_that_are_not_regular_files_are_refused_without_blocking(tmp_path: Path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path, Path("/dev/zero")):
        assert str(load_scenario_error(path)) == f"{path}: cannot read: not a regular file"
    missing = load_outcome(tmp_path / "missing.yaml")
    assert isinstance(missing, ScenarioError) and "cannot read: No such file or directory" in str(missing)


def load_scenario_error(path: Path) -> ScenarioError:
    with time_limit():
        with pytest.raises(ScenarioError) as info:
            load_scenario(path)
    return info.value


def test_size_limits_on_a_file_and_on_an_extends_chain(tmp_path: Path):
    big = write(tmp_path, "name: x\n" + OK_CITIES + "#" * MAX_FILE_BYTES, "big.yaml")
    outcome = load_outcome(big)
    assert isinstance(outcome, ScenarioError) and f"at most {MAX_FILE_BYTES} bytes" in str(outcome)
    half = "#" * (MAX_FILE_BYTES // 2 + 1)
    (tmp_path / "p.yaml").write_text("name: p\n" + OK_CITIES + half)
    outcome = load_outcome(write(tmp_path, "extends: p.yaml\nname: x\n" + half))
    assert isinstance(outcome, ScenarioError) and "p.yaml: file is" in str(outcome) and "together" in str(outcome)


def test_an_extends_chain_is_bounded(tmp_path: Path):
    for i in range(40):
        (tmp_path / f"s{i}.yaml").write_text(f"extends: s{i + 1}.yaml\n" if i < 39 else "name: x\n" + OK_CITIES)
    outcome = load_outcome(tmp_path / "s0.yaml")
    assert isinstance(outcome, ScenarioError) and "extends: chain longer than" in str(outcome)


@pytest.mark.parametrize("make", ["directory", "python_tag"])
def test_the_real_command_refuses_in_one_line_with_exit_2(tmp_path: Path, make: str):
    """Real subprocesses: the installed entry point, exit code 2, exactly one line on stderr, nothing written."""
    target = tmp_path / make
    if make == "directory":
        target.mkdir()
    else:
        target.write_text(f"!!python/object/apply:os.system ['touch {tmp_path}/pwned']\n")
    before = snapshot(tmp_path)
    result = subprocess.run([sys.executable, "-m", "sim", "run", str(target), "--quiet"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"modu: error: {target}: "), result.stderr
    assert snapshot(tmp_path) == before


def test_dates_and_binary_that_pydantic_accepts_are_plain_data(tmp_path: Path):
    """YAML's own types never build objects beyond plain data: bytes become text, dates are refused where text belongs."""
    scenario = load_outcome(write(tmp_path, "name: !!binary aGVsbG8=\n" + OK_CITIES))
    assert isinstance(scenario, Scenario) and scenario.name == "hello"
    outcome = load_outcome(write(tmp_path, "name: 2016-01-01\n" + OK_CITIES))
    assert isinstance(outcome, ScenarioError) and ": name: Input should be a valid string" in str(outcome)


def test_yaml_timestamps_in_numbers_are_refused(tmp_path: Path):
    text = f"name: x\n{OK_CITIES}events: [{{year: {datetime.date(2017, 1, 1)}, city: A, budget: 1}}]\n"
    outcome = load_outcome(write(tmp_path, text))
    assert isinstance(outcome, ScenarioError) and "events[0].year" in str(outcome)
