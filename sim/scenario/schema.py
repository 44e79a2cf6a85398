"""The scenario schema: what a scenario file may say, checked by pydantic (docs/ODD.md §3.1).

Every field has its unit and meaning; :class:`Scenario` cross-checks cities,
sectors and events. Loading files (YAML, ``extends``, calibration) is
:mod:`sim.scenario.loading`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sim.model.parameters import DEFAULT_LEARNING_RATE, LeverMap, Parameters
from sim.scenario.errors import located as _located

SHARE_TOLERANCE = 1e-6
"""How far a set of shares may be from summing to 1."""



class Strict(BaseModel):
    """A model that refuses unknown keys and non-finite numbers."""

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


class Time(Strict):
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


class Allocation(Strict):
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


class Policy(Strict):
    """A city's policy: annual budget, its allocation, and how the allocation adapts."""

    budget: float = Field(0.0, ge=0, le=1e7, description="annual policy budget, 100 M yuan")
    allocation: Allocation = Field(default_factory=lambda: Allocation(compute=1 / 3, data=1 / 3, anchor=1 / 3))
    strategy: Strategy = "fixed"
    learning_rate: float = Field(DEFAULT_LEARNING_RATE, ge=0, le=1, description="share of the gap closed per year")


class Anchor(Strict):
    """A named leading firm (Baidu, Tencent, ...)."""

    name: str = Field(min_length=1, max_length=200)
    sector: str


class City(Strict):
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
    places: int = Field(1, ge=1, le=100_000, description="the places a pool stands for: each holds a fixed rank-size "
                        "share of the pool's firms and pays its own network term and congestion (docs/ODD.md §3.3)")
    places_exponent: float = Field(1.0, ge=0, le=10, description="rank-size exponent of those shares: place m of "
                                   "a pool holds m^-exponent / Σ_k k^-exponent of its firms")
    places_from: int = Field(1, ge=1, le=100_000, description="the rank of the pool's largest place in that "
                             "rank-size law (m runs from places_from): places ranked after named cities")
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
        if self.places > 1 and not self.pool:
            raise ValueError(f"places: {self.places} places need pool: true (only a pool stands for several places)")
        return self

    def place_shares(self) -> list[float]:
        """Each place's fixed share of the city's firms: ``m^-places_exponent`` for m from ``places_from``, normalised.

        ``[1.0]`` for a city of one place.
        """
        raw = [m ** -self.places_exponent for m in range(self.places_from, self.places_from + self.places)]
        total = sum(raw)
        return [r / total for r in raw]


EVENT_ACTIONS = ("invest", "budget", "allocation", "strategy", "learning_rate", "add_anchor", "open")
"""What an event can do; one event may do several of these at once."""


class Event(Strict):
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


class Scenario(Strict):
    """A validated scenario (docs/ODD.md §3.1)."""

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    extends: str | None = Field(None, description="the parent scenario whose values this one updates: a shipped "
                                                  "scenario's name (baseline, china, ...) or a path relative to this "
                                                  "file; mappings merge, cities merge by name")
    calibration: str | None = Field(
        None, description="the calibration whose estimates fill in the parameters and city constants this scenario "
                          "does not set: a shipped calibration's name (baseline, china, ...) or a path relative "
                          "to this file (a calibrated.yaml); null: the code defaults")
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
        """``W[s][s']`` in sector order; the default is 1 on the diagonal and 0.25 elsewhere.

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

    def __iter__(self) -> NoReturn:
        """Not iterable (pydantic iterates fields): ``mesa.batch_run`` then takes a scenario as one value, not a list."""
        raise TypeError("a Scenario is one value, not a collection of values")


def digest_of(resolved: dict[str, Any]) -> str:
    """SHA-256 of a resolved scenario as plain data (compact JSON), as manifests record it in ``scenario_hash``.

    Keys keep their order: the order of ``sectors`` (and of ``cities``) decides
    which random numbers each sector draws, so it is part of what a run is.
    """
    return text_digest(canonical_json(resolved))


def canonical_json(resolved: dict[str, Any]) -> str:
    """The text :func:`digest_of` hashes: compact JSON, keys in their order."""
    return json.dumps(resolved, separators=(",", ":"))


def text_digest(text: str) -> str:
    """SHA-256 of a text (UTF-8), in hexadecimal."""
    return hashlib.sha256(text.encode()).hexdigest()


DEFAULT_CROSS_COMPLEMENTARITY = 0.25
"""Default off-diagonal W[s][s'] (assumption, see Scenario.complementarity_matrix)."""


JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The JSON Schema dialect pydantic writes (draft 2020-12)."""


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (``modu schema``), for editors and other tools.

    What :class:`Scenario` validates field by field: types, bounds, defaults, and each
    parameter's description, ``symbol``, ``unit`` and ``source``. Checks across fields
    (shares summing to 1, city and sector names referenced, event times) are pydantic's
    alone: ``modu validate`` is the full check.

    A file with ``extends`` updates its parent, so it may leave out what the parent
    gives (``name``, ``cities``, a city's ``firms``): those are required only in a
    file without ``extends``.
    """
    schema = Scenario.model_json_schema()
    city = schema["$defs"]["City"]
    complete = {"required": schema.pop("required"), "properties": {"cities": {"items": {"required": city["required"]}}}}
    city["required"] = ["name"]  # a child names the cities it changes
    return {"$schema": JSON_SCHEMA_DIALECT, "title": "Modu scenario",
            **{k: v for k, v in schema.items() if k != "title"}, "if": {"required": ["extends"]}, "else": complete}

