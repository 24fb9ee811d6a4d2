"""Pareto-based aging evolution: regularized evolution (Real et al. 2019) whose tournaments compare
vector rewards by non-domination rank and crowding distance (Deb et al. 2002, NSGA-II)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from agents.evolution import EvolutionAgent
from agents.loop import add_reward
from agents.results import EpisodeRecord
from agents.tools import as_int_list, check_config_matches
from nas_gym.core.checks import check_int
from nas_gym.evaluation.pareto import crowding_distance, non_dominated_ranks
from nas_gym.spaces import Arch


@dataclass(frozen=True)
class VectorMember:
    """One architecture of the population, with the vector reward it earned."""

    arch: Arch
    fitness: tuple[float, ...]
    """The episode return, one component per objective (all maximised); one for a scalar reward."""
    born: int
    """Its place in the order of arrival in the population (smaller = older)."""


def as_vector(reward: Any) -> tuple[float, ...]:
    """A reward (a vector, a list of components or a scalar) as a tuple of floats."""
    return tuple(float(v) for v in np.atleast_1d(np.asarray(reward, dtype=np.float64)))


def pareto_fitness(fitness: Sequence[Sequence[float]]) -> list[tuple[int, float]]:
    """The tournament key of each member: ``(-rank, crowding distance)``, larger is better. The
    rank is the member's non-domination rank in the population (0 = on its front) and the crowding
    distance is measured among the members of that rank (``inf`` at the ends of each objective)."""
    points = np.asarray(fitness, dtype=np.float64)
    ranks = non_dominated_ranks(points)
    crowding = np.zeros(len(points))
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        crowding[members] = crowding_distance(points[members])
    return [(-int(r), float(c)) for r, c in zip(ranks, crowding)]


class MOEvolutionAgent(EvolutionAgent):
    """Aging evolution on vector rewards (``objectives=``): tournament selection by Pareto rank
    and crowding distance, one-decision mutation, the oldest dies.

    It is :class:`~agents.evolution.EvolutionAgent` with another tournament. The first
    ``population_size`` episodes propose random architectures. Each later proposal draws
    ``sample_size`` members uniformly with replacement and mutates the best of them
    (``space.mutate``): the one of lowest non-domination rank within the current population, and
    among those of equal rank the one of largest crowding distance in that rank, which favours the
    ends and the sparse parts of the population's front; the first drawn wins remaining ties.
    The evaluated child joins the population and the oldest member leaves it, whatever its rank.
    A child that was evaluated before is mutated again, up to ``max_retries`` times: on a table of
    15,625 cells about a fifth of plain aging evolution's children of a 500-episode search are
    repeats, which teach nothing and cost an evaluation.

    The search's result is the front of everything it evaluated (``nas-gym search --objectives``
    writes it), not the population. Batches (vector envs) work as in ``EvolutionAgent``. On a
    scalar reward the rank is the order of the rewards and the agent is aging evolution with
    ties broken towards the extremes.

    The defaults were chosen on NAS-Bench-201, accuracy against params, seeds 100-109, 500
    episodes, mean share of the exact front's hypervolume (:mod:`nas_gym.experiments.fronts`):
    P=30, S=10 98.4%; P=40, S=10 98.7%; P=50, S=5 98.3%; P=50, S=10 98.6%; P=50, S=20 98.1%;
    P=64, S=16 98.7%; P=100, S=10 98.1% (differences within the noise of 10 seeds).

    Args:
        seed: seeds sampling, tournaments and mutations.
        population_size: ``P``, the number of living architectures (default 50: a front needs
            more living members than the one best architecture of ``evolution``'s 20).
        sample_size: ``S``, the tournament size (default 10).
        num_envs: the copies of the vector env a batch search uses by default.
        max_retries: how many more mutations a child that was evaluated before gets (0: none).
    """

    name: ClassVar[str] = "mo-evolution"

    def __init__(
        self,
        seed: int | None = None,
        population_size: int = 50,
        sample_size: int = 10,
        num_envs: int = 1,
        max_retries: int = 10,
    ):
        super().__init__(seed, population_size=population_size, sample_size=sample_size, num_envs=num_envs)
        self.max_retries = check_int(max_retries, "max_retries", minimum=0)
        self.population: deque[VectorMember] = deque()
        """The living architectures, oldest first."""
        self.seen: set[Arch] = set()
        """Every architecture that joined the population: children avoid them."""
        self._vector_return: Any = 0.0

    # ------------------------------------------------------------------ evolution
    def propose(self, n: int) -> list[Arch]:
        """The next ``n`` architectures: random while the population fills, else mutations of the
        winners of ``n`` tournaments (Pareto rank, then crowding) over the current population."""
        if self.space is None:
            raise RuntimeError("expected search(env) before propose(): the agent has no search space yet")
        keys = pareto_fitness([m.fitness for m in self.population]) if self.population else []
        archs: list[Arch] = []
        randoms = 0
        for _ in range(n):
            if not self.population or len(self.population) + randoms < self.population_size:
                archs.append(self.space.sample(self.rng))
                randoms += 1
                continue
            picks = self.rng.integers(len(self.population), size=self.sample_size).tolist()
            # max() keeps the first of equals: among equally fit contenders, the first drawn wins.
            winner = max(picks, key=lambda i: keys[i])
            archs.append(self._new_child(self.population[winner].arch, archs))
        return archs

    def _new_child(self, parent: Arch, batch: Sequence[Arch]) -> Arch:
        """A mutation of ``parent`` that was not evaluated before (nor proposed in ``batch``), if
        one of ``max_retries + 1`` mutations is; else the last one drawn."""
        assert self.space is not None  # propose checked it
        for _ in range(self.max_retries + 1):
            child = self.space.mutate(parent, self.rng)
            if child not in self.seen and child not in batch:
                break
        return child

    def tell(self, archs: Sequence[Arch], records: Sequence[EpisodeRecord]) -> None:
        """Add the evaluated architectures to the population (fitness: the record's vector reward),
        in order, the oldest members leaving."""
        if len(archs) != len(records):
            raise ValueError(f"expected one record per architecture ({len(archs)}), got {len(records)}")
        for arch, record in zip(archs, records):
            self._add_vector(tuple(arch), as_vector(record["reward"]))

    def _add_vector(self, arch: Arch, fitness: tuple[float, ...]) -> None:
        if self.population and len(fitness) != len(self.population[0].fitness):
            raise ValueError(
                f"expected rewards of {len(self.population[0].fitness)} objectives (the population's), "
                f"got {len(fitness)}: search one env with one objectives= setting"
            )
        self.population.append(VectorMember(arch, fitness, self.births))
        self.seen.add(arch)
        self.births += 1
        if len(self.population) > self.population_size:
            self.population.popleft()

    # ------------------------------------------------------------------ agent protocol
    def on_episode_start(self, obs: Any, info: dict[str, Any]) -> None:
        super().on_episode_start(obs, info)
        self._vector_return = 0.0

    def observe(self, obs: Any, reward: Any, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        self._vector_return = add_reward(self._vector_return, reward)
        if not (terminated or truncated) or "arch" not in info:
            return
        assert self.space is not None  # prepare() ran
        self._add_vector(self.space.parse(info["arch"]), as_vector(self._vector_return))

    # ------------------------------------------------------------------ checkpoints
    def _config(self) -> dict[str, Any]:
        return {
            "population_size": self.population_size,
            "sample_size": self.sample_size,
            "max_retries": self.max_retries,
        }

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["config"] = self._config()
        state["population"] = [
            {"arch": as_int_list(m.arch), "fitness": list(m.fitness), "born": m.born} for m in self.population
        ]
        state["seen"] = sorted(as_int_list(arch) for arch in self.seen)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if isinstance(state, Mapping):
            check_config_matches(state, self._config(), self.display_name)
        # The base checks and restores seed, generator, episodes and pending proposals; the
        # population is read here, as vectors.
        super(EvolutionAgent, self).load_state_dict(state)
        self.population = deque(
            VectorMember(tuple(int(c) for c in m["arch"]), as_vector(m["fitness"]), int(m["born"]))
            for m in state["population"]
        )
        self.births = int(state["births"])
        self.seen = {tuple(int(c) for c in arch) for arch in state["seen"]}

    def __repr__(self) -> str:
        text = super().__repr__().replace("EvolutionAgent(", "MOEvolutionAgent(", 1)
        return text if self.max_retries == 10 else f"{text[:-1]}, max_retries={self.max_retries})"
