"""Decision-tree rules for comparison with PRIM: the leaves of a shallow CART tree as text.

Generic: any table of inputs and any boolean outcome. scikit-learn is an optional
dependency (the ``discover`` extra), imported only when called.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.analysis.formatting import number_text

__all__ = ["cart_rules"]


def cart_rules(
    X: pd.DataFrame,
    y: Sequence[bool] | np.ndarray | pd.Series,
    max_depth: int = 3,
    min_samples_leaf: int | float = 0.01,
    random_state: int = 0,
) -> list[str]:
    """Leaf rules of a shallow decision tree, for comparison with PRIM.

    Categorical inputs are one-hot encoded (``leader=Hefei``). Each leaf becomes one line,
    e.g. ``"x1 > 0.7 and x2 <= 0.3: density 95%, coverage 90% (n=180)"``; lines are sorted
    by density, highest first.

    Args:
        X: inputs, one row per run.
        y: the outcome of interest per run.
        max_depth: depth of the tree.
        min_samples_leaf: smallest leaf (count, or share of runs if a float < 1).
        random_state: seed of the tree's tie-breaking.

    Returns:
        One text line per leaf.

    Raises:
        ImportError: scikit-learn is not installed.
    """
    try:
        from sklearn.tree import DecisionTreeClassifier
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("cart_rules needs scikit-learn, an optional dependency: pip install scikit-learn") from error
    y_arr = np.asarray(y).astype(bool)
    features = pd.get_dummies(X, prefix_sep="=", dtype=float)
    tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=min_samples_leaf, random_state=random_state)
    tree.fit(features.to_numpy(dtype=float), y_arr)
    names = list(features.columns)
    onehot = {c for c in names if c not in X.columns}
    t = tree.tree_
    leaf_of = tree.apply(features.to_numpy(dtype=float))
    total = max(int(y_arr.sum()), 1)
    lines = []

    def walk(node: int, bounds: dict[str, list[float]]) -> None:
        if t.children_left[node] == -1:
            in_leaf = leaf_of == node
            n, k = int(in_leaf.sum()), int(y_arr[in_leaf].sum())
            parts = []
            for name, (low, high) in bounds.items():
                if name in onehot:
                    parts.append(f"{name}" if low > -math.inf else f"not {name}")
                elif low > -math.inf and high < math.inf:
                    parts.append(f"{number_text(low)} < {name} <= {number_text(high)}")
                elif low > -math.inf:
                    parts.append(f"{name} > {number_text(low)}")
                else:
                    parts.append(f"{name} <= {number_text(high)}")
            rule = " and ".join(parts) if parts else "all runs"
            lines.append((k / n if n else 0.0, f"{rule}: density {k / n:.0%}, coverage {k / total:.0%} (n={n})"))
            return
        name, cut = names[t.feature[node]], float(t.threshold[node])
        low, high = bounds.get(name, [-math.inf, math.inf])
        walk(t.children_left[node], {**bounds, name: [low, min(high, cut)]})
        walk(t.children_right[node], {**bounds, name: [max(low, cut), high]})

    walk(0, {})
    return [line for _, line in sorted(lines, key=lambda item: -item[0])]
