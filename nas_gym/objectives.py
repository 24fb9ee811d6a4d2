"""Objectives: how the metrics of an evaluated architecture become the episode's reward.

``reward=`` of every env takes a name from :data:`OBJECTIVES` or any callable that maps the
metrics dict (``accuracy``, ``params``, ``flops``, ...) to a float.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nas_gym.errors import did_you_mean

Objective = Callable[[Mapping[str, Any]], float]


def accuracy(metrics: Mapping[str, Any]) -> float:
    """Validation accuracy as a fraction in [0, 1]."""
    return float(metrics["accuracy"])


OBJECTIVES: dict[str, Objective] = {"accuracy": accuracy}
"""Named objectives; :func:`register_objective` adds more."""


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
