"""Rank correlations and the noise ratio, on cases with known answers."""

from __future__ import annotations

import pytest

from nas_gym.experiments.ranking import rank_agreement, spread_ratio


def test_hand_computed_correlations() -> None:
    # One swapped pair among four: rho = 1 - 6 * 2 / (4 * 15) = 0.8, tau = (5 - 1) / 6.
    found = rank_agreement([1, 2, 3, 4], [1, 3, 2, 4], resamples=200)
    assert found.n == 4
    assert found.spearman.value == pytest.approx(0.8)
    assert found.kendall.value == pytest.approx(4 / 6)
    assert found.spearman.low <= 0.8 <= found.spearman.high


def test_perfect_and_reversed_orders_have_degenerate_intervals() -> None:
    up = rank_agreement(range(10), [x**3 for x in range(10)])
    down = rank_agreement(range(10), [-x for x in range(10)])
    assert (up.spearman.value, up.spearman.low, up.spearman.high) == pytest.approx((1.0, 1.0, 1.0))
    assert (down.kendall.value, down.kendall.low, down.kendall.high) == pytest.approx((-1.0, -1.0, -1.0))
    assert up.spearman.text() == "1.00 [1.00, 1.00]"


def test_the_interval_is_seeded_and_narrows_with_more_pairs() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    truth = rng.normal(size=200)
    noisy = truth + rng.normal(size=200)
    few, many = rank_agreement(noisy[:20], truth[:20]), rank_agreement(noisy, truth)
    assert rank_agreement(noisy[:20], truth[:20]) == few
    assert many.spearman.high - many.spearman.low < few.spearman.high - few.spearman.low


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="expected at least 3 pairs to rank, got 2"):
        rank_agreement([1, 2], [1, 2])
    with pytest.raises(
        ValueError, match=r"expected two flat sequences of equal length, got shapes \(3,\) and \(4,\)"
    ):
        rank_agreement([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="expected finite scores"):
        rank_agreement([1, 2, float("nan")], [1, 2, 3])
    with pytest.raises(ValueError, match=r"expected confidence as a number in \(0.0, 1.0\], got 1.5"):
        rank_agreement([1, 2, 3], [1, 2, 3], confidence=1.5)


def test_spread_ratio() -> None:
    # Means 1 and 3 (sd sqrt(2)); within-variance 0.5 each (sd sqrt(0.5)): ratio 2.
    assert spread_ratio([[0.5, 1.5], [2.5, 3.5]]) == pytest.approx(2.0)
    assert spread_ratio([[1, 1], [2, 2]]) == float("inf")
    with pytest.raises(
        ValueError, match=r"expected at least 2 architectures with at least 2 scores each, got \[2, 1\]"
    ):
        spread_ratio([[1, 2], [3]])
