"""Behavioural parameters: one name from the YAML to the code to docs/ODD.md.

Every coefficient of the model is a field of :class:`Parameters` with its
symbol, unit, default, bounds and a one-line meaning. The defaults here are
*labelled assumptions*; a scenario that omits a parameter takes the
estimate of the calibration file it names (its ``calibration:`` key, see
:func:`sim.scenario.loading.apply_calibration`), otherwise the default below.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

LEVERS: tuple[str, ...] = ("compute", "data", "anchor")
"""The three policy levers, in the order of the stock vector (K, D, A)."""

Lever = Literal["compute", "data", "anchor"]

DEFAULT_LEARNING_RATE = 0.2
"""Share of the gap to its strategy's target that a city closes per year, unless its policy says otherwise
(assumption: a city adjusts its allocation over about five years)."""


def _param(default: Any, symbol: str, unit: str, meaning: str, source: str, **bounds: Any) -> Any:
    """A parameter field carrying its documentation (symbol, unit, source)."""
    return Field(
        default,
        description=meaning,
        json_schema_extra={"symbol": symbol, "unit": unit, "source": source},
        **bounds,
    )


class LeverMap(BaseModel):
    """A per-lever quantity (compute, data, anchor)."""

    model_config = ConfigDict(extra="forbid")

    compute: float = Field(0.0, ge=0, le=1e6)
    data: float = Field(0.0, ge=0, le=1e6)
    anchor: float = Field(0.0, ge=0, le=1e6)

    def as_tuple(self) -> tuple[float, float, float]:
        """The values in lever order (compute, data, anchor)."""
        return (self.compute, self.data, self.anchor)


class Parameters(BaseModel):
    """Behavioural parameters of the firm and city rules (docs/ODD.md, Details)."""

    model_config = ConfigDict(extra="forbid")

    network_effect: float = _param(
        1.1, "α", "utility per log-firm", "Agglomeration elasticity on log(N_eff + κ); α>1 tips to monopoly.",
        "assumption: code default; scenarios take the calibrated value in calibration/calibrated.yaml", ge=0, le=10)
    network_seed: float = _param(
        1.0, "κ", "firms", "Added to N_eff so an empty city stays choosable; 0 is the pure Pólya urn.",
        "assumption: one firm's worth, so that an empty city stays choosable; 0 gives the pure urn", ge=0, le=1e9)
    congestion: float = _param(
        0.5, "γ", "utility per (firms/capacity)", "Congestion cost per unit of a city's load N/capacity.",
        "assumption: code default; scenarios take the calibrated value in calibration/calibrated.yaml", ge=0, le=1e3)
    relocation_rate: float = _param(
        0.002, "ρ", "per firm per step", "Probability an incumbent reconsiders its location in a step.",
        "assumption: well under 1%/year (business demography); scenarios take the calibrated value", ge=0, le=1)
    moving_cost: float = _param(
        1.0, "m", "utility", "Utility cost of choosing any city other than the current one (movers only).",
        "assumption: code default; scenarios take the calibrated value in calibration/calibrated.yaml", ge=0, le=1e3)
    birth_rate: float = _param(
        0.03, "b", "per step, share of national firms", "Expected entrants per step as a share of all firms.",
        "assumption: code default; scenarios take the calibrated value in calibration/calibrated.yaml", ge=0, le=1)
    births_per_step: int | None = _param(
        None, "B", "firms per step", "Exact number of entrants per step; overrides birth_rate when set.",
        "assumption: off by default", ge=0, le=10**9)
    outside_option: float | None = _param(
        None, "V₀", "utility", "Utility of not entering: a potential entrant may stay out, so policy can add firms nationally.",
        "assumption: off (every potential entrant enters a city); the sources give no national entry data", ge=-1e3, le=1e3)
    exit_rate: float = _param(
        0.01, "μ", "per firm per step", "Exit probability of a size-1, non-anchor firm in a step.",
        "assumption: code default; scenarios take the calibrated value in calibration/calibrated.yaml", ge=0, le=1)
    exit_size_elasticity: float = _param(
        0.5, "η", "–", "Exit probability falls with size as μ·size^(−η).",
        "assumption: larger firms exit less (business-demography regularity)", ge=0, le=10)
    size_tail: float = _param(
        1.06, "ζ", "–", "Pareto tail index of firm size at birth (size ≥ 1).",
        "assumption: Zipf-like firm sizes (Axtell 2001), not a seed figure", gt=0.05, le=20)
    talent_effect: float = _param(
        0.5, "β_T", "utility per index point", "Weight of a city's talent index in utility.",
        "assumption: not estimated; the baseline cities set no talent index", ge=-100, le=100)
    capital_effect: float = _param(
        0.0, "β_C", "utility per index point", "Weight of a city's capital index in utility.",
        "assumption: off; not identified by the five counts", ge=-100, le=100)
    cost_effect: float = _param(
        0.0, "β_P", "utility per index point", "Disutility of a city's cost index.",
        "assumption: off; not identified by the five counts", ge=-100, le=100)
    lever_effects: dict[Lever, dict[str, float]] = _param(
        {"compute": {"upstream": 0.4}, "data": {"midstream": 0.3}, "anchor": {"downstream": 0.3}},
        "β_X[s]", "utility per log(1+stock)", "Per-lever, per-sector weights of log(1 + K), log(1 + D), log(1 + A_eff).",
        "assumption: example weights of the model's design, not estimates; deep uncertainties in calibration/assumptions.yaml", )
    anchor_weight: float = _param(
        10.0, "ω", "100 M yuan per anchor firm", "Anchor-support equivalent of one anchor firm present: A_eff = A + ω·anchors.",
        "assumption: one anchor is worth a 1 bn yuan support stock", ge=0, le=1e6)
    anchor_exit_factor: float = _param(
        0.0, "φ_exit", "–", "Anchors exit at μ·φ_exit.",
        "assumption: the named anchors (Baidu, Tencent, Huawei, Alibaba, iFlytek) all still lead in the 2023 sources", ge=0, le=1)
    anchor_relocation_factor: float = _param(
        0.1, "φ_move", "–", "Anchors reconsider at ρ·φ_move/(1 + A[c]): anchor subsidies keep them home.",
        "assumption: anchors are rooted in their home city", ge=0, le=1)
    depreciation: LeverMap = _param(
        LeverMap(compute=0.2, data=0.1, anchor=0.3), "δ_X", "per year", "Depreciation of each policy stock.",
        "assumption: compute hardware has a ~5-year life; data and support decay slower/faster")
    unit_cost: LeverMap = _param(
        LeverMap(compute=1.0, data=1.0, anchor=1.0), "c_X", "100 M yuan per stock unit",
        "Cost of one unit of each stock; 1 measures stocks in 100 M yuan.", "assumption: stocks in money units")

    @model_validator(mode="after")
    def _check(self) -> Parameters:
        for lever, by_sector in self.lever_effects.items():
            for sector, beta in by_sector.items():
                if not -100 <= beta <= 100:
                    raise ValueError(f"lever_effects.{lever}.{sector} must be in [-100, 100], got {beta}")
        for lever in LEVERS:
            if getattr(self.unit_cost, lever) <= 0:
                raise ValueError(f"unit_cost.{lever} must be > 0")
            if getattr(self.depreciation, lever) > 1:
                raise ValueError(f"depreciation.{lever} must be in [0, 1]")
        return self


def parameter_table() -> list[dict[str, str]]:
    """One row per parameter: name, symbol, unit, default, bounds, meaning, source (for docs)."""
    rows = []
    for name, field in Parameters.model_fields.items():
        extra = field.json_schema_extra or {}
        bounds = [f"{op} {getattr(m, attr):g}" for m in field.metadata
                  for attr, op in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")) if hasattr(m, attr)]
        default = field.default
        if isinstance(default, BaseModel):
            default = default.model_dump()
        rows.append({
            "name": name,
            "symbol": str(extra.get("symbol", "")),
            "unit": str(extra.get("unit", "")),
            "default": str(default),
            "bounds": ", ".join(bounds),
            "meaning": field.description or "",
            "source": str(extra.get("source", "")),
        })
    return rows
