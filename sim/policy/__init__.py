"""Policy design: a planner's questions over a scenario, its calibration posterior and the deep uncertainties.

One entry per question, each returning a result object with ``to_df()`` and ``plot()``
(:mod:`sim.reporting.policy` writes their folders):

- which lever mix is best for a city (``modu optimise``): :func:`~sim.policy.optimisation.plan_optimisation`
  then :func:`~sim.policy.optimisation.optimise` → :class:`~sim.policy.optimisation.OptimiseResult`;
- where the subsidy race between cities settles (``modu equilibrium``): :func:`~sim.policy.race.plan_game`
  then :func:`~sim.policy.race.solve_game` → :class:`~sim.policy.race.EquilibriumResult`;
- which swept conditions lead to an outcome (``modu discover``): :func:`~sim.policy.discovery.discover`
  → :class:`~sim.policy.discovery.Discovery`;
- whether each answer holds draw by draw, and where it turns over: :mod:`~sim.policy.robustness`.

The runs (:mod:`~sim.policy.runs`), objectives (:mod:`~sim.policy.objectives`) and figures
(:mod:`~sim.policy.figures`) are shared by the questions; the parameter draws come from
:func:`sim.inference.draws.parameter_draws`. The generic algorithms (games on grids, the
simplex, PRIM, the expression language) are :mod:`sim.analysis`'s.

Sits above :mod:`sim.inference` (it reads the calibration's draws) and below :mod:`sim.reporting`.
"""

from sim._lazy import lazy_getattr

_PUBLIC = {
    **dict.fromkeys(["Discovery", "discover", "read_sweep"], "sim.policy.discovery"),
    "PolicyError": "sim.policy.errors",
    "Objective": "sim.policy.objectives",
    **dict.fromkeys(["OptimisePlan", "OptimiseResult", "optimise", "plan_optimisation"], "sim.policy.optimisation"),
    **dict.fromkeys(["EquilibriumResult", "GamePlan", "involution", "plan_game", "solve_game"], "sim.policy.race"),
    **dict.fromkeys(["Robustness", "compare_robustness", "equilibrium_robustness", "optimise_robustness"],
                    "sim.policy.robustness"),
}
"""Public names and the module defining each; imported on first use."""

__getattr__ = lazy_getattr(__name__, _PUBLIC)

__all__ = sorted(_PUBLIC)
