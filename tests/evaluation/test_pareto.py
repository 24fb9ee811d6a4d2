"""The Pareto front of (accuracy, cost) pairs, against a brute-force front."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas_gym.backends.tables.macro import load_macro_table
from nas_gym.evaluation.pareto import pareto_front


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
