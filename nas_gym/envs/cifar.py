"""``NASCifar-v0``: the reward is the validation accuracy of the sampled network trained on CIFAR-10,
or, under a zero-cost budget, a proxy score of the untrained network."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from nas_gym.envs.nas_env import NASEnv
from nas_gym.evaluation.objectives import Objective
from nas_gym.evaluation.runner import Evaluator
from nas_gym.evaluation.store import EvaluationStore
from nas_gym.parallel.executors import Executor
from nas_gym.parallel.spec import make_executor
from nas_gym.spaces import SearchSpace, make_space


class NASCifarEnv(NASEnv):
    """:class:`~nas_gym.envs.NASEnv` whose reward backend trains each sampled network on
    CIFAR-10 and returns its validation accuracy (``gym.make("NASCifar-v0")``), or scores the
    untrained network with a zero-cost proxy.

    Actions, observations, rewards, episode end and info are those of
    :class:`~nas_gym.envs.NASEnv`. Training is done by
    :class:`~nas_gym.backends.cifar.trainer.CifarTrainer` on a fixed, seeded validation split of
    the 50,000 training images; the test batch never feeds the reward. The last step's info also
    has ``budget`` (the budget that ran, e.g. ``"cpu-proxy"`` under ``"auto"``) and
    ``trained_params`` (of the network that was trained, smaller than ``params`` under a reduced
    budget).

    ## Zero-cost budgets

    ``budget="synflow"``, ``"naswot"``, ``"grad_norm"``, ``"snip"`` or ``"jacob_cov"`` trains
    nothing: :class:`~nas_gym.backends.cifar.zero_cost.ZeroCostEvaluator` scores the untrained
    network (full size, the trainer's initial weights for ``eval_seed``) on one fixed minibatch
    of 64 images of the training part, in about a second or less per NAS-Bench-201 cell on one
    CPU thread (``synflow``: a twentieth of that). The reward is the score (higher is better),
    ``info["score"]`` holds it, ``info["accuracy"]`` is ``None`` and ``info["proxy"]`` names the
    proxy. Scores are not
    fractions: ``synflow`` spans dozens of orders of magnitude (``reward=lambda m:
    math.log1p(m["score"])`` gives a learning agent a usable scale), ``jacob_cov`` is negative.
    A cell whose output ignores its input has no finite ``naswot`` score: status ``"diverged"``,
    reward ``failure_reward``. ``docs/zero_cost.md`` gives their rank correlations with the
    NAS-Bench-201 accuracies. ``reset(options={"fidelity": F})`` switches between proxies and
    training budgets in both directions, so a search can screen by a proxy and train the best.

    ## Arguments

    - ``space``: preset name (default ``"seed"``) or a ``SearchSpace``.
    - ``budget``: ``"auto"`` (default: ``"proxy"`` on CUDA, ``"cpu-proxy"`` on the CPU),
      ``"smoke"`` (seconds on a CPU, for tests and demos), ``"cpu-proxy"`` (a reduced network on
      16x16 images: a ranking signal in well under a minute on a CPU), ``"proxy"`` (a ranking
      signal in seconds on a GPU), ``"full"`` (tens of epochs on all 45,000 training images), or a
      dict of changes to one of them, e.g. ``{"base": "smoke", "epochs": 2}`` (see
      :func:`~nas_gym.backends.cifar.budget.resolve_budget`). ``docs/fidelity.md`` gives the
      measured seconds and rank correlations of each. Or a zero-cost proxy (see above):
      ``"synflow"``, ``"naswot"``, ``"grad_norm"``, ``"snip"``, ``"jacob_cov"``.
    - ``device``: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    - ``threads``: CPU threads per evaluation, pinned (default: the cores of the process, divided
      among the evaluations that the executor runs at once; one for a zero-cost proxy). Another
      count can change the last digits of an accuracy; the store keys results by it.
    - ``data_dir``: the data folder (default ``$NAS_GYM_DATA``, else ``~/.cache/nas_gym``); CIFAR-10
      is read from ``<data_dir>/cifar10/cifar-10-batches-py`` (``nas-gym download cifar10``).
    - ``download``: fetch CIFAR-10 when it is missing (default ``False``).
    - ``eval_seed``: the training seed (weights, data order, augmentation; for a proxy, the
      weights and the minibatch).
    - ``evaluator``: replaces the trainer (any callable ``arch -> metrics``); tests use it.
    - ``reward``, ``objectives``, ``store``, ``render_mode``, ``failure_reward``, ``executor``: as
      in ``NASEnv``.

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
        budget: str | Mapping[str, Any] = "auto",
        device: str = "auto",
        download: bool = False,
        eval_seed: int = 0,
        failure_reward: float = 0.0,
        executor: Executor | str | None = None,
        threads: int | None = None,
        objectives: Sequence[str] | None = None,
    ):
        space = make_space(space)
        if isinstance(executor, str):
            executor = make_executor(executor)
            owned = True
        else:
            owned = False
        if evaluator is None:
            from nas_gym.backends.cifar.trainer import CifarTrainer
            from nas_gym.backends.cifar.zero_cost import PROXIES, ZeroCostEvaluator

            if threads is None and executor is not None:
                threads = executor.threads_per_task
            common = {
                "device": device,
                "data_dir": data_dir,
                "download": download,
                "seed": eval_seed,
                "threads": threads,
            }
            try:
                if isinstance(budget, str) and budget in PROXIES:
                    evaluator = ZeroCostEvaluator(space, proxy=budget, **common)
                else:
                    evaluator = CifarTrainer(space, budget=budget, **common)
            except BaseException:
                if owned and executor is not None:
                    executor.close()
                raise
        super().__init__(
            space,
            evaluator,
            reward=reward,
            store=store,
            render_mode=render_mode,
            failure_reward=failure_reward,
            executor=executor,
            objectives=objectives,
        )
        self._owns_executor = owned
