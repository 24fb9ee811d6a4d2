"""Objectives: how the metrics of an evaluated architecture become the episode's reward.

``reward=`` of every env takes a name from :data:`OBJECTIVES` or any callable that maps the
metrics dict (``accuracy``, ``params``, ``flops``, ...) to a float. ``objectives=`` takes names of
:data:`VECTOR_COMPONENTS` instead and makes the reward a vector (:class:`VectorObjective`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas_gym.core.checks import is_finite_number
from nas_gym.core.errors import did_you_mean

Objective = Callable[[Mapping[str, Any]], float]


def accuracy(metrics: Mapping[str, Any]) -> float:
    """Validation accuracy as a fraction in [0, 1]; for a zero-cost budget, which trains nothing
    (``accuracy`` is ``None``), its ``score``."""
    value = metrics["accuracy"]
    return float(metrics["score"] if value is None and "score" in metrics else value)


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
                f"objective, got None: this backend does not report {self.cost}"
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
"""Named objectives. ``"mnas-params"`` weighs accuracy
against parameters (target 1,000,000) and ``"mnas-flops"`` against FLOPs (multiply-adds, target
50 M), both MnasNet-style with ``w = -0.07``; they need a backend that reports the cost."""


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


# ---------------------------------------------------------------------------------------- vectors
VECTOR_COMPONENTS: dict[str, tuple[str, float, str]] = {
    "accuracy": ("accuracy", 1.0, "validation accuracy, a fraction in [0, 1]"),
    "params": ("params", -1e-6, "minus the parameters, in millions"),
    "flops": ("flops", -1e-6, "minus the multiply-adds of one forward pass of one image, in millions"),
}
"""The components ``objectives=`` may name: ``(metric, factor, meaning)``. Each component is
``factor * metrics[metric]``, to be maximised (MO-Gymnasium's convention): costs are negated and
given in millions, so that components have comparable magnitudes (NAS-Bench-201: accuracy 0.10 to
0.85, params -1.53 to -0.07, flops -220 to -7.8)."""

MetricRange = Callable[[str], "tuple[float, float] | None"]
"""``metric -> (smallest, largest)`` over a backend's architectures, ``None`` where unknown (the
``metric_range`` method of the table evaluators)."""


@dataclass(frozen=True)
class VectorObjective:
    """The vector reward of ``objectives=("accuracy", "params", ...)``: one component per name of
    :data:`VECTOR_COMPONENTS`, in the order given. Picklable.

    A failed evaluation gets ``failure_reward`` for ``accuracy`` and its negated cost where the
    backend reported it (else ``-inf``: an unknown cost never looks cheap).
    """

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        names = tuple(self.names) if not isinstance(self.names, str) else (self.names,)
        if not names:
            raise ValueError(f"expected at least one objective among {list(VECTOR_COMPONENTS)}, got none")
        for name in names:
            if name not in VECTOR_COMPONENTS:
                raise ValueError(
                    f"expected objectives among {list(VECTOR_COMPONENTS)}, got {name!r}"
                    f"{did_you_mean(str(name), VECTOR_COMPONENTS)}"
                )
        if len(set(names)) != len(names):
            raise ValueError(f"expected distinct objectives, got {list(names)}")
        object.__setattr__(self, "names", names)

    @property
    def low(self) -> np.ndarray:
        """Lower bounds of the components for any backend: 0 for accuracy, ``-inf`` for costs."""
        return self.bounds()[0]

    @property
    def high(self) -> np.ndarray:
        """Upper bounds of the components: 1 for accuracy, 0 for costs."""
        return self.bounds()[1]

    def bounds(
        self, metric_range: MetricRange | None = None, failure_reward: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` of the ``reward_space`` Box: every reward an episode can return, the
        zeros of the steps before the last included.

        Accuracy lies in ``[min(0, failure_reward), max(1, failure_reward)]``. A cost lies in
        ``[factor * largest, 0]`` where ``metric_range`` knows the backend's largest value
        (the tables: -1.53 for NAS-Bench-201's params in millions), else in ``[-inf, 0]``.
        """
        low, high = [], []
        for name in self.names:
            key, factor, _ = VECTOR_COMPONENTS[name]
            if name == "accuracy":
                low.append(min(0.0, failure_reward))
                high.append(max(1.0, failure_reward))
                continue
            known = None if metric_range is None else metric_range(key)
            # float32 may round the bound above the float64 reward: one float32 step lower keeps it inside.
            bound = np.float32(-np.inf if known is None else factor * float(known[1]))
            low.append(np.nextafter(bound, np.float32(-np.inf)))
            high.append(0.0)
        return np.array(low, dtype=np.float32), np.array(high, dtype=np.float32)

    def __call__(self, metrics: Mapping[str, Any], failure_reward: float | None = None) -> np.ndarray:
        """The reward vector of ``metrics`` (``failure_reward``: the metrics are a failure's)."""
        values = []
        for name in self.names:
            key, factor, _ = VECTOR_COMPONENTS[name]
            if name == "accuracy" and failure_reward is not None:
                values.append(float(failure_reward))
                continue
            value = accuracy(metrics) if name == "accuracy" else metrics.get(key)
            if value is None:
                if failure_reward is None:
                    raise ValueError(
                        f"expected metrics[{key!r}] as a number for the objective {name!r}, got None: "
                        "this backend does not report it"
                    )
                values.append(-math.inf)
            else:
                values.append(factor * float(value))
        return np.array(values, dtype=np.float64)


def make_vector_objective(objectives: Sequence[str] | str) -> VectorObjective:
    """The :class:`VectorObjective` of ``objectives`` (names of :data:`VECTOR_COMPONENTS`)."""
    if isinstance(objectives, str):
        objectives = (objectives,)
    if not isinstance(objectives, Sequence):
        raise TypeError(
            f"expected objectives as a tuple of names among {list(VECTOR_COMPONENTS)}, got "
            f"{type(objectives).__name__}"
        )
    return VectorObjective(tuple(objectives))
