"""The search driver: the loops that run an :class:`~agents.base.Agent` on an env, and the
:class:`SearchRecorder` that turns finished episodes into records and decides when to stop.

:func:`search` picks the loop:

- an agent with ``drives_env`` (Stable-Baselines3's ``learn``) steps the env itself in
  :meth:`~agents.base.Agent.drive`, feeding the recorder;
- a vector env, for an agent with ``supports_batches``: the batch scheduler (below);
- otherwise the step loop: ``reset``, then ``act`` / ``step`` / ``observe`` until the episode ends.

**Batches.** Per batch: ``archs = propose(k)``, ``k`` = the copies (fewer for the last batch of
an ``episodes`` limit). Copy ``i`` plays ``archs[i]`` (action = choice index); with ``L`` the
longest architecture of the batch, copy ``i`` is reset ``L - len(archs[i])`` steps after the
first, so that every copy ends on step ``L``, where the vector env evaluates the batch together.
Then, in copy order, whatever order the evaluations finished in: the record of copy ``i`` is made,
``tell([archs[i]], [record])``, and the callback sees the record. So the history depends only on
the proposals and the evaluator, never on the executor. Proposals not yet told are the agent's
``pending`` (part of its checkpoint) and are played before new ones are proposed.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from agents.base import Agent
from agents.results import EpisodeRecord, SearchCallback, SearchResult
from agents.tools import space_of
from nas_gym.core.checks import check_int, check_number
from nas_gym.envs.vector import NASVectorEnv
from nas_gym.spaces import Arch, SearchSpace

_OPTIONAL_KEYS = ("test_accuracy", "error", "score", "fidelity", "budget")
"""Keys of the terminal info copied into the record only when the env provides them."""

MAX_EPISODES_WITHOUT_ARCH = 100
"""A search gives up after this many consecutive episodes that end without an evaluated
architecture (a time limit shorter than every episode, say) instead of looping forever."""


def _plain(value: Any) -> Any:
    """``value`` as a JSON-serialisable Python value (numpy scalars and arrays unwrapped)."""
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def add_reward(total: Any, reward: Any) -> Any:
    """``total + reward`` for scalar rewards (a float) and vector rewards (a float64 array)."""
    if isinstance(reward, np.ndarray) and reward.ndim > 0:
        return np.asarray(total, dtype=np.float64) + reward
    return total + float(reward)


# ---------------------------------------------------------------------------------------- recorder
class SearchRecorder:
    """Turns finished episodes into records and decides when a search stops.

    Every loop calls :meth:`finish_episode` once per episode end and stops when it returns
    ``False``; the batch scheduler splits it in two, :meth:`add_episode` then :meth:`notify`, so
    that the agent learns from the record in between. The recorder counts the agent's lifetime
    episodes (``agent.episodes_done``, part of its checkpoint).
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
        self.episodes = check_int(episodes, "episodes", minimum=1, none_ok=True)
        self.budget_seconds = check_number(
            budget_seconds, "budget_seconds", minimum=0, strict=True, none_ok=True
        )
        if callback is not None and not callable(callback):
            raise TypeError(f"expected callback as a callable taking a record, got {type(callback).__name__}")
        self.agent = agent
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

    def finish_episode(self, episode_return: Any, info: Mapping[str, Any], steps: int) -> bool:
        """Record an episode that ended with ``info`` (the info of its last step) and show the
        record to the callback; ``True`` while the search should go on. An episode whose info has
        no ``arch`` (cut short by a wrapper) is not a finished evaluation: it is not recorded."""
        record = self.add_episode(episode_return, info, steps)
        if record is None:
            return not self.done
        return self.notify(record)

    def add_episode(self, episode_return: Any, info: Mapping[str, Any], steps: int) -> EpisodeRecord | None:
        """The first half of :meth:`finish_episode`: append the record of the episode and return
        it (``None`` for an episode without ``arch``); the callback does not see it yet."""
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
            "reward": _plain(episode_return),
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


# ---------------------------------------------------------------------------------------- driver
def search(
    agent: Agent,
    env: gym.Env | VectorEnv,
    episodes: int | None = None,
    *,
    budget_seconds: float | None = None,
    callback: SearchCallback | None = None,
) -> SearchResult:
    """Run ``agent`` on ``env``; see :meth:`Agent.search <agents.base.Agent.search>`."""
    recorder = SearchRecorder(agent, episodes, budget_seconds, callback)
    if isinstance(env, VectorEnv):
        _search_batches(agent, env, recorder)
    elif agent.drives_env:
        agent.drive(env, recorder)
    else:
        _search_steps(agent, env, recorder)
    return recorder.result()


def require_single_env(agent: Agent, env: Any) -> None:
    """Raise ``TypeError`` when ``env`` is a vector env (agents that run one episode at a time)."""
    if isinstance(env, VectorEnv):
        raise TypeError(
            f"expected a single env for agent {agent.display_name!r} (it runs one episode at a "
            f"time), got a vector env ({type(env).__name__}): pass one env, e.g. gym.make(id)"
        )


def _search_steps(agent: Agent, env: gym.Env, recorder: SearchRecorder) -> None:
    agent.prepare(env)
    first_reset = agent.episodes_done == 0
    # Proposals left by a batch search (stopped inside a batch, or restored from a checkpoint
    # taken there) are played first, one at a time.
    while agent.pending and not recorder.done:
        arch = agent.pending[0]
        outcome = _play(env, arch, agent.seed if first_reset else None, agent.episode_options())
        first_reset = False
        if not _deliver(agent, recorder, space_of(env), arch, *outcome):
            return
    while not recorder.done:
        obs, info = env.reset(seed=agent.seed if first_reset else None, options=agent.episode_options())
        first_reset = False
        agent.on_episode_start(obs, info)
        episode_return: Any = 0.0
        steps = 0
        terminated = truncated = False
        while not (terminated or truncated):
            obs, reward, terminated, truncated, info = env.step(agent.act(obs, info))
            episode_return = add_reward(episode_return, reward)
            steps += 1
            agent.observe(obs, reward, terminated, truncated, info)
        recorder.finish_episode(episode_return, info, steps)


def require_batches(agent: Agent, env: VectorEnv) -> NASVectorEnv:
    """The :class:`~nas_gym.envs.vector.NASVectorEnv` under ``env``, after checking that
    ``agent`` and ``env`` can run a batch search; raises ``TypeError`` / ``ValueError`` saying why not."""
    if not agent.supports_batches:
        require_single_env(agent, env)
    vector = env.unwrapped
    if not isinstance(vector, NASVectorEnv):
        # Gymnasium's Sync/AsyncVectorEnv step every copy on every step: a copy cannot wait for
        # the others, so architectures of different lengths cannot finish together.
        raise TypeError(
            f"expected a NASVectorEnv (bare or in vector wrappers) for a batch search of agent "
            f"{agent.display_name!r}, got {type(vector).__name__}: build it with "
            "gym.make_vec(id, num_envs=N, vectorization_mode='vector_entry_point', autoreset_mode='Disabled')"
        )
    if vector.autoreset_mode is not AutoresetMode.DISABLED:
        raise ValueError(
            f"expected a vector env with autoreset_mode=AutoresetMode.DISABLED for a batch search of "
            f"agent {agent.display_name!r} (a copy waits until its architecture starts), got "
            f"{vector.autoreset_mode}: build it with NASVectorEnv(..., autoreset_mode='Disabled')"
        )
    return vector


def _search_batches(agent: Agent, env: VectorEnv, recorder: SearchRecorder) -> None:
    space = require_batches(agent, env).space
    agent.prepare(env)
    num_envs = int(env.num_envs)
    # The first reset of each copy in the agent's lifetime is seeded (copy i: seed + i).
    unseeded = np.full(num_envs, agent.episodes_done == 0 and agent.seed is not None, dtype=np.bool_)
    while not recorder.done:
        n = num_envs
        if recorder.episodes is not None:
            n = min(n, recorder.episodes - len(recorder.history))
        if not agent.pending:
            agent.pending = _check_proposals(agent, agent.propose(n), n, space)
        archs = agent.pending[:n]
        outcomes = _play_batch(agent, env, archs, unseeded)
        for arch, outcome in zip(archs, outcomes):
            if not _deliver(agent, recorder, space, arch, *outcome):
                break


def _check_proposals(agent: Agent, archs: Sequence[Arch], n: int, space: SearchSpace) -> list[Arch]:
    proposals = list(archs)
    if not 1 <= len(proposals) <= n:
        raise RuntimeError(
            f"expected propose({n}) of agent {agent.display_name!r} to return 1 to {n} "
            f"architectures, got {len(proposals)}"
        )
    return [space.validate(arch) for arch in proposals]


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


def _play_batch(
    agent: Agent, env: VectorEnv, archs: Sequence[Arch], unseeded: np.ndarray
) -> list[tuple[Any, dict[str, Any], int]]:
    """Play ``archs[i]`` on copy ``i`` so that all end on the same step; returns ``(episode
    return, info of its last step, steps)`` per architecture. Copies from ``len(archs)`` on wait
    (never reset). ``unseeded`` marks the copies whose next reset is their first (seeded)."""
    num_envs = int(env.num_envs)
    longest = max(len(arch) for arch in archs)
    start = [longest - len(arch) for arch in archs]
    returns: list[Any] = [0.0] * len(archs)
    steps = [0] * len(archs)
    ended: list[dict[str, Any] | None] = [None] * len(archs)
    for t in range(longest):
        mask = np.zeros(num_envs, dtype=np.bool_)
        mask[[i for i, s in enumerate(start) if s == t]] = True
        if mask.any():
            first = unseeded & mask
            seeds: list[int | None] | None = None
            if agent.seed is not None and first.any():
                seeds = [agent.seed + i if f else None for i, f in enumerate(first)]
            unseeded &= ~mask
            env.reset(seed=seeds, options={"reset_mask": mask, **(agent.episode_options() or {})})
        active = [start[i] <= t and ended[i] is None for i in range(len(archs))]
        actions = np.zeros(num_envs, dtype=np.int64)
        for i, arch in enumerate(archs):
            if active[i]:
                actions[i] = arch[t - start[i]]
        _, rewards, terminated, truncated, infos = env.step(actions)
        moved = infos.get("_action_mask", np.zeros(num_envs, dtype=np.bool_))
        for i in range(num_envs):
            if i < len(archs) and active[i]:
                returns[i] = add_reward(returns[i], rewards[i])
                steps[i] += 1
                if terminated[i] or truncated[i]:
                    ended[i] = copy_info(infos, i)
            elif terminated[i] or truncated[i] or moved[i]:
                raise RuntimeError(
                    f"expected copy {i} of the vector env to wait for its reset, got a step of an "
                    "episode in progress: pass a vector env whose copies have no episode in progress "
                    "(a new one, or one whose episodes have all ended)"
                )
    outcomes = []
    for i, info in enumerate(ended):
        if info is None:
            raise RuntimeError(
                f"expected copy {i} to end its episode with the last decision of {archs[i]}, got no "
                "end: does a wrapper change the actions?"
            )
        outcomes.append((returns[i], info, steps[i]))
    return outcomes


def _play(
    env: gym.Env, arch: Arch, seed: int | None, options: dict[str, Any] | None
) -> tuple[Any, dict[str, Any], int]:
    """Play ``arch`` on a single env: ``(episode return, info of its last step, steps)``."""
    _, info = env.reset(seed=seed, options=options)
    episode_return: Any = 0.0
    for steps, choice in enumerate(arch, start=1):
        _, reward, terminated, truncated, info = env.step(choice)
        episode_return = add_reward(episode_return, reward)
        if terminated or truncated:
            return episode_return, info, steps
    raise RuntimeError(
        f"expected the episode to end with the last decision of {arch}, got no end: does a wrapper "
        "change the actions?"
    )


def _deliver(
    agent: Agent,
    recorder: SearchRecorder,
    space: SearchSpace,
    arch: Arch,
    episode_return: Any,
    info: Mapping[str, Any],
    steps: int,
) -> bool:
    """Record the episode that played the pending proposal ``arch``, tell the agent, show the
    record to the callback; ``False`` when the callback stopped the search."""
    expected = space.format(arch)
    if "arch" in info and str(info["arch"]) != expected:
        raise RuntimeError(
            f"expected the env to evaluate the proposed architecture {expected!r}, got "
            f"{info['arch']!r}: does a wrapper change the actions?"
        )
    agent.pending.pop(0)
    record = recorder.add_episode(episode_return, info, steps)
    if record is None:  # cut short before the architecture was complete: not an evaluation
        return True
    agent.tell([arch], [record])
    recorder.notify(record)
    return not recorder.stopped_by_callback
