"""The pictures of searches and comparisons: accuracy against cost with the Pareto front
(``pareto.png``), best-so-far curves with 95% bands (``best_so_far.png``) and, for comparisons with
objectives, hypervolume against evaluations (``hypervolume.png``). Drawn with matplotlib's
``Figure`` API, never pyplot, so the caller's matplotlib backend stays as it is. Legends sit
outside the axes, so that they never hide a point."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_gym.evaluation.objectives import VECTOR_COMPONENTS
from nas_gym.evaluation.pareto import pareto_front

if TYPE_CHECKING:
    from nas_gym.experiments.compare import RunResult


def _plotted(history: Sequence[Mapping[str, Any]], cost: str) -> list[int]:
    """The history indices :func:`plot_pareto` shows: ``cost`` and accuracy present, status ok, the first
    such record of each architecture."""
    kept, seen = [], set()
    for i, record in enumerate(history):
        plottable = (
            record.get(cost) is not None and record.get("accuracy") is not None
        )  # a proxy score has none
        if plottable and record.get("status", "ok") == "ok" and record["arch"] not in seen:
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
    _legend_below(fig, ax)
    fig.savefig(path, dpi=120)
    return [kept[i] for i in front]


def _legend_below(fig: Any, ax: Any, columns: int = 3) -> None:
    """The legend under the axes, outside them: it cannot hide a point."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=columns, frameon=False)
    fig.tight_layout()


def _axis_value(name: str, values: np.ndarray) -> tuple[np.ndarray, str]:
    """Reward components of objective ``name`` as the metric they stand for, and its axis label."""
    if name == "accuracy":
        return 100 * values, "accuracy seen by the search (%)"
    factor = VECTOR_COMPONENTS[name][1]
    return values / factor / 1e6, f"{name} (M multiply-adds)" if name == "flops" else f"{name} (M)"


def plot_front(
    history: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    objectives: Sequence[str],
    title: str | None = None,
) -> list[int]:
    """Every evaluated architecture of a search with vector rewards (``objectives=``), and its
    front (non-dominated in all objectives together); writes a PNG to ``path`` and returns the
    history indices on the front. One panel per objective after the first, against the first
    (accuracy against params, against flops); each architecture is shown once.
    """
    from matplotlib.figure import Figure

    from nas_gym.experiments.fronts import front_of, reward_matrix

    first: dict[str, int] = {}
    for i, record in enumerate(history):
        first.setdefault(str(record["arch"]), i)
    unique = sorted(first.values())
    points, kept = reward_matrix([history[i] for i in unique])
    if len(points) == 0 or len(objectives) < 2:
        raise ValueError(
            f"expected records with vector rewards of at least two objectives, got {len(points)} records "
            f"for objectives {list(objectives)}"
        )
    front = front_of(history)
    on_front = reward_matrix([history[i] for i in front])[0]
    panels = len(objectives) - 1
    fig = Figure(figsize=(6.5 * panels, 4.8))
    axes = np.atleast_1d(fig.subplots(1, panels))
    y, y_label = _axis_value(objectives[0], points[:, 0])
    front_y, _ = _axis_value(objectives[0], on_front[:, 0])
    for k, ax in enumerate(axes, start=1):
        x, x_label = _axis_value(objectives[k], points[:, k])
        front_x, _ = _axis_value(objectives[k], on_front[:, k])
        order = np.argsort(front_x, kind="stable")
        ax.scatter(x, y, s=14, alpha=0.45, label=f"evaluated ({len(points)})")
        ax.plot(
            front_x[order], front_y[order], color="C3", marker="o", ms=5, lw=1, label=f"front ({len(front)})"
        )
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"front of {len(points)} architectures: {', '.join(objectives)}")
    _legend_below(fig, axes[0], columns=2)
    fig.savefig(path, dpi=120)
    return front


def plot_hypervolume(
    path: Path,
    env: str,
    agents: Sequence[str],
    labels: Sequence[str],
    curves: Sequence[list[tuple[float, float]]],
    exact: bool = True,
) -> None:
    """The mean hypervolume ratio of each agent's runs against evaluations, with its 95% band;
    ``labels[i]`` names the agent of ``curves[i]`` (:func:`~nas_gym.experiments.fronts.hypervolume_curve`)."""
    from matplotlib.figure import Figure

    horizon = max((c[-1][0] for c in curves if c), default=1.0)
    grid = np.arange(1.0, horizon + 1.0)
    fig = Figure(figsize=(7, 4.8))
    ax = fig.subplots()
    for agent in agents:
        group = [c for c, label in zip(curves, labels) if label == agent]
        mean, low, high = best_so_far_band(group, grid)
        (line,) = ax.plot(grid, 100 * mean, label=f"{agent} (n={len(group)})")
        ax.fill_between(grid, 100 * low, 100 * high, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("evaluations")
    ax.set_ylabel(f"hypervolume, % of the {'exact' if exact else 'joint'} front's")
    ax.set_title(f"{env}: hypervolume, mean and 95% band over seeds")
    ax.grid(alpha=0.3)
    finite = [v for c in curves for _, v in c[len(c) // 5 :] if math.isfinite(v)]
    if finite:
        ax.set_ylim(max(100 * min(finite) - 1, 0), min(100 * max(finite) + 0.5, 100.5))
    _legend_below(fig, ax)
    fig.savefig(path, dpi=120)


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
