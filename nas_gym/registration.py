"""The Gymnasium ids of nas-gym, registered by ``import nas_gym``, and what each one accepts.

Registration needs nothing but Gymnasium: each id names its entry point as a string, so that
``import nas_gym`` stays cheap (torch, the tables and the trainer load when an env is made).
"""

from __future__ import annotations

import inspect

import gymnasium as gym
from gymnasium.envs.registration import register, registry

ENVS: dict[str, str] = {
    "NASCifar-v0": "trains each sampled network on CIFAR-10; reward = validation accuracy",
    "NASBench201-v0": "NAS-Bench-201 cell space, reward looked up in the benchmark table",
    "NASBenchMacro-v0": "NAS-Bench-Macro chain space, reward looked up in the benchmark table",
}
"""Registered ids and a one-line description of each."""

MAX_EPISODE_STEPS = 1_000
"""The ``max_episode_steps`` of every registered id."""

_SPECS = {
    # (entry point, vector entry point, nondeterministic); GPU training is not bit-reproducible
    # unless its speed options set deterministic=True.
    "NASCifar-v0": ("nas_gym.envs.cifar:NASCifarEnv", "nas_gym.envs.vector:make_cifar_vector_env", True),
    "NASBench201-v0": (
        "nas_gym.envs.tables:NASBench201Env",
        "nas_gym.envs.vector:make_nb201_vector_env",
        False,
    ),
    "NASBenchMacro-v0": (
        "nas_gym.envs.tables:NASBenchMacroEnv",
        "nas_gym.envs.vector:make_macro_vector_env",
        False,
    ),
}


def register_envs() -> None:
    """Register every id of :data:`ENVS` that is not registered yet."""
    for env_id, (entry_point, vector_entry_point, nondeterministic) in _SPECS.items():
        if env_id not in registry:
            # max_episode_steps: a safety net only (episodes end by themselves, after at most 31, 6
            # or 8 decisions in the default spaces). It sits far above any real episode so that
            # the TimeLimit never cuts or flags one, custom spaces with more decisions included.
            # vector_entry_point: gym.make_vec's default; its copies evaluate their architectures
            # together on an executor (nas_gym.envs.vector.NASVectorEnv).
            register(
                id=env_id,
                entry_point=entry_point,
                vector_entry_point=vector_entry_point,
                nondeterministic=nondeterministic,
                max_episode_steps=MAX_EPISODE_STEPS,
            )


def env_accepts(env_id: str, name: str) -> bool:
    """Whether the env registered as ``env_id`` takes the keyword argument ``name``."""
    entry = gym.spec(env_id).entry_point
    target = gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry
    return name in inspect.signature(target).parameters
