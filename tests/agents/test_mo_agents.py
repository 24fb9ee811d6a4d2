"""The agents of vector rewards, ``mo-evolution`` and ``mo-reinforce`` (and ``random`` on vector
rewards): on a synthetic accuracy-against-cost landscape they cover its front better than random
search, learn the scalarised objective, give the same history on a single env and a vector env,
and resume exactly from a checkpoint. Instant evaluators, tiny budgets."""

from __future__ import annotations

import hashlib
import io
import itertools

import numpy as np
import pytest
import torch

from agents import list_agents, make_agent
from agents.mo_evolution import MOEvolutionAgent, pareto_fitness
from agents.mo_reinforce import MOReinforceAgent
from nas_gym.envs import NASEnv
from nas_gym.envs.vector import NASVectorEnv
from nas_gym.evaluation.pareto import hypervolume, non_dominated, normalise
from nas_gym.spaces import NB201Space

OBJECTIVES = ("accuracy", "params")


class TradeOff:
    """A picklable accuracy-against-params landscape on the NB201 cell: accuracy rises with the
    decisions equal to ``target`` (plus fixed noise per cell), params with the sum of the
    operation codes, so that accurate cells cost more unless they use small codes."""

    fingerprint = "trade-off/v1"

    def __init__(self, target: tuple[int, ...] = (4, 3, 1, 2, 4, 0), agree: bool = False):
        self.space = NB201Space()
        self.target = target
        self.agree = agree

    def __call__(self, arch: str) -> dict[str, float]:
        codes = self.space.parse(arch)
        share = float(np.mean([a == b for a, b in zip(codes, self.target)]))
        unit = int.from_bytes(hashlib.sha256(arch.encode()).digest()[:4], "little") / 2**32
        accuracy = float(np.clip(0.1 + 0.8 * share + 0.04 * (unit - 0.5), 0.0, 1.0))
        # agree: the accurate cells are also the cheap ones (no trade-off to make).
        params = (1.0 + (6 - 6 * share if self.agree else sum(codes))) * 1e5
        return {"accuracy": accuracy, "params": int(params), "train_seconds": 1.0}


def env_of(evaluator: TradeOff | None = None, vector: bool = False):
    evaluator = evaluator or TradeOff()
    if vector:
        return NASVectorEnv(
            "NASBench201-v0",
            num_envs=1,
            autoreset_mode="Disabled",
            evaluator=evaluator,
            objectives=OBJECTIVES,
        )
    return NASEnv("nb201", evaluator=evaluator, objectives=OBJECTIVES)


@pytest.fixture(scope="module")
def exact_front() -> np.ndarray:
    env = env_of()
    points = np.array([env.reward_of(env.evaluate(a)) for a in itertools.product(range(5), repeat=6)])
    return np.unique(points[non_dominated(points)], axis=0)


def hypervolume_share(rewards: np.ndarray, front: np.ndarray) -> float:
    ideal, nadir = front.max(0), front.min(0)
    reference = np.full(2, -0.1)
    return hypervolume(normalise(rewards, ideal, nadir), reference) / hypervolume(
        normalise(front, ideal, nadir), reference
    )


def shares(agent: str, front: np.ndarray, episodes: int = 150, **kwargs) -> list[float]:
    result = []
    for seed in range(4):
        history = make_agent(agent, seed=seed, **kwargs).search(env_of(), episodes).history
        result.append(hypervolume_share(np.array([r["reward"] for r in history]), front))
    return result


# ---------------------------------------------------------------------------------------- behaviour
def test_random_search_records_vector_rewards() -> None:
    result = make_agent("random", seed=0).search(env_of(vector=True), 20)
    rewards = np.array([r["reward"] for r in result.history])
    assert rewards.shape == (20, 2) and (rewards[:, 1] < 0).all()
    assert result.best["reward"][0] == rewards[:, 0].max()  # best: by the first objective


def test_mo_evolution_covers_the_front_better_than_random_search(exact_front: np.ndarray) -> None:
    baseline = shares("random", exact_front)
    evolved = shares("mo-evolution", exact_front, population_size=16, sample_size=4)
    assert np.mean(evolved) > np.mean(baseline) + 0.05, (evolved, baseline)


def test_mo_reinforce_learns_the_scalarised_objective() -> None:
    # No trade-off: every weight prefers the target, so the policy must move towards it.
    evaluator = TradeOff(agree=True)
    last = {}
    for agent in ("random", "mo-reinforce"):
        runs = [
            make_agent(agent, seed=seed, learning_rate=0.01)
            if agent == "mo-reinforce"
            else make_agent(agent, seed=seed)
            for seed in range(3)
        ]
        last[agent] = np.mean(
            [[r["accuracy"] for r in a.search(env_of(evaluator), 250).history[-50:]] for a in runs]
        )
    assert last["mo-reinforce"] > last["random"] + 0.15, last


def test_tournaments_rank_by_front_then_crowding() -> None:
    fitness = [(0.9, -3.0), (0.5, -1.0), (0.7, -2.0), (0.6, -2.5), (0.2, -3.0)]
    keys = pareto_fitness(fitness)
    assert [k[0] for k in keys] == [0, 0, 0, -1, -2]
    assert keys[0][1] == keys[1][1] == np.inf and np.isfinite(keys[2][1])
    agent = MOEvolutionAgent(seed=0, population_size=4, sample_size=4)
    agent.search(env_of(), 4)
    assert len(agent.population) == 4 and len(agent.seen) == 4
    (child,) = agent.propose(1)
    assert child not in agent.seen  # a new cell, one mutation away from a member of the front


@pytest.mark.parametrize("scalarisation", ["chebyshev", "weighted-sum"])
def test_scalarisations(scalarisation: str) -> None:
    agent = MOReinforceAgent(seed=0, scalarisation=scalarisation)
    agent.front = np.array([(0.9, -2.0), (0.5, -1.0)])
    weights = np.array([0.5, 0.5])
    ideal, nadir, between = agent.scalarise((0.9, -1.0), weights), agent.scalarise((0.5, -2.0), weights), 0.0
    between = agent.scalarise((0.7, -1.5), weights)
    assert ideal > between > nadir
    assert agent.normalised((0.9, -1.0)).tolist() == [1.0, 1.0]
    assert agent.normalised((-5.0, -np.inf)).tolist() == [-1.0, -1.0]  # clipped


# ---------------------------------------------------------------------------------------- equivalence, checkpoints
@pytest.mark.parametrize("agent", ["mo-evolution", "mo-reinforce"])
def test_a_single_env_and_a_vector_env_give_the_same_history(agent: str) -> None:
    kwargs = {"population_size": 6, "sample_size": 3} if agent == "mo-evolution" else {}
    single = make_agent(agent, seed=3, **kwargs).search(env_of(), 24).history
    batched = make_agent(agent, seed=3, **kwargs).search(env_of(vector=True), 24).history
    assert [r["arch"] for r in single] == [r["arch"] for r in batched]


@pytest.mark.parametrize("agent", ["mo-evolution", "mo-reinforce"])
def test_a_checkpoint_resumes_exactly(agent: str) -> None:
    kwargs = {"population_size": 6, "sample_size": 3} if agent == "mo-evolution" else {}
    whole = make_agent(agent, seed=1, **kwargs).search(env_of(), 30).history
    first = make_agent(agent, seed=1, **kwargs)
    states = []
    first.search(
        env_of(), 30, callback=lambda r: states.append(first.state_dict()) if r["episode"] == 14 else None
    )
    buffer = io.BytesIO()
    torch.save(states[0], buffer)
    buffer.seek(0)
    resumed = make_agent(agent, seed=1, **kwargs)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))  # plain data only
    rest = resumed.search(env_of(), 15).history
    assert [r["arch"] for r in rest] == [r["arch"] for r in whole[15:]]


# ---------------------------------------------------------------------------------------- errors
def test_registered_with_descriptions() -> None:
    assert {"mo-evolution", "mo-reinforce"} <= set(list_agents())
    assert repr(make_agent("mo-evolution", seed=2)) == (
        "MOEvolutionAgent(seed=2, population_size=50, sample_size=10)"
    )


def test_errors() -> None:
    with pytest.raises(
        ValueError, match=r"expected scalarisation in .*got 'chebychev' \(did you mean 'chebyshev'"
    ):
        MOReinforceAgent(scalarisation="chebychev")
    with pytest.raises(ValueError, match="expected rho"):
        MOReinforceAgent(rho=-1.0)
    with pytest.raises(ValueError, match="expected max_retries"):
        MOEvolutionAgent(max_retries=-1)
    evolution = MOEvolutionAgent(seed=0, population_size=4, sample_size=2)
    evolution.search(env_of(), 2)
    with pytest.raises(ValueError, match="expected rewards of 2 objectives .* got 3"):
        evolution.tell([(0,) * 6], [{"reward": [0.1, 0.2, 0.3]}])
    reinforce = MOReinforceAgent(seed=0)
    reinforce.search(env_of(), 2)
    with pytest.raises(
        ValueError, match=r"expected rewards of 2 objectives \(the earlier episodes'\), got 1"
    ):
        reinforce.tell([(0,) * 6], [{"reward": 0.5}])
    with pytest.raises(ValueError, match="expected a 'mo-reinforce' state with scalarisation='weighted-sum'"):
        MOReinforceAgent(seed=0, scalarisation="weighted-sum").load_state_dict(reinforce.state_dict())
    with pytest.raises(ValueError, match="expected a 'mo-evolution' state with max_retries=0"):
        MOEvolutionAgent(population_size=4, sample_size=2, max_retries=0).load_state_dict(
            evolution.state_dict()
        )
