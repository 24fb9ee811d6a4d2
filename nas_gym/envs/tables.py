"""``NASBench201-v0`` and ``NASBenchMacro-v0``: the reward is looked up in a benchmark table, so an
episode costs microseconds instead of a training run."""

from __future__ import annotations

import os
from collections.abc import Sequence

from nas_gym.backends.tables.macro import MacroEvaluator
from nas_gym.backends.tables.nb201 import NB201Evaluator
from nas_gym.envs.nas_env import NASEnv
from nas_gym.evaluation.objectives import Objective
from nas_gym.evaluation.runner import Evaluator
from nas_gym.evaluation.store import EvaluationStore
from nas_gym.parallel.executors import Executor
from nas_gym.spaces import MacroSpace, NB201Space, SearchSpace, make_space


def _check_space(space: SearchSpace, expected: type[SearchSpace], env: str) -> None:
    # Any other space would name architectures the table does not hold: every episode would fail.
    if not isinstance(space, expected):
        raise ValueError(
            f"expected the {expected.name!r} space (or a subclass) for {env} with its table "
            f"evaluator, got {space!r}; pass evaluator= to search another space"
        )


class NASBench201Env(NASEnv):
    """:class:`~nas_gym.envs.NASEnv` on the NAS-Bench-201 cell space whose reward is looked up in the
    benchmark's table of all 15,625 cells (``gym.make("NASBench201-v0")``).

    Actions, observations, rewards, episode end and info are those of
    :class:`~nas_gym.envs.NASEnv`: six steps, one per edge of the cell (1<-0, 2<-0, 2<-1, 3<-0,
    3<-1, 3<-2), each choosing one of five operations (0 ``none``, 1 ``skip_connect``,
    2 ``nor_conv_1x1``, 3 ``nor_conv_3x3``, 4 ``avg_pool_3x3``). The metrics come from
    :class:`~nas_gym.backends.tables.nb201.NB201Evaluator`:

    - reward (with ``reward="accuracy"``): the validation accuracy as a fraction; by default
      ``c10valid_valid_acc_12ep``, the 12-epoch proxy that the benchmark's own search baselines use;
    - ``info["test_accuracy"]``: the 200-epoch test accuracy of the dataset (by default
      ``c10_test_acc_200ep``, best 0.9437), for reporting only;
    - ``info["train_seconds"]``: the benchmark's recorded cost of the evaluation (simulated time,
      from the CIFAR-10 records for every dataset); ``info["params"]`` and ``info["flops"]``: the
      parameters and multiply-adds of the cell's network, computed once and cached
      (:mod:`~nas_gym.backends.tables.nb201_costs`), so ``objectives=`` and the cost-aware rewards work.

    The table is read once per process (a fraction of a second) and shared by every copy of the
    env; a step then costs less than twice a ``CartPole-v1`` step
    (``benchmarks/bench_env_step.py`` measures it).

    ## Arguments

    - ``space``: ``"nb201"`` (default) or an :class:`~nas_gym.spaces.NB201Space`; another space
      needs its own ``evaluator``.
    - ``dataset``: ``"cifar10"`` (default), ``"cifar100"`` or ``"ImageNet16-120"``: the dataset of
      the reward and of ``test_accuracy``.
    - ``metric``: ``"12ep"`` (default, the benchmark's search protocol) or ``"200ep"`` (the final
      validation accuracy; ``cifar10`` only, the table has no other).
    - ``data_dir``: the data folder (default ``$NAS_GYM_DATA``, else ``~/.cache/nas_gym``); the
      table is ``<data_dir>/nasbench201/nasbench201_all15625.csv``.
    - ``evaluator``: replaces the table (any callable ``arch -> metrics``); ``dataset``, ``metric``
      and ``data_dir`` are then unused.
    - ``reward``, ``store``, ``render_mode``, ``failure_reward``, ``executor``: as in ``NASEnv``. With a store,
      lookups are recorded like trained evaluations.

    ## Version History

    - v0: initial release.

    Example (needs the table under ``$NAS_GYM_DATA``):
        >>> import gymnasium as gym
        >>> import nas_gym  # noqa: F401
        >>> env = gym.make("NASBench201-v0")
        >>> best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
        >>> obs, info = env.reset(seed=0)
        >>> for action in env.unwrapped.space.parse(best):
        ...     obs, reward, terminated, truncated, info = env.step(action)
        >>> terminated, info["arch"] == best, round(reward, 4), round(info["test_accuracy"], 4)
        (True, True, 0.8438, 0.9437)
    """

    def __init__(
        self,
        space: str | SearchSpace = "nb201",
        reward: str | Objective = "accuracy",
        evaluator: Evaluator | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        store: EvaluationStore | str | os.PathLike[str] | None = None,
        render_mode: str | None = None,
        dataset: str = "cifar10",
        metric: str = "12ep",
        failure_reward: float = 0.0,
        executor: Executor | str | None = None,
        objectives: Sequence[str] | None = None,
    ):
        space = make_space(space)
        if evaluator is None:
            _check_space(space, NB201Space, "NASBench201-v0")
            evaluator = NB201Evaluator(data_dir, dataset=dataset, metric=metric)
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


class NASBenchMacroEnv(NASEnv):
    """:class:`~nas_gym.envs.NASEnv` on the NAS-Bench-Macro chain space whose reward is looked up in
    the benchmark's table of all 6,561 networks (``gym.make("NASBenchMacro-v0")``).

    Actions, observations, rewards, episode end and info are those of
    :class:`~nas_gym.envs.NASEnv`: eight steps, one per searchable layer in network order, each
    choosing 0 identity, 1 MobileNetV2 block k3 e3 or 2 MobileNetV2 block k5 e6. The metrics come
    from :class:`~nas_gym.backends.tables.nb201.MacroEvaluator`. The benchmark records three CIFAR-10
    **test** accuracies per network and no validation accuracy, so:

    - reward (with ``reward="accuracy"``): the test accuracy of one of the three runs, picked by a
      stable hash of ``eval_seed`` and the architecture (``info["run"]``);
    - ``info["test_accuracy"]``: the mean of the two other runs, the figure to report;
    - ``info["params"]``, ``info["flops"]``: from the table, so the cost-aware objectives
      (``reward="mnas-params"``, ``"mnas-flops"``) work;
    - ``info["train_seconds"]``: ``0.0``; the table records no training time, compare searches by
      number of evaluations.

    The table is read once per process and shared by every copy of the env.

    ## Arguments

    - ``space``: ``"macro"`` (default) or a :class:`~nas_gym.spaces.MacroSpace`; another space
      needs its own ``evaluator``.
    - ``eval_seed``: picks the reward run of each architecture (default 0).
    - ``data_dir``: the data folder (default ``$NAS_GYM_DATA``, else ``~/.cache/nas_gym``); the
      table is ``<data_dir>/nasbenchmacro/nas-bench-macro_cifar10.json``.
    - ``evaluator``: replaces the table (any callable ``arch -> metrics``); ``eval_seed`` and
      ``data_dir`` are then unused.
    - ``reward``, ``store``, ``render_mode``, ``failure_reward``, ``executor``: as in ``NASEnv``.

    ## Version History

    - v0: initial release.

    Example (needs the table under ``$NAS_GYM_DATA``):
        >>> import gymnasium as gym
        >>> import nas_gym  # noqa: F401
        >>> env = gym.make("NASBenchMacro-v0")
        >>> obs, info = env.reset(seed=0)
        >>> for action in env.unwrapped.space.parse("22212220"):
        ...     obs, reward, terminated, truncated, info = env.step(action)
        >>> terminated, info["arch"], info["params"], info["flops"]
        (True, '22212220', 1985514, 85164544)
        >>> round((reward + 2 * info["test_accuracy"]) / 3, 4)  # the table's mean of three runs
        0.9313
    """

    def __init__(
        self,
        space: str | SearchSpace = "macro",
        reward: str | Objective = "accuracy",
        evaluator: Evaluator | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        store: EvaluationStore | str | os.PathLike[str] | None = None,
        render_mode: str | None = None,
        eval_seed: int = 0,
        failure_reward: float = 0.0,
        executor: Executor | str | None = None,
        objectives: Sequence[str] | None = None,
    ):
        space = make_space(space)
        if evaluator is None:
            _check_space(space, MacroSpace, "NASBenchMacro-v0")
            evaluator = MacroEvaluator(data_dir, seed=eval_seed)
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
