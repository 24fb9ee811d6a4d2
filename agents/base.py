"""The agent protocol: :class:`Agent` (act / observe / search, and propose / tell for batches),
:class:`SearchResult`, and the bookkeeping every search shares (:class:`SearchRecorder`).

An agent sees architectures and rewards only through ``env.reset`` and ``env.step``, so every
Gymnasium wrapper around the env (reward shaping, logging, recording) applies to it. It may read
``env.unwrapped.space`` (the :class:`~nas_gym.spaces.SearchSpace`) to size its models, and
``info["action_mask"]`` to know the valid actions of the current step.

Batch agents (``supports_batches = True``) also search a :class:`~nas_gym.vector.NASVectorEnv`:
they propose one architecture per copy and play them so that all copies finish on the same
step, where the vector env evaluates them together on its executor (worker processes, Ray).
"""

from __future__ import annotations

import math
import numbers
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from nas_gym.spaces import Arch, SearchSpace
from nas_gym.vector import NASVectorEnv

EpisodeRecord = dict[str, Any]
"""One finished episode of a search; see :class:`SearchResult` for its keys."""

SearchCallback = Callable[[EpisodeRecord], "bool | None"]
"""Called with each new record; returning ``False`` (not merely a falsy value) stops the search."""

_OPTIONAL_KEYS = ("test_accuracy", "error")
"""Keys of the terminal info copied into the record only when the env provides them."""

MAX_EPISODES_WITHOUT_ARCH = 100
"""A search gives up after this many consecutive episodes that end without an evaluated
architecture (a time limit shorter than every episode, say) instead of looping forever."""


def _plain(value: Any) -> Any:
    """``value`` as a JSON-serialisable Python scalar (numpy scalars and 0-d arrays unwrapped)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)


def check_seed(seed: Any) -> int | None:
    """``seed`` as a non-negative int or ``None``; raises for anything else."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"expected seed as a non-negative int or None, got {seed!r}")
    return int(seed)


def check_batch_size(batch_size: Any) -> int:
    """``batch_size`` as a positive int; raises for anything else."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"expected batch_size as a positive int, got {batch_size!r}")
    return int(batch_size)


def space_of(env: gym.Env | VectorEnv, *, vector: bool = False) -> SearchSpace:
    """The :class:`~nas_gym.spaces.SearchSpace` of a nas-gym env (``env.unwrapped.space``).

    A vector env is refused (``TypeError``) unless ``vector=True``: agents that run one episode
    at a time call it without, so that handing them a vector env fails clearly; batch agents
    pass ``vector=True`` in :meth:`Agent.prepare`, where a :class:`~nas_gym.vector.NASVectorEnv`
    gives the space of its copies.
    """
    if isinstance(env, VectorEnv) and not vector:
        raise TypeError(
            f"expected a single env, got a vector env ({type(env).__name__}): this agent runs one "
            "episode at a time; only agents with supports_batches = True search vector envs"
        )
    space = getattr(getattr(env, "unwrapped", None), "space", None)
    if not isinstance(space, SearchSpace):
        raise TypeError(
            "expected a nas-gym env (one whose env.unwrapped.space is a SearchSpace), got "
            f"{type(env).__name__}"
        )
    return space


def valid_actions(info: Mapping[str, Any]) -> np.ndarray:
    """The indices of the valid actions of the current step, read from ``info["action_mask"]``."""
    try:
        mask = np.asarray(info["action_mask"], dtype=bool)
    except KeyError:
        raise KeyError(
            "expected info['action_mask'] from env.reset/env.step (every nas-gym env provides it); "
            f"got info keys {sorted(info)}"
        ) from None
    actions = np.flatnonzero(mask)
    if actions.size == 0:
        raise ValueError("expected at least one valid action in info['action_mask'], got none")
    return actions


def copy_info(infos: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The info of copy ``index`` out of a vector env's info (Gymnasium's layout: each key an
    array over the copies, ``"_" + key`` the mask of the copies that have it; nested dicts
    batched the same way)."""
    info: dict[str, Any] = {}
    for key, values in infos.items():
        present = infos.get(f"_{key}")
        if present is None or not present[index]:
            continue  # a mask itself, or a key this copy does not have
        info[key] = copy_info(values, index) if isinstance(values, Mapping) else values[index]
    return info


@dataclass
class SearchResult:
    """What :meth:`Agent.search` returns.

    ``history`` holds one record (a plain dict) per finished episode, in order, with the keys

    - ``episode``: 0-based index of the episode in this ``search`` call;
    - ``arch``: canonical architecture string; ``reward``: the episode return as the agent saw
      it (through any wrapper; the objective for a bare env); ``accuracy``: validation accuracy;
    - ``status``, ``cached``, ``train_seconds``, ``params``, ``flops``, and ``test_accuracy`` /
      ``error`` when the env reports them;
    - ``cumulative_seconds``: running sum of ``train_seconds`` in this call (the simulated
      clock of tabular benchmarks; a cached evaluation counts its recorded cost again, as a
      re-query does in the NAS-Bench-201 protocol);
    - ``wall_seconds``: wall-clock time since the start of this call;
    - ``steps``: the number of env steps of the episode.

    A search resumed from a checkpoint (:meth:`Agent.load_state_dict`) is a new call: its
    records count from 0 again; whoever joins the histories adds the offsets.
    """

    history: list[EpisodeRecord] = field(default_factory=list)
    agent: str | None = None
    """The name of the agent that produced the history."""
    seed: int | None = None
    """The agent's seed."""

    @property
    def best(self) -> EpisodeRecord | None:
        """The record with the highest reward (the earliest one on ties), ``None`` when empty."""
        if not self.history:
            return None
        return max(self.history, key=lambda record: record["reward"])

    @property
    def simulated_seconds(self) -> float:
        """The sum of ``train_seconds`` over this history."""
        return float(sum(record["train_seconds"] for record in self.history))

    def __len__(self) -> int:
        return len(self.history)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``history``, ``best``, ``agent``, ``seed``)."""
        return {
            "agent": self.agent,
            "seed": self.seed,
            "history": [dict(record) for record in self.history],
            "best": None if self.best is None else dict(self.best),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchResult:
        """The inverse of :meth:`to_dict` (``best`` is recomputed from the history)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("history"), list):
            raise ValueError(
                f"expected a dict with a 'history' list (SearchResult.to_dict()), got {type(data).__name__}"
                + (f" with keys {sorted(data)}" if isinstance(data, Mapping) else "")
            )
        return cls(
            history=[dict(record) for record in data["history"]],
            agent=data.get("agent"),
            seed=data.get("seed"),
        )


class SearchRecorder:
    """Turns finished episodes into records and decides when a search stops.

    Shared by :meth:`Agent.search` and the agents that run their own loop (Stable-Baselines3):
    both call :meth:`finish_episode` once per episode end and stop when it returns ``False``.
    The batch loop splits it in two, :meth:`add_episode` then :meth:`notify`, so that the agent
    learns from the record in between.
    """

    def __init__(
        self,
        agent: Agent,
        episodes: int | None,
        budget_seconds: float | None,
        callback: SearchCallback | None,
    ):
        if episodes is None and budget_seconds is None:
            raise ValueError("expected episodes or budget_seconds (or both), got neither")
        if episodes is not None and (
            isinstance(episodes, bool) or not isinstance(episodes, numbers.Integral) or episodes < 1
        ):
            raise ValueError(f"expected episodes as a positive int, got {episodes!r}")
        if budget_seconds is not None and (
            isinstance(budget_seconds, bool)
            or not isinstance(budget_seconds, numbers.Real)
            or not math.isfinite(budget_seconds)
            or budget_seconds <= 0
        ):
            raise ValueError(f"expected budget_seconds as a positive number, got {budget_seconds!r}")
        if callback is not None and not callable(callback):
            raise TypeError(f"expected callback as a callable taking a record, got {type(callback).__name__}")
        self.agent = agent
        self.episodes = None if episodes is None else int(episodes)
        self.budget_seconds = None if budget_seconds is None else float(budget_seconds)
        self.callback = callback
        self.history: list[EpisodeRecord] = []
        self.spent_seconds = 0.0
        """``train_seconds`` spent in this search (what ``budget_seconds`` limits)."""
        self.stopped_by_callback = False
        self._start = time.perf_counter()
        self._episodes_without_arch = 0

    @property
    def done(self) -> bool:
        """Whether the episode count or the budget is reached, or the callback asked to stop."""
        return (
            self.stopped_by_callback
            or (self.episodes is not None and len(self.history) >= self.episodes)
            or (self.budget_seconds is not None and self.spent_seconds >= self.budget_seconds)
        )

    def finish_episode(self, episode_return: float, info: Mapping[str, Any], steps: int) -> bool:
        """Record an episode that ended with ``info`` (the info of its last step) and show the
        record to the callback; ``True`` while the search should go on.

        An episode whose info has no ``arch`` (cut short by a wrapper before the architecture
        was complete) is not a finished evaluation: it is not recorded.
        """
        record = self.add_episode(episode_return, info, steps)
        if record is None:
            return not self.done
        return self.notify(record)

    def add_episode(self, episode_return: float, info: Mapping[str, Any], steps: int) -> EpisodeRecord | None:
        """The first half of :meth:`finish_episode`: append the record of the episode to the
        history and return it (``None`` for an episode without ``arch``, which is not recorded);
        the callback does not see it yet."""
        if "arch" not in info:
            self._episodes_without_arch += 1
            if self._episodes_without_arch >= MAX_EPISODES_WITHOUT_ARCH:
                raise RuntimeError(
                    f"expected episodes to end with an evaluated architecture (info['arch']), got "
                    f"{self._episodes_without_arch} episodes in a row without one: does a wrapper "
                    "(TimeLimit) cut them short?"
                )
            return None
        self._episodes_without_arch = 0
        train_seconds = float(info.get("train_seconds") or 0.0)
        if self.budget_seconds is not None and not self.history and not train_seconds > 0:
            # A backend that records no training time (NAS-Bench-Macro) never uses up a time
            # budget: the search would not end.
            raise ValueError(
                f"expected the env to record training time (info['train_seconds'] > 0) for a time "
                f"budget, got {info.get('train_seconds')!r} for the first evaluation: limit the "
                "search by episodes instead"
            )
        self.spent_seconds += train_seconds
        record: EpisodeRecord = {
            "episode": len(self.history),
            "arch": str(info["arch"]),
            "reward": float(episode_return),
            "accuracy": _plain(info.get("accuracy")),
        }
        for key in _OPTIONAL_KEYS:
            if key in info:
                record[key] = _plain(info[key])
        record.update(
            status=_plain(info.get("status", "ok")),
            cached=bool(info.get("cached", False)),
            train_seconds=train_seconds,
            cumulative_seconds=self.spent_seconds,
            wall_seconds=time.perf_counter() - self._start,
            params=_plain(info.get("params")),
            flops=_plain(info.get("flops")),
            steps=int(steps),
        )
        self.agent.episodes_done += 1
        self.history.append(record)
        return record

    def notify(self, record: EpisodeRecord) -> bool:
        """The second half of :meth:`finish_episode`: show ``record`` (a copy) to the callback;
        ``True`` while the search should go on."""
        if self.callback is not None and self.callback(dict(record)) is False:
            self.stopped_by_callback = True
        return not self.done

    def result(self) -> SearchResult:
        return SearchResult(history=self.history, agent=self.agent.display_name, seed=self.agent.seed)


class Agent(ABC):
    """A search strategy. Subclasses implement :meth:`act`; :meth:`search` runs the loop.

    The loop of :meth:`search`, per episode: ``obs, info = env.reset()``, then
    :meth:`on_episode_start`, then ``action = act(obs, info)`` and ``env.step(action)`` until
    the episode terminates or truncates, calling :meth:`observe` with each transition. After
    the last transition the episode becomes a record of the :class:`SearchResult` and the
    ``callback`` sees it.

    A custom agent needs nothing but :meth:`act`::

        class Greedy(Agent):
            def act(self, obs, info):
                return int(np.flatnonzero(info["action_mask"])[0])

    **Batches.** An agent that can propose several complete architectures at once sets
    :attr:`supports_batches` and implements :meth:`propose` and :meth:`tell`. :meth:`search`
    then also takes a :class:`~nas_gym.vector.NASVectorEnv` (see there), whose copies evaluate
    together the architectures that finish on the same step. Per batch:

    1. ``archs = propose(k)``, ``k`` = the copies, or fewer for the last batch of an
       ``episodes`` limit (the other copies wait), so a search runs exactly ``episodes``.
    2. Copy ``i`` plays ``archs[i]`` (action = choice index). With ``L`` the longest
       architecture of the batch, copy ``i`` is reset (``reset_mask``) ``L - len(archs[i])``
       steps after the first, so that every copy ends on step ``L``: there the vector env
       evaluates the batch together, and the results come back matched to their copies. The
       episode return is the sum of the copy's rewards from ``env.step``, so vector wrappers
       apply; the architecture the env reports must be the proposed one.
    3. In copy order, whatever order the evaluations finished in: the record of copy ``i`` is
       made, ``tell([archs[i]], [record])``, then the callback sees the record.

    The records and their order depend only on the proposals and the evaluator, not on the
    executor: for a fixed seed serial, processes and Ray give the same history.

    Checkpoints stay exact inside a batch: the architectures proposed but not yet told are the
    agent's :attr:`pending` proposals, part of :meth:`state_dict`, and a search plays pending
    proposals before it proposes new ones. A state taken in the callback of the ``j``-th record
    of a batch reflects exactly the records so far, and an agent restored from it plays the rest
    of the batch, then continues as the uninterrupted search did. A callback that returns
    ``False`` inside a batch leaves the rest of the batch pending (evaluated, not recorded);
    a budget reached inside a batch lets the batch finish (its evaluations are spent).

    Args:
        seed: seeds :attr:`rng` (a ``numpy.random.Generator``) and the first ``env.reset`` of
            the agent's lifetime (for a vector env, the first reset of each copy: copy ``i``
            gets ``seed + i``). The same seed on the same deterministic env gives the same
            history.
    """

    name: ClassVar[str | None] = None
    """The registry name of a built-in agent (``None`` for custom ones)."""

    supports_batches: ClassVar[bool] = False
    """Whether :meth:`search` takes a vector env: the agent implements :meth:`propose` and
    :meth:`tell`."""

    def __init__(self, seed: int | None = None):
        self.seed = check_seed(seed)
        self.rng = np.random.default_rng(self.seed)
        """The agent's own random generator; agents use no global random state."""
        self.episodes_done = 0
        """Finished (recorded) episodes over the agent's lifetime, all searches and the
        checkpoint it was restored from included."""
        self.pending: list[Arch] = []
        """Architectures proposed (:meth:`propose`) and not yet told (:meth:`tell`), in the
        order they are played; a search plays them before it proposes new ones."""

    @property
    def display_name(self) -> str:
        """The registry name, or the class name of a custom agent."""
        return self.name or type(self).__name__

    @property
    def batch_size(self) -> int:
        """The number of architectures the agent is designed to evaluate at once: a natural
        ``num_envs`` for the vector env of a batch search (1 for agents without batches)."""
        return 1

    # ------------------------------------------------------------------ what subclasses implement
    @abstractmethod
    def act(self, obs: Any, info: dict[str, Any]) -> int:
        """The action for the current step, given the latest observation and info.

        ``info["action_mask"]`` marks the valid actions. A masked action is legal (the env maps
        action ``a`` to choice ``a % k``) but wastes the agent's control over the choice.
        """

    def observe(  # noqa: B027 - an optional hook: doing nothing is the default
        self,
        obs: Any,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: dict[str, Any],
    ) -> None:
        """Called after every ``env.step`` with its outcome; learning agents learn here."""

    def on_episode_start(self, obs: Any, info: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Called after every ``env.reset`` of :meth:`search`, before the first :meth:`act`."""

    def prepare(self, env: gym.Env | VectorEnv) -> None:  # noqa: B027 - optional hook
        """Called at the start of every :meth:`search`, before the first reset: build models
        from ``env.unwrapped.space`` here (use :func:`space_of`; ``vector=True`` in agents
        that support batches, whose ``env`` may be a vector env)."""

    def propose(self, n: int) -> list[Arch]:
        """Batch agents: between 1 and ``n`` complete architectures (choice tuples of the
        space) to evaluate together. Called only when no proposal is :attr:`pending`."""
        raise NotImplementedError(
            f"expected an agent that supports batches, got {self.display_name!r}, which does not "
            "implement propose()"
        )

    def tell(self, archs: Sequence[Arch], records: Sequence[EpisodeRecord]) -> None:  # noqa: B027 - optional
        """Batch agents: the results of proposed architectures, in the order they were
        proposed: ``records[i]`` (its ``reward`` is the episode return) is the record of
        ``archs[i]``, made just before. :meth:`search` tells one episode per call, so that a
        checkpoint taken in the callback reflects exactly the recorded episodes; agents that
        learn per batch keep results until they have enough (as ``reinforce`` does)."""

    def learning_metrics(self) -> dict[str, float]:
        """The latest figures of the agent's learning (losses, entropy, baseline), for logging
        (``nas-gym search --tensorboard``); empty for agents that do not learn."""
        return {}

    # ------------------------------------------------------------------ the loop
    def search(
        self,
        env: gym.Env | VectorEnv,
        episodes: int | None = None,
        *,
        budget_seconds: float | None = None,
        callback: SearchCallback | None = None,
    ) -> SearchResult:
        """Search ``env`` for ``episodes`` finished episodes and/or ``budget_seconds``.

        Args:
            env: a nas-gym env, bare or wrapped (``gym.make`` or any ``gym.Wrapper``); for an
                agent with :attr:`supports_batches`, also a
                :class:`~nas_gym.vector.NASVectorEnv` with ``autoreset_mode="Disabled"``, bare
                or in Gymnasium vector wrappers (see the class docstring).
            episodes: how many finished episodes this call runs.
            budget_seconds: stop once the ``train_seconds`` of this call's episodes add up to at
                least this (the simulated clock of tabular benchmarks; measured training time
                otherwise). The episode that crosses it is finished and counts (with a vector
                env, the rest of its batch too).
            callback: called with each new record (a copy), after the agent has observed the
                episode, so ``agent.state_dict()`` taken there is a consistent checkpoint;
                returning ``False`` stops the search after that episode.

        At least one of ``episodes`` and ``budget_seconds`` is required; with both, the first
        reached stops the search. Calling ``search`` again continues with the agent's state.
        """
        recorder = SearchRecorder(self, episodes, budget_seconds, callback)
        if isinstance(env, VectorEnv):
            self.require_batches(env)
            return self._search_batches(env, recorder)
        self.prepare(env)
        first_reset = self.episodes_done == 0
        # Proposals left by a batch search (stopped inside a batch, or restored from a
        # checkpoint taken there) are played first, one at a time.
        while self.pending and not recorder.done:
            arch = self.pending[0]
            outcome = self._play(env, arch, seed=self.seed if first_reset else None)
            first_reset = False
            if not self._deliver(recorder, space_of(env), arch, *outcome):
                break
        while not recorder.done:
            obs, info = env.reset(seed=self.seed if first_reset else None)
            first_reset = False
            self.on_episode_start(obs, info)
            episode_return, steps = 0.0, 0
            terminated = truncated = False
            while not (terminated or truncated):
                action = self.act(obs, info)
                obs, reward, terminated, truncated, info = env.step(action)
                reward = float(reward)
                episode_return += reward
                steps += 1
                self.observe(obs, reward, terminated, truncated, info)
            recorder.finish_episode(episode_return, info, steps)
        return recorder.result()

    def require_single_env(self, env: Any) -> None:
        """Raise ``TypeError`` when ``env`` is a vector env (for agents that drive one env
        themselves, such as the Stable-Baselines3 ones)."""
        if isinstance(env, VectorEnv):
            raise TypeError(
                f"expected a single env for agent {self.display_name!r} (it runs one episode at a "
                f"time), got a vector env ({type(env).__name__}): pass one env, e.g. gym.make(id)"
            )

    def require_batches(self, env: VectorEnv) -> NASVectorEnv:
        """The :class:`~nas_gym.vector.NASVectorEnv` under ``env``, after checking that this agent
        and ``env`` can run a batch search; raises ``TypeError`` / ``ValueError`` saying why not."""
        if not self.supports_batches:
            self.require_single_env(env)
        vector = env.unwrapped
        if not isinstance(vector, NASVectorEnv):
            # Gymnasium's Sync/AsyncVectorEnv step every copy on every step: a copy cannot wait
            # for the others, so architectures of different lengths cannot finish together.
            raise TypeError(
                f"expected a NASVectorEnv (bare or in vector wrappers) for a batch search of agent "
                f"{self.display_name!r}, got {type(vector).__name__}: build it with "
                "gym.make_vec(id, num_envs=N, vectorization_mode='vector_entry_point', "
                "autoreset_mode='Disabled')"
            )
        if vector.autoreset_mode is not AutoresetMode.DISABLED:
            raise ValueError(
                f"expected a vector env with autoreset_mode=AutoresetMode.DISABLED for a batch search "
                f"of agent {self.display_name!r} (a copy waits until its architecture starts), got "
                f"{vector.autoreset_mode}: build it with NASVectorEnv(..., autoreset_mode='Disabled') "
                "or gym.make_vec(id, num_envs=N, vectorization_mode='vector_entry_point', "
                "autoreset_mode='Disabled')"
            )
        return vector

    def _search_batches(self, env: VectorEnv, recorder: SearchRecorder) -> SearchResult:
        """The batch loop of :meth:`search` (see the class docstring)."""
        space = self.require_batches(env).space
        self.prepare(env)
        num_envs = int(env.num_envs)
        # The first reset of each copy in the agent's lifetime is seeded (copy i: seed + i).
        unseeded = np.full(num_envs, self.episodes_done == 0 and self.seed is not None, dtype=np.bool_)
        while not recorder.done:
            n = num_envs
            if recorder.episodes is not None:
                n = min(n, recorder.episodes - len(recorder.history))
            if not self.pending:
                self.pending = self._check_proposals(self.propose(n), n, space)
            archs = self.pending[:n]
            outcomes = self._play_batch(env, archs, unseeded)
            for arch, outcome in zip(archs, outcomes):
                if not self._deliver(recorder, space, arch, *outcome):
                    break
        return recorder.result()

    def _check_proposals(self, archs: Sequence[Arch], n: int, space: SearchSpace) -> list[Arch]:
        proposals = list(archs)
        if not 1 <= len(proposals) <= n:
            raise RuntimeError(
                f"expected propose({n}) of agent {self.display_name!r} to return 1 to {n} "
                f"architectures, got {len(proposals)}"
            )
        return [space.validate(arch) for arch in proposals]

    def _play_batch(
        self, env: VectorEnv, archs: Sequence[Arch], unseeded: np.ndarray
    ) -> list[tuple[float, dict[str, Any], int]]:
        """Play ``archs[i]`` on copy ``i`` so that all end on the same step; returns
        ``(episode return, info of its last step, steps)`` per architecture. Copies from
        ``len(archs)`` on wait (never reset). ``unseeded`` marks the copies whose next reset is
        their first (seeded); it is updated."""
        num_envs = int(env.num_envs)
        longest = max(len(arch) for arch in archs)
        start = [longest - len(arch) for arch in archs]
        returns = [0.0] * len(archs)
        steps = [0] * len(archs)
        ended: list[dict[str, Any] | None] = [None] * len(archs)
        for t in range(longest):
            mask = np.zeros(num_envs, dtype=np.bool_)
            mask[[i for i, s in enumerate(start) if s == t]] = True
            if mask.any():
                first = unseeded & mask
                seeds: list[int | None] | None = None
                if self.seed is not None and first.any():
                    seeds = [self.seed + i if f else None for i, f in enumerate(first)]
                unseeded &= ~mask
                env.reset(seed=seeds, options={"reset_mask": mask})
            active = [start[i] <= t and ended[i] is None for i in range(len(archs))]
            actions = np.zeros(num_envs, dtype=np.int64)
            for i, arch in enumerate(archs):
                if active[i]:
                    actions[i] = arch[t - start[i]]
            _, rewards, terminated, truncated, infos = env.step(actions)
            moved = infos.get("_action_mask", np.zeros(num_envs, dtype=np.bool_))
            for i in range(num_envs):
                if i < len(archs) and active[i]:
                    returns[i] += float(rewards[i])
                    steps[i] += 1
                    if terminated[i] or truncated[i]:
                        ended[i] = copy_info(infos, i)
                elif terminated[i] or truncated[i] or moved[i]:
                    raise RuntimeError(
                        f"expected copy {i} of the vector env to wait for its reset, got a step of an "
                        "episode in progress: pass a vector env whose copies have no episode in "
                        "progress (a new one, or one whose episodes have all ended)"
                    )
        outcomes = []
        for i, info in enumerate(ended):
            if info is None:
                raise RuntimeError(
                    f"expected copy {i} to end its episode with the last decision of "
                    f"{archs[i]}, got no end: does a wrapper change the actions?"
                )
            outcomes.append((returns[i], info, steps[i]))
        return outcomes

    @staticmethod
    def _play(env: gym.Env, arch: Arch, seed: int | None) -> tuple[float, dict[str, Any], int]:
        """Play ``arch`` on a single env: ``(episode return, info of its last step, steps)``."""
        _, info = env.reset(seed=seed)
        episode_return = 0.0
        for steps, choice in enumerate(arch, start=1):
            _, reward, terminated, truncated, info = env.step(choice)
            episode_return += float(reward)
            if terminated or truncated:
                return episode_return, info, steps
        raise RuntimeError(
            f"expected the episode to end with the last decision of {arch}, got no end: does a "
            "wrapper change the actions?"
        )

    def _deliver(
        self,
        recorder: SearchRecorder,
        space: SearchSpace,
        arch: Arch,
        episode_return: float,
        info: Mapping[str, Any],
        steps: int,
    ) -> bool:
        """Record the episode that played the pending proposal ``arch``, tell the agent, show
        the record to the callback; ``False`` when the callback stopped the search."""
        expected = space.format(arch)
        if "arch" in info and str(info["arch"]) != expected:
            raise RuntimeError(
                f"expected the env to evaluate the proposed architecture {expected!r}, got "
                f"{info['arch']!r}: does a wrapper change the actions?"
            )
        self.pending.pop(0)
        record = recorder.add_episode(episode_return, info, steps)
        if record is None:  # cut short before the architecture was complete: not an evaluation
            return True
        self.tell([arch], [record])
        recorder.notify(record)
        return not recorder.stopped_by_callback

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the search, as tensors and plain Python data only
        (``torch.load(path, weights_only=True)`` reads it back). Take it at an episode
        boundary, e.g. in the ``callback`` of :meth:`search`: it then reflects exactly the
        episodes recorded so far (``episodes_done``), with the rest of a batch ``pending``."""
        return {
            "agent": self.display_name,
            "seed": self.seed,
            "episodes_done": self.episodes_done,
            "rng": self.rng.bit_generator.state,
            "pending": [as_int_list(arch) for arch in self.pending],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (of an agent of the same kind)."""
        if not isinstance(state, Mapping) or state.get("agent") != self.display_name:
            found = state.get("agent") if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(f"expected a state of agent {self.display_name!r}, got one of {found!r}")
        self.seed = state["seed"]
        self.episodes_done = int(state["episodes_done"])
        self.rng.bit_generator.state = dict(state["rng"])
        # States saved before batches existed have no pending proposals.
        self.pending = [tuple(int(c) for c in arch) for arch in state.get("pending", [])]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed})"


def check_config_matches(state: Mapping[str, Any], expected: Mapping[str, Any], agent: str) -> None:
    """Raise when a checkpoint was taken with other hyperparameters than ``expected``."""
    found = dict(state.get("config", {}))
    for key, value in expected.items():
        if key in found and found[key] != value:
            raise ValueError(
                f"expected a {agent!r} state with {key}={value!r} (this agent's setting), got "
                f"{found[key]!r}: build the agent with the settings of the checkpoint"
            )


def as_int_list(values: Sequence[Any]) -> list[int]:
    """Plain ints (for states that ``torch.load(weights_only=True)`` reads)."""
    return [int(v) for v in values]
