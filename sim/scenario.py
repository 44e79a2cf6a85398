"""Scenario files: safe YAML loading, ``extends`` merging and pydantic validation.

A scenario is data (docs/ODD.md, Initialisation and Input). Every refusal is
a :class:`ScenarioError` whose message is one line naming the file, the
field's path and the reason; the CLI turns it into exit code 2.
"""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sim.parameters import LEVERS, Lever, LeverMap, Parameters, calibrated_defaults

SHARE_TOLERANCE = 1e-6
"""How far a set of shares may be from summing to 1."""


MAX_MESSAGE_CHARS = 500
"""Longest refusal message; longer ones (a huge key or name quoted back) are cut."""


class ScenarioError(ValueError):
    """An invalid scenario; ``str(error)`` is one line: ``file: field.path: reason``.

    Whatever the message quotes (keys with line breaks, city names, file
    names), it is collapsed onto one line and cut to :data:`MAX_MESSAGE_CHARS`.
    """

    def __init__(self, message: str):
        """Keep ``message`` as one line of at most :data:`MAX_MESSAGE_CHARS` characters."""
        line = " ".join(str(message).split())
        if len(line) > MAX_MESSAGE_CHARS:
            line = line[: MAX_MESSAGE_CHARS - 1] + "…"
        super().__init__(line)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _check_shares(shares: dict[str, float], what: str) -> dict[str, float]:
    if not shares:
        raise ValueError(f"{what} must name at least one entry")
    if any(v < 0 for v in shares.values()):
        raise ValueError(f"{what} must be non-negative")
    total = sum(shares.values())
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise ValueError(f"{what} must sum to 1, got {total:.6g}")
    return shares


class Time(_Strict):
    """Simulated span: the state is recorded at ``start`` and every step up to ``end``."""

    start: int = Field(2016, ge=1900, le=2200, description="first year (state at its start)")
    end: int = Field(2023, ge=1900, le=2200, description="last year recorded")
    steps_per_year: int = Field(4, ge=1, le=365, description="steps per year (4 = quarters)")

    @model_validator(mode="after")
    def _order(self) -> Time:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self

    @property
    def steps(self) -> int:
        """Number of steps simulated."""
        return (self.end - self.start) * self.steps_per_year


class Allocation(_Strict):
    """Shares of a city's budget per lever; they sum to 1."""

    compute: float = Field(0.0, ge=0, le=1)
    data: float = Field(0.0, ge=0, le=1)
    anchor: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _sum(self) -> Allocation:
        _check_shares(self.model_dump(), "allocation")
        return self

    def as_tuple(self) -> tuple[float, float, float]:
        """The shares in lever order (compute, data, anchor)."""
        return (self.compute, self.data, self.anchor)


Strategy = Literal["fixed", "imitate", "best_response"]


class Policy(_Strict):
    """A city's policy: annual budget, its allocation, and how the allocation adapts."""

    budget: float = Field(0.0, ge=0, le=1e7, description="annual policy budget, 100 M yuan")
    allocation: Allocation = Field(default_factory=lambda: Allocation(compute=1 / 3, data=1 / 3, anchor=1 / 3))
    strategy: Strategy = "fixed"
    learning_rate: float = Field(0.2, ge=0, le=1, description="share of the gap closed per year")


class Anchor(_Strict):
    """A named leading firm (Baidu, Tencent, ...)."""

    name: str = Field(min_length=1, max_length=200)
    sector: str


class City(_Strict):
    """A city (or a pool of cities) and its endowments."""

    name: str = Field(min_length=1, max_length=200)
    firms: int = Field(ge=0, le=10**9, description="AI-related enterprises at the start")
    sector_mix: dict[str, float] | None = None
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    talent: float = Field(0.0, ge=-1e3, le=1e3, description="talent index")
    capital: float = Field(0.0, ge=-1e3, le=1e3, description="capital index")
    cost: float = Field(0.0, ge=-1e3, le=1e3, description="cost index")
    capacity: float | None = Field(None, gt=0, le=1e12, description="firms at which load N/capacity = 1; none = no congestion")
    attractiveness: float = Field(0.0, ge=-1e3, le=1e3, description="alternative-specific constant in utility")
    anchors: list[Anchor] = Field(default_factory=list)
    policy: Policy | None = None
    pool: bool = Field(False, description="an aggregate of many places; never the leader, left out of concentration")
    open: bool = Field(True, description="choosable by entrants and movers; a closed city's firms leave when they "
                                         "reconsider (see Event.open)")

    @field_validator("sector_mix")
    @classmethod
    def _mix(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        return None if v is None else _check_shares(v, "sector_mix")

    @model_validator(mode="after")
    def _anchors_fit(self) -> City:
        if len(self.anchors) > self.firms:
            raise ValueError(f"{len(self.anchors)} anchors but only {self.firms} firms")
        return self


EVENT_ACTIONS = ("invest", "budget", "allocation", "strategy", "learning_rate", "add_anchor", "open")
"""What an event can do; one event may do several of these at once."""


class Event(_Strict):
    """A timed event, applied before the first step that starts at or after ``year`` (docs/ODD.md §3.7)."""

    year: float = Field(ge=1900, le=2200)
    city: str
    invest: LeverMap | None = Field(None, description="one-off spending, 100 M yuan per lever")
    budget: float | None = Field(None, ge=0, le=1e7, description="new annual budget, 100 M yuan")
    allocation: Allocation | None = None
    strategy: Strategy | None = None
    learning_rate: float | None = Field(None, ge=0, le=1, description="share of the gap closed per year")
    add_anchor: Anchor | None = Field(None, description="a new anchor firm in the city (counted as a birth)")
    open: bool | None = Field(None, description="true opens the city to entrants and movers, false closes it")

    @model_validator(mode="after")
    def _does_something(self) -> Event:
        if all(getattr(self, k) is None for k in EVENT_ACTIONS):
            raise ValueError(f"an event needs one of {', '.join(EVENT_ACTIONS)}")
        return self


class Scenario(_Strict):
    """A validated scenario (spec §4)."""

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    extends: str | None = None
    time: Time = Field(default_factory=Time)
    seed: int = Field(42, ge=0, le=2**63 - 1)
    engine: Literal["agents", "counts"] = Field(
        "agents", description="agents: every firm an individual; counts: ordinary firms as exact counts per class")
    replications: int = Field(20, ge=1, le=100_000)
    sectors: dict[str, float] = Field(default_factory=lambda: {"upstream": 0.15, "midstream": 0.25, "downstream": 0.60})
    complementarity: dict[str, dict[str, float]] | None = None
    parameters: Parameters = Field(default_factory=Parameters)
    cities: list[City] = Field(min_length=1)
    events: list[Event] = Field(default_factory=list)

    @field_validator("sectors")
    @classmethod
    def _sectors(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_shares(v, "sectors")

    @model_validator(mode="after")
    def _cross_references(self) -> Scenario:
        sectors = set(self.sectors)
        names = [c.name for c in self.cities]
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise _located(("cities", i, "name"), f"duplicate city {name!r}")
            seen.add(name)
        for i, city in enumerate(self.cities):
            for key in city.sector_mix or {}:
                if key not in sectors:
                    raise _located(("cities", i, "sector_mix", key), f"unknown sector {key!r}; sectors are {sorted(sectors)}")
            for j, anchor in enumerate(city.anchors):
                if anchor.sector not in sectors:
                    raise _located(("cities", i, "anchors", j, "sector"), f"unknown sector {anchor.sector!r}")
        for lever, by_sector in self.parameters.lever_effects.items():
            for key in by_sector:
                if key not in sectors:
                    raise _located(("parameters", "lever_effects", lever, key), f"unknown sector {key!r}")
        for row, cols in (self.complementarity or {}).items():
            if row not in sectors:
                raise _located(("complementarity", row), f"unknown sector {row!r}")
            for col, w in cols.items():
                if col not in sectors:
                    raise _located(("complementarity", row, col), f"unknown sector {col!r}")
                if not 0 <= w <= 1e3:
                    raise _located(("complementarity", row, col), f"weight must be in [0, 1000], got {w}")
        for i, event in enumerate(self.events):
            if event.city not in seen:
                raise _located(("events", i, "city"), f"unknown city {event.city!r}")
            if not self.time.start <= event.year < self.time.end:
                raise _located(("events", i, "year"),
                               f"{event.year:g} is outside the run [{self.time.start}, {self.time.end}) and would never act")
            if event.add_anchor and event.add_anchor.sector not in sectors:
                raise _located(("events", i, "add_anchor", "sector"), f"unknown sector {event.add_anchor.sector!r}")
        self._check_openness()
        if sum(c.firms for c in self.cities) == 0 and self.parameters.network_seed == 0:
            raise _located(("parameters", "network_seed"), "with no firms anywhere, network_seed must be > 0")
        return self

    def _check_openness(self) -> None:
        """Some city is open at every time, and every open/close event changes a city's state."""
        is_open = {c.name: c.open for c in self.cities}
        ever_closed = not all(is_open.values())
        if not ever_closed and all(e.open is None for e in self.events):
            return
        if not any(is_open.values()):
            raise _located(("cities",), "every city starts closed; at least one must be open")
        for i, event in sorted(enumerate(self.events), key=lambda item: item[1].year):  # the order events apply in
            if event.open is None:
                continue
            if is_open[event.city] == event.open:
                state = "open" if event.open else "closed"
                raise _located(("events", i, "open"), f"{event.city} is already {state} at {event.year:g}")
            is_open[event.city] = event.open
            ever_closed = ever_closed or not event.open
            if not any(is_open.values()):
                raise _located(("events", i, "open"), f"closes the last open city at {event.year:g}; one must stay open")
        if ever_closed and self.parameters.network_seed == 0:
            raise _located(("parameters", "network_seed"),
                           "must be > 0 when a city is closed (in the pure urn the open cities could all be empty)")

    @property
    def sector_names(self) -> list[str]:
        """Sector names in a fixed order."""
        return list(self.sectors)

    def complementarity_matrix(self) -> list[list[float]]:
        """W[s][s'] in sector order; the default is 1 on the diagonal and 0.25 elsewhere.

        The default is an assumption: a firm gains most from firms of its own
        sector, and a quarter as much from each other link of the chain.
        """
        names = self.sector_names
        given = self.complementarity or {}
        return [[given.get(s, {}).get(t, 1.0 if s == t else DEFAULT_CROSS_COMPLEMENTARITY) for t in names] for s in names]

    def resolved(self) -> dict[str, Any]:
        """The scenario as plain data (what the manifest records)."""
        return self.model_dump(mode="json")

    def digest(self) -> str:
        """SHA-256 of the resolved scenario (canonical JSON)."""
        return digest_of(self.resolved())


def digest_of(resolved: dict[str, Any]) -> str:
    """SHA-256 of a resolved scenario as plain data (compact JSON), as manifests record it in ``scenario_hash``.

    Keys keep their order: the order of ``sectors`` (and of ``cities``) decides
    which random numbers each sector draws, so it is part of what a run is.
    """
    text = json.dumps(resolved, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


DEFAULT_CROSS_COMPLEMENTARITY = 0.25
"""Default off-diagonal W[s][s'] (assumption, see Scenario.complementarity_matrix)."""


class _LocatedError(ValueError):
    def __init__(self, loc: tuple[Any, ...], msg: str):
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def _located(loc: tuple[Any, ...], msg: str) -> _LocatedError:
    return _LocatedError(loc, msg)


def _format_loc(loc: tuple[Any, ...], data: Any) -> str:
    """Dotted path; list indices of named items (cities) become ``cities[Name]``; odd keys are quoted."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            name = node[key].get("name") if isinstance(node, list) and key < len(node) and isinstance(node[key], dict) else None
            label = f"[{_quoted(name)}]" if isinstance(name, str) else f"[{key}]"
            parts[-1:] = [(parts[-1] if parts else "") + label]
        else:
            parts.append(_quoted(str(key)))
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts) or "(top level)"


def _quoted(key: str) -> str:
    """A key or name as written in a field path; quoted (``repr``) unless plain.

    Empty keys, colons, line breaks and other unprintable characters, leading or
    trailing spaces would make the ``file: field: reason`` line ambiguous.
    """
    plain = key and key.isprintable() and key.strip() == key and ":" not in key and len(key) <= 80
    return key if plain else repr(key[:80] + ("…" if len(key) > 80 else ""))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


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
            why = "" if isinstance(exc, LookupError | AttributeError) else f": {_one_line(exc)}"  # PyYAML's own slips
            raise yaml.constructor.ConstructorError(None, None, f"cannot read {shown} as {node.tag.rsplit(':', 1)[-1]}{why}",
                                                    node.start_mark) from None


MAX_EXTENDS_DEPTH = 32
MAX_FILE_BYTES = 1024 * 1024
"""Most bytes of YAML one scenario may read, its ``extends`` chain included (about 10,000 cities);
pure-Python YAML parsing takes seconds per MiB."""


def _read_yaml(path: Path, limit: int = MAX_FILE_BYTES) -> tuple[dict[str, Any], int]:
    """The mapping in a YAML file and the file's size; ``limit`` is the most bytes it may have."""
    try:
        info = path.stat()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise ScenarioError(f"{path}: cannot read: {_one_line(getattr(exc, 'strerror', None) or exc)}") from None
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
        raise ScenarioError(f"{path}: cannot read: {_one_line(exc.strerror or exc)}") from None
    try:
        data = yaml.load(text, Loader=UniqueKeySafeLoader)  # a SafeLoader: plain data, no object construction
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc
        raise ScenarioError(f"{path}: invalid YAML: {where}{_one_line(problem)}") from None
    except RecursionError:
        raise ScenarioError(f"{path}: invalid YAML: nested too deeply") from None
    except Exception as exc:  # a constructor failing in a mapping's or list's body, outside construct_object
        raise ScenarioError(f"{path}: invalid YAML: cannot read: {type(exc).__name__}: {_one_line(exc)}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: (top level): a scenario must be a mapping, got {type(data).__name__}")
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
    """
    path = Path(path)
    try:
        resolved = path.resolve()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise ScenarioError(f"{path}: cannot read: {_one_line(exc)}") from None
    if resolved in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, resolved))
        raise ScenarioError(f"{path}: extends: cycle {cycle}")
    if len(_chain) >= MAX_EXTENDS_DEPTH:
        raise ScenarioError(f"{path}: extends: chain longer than {MAX_EXTENDS_DEPTH}")
    data, size = _read_yaml(path, _budget)
    parent = data.get("extends")
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent.strip():
        raise ScenarioError(f"{path}: extends: must be a path to another scenario")
    try:
        parent_path = (path.parent / parent).resolve()
        found = parent_path.is_file()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        raise ScenarioError(f"{path}: extends: cannot use {parent!r}: {_one_line(exc)}") from None
    if not found:
        raise ScenarioError(f"{path}: extends: no scenario file at {parent_path}")
    base = load_raw(parent_path, (*_chain, resolved), _budget - size)
    validate(base, str(parent_path))
    child = {k: v for k, v in data.items() if k != "extends"}
    return merge(base, child)


def validate(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate plain data (already merged) into a :class:`Scenario`.

    Parameters the scenario omits take the calibrated values
    (``calibration/calibrated.yaml``) and then the code defaults; so do
    city-specific estimates (e.g. ``attractiveness``) for cities of the
    calibrated names that do not set them.

    Raises:
        ScenarioError: one line naming ``source``, the field and the reason.
    """
    data = {k: v for k, v in data.items() if k != "extends"}
    calibrated = calibrated_defaults()
    params = data.get("parameters")
    if params is None or isinstance(params, dict):
        merged = {**calibrated["parameters"], **(params or {})}
        if "lever_effects" not in (params or {}):  # inherited weights apply to the sectors this scenario has
            merged["lever_effects"] = _inherited_lever_effects(merged.get("lever_effects"), data.get("sectors"))
        data["parameters"] = merged
    if isinstance(data.get("cities"), list):  # city-specific estimates for cities the scenario leaves unset
        data["cities"] = [{**calibrated["cities"].get(c.get("name"), {}), **c}
                          if isinstance(c, dict) and isinstance(c.get("name"), str) else c for c in data["cities"]]
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _LocatedError):
            loc, msg = err["loc"] + ctx_error.loc, ctx_error.msg
        else:
            loc, msg = err["loc"], err["msg"].removeprefix("Value error, ")
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ScenarioError(f"{source}: {_format_loc(tuple(loc), data)}: {_one_line(msg)}{more}") from None
    except _LocatedError as exc:  # raised outside pydantic's wrapping
        raise ScenarioError(f"{source}: {_format_loc(exc.loc, data)}: {_one_line(exc.msg)}") from None
    except (RecursionError, OverflowError) as exc:
        raise ScenarioError(f"{source}: (top level): cannot be validated: {_one_line(exc)}") from None


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
    """Load, merge (``extends``) and validate a scenario file.

    Args:
        path: the YAML file.

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: one line naming the file, the field's path and the reason.
    """
    return validate(load_raw(path), str(path))


__all__ = [
    "LEVERS", "Lever", "Scenario", "ScenarioError", "City", "Event", "Policy", "Allocation", "Anchor",
    "Time", "load_scenario", "load_raw", "validate", "merge",
]
