"""Random search: every decision uniform over its valid choices."""

from __future__ import annotations

from typing import Any, ClassVar

from agents.base import Agent, valid_actions


class RandomAgent(Agent):
    """Picks each action uniformly among the valid ones (``info["action_mask"]``).

    On a nas-gym env this samples architectures exactly like
    :meth:`SearchSpace.sample <nas_gym.spaces.SearchSpace.sample>`: each decision uniform, in
    episode order (in the ``"seed"`` space every depth is equally likely). It is the baseline
    every other agent is measured against, and it never learns.

    Args:
        seed: seeds the agent's generator.
    """

    name: ClassVar[str] = "random"

    def act(self, obs: Any, info: dict[str, Any]) -> int:
        actions = valid_actions(info)
        return int(actions[self.rng.integers(actions.size)])
