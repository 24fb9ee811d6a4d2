"""nas-gym: neural architecture search as Gymnasium environments.

``import nas_gym`` registers ``NASCifar-v0``, ``NASBench201-v0`` and ``NASBenchMacro-v0``.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

ENVS: dict[str, str] = {
    "NASCifar-v0": "trains each sampled network on CIFAR-10; reward = validation accuracy",
    "NASBench201-v0": "NAS-Bench-201 cell space, reward looked up in the benchmark table",
    "NASBenchMacro-v0": "NAS-Bench-Macro chain space, reward looked up in the benchmark table",
}
"""Registered ids and a one-line description of each."""

MAX_EPISODE_STEPS = 1_000
"""The ``max_episode_steps`` of every registered id."""

_SPECS = {
    # (entry point, vector entry point, nondeterministic); GPU training is not bit-reproducible.
    "NASCifar-v0": ("nas_gym.envs.cifar:NASCifarEnv", "nas_gym.vector:make_cifar_vector_env", True),
    "NASBench201-v0": ("nas_gym.envs.tables:NASBench201Env", "nas_gym.vector:make_nb201_vector_env", False),
    "NASBenchMacro-v0": (
        "nas_gym.envs.tables:NASBenchMacroEnv",
        "nas_gym.vector:make_macro_vector_env",
        False,
    ),
}

for _id, (_entry_point, _vector_entry_point, _nondeterministic) in _SPECS.items():
    if _id not in registry:
        # max_episode_steps: a safety net only (episodes end by themselves, after at most 31, 6
        # or 8 decisions in the default spaces). It sits far above any real episode so that the
        # TimeLimit never cuts or flags one, custom spaces with more decisions included.
        # vector_entry_point: gym.make_vec's default; its copies evaluate their architectures
        # together on an executor (nas_gym.vector.NASVectorEnv).
        register(
            id=_id,
            entry_point=_entry_point,
            vector_entry_point=_vector_entry_point,
            nondeterministic=_nondeterministic,
            max_episode_steps=MAX_EPISODE_STEPS,
        )

from nas_gym.envs import NASEnv  # noqa: E402
from nas_gym.spaces import SearchSpace, make_space  # noqa: E402

__all__ = ["ENVS", "NASEnv", "SearchSpace", "__version__", "make_space"]
