"""Generic analysis: algorithms that know nothing of Modu, usable on any table, payoff function or simulator.

- :mod:`~sim.analysis.prim` — PRIM scenario discovery on any table of inputs and a boolean
  outcome (boxes in :mod:`~sim.analysis.boxes`, figures in :mod:`~sim.analysis.prim_plots`),
  with :func:`~sim.analysis.cart.cart_rules` for comparison;
- :mod:`~sim.analysis.expressions` — a small, safe boolean language over a table's columns;
- :mod:`~sim.analysis.games` — pure-strategy games on finite grids: best responses,
  equilibria, the cooperative optimum and the price of anarchy;
- :mod:`~sim.analysis.simplex` — the grid of exact shares of three components, drawn by
  :func:`~sim.analysis.ternary.ternary_heatmap`;
- :mod:`~sim.analysis.abc_smc` — approximate Bayesian computation by sequential Monte Carlo
  over any simulator.

Nothing here imports the rest of ``sim`` (an import-linter contract in pyproject.toml). The
names below are imported with the package — its modules are small, and a function may share
its module's name (:func:`~sim.analysis.prim.prim`) only if the package binds it first — except
:func:`~sim.analysis.ternary.ternary_heatmap`, imported on first use so that matplotlib is
loaded only when something is drawn.
"""

from importlib import import_module
from typing import Any

from sim.analysis.abc_smc import (
    Population,
    Prior,
    abc_smc,
    populations_frame,
    populations_from_frame,
    run_batch,
    weighted_correlation,
    weighted_quantile,
)
from sim.analysis.boxes import PrimBox, choose_box, describe_box
from sim.analysis.cart import cart_rules
from sim.analysis.expressions import (
    Expression,
    ExpressionError,
    evaluate_expression,
    expression_columns,
    parse_expression,
)
from sim.analysis.games import (
    BestResponseResult,
    CachedPayoffs,
    best_response,
    brute_force_equilibria,
    cooperative_optimum,
    is_equilibrium,
    iterated_best_response,
    price_of_anarchy,
)
from sim.analysis.prim import PrimResult, prim
from sim.analysis.simplex import simplex_divisions, simplex_grid, to_cartesian

_DRAWING = {"ternary_heatmap": "sim.analysis.ternary"}
"""Drawing functions and their modules, imported on first use."""


def __getattr__(name: str) -> Any:
    """Import a drawing function's module on first use and return the function."""
    if name in _DRAWING:
        return getattr(import_module(_DRAWING[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BestResponseResult", "CachedPayoffs", "Expression", "ExpressionError", "Population", "PrimBox", "PrimResult",
    "Prior", "abc_smc", "best_response", "brute_force_equilibria", "cart_rules", "choose_box", "cooperative_optimum",
    "describe_box", "evaluate_expression", "expression_columns", "is_equilibrium", "iterated_best_response",
    "parse_expression", "populations_frame", "populations_from_frame", "price_of_anarchy", "prim", "run_batch",
    "simplex_divisions", "simplex_grid", "ternary_heatmap", "to_cartesian", "weighted_correlation", "weighted_quantile",
]
