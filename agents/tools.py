"""What every agent uses to read a nas-gym env and to keep its checkpoints plain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

from nas_gym.spaces import SearchSpace


def space_of(env: gym.Env | VectorEnv, *, vector: bool = False) -> SearchSpace:
    """The :class:`~nas_gym.spaces.SearchSpace` of a nas-gym env (``env.unwrapped.space``).

    A vector env is refused (``TypeError``) unless ``vector=True``: agents that run one episode
    at a time call it without, so that handing them a vector env fails clearly.
    """
    if isinstance(env, VectorEnv) and not vector:
        raise TypeError(
            f"expected a single env, got a vector env ({type(env).__name__}): this agent runs one "
            "episode at a time; only agents with supports_batches = True search vector envs"
        )
    space = getattr(getattr(env, "unwrapped", None), "space", None)
    if not isinstance(space, SearchSpace):
        raise TypeError(
            f"expected a nas-gym env (one whose env.unwrapped.space is a SearchSpace), got {type(env).__name__}"
        )
    return space


def valid_actions(info: Mapping[str, Any]) -> np.ndarray:
    """The indices of the valid actions of the current step, read from ``info["action_mask"]``."""
    try:
        mask = np.asarray(info["action_mask"], dtype=bool)
    except KeyError:
        raise KeyError(
            "expected info['action_mask'] from env.reset/env.step (every nas-gym env provides it); "
            f"got info keys {sorted(info)}"
        ) from None
    actions = np.flatnonzero(mask)
    if actions.size == 0:
        raise ValueError("expected at least one valid action in info['action_mask'], got none")
    return actions


def check_config_matches(state: Mapping[str, Any], expected: Mapping[str, Any], agent: str) -> None:
    """Raise when a checkpoint was taken with other hyperparameters than ``expected``."""
    found = dict(state.get("config", {}))
    for key, value in expected.items():
        if key in found and found[key] != value:
            raise ValueError(
                f"expected a {agent!r} state with {key}={value!r} (this agent's setting), got "
                f"{found[key]!r}: build the agent with the settings of the checkpoint"
            )


def as_int_list(values: Sequence[Any]) -> list[int]:
    """Plain ints (for states that ``torch.load(weights_only=True)`` reads)."""
    return [int(v) for v in values]
