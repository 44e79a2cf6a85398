"""The README never rots: its table of what a run writes matches the files, and its example commands run.

Both tests parse README.md, so they follow it as it changes: the table's rows name a
file and list its columns in backticks; every ``modu ...`` line of a code block is run
on tiny settings (one replication, few samples, the serial executor, ``--out`` in a
temporary folder).
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path

import click
import pandas as pd
import pytest
from click.testing import CliRunner

from sim.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

TINY = {"--replications": "1", "--samples": "2", "--particles": "10", "--generations": "1", "--predictive": "10",
        "--sbc": "2", "--reduced-particles": "10", "--reduced-generations": "1", "--executor": "serial"}
"""Options set (or added, where the command has them) so that an example runs in seconds."""

SERVES = {"app"}
"""Commands that serve a page until stopped: checked with --help only."""


def readme_table(text: str, heading: str) -> dict[str, list[str]]:
    """The first table under ``heading``: file (first cell, in backticks) → the backticked column names of its last cell."""
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and (name := re.fullmatch(r"`([^`]+)`", cells[0])):
            table[name.group(1)] = [c.strip() for quoted in re.findall(r"`([^`]+)`", cells[-1])
                                    for c in quoted.split(",")]
    return table


def example_commands(text: str) -> list[list[str]]:
    """Every ``modu ...`` command in the code blocks (continuation lines joined; ``a && modu b`` gives ``modu b``)."""
    commands, blocks, block, language = [], [], None, ""
    for line in text.splitlines():  # fences opened and closed in turn: prose between blocks is never read
        if line.startswith("```"):
            if block is None:
                block, language = [], line[3:].strip()
            else:
                if language in ("", "bash", "sh", "shell", "console"):
                    blocks.append("\n".join(block))
                block = None
        elif block is not None:
            block.append(line)
    for text_block in blocks:
        for line in text_block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words[:1] == ["modu"]:
                    commands.append(words[1:])
    return commands


def tiny(args: list[str], out: Path, written: dict[str, Path] | None = None) -> list[str]:
    """``args`` with the TINY settings, ``--sample KIND:N`` cut to 2 points and ``--out`` moved to ``out``.

    ``written`` maps the ``--out`` folders of earlier examples to where they were moved, so an example
    that reads an earlier one's output (``modu discover`` on a sweep) reads it there; this one's is added.
    """
    written = {} if written is None else written
    if "--out" in args:
        written[args[args.index("--out") + 1]] = out
    args = [str(written.get(word, word)) if i and args[i - 1] != "--out" else word for i, word in enumerate(args)]
    command = main.get_command(click.Context(main), args[0])
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    wanted = {**TINY, "--out": str(out)}
    result, i = [args[0]], 1
    while i < len(args):
        word = args[i]
        if word in wanted and word in options:
            result += [word, wanted.pop(word)]
            i += 2
        elif word == "--sample":
            result += [word, args[i + 1].split(":")[0] + ":2"]
            i += 2
        else:
            result.append(word)
            i += 1
    result += [word for option, value in wanted.items() if option in options for word in (option, value)]
    return result + (["--quiet"] if "--quiet" in options else [])


def test_every_csv_of_a_run_has_the_columns_the_readme_lists(tmp_path: Path):
    documented = readme_table(README.read_text(encoding="utf-8"), "## What a run writes")
    scenario = ROOT / "scenarios" / "baseline.yaml"
    result = CliRunner().invoke(main, ["run", str(scenario), "--replications", "2", "--executor", "serial",
                                       "--no-figures", "--quiet", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in tmp_path.glob("*.csv"))
    assert written and all(name in documented for name in written), f"README's table lacks {written}"
    for name in written:
        columns = list(pd.read_csv(tmp_path / name, nrows=1).columns)
        listed = documented[name]
        unlisted = [c for c in columns if not any(fnmatch.fnmatchcase(c, pattern) for pattern in listed)]
        absent = [p for p in listed if not any(fnmatch.fnmatchcase(c, p) for c in columns)]
        assert not unlisted and not absent, f"README's {name} row: not listed {unlisted}, not in the file {absent}"


def test_readme_examples_parse_as_commands():
    commands = example_commands(README.read_text(encoding="utf-8"))
    assert len(commands) >= 3 and all(args and args[0] in main.list_commands(click.Context(main)) for args in commands)


@pytest.fixture(scope="module")
def written() -> dict[str, Path]:
    """The output folders of the examples run so far (README order), by the ``--out`` the README gives."""
    return {}


@pytest.mark.parametrize("args", example_commands(README.read_text(encoding="utf-8")), ids=lambda a: " ".join(a)[:60])
def test_every_readme_example_runs_on_tiny_settings(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     written: dict[str, Path]):
    monkeypatch.chdir(ROOT)  # the examples name files relative to the repository
    if "--cart" in args:
        pytest.importorskip("sklearn", reason="--cart needs the discover extra (pip install -e '.[discover]'); "
                                              "CI's job 2 installs it and runs this example")
    if args[0] in SERVES:
        command = [args[0], "--help"]
    else:
        command = tiny(args, tmp_path / "out", written)
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, f"modu {shlex.join(command)}: {result.output}"
