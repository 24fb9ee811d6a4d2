"""Random search: every decision uniform over its valid choices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
from gymnasium.vector import VectorEnv

from agents.base import Agent
from agents.results import EpisodeRecord
from agents.tools import space_of, valid_actions
from nas_gym.core.checks import check_int
from nas_gym.spaces import Arch, SearchSpace


class RandomAgent(Agent):
    """Picks each action uniformly among the valid ones (``info["action_mask"]``).

    On a nas-gym env this samples architectures exactly like
    :meth:`SearchSpace.sample <nas_gym.spaces.SearchSpace.sample>`: each decision uniform, in
    episode order (in the ``"seed"`` space every depth is equally likely). It is the baseline
    every other agent is measured against, and it never learns.

    On a vector env (a batch search, see :class:`~agents.Agent`) :meth:`propose` draws the
    architectures with the same generator in the same order, so the history of a seed does not
    depend on the number of copies either.

    Args:
        seed: seeds the agent's generator.
        num_envs: the copies of the vector env a batch search uses by default (the architectures
            evaluated at once); it does not change what is sampled.
    """

    name: ClassVar[str] = "random"
    supports_batches: ClassVar[bool] = True

    def __init__(self, seed: int | None = None, num_envs: int = 1):
        super().__init__(seed)
        self._num_envs = check_int(num_envs, "num_envs", minimum=1)
        self.space: SearchSpace | None = None

    @property
    def num_envs(self) -> int:
        return self._num_envs

    def prepare(self, env: gym.Env | VectorEnv) -> None:
        self.space = space_of(env, vector=True)

    def act(self, obs: Any, info: dict[str, Any]) -> int:
        actions = valid_actions(info)
        return int(actions[self.rng.integers(actions.size)])

    def propose(self, n: int) -> list[Arch]:
        """``n`` architectures, each decision uniform (what :meth:`act` does on the env)."""
        if self.space is None:
            raise RuntimeError("expected search(env) before propose(): the agent has no search space yet")
        return [self.space.sample(self.rng) for _ in range(n)]

    def tell(self, archs: Sequence[Arch], records: Sequence[EpisodeRecord]) -> None:
        """Nothing to learn."""

    def __repr__(self) -> str:
        extra = "" if self._num_envs == 1 else f", num_envs={self._num_envs}"
        return f"RandomAgent(seed={self.seed}{extra})"
