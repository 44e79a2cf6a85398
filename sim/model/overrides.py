"""Keyword overrides of a scenario, ``ModuModel(scenario, network_effect=1.2)``, applied by the scenario layer.

The model imports nothing above it, yet making a scenario variant (paths, validation,
one-line refusals) belongs to the scenario layer (:func:`sim.scenario.paths.derive`).
So the scenario layer registers its function here when it is imported (``sim.scenario``
does, in its ``__init__``), and the model calls it. A validated scenario exists only once
that layer has been imported, so the function is always there when a model is built from
one, in this process or in a worker that unpickled the scenario.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Apply = Callable[[Any, Mapping[str, Any]], Any]
"""(validated scenario, overrides) → the validated variant."""

_apply: Apply | None = None


def register(apply: Apply) -> None:
    """Set the function that applies keyword overrides (called by :mod:`sim.scenario.paths` on import)."""
    global _apply
    _apply = apply


def apply_overrides(scenario: Any, overrides: Mapping[str, Any]) -> Any:
    """The scenario with ``overrides`` applied, by the registered function.

    Raises:
        RuntimeError: no function is registered (the scenario layer was never imported).
    """
    if _apply is None:
        raise RuntimeError("keyword overrides need the scenario layer: import sim.scenario first")
    return _apply(scenario, overrides)
