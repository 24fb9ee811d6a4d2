"""Vector envs whose copies evaluate their architectures together, on an executor.

:class:`NASVectorEnv` runs ``num_envs`` copies of a NAS episode in lockstep, in this process.
The copies share one evaluation path (one cache, one store, one evaluator), and on each step the
architectures that the step completes are evaluated together by an
:class:`~nas_gym.parallel.executors.Executor`: worker processes, Ray, or one after another.
Results are matched to their copies by position, so they do not depend on the executor.

``import nas_gym`` registers it as the ``vector_entry_point`` of every nas-gym id::

    envs = gym.make_vec("NASCifar-v0", num_envs=8, vectorization_mode="vector_entry_point",
                        executor="processes", workers=2)

Gymnasium's own ``AsyncVectorEnv`` (``vectorization_mode="async"``, with
``vector_kwargs={"context": "spawn"}`` where CUDA is used) and Stable-Baselines3's
``SubprocVecEnv(..., start_method="spawn")`` work too: there each worker process evaluates its
own architectures; pass ``store=`` a file to share results between the workers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from nas_gym.core.checks import check_int
from nas_gym.envs.nas_env import NASEnv, as_action
from nas_gym.evaluation.runner import EvaluationRunner
from nas_gym.parallel.executors import Executor
from nas_gym.parallel.spec import ExecutorSpec
from nas_gym.registration import env_accepts
from nas_gym.spaces import SearchSpace


class NASVectorEnv(VectorEnv):
    """``num_envs`` copies of a :class:`~nas_gym.envs.NASEnv` episode, stepped together, whose
    completed architectures are evaluated together on an executor.

    ## Spaces

    ``single_action_space`` and ``single_observation_space`` are those of the env;
    ``action_space`` (``MultiDiscrete``) and ``observation_space`` batch them
    (:func:`gymnasium.vector.utils.batch_space`).

    ## Step

    Each copy takes its action as :meth:`NASEnv.step <nas_gym.envs.NASEnv.step>` does (same
    masking rule, same errors; a batch with an invalid action raises before any copy moves).
    The copies whose architecture the step completes are evaluated with one
    :meth:`~nas_gym.evaluation.runner.EvaluationRunner.evaluate_many`: cache and store hits at
    once, the rest concurrently on the executor. Rewards, terminations and truncations are
    arrays of shape ``(num_envs,)``; a copy's reward is 0 until its last decision. Episodes of
    different lengths (the ``"seed"`` space) run side by side: only the copies that finish on
    the same step are evaluated together (with ``NEXT_STEP`` below and random architectures of
    the ``"seed"`` space, hardly more than one at a time); ``DISABLED`` lets an agent that knows
    its architectures' lengths start the shorter ones later, so that all finish together.

    ## Autoreset

    ``autoreset_mode`` (also ``metadata["autoreset_mode"]``):

    - ``AutoresetMode.NEXT_STEP`` (default), as in Gymnasium's own vector envs: the step after a
      copy's episode ends resets that copy, ignores its action and returns its first
      observation with reward 0.
    - ``AutoresetMode.DISABLED``: a copy whose episode ended, or that was never reset, waits:
      steps ignore its action and return its last observation, reward 0, no termination and no
      info, until ``reset(options={"reset_mask": ...})`` starts its next episode.

    ## Info

    A dict of arrays, one entry per copy, each key ``k`` with a boolean mask ``"_k"`` of the
    copies that have it (Gymnasium's layout). Values that are numbers in every copy that has
    them give a numeric array, arrays give a stacked array, anything else (strings, ``None``
    mixed with numbers, such as ``params`` of a failed evaluation) an object array.
    :meth:`action_masks` returns the masks of the next actions, shape ``(num_envs, n)``.

    ## Arguments

    - ``env``: a registered nas-gym id (each copy is ``gym.make(env, **env_kwargs).unwrapped``)
      or a callable returning a :class:`~nas_gym.envs.NASEnv` (called ``num_envs`` times).
    - ``num_envs``: the number of copies.
    - ``executor``: ``"serial"`` (default), ``"processes"``, ``"ray"``, an
      :class:`~nas_gym.parallel.spec.ExecutorSpec` or an
      :class:`~nas_gym.parallel.executors.Executor`; one built from a name or a spec is closed
      with the vector env, one passed in is left open.
    - ``workers``, ``ray_address``, ``num_gpus``: for an executor built from a name
      (:func:`~nas_gym.parallel.spec.make_executor`). An env keyword ``threads`` pins the
      threads per task of such an executor too (a Ray task then reserves that many CPUs);
      without it, CPU evaluations run on the executor's share of the cores.
    - ``max_episode_steps``: truncate an episode after this many steps (a safety net, as the
      ``TimeLimit`` of ``gym.make``; default: the id's registered value, none for a callable).
    - ``autoreset_mode``: ``AutoresetMode.NEXT_STEP`` or ``AutoresetMode.DISABLED`` (or their
      values, ``"NextStep"``, ``"Disabled"``); see above.
    - ``env_kwargs``: keyword arguments of the env (``space``, ``evaluator``, ``store``, ...).
      The evaluator runs in the executor's workers: with ``"processes"`` or ``"ray"`` it must be
      picklable (defined at module level).

    Example:
        >>> import gymnasium as gym
        >>> import nas_gym  # noqa: F401
        >>> envs = gym.make_vec("NASBench201-v0", num_envs=3, vectorization_mode="vector_entry_point",
        ...                     evaluator=lambda arch: {"accuracy": 0.5})
        >>> obs, info = envs.reset(seed=0)
        >>> obs.shape, envs.action_masks().shape
        ((3, 6), (3, 5))
        >>> for _ in range(6):
        ...     obs, rewards, terminated, truncated, info = envs.step(envs.action_space.sample())
        >>> terminated.all(), rewards.tolist(), info["arch"].shape
        (np.True_, [0.5, 0.5, 0.5], (3,))
    """

    metadata: dict[str, Any] = {
        "render_modes": ["ansi"],
        "render_fps": 4,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        env: str | Callable[[], NASEnv],
        num_envs: int = 1,
        executor: str | Executor | ExecutorSpec = "serial",
        workers: int | None = None,
        ray_address: str | None = None,
        num_gpus: float | None = None,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **env_kwargs: Any,
    ):
        check_int(num_envs, "num_envs", minimum=1)
        check_int(max_episode_steps, "max_episode_steps", minimum=1, none_ok=True)
        modes = [AutoresetMode.NEXT_STEP.value, AutoresetMode.DISABLED.value]
        mode = autoreset_mode.value if isinstance(autoreset_mode, AutoresetMode) else autoreset_mode
        if mode not in modes:
            raise ValueError(f"expected autoreset_mode in {modes}, got {autoreset_mode!r}")
        self.autoreset_mode = AutoresetMode(mode)
        if isinstance(executor, Executor):
            if workers is not None or ray_address is not None or num_gpus is not None:
                raise ValueError(
                    "expected workers, ray_address and num_gpus only with an executor name; got them "
                    f"with the executor {executor!r}: give them to the executor instead"
                )
        elif isinstance(executor, str):
            # The evaluations' thread count sizes the executor's tasks: Ray reserves that many
            # CPUs per task and worker processes start with that many threads.
            executor = ExecutorSpec(executor, workers, ray_address, num_gpus, env_kwargs.get("threads"))
        elif not isinstance(executor, ExecutorSpec):
            raise TypeError(
                f"expected executor as a name, an ExecutorSpec or an Executor, got {type(executor).__name__}"
            )
        # The executor comes first: CPU evaluations of the copies train on its share of the cores.
        self._owns_executor = not isinstance(executor, Executor)
        self.executor: Executor = executor if isinstance(executor, Executor) else executor.build()
        try:
            if isinstance(env, str) and "threads" not in env_kwargs and env_accepts(env, "threads"):
                env_kwargs = {**env_kwargs, "threads": self.executor.threads_per_task}
            self.envs: list[NASEnv] = self._make_copies(env, num_envs, env_kwargs)
        except BaseException:
            if self._owns_executor:
                self.executor.close()
            raise
        self._share_runner()
        first = self.envs[0]
        if max_episode_steps is None and isinstance(env, str) and first.spec is not None:
            max_episode_steps = first.spec.max_episode_steps
        self.max_episode_steps = max_episode_steps
        try:
            self.executor.check_callable(self.runner.evaluator)  # a lambda with processes: fail now
        except BaseException:
            self.close()
            raise

        self.num_envs = num_envs
        self.metadata = {**first.metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = first.render_mode
        self.single_action_space = first.action_space
        self.single_observation_space = first.observation_space
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)

        self._observations = np.zeros(self.observation_space.shape, dtype=np.int64)
        self._steps = np.zeros(num_envs, dtype=np.int64)
        # No episode in progress: ended, or never started.
        self._ended = np.ones(num_envs, dtype=np.bool_)
        # NEXT_STEP only: ended on the last step, so reset on the next one.
        self._reset_next = np.zeros(num_envs, dtype=np.bool_)

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _make_copies(
        env: str | Callable[[], NASEnv], num_envs: int, env_kwargs: dict[str, Any]
    ) -> list[NASEnv]:
        if isinstance(env, str):
            copies = [
                gym.make(env, disable_env_checker=True, **env_kwargs).unwrapped for _ in range(num_envs)
            ]
        elif callable(env):
            if env_kwargs:
                raise ValueError(
                    f"expected no env keyword arguments with an env factory (it builds the env), got "
                    f"{sorted(env_kwargs)}"
                )
            copies = [env() for _ in range(num_envs)]
        else:
            raise TypeError(f"expected env as an id or a callable returning a NASEnv, got {env!r}")
        for copy in copies:
            if not isinstance(copy, NASEnv):
                raise TypeError(f"expected every copy to be a NASEnv, got {type(copy).__name__}")
        first = copies[0]
        for copy in copies[1:]:
            if (
                copy.space.name != first.space.name
                or copy.action_space != first.action_space
                or copy.observation_space != first.observation_space
                or copy.runner.fingerprint != first.runner.fingerprint
            ):
                raise ValueError(
                    "expected identical copies (space, spaces and evaluator); the factory built "
                    f"{copy.space!r} with {copy.runner.fingerprint!r} after {first.space!r} with "
                    f"{first.runner.fingerprint!r}"
                )
        return copies

    def _share_runner(self) -> None:
        """Give every copy the first copy's runners (the default one and those of fidelities):
        one cache, one store connection."""
        first = self.envs[0]
        for copy in self.envs[1:]:
            own = copy.runner
            copy.runner = first.runner
            copy._episode_runner = first.runner
            copy._runners = first._runners
            if own.store is not None and own.store is not first.runner.store:
                own.store.close()

    # ------------------------------------------------------------------ properties
    @property
    def _reward_shape(self) -> tuple[int, ...]:
        objective = self.envs[0].vector_objective
        return () if objective is None else (len(objective.names),)

    @property
    def runner(self) -> EvaluationRunner:
        """The evaluation path that every copy shares."""
        return self.envs[0].runner

    @property
    def space(self) -> SearchSpace:
        """The search space of every copy."""
        return self.envs[0].space

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the copies: all of them, or those of ``options["reset_mask"]``.

        ``seed``: ``None``, an int (copy ``i`` gets ``seed + i``) or one seed per copy.
        """
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"expected {self.num_envs} seeds, one per copy, got {len(seeds)}")
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is None:
            mask = np.ones(self.num_envs, dtype=np.bool_)
        elif not (isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.shape == (self.num_envs,)):
            raise ValueError(
                f"expected options['reset_mask'] as a bool array of shape ({self.num_envs},), got {mask!r}"
            )
        infos: list[dict[str, Any] | None] = [None] * self.num_envs
        for i in np.flatnonzero(mask):
            self._observations[i], infos[i] = self.envs[i].reset(seed=seeds[i], options=options or None)
            self._steps[i] = 0
            self._ended[i] = self._reset_next[i] = False
        return self._observations.copy(), batch_infos(infos)

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(
                f"expected actions of shape ({self.num_envs},), one per copy, got shape {actions.shape}"
            )
        n = self.single_action_space.n
        for action in actions:  # a bad batch raises before any copy moves
            as_action(action, n)

        rewards = np.zeros((self.num_envs, *self._reward_shape), dtype=np.float64)
        terminations = np.zeros(self.num_envs, dtype=np.bool_)
        truncations = np.zeros(self.num_envs, dtype=np.bool_)
        infos: list[dict[str, Any] | None] = [None] * self.num_envs
        waiting = self._waiting()

        completed: dict[int, str] = {}
        for i, env in enumerate(self.envs):
            if self._reset_next[i]:
                self._observations[i], infos[i] = env.reset()
                self._steps[i] = 0
                self._ended[i] = self._reset_next[i] = False
                continue
            if waiting[i]:  # DISABLED: idle until reset
                continue
            arch = env.apply_decision(actions[i])
            self._steps[i] += 1
            if arch is not None:
                completed[i] = arch
        evaluations: dict[int, dict[str, Any]] = {}
        # Copies of one fidelity are evaluated together (usually all of them: one group).
        groups: dict[int, list[int]] = {}
        for i in completed:
            groups.setdefault(id(self.envs[i].episode_runner), []).append(i)
        for members in groups.values():
            runner = self.envs[members[0]].episode_runner
            archs = [completed[i] for i in members]
            evaluations.update(zip(members, self.envs[0].evaluate_many(archs, self.executor, runner)))
        for i, env in enumerate(self.envs):
            if waiting[i]:
                continue
            obs, reward, terminated, truncated, info = env.finish_step(evaluations.get(i))
            if (
                not terminated
                and self.max_episode_steps is not None
                and self._steps[i] >= self.max_episode_steps
            ):
                truncated = True
            self._observations[i] = obs
            rewards[i], terminations[i], truncations[i], infos[i] = reward, terminated, truncated, info
        self._ended |= terminations | truncations
        if self.autoreset_mode is AutoresetMode.NEXT_STEP:
            self._reset_next = terminations | truncations
        return self._observations.copy(), rewards, terminations, truncations, batch_infos(infos)

    def _waiting(self) -> np.ndarray:
        """The copies that ignore their action on the next step: those about to be reset
        (``NEXT_STEP``), or those without an episode in progress (``DISABLED``)."""
        if self.autoreset_mode is AutoresetMode.DISABLED:
            return self._ended.copy()
        return self._reset_next.copy()

    def action_masks(self) -> np.ndarray:
        """The valid next actions of each copy, shape ``(num_envs, n)``. A copy that ignores
        its next action (about to be reset, or waiting) accepts every action."""
        return np.stack(
            [
                np.ones(self.single_action_space.n, dtype=bool) if waiting else env.action_masks()
                for env, waiting in zip(self.envs, self._waiting())
            ]
        )

    def render(self) -> tuple[str | None, ...] | None:
        """The ``"ansi"`` rendering of each copy, or ``None`` without a render mode."""
        if self.render_mode is None:
            return None
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        if self._owns_executor:
            self.executor.close()
        for env in getattr(self, "envs", []):
            env.close()

    def __repr__(self) -> str:
        name = self.spec.id if self.spec is not None else type(self.envs[0]).__name__
        return f"NASVectorEnv({name}, num_envs={self.num_envs}, executor={self.executor!r})"


# ---------------------------------------------------------------------------------------- infos
def _batch_values(values: Sequence[Any], present: np.ndarray) -> np.ndarray:
    given = [v for v, p in zip(values, present) if p]
    numeric = (bool, int, float, np.bool_, np.number)
    if given and all(isinstance(v, numeric) for v in given):
        array = np.zeros(len(values), dtype=np.result_type(*[np.asarray(v).dtype for v in given]))
    elif given and all(isinstance(v, np.ndarray) for v in given) and len({v.shape for v in given}) == 1:
        array = np.zeros((len(values), *given[0].shape), dtype=np.result_type(*given))
    else:
        array = np.full(len(values), None, dtype=object)
    for i in np.flatnonzero(present):
        array[i] = values[i]
    return array


def batch_infos(infos: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """One info dict per copy (``None`` for a copy without one) as Gymnasium's vector info: each
    key maps to an array over the copies and ``"_" + key`` to the mask of copies that have it;
    nested dicts are batched the same way."""
    keys: dict[str, None] = {}
    for info in infos:
        if info:
            keys.update(dict.fromkeys(info))
    batched: dict[str, Any] = {}
    for key in keys:
        present = np.array([info is not None and key in info for info in infos], dtype=np.bool_)
        values = [info[key] if info is not None and key in info else None for info in infos]
        if all(isinstance(v, Mapping) for v, p in zip(values, present) if p):
            batched[key] = batch_infos([v if p else None for v, p in zip(values, present)])
        else:
            batched[key] = _batch_values(values, present)
        batched[f"_{key}"] = present
    return batched


# ---------------------------------------------------------------------------------------- registry
def make_cifar_vector_env(num_envs: int = 1, **kwargs: Any) -> NASVectorEnv:
    """The ``vector_entry_point`` of ``NASCifar-v0``: ``NASVectorEnv("NASCifar-v0", ...)``."""
    return NASVectorEnv("NASCifar-v0", num_envs, **kwargs)


def make_nb201_vector_env(num_envs: int = 1, **kwargs: Any) -> NASVectorEnv:
    """The ``vector_entry_point`` of ``NASBench201-v0``: ``NASVectorEnv("NASBench201-v0", ...)``."""
    return NASVectorEnv("NASBench201-v0", num_envs, **kwargs)


def make_macro_vector_env(num_envs: int = 1, **kwargs: Any) -> NASVectorEnv:
    """The ``vector_entry_point`` of ``NASBenchMacro-v0``: ``NASVectorEnv("NASBenchMacro-v0", ...)``."""
    return NASVectorEnv("NASBenchMacro-v0", num_envs, **kwargs)


__all__ = [
    "NASVectorEnv",
    "batch_infos",
    "make_cifar_vector_env",
    "make_macro_vector_env",
    "make_nb201_vector_env",
]
