"""MkDocs hooks of the documentation site (``mkdocs.yml``): pages made from the repository at build time.

Nothing here is copied by hand into docs/: the guide is README.md and the
newcomer's walk-through CONTRIBUTING.md (their ``docs/`` links rewritten for
the site), the notebooks, benchmark and calibration reports are added from
their own folders, the scenario reference
is generated from the pydantic schema (``Scenario.model_json_schema()``), and
the API reference is one mkdocstrings page per public module.
"""

from __future__ import annotations

import json
import pkgutil
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority, get_plugin_logger
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
"""The repository's top folder."""

log = get_plugin_logger("modu")
"""Warnings of these hooks (``mkdocs build --strict`` fails on them)."""

FROM_REPOSITORY = ["SECURITY.md", "benchmarks/RESULTS.md", "calibration/report.md", "calibration/figures/*.png",
                   "notebooks/*.ipynb"]
"""Files the site takes from their own folders, at the same paths."""

API_PACKAGES = ["sim", "sim.model", "sim.scenario"]
"""Public modules documented as a whole (their ``__init__``)."""

API_TREES = ["sim.experiments", "sim.inference", "sim.policy", "sim.reporting", "sim.app", "sim.analysis"]
"""Public packages documented module by module."""

API_NAV = "API"
"""The nav entry (under Reference) the API pages are listed in."""


def api_modules() -> list[str]:
    """The public modules, in reference order: the three packages, then every module of the three trees."""
    modules = list(API_PACKAGES)
    for tree in API_TREES:
        folder = ROOT.joinpath(*tree.split("."))
        modules += [tree] + sorted(m.name for m in pkgutil.iter_modules([str(folder)], f"{tree}."))
    return modules


def _api_page(module: str) -> str:
    return f"reference/api/{module}.md"


def on_config(config: Any) -> Any:
    """List the API pages in the nav (under Reference → API)."""
    pages = [{module: _api_page(module)} for module in api_modules()]
    for section in config["nav"]:
        for entry in section.get("Reference", []) if isinstance(section, dict) else []:
            if API_NAV in entry:
                entry[API_NAV] = pages
    return config


def repository_page(name: str) -> str:
    """A page of the repository's top folder (README.md, CONTRIBUTING.md) as the site shows it.

    Links into docs/ point at the site's pages, and links to README.md at the front page it becomes.
    """
    text = (ROOT / name).read_text(encoding="utf-8")
    return re.sub(r"\]\(docs/", "](", text).replace("](README.md)", "](index.md)")


def readme_page() -> str:
    """README.md as the site's front page."""
    return repository_page("README.md")


def _schema() -> dict[str, Any]:
    """The scenario schema of this repository's ``sim`` (not of another installed copy)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from sim.scenario.schema import Scenario

    if not Path(sys.modules["sim"].__file__).resolve().is_relative_to(ROOT):
        raise RuntimeError(f"sim is imported from {sys.modules['sim'].__file__}, not {ROOT}: set PYTHONPATH={ROOT}")
    return Scenario.model_json_schema()


def _type(prop: dict[str, Any]) -> str:
    """A JSON-schema property's type in words (``number``, ``array of City``, ``Policy or null``)."""
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[1]
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    if "allOf" in prop:
        return " and ".join(_type(p) for p in prop["allOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"array of {_type(prop.get('items', {}))}"
    if kind == "object" and "additionalProperties" in prop and isinstance(prop["additionalProperties"], dict):
        return f"map to {_type(prop['additionalProperties'])}"
    if "enum" in prop:
        return " | ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    return kind


CONSTRAINTS = {"minimum": "≥ {}", "exclusiveMinimum": "> {}", "maximum": "≤ {}", "exclusiveMaximum": "< {}",
               "minLength": "length ≥ {}", "maxLength": "length ≤ {}", "minItems": "≥ {} items",
               "maxItems": "≤ {} items", "pattern": "matches `{}`"}
"""JSON-schema keywords shown as constraints, and how."""


def _constraints(prop: dict[str, Any]) -> str:
    """A property's bounds, from it and from the alternatives of an ``anyOf``."""
    parts = [fmt.format(prop[key]) for key, fmt in CONSTRAINTS.items() if key in prop]
    for alternative in prop.get("anyOf", []):
        parts += [fmt.format(alternative[key]) for key, fmt in CONSTRAINTS.items() if key in alternative]
    if prop.get("enum") and prop.get("type") is None:
        parts.append("one of " + ", ".join(f"`{v}`" for v in prop["enum"]))
    return ", ".join(parts)


CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")
"""A Markdown code span (its opening and closing runs of backticks are as long)."""


def _cell(text: Any) -> str:
    """Text safe in a Markdown table cell: one line, each ``|`` outside code spans escaped.

    A ``|`` inside a code span does not split a cell (Python-Markdown's tables) and an
    escape there would show, so code spans are left as they are.
    """
    text = str(text).replace("\n", " ")
    pieces, end = [], 0
    for span in CODE_SPAN.finditer(text):
        pieces += [text[end:span.start()].replace("|", "\\|"), span.group()]
        end = span.end()
    return "".join(pieces) + text[end:].replace("|", "\\|")


def table_cells(row: str) -> int:
    r"""How many cells a Markdown table row has, as Python-Markdown splits it.

    Outer pipes are optional; a ``|`` escaped (``\|``) or inside a code span does
    not split.
    """
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = CODE_SPAN.sub("code", re.sub(r"\\.", "x", row))
    row = row[:-1] if row.endswith("|") else row
    return row.count("|") + 1


TABLE_RULE = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
"""The line under a table's header (``|---|:--:|``)."""


def broken_table_rows(markdown: str) -> list[str]:
    """Rows of the Markdown tables in ``markdown`` whose cell count differs from their header's.

    Python-Markdown drops a row's extra cells and pads missing ones, so such a row
    builds silently with its cells under the wrong columns. Fenced code blocks are
    skipped.

    Returns:
        One line per broken row: its line number, its cells against the header's, its start.
    """
    lines = markdown.splitlines()
    broken, fenced, i = [], False, 0
    while i < len(lines):
        if lines[i].lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and "|" in lines[i] and i + 1 < len(lines) and TABLE_RULE.match(lines[i + 1]):
            header = table_cells(lines[i])
            i += 2
            while i < len(lines) and lines[i].strip() and "|" in lines[i]:
                if (cells := table_cells(lines[i])) != header:
                    broken.append(f"line {i + 1}: {cells} cells, its header {header}: {lines[i].strip()[:80]}")
                i += 1
            continue
        i += 1
    return broken


def scenario_reference() -> str:
    """Every key of a scenario file, by section: type, unit, default, constraints and meaning, from the schema."""
    schema = _schema()
    sections = [("Scenario", schema), *sorted(schema.get("$defs", {}).items())]
    lines = ["# Scenario files", "",
             "Every key a scenario YAML file may hold, generated from the schema the loader validates "
             "against (`sim.scenario.schema.Scenario.model_json_schema()`). Keys not listed are refused. "
             "A key whose type names another section (e.g. `City`) holds a mapping with that section's keys.", ""]
    for name, section in sections:
        lines += [f"## {name}", "", _cell(section.get("description", "")), "",
                  "| key | type | unit | default | constraints | meaning | source |",
                  "|---|---|---|---|---|---|---|"]
        required = set(section.get("required", []))
        for key, prop in section.get("properties", {}).items():
            if key in required:
                default = "required"
            elif "default" in prop:
                default = f"`{json.dumps(prop['default'], ensure_ascii=False)}`"
            else:  # a default_factory: the section's own defaults, or an empty list or mapping
                default = "its section's defaults" if "$ref" in prop or "allOf" in prop else "empty"
            row = [f"`{key}`", _type(prop), prop.get("unit", ""), default, _constraints(prop),
                   prop.get("description", ""), prop.get("source", "")]
            if prop.get("symbol"):
                row[5] = f"{prop['symbol']}: {row[5]}"
            lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
        lines.append("")
    return "\n".join(lines)


@event_priority(100)  # before mkdocs-jupyter's on_files, which must see the notebooks
def on_files(files: Files, config: Any) -> Files:
    """Add the README guide, the repository's reports and notebooks, and the generated references."""
    for pattern in FROM_REPOSITORY:
        for path in sorted(ROOT.glob(pattern)):
            files.append(File(path.relative_to(ROOT).as_posix(), src_dir=str(ROOT), dest_dir=config["site_dir"],
                              use_directory_urls=config["use_directory_urls"]))
    files.append(File.generated(config, "index.md", content=readme_page()))
    files.append(File.generated(config, "CONTRIBUTING.md", content=repository_page("CONTRIBUTING.md")))
    files.append(File.generated(config, "reference/scenario.md", content=scenario_reference()))
    for module in api_modules():
        files.append(File.generated(config, _api_page(module), content=f"# `{module}`\n\n::: {module}\n"))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Warn (an error with ``--strict``) about every table row whose cells do not match its header."""
    for row in broken_table_rows(markdown):
        log.warning(f"{page.file.src_uri}: a table row does not fit its header, {row}")
    return markdown
