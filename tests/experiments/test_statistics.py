"""The statistics of summary.md on hand-computed cases, and the failed runs it names."""

from __future__ import annotations

import math

import pytest

from nas_gym.experiments.compare import RESULT_COLUMNS, RunResult
from nas_gym.experiments.statistics import mean_std, standard_error, summary_markdown, welch


def test_mean_std_and_standard_error_by_hand() -> None:
    assert mean_std([0.1, 0.2, 0.3], scale=100) == "20.00 ± 10.00"  # sample std (ddof=1)
    assert mean_std([5, None, float("nan")], digits=1) == "5.0 ± 0.0"
    assert mean_std([None]) == "n/a"
    assert standard_error([1.0, 2.0, 3.0]) == pytest.approx(1 / math.sqrt(3))
    assert standard_error([1.0]) is None


def test_welch_by_hand() -> None:
    stats = pytest.importorskip("scipy.stats")
    # Equal variances 1 and sizes 3: t = (2 - 5) / sqrt(1/3 + 1/3), Welch's df = 4.
    t, p = welch([1, 2, 3], [4, 5, 6])
    assert t == pytest.approx(-3 / math.sqrt(2 / 3))
    assert p == pytest.approx(2 * stats.t.sf(3 / math.sqrt(2 / 3), 4))
    assert welch([1, 1], [2, 2]) is None  # no variance at all
    assert welch([1], [2, 3]) is None


def _row(agent: str, seed: int, test: float | None, error: str | None = None) -> RunResult:
    row = dict.fromkeys(RESULT_COLUMNS) | {"agent": agent, "seed": seed, "episodes": 4, "test_accuracy": test}
    row |= {"best_reward": test, "simulated_seconds": 10.0, "wall_seconds": 0.5, "error": error}
    return RunResult(row=row, curve=[])


def test_summary_tests_against_evolution_and_names_failed_runs() -> None:
    results = [_row("evolution", 0, 0.90), _row("evolution", 1, 0.92), _row("random", 0, 0.80)]
    results += [_row("random", 1, 0.84), _row("random", 2, None, error="the worker died")]
    text = summary_markdown("NASBench201-v0", ["random", "evolution"], results, 4, None)
    random_line = next(line for line in text.splitlines() if line.startswith("| random |"))
    _, p = welch([0.80, 0.84], [0.90, 0.92])
    assert random_line.startswith(
        f"| random | 3 | 4.0 ± 0.0 | 82.00 ± 2.83 | 82.00 ± 2.83 | 2.000 | {p:.3g} |"
    )
    assert "| evolution | 2 |" in text and "Budget per run: 4 episodes." in text
    assert text.rstrip().endswith("1 run(s) failed: random seed 2: the worker died")
