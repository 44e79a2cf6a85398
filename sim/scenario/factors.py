"""One type for an uncertain or varied input: a :class:`Factor` (a sweep's range, a sensitivity factor, a prior).

In EMA Workbench's vocabulary a factor is an uncertainty or a lever: a
scenario field named by its dotted path (:mod:`sim.scenario.paths`), a range,
a distribution over it, and whether its value replaces the field or scales it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from sim.scenario.errors import ScenarioError
from sim.scenario.paths import parse_path, set_path
from sim.scenario.reading import validate
from sim.scenario.schema import Strict


class Factor(Strict):
    """A scenario field varied over ``[low, high]``.

    Attributes:
        target: the field's dotted path, e.g. ``parameters.network_effect`` or ``cities.*.policy.budget``.
        low: lowest value (natural scale).
        high: highest value.
        kind: ``uniform`` on [low, high], ``loguniform`` (uniform in log10), or ``normal``
            (mean, sd) truncated to [low, high].
        mean: the normal distribution's mean.
        sd: the normal distribution's standard deviation.
        scale: the value multiplies the field's current value (e.g. every budget) instead of replacing it.
        name: the label in tables and figures (default: the target without ``parameters.``/``cities.``).
        why: the reason for the range (a source, a calibration, or a labelled assumption).
    """

    target: str = Field(min_length=1)
    low: float
    high: float
    kind: Literal["uniform", "loguniform", "normal"] = "uniform"
    mean: float | None = None
    sd: float | None = Field(None, gt=0)
    scale: bool = False
    name: str | None = None
    why: str = ""

    @model_validator(mode="before")
    @classmethod
    def _log_flag(cls, data: Any) -> Any:
        """Accept ``log: true`` (factor files) for ``kind: loguniform``."""
        if isinstance(data, dict) and "log" in data:
            data = dict(data)
            log = data.pop("log")
            if log is True:
                data.setdefault("kind", "loguniform")
            elif log is not False:
                raise ValueError("log must be true or false")
        return data

    @model_validator(mode="after")
    def _valid(self) -> Factor:
        parse_path(self.target)
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.kind == "loguniform" and self.low <= 0:
            raise ValueError("a loguniform factor needs low > 0")
        if self.kind == "normal" and (self.mean is None or self.sd is None):
            raise ValueError("a normal factor needs mean and sd")
        return self

    @property
    def log(self) -> bool:
        """Whether the factor is sampled in log10."""
        return self.kind == "loguniform"

    @property
    def label(self) -> str:
        """Short name: ``parameters.network_effect`` → ``network_effect``; ``cities.Beijing.attractiveness`` →
        ``Beijing.attractiveness``.
        """  # noqa: D205, D415
        if self.name:
            return self.name
        parts = parse_path(self.target)
        return ".".join(parts[1:]) if parts[0] in ("parameters", "cities") and len(parts) > 1 else self.target

    def bounds(self) -> list[float]:
        """The range on the internal scale (log10 for loguniform)."""
        return [math.log10(self.low), math.log10(self.high)] if self.log else [self.low, self.high]

    def natural(self, u: np.ndarray | float) -> np.ndarray:
        """Internal scale → natural values (10**u for loguniform)."""
        return 10.0 ** np.asarray(u, dtype=float) if self.log else np.asarray(u, dtype=float)

    def apply(self, data: dict[str, Any], value: float) -> None:
        """Set (or scale) the target field of plain scenario data to ``value``, in place."""
        if self.scale:
            set_path(data, self.target, lambda current: current * float(value), create=False)
        else:
            set_path(data, self.target, float(value))


def check_each(base: dict[str, Any], changes: Iterable[tuple[str, Callable[[dict[str, Any]], None]]]) -> None:
    """Validate a copy of ``base`` (plain scenario data) with each change applied alone.

    Args:
        base: the scenario's data; not modified.
        changes: (where, change) pairs: ``change`` modifies the data in place, and ``where`` names it in
            the error (e.g. ``sweep.yaml with parameters.rho=2``).

    Raises:
        ScenarioError: the first change that leaves the scenario invalid, named by its ``where``.
    """
    for where, change in changes:
        data = copy.deepcopy(base)
        change(data)
        validate(data, where)


def check_factors(base: dict[str, Any], factors: Sequence[Factor], source: str) -> None:
    """Refuse factors that name nothing in a scenario, or whose range leaves it invalid.

    Each factor is applied at its low and its high end to a copy of ``base``
    (plain scenario data) and the result validated (:func:`check_each`).

    Raises:
        ScenarioError: ``source[i].target: reason`` for the first factor that does not fit.
    """
    for i, factor in enumerate(factors):
        try:
            check_each(base, [(f"{factor.target}={value:g}", partial(factor.apply, value=value))
                              for value in (factor.low, factor.high)])
        except ScenarioError as exc:
            raise ScenarioError(f"{source}[{i}].target: {factor.target}: {exc}") from None
