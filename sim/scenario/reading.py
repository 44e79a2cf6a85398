"""Reading a YAML file safely and validating it into a model, each refusal one line naming the file, field and reason.

Safe YAML (plain data only, duplicate keys refused, a size limit) and pydantic validation whose first error is
turned into one :class:`sim.scenario.errors.ScenarioError` line (an unknown key named first, with the closest
known key). Used for scenario files (:mod:`sim.scenario.loading`) and every other input file (targets, priors,
assumptions, factors).
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
from sim.scenario.errors import (
    LocatedError,
    ScenarioError,
    format_loc,
    one_line,
    quoted,
)
from sim.scenario.schema import Scenario

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


MAX_FILE_BYTES = 1024 * 1024
"""Most bytes of YAML one scenario may read, its ``extends`` chain included (about 10,000 cities);
pure-Python YAML parsing takes seconds per MiB."""


def read_yaml(path: Path, limit: int = MAX_FILE_BYTES, what: str = "a scenario") -> tuple[dict[str, Any], int]:
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
        data["parameters"] = {**(params or {}), "lever_effects": inherited_lever_effects(None, data.get("sectors"))}
    return validated(Scenario, data, source)


def validated(model: type[_Model], data: Any, source: str) -> _Model:
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
    data, _ = read_yaml(path, what="the file")
    return validated(model, data, str(path))


def inherited_lever_effects(inherited: Any, sectors: Any) -> Any:
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
