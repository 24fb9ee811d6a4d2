"""Pareto fronts of accuracy against cost (parameters, FLOPs, seconds), for multi-objective searches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def pareto_front(points: Iterable[Sequence[float]] | np.ndarray) -> list[int]:
    """Indices of the ``(accuracy, cost)`` points that no other point dominates, by increasing cost.

    A point dominates another when its accuracy is at least as high and its cost at most as high,
    and one of the two strictly. Higher accuracy and lower cost are better. Equal points do not
    dominate each other, so duplicates on the front are all returned (in index order).

    Args:
        points: ``n`` pairs ``(accuracy, cost)``, e.g. an array of shape ``(n, 2)``.

    Returns:
        The indices of the front, sorted by cost (then by index); ``[]`` for no points.

    Example:
        >>> pareto_front([(0.90, 2e6), (0.92, 3e6), (0.89, 3e6), (0.85, 1e6)])
        [3, 0, 1]
    """
    array = np.asarray(points if isinstance(points, np.ndarray) else list(points), dtype=np.float64)
    if array.size == 0:
        return []
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(
            f"expected (accuracy, cost) pairs, an array of shape (n, 2), got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError("expected finite accuracies and costs, got NaN or infinity")
    accuracy, cost = array[:, 0], array[:, 1]
    # Sweep by increasing cost (higher accuracy first on equal cost): a point is dominated exactly
    # when an earlier point has a higher accuracy, or the same accuracy at a strictly lower cost.
    order = np.lexsort((np.arange(len(array)), -accuracy, cost))
    front: list[int] = []
    best_accuracy, best_cost = -np.inf, -np.inf
    for i in order.tolist():
        if accuracy[i] > best_accuracy:
            best_accuracy, best_cost = accuracy[i], cost[i]
            front.append(i)
        elif accuracy[i] == best_accuracy and cost[i] == best_cost:
            front.append(i)
    return front
