"""The pictures of searches and comparisons: accuracy against cost with the Pareto front
(``pareto.png``), and best-so-far curves with 95% bands (``best_so_far.png``). Drawn with
matplotlib's ``Figure`` API, never pyplot, so the caller's matplotlib backend stays as it is."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_gym.evaluation.pareto import pareto_front

if TYPE_CHECKING:
    from nas_gym.experiments.compare import RunResult


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


def best_so_far_band(
    curves: Sequence[list[tuple[float, float]]], grid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95% confidence band of best-so-far step curves on ``grid`` (NaN before a run's
    first evaluation)."""
    values = np.full((len(curves), len(grid)), np.nan)
    for i, curve in enumerate(curves):
        if not curve:
            continue
        times = np.array([t for t, _ in curve])
        best = np.array([v for _, v in curve])
        index = np.searchsorted(times, grid, side="right") - 1
        values[i] = np.where(index >= 0, best[np.clip(index, 0, None)], np.nan)
    count = np.sum(~np.isnan(values), axis=0)
    # All-NaN columns (before any run's first evaluation) are expected: their mean stays NaN.
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0, ddof=1) if len(curves) > 1 else np.zeros(len(grid))
    half = 1.96 * np.nan_to_num(std) / np.sqrt(np.maximum(count, 1))
    return mean, mean - half, mean + half


def plot_best_so_far(
    path: Path,
    env: str,
    agents: Sequence[str],
    results: Sequence[RunResult],
    budget_seconds: float | None,
) -> None:
    """Draw the mean best-so-far curve of each agent with its 95% band into the PNG ``path``
    (without pyplot, so the caller's matplotlib backend stays as it is)."""
    from matplotlib.figure import Figure

    horizon = budget_seconds or max((r.curve[-1][0] for r in results if r.curve), default=1.0)
    grid = np.linspace(0.0, horizon, 200)
    uses_test = any(r.row["test_accuracy"] is not None for r in results)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for agent in agents:
        curves = [r.curve for r in results if r.row["agent"] == agent]
        mean, low, high = best_so_far_band(curves, grid)
        (line,) = ax.plot(grid, 100 * mean, label=f"{agent} (n={len(curves)})")
        ax.fill_between(grid, 100 * low, 100 * high, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("simulated training time (s)")
    ax.set_ylabel("test accuracy of best-so-far architecture (%)" if uses_test else "best reward so far (%)")
    ax.set_title(f"{env}: best so far, mean and 95% band over seeds")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    finite = [v for r in results for _, v in r.curve if math.isfinite(v)]
    if finite:
        low_y = np.percentile(finite, 5) * 100
        ax.set_ylim(max(low_y - 1, 0), min(max(finite) * 100 + 0.5, 100))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
