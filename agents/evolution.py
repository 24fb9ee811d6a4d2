"""Regularized (aging) evolution, Real et al. 2019, "Regularized Evolution for Image Classifier
Architecture Search" (AAAI), Algorithm 1, and its batched form (the paper's asynchronous workers)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
from gymnasium.vector import VectorEnv

from agents.base import Agent
from agents.results import EpisodeRecord
from agents.tools import as_int_list, check_config_matches, space_of, valid_actions
from agents.warm_start import WarmStartable, WarmStartLike
from nas_gym.core.checks import check_int
from nas_gym.spaces import Arch, SearchSpace


@dataclass(frozen=True)
class Member:
    """One architecture of the population."""

    arch: Arch
    fitness: float
    """The episode return the architecture earned."""
    born: int
    """Its place in the order of arrival in the population (smaller = older)."""


class EvolutionAgent(WarmStartable, Agent):
    """Regularized evolution: tournament selection, one-decision mutation, the oldest dies.

    The first ``population_size`` episodes propose random architectures
    (:meth:`SearchSpace.sample <nas_gym.spaces.SearchSpace.sample>`). After that each episode
    samples ``sample_size`` members of the population uniformly with replacement (as in the
    paper), takes the fittest as parent and proposes ``space.mutate(parent)``: a different,
    valid architecture that changes exactly one decision (decisions that a larger depth
    creates are sampled). When the child has been evaluated it joins the population and the
    oldest member leaves it, whatever its fitness: the ageing that regularizes the search.

    The agent drives the env by emitting the proposed architecture's choice indices as
    actions, so the env (and its wrappers) evaluates the child; the population stores the
    architecture the env reports in ``info["arch"]`` with the episode return as fitness.

    **Batches** (a vector env, see :class:`~agents.Agent`): the form of the paper's
    asynchronous workers, ``n`` of them evaluating at once. :meth:`propose` fills the ``n``
    slots in order: random architectures while the population, counting the random ones of this
    batch, is not full (or is empty); then children, each of a tournament of its own over the
    population as it is when the batch starts (the children of a batch do not see each other).
    The results join the population in copy order, the oldest leaving, so it keeps ``P``
    members. With ``n = 1`` this is the sequential algorithm above, draw for draw.

    Args:
        seed: seeds sampling, tournaments and mutations.
        population_size: ``P``, the number of living architectures (default 20). Real et al.
            use 100 with budgets of 20,000 models; a few hundred episodes leave a population of
            100 barely past its random start, while 20 gives more than ten generations.
        sample_size: ``S``, the tournament size (default 5). Larger is greedier; ``S = 1``
            is a random walk over mutations.
        num_envs: the copies of the vector env a batch search uses by default (the architectures
            evaluated at once; default 1).
        warm_start: ``None`` (default: a cold start), ``True`` or a
            :class:`~agents.warm_start.WarmStart` (or a dict of its fields): first screen random
            architectures by a zero-cost fidelity of the env, then evaluate the best-scored ones;
            their results are the first generation (the rest of it, if any, random). Select the
            architecture of such a search with :func:`agents.hyperband.select_record`.
    """

    name: ClassVar[str] = "evolution"
    supports_batches: ClassVar[bool] = True

    def __init__(
        self,
        seed: int | None = None,
        population_size: int = 20,
        sample_size: int = 5,
        num_envs: int = 1,
        warm_start: WarmStartLike = None,
    ):
        super().__init__(seed)
        self.init_warm_start(warm_start)
        check_int(population_size, "population_size", minimum=2)
        check_int(sample_size, "sample_size", minimum=1)
        if sample_size > population_size:
            raise ValueError(
                f"expected sample_size <= population_size ({population_size}), got {sample_size}"
            )
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self._num_envs = check_int(num_envs, "num_envs", minimum=1)
        self.population: deque[Member] = deque()
        """The living architectures, oldest first."""
        self.space: SearchSpace | None = None
        self.births = 0
        """Architectures that joined the population over the agent's lifetime (their ages)."""
        self._proposal: Arch = ()
        self._step = 0
        self._return = 0.0

    @property
    def num_envs(self) -> int:
        return self._num_envs

    # ------------------------------------------------------------------ evolution
    def propose(self, n: int) -> list[Arch]:
        """The next ``n`` architectures to evaluate: random while the population fills, else
        mutations of the winners of ``n`` tournaments over the current population."""
        if self.space is None:
            raise RuntimeError("expected search(env) before propose(): the agent has no search space yet")
        archs: list[Arch] = []
        randoms = 0
        for _ in range(n):
            if not self.population or len(self.population) + randoms < self.population_size:
                archs.append(self.space.sample(self.rng))
                randoms += 1
                continue
            picks = self.rng.integers(len(self.population), size=self.sample_size)
            # max() keeps the first of equals: among equally fit contenders, the first drawn wins.
            parent = max((self.population[int(i)] for i in picks), key=lambda member: member.fitness)
            archs.append(self.space.mutate(parent.arch, self.rng))
        return archs

    def tell(self, archs: Sequence[Arch], records: Sequence[EpisodeRecord]) -> None:
        """Add the evaluated architectures to the population (fitness: the record's reward), in
        order, the oldest members leaving."""
        if len(archs) != len(records):
            raise ValueError(f"expected one record per architecture ({len(archs)}), got {len(records)}")
        archs, records = self.screened(archs, records)
        for arch, record in zip(archs, records):
            self._add(tuple(arch), float(record["reward"]))

    def _add(self, arch: Arch, fitness: float) -> None:
        self.population.append(Member(arch, fitness, self.births))
        self.births += 1
        if len(self.population) > self.population_size:
            self.population.popleft()

    # ------------------------------------------------------------------ agent protocol
    def prepare(self, env: gym.Env | VectorEnv) -> None:
        self.space = space_of(env, vector=True)
        self.queue_screening()

    def on_episode_start(self, obs: Any, info: dict[str, Any]) -> None:
        (self._proposal,) = self.propose(1)
        self._step = 0
        self._return = 0.0

    def act(self, obs: Any, info: dict[str, Any]) -> int:
        if self._step < len(self._proposal):
            action = self._proposal[self._step]
        else:
            # Only reachable when a wrapper changed the actions and so the architecture's
            # length; finish the episode with valid random choices.
            actions = valid_actions(info)
            action = int(actions[self.rng.integers(actions.size)])
        self._step += 1
        return int(action)

    def observe(
        self, obs: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]
    ) -> None:
        self._return += float(reward)
        if not (terminated or truncated) or "arch" not in info:
            return
        assert self.space is not None  # prepare() ran
        self._add(self.space.parse(info["arch"]), self._return)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "config": {"population_size": self.population_size, "sample_size": self.sample_size},
            **self.warm_start_state(),
            "births": self.births,
            "population": [
                {"arch": as_int_list(m.arch), "fitness": m.fitness, "born": m.born} for m in self.population
            ],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if isinstance(state, Mapping):
            check_config_matches(
                state,
                {"population_size": self.population_size, "sample_size": self.sample_size},
                self.display_name,
            )
        super().load_state_dict(state)
        self.load_warm_start(state)
        self.population = deque(
            Member(tuple(int(c) for c in m["arch"]), float(m["fitness"]), int(m["born"]))
            for m in state["population"]
        )
        # States saved before the counter existed: ages were episode indices.
        self.births = int(state.get("births", state["episodes_done"]))

    def __repr__(self) -> str:
        extra = "" if self._num_envs == 1 else f", num_envs={self._num_envs}"
        extra += "" if self.warm_start is None else f", warm_start={self.warm_start}"
        return (
            f"EvolutionAgent(seed={self.seed}, population_size={self.population_size}, "
            f"sample_size={self.sample_size}{extra})"
        )
