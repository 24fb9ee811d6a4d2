"""What defines a search run, and the env it searches."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym

from agents import Agent
from nas_gym.core.checks import check_int, check_number
from nas_gym.envs.vector import NASVectorEnv
from nas_gym.parallel.executors import Executor
from nas_gym.registration import env_accepts


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a search run (saved as ``config.json``); also one run of a
    comparison."""

    env: str
    """Registered env id, e.g. ``"NASCifar-v0"``."""
    agent: str
    """Agent name, e.g. ``"reinforce"``."""
    episodes: int | None = None
    """Finished episodes to run (``None``: until ``budget_seconds``)."""
    seed: int = 0
    """Seed of the agent and of the evaluation (training seed, table run choice)."""
    budget_seconds: float | None = None
    """Stop once the history's cumulative ``train_seconds`` reaches this."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments of ``gym.make`` (``budget``, ``device``, ``space`` ...)."""
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments of ``make_agent``."""
    num_envs: int | None = None
    """Copies of the :class:`~nas_gym.envs.vector.NASVectorEnv` that an agent with proposals
    (``random``, ``evolution``, ``reinforce``) searches, i.e. architectures evaluated together.
    ``None``: the agent's own ``num_envs``. The history depends on it, never on the executor."""
    max_episodes: int | None = None
    """With a time budget only: a cap on episodes, so that an agent that keeps proposing cached
    architectures (which cost nothing on the clock) ends. The agent is told no episode count."""

    def __post_init__(self) -> None:
        if self.episodes is None and self.budget_seconds is None:
            raise ValueError("expected episodes or budget_seconds, got neither")
        check_int(self.episodes, "episodes", minimum=1, none_ok=True)
        check_int(self.seed, "seed", minimum=0)
        check_number(self.budget_seconds, "budget_seconds", minimum=0, strict=True, none_ok=True)
        check_int(self.num_envs, "num_envs", minimum=1, none_ok=True)
        check_int(self.max_episodes, "max_episodes", minimum=1, none_ok=True)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchConfig:
        # Older run folders named num_envs "batch".
        data = dict(data)
        if "batch" in data:
            data["num_envs"] = data.pop("batch")
        return cls(**data)


def env_kwargs_of(config: SearchConfig, store: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The env keyword arguments of a run: its ``env_kwargs``, the run's seed as the evaluation
    seed where the env has one, and the store where given."""
    kwargs = dict(config.env_kwargs)
    if env_accepts(config.env, "eval_seed"):
        kwargs.setdefault("eval_seed", config.seed)
    if store is not None:
        kwargs["store"] = store
    return kwargs


def make_env(
    config: SearchConfig,
    agent: Agent,
    store: str | os.PathLike[str] | None = None,
    executor: Executor | None = None,
) -> gym.Env | NASVectorEnv:
    """The env ``agent`` searches in a run: for an agent with proposals, a
    :class:`~nas_gym.envs.vector.NASVectorEnv` of ``config.num_envs`` copies (default the agent's
    own) whose architectures are evaluated together on ``executor``; else ``gym.make(config.env)``
    with its evaluations sent to ``executor`` one by one. The caller closes ``executor``."""
    kwargs = env_kwargs_of(config, store)
    if executor is not None and "threads" not in kwargs and env_accepts(config.env, "threads"):
        kwargs["threads"] = executor.threads_per_task
    if not agent.supports_batches:
        if executor is not None and env_accepts(config.env, "executor"):
            kwargs["executor"] = executor
        return gym.make(config.env, **kwargs)
    return NASVectorEnv(
        config.env,
        num_envs=config.num_envs or agent.num_envs,
        executor=executor or "serial",
        autoreset_mode="Disabled",
        **kwargs,
    )
