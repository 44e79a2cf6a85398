"""Scenario files: ``extends`` merging, the calibration a scenario names, and what a user should be told.

A scenario is data (docs/ODD.md, Initialisation and Input). Every refusal is
a :class:`ScenarioError` whose message is one line naming the file, the
field's path and the reason; the CLI turns it into exit code 2.
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.scenario.errors import (
    LookAlikeCityWarning,
    ScenarioError,
    ScenarioWarning,
    ShippedFileWarning,
    UncalibratedWarning,
    one_line,
    quoted,
)
from sim.scenario.reading import MAX_FILE_BYTES, inherited_lever_effects, load_model, read_yaml, validate
from sim.scenario.resources import BASELINE_CALIBRATION, SCENARIOS_DIR, is_name, shipped_calibrations, shipped_scenarios
from sim.scenario.schema import City, Scenario
from sim.scenario.schema import Strict as _Strict

MAX_EXTENDS_DEPTH = 32


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


@dataclass
class _Chain:
    """A scenario file read with everything it extends, merged but not yet calibrated nor validated.

    Attributes:
        data: the merged data.
        files: each file of the ``extends`` chain, the root first, with its own data (``extends`` left out).
        notices: one line per relative path read from the shipped files instead (:func:`_named_file`).
        look_alikes: one line per city a child adds whose name differs from a parent's city only in case,
            spaces or punctuation (:func:`_check_new_cities`).
    """

    data: dict[str, Any]
    files: list[tuple[Path, dict[str, Any]]]
    notices: list[str]
    look_alikes: list[str] = field(default_factory=list)
    calibrated: Calibrated | None = None


def _read_chain(path: Path, chain: tuple[Path, ...], budget: int, notices: list[str]) -> _Chain:
    """Read a file and, before it, every file it extends (each validated on its own), merged."""
    try:
        resolved = path.resolve()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise ScenarioError(f"{path}: cannot read: {one_line(exc)}") from None
    if resolved in chain:
        cycle = " -> ".join(str(p) for p in (*chain, resolved))
        raise ScenarioError(f"{path}: extends: cycle {cycle}")
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise ScenarioError(f"{path}: extends: chain longer than {MAX_EXTENDS_DEPTH}")
    data, size = read_yaml(path, budget)
    _check_cities_listed_once(path, data)
    parent_path = None if data.get("extends") is None else _named_file(path, data["extends"], "extends", notices)
    if data.get("calibration") is not None:
        data["calibration"] = str(_named_file(path, data["calibration"], "calibration", notices))
    own = {k: v for k, v in data.items() if k != "extends"}
    if parent_path is None:
        return _Chain(own, [(path, own)], notices)
    base = _read_chain(parent_path, (*chain, resolved), budget - size, notices)
    validate(base.data, str(parent_path))
    look_alikes = base.look_alikes + _check_new_cities(path, own, base.data)
    return _Chain(merge(base.data, own), [*base.files, (path, own)], notices, look_alikes)


def _load(path: str | Path) -> _Chain:
    """Read, merge and calibrate a scenario file (not validated); the calibration's estimates fill in what it omits."""
    chain = _read_chain(Path(path), (), MAX_FILE_BYTES, [])
    if chain.data.get("calibration") is not None:
        chain.calibrated = load_calibration(Path(chain.data["calibration"]))
        chain.data = apply_calibration(chain.data, chain.calibrated)
    return chain


def load_raw(path: str | Path) -> dict[str, Any]:
    """Read a scenario file and everything it ``extends``, merged; the result is not yet validated.

    Every file it extends must itself be a valid scenario: it is validated on
    its own first, so an error in a parent is reported with the parent's path.
    ``extends:`` and ``calibration:`` name a file relative to the file that
    writes them, or a shipped scenario or calibration by name
    (:func:`_named_file`). The calibration's estimates fill in the parameters
    and city constants the scenario does not set (:func:`apply_calibration`),
    and the ``calibration`` key keeps the file's absolute path so the manifest
    records it.

    Warns:
        ShippedFileWarning: a relative path that names no file beside the scenario was read from the shipped files.
        LookAlikeCityWarning: a complete new city of a child whose name differs from a parent's city only in case,
            spaces or punctuation (it is added beside that city).
    """
    chain = _load(path)
    _warn(chain.notices, ShippedFileWarning, 3)
    _warn(chain.look_alikes, LookAlikeCityWarning, 3)
    return chain.data


def _warn(lines: list[str], category: type[ScenarioWarning], stacklevel: int) -> None:
    """Warn of each line, at the line of the caller's code that is ``stacklevel`` frames up (the user's call)."""
    for line in lines:
        warnings.warn(line, category, stacklevel=stacklevel)


def _named_file(path: Path, written: Any, key: str, notices: list[str]) -> Path:
    """The file a scenario names under ``extends`` or ``calibration``.

    In order: a file at that path relative to the scenario's folder; a shipped
    scenario or calibration when ``written`` is a bare name (``baseline``,
    ``china``); a shipped file when the relative path, read from the shipped
    scenarios' folder, is one (a copied shipped scenario writes
    ``calibration: ../calibration/calibrated.yaml``), noted in ``notices``.
    Anything else is refused, saying what may be written.
    """
    what, kind, noun = _NAMED[key]
    if not isinstance(written, str) or not written.strip():
        raise ScenarioError(f"{path}: {key}: must be a path to {what}")
    try:
        target = (path.parent / written).resolve()
        if target.is_file():
            return target
        fallback = (SCENARIOS_DIR / written).resolve()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        raise ScenarioError(f"{path}: {key}: cannot use {written!r}: {one_line(exc)}") from None
    shipped = shipped_scenarios() if key == "extends" else shipped_calibrations()
    if is_name(written):
        if written in shipped:
            return shipped[written].resolve()
        close = difflib.get_close_matches(written, list(shipped), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; shipped: {', '.join(shipped)}"
        raise ScenarioError(f"{path}: {key}: no {kind} at {target}, nor a shipped {noun} named {written!r}{hint}")
    by_file = {p.resolve(): name for name, p in shipped.items()}
    if fallback in by_file:
        name = by_file[fallback]
        notices.append(f"{path}: {key}: no file at {target}; took the shipped {noun} {name!r} "
                       f"(write `{key}: {name}` to say so)")
        return fallback
    raise ScenarioError(f"{path}: {key}: no {kind} at {target}; write a path relative to this file "
                        f"or the name of a shipped {noun}: {', '.join(shipped)}")


_NAMED = {"extends": ("another scenario", "scenario file", "scenario"),
          "calibration": ("a calibration file", "calibration file", "calibration")}
"""Per key naming a file: what it must name, the kind of file, and what the shipped ones are called."""

_NEW_CITY_NEEDS = [name for name, field in City.model_fields.items() if field.is_required() and name != "name"]
"""What a city a child adds must write besides its name (an entry naming a parent's city may leave it out)."""


def _check_cities_listed_once(path: Path, data: dict[str, Any]) -> None:
    """One file lists each city once: a second entry would silently update the first when merged."""
    first: dict[str, int] = {}
    for i, name in enumerate(_city_names(data.get("cities"))):
        if name is None:
            continue
        if name in first:
            raise ScenarioError(f"{path}: cities[{quoted(name)}]: duplicate city {name!r} "
                                f"(entries {first[name] + 1} and {i + 1} of this file); list each city once")
        first[name] = i


def _check_new_cities(path: Path, child: dict[str, Any], parent: dict[str, Any]) -> list[str]:
    """A child's city that is not the parent's must be complete; an incomplete one is likely a misspelt name.

    Returns:
        A line for each complete new city whose name differs from a parent's city only in case, spaces or
        punctuation (``ShenZhen`` beside ``Shenzhen``): it is added beside that city, which is likely not meant.
    """
    known = [n for n in _city_names(parent.get("cities")) if n is not None]
    items = child.get("cities") if isinstance(child.get("cities"), list) else []
    look_alikes = []
    for item, name in zip(items, _city_names(items), strict=True):
        if name is None or name in known:
            continue
        if all(key in item for key in _NEW_CITY_NEEDS):
            same = [n for n in known if _spelling(n) == _spelling(name)]
            if same:
                look_alikes.append(f"{path}: cities[{quoted(name)}]: a new city beside the parent's {same[0]!r} "
                                   f"(the names differ only in case, spaces or punctuation); to change "
                                   f"{same[0]!r}, write its name as the parent does")
            continue
        folded = {n.casefold(): n for n in known}
        close = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.6)
        hint = (f" (did you mean {folded[close[0]]!r}?)" if close else
                f"; a new city needs {', '.join(_NEW_CITY_NEEDS)} (the parent's cities: {', '.join(known)})")
        raise ScenarioError(f"{path}: cities[{quoted(name)}]: no city {name!r} in the parent{hint}")
    return look_alikes


def _spelling(name: str) -> str:
    """A name without case, spaces or punctuation (``Xi'an`` and ``XIAN`` spell the same)."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def _city_names(cities: Any) -> list[str | None]:
    """The ``name`` of each entry of a ``cities`` list (None where it has no text name)."""
    if not isinstance(cities, list):
        return []
    return [c.get("name") if isinstance(c, dict) and isinstance(c.get("name"), str) else None for c in cities]


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
            merged["lever_effects"] = inherited_lever_effects(merged["lever_effects"], data.get("sectors"))
        data["parameters"] = merged
    if isinstance(data.get("cities"), list):
        data["cities"] = [{**calibrated.cities.get(c.get("name"), {}), **c}
                          if isinstance(c, dict) and isinstance(c.get("name"), str) else c for c in data["cities"]]
    return data


def load_scenario(path: str | Path) -> Scenario:
    """Load, merge (``extends``), calibrate (``calibration``) and validate a scenario file.

    ``extends:`` and ``calibration:`` name a file relative to the scenario's
    folder, or a shipped scenario or calibration by name (:func:`load_raw`).

    Args:
        path: the YAML file.

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: one line naming the file, the field's path and the reason.

    Warns:
        ShippedFileWarning: a relative path that names no file beside the scenario was read from the shipped files.
        LookAlikeCityWarning: a complete new city of a child whose name differs from a parent's city only in case,
            spaces or punctuation (it is added beside that city).
        UncalibratedWarning: no file of the chain has a ``calibration:`` key (``calibration: null`` counts as
            one) and no city sets ``attractiveness``: the run takes the code defaults.
    """
    return _load_checked(path)[1]


@dataclass(frozen=True)
class Origin:
    """Where a value of a loaded scenario comes from: a file of its ``extends`` chain, or its calibration file."""

    path: Path
    calibration: bool = False


@dataclass(frozen=True)
class Traced:
    """A scenario file loaded with where each value comes from (what ``modu validate --show-merged`` prints).

    Attributes:
        scenario: the validated scenario, as :func:`load_scenario` returns it.
        files: the files of the ``extends`` chain, the root first and the scenario's own last.
        origins: shaped like the merged data (mappings by key, ``cities`` by name, other lists whole): each
            value the :class:`Origin` of the file or calibration that gives it; a value not in it took its default.
        added: each city's name → the file that lists it first.
    """

    scenario: Scenario
    files: tuple[Path, ...]
    origins: dict[str, Any]
    added: dict[str, Path]


def trace(path: str | Path) -> Traced:
    """Load a scenario file as :func:`load_scenario` does, and say where each value comes from.

    The origins are merged by :func:`merge` and calibrated by :func:`apply_calibration`,
    the very rules that merge and calibrate the values.

    Raises:
        ScenarioError: as :func:`load_scenario`.
    """
    chain, scenario = _load_checked(path)
    origins: dict[str, Any] = {}
    added: dict[str, Path] = {}
    for file, own in chain.files:
        origins = merge(origins, _origins(own, Origin(file)))
        for name in _city_names(own.get("cities")):
            if name is not None:
                added.setdefault(name, file)
    if chain.calibrated is not None:
        by = Origin(Path(chain.data["calibration"]), calibration=True)
        origins = apply_calibration(origins, Calibrated(
            parameters=dict.fromkeys(chain.calibrated.parameters, by),
            cities={name: dict.fromkeys(fields, by) for name, fields in chain.calibrated.cities.items()}))
    return Traced(scenario, tuple(file for file, _ in chain.files), origins, added)


def _origins(value: Any, origin: Origin, key: Any = None) -> Any:
    """``value`` with each value replaced by ``origin``, mappings and ``cities`` lists kept (with the names) for merging."""
    if isinstance(value, dict):
        return {k: _origins(v, origin, k) for k, v in value.items()}
    if key == "cities" and isinstance(value, list):  # validated: each entry a mapping with a name
        return [{**_origins(c, origin), "name": c["name"]} for c in value]
    return origin


def _load_checked(path: str | Path) -> tuple[_Chain, Scenario]:
    """Load and validate a scenario file; warn, once it is valid, of what a user should know."""
    chain = _load(path)
    scenario = validate(chain.data, str(path))
    _warn(chain.notices, ShippedFileWarning, 4)  # _warn, here, load_scenario or trace, the user's call
    _warn(chain.look_alikes, LookAlikeCityWarning, 4)
    if "calibration" not in chain.data and not any("attractiveness" in c for c in chain.data["cities"]):  # validated: listed
        _warn([f"{path}: names no calibration and no city's attractiveness, so it runs on the code defaults "
               f"(write `calibration: {BASELINE_CALIBRATION}` for the shipped estimates, or `calibration: null` "
               "if the defaults are meant)"], UncalibratedWarning, 4)
    return chain, scenario
