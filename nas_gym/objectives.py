"""Objectives: how the metrics of an evaluated architecture become the episode's reward.

``reward=`` of every env takes a name from :data:`OBJECTIVES` or any callable that maps the
metrics dict (``accuracy``, ``params``, ``flops``, ...) to a float.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nas_gym.errors import did_you_mean

Objective = Callable[[Mapping[str, Any]], float]


def accuracy(metrics: Mapping[str, Any]) -> float:
    """Validation accuracy as a fraction in [0, 1]."""
    return float(metrics["accuracy"])


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number: an ``int``, ``float`` or numpy scalar, but not
    a ``bool`` (which Python counts as an int), NaN or infinity."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


COSTS = ("params", "flops")
"""The metrics a cost-aware objective can weigh accuracy against."""


@dataclass(frozen=True)
class MnasObjective:
    """The soft-constrained accuracy-vs-cost reward of MnasNet (Tan et al., CVPR 2019):
    ``accuracy * (metrics[cost] / target) ** w``.

    With ``w < 0`` a network at the ``target`` cost keeps its accuracy, one twice as costly is
    scaled by ``2 ** w`` (0.953 for MnasNet's ``w = -0.07``) and one half as costly by ``2 ** -w``
    (1.050): the search trades accuracy against cost smoothly instead of rejecting networks above a
    hard limit. Instances are picklable (vector envs copy them).
    """

    cost: str
    """``"params"`` or ``"flops"``: the key of the metrics dict to weigh."""
    target: float
    """The cost at which the reward equals the accuracy."""
    w: float = -0.07
    """The exponent; MnasNet's soft constraint uses -0.07."""

    def __post_init__(self) -> None:
        if self.cost not in COSTS:
            raise ValueError(f"expected cost in {COSTS}, got {self.cost!r}{did_you_mean(self.cost, COSTS)}")
        if not (is_finite_number(self.target) and self.target > 0):
            raise ValueError(f"expected target as a positive number, got {self.target!r}")
        if not is_finite_number(self.w):
            raise ValueError(f"expected w as a finite number, got {self.w!r}")

    def __call__(self, metrics: Mapping[str, Any]) -> float:
        value = metrics.get(self.cost)
        if value is None:
            raise ValueError(
                f"expected metrics[{self.cost!r}] as a positive number for the accuracy-vs-{self.cost} "
                f"objective, got None: this backend does not report {self.cost} (the NAS-Bench-201 "
                "table, for one, records neither params nor flops)"
            )
        if not value > 0:
            raise ValueError(f"expected metrics[{self.cost!r}] as a positive number, got {value!r}")
        return float(metrics["accuracy"]) * (float(value) / self.target) ** self.w


def mnas_objective(cost: str, target: float, w: float = -0.07) -> MnasObjective:
    """The MnasNet reward ``accuracy * (cost / target) ** w`` (see :class:`MnasObjective`), e.g.
    ``mnas_objective("params", 1e6)`` to favour networks of about a million parameters."""
    return MnasObjective(cost, target, w)


OBJECTIVES: dict[str, Objective] = {
    "accuracy": accuracy,
    "mnas-params": mnas_objective("params", 1_000_000),
    "mnas-flops": mnas_objective("flops", 50_000_000),
}
"""Named objectives; :func:`register_objective` adds more. ``"mnas-params"`` weighs accuracy
against parameters (target 1,000,000) and ``"mnas-flops"`` against FLOPs (multiply-adds, target
50 M), both MnasNet-style with ``w = -0.07``; they need a backend that reports the cost."""


def register_objective(name: str, objective: Objective) -> None:
    """Make ``objective`` available as ``reward=name``."""
    if not callable(objective):
        raise TypeError(f"expected a callable objective, got {type(objective).__name__}")
    OBJECTIVES[name] = objective


def make_objective(reward: str | Objective) -> Objective:
    """The objective named ``reward``, or ``reward`` itself when it is callable."""
    if callable(reward):
        return reward
    if not isinstance(reward, str):
        raise TypeError(
            f"expected reward as a name in {sorted(OBJECTIVES)} or a callable taking the metrics "
            f"dict, got {type(reward).__name__}"
        )
    if reward not in OBJECTIVES:
        raise ValueError(
            f"expected reward in {sorted(OBJECTIVES)} or a callable, got {reward!r}"
            f"{did_you_mean(reward, OBJECTIVES)}"
        )
    return OBJECTIVES[reward]
