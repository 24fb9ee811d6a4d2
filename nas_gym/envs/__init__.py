"""The environments: :class:`NASEnv` and the backends registered as Gymnasium ids."""

from nas_gym.envs.cifar import NASCifarEnv
from nas_gym.envs.nas_env import InvalidActionError, NASEnv

__all__ = ["InvalidActionError", "NASCifarEnv", "NASEnv"]
