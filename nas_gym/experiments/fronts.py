"""The fronts of multi-objective searches (``objectives=``): each run's non-dominated architectures,
the exact front of a tabulated benchmark, and their hypervolume and IGD.

**Normalisation.** Objectives are the components of the vector reward, all maximised (costs
negated, in millions). Before hypervolume and IGD each objective is scaled so that the exact
front's nadir (its worst value on the front) is 0 and its ideal (its best value) is 1; without an
exact front (an env whose backend is not a table) the union of the runs' fronts stands in for it.
The reference point is -0.1 in every normalised objective (1.1 in the usual minimisation form).
Points worse than it in some objective add no volume. ``hypervolume_ratio`` is a run's
hypervolume divided by the exact front's (1 = the whole front found).

The same scaling with the range of the whole space instead (every cell of the table: worst to
best value of each objective) is reported beside it as ``hypervolume_ratio_space``: a looser
measure, in which the cheap, inaccurate end of the space weighs more.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.evaluation.objectives import VECTOR_COMPONENTS
from nas_gym.evaluation.pareto import hypervolume, igd, non_dominated, normalise
from nas_gym.spaces import FixedSpace

REFERENCE = -0.1
"""The reference point of the hypervolume, in every normalised objective."""
EXACT_FRONT_LIMIT = 100_000
"""The largest space whose every architecture is looked up for the exact front."""
FRONT_COLUMNS = ("hypervolume", "hypervolume_ratio", "hypervolume_ratio_space", "igd", "front_size")
"""The per-run columns of ``results.csv`` that a comparison with objectives adds."""


@dataclass(frozen=True)
class Scale:
    """How objectives are normalised for hypervolume and IGD (see the module docstring)."""

    ideal: np.ndarray
    nadir: np.ndarray
    front: np.ndarray
    """The reference front (exact, or the union of the runs' fronts), raw reward vectors."""
    exact: bool
    """Whether ``front`` is the exact front of the benchmark."""
    space_low: np.ndarray | None = None
    """Worst value of each objective over the whole space (tables only)."""
    space_high: np.ndarray | None = None
    """Best value of each objective over the whole space (tables only)."""

    def hypervolume(self, points: np.ndarray) -> float:
        """Hypervolume of raw reward vectors, normalised by the front."""
        return hypervolume(normalise(points, self.ideal, self.nadir), np.full(len(self.ideal), REFERENCE))

    @property
    def front_hypervolume(self) -> float:
        return self.hypervolume(self.front)

    def space_ratio(self, points: np.ndarray) -> float | None:
        """Hypervolume ratio with the space's range as the scale (``None`` without a table)."""
        if self.space_low is None or self.space_high is None:
            return None
        reference = np.full(len(self.ideal), REFERENCE)
        scale = (self.space_high, self.space_low)
        whole = hypervolume(normalise(self.front, *scale), reference)
        return hypervolume(normalise(points, *scale), reference) / whole

    def igd(self, points: np.ndarray) -> float:
        """IGD of raw reward vectors against the reference front, both normalised by the front."""
        return igd(normalise(points, self.ideal, self.nadir), normalise(self.front, self.ideal, self.nadir))


def reward_matrix(history: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, list[int]]:
    """The finite vector rewards of ``history`` (one row each) and the indices of their records;
    failed evaluations whose cost is unknown (``-inf``) are left out."""
    rows, kept = [], []
    for i, record in enumerate(history):
        vector = np.atleast_1d(np.asarray(record["reward"], dtype=np.float64))
        if np.isfinite(vector).all():
            rows.append(vector)
            kept.append(i)
    width = len(rows[0]) if rows else 0
    return np.array(rows, dtype=np.float64).reshape(len(rows), width), kept


def front_of(history: Sequence[Mapping[str, Any]]) -> list[int]:
    """Indices of the records on the run's front: non-dominated by vector reward, the first
    record of each architecture only."""
    first: dict[str, int] = {}
    for i, record in enumerate(history):
        first.setdefault(str(record["arch"]), i)
    unique = sorted(first.values())
    points, kept = reward_matrix([history[i] for i in unique])
    return [unique[kept[j]] for j in non_dominated(points)]


def exact_front(env: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``(front, all points)``: the reward vectors of every architecture of a tabulated env
    (``env.unwrapped``: a fixed space of at most :data:`EXACT_FRONT_LIMIT` architectures and a
    backend with an ``optimum``, i.e. a table) and their non-dominated rows; ``None`` otherwise."""
    base = env.unwrapped
    space = base.space
    evaluator = base.runner.evaluator
    if (
        not isinstance(space, FixedSpace)
        or space.size > EXACT_FRONT_LIMIT
        or not callable(getattr(evaluator, "optimum", None))
    ):
        return None
    choices = [range(d.num_choices) for d in space.decisions(space.sample(np.random.default_rng(0)))]
    points = np.array([base.reward_of(base.evaluate(arch)) for arch in itertools.product(*choices)])
    points = points[np.isfinite(points).all(axis=1)]
    return np.unique(points[non_dominated(points)], axis=0), points


def make_scale(histories: Sequence[Sequence[Mapping[str, Any]]], env: Any | None) -> Scale:
    """The :class:`Scale` of a comparison: the exact front of ``env`` where it has one, else the
    front of all the runs' records together."""
    exact = None if env is None else exact_front(env)
    if exact is not None:
        front, points = exact
        return Scale(front.max(0), front.min(0), front, True, points.min(0), points.max(0))
    union = [record for history in histories for record in history]
    points, _ = reward_matrix(union)
    if len(points) == 0:
        raise ValueError("expected at least one evaluation with a finite vector reward, got none")
    front = np.unique(points[non_dominated(points)], axis=0)
    return Scale(front.max(0), front.min(0), front, False)


def run_figures(history: Sequence[Mapping[str, Any]], scale: Scale) -> dict[str, Any]:
    """The :data:`FRONT_COLUMNS` of one run."""
    points, _ = reward_matrix(history)
    if len(points) == 0:
        return {name: None for name in FRONT_COLUMNS}
    volume = scale.hypervolume(points)
    return {
        "hypervolume": volume,
        "hypervolume_ratio": volume / scale.front_hypervolume,
        "hypervolume_ratio_space": scale.space_ratio(points),
        "igd": scale.igd(points),
        "front_size": len(front_of(history)),
    }


def hypervolume_curve(history: Sequence[Mapping[str, Any]], scale: Scale) -> list[tuple[float, float]]:
    """``(evaluations, hypervolume ratio)`` after each record of the run."""
    curve: list[tuple[float, float]] = []
    front = np.empty((0, len(scale.ideal)))
    value, total = 0.0, scale.front_hypervolume
    for n, record in enumerate(history, start=1):
        vector = np.atleast_1d(np.asarray(record["reward"], dtype=np.float64))
        if np.isfinite(vector).all() and not any(
            np.all(row >= vector) for row in front
        ):  # only a point no earlier one weakly dominates can add volume
            front = np.vstack([front, vector])
            front = front[non_dominated(front)]
            value = scale.hypervolume(front) / total
        curve.append((float(n), value))
    return curve


def record_values(record: Mapping[str, Any], objectives: Sequence[str]) -> dict[str, Any]:
    """The raw metrics behind ``objectives`` in a record: accuracy as a fraction, params as a
    count, flops as multiply-adds."""
    return {name: record.get(VECTOR_COMPONENTS[name][0]) for name in objectives}


def write_fronts_csv(
    path: Path, objectives: Sequence[str], rows: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]
) -> None:
    """``rows``: ``(leading columns, record)`` pairs; writes the leading columns, ``arch`` and the
    raw metric of each objective (:func:`record_values`)."""
    lead = list(rows[0][0]) if rows else []
    columns = [*lead, "arch", *objectives]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for first, record in rows:
            writer.writerow({**first, "arch": record["arch"], **record_values(record, objectives)})


def fronts_markdown(
    agents: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    scale: Scale,
    objectives: Sequence[str],
    per_seed: bool = False,
) -> list[str]:
    """The ``## Fronts`` section of ``summary.md``; ``scale`` is the one it describes (seed 0's
    when ``per_seed``: each seed was measured against the exact front of its own rewards)."""
    from nas_gym.experiments.statistics import mean_std, welch

    reference = (
        "the exact front (every architecture of the table)"
        if scale.exact
        else "the front of all runs together (no table: the exact front is unknown)"
    )
    ideal = ", ".join(f"{n} {_raw(n, v)}" for n, v in zip(objectives, scale.ideal))
    nadir = ", ".join(f"{n} {_raw(n, v)}" for n, v in zip(objectives, scale.nadir))
    lines = [
        "",
        "## Fronts",
        "",
        f"Objectives {', '.join(objectives)}, all maximised (costs negated). Each objective is normalised "
        f"so that the nadir of {reference} is 0 and its ideal is 1 (ideal: {ideal}; nadir: {nadir}); the "
        f"hypervolume's reference point is {REFERENCE} in every normalised objective. HV ratio = a run's "
        f"hypervolume / the reference front's ({scale.front_hypervolume:.4f}); HV ratio (space) scales "
        "by the range of the whole space instead; IGD = mean distance from each point of the reference "
        f"front ({len(scale.front)} points) to the run's nearest, in the normalised objectives. "
        + (
            "The reward of this table depends on the evaluation seed, so each seed is measured against the "
            "exact front of its own rewards (the figures above are seed 0's). "
            if per_seed
            else ""
        )
        + "Mean ± std over seeds; Welch = two-sided p of Welch's t-test of the HV ratio against 'random'.",
        "",
        "| agent | runs | HV ratio | HV ratio (space) | IGD | front size | Welch p |",
        "|---|---|---|---|---|---|---|",
    ]
    baseline = [r["hypervolume_ratio"] for r in rows if r["agent"] == "random"]
    for agent in agents:
        group = [r for r in rows if r["agent"] == agent]
        ratios = [r["hypervolume_ratio"] for r in group]
        test = welch(ratios, baseline) if baseline and agent != "random" else None
        lines.append(
            f"| {agent} | {len(group)} | {mean_std(ratios, digits=4)} "
            f"| {mean_std([r['hypervolume_ratio_space'] for r in group], digits=4)} "
            f"| {mean_std([r['igd'] for r in group], digits=4)} "
            f"| {mean_std([r['front_size'] for r in group], digits=1)} "
            f"| {'—' if test is None else f'{test[1]:.3g}'} |"
        )
    return lines


def _raw(name: str, value: float) -> str:
    """A reward component as the metric it stands for (``params 1.53 M``)."""
    factor = VECTOR_COMPONENTS[name][1]
    metric = value / factor
    return f"{metric:.4f}" if name == "accuracy" else f"{metric / 1e6:.4g} M"
