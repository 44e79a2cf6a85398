"""Scenario files: safe YAML loading, ``extends`` merging and pydantic validation.

A scenario is data (docs/ODD.md, Initialisation and Input). Every refusal is
a :class:`ScenarioError` whose message is one line naming the file, the
field's path and the reason; the CLI turns it into exit code 2.
"""

from __future__ import annotations

import difflib
import stat
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from sim.model.parameters import Parameters
from sim.scenario.errors import LocatedError, ScenarioError, format_loc, one_line, quoted
from sim.scenario.schema import Scenario
from sim.scenario.schema import Strict as _Strict

_Model = TypeVar("_Model", bound=BaseModel)
class UniqueKeySafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key written twice in one mapping (the plain one keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping; a duplicate key is a YAML error at its line (keys merged in by ``<<`` may be overridden)."""
        seen: set[Any] = set()
        for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():  # else (`!!map x`) the base refuses
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)  # a set key passes `in` (as a frozenset) but cannot be added
            except TypeError:  # unhashable: the base class refuses it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                        f"duplicate key {key!r}", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        r"""Build a value; one that cannot be built or is not valid Unicode is a YAML error at its line.

        PyYAML's constructors raise whatever Python raises on odd values: ``ValueError`` for
        ``2016-13-45``, ``!!int abc`` or a 5,000-digit integer, ``IndexError`` for an empty ``!!float``,
        ``AttributeError`` for an empty ``!!timestamp``. A lone surrogate (an escaped UTF-16 half,
        ``"\ud800"`` in YAML) would fail later, when written to a CSV.
        """
        try:
            value = super().construct_object(node, deep=deep)
            if isinstance(value, str):
                value.encode("utf-8")
            return value
        except (yaml.YAMLError, RecursionError):
            raise
        except Exception as exc:  # untrusted text: any failure to build a value is a refusal, not a crash
            shown = repr(node.value[:40]) if isinstance(node, yaml.ScalarNode) else "this value"
            why = "" if isinstance(exc, LookupError | AttributeError) else f": {one_line(exc)}"  # PyYAML's own slips
            raise yaml.constructor.ConstructorError(None, None, f"cannot read {shown} as {node.tag.rsplit(':', 1)[-1]}{why}",
                                                    node.start_mark) from None


MAX_EXTENDS_DEPTH = 32
MAX_FILE_BYTES = 1024 * 1024
"""Most bytes of YAML one scenario may read, its ``extends`` chain included (about 10,000 cities);
pure-Python YAML parsing takes seconds per MiB."""


def _read_yaml(path: Path, limit: int = MAX_FILE_BYTES, what: str = "a scenario") -> tuple[dict[str, Any], int]:
    """The mapping in a YAML file and the file's size; ``limit`` is the most bytes it may have."""
    try:
        info = path.stat()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise ScenarioError(f"{path}: cannot read: {one_line(getattr(exc, 'strerror', None) or exc)}") from None
    if not stat.S_ISREG(info.st_mode):  # a folder, a pipe or a device would fail, block or never end
        raise ScenarioError(f"{path}: cannot read: not a regular file")
    too_big = f"a scenario and the files it extends may be at most {MAX_FILE_BYTES} bytes together"
    if info.st_size > limit:
        raise ScenarioError(f"{path}: file is {info.st_size} bytes; {too_big}")
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)  # bounded, should the file grow while being read
        if len(raw) > limit:
            raise ScenarioError(f"{path}: file is over {limit} bytes; {too_big}")
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {one_line(exc.strerror or exc)}") from None
    try:
        data = yaml.load(text, Loader=UniqueKeySafeLoader)  # a SafeLoader: plain data, no object construction
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc
        raise ScenarioError(f"{path}: invalid YAML: {where}{one_line(problem)}") from None
    except RecursionError:
        raise ScenarioError(f"{path}: invalid YAML: nested too deeply") from None
    except Exception as exc:  # a constructor failing in a mapping's or list's body, outside construct_object
        raise ScenarioError(f"{path}: invalid YAML: cannot read: {type(exc).__name__}: {one_line(exc)}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: (top level): {what} must be a mapping, got {type(data).__name__}")
    return data, len(raw)


SHARE_KEYS = ("sectors", "sector_mix", "allocation")
"""Mappings of shares that a child scenario replaces whole: shares only make sense together."""


def merge(parent: Any, child: Any) -> Any:
    """Merge a child scenario onto its parent.

    Mappings merge key by key, except the share mappings of :data:`SHARE_KEYS`,
    which the child's replace whole (a child writing ``allocation: {compute:
    0.5, data: 0.5}`` means no anchor share, not the parent's); the ``cities``
    list merges by ``name`` (a child entry updates the parent's city of that
    name, a new name is appended); any other value in the child, lists such as
    ``events`` and ``anchors`` included, replaces the parent's.
    """
    if isinstance(parent, dict) and isinstance(child, dict):
        out = dict(parent)
        for key, value in child.items():
            if key == "cities" and isinstance(value, list) and isinstance(out.get(key), list):
                out[key] = _merge_by_name(out[key], value)
            elif key in out and key not in SHARE_KEYS:
                out[key] = merge(out[key], value)
            else:
                out[key] = value
        return out
    return child


def _merge_by_name(parent: list[Any], child: list[Any]) -> list[Any]:
    merged = list(parent)
    index = {c["name"]: i for i, c in enumerate(merged) if isinstance(c, dict) and isinstance(c.get("name"), str)}
    for item in child:
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name in index:
            merged[index[name]] = merge(merged[index[name]], item)
        else:
            merged.append(item)
    return merged


def load_raw(path: str | Path, _chain: tuple[Path, ...] = (), _budget: int = MAX_FILE_BYTES) -> dict[str, Any]:
    """Read a scenario file and everything it ``extends``, merged; the result is not yet validated.

    Every file it extends must itself be a valid scenario: it is validated on
    its own first, so an error in a parent is reported with the parent's path.
    A ``calibration:`` key (in the file or inherited) names a calibration file,
    relative to the file that writes it; its estimates fill in the parameters
    and city constants the scenario does not set (:func:`apply_calibration`),
    and the key keeps the file's absolute path so the manifest records it.
    """
    path = Path(path)
    try:
        resolved = path.resolve()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise ScenarioError(f"{path}: cannot read: {one_line(exc)}") from None
    if resolved in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, resolved))
        raise ScenarioError(f"{path}: extends: cycle {cycle}")
    if len(_chain) >= MAX_EXTENDS_DEPTH:
        raise ScenarioError(f"{path}: extends: chain longer than {MAX_EXTENDS_DEPTH}")
    data, size = _read_yaml(path, _budget)
    if data.get("calibration") is not None:
        data["calibration"] = str(_sibling(path, data["calibration"], "calibration", "a calibration file", "calibration file"))
    parent = data.get("extends")
    if parent is None:
        merged = data
    else:
        parent_path = _sibling(path, parent, "extends", "another scenario", "scenario file")
        base = load_raw(parent_path, (*_chain, resolved), _budget - size)
        validate(base, str(parent_path))
        merged = merge(base, {k: v for k, v in data.items() if k != "extends"})
    if not _chain and merged.get("calibration") is not None:
        merged = apply_calibration(merged, load_calibration(Path(merged["calibration"])))
    return merged


def _sibling(path: Path, written: Any, key: str, what: str, kind: str) -> Path:
    """The file a scenario names under ``key``, relative to the scenario's folder; it must exist."""
    if not isinstance(written, str) or not written.strip():
        raise ScenarioError(f"{path}: {key}: must be a path to {what}")
    try:
        target = (path.parent / written).resolve()
        found = target.is_file()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        raise ScenarioError(f"{path}: {key}: cannot use {written!r}: {one_line(exc)}") from None
    if not found:
        raise ScenarioError(f"{path}: {key}: no {kind} at {target}")
    return target


class Calibrated(_Strict):
    """A calibration file (``calibrated.yaml``): estimates that scenarios naming it take by default.

    Attributes:
        parameters: parameter name → value (see :class:`sim.model.parameters.Parameters`).
        cities: city name → {field: value} (e.g. ``attractiveness``), applied to cities of that name.
    """

    parameters: dict[str, Any] = {}
    cities: dict[str, dict[str, Any]] = {}


def load_calibration(path: Path) -> Calibrated:
    """Read a calibration file through the same safe loader as scenarios.

    Raises:
        ScenarioError: one line naming the file, the field and the reason.
    """
    return load_model(path, Calibrated)


def apply_calibration(data: dict[str, Any], calibrated: Calibrated) -> dict[str, Any]:
    """Fill in, from a calibration, the parameters and city fields the scenario data do not set.

    Values the scenario writes (itself or through ``extends``) win; city
    estimates apply to the cities of the calibrated names.
    """
    data = dict(data)
    params = data.get("parameters")
    if params is None or isinstance(params, dict):
        merged = {**calibrated.parameters, **(params or {})}
        if "lever_effects" in calibrated.parameters and "lever_effects" not in (params or {}):
            merged["lever_effects"] = _inherited_lever_effects(merged["lever_effects"], data.get("sectors"))
        data["parameters"] = merged
    if isinstance(data.get("cities"), list):
        data["cities"] = [{**calibrated.cities.get(c.get("name"), {}), **c}
                          if isinstance(c, dict) and isinstance(c.get("name"), str) else c for c in data["cities"]]
    return data


def validate(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate plain data (already merged, calibration applied) into a :class:`Scenario`.

    Reads no file: parameters the data omit take the code defaults (lever
    weights restricted to the scenario's sectors).

    Raises:
        ScenarioError: one line naming ``source``, the field and the reason.
    """
    data = {k: v for k, v in data.items() if k != "extends"}
    params = data.get("parameters")
    if (params is None or isinstance(params, dict)) and "lever_effects" not in (params or {}):
        # default weights apply to the sectors this scenario has
        data["parameters"] = {**(params or {}), "lever_effects": _inherited_lever_effects(None, data.get("sectors"))}
    return _validated(Scenario, data, source)


def _validated(model: type[_Model], data: Any, source: str) -> _Model:
    """``model.model_validate(data)``; a failure is one :class:`ScenarioError` line naming ``source`` and the field.

    An unknown key is named first (with the closest known key), before any
    missing one, since a misspelt key is usually also a missing one.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, LocatedError):
            loc, msg = err["loc"] + ctx_error.loc, ctx_error.msg
        elif err["type"] == "extra_forbidden":
            loc, msg = err["loc"][:-1], _unknown_key(model, err["loc"])
        else:
            loc, msg = err["loc"], err["msg"].removeprefix("Value error, ")
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ScenarioError(f"{source}: {format_loc(tuple(loc), data)}: {one_line(msg)}{more}") from None
    except (RecursionError, OverflowError) as exc:
        raise ScenarioError(f"{source}: (top level): cannot be validated: {one_line(exc)}") from None


def _unknown_key(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """``unknown key 'netwrok_effect' (did you mean 'network_effect'?)``: the keys allowed where the key stands."""
    key = str(loc[-1])
    node: Any = model
    for part in loc[:-1]:  # walk the schema along the path to the model that refused the key
        if isinstance(part, int) or node is None:
            continue
        field = node.model_fields.get(str(part)) if isinstance(node, type) and issubclass(node, BaseModel) else None
        node = _model_of(field.annotation) if field is not None else None
    known = list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else (f"; known keys: {', '.join(known)}" if known else "")
    shown = quoted(key)  # repr() of an odd key already has its quotes
    return f"unknown key {shown if shown != key else repr(key)}{hint}"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as ``City``, ``list[City]`` or ``Policy | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def load_model(path: str | Path, model: type[_Model]) -> _Model:
    """Read any YAML input file (targets, priors, factors, calibration) into a pydantic model.

    The same hardened reader as scenarios (size limit, UTF-8, duplicate keys,
    safe construction) and the same one-line refusals.

    Raises:
        ScenarioError: ``file: field.path: reason``.
    """
    path = Path(path)
    data, _ = _read_yaml(path, what="the file")
    return _validated(model, data, str(path))


def _inherited_lever_effects(inherited: Any, sectors: Any) -> Any:
    """Calibrated or default lever weights, restricted to the scenario's sectors.

    A scenario that does not write ``lever_effects`` (say, a one-sector urn)
    must not be refused for weights on sectors it does not have; weights a
    scenario writes itself are checked strictly.
    """
    if inherited is None:
        inherited = Parameters.model_fields["lever_effects"].default
    if not isinstance(sectors, dict):
        sectors = Scenario.model_fields["sectors"].default_factory()
    if not isinstance(inherited, dict):
        return inherited
    return {lever: {s: w for s, w in by_sector.items() if s in sectors} if isinstance(by_sector, dict) else by_sector
            for lever, by_sector in inherited.items()}


def load_scenario(path: str | Path) -> Scenario:
    """Load, merge (``extends``), calibrate (``calibration``) and validate a scenario file.

    Args:
        path: the YAML file.

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: one line naming the file, the field's path and the reason.
    """
    return validate(load_raw(path), str(path))
