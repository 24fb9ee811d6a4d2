"""How well one score ranks architectures against another: rank correlations with bootstrap intervals.

Used by ``benchmarks/fidelity.py`` to say how well a training budget of ``NASCifar-v0`` ranks
NAS-Bench-201 cells against their 200-epoch accuracies, and by anyone comparing proxies.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats

from nas_gym.core.checks import check_int, check_number


@dataclasses.dataclass(frozen=True)
class Interval:
    """A statistic with its percentile bootstrap interval."""

    value: float
    low: float
    high: float

    def text(self, digits: int = 2) -> str:
        """``"0.81 [0.72, 0.88]"``."""
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclasses.dataclass(frozen=True)
class RankAgreement:
    """Spearman's rho and Kendall's tau (tau-b) of ``scores`` against ``truth``, over ``n`` pairs."""

    n: int
    spearman: Interval
    kendall: Interval


def _as_pairs(scores: Sequence[float], truth: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(scores, dtype=float), np.asarray(truth, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"expected two flat sequences of equal length, got shapes {x.shape} and {y.shape}")
    if len(x) < 3:
        raise ValueError(f"expected at least 3 pairs to rank, got {len(x)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("expected finite scores and truth, got NaN or an infinity")
    return x, y


def _correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    # A bootstrap resample can repeat one pair throughout, and a constant sample has no ranking:
    # count it as no agreement (0) rather than NaN, without scipy's warning for each such draw.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        rho = stats.spearmanr(x, y).statistic
        tau = stats.kendalltau(x, y).statistic
    return float(np.nan_to_num(rho)), float(np.nan_to_num(tau))


def rank_agreement(
    scores: Sequence[float],
    truth: Sequence[float],
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> RankAgreement:
    """Spearman and Kendall correlations of ``scores`` with ``truth`` and their percentile bootstrap
    intervals (pairs resampled with replacement ``resamples`` times, seeded by ``seed``)."""
    x, y = _as_pairs(scores, truth)
    resamples = check_int(resamples, "resamples", minimum=1)
    confidence = check_number(confidence, "confidence", minimum=0.0, strict=True, maximum=1.0)
    rho, tau = _correlations(x, y)
    rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
    draws = np.array([_correlations(x[i], y[i]) for i in rng.integers(0, len(x), (resamples, len(x)))])
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(draws, [tail, 100 - tail], axis=0)
    return RankAgreement(len(x), Interval(rho, low[0], high[0]), Interval(tau, low[1], high[1]))


def spread_ratio(repeats: Sequence[Sequence[float]]) -> float:
    """Between-architecture over within-architecture spread of repeated scores.

    ``repeats[i]`` holds the scores of architecture ``i`` under different training seeds (at
    least two each). The ratio is the standard deviation of the architectures' mean scores over
    the root-mean within-architecture variance: well above 1, seeds hardly change the ranking;
    near 1, a ranking is as much seed as architecture. ``inf`` when seeds change nothing.
    """
    groups = [np.asarray(r, dtype=float) for r in repeats]
    if len(groups) < 2 or any(len(g) < 2 for g in groups):
        raise ValueError(
            f"expected at least 2 architectures with at least 2 scores each, got {[len(g) for g in groups]}"
        )
    between = float(np.std([g.mean() for g in groups], ddof=1))
    within = float(np.sqrt(np.mean([g.var(ddof=1) for g in groups])))
    return between / within if within > 0 else float("inf")
