"""Stable-Baselines3 and sb3-contrib algorithms as nas-gym agents: ``ppo``, ``maskable-ppo``,
``a2c`` and ``dqn``.

Each agent builds its algorithm with ``MlpPolicy`` on the env it is given (SB3 one-hot encodes
the ``MultiDiscrete`` observation) and lets the algorithm's own ``learn`` loop drive it. SB3
wraps the env in a ``Monitor`` and a ``DummyVecEnv`` on top of whatever wrappers the env already
has, so the user's wrappers apply. A :class:`~stable_baselines3.common.callbacks.BaseCallback`
turns every finished episode (``dones`` and the terminal ``infos`` of the vectorised step) into
a record of the :class:`~agents.SearchResult` and stops ``learn`` at exactly ``episodes`` finished
episodes, at the budget, or when the user's callback returns ``False``.

The defaults adapt the algorithms to NAS, where the only reward comes at the end of a short
episode and a run has a few hundred episodes, not millions of steps:

- ``gamma = 1``: the terminal reward is the objective, undiscounted.
- PPO / MaskablePPO / A2C: ``gae_lambda = 1``, i.e. Monte-Carlo advantages (the return minus
  the value estimate). Episodes are at most a few dozen steps and the critic, fitted on a few
  hundred episodes, is poor for most of the run; bootstrapping from it (``lambda < 1``) would
  bias the only learning signal there is.
- Rollouts of a few dozen episodes rather than 2,048 steps: ``n_steps`` is a multiple of the
  longest episode ``L`` of the space (PPO: ``8 L``, A2C: ``2 L``), so updates come every few
  episodes.
- DQN: a replay buffer of 20,000 transitions, learning after ``5 L`` steps, a target network
  refreshed every ``10 L`` steps, epsilon annealed over the first 30 % of the run.

Every default can be overridden: ``make_agent("ppo", seed=0, learning_rate=1e-3)`` passes the
keyword to the algorithm's constructor. The algorithms run on the CPU unless ``device=`` says
otherwise (their networks are tiny; the env's training, not the policy, is what a GPU is for).

Reproducibility: ``seed`` goes to the algorithm (``seed=``), which seeds Python's, NumPy's and
PyTorch's global generators, the action space and the env, as SB3 does. The same seed on the
same deterministic env gives the same history.

Checkpoints: :meth:`SB3Agent.state_dict` holds the policy's weights, its optimizer, and
``num_timesteps``; it does not hold the rollout or replay buffer. A search resumed from it starts
a fresh rollout (DQN: an empty replay buffer), so it is not step-for-step identical to an
uninterrupted run; with a seed it is reproducible (the generators are reseeded from the seed and
the number of finished episodes).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Mapping
from typing import Any, ClassVar, SupportsFloat

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from agents.base import Agent
from agents.loop import SearchRecorder, require_single_env
from agents.tools import space_of
from nas_gym.core.devices import torch_threads
from nas_gym.spaces import SearchSpace

HORIZON_EPISODES = 500
"""Without ``episodes`` (a budget only), ``learn`` is called in chunks of this many longest
episodes until the budget is spent; SB3 lays its schedules (DQN's epsilon) over the first chunk."""


class _SingleThreadUpdates(BaseCallback):
    """Runs the algorithm's gradient updates (between the end of a rollout and the start of
    the next) on one PyTorch thread, and everything else, the env's steps included, with the
    process's setting.

    The policy's tensors are tiny: splitting its ops over threads only adds synchronisation,
    which makes an update several times slower on two cores and an order of magnitude slower
    on a busy machine.
    """

    def __init__(self) -> None:
        super().__init__()
        self._scope = contextlib.ExitStack()

    def _on_rollout_end(self) -> None:
        self._scope.enter_context(torch_threads(1))

    def _restore(self) -> None:
        self._scope.close()

    def _on_rollout_start(self) -> None:
        self._restore()

    def _on_training_end(self) -> None:
        self._restore()

    def _on_step(self) -> bool:
        return True


class _EpisodeReturn(gym.Wrapper):
    """Sums the rewards of each episode in float64 for the record.

    The vectorised env hands rewards to the callback as float32, which would make a record's
    ``reward`` differ from the accuracy in the seventh digit. This wrapper sits directly on top
    of the user's env (below SB3's ``Monitor``) and changes nothing the algorithm sees.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.running = 0.0
        self.steps = 0
        self.finished: tuple[float, int] = (0.0, 0)
        """``(return, steps)`` of the last episode that ended."""

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.running, self.steps = 0.0, 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.running += float(reward)
        self.steps += 1
        if terminated or truncated:
            self.finished = (self.running, self.steps)
        return obs, reward, terminated, truncated, info


class _RecordEpisodes(BaseCallback):
    """Feeds each finished episode of the (single) vectorised env to a :class:`SearchRecorder`."""

    def __init__(self, recorder: SearchRecorder, returns: _EpisodeReturn):
        super().__init__()
        self.recorder = recorder
        self.returns = returns

    def _on_step(self) -> bool:
        # On done, infos[0] is the info of the terminal step: DummyVecEnv resets after it.
        if not self.locals["dones"][0]:
            return True
        episode_return, steps = self.returns.finished
        return self.recorder.finish_episode(episode_return, self.locals["infos"][0], steps)


class SB3Agent(Agent):
    """An SB3 algorithm as an :class:`~agents.Agent` (see the module docstring for defaults).

    Subclasses name the algorithm class and its NAS defaults. The model is built by the first
    :meth:`search`, from the env it is given; later searches continue training it (on a new
    env of the same spaces if one is given).

    Args:
        seed: the algorithm's ``seed``.
        policy: the SB3 policy (default ``"MlpPolicy"``).
        **algorithm_kwargs: keyword arguments of the algorithm's constructor; they override the
            NAS defaults.
    """

    algorithm: ClassVar[type[BaseAlgorithm]]

    def __init__(self, seed: int | None = None, policy: str | type = "MlpPolicy", **algorithm_kwargs: Any):
        super().__init__(seed)
        accepted = set(inspect.signature(self.algorithm.__init__).parameters) - {
            "self",
            "policy",
            "env",
            "seed",
        }
        unknown = sorted(set(algorithm_kwargs) - accepted)
        if unknown:
            raise TypeError(
                f"expected keyword arguments of {self.algorithm.__name__} among {sorted(accepted)}, got {unknown}"
            )
        self.policy = policy
        self.algorithm_kwargs = dict(algorithm_kwargs)
        self.model: BaseAlgorithm | None = None
        self._pending_state: Mapping[str, Any] | None = None

    # ------------------------------------------------------------------ configuration
    def default_kwargs(self, space: SearchSpace) -> dict[str, Any]:
        """The NAS defaults of the algorithm for ``space`` (overridden by the user's kwargs)."""
        return {"gamma": 1.0}

    def build_model(self, env: gym.Env) -> BaseAlgorithm:
        """The algorithm on ``env`` with the defaults, the user's kwargs and the seed."""
        kwargs: dict[str, Any] = {"device": "cpu", "verbose": 0, **self.default_kwargs(space_of(env))}
        kwargs.update(self.algorithm_kwargs)
        return self.algorithm(self.policy, env, seed=self.seed, **kwargs)

    # ------------------------------------------------------------------ search
    drives_env: ClassVar[bool] = True

    def drive(self, env: gym.Env, recorder: SearchRecorder) -> None:
        """Train the algorithm on ``env`` until the recorder is done (the search of
        :meth:`Agent.search`).

        The algorithm's ``learn`` runs with ``total_timesteps = episodes x L`` (``L`` the longest
        episode, enough steps for ``episodes`` episodes; its progress-based schedules are laid out
        over it) and is stopped by the recorder's callback at the last episode.
        """
        require_single_env(self, env)
        episodes = recorder.episodes
        space = space_of(env)
        returns = _EpisodeReturn(env)
        if self.model is None:
            self.model = self.build_model(returns)
            if self._pending_state is not None:
                self._restore(self._pending_state)
                self._pending_state = None
        else:
            # A fresh Monitor + DummyVecEnv around this env; the next learn starts with a reset.
            self.model.set_env(returns)
        callbacks = CallbackList([_RecordEpisodes(recorder, returns), _SingleThreadUpdates()])
        chunk = (episodes if episodes is not None else HORIZON_EPISODES) * space.max_decisions
        # learn() may end with an exception inside an update, where the threads are reduced: the
        # outer scope restores the caller's count in every case.
        with torch_threads(torch.get_num_threads()):
            while not recorder.done:
                before = self.model.num_timesteps
                self.model.learn(total_timesteps=chunk, callback=callbacks, reset_num_timesteps=False)
                if self.model.num_timesteps == before:
                    raise RuntimeError(
                        f"expected {type(self.model).__name__}.learn to step the env, got no step"
                    )

    def act(self, obs: Any, info: dict[str, Any]) -> int:
        """The policy's (stochastic) action, for running a trained agent in an
        :meth:`Agent.search`-style loop of your own."""
        if self.model is None:
            raise RuntimeError("expected search(env) before act(): the model is built from the env")
        action, _ = self.model.predict(obs, deterministic=False)
        return int(action)

    def learning_metrics(self) -> dict[str, float]:
        """The ``train/*`` values of the last gradient update, as SB3's logger recorded them."""
        if self.model is None:
            return {}
        values = self.model.logger.name_to_value
        return {key: float(value) for key, value in values.items() if key.startswith("train/")}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.model is not None:
            # Copies: torch's state dicts share memory with the live model and optimizer.
            state.update(
                num_timesteps=int(self.model.num_timesteps),
                policy=copy.deepcopy(self.model.policy.state_dict()),
                optimizer=copy.deepcopy(self.model.policy.optimizer.state_dict()),
            )
        elif self._pending_state is not None:
            for key in ("num_timesteps", "policy", "optimizer"):
                state[key] = self._pending_state[key]
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        # A copy: loading shares the optimizer's tensors, and training would then change the
        # caller's state in place.
        state = copy.deepcopy(state)
        if "policy" not in state:
            return
        if self.model is None:
            self._pending_state = state
        else:
            self._restore(state)

    def _restore(self, state: Mapping[str, Any]) -> None:
        assert self.model is not None  # callers build it first
        self.model.policy.load_state_dict(state["policy"])
        self.model.policy.optimizer.load_state_dict(state["optimizer"])
        self.model.num_timesteps = int(state["num_timesteps"])
        if self.seed is not None:
            # The generators of the interrupted run are lost; derive new ones from the seed and
            # the progress so that a resumed run is reproducible.
            seed = int(np.random.SeedSequence([self.seed, self.episodes_done]).generate_state(1)[0])
            self.model.set_random_seed(seed)

    def __repr__(self) -> str:
        kwargs = "".join(f", {k}={v!r}" for k, v in self.algorithm_kwargs.items())
        return f"{type(self).__name__}(seed={self.seed}{kwargs})"


class PPOAgent(SB3Agent):
    """Stable-Baselines3 PPO on the env as it is (masked actions follow the env's ``a % k``
    rule). Defaults: ``gamma=1``, ``gae_lambda=1``, ``n_steps=8 L``, ``batch_size=2 L``,
    ``n_epochs=10``, ``learning_rate=1e-3``, ``ent_coef=0.01``."""

    name: ClassVar[str] = "ppo"
    algorithm = PPO

    def default_kwargs(self, space: SearchSpace) -> dict[str, Any]:
        length = space.max_decisions
        return {
            "gamma": 1.0,
            "gae_lambda": 1.0,
            "n_steps": 8 * length,
            "batch_size": 2 * length,
            "n_epochs": 10,
            "learning_rate": 1e-3,
            "ent_coef": 0.01,
        }


class MaskablePPOAgent(PPOAgent):
    """sb3-contrib MaskablePPO: PPO that samples only among ``env.action_masks()`` (found
    through any wrapper), so it never takes a masked action. Defaults as :class:`PPOAgent`."""

    name: ClassVar[str] = "maskable-ppo"
    algorithm = MaskablePPO

    def act(self, obs: Any, info: dict[str, Any]) -> int:
        if self.model is None:
            raise RuntimeError("expected search(env) before act(): the model is built from the env")
        action, _ = self.model.predict(obs, deterministic=False, action_masks=np.asarray(info["action_mask"]))
        return int(action)


class A2CAgent(SB3Agent):
    """Stable-Baselines3 A2C. Defaults: ``gamma=1``, ``gae_lambda=1``, ``n_steps=2 L``,
    ``learning_rate=1e-3``, ``ent_coef=0.01``."""

    name: ClassVar[str] = "a2c"
    algorithm = A2C

    def default_kwargs(self, space: SearchSpace) -> dict[str, Any]:
        return {
            "gamma": 1.0,
            "gae_lambda": 1.0,
            "n_steps": 2 * space.max_decisions,
            "learning_rate": 1e-3,
            "ent_coef": 0.01,
        }


class DQNAgent(SB3Agent):
    """Stable-Baselines3 DQN (epsilon-greedy; masked actions follow the env's ``a % k`` rule).
    Defaults: ``gamma=1``, ``buffer_size=20_000``, ``learning_starts=5 L``,
    ``target_update_interval=10 L``, ``exploration_fraction=0.3``, ``learning_rate=1e-3``."""

    name: ClassVar[str] = "dqn"
    algorithm = DQN

    def default_kwargs(self, space: SearchSpace) -> dict[str, Any]:
        length = space.max_decisions
        return {
            "gamma": 1.0,
            "buffer_size": 20_000,
            "learning_starts": 5 * length,
            "target_update_interval": 10 * length,
            "exploration_fraction": 0.3,
            "learning_rate": 1e-3,
        }
