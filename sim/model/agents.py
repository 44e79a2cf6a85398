"""City agents: a Mesa view of each city's endowments, policy and stocks.

A city's policy state lives in the model's compiled state
(:class:`sim.model.kernel.compile.State`), where the city phases of the kernel
(:func:`sim.model.kernel.phases.spend`: strategies, events, spending) change it
for both engines; a :class:`City` reads and writes its own row of it.
Firms are agents too, stored column-wise for speed: see :mod:`sim.model.firms`.
"""

from __future__ import annotations

import itertools
import weakref
from typing import TYPE_CHECKING

import mesa
import numpy as np

from sim.model.kernel.compile import STRATEGIES

if TYPE_CHECKING:
    from sim.model.model import ModuModel
    from sim.scenario.schema import City as CitySpec


class _IdsPerModel(weakref.WeakKeyDictionary):
    """Each model's counter of agent ids, holding the models weakly.

    Mesa 3.3's ``Agent._ids`` is a class-level ``defaultdict`` keyed by the model,
    which keeps every model that ever made an agent alive for the life of the
    process (mesa/mesa#3179, fixed in later Mesa by assigning ids in
    ``register_agent``, which no longer reads ``_ids``): a run of many
    replications in one process grew by about 17 MB per baseline run.
    """

    def __getitem__(self, model: mesa.Model) -> itertools.count:
        try:
            return super().__getitem__(model)
        except KeyError:
            self[model] = counter = itertools.count(1)
            return counter


class City(mesa.Agent):
    """A city competing for AI firms with a policy budget over three levers.

    Attributes:
        index: the city's position in the model's arrays.
        name: the city's name.
        spec: its validated scenario entry (endowments, policy).
    """

    _ids = _IdsPerModel()  # shadows Mesa 3.3's Agent._ids, which never lets a model go

    def __init__(self, model: ModuModel, index: int, spec: CitySpec):
        """A view of row ``index`` of the model's state (stocks start at the initial policy's steady state)."""
        super().__init__(model)
        self.index = index
        self.name = spec.name
        self.spec = spec

    @property
    def firms(self) -> int:
        """Firms currently located in the city."""
        return int(self.model.state.N[self.index].sum())

    @property
    def stocks(self) -> np.ndarray:
        """Policy stocks (K, D, A) in stock units (100 M yuan at unit cost 1): a view of the state."""
        return self.model.state.stocks[self.index]

    @property
    def budget(self) -> float:
        """Annual policy budget, 100 M yuan."""
        return float(self.model.state.budget[self.index])

    @budget.setter
    def budget(self, value: float) -> None:
        self.model.state.budget[self.index] = value

    @property
    def allocation(self) -> np.ndarray:
        """Budget shares over (compute, data, anchor): a view of the state."""
        return self.model.state.allocation[self.index]

    @allocation.setter
    def allocation(self, value: np.ndarray) -> None:
        self.model.state.allocation[self.index] = value

    @property
    def strategy(self) -> str:
        """``fixed``, ``imitate`` or ``best_response``."""
        return STRATEGIES[self.model.state.strategy[self.index]]

    @strategy.setter
    def strategy(self, value: str) -> None:
        self.model.state.strategy[self.index] = STRATEGIES.index(value)

    @property
    def learning_rate(self) -> float:
        """Share of the gap to its target allocation closed per year."""
        return float(self.model.state.learning_rate[self.index])

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.model.state.learning_rate[self.index] = value

    @property
    def spend(self) -> np.ndarray:
        """Spending in the current step per lever, 100 M yuan: a view of the state."""
        return self.model.state.spend[self.index]
