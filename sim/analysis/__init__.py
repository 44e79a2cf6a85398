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

Nothing here imports the rest of ``sim`` (an import-linter contract in pyproject.toml), so
the package has its own lazy loader instead of ``sim._lazy``: the names below are imported
on first use, and matplotlib only when something is drawn.
"""

from importlib import import_module
from typing import Any

_PUBLIC = {
    **dict.fromkeys(["Population", "Prior", "abc_smc", "populations_frame", "populations_from_frame", "run_batch",
                     "weighted_correlation", "weighted_quantile"], "sim.analysis.abc_smc"),
    **dict.fromkeys(["PrimBox", "choose_box", "describe_box"], "sim.analysis.boxes"),
    "cart_rules": "sim.analysis.cart",
    **dict.fromkeys(["Expression", "ExpressionError", "evaluate_expression", "expression_columns", "parse_expression"],
                    "sim.analysis.expressions"),
    **dict.fromkeys(["BestResponseResult", "CachedPayoffs", "best_response", "brute_force_equilibria",
                     "cooperative_optimum", "is_equilibrium", "iterated_best_response", "price_of_anarchy"],
                    "sim.analysis.games"),
    **dict.fromkeys(["PrimResult", "prim"], "sim.analysis.prim"),
    **dict.fromkeys(["simplex_divisions", "simplex_grid", "to_cartesian"], "sim.analysis.simplex"),
    "ternary_heatmap": "sim.analysis.ternary",
}
"""Public names and the module defining each."""


def __getattr__(name: str) -> Any:
    """Import ``name``'s module on first use and return the name."""
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_PUBLIC)
