"""The documentation stays in step with the code."""

import re
from pathlib import Path

from click.testing import CliRunner

from sim.cli import main
from sim.model.parameters import parameter_table

ROOT = Path(__file__).resolve().parents[2]


def test_every_parameter_is_documented_in_the_odd_table_as_in_the_code():
    odd = (ROOT / "docs" / "ODD.md").read_text(encoding="utf-8")
    for row in parameter_table():
        expected = "| `{name}` | {symbol} | {unit} | {default} | {bounds} | {meaning} | {source} |".format(**row)
        assert expected in odd, f"docs/ODD.md's parameter row for {row['name']} differs from sim/model/parameters.py"
    documented = set(re.findall(r"^\| `(\w+)` \|", odd, flags=re.M))
    assert documented == {row["name"] for row in parameter_table()}


def test_readme_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1]
    block = quick.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.strip().splitlines() if line.strip()]
    assert len(commands) == 2
    assert "modu run scenarios/baseline.yaml" in commands[0]
    assert commands[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_cli_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = main.list_commands(None)
    assert {"run", "validate", "sweep", "compare", "calibrate", "rerun"} <= set(names)
    for name in names:
        assert f"modu {name}" in readme, f"README does not mention `modu {name}`"
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0 and "Usage: " in result.output, (name, result.output)
