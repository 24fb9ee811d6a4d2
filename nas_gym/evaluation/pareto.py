"""Pareto fronts and their quality, for multi-objective searches.

:func:`pareto_front` takes ``(accuracy, cost)`` pairs as the records hold them. The functions of
vector rewards (:func:`non_dominated`, :func:`non_dominated_ranks`, :func:`crowding_distance`,
:func:`hypervolume`, :func:`igd`) take any number of objectives, all maximised.
"""

from __future__ import annotations

import math
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


# ---------------------------------------------------------------------------------------- n objectives
# Below, every objective is maximised (MO-Gymnasium's convention, the vector rewards of the envs:
# costs enter negated), points are rows of an (n, d) array.


def _points(points: Iterable[Sequence[float]] | np.ndarray, what: str = "points") -> np.ndarray:
    array = np.asarray(points if isinstance(points, np.ndarray) else list(points), dtype=np.float64)
    if array.size == 0:
        return array.reshape(0, array.shape[1] if array.ndim == 2 else 0)
    if array.ndim != 2:
        raise ValueError(f"expected {what} as an array of shape (n, objectives), got shape {array.shape}")
    if np.isnan(array).any():
        raise ValueError(f"expected {what} without NaN, got NaN")
    return array


def dominates(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> bool:
    """Whether ``a`` dominates ``b``: at least as good in every objective, better in one (all
    maximised)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return bool(np.all(a >= b) and np.any(a > b))


def non_dominated(points: Iterable[Sequence[float]] | np.ndarray) -> list[int]:
    """Indices of the points that no other point dominates (all objectives maximised), in index
    order; equal points do not dominate each other, so duplicates on the front are all kept.

    Example:
        >>> non_dominated([(0.9, -2.0), (0.92, -3.0), (0.89, -3.0), (0.85, -1.0)])
        [0, 1, 3]
    """
    array = _points(points)
    if len(array) == 0:
        return []
    # Lexicographic order, best first: a point can only be dominated by one before it.
    order = np.lexsort(array.T[::-1] * -1)
    kept: list[int] = []
    for i in order.tolist():
        if kept:
            front = array[kept]
            if np.any(np.all(front >= array[i], axis=1) & np.any(front > array[i], axis=1)):
                continue
        kept.append(i)
    return sorted(kept)


def non_dominated_ranks(points: Iterable[Sequence[float]] | np.ndarray) -> np.ndarray:
    """The non-domination rank of each point (Deb et al. 2002, NSGA-II): 0 for the front, 1 for
    the front of the rest, and so on."""
    array = _points(points)
    ranks = np.full(len(array), -1, dtype=np.int64)
    remaining = np.arange(len(array))
    rank = 0
    while remaining.size:
        front = remaining[non_dominated(array[remaining])]
        ranks[front] = rank
        remaining = np.setdiff1d(remaining, front, assume_unique=True)
        rank += 1
    return ranks


def crowding_distance(points: Iterable[Sequence[float]] | np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each point within ``points`` (one front): the sum over the
    objectives of the gap between its two neighbours, divided by the objective's range; the
    extremes of each objective get ``inf``, so they are kept first."""
    array = _points(points)
    n, d = array.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(d):
        order = np.argsort(array[:, k], kind="stable")
        values = array[order, k]
        distance[order[[0, -1]]] = np.inf
        span = values[-1] - values[0]
        if span > 0 and np.isfinite(span):
            distance[order[1:-1]] += (values[2:] - values[:-2]) / span
    return distance


def normalise(
    points: Iterable[Sequence[float]] | np.ndarray, ideal: Sequence[float], nadir: Sequence[float]
) -> np.ndarray:
    """``points`` scaled per objective so that ``nadir`` maps to 0 and ``ideal`` to 1 (an objective
    whose ideal equals its nadir is only shifted)."""
    array = _points(points)
    ideal, nadir = np.asarray(ideal, dtype=np.float64), np.asarray(nadir, dtype=np.float64)
    span = np.where(ideal > nadir, ideal - nadir, 1.0)
    return (array - nadir) / span


def hypervolume(points: Iterable[Sequence[float]] | np.ndarray, reference: Sequence[float]) -> float:
    """The exact hypervolume of ``points`` (all objectives maximised) against ``reference``: the
    volume of the region that some point dominates and that dominates ``reference``.

    Points not strictly better than ``reference`` in every objective add nothing. Two objectives
    take one sweep (``O(n log n)``); more are sliced along the last objective down to two (exact,
    ``O(n^(d-1) log n)``: fine for the fronts of a search, a few hundred points in 3-D).

    Example:
        >>> hypervolume([(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)], reference=(0.0, 0.0))
        6.0
    """
    array = _points(points)
    ref = np.asarray(reference, dtype=np.float64)
    if len(array) == 0:
        return 0.0
    if ref.shape != (array.shape[1],) or not np.isfinite(ref).all():
        raise ValueError(
            f"expected a finite reference point of {array.shape[1]} objectives, got {reference!r}"
        )
    array = array[np.all(array > ref, axis=1)]
    if len(array) == 0:
        return 0.0
    if not np.isfinite(array).all():
        raise ValueError("expected finite points, got infinity: an unbounded hypervolume")
    return float(_hypervolume(array[non_dominated(array)], ref))


def _hypervolume(array: np.ndarray, ref: np.ndarray) -> float:
    if array.shape[1] == 1:
        return float(array[:, 0].max() - ref[0])
    if array.shape[1] == 2:
        order = np.argsort(-array[:, 0], kind="stable")
        volume, top = 0.0, ref[1]
        for x, y in array[order]:
            if y > top:
                volume += (x - ref[0]) * (y - top)
                top = y
        return volume
    order = np.argsort(-array[:, -1], kind="stable")
    array = array[order]
    volume = 0.0
    for i in range(len(array)):
        below = array[i + 1, -1] if i + 1 < len(array) else ref[-1]
        if array[i, -1] > below:
            volume += (array[i, -1] - below) * _hypervolume(array[: i + 1, :-1], ref[:-1])
    return volume


def igd(points: Iterable[Sequence[float]] | np.ndarray, reference_front: Iterable[Sequence[float]]) -> float:
    """Inverted generational distance: the mean, over the points of ``reference_front`` (the
    exact front), of the Euclidean distance to the nearest of ``points``; 0 when ``points`` hold
    the whole front. Normalise both first (:func:`normalise`) so that objectives weigh alike."""
    array, front = _points(points), _points(reference_front, "reference_front")
    if len(front) == 0:
        raise ValueError("expected a non-empty reference front, got none")
    if len(array) == 0:
        return math.inf
    if array.shape[1] != front.shape[1]:
        raise ValueError(
            f"expected points of {front.shape[1]} objectives (the reference front's), got {array.shape[1]}"
        )
    distances = np.sqrt(((front[:, None, :] - array[None, :, :]) ** 2).sum(axis=2))
    return float(distances.min(axis=1).mean())
