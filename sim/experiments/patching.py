"""Designs that change numbers only: their points patched into one compiled model, validated once at their ends.

A sweep's points, a calibration's proposals or a sensitivity sample that vary
only fields the compiled model takes directly
(:data:`sim.model.kernel.compile.PATCHABLE`: behavioural parameters, a city's
constant terms, capacity, budget or learning rate, each a float valid on an
interval whatever the other fields hold) need no scenario derived, validated and
compiled per point: the base is compiled once and each point rebuilds only the
parts of the compiled model its fields set (:func:`sim.model.kernel.compile.recompile`).
Validating the base with each field at its range's ends validates every point
between (:func:`check_ends`). The runs are those of the derived scenarios, draw
for draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sim.model.kernel import CountsModel, compile_scenario
from sim.model.kernel.compile import patch_group, recompile
from sim.scenario import Scenario
from sim.scenario.factors import Factor, check_each
from sim.scenario.paths import PathError, parse_path, patch, set_path


@dataclass(frozen=True)
class PatchedDesign:
    """A design whose points differ from its base scenario only in numbers the compiled model takes directly.

    Attributes:
        scenario: the validated base scenario.
        model: its compiled model (:func:`sim.model.kernel.compile_scenario`).
        paths: the tokens of the paths that vary between points.
        positions: where each of those paths stands among a point's values (a sweep's point also holds the
            values of paths that do not vary).
        groups: the parts of the compiled model the varied fields change
            (:data:`sim.model.kernel.compile.PATCH_GROUPS`).
    """

    scenario: Scenario
    model: CountsModel
    paths: tuple[tuple[str, ...], ...]
    positions: tuple[int, ...]
    groups: frozenset[str]

    def varied(self, values: Sequence[Any]) -> tuple[float, ...]:
        """The values of :attr:`paths` among all of a point's ``values``, as floats."""
        return tuple(float(values[i]) for i in self.positions)

    def variant(self, values: Sequence[float]) -> Scenario:
        """The scenario at a point (its values in the order of :attr:`paths`), unvalidated: the design was."""
        return patch(self.scenario, dict(zip(self.paths, values, strict=True)))

    def model_at(self, values: Sequence[float]) -> CountsModel:
        """The compiled model at a point: equal, array for array, to compiling :meth:`variant`."""
        return recompile(self.model, self.variant(values), self.groups)


def patched_design(base: Scenario, paths: Sequence[tuple[str, ...]],
                   positions: Sequence[int] | None = None) -> PatchedDesign | None:
    """The design varying ``paths`` of ``base`` as patches of one compiled model, or None if it cannot be.

    It can be on the counts engine, when every path names a patchable field
    (:func:`sim.model.kernel.compile.patch_group`) present in ``base`` (a budget needs the city's policy: deriving
    would create one). The caller validates the design's ends (:func:`check_ends`).
    """
    groups = [patch_group(tuple(t)) for t in paths]
    if base.engine != "counts" or not paths or None in groups:
        return None
    paths = tuple(tuple(t) for t in paths)
    try:
        patch(base, {t: 1.0 for t in paths})
    except PathError:
        return None
    positions = tuple(range(len(paths))) if positions is None else tuple(positions)
    return PatchedDesign(base, compile_scenario(base), paths, positions, frozenset(groups))


def factor_design(base: Scenario, factors: Sequence[Factor]) -> PatchedDesign | None:
    """:func:`patched_design` of factors that each set one patchable field to their value (a calibration's
    priors, a sensitivity analysis's factors), or None (a factor that scales its field or sets several).

    Their ranges must have been validated at their ends (:func:`sim.scenario.factors.check_factors`).
    """  # noqa: D205
    if any(type(f) is not Factor or f.scale for f in factors):
        return None
    return patched_design(base, [parse_path(f.target) for f in factors])


def check_ends(base: Scenario, ends: Sequence[tuple[tuple[str, ...], Sequence[Any]]], source: str) -> None:
    """Validate ``base`` with each field set alone to each of its values (a range's ends, a grid's values).

    Raises:
        ScenarioError: one of them is invalid (one line naming the field and the value).
        PathError: a path names nothing in ``base``.
    """
    check_each(base.resolved(), [(f"{source} with {'.'.join(tokens)}={_shown(value)}",
                                  partial(set_path, path=tokens, value=value))
                                 for tokens, values in ends for value in values])


def _shown(value: Any) -> str:
    return f"{value:.15g}" if isinstance(value, float) else str(value)
