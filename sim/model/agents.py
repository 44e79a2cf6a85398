"""City agents: endowments, policy stocks K, D, A, spending and strategies.

Firms are agents too, but stored column-wise for speed: see :mod:`sim.model.firms`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from sim.model.parameters import DEFAULT_LEARNING_RATE, LEVERS

if TYPE_CHECKING:
    from sim.model.model import ModuModel
    from sim.scenario.schema import City as CitySpec


class City(mesa.Agent):
    """A city competing for AI firms with a policy budget over three levers.

    Attributes:
        index: the city's position in the model's arrays.
        name: the city's name.
        spec: its validated scenario entry (endowments, policy).
        stocks: policy stocks (K, D, A) in stock units (100 M yuan at unit cost 1).
        budget: annual policy budget, 100 M yuan.
        allocation: budget shares over (compute, data, anchor).
        strategy: ``fixed``, ``imitate`` or ``best_response``.
        learning_rate: share of the gap to its target closed per year.
        spend: spending in the current step per lever, 100 M yuan.
    """

    def __init__(self, model: ModuModel, index: int, spec: CitySpec):
        """Create a city from its scenario entry; stocks start at the initial policy's steady state."""
        super().__init__(model)
        self.index = index
        self.name = spec.name
        self.spec = spec
        policy = spec.policy
        self.budget = policy.budget if policy else 0.0
        self.allocation = np.array(policy.allocation.as_tuple() if policy else (1 / 3, 1 / 3, 1 / 3))
        self.strategy = policy.strategy if policy else "fixed"
        self.learning_rate = policy.learning_rate if policy else DEFAULT_LEARNING_RATE  # events may give it a strategy
        self.spend = np.zeros(len(LEVERS))
        self.pending_investment = np.zeros(len(LEVERS))
        # Assumption: the stocks start where the initial policy would hold them
        # (X* = spend per step / (δ·c)), so a run does not open with a ramp-up.
        delta, unit_cost = model.depreciation_per_step, model.unit_cost
        steady = self.budget * self.allocation / model.steps_per_year / np.where(delta > 0, delta, np.inf) / unit_cost
        self.stocks = steady

    @property
    def firms(self) -> int:
        """Firms currently located in the city."""
        return int(self.model.N[self.index].sum())

    def adapt_allocation(self) -> None:
        """Set this year's allocation by the city's strategy (docs/ODD.md §3.6).

        ``fixed`` keeps it; ``imitate`` moves a share ``learning_rate`` toward
        last year's fastest-growing city's allocation; ``best_response`` moves
        it toward the lever with the highest marginal expected firm gain per yuan
        (see :func:`best_levers`). A city without a budget keeps its allocation.
        """
        if self.strategy == "fixed" or self.budget <= 0:
            return
        if self.strategy == "imitate":
            target = self.model.fastest_growing_allocation()
        else:
            target = best_levers(self.model.marginal_firm_gain()[self.index])
        if target is not None:
            self.allocation = (1 - self.learning_rate) * self.allocation + self.learning_rate * target

    def invest(self) -> None:
        """Spend this step's share of the budget (plus one-off investments) and update the stocks.

        ``X ← (1 − δ_X)·X + spend_X / c_X`` per lever, δ per step.
        """
        self.spend = self.budget * self.allocation / self.model.steps_per_year + self.pending_investment
        self.pending_investment = np.zeros(len(LEVERS))
        self.stocks = (1 - self.model.depreciation_per_step) * self.stocks + self.spend / self.model.unit_cost


def best_levers(gain: np.ndarray, rtol: float = 1e-9) -> np.ndarray | None:
    """The best-response target allocation: everything on the lever with the highest marginal gain.

    Args:
        gain: expected extra firms per step per 100 M yuan on each lever (compute, data, anchor).
        rtol: gains within this relative distance of the highest count as tied.

    Returns:
        Shares over the levers: 1 on the best lever, or split equally between
        tied best levers; None when all levers gain the same (e.g. no lever
        has an effect, or the city takes every entrant already), so that the
        allocation stays where it is rather than drifting toward an arbitrary lever.
    """
    top = float(np.max(gain))
    best = gain >= top - rtol * abs(top)
    if best.all():
        return None
    return best / best.sum()
