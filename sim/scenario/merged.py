"""A scenario as its run will use it, as YAML: merged, calibrated, defaults written out, each value labelled.

What ``modu validate --show-merged`` prints. Validated, the YAML is the same
scenario (same digest), so the text can be saved and run as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from sim.scenario.loading import Origin, Traced
from sim.scenario.resources import shipped_calibrations, shipped_scenarios

FLOW_WIDTH = 100
"""Longest mapping or list written on one line (``time: {start: 2017, ...}``); longer ones are written as blocks."""

DEFAULT = "default"
"""The label of a value no file or calibration gives."""


def merged_yaml(traced: Traced) -> str:
    """The scenario of ``traced`` as YAML, each value's comment saying which file, the calibration or the default gives it.

    Args:
        traced: a loaded scenario and where its values come from (:func:`sim.scenario.loading.trace`).

    Returns:
        YAML text: ``yaml.safe_load`` of it is ``traced.scenario.resolved()`` without ``extends`` (applied)
        and without the empty (null) fields of list entries such as events; validated, it is the same scenario.
    """
    labels = _labels(traced.files)
    data = {k: v for k, v in traced.scenario.resolved().items() if k != "extends"}
    shown = traced.files[-1]
    lines = [f"# {shown}", "# as the run will use it: every file it extends merged in, its calibration's estimates filled in,",
             "# every other value at its default (an event's empty fields left out). Each value's comment says",
             "# where it comes from:"]
    lines += [f"#   {labels[p]}: {_describe(p, shipped_scenarios(), 'scenario')}" for p in reversed(traced.files)]
    if traced.scenario.calibration is not None:
        lines.append(f"#   calibration: {_describe(Path(traced.scenario.calibration), shipped_calibrations(), 'calibration')}")
    lines.append(f"#   {DEFAULT}: the code's default (`modu schema` describes every field)")
    for key, value in data.items():
        _emit(lines, key, value, traced.origins.get(key), 0, labels, traced.added)
    return "\n".join(lines) + "\n"


def _labels(files: tuple[Path, ...]) -> dict[Path, str]:
    """Each file's label: its name, or its full path where two files of the chain share a name."""
    names = [p.name for p in files]
    return {p: p.name if names.count(p.name) == 1 else str(p) for p in files}


def _describe(path: Path, shipped: Mapping[str, Path], noun: str) -> str:
    """``the shipped scenario 'china' (/.../china.yaml)`` or the file's path."""
    resolved = path.resolve()
    name = next((n for n, p in shipped.items() if p.resolve() == resolved), None)
    return f"the shipped {noun} {name!r} ({resolved})" if name else str(resolved)


def _label(origin: Any, labels: dict[Path, str]) -> str:
    if isinstance(origin, Origin):
        return "calibration" if origin.calibration else labels.get(origin.path, str(origin.path))
    return DEFAULT


def _common(origin: Any, labels: dict[Path, str]) -> str | None:
    """The one label of every value under ``origin`` (a mapping of origins, or one origin), or None if they differ."""
    if isinstance(origin, dict):
        found = {_common(v, labels) for v in origin.values()}
        return found.pop() if len(found) == 1 and None not in found else None
    return _label(origin, labels)


def yaml_flow(value: Any) -> str:
    """``value`` as YAML on one line: a flow scalar (quoted where plain text would read back otherwise), mapping or list."""
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), allow_unicode=True, sort_keys=False)
    return text.rstrip("\n").removesuffix("\n...")


def _emit(lines: list[str], key: str, value: Any, origin: Any, depth: int, labels: dict[Path, str],
          added: dict[str, Path]) -> None:
    """Append ``key: value`` at ``depth`` (two spaces each), each value with its label."""
    pad = "  " * depth
    head = f"{pad}{yaml_flow(key)}:"
    if isinstance(value, dict) and value:
        label = _common(origin, labels) if isinstance(origin, dict) else _label(origin, labels)
        if label is not None and len(head) + len(yaml_flow(value)) < FLOW_WIDTH:
            lines.append(f"{head} {yaml_flow(value)}  # {label}")
            return
        lines.append(head)
        for k, v in value.items():
            _emit(lines, k, v, origin.get(k) if isinstance(origin, dict) else origin, depth + 1, labels, added)
    elif key == "cities" and depth == 0 and isinstance(value, list):
        lines.append(head)
        by_name = {c["name"]: c for c in origin or [] if isinstance(c, dict)}
        for city in value:
            own = by_name.get(city["name"], {})
            lines.append(f"  - name: {yaml_flow(city['name'])}  # listed first by {labels[added[city['name']]]}")
            for k, v in city.items():
                if k != "name":
                    _emit(lines, k, v, own.get(k), 2, labels, added)
    elif isinstance(value, list):
        entries = [{k: v for k, v in e.items() if v is not None} if isinstance(e, dict) else e for e in value]
        if len(head) + len(yaml_flow(entries)) < FLOW_WIDTH:
            lines.append(f"{head} {yaml_flow(entries)}  # {_label(origin, labels)}")
        else:
            lines.append(f"{head}  # {_label(origin, labels)}")
            lines += [f"{pad}  - {yaml_flow(entry)}" for entry in entries]
    else:
        lines.append(f"{head} {yaml_flow(value)}  # {_label(origin, labels)}")
