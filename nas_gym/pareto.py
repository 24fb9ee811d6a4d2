"""Pareto fronts of accuracy against cost (parameters, FLOPs, seconds), for multi-objective searches."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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


def _plotted(history: Sequence[Mapping[str, Any]], cost: str) -> list[int]:
    """The history indices :func:`plot_pareto` shows: ``cost`` present, status ok, and the first
    such record of each architecture."""
    kept, seen = [], set()
    for i, record in enumerate(history):
        if record.get(cost) is not None and record.get("status", "ok") == "ok" and record["arch"] not in seen:
            seen.add(record["arch"])
            kept.append(i)
    return kept


def has_cost(history: Sequence[Mapping[str, Any]], cost: str = "params") -> bool:
    """Whether :func:`plot_pareto` would show at least one architecture of ``history`` for
    ``cost``: whether some record with status ok reports it (NAS-Bench-201's records report
    neither params nor FLOPs)."""
    return bool(_plotted(history, cost))


def plot_pareto(
    history: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    cost: str = "params",
    title: str | None = None,
) -> list[int]:
    """Scatter every evaluated architecture of a search as accuracy against ``cost`` and draw the
    Pareto front; writes a PNG to ``path`` and returns the history indices on the front.

    Entries without ``cost`` (``None``), with a status other than ok, or repeating an
    architecture already shown are left out (:func:`has_cost` tells whether any is left).
    Accuracy is the validation ``accuracy`` of each record (what the search saw), not its reward.
    The figure is drawn without pyplot, so the caller's matplotlib backend stays as it is.
    """
    from matplotlib.figure import Figure

    kept = _plotted(history, cost)
    if not kept:
        raise ValueError(
            f"expected history entries with {cost!r}, got none (this backend does not report it)"
        )
    points = np.array([(history[i]["accuracy"], history[i][cost]) for i in kept], dtype=np.float64)
    front = pareto_front(points)
    scale, unit = (1e6, "M") if points[:, 1].max() >= 1e6 else (1e3, "k")
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    ax.scatter(points[:, 1] / scale, 100 * points[:, 0], s=14, alpha=0.5, label="evaluated")
    ax.step(
        points[front, 1] / scale,
        100 * points[front, 0],
        where="post",
        color="C3",
        marker="o",
        label=f"Pareto front ({len(front)})",
    )
    ax.set_xlabel(f"{cost} ({unit})")
    ax.set_ylabel("accuracy seen by the search (%)")
    ax.set_title(title or f"accuracy against {cost}: {len(kept)} architectures")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return [kept[i] for i in front]
