"""The agent protocol: :class:`Agent` (act / observe / search), :class:`SearchResult`, and the
bookkeeping every search shares (:class:`SearchRecorder`).

An agent sees architectures and rewards only through ``env.reset`` and ``env.step``, so every
Gymnasium wrapper around the env (reward shaping, logging, recording) applies to it. It may read
``env.unwrapped.space`` (the :class:`~nas_gym.spaces.SearchSpace`) to size its models, and
``info["action_mask"]`` to know the valid actions of the current step.
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

from nas_gym.spaces import SearchSpace

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


def space_of(env: gym.Env) -> SearchSpace:
    """The :class:`~nas_gym.spaces.SearchSpace` of a nas-gym env (``env.unwrapped.space``)."""
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
        """Record an episode that ended with ``info`` (the info of its last step); ``True`` while
        the search should go on.

        An episode whose info has no ``arch`` (cut short by a wrapper before the architecture
        was complete) is not a finished evaluation: it is not recorded.
        """
        if "arch" not in info:
            self._episodes_without_arch += 1
            if self._episodes_without_arch >= MAX_EPISODES_WITHOUT_ARCH:
                raise RuntimeError(
                    f"expected episodes to end with an evaluated architecture (info['arch']), got "
                    f"{self._episodes_without_arch} episodes in a row without one: does a wrapper "
                    "(TimeLimit) cut them short?"
                )
            return not self.done
        self._episodes_without_arch = 0
        train_seconds = float(info.get("train_seconds") or 0.0)
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

    Args:
        seed: seeds :attr:`rng` (a ``numpy.random.Generator``) and the first ``env.reset`` of
            the agent's lifetime. The same seed on the same deterministic env gives the same
            history.
    """

    name: ClassVar[str | None] = None
    """The registry name of a built-in agent (``None`` for custom ones)."""

    def __init__(self, seed: int | None = None):
        self.seed = check_seed(seed)
        self.rng = np.random.default_rng(self.seed)
        """The agent's own random generator; agents use no global random state."""
        self.episodes_done = 0
        """Finished (recorded) episodes over the agent's lifetime, all searches and the
        checkpoint it was restored from included."""

    @property
    def display_name(self) -> str:
        """The registry name, or the class name of a custom agent."""
        return self.name or type(self).__name__

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

    def prepare(self, env: gym.Env) -> None:  # noqa: B027 - optional hook
        """Called at the start of every :meth:`search`, before the first reset: build models
        from ``env.unwrapped.space`` here (use :func:`space_of`)."""

    def learning_metrics(self) -> dict[str, float]:
        """The latest figures of the agent's learning (losses, entropy, baseline), for logging
        (``nas-gym search --tensorboard``); empty for agents that do not learn."""
        return {}

    # ------------------------------------------------------------------ the loop
    def search(
        self,
        env: gym.Env,
        episodes: int | None = None,
        *,
        budget_seconds: float | None = None,
        callback: SearchCallback | None = None,
    ) -> SearchResult:
        """Search ``env`` for ``episodes`` finished episodes and/or ``budget_seconds``.

        Args:
            env: a nas-gym env, bare or wrapped (``gym.make`` or any ``gym.Wrapper``).
            episodes: how many finished episodes this call runs.
            budget_seconds: stop once the ``train_seconds`` of this call's episodes add up to at
                least this (the simulated clock of tabular benchmarks; measured training time
                otherwise). The episode that crosses it is finished and counts.
            callback: called with each new record (a copy), after the agent has observed the
                episode, so ``agent.state_dict()`` taken there is a consistent checkpoint;
                returning ``False`` stops the search after that episode.

        At least one of ``episodes`` and ``budget_seconds`` is required; with both, the first
        reached stops the search. Calling ``search`` again continues with the agent's state.
        """
        recorder = SearchRecorder(self, episodes, budget_seconds, callback)
        self.prepare(env)
        first_reset = self.episodes_done == 0
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

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the search, as tensors and plain Python data only
        (``torch.load(path, weights_only=True)`` reads it back). Take it at an episode
        boundary, e.g. in the ``callback`` of :meth:`search`."""
        return {
            "agent": self.display_name,
            "seed": self.seed,
            "episodes_done": self.episodes_done,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (of an agent of the same kind)."""
        if not isinstance(state, Mapping) or state.get("agent") != self.display_name:
            found = state.get("agent") if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(f"expected a state of agent {self.display_name!r}, got one of {found!r}")
        self.seed = state["seed"]
        self.episodes_done = int(state["episodes_done"])
        self.rng.bit_generator.state = dict(state["rng"])

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
