"""``modu schema``: the JSON Schema of scenario files accepts every shipped scenario and refuses what pydantic refuses."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from sim.cli import main
from sim.scenario import load_scenario
from sim.scenario.resources import SCENARIOS_DIR

jsonschema = pytest.importorskip("jsonschema", reason="the test extra installs jsonschema: pip install -e '.[test]'")

SHIPPED = sorted(SCENARIOS_DIR.glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> "jsonschema.Draft202012Validator":
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_carries_units_and_descriptions(validator):
    network_effect = validator.schema["$defs"]["Parameters"]["properties"]["network_effect"]
    assert network_effect["unit"] == "utility per log-firm" and network_effect["symbol"] == "α"
    assert network_effect["description"] and network_effect["minimum"] == 0
    assert validator.schema["else"]["required"] == ["name", "cities"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_is_valid_against_the_schema(validator, path: Path):
    validator.validate(load_scenario(path).resolved())  # as resolved plain data
    validator.validate(yaml.safe_load(path.read_text()))  # as written (a child leaves fields to its parent)


def test_only_a_file_without_extends_must_be_complete(validator):
    child = {"extends": "china.yaml", "cities": [{"name": "Hefei", "policy": {"budget": 4}}]}
    assert validator.is_valid(child)
    assert not validator.is_valid({k: v for k, v in child.items() if k != "extends"} | {"name": "x"})  # no firms
    assert not validator.is_valid({"name": "x"})  # no cities
    assert validator.is_valid({"name": "x", "cities": [{"name": "A", "firms": 10}]})


@pytest.mark.parametrize("change, where", [
    ({"parameters": {"netwrok_effect": 1.2}}, "netwrok_effect"),
    ({"parameters": {"network_effect": -1}}, "-1"),
    ({"engine": "cells"}, "cells"),
    ({"cities": []}, "[]"),
])
def test_the_schema_refuses_what_the_scenario_refuses(validator, change: dict, where: str):
    data = {**load_scenario(SCENARIOS_DIR / "baseline.yaml").resolved(), **change}
    errors = list(validator.iter_errors(data))
    assert errors and where in "; ".join(e.message for e in errors)


def test_schema_out_writes_the_same_text_to_a_file(tmp_path: Path):
    printed = CliRunner().invoke(main, ["schema"]).output
    result = CliRunner().invoke(main, ["schema", "--out", str(tmp_path / "scenario.schema.json")])
    assert result.exit_code == 0 and (tmp_path / "scenario.schema.json").read_text() == printed


def test_the_committed_schema_is_the_one_modu_schema_prints():
    committed = Path(__file__).resolve().parents[2] / "docs" / "scenario.schema.json"
    assert committed.read_text() == CliRunner().invoke(main, ["schema"]).output, \
        "docs/scenario.schema.json is stale: run `modu schema --out docs/scenario.schema.json`"
