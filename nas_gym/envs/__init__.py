"""The environments: :class:`NASEnv` and the backends registered as Gymnasium ids."""

from nas_gym.envs.cifar import NASCifarEnv
from nas_gym.envs.nas_env import InvalidActionError, NASEnv
from nas_gym.envs.tables import NASBench201Env, NASBenchMacroEnv

__all__ = ["InvalidActionError", "NASBench201Env", "NASBenchMacroEnv", "NASCifarEnv", "NASEnv"]
