"""The agent protocol: :class:`Agent`.

An agent sees architectures and rewards only through ``env.reset`` and ``env.step``, so every
Gymnasium wrapper around the env (reward shaping, logging, recording) applies to it. It may read
``env.unwrapped.space`` (the :class:`~nas_gym.spaces.SearchSpace`) to size its models, and
``info["action_mask"]`` to know the valid actions of the current step. The loops that run an
agent on an env are in :mod:`agents.loop`, its records in :mod:`agents.results`, the helpers
that read an env in :mod:`agents.tools`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

from agents.results import EpisodeRecord, SearchCallback, SearchResult
from agents.tools import as_int_list
from nas_gym.core.checks import check_int
from nas_gym.spaces import Arch

if TYPE_CHECKING:
    from agents.loop import SearchRecorder


# ---------------------------------------------------------------------------------------- agent
class Agent(ABC):
    """A search strategy. Subclasses implement :meth:`act`; :meth:`search` runs the loop
    (:func:`agents.loop.search`).

    A custom agent needs nothing but :meth:`act`::

        class Greedy(Agent):
            def act(self, obs, info):
                return int(np.flatnonzero(info["action_mask"])[0])

    The loop, per episode: ``obs, info = env.reset()``, :meth:`on_episode_start`, then ``action =
    act(obs, info)`` and ``env.step(action)`` until the episode ends, calling :meth:`observe` with
    each transition; then the episode becomes a record of the :class:`SearchResult` and the
    ``callback`` sees it.

    **Proposals.** An agent that can name several complete architectures at once sets
    :attr:`supports_batches` and implements :meth:`propose` and :meth:`tell`; :meth:`search` then
    also takes a :class:`~nas_gym.envs.vector.NASVectorEnv`, whose copies evaluate together the
    architectures that finish on the same step (see :mod:`agents.loop`).

    **Own drivers.** An agent that steps the env itself (the Stable-Baselines3 ones, whose
    ``learn`` does) sets :attr:`drives_env` and implements :meth:`drive`.

    Args:
        seed: seeds :attr:`rng` (a ``numpy.random.Generator``) and the first ``env.reset`` of the
            agent's lifetime (for a vector env, the first reset of each copy: copy ``i`` gets
            ``seed + i``). The same seed on the same deterministic env gives the same history.
    """

    name: ClassVar[str | None] = None
    """The registry name of a built-in agent (``None`` for custom ones)."""
    supports_batches: ClassVar[bool] = False
    """Whether :meth:`search` takes a vector env: the agent implements :meth:`propose` and :meth:`tell`."""
    drives_env: ClassVar[bool] = False
    """Whether the agent steps the env itself in :meth:`drive` instead of :meth:`act`."""

    def __init__(self, seed: int | None = None):
        self.seed = check_int(seed, "seed", minimum=0, none_ok=True)
        self.rng = np.random.default_rng(self.seed)
        """The agent's own random generator; agents use no global random state."""
        self.episodes_done = 0
        """Finished (recorded) episodes over the agent's lifetime, counted by the loops of
        :mod:`agents.loop`; the checkpoint it was restored from included."""
        self.pending: list[Arch] = []
        """Architectures proposed (:meth:`propose`) and not yet told (:meth:`tell`), in the order
        they are played; a search plays them before it proposes new ones."""

    @property
    def display_name(self) -> str:
        """The registry name, or the class name of a custom agent."""
        return self.name or type(self).__name__

    @property
    def num_envs(self) -> int:
        """The copies of a vector env the agent is designed to search at once (1 for agents
        without proposals)."""
        return 1

    # ------------------------------------------------------------------ what subclasses implement
    @abstractmethod
    def act(self, obs: Any, info: dict[str, Any]) -> int:
        """The action for the current step, given the latest observation and info.

        ``info["action_mask"]`` marks the valid actions. A masked action is legal (the env maps
        action ``a`` to choice ``a % k``) but wastes the agent's control over the choice.
        """

    def observe(  # noqa: B027 - an optional hook: doing nothing is the default
        self, obs: Any, reward: Any, terminated: bool, truncated: bool, info: dict[str, Any]
    ) -> None:
        """Called after every ``env.step`` with its outcome; learning agents learn here."""

    def on_episode_start(self, obs: Any, info: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Called after every ``env.reset`` of :meth:`search`, before the first :meth:`act`."""

    def prepare(self, env: gym.Env | VectorEnv) -> None:  # noqa: B027 - optional hook
        """Called at the start of every :meth:`search`, before the first reset: build models from
        ``env.unwrapped.space`` here (:func:`space_of`; ``vector=True`` in agents that support
        proposals, whose ``env`` may be a vector env)."""

    def episode_options(self) -> dict[str, Any] | None:
        """The ``options`` of the next ``env.reset`` (``{"fidelity": F}`` for a multi-fidelity
        agent); ``None``: none."""
        return None

    def propose(self, n: int) -> list[Arch]:
        """Between 1 and ``n`` complete architectures (choice tuples of the space) to evaluate
        together. Called only when no proposal is :attr:`pending`."""
        raise NotImplementedError(
            f"expected an agent that supports batches, got {self.display_name!r}, which does not "
            "implement propose()"
        )

    def tell(self, archs: Sequence[Arch], records: Sequence[EpisodeRecord]) -> None:  # noqa: B027 - optional
        """The results of proposed architectures, in the order they were proposed: ``records[i]``
        (its ``reward`` is the episode return) is the record of ``archs[i]``, made just before.
        The loop tells one episode per call, so that a checkpoint taken in the callback reflects
        exactly the recorded episodes."""

    def drive(self, env: gym.Env, recorder: SearchRecorder) -> None:
        """Agents with :attr:`drives_env`: step ``env`` until ``recorder.done``, handing each
        finished episode to ``recorder.finish_episode`` (which returns ``False`` to stop)."""
        raise NotImplementedError(f"expected an agent that drives the env, got {self.display_name!r}")

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
            env: a nas-gym env, bare or wrapped; for an agent with :attr:`supports_batches`, also
                a :class:`~nas_gym.envs.vector.NASVectorEnv` with ``autoreset_mode="Disabled"``.
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
        from agents.loop import search

        return search(self, env, episodes, budget_seconds=budget_seconds, callback=callback)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the search, as tensors and plain Python data only
        (``torch.load(path, weights_only=True)`` reads it back). Take it at an episode boundary,
        e.g. in the ``callback`` of :meth:`search`."""
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
        self.pending = [tuple(int(c) for c in arch) for arch in state.get("pending", [])]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed})"
