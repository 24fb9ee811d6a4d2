"""Regularized (aging) evolution, Real et al. 2019, "Regularized Evolution for Image Classifier
Architecture Search" (AAAI), Algorithm 1, and its batched form (the paper's asynchronous workers)."""

from __future__ import annotations

import numbers
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
from gymnasium.vector import VectorEnv

from agents.base import (
    Agent,
    EpisodeRecord,
    as_int_list,
    check_batch_size,
    check_config_matches,
    space_of,
    valid_actions,
)
from nas_gym.spaces import Arch, SearchSpace


@dataclass(frozen=True)
class Member:
    """One architecture of the population."""

    arch: Arch
    fitness: float
    """The episode return the architecture earned."""
    born: int
    """The lifetime episode index at which it was evaluated (smaller = older)."""


class EvolutionAgent(Agent):
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
        batch_size: the architectures a batch search evaluates at once (:attr:`batch_size`,
            the natural ``num_envs`` of its vector env; default 1).
    """

    name: ClassVar[str] = "evolution"
    supports_batches: ClassVar[bool] = True

    def __init__(
        self, seed: int | None = None, population_size: int = 20, sample_size: int = 5, batch_size: int = 1
    ):
        super().__init__(seed)
        for label, value, low in (("population_size", population_size, 2), ("sample_size", sample_size, 1)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"expected {label} as an int >= {low}, got {value!r}")
        if sample_size > population_size:
            raise ValueError(
                f"expected sample_size <= population_size ({population_size}), got {sample_size}"
            )
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self._batch_size = check_batch_size(batch_size)
        self.population: deque[Member] = deque()
        """The living architectures, oldest first."""
        self.space: SearchSpace | None = None
        self._proposal: Arch = ()
        self._step = 0
        self._return = 0.0

    @property
    def batch_size(self) -> int:
        return self._batch_size

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
        for j, (arch, record) in enumerate(zip(archs, records)):
            # The records were just made: the last len(archs) episodes of the agent's lifetime.
            self._add(tuple(arch), float(record["reward"]), self.episodes_done - len(archs) + j)

    def _add(self, arch: Arch, fitness: float, born: int) -> None:
        self.population.append(Member(arch, fitness, born))
        if len(self.population) > self.population_size:
            self.population.popleft()

    # ------------------------------------------------------------------ agent protocol
    def prepare(self, env: gym.Env | VectorEnv) -> None:
        self.space = space_of(env, vector=True)

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
        # The episode is recorded after observe(): episodes_done is still its index.
        self._add(self.space.parse(info["arch"]), self._return, self.episodes_done)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "config": {"population_size": self.population_size, "sample_size": self.sample_size},
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
        self.population = deque(
            Member(tuple(int(c) for c in m["arch"]), float(m["fitness"]), int(m["born"]))
            for m in state["population"]
        )

    def __repr__(self) -> str:
        extra = "" if self._batch_size == 1 else f", batch_size={self._batch_size}"
        return (
            f"EvolutionAgent(seed={self.seed}, population_size={self.population_size}, "
            f"sample_size={self.sample_size}{extra})"
        )
