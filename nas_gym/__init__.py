"""nas-gym: neural architecture search as Gymnasium environments.

``import nas_gym`` registers ``NASCifar-v0``, ``NASBench201-v0`` and ``NASBenchMacro-v0`` and
loads nothing else: torch, the tables and the trainer load when an env is made. ``NASEnv``,
``SearchSpace`` and ``make_space`` are imported on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from nas_gym.registration import ENVS, MAX_EPISODE_STEPS, register_envs

__version__ = "0.2.0"

register_envs()

_LAZY = {"NASEnv": "nas_gym.envs.nas_env", "SearchSpace": "nas_gym.spaces", "make_space": "nas_gym.spaces"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nas_gym' has no attribute {name!r}")


__all__ = ["ENVS", "MAX_EPISODE_STEPS", "NASEnv", "SearchSpace", "__version__", "make_space"]
