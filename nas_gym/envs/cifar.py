"""``NASCifar-v0``: the reward is the validation accuracy of the sampled network trained on CIFAR-10."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from nas_gym.envs.nas_env import NASEnv
from nas_gym.evaluation.executors import Executor
from nas_gym.evaluation.runner import Evaluator
from nas_gym.evaluation.store import EvaluationStore
from nas_gym.objectives import Objective
from nas_gym.spaces import SearchSpace, make_space


class NASCifarEnv(NASEnv):
    """:class:`~nas_gym.envs.NASEnv` whose reward backend trains each sampled network on
    CIFAR-10 and returns its validation accuracy (``gym.make("NASCifar-v0")``).

    Actions, observations, rewards, episode end and info are those of
    :class:`~nas_gym.envs.NASEnv`. Training is done by
    :class:`~nas_gym.evaluation.trainer.CifarTrainer` on a fixed, seeded validation split of the
    50,000 training images; the test batch never feeds the reward.

    ## Arguments

    - ``space``: preset name (default ``"seed"``) or a ``SearchSpace``.
    - ``budget``: ``"smoke"`` (seconds on a CPU), ``"proxy"`` (default: a ranking signal in
      seconds on a GPU), ``"full"`` (tens of epochs on all 45,000 training images), or a dict with
      any of ``epochs``, ``train_size``, ``val_size``, ``batch_size`` (see
      :data:`nas_gym.evaluation.trainer.BUDGETS`).
    - ``device``: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    - ``data_dir``: the data folder (default ``$NAS_GYM_DATA``, else ``~/.cache/nas_gym``); CIFAR-10
      is read from ``<data_dir>/cifar10/cifar-10-batches-py``.
    - ``download``: fetch CIFAR-10 with torchvision when it is missing (default ``False``).
    - ``eval_seed``: the training seed (weights, data order, augmentation). On the CPU the same
      architecture, budget and seed give the same accuracy: training runs on one intra-op thread
      (``CifarTrainer``'s ``CPU_THREADS``) whatever the executor or worker layout.
    - ``evaluator``: replaces the trainer (any callable ``arch -> metrics``); tests use it.
    - ``reward``, ``store``, ``render_mode``, ``failure_reward``, ``executor``: as in ``NASEnv``.

    ## Version History

    - v0: initial release.

    Example:
        >>> import gymnasium as gym
        >>> import nas_gym  # noqa: F401
        >>> env = gym.make("NASCifar-v0", evaluator=lambda arch: {"accuracy": 0.1 * arch.count("|")})
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step(2)  # depth 3
        >>> for _ in range(9):
        ...     obs, reward, terminated, truncated, info = env.step(0)
        >>> terminated, info["arch"], round(reward, 2)
        (True, 'k3-relu-max|k3-relu-max|k3-relu-max', 0.2)
    """

    def __init__(
        self,
        space: str | SearchSpace = "seed",
        reward: str | Objective = "accuracy",
        evaluator: Evaluator | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        store: EvaluationStore | str | os.PathLike[str] | None = None,
        render_mode: str | None = None,
        budget: str | Mapping[str, Any] = "proxy",
        device: str = "auto",
        download: bool = False,
        eval_seed: int = 0,
        failure_reward: float = 0.0,
        executor: Executor | str | None = None,
    ):
        space = make_space(space)
        if evaluator is None:
            from nas_gym.evaluation.trainer import CifarTrainer

            evaluator = CifarTrainer(
                space, budget=budget, device=device, data_dir=data_dir, download=download, seed=eval_seed
            )
        super().__init__(
            space,
            evaluator,
            reward=reward,
            store=store,
            render_mode=render_mode,
            failure_reward=failure_reward,
            executor=executor,
        )
