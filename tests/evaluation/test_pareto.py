"""Pareto fronts against brute force: (accuracy, cost) pairs, non-domination, ranks and crowding,
hypervolume (counted on a grid) and IGD."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas_gym.backends.tables.macro import load_macro_table
from nas_gym.evaluation.pareto import (
    crowding_distance,
    dominates,
    hypervolume,
    igd,
    non_dominated,
    non_dominated_ranks,
    normalise,
    pareto_front,
)


def brute_force_front(points: np.ndarray) -> set[int]:
    acc, cost = points[:, 0], points[:, 1]
    front = set()
    for i in range(len(points)):
        better = (acc >= acc[i]) & (cost <= cost[i]) & ((acc > acc[i]) | (cost < cost[i]))
        if not better.any():
            front.add(i)
    return front


def test_pareto_front_small_example() -> None:
    points = [(0.90, 2.0), (0.92, 3.0), (0.89, 3.0), (0.85, 1.0), (0.92, 4.0), (0.90, 2.0), (0.80, 1.0)]
    assert pareto_front(points) == [3, 0, 5, 1]
    assert pareto_front(np.empty((0, 2))) == [] and pareto_front([]) == []


@pytest.mark.parametrize("seed", range(5))
def test_pareto_front_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Few distinct values, so ties in accuracy, in cost and in both are common.
    points = rng.integers(0, 12, size=(300, 2)).astype(float)
    front = pareto_front(points)
    assert set(front) == brute_force_front(points) and len(front) == len(set(front))
    costs = points[front, 1]
    assert np.all(np.diff(costs) >= 0)
    assert np.all(np.diff(points[front, 0]) >= 0)  # accuracy rises with cost along the front


def test_pareto_front_of_the_macro_table(data_dir: Path) -> None:
    table = load_macro_table(data_dir)
    points = np.stack([table.test_acc.mean(axis=1), table.params], axis=1)
    front = pareto_front(points)
    assert set(front) == brute_force_front(points)
    # The most accurate networks end the front ("22212220" ties with "22212202" in both).
    assert points[front[-1], 0] == points[:, 0].max()
    assert {"22212220", "22212202"} <= {table.archs[i] for i in front}


def test_pareto_front_errors() -> None:
    with pytest.raises(ValueError, match=r"expected \(accuracy, cost\) pairs.*got shape \(3,\)"):
        pareto_front([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="expected finite"):
        pareto_front([(0.1, float("nan"))])


# ---------------------------------------------------------------------------------------- n objectives
def brute_force_non_dominated(points: np.ndarray) -> list[int]:
    return [
        i
        for i in range(len(points))
        if not any(dominates(points[j], points[i]) for j in range(len(points)) if j != i)
    ]


def grid_volume(points: np.ndarray, reference: np.ndarray) -> float:
    """Hypervolume of integer points by counting the unit cells some point dominates."""
    axes = [np.arange(r, points[:, k].max()) + 0.5 for k, r in enumerate(reference)]
    cells = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(reference))
    covered = (cells[:, None, :] <= points[None, :, :]).all(axis=2).any(axis=1)
    return float(covered.sum())


@pytest.mark.parametrize("dims", [2, 3, 4])
@pytest.mark.parametrize("seed", range(3))
def test_non_dominated_and_hypervolume_against_brute_force(dims: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Few distinct values: ties in one objective and duplicates are common.
    points = rng.integers(0, 7, size=(40, dims)).astype(float)
    assert non_dominated(points) == brute_force_non_dominated(points)
    reference = np.full(dims, -1.0)
    assert hypervolume(points, reference) == pytest.approx(grid_volume(points, reference))
    # Points below the reference in one objective are cut at it, not counted whole.
    shifted = np.full(dims, 2.0)
    assert hypervolume(points, shifted) == pytest.approx(grid_volume(np.maximum(points, 2.0), shifted))


def test_hypervolume_examples_and_errors() -> None:
    assert hypervolume([(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)], (0.0, 0.0)) == 6.0
    assert hypervolume([(1.0, 1.0, 1.0)], (0.0, 0.0, 0.0)) == 1.0
    assert hypervolume([(0.5, -1.0)], (0.0, 0.0)) == 0.0 and hypervolume([], (0.0, 0.0)) == 0.0
    with pytest.raises(ValueError, match=r"expected a finite reference point of 2 objectives"):
        hypervolume([(1.0, 1.0)], (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="expected finite points, got infinity"):
        hypervolume([(np.inf, 1.0)], (0.0, 0.0))
    with pytest.raises(ValueError, match="expected points without NaN"):
        non_dominated([(np.nan, 1.0)])


def test_ranks_and_crowding() -> None:
    points = np.array([(3.0, 1.0), (2.0, 2.0), (1.0, 3.0), (1.5, 1.5), (1.0, 1.0), (2.0, 2.0)])
    assert non_dominated_ranks(points).tolist() == [0, 0, 0, 1, 2, 0]
    distance = crowding_distance(points[:3])
    assert np.isinf(distance[[0, 2]]).all() and distance[1] == pytest.approx(2.0)
    assert np.isinf(crowding_distance(points[:2])).all()


def test_normalise_and_igd() -> None:
    front = np.array([(0.8, -1.0), (0.7, -0.5), (0.6, -0.1)])
    scaled = normalise(front, ideal=front.max(0), nadir=front.min(0))
    assert scaled[0].tolist() == pytest.approx([1.0, 0.0]) and scaled[2].tolist() == pytest.approx([0.0, 1.0])
    assert igd(scaled, scaled) == 0.0
    assert igd(scaled[:1], scaled) == pytest.approx((0 + np.hypot(0.5, 5 / 9) + np.sqrt(2)) / 3)
    assert igd(np.empty((0, 2)), scaled) == np.inf
    with pytest.raises(ValueError, match="expected points of 2 objectives"):
        igd([(1.0, 2.0, 3.0)], scaled)
