"""Batch agents on vector envs: random, evolution and reinforce propose one architecture per copy
of a NASVectorEnv, the copies finish on the same step and are evaluated together; records come
back in copy order, do not depend on the executor, and checkpoints inside a batch resume exactly.
Instant evaluators only."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import nas_gym  # noqa: F401
from agents import Agent, EvolutionAgent, make_agent
from nas_gym.envs import NASEnv
from nas_gym.envs.vector import NASVectorEnv
from nas_gym.spaces import SearchSpace, make_space
from tests.agents.test_learning import MatchTarget
from tests.helpers.fakes import RecordingExecutor, hash_accuracy

BATCH_AGENTS = ["random", "evolution", "reinforce"]
KWARGS: dict[str, dict[str, Any]] = {
    "random": {},
    "evolution": {"population_size": 6},
    "reinforce": {"episodes_per_update": 4},
}


class TenSeconds:
    """``hash_accuracy`` with a fixed 10 simulated seconds of training, so that histories compare
    equal (picklable: the process and Ray executors ship it to their workers)."""

    def __call__(self, arch: str) -> dict[str, float]:
        return {**hash_accuracy(arch), "train_seconds": 10.0}


class CountEnds(gym.vector.VectorWrapper):
    """Remembers, for every step on which episodes end, how many end."""

    def __init__(self, env: gym.vector.VectorEnv):
        super().__init__(env)
        self.ends: list[int] = []

    def step(self, actions):
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        if (terminated | truncated).any():
            self.ends.append(int((terminated | truncated).sum()))
        return obs, rewards, terminated, truncated, info


def vector_env(space: str, num_envs: int = 4, **kwargs: Any) -> NASVectorEnv:
    kwargs.setdefault("evaluator", TenSeconds())
    return NASVectorEnv("NASCifar-v0", num_envs, autoreset_mode="Disabled", space=space, **kwargs)


def comparable(
    history: list[dict[str, Any]], drop: tuple[str, ...] = ("wall_seconds",)
) -> list[dict[str, Any]]:
    return [{k: v for k, v in record.items() if k not in drop} for record in history]


def is_mutation(space: SearchSpace, child: tuple[int, ...], parent: tuple[int, ...]) -> bool:
    """One decision changed; the decisions that exist in both kept; new ones (a larger depth)
    free. Where the depth is unchanged: exactly one position differs."""
    if child == parent:
        return False
    child_names = [d.name for d in space.decisions(child)]
    parent_names = [d.name for d in space.decisions(parent)]
    if child_names == parent_names:
        return sum(a != b for a, b in zip(child, parent)) == 1
    shared = [i for i in range(min(len(child), len(parent))) if child_names[i] == parent_names[i]]
    return [i for i in shared if child[i] != parent[i]] == [0]


# ---------------------------------------------------------------------------------------- the loop
@pytest.mark.parametrize("name", BATCH_AGENTS)
@pytest.mark.parametrize("space", ["seed", "nb201"])
def test_batch_search_evaluates_each_batch_together(name: str, space: str) -> None:
    executor = RecordingExecutor()
    envs = CountEnds(vector_env(space, executor=executor))
    result = make_agent(name, seed=1, **KWARGS[name]).search(envs, 10)  # not a multiple of 4
    search_space = make_space(space)

    assert len(result) == 10 and [r["episode"] for r in result.history] == list(range(10))
    archs = [r["arch"] for r in result.history]
    for record in result.history:
        assert record["steps"] == len(search_space.parse(record["arch"]))
        assert record["reward"] == record["accuracy"] == hash_accuracy(record["arch"])["accuracy"]
        assert record["status"] == "ok" and record["train_seconds"] == 10.0
    if space == "seed":  # episodes of different lengths in one batch
        assert len({r["steps"] for r in result.history[:4]}) > 1
    # All copies of a batch end on one step, the last batch with the 2 episodes left.
    assert envs.ends == [4, 4, 2]
    # ... and reach the executor together: each batch's architectures not evaluated before.
    seen: set[str] = set()
    expected = []
    for start in range(0, 10, 4):
        fresh = list(dict.fromkeys(a for a in archs[start : start + 4] if a not in seen))
        seen.update(fresh)
        if fresh:
            expected.append(fresh)
    assert executor.batches == expected and len(expected[0]) > 1
    assert [r["cached"] for r in result.history] == [a in archs[:i] for i, a in enumerate(archs)]


@pytest.mark.parametrize("name", BATCH_AGENTS)
def test_one_copy_reproduces_the_single_env_search(name: str) -> None:
    single = make_agent(name, seed=3, **KWARGS[name]).search(NASEnv("seed", TenSeconds()), 20).history
    batched = make_agent(name, seed=3, **KWARGS[name]).search(vector_env("seed", num_envs=1), 20).history
    assert comparable(batched) == comparable(single)


def test_make_vec_builds_a_vector_env_for_batches_and_vector_wrappers_apply() -> None:
    envs = gym.make_vec(
        "NASCifar-v0",
        num_envs=3,
        vectorization_mode="vector_entry_point",
        autoreset_mode="Disabled",
        space="nb201",
        evaluator=hash_accuracy,
    )
    doubled = gym.wrappers.vector.TransformReward(envs, lambda rewards: 2.0 * rewards)
    history = make_agent("evolution", seed=0, population_size=4, sample_size=2).search(doubled, 7).history
    assert len(history) == 7
    assert all(r["reward"] == pytest.approx(2.0 * r["accuracy"]) for r in history)


def test_budget_lets_the_batch_that_crosses_it_finish() -> None:
    envs = vector_env("nb201")
    assert len(make_agent("random", seed=0).search(envs, budget_seconds=35)) == 4
    history = make_agent("random", seed=0).search(envs, budget_seconds=45).history
    assert [r["cumulative_seconds"] for r in history] == [10.0 * (i + 1) for i in range(8)]
    assert len(make_agent("random", seed=0).search(envs, 6, budget_seconds=100)) == 6


def test_callback_stop_inside_a_batch_leaves_the_rest_pending() -> None:
    uninterrupted = make_agent("random", seed=5).search(vector_env("seed"), 9).history

    agent = make_agent("random", seed=5)
    head = agent.search(vector_env("seed"), 9, callback=lambda r: r["episode"] != 5).history
    assert len(head) == 6 and len(agent.pending) == 2  # records 6 and 7 of the second batch
    # The pending architectures come first, on a single env as on a vector env.
    tail = agent.search(NASEnv("seed", TenSeconds()), 3).history
    for record in tail:
        record["episode"] += 6
        record["cumulative_seconds"] += 60.0
    drop = ("wall_seconds", "cached")
    assert comparable(head + tail, drop) == comparable(uninterrupted, drop) and not agent.pending


# ---------------------------------------------------------------------------------------- refusals
def test_a_next_step_vector_env_is_refused_with_how_to_build_one() -> None:
    envs = NASVectorEnv("NASCifar-v0", 2, space="nb201", evaluator=hash_accuracy)
    with pytest.raises(
        ValueError,
        match=r"expected a vector env with autoreset_mode=AutoresetMode.DISABLED .*"
        r"autoreset_mode='Disabled'",
    ):
        make_agent("evolution", seed=0).search(envs, 4)


def test_agents_without_batches_refuse_a_vector_env() -> None:
    envs = vector_env("nb201", num_envs=2)
    with pytest.raises(TypeError, match=r"expected a single env.*got a vector env \(NASVectorEnv\)"):
        make_agent("ppo", seed=0).search(envs, 2)

    class FirstChoice(Agent):
        def act(self, obs, info):
            return 0

    with pytest.raises(TypeError, match=r"expected a single env for agent 'FirstChoice'.*got a vector env"):
        FirstChoice().search(envs, 2)


def test_vector_envs_whose_copies_cannot_wait_are_refused() -> None:
    sync = gym.make_vec(
        "NASCifar-v0", num_envs=2, vectorization_mode="sync", space="nb201", evaluator=hash_accuracy
    )
    with pytest.raises(TypeError, match=r"expected a NASVectorEnv .*got SyncVectorEnv"):
        make_agent("random", seed=0).search(sync, 2)
    envs = vector_env("nb201", num_envs=2)
    envs.reset(seed=0)  # both copies in an episode: neither waits
    with pytest.raises(RuntimeError, match="expected copy 1 of the vector env to wait for its reset"):
        make_agent("random", seed=0).search(envs, 1)


def test_an_action_wrapper_that_changes_the_architecture_is_detected() -> None:
    shifted = gym.wrappers.vector.TransformAction(vector_env("nb201", num_envs=2), lambda a: (a + 1) % 5)
    with pytest.raises(RuntimeError, match="expected the env to evaluate the proposed architecture"):
        make_agent("random", seed=0).search(shifted, 2)


# ---------------------------------------------------------------------------------------- executors
def histories(envs: NASVectorEnv) -> dict[str, list[dict[str, Any]]]:
    """Each batch agent's search on ``envs``, in a fixed order (they share its cache)."""
    return {
        name: comparable(make_agent(name, seed=2, **KWARGS[name]).search(envs, 11).history)
        for name in BATCH_AGENTS
    }


def test_histories_do_not_depend_on_the_executor(ray_executor) -> None:
    runs = {}
    for name in ("serial", "processes"):
        envs = vector_env("seed", executor=name, workers=None if name == "serial" else 2)
        runs[name] = histories(envs)
        envs.close()
    envs = vector_env("seed", executor=ray_executor)
    runs["ray"] = histories(envs)
    envs.close()
    assert all(len(history) == 11 for history in runs["serial"].values())
    assert runs["serial"] == runs["processes"] == runs["ray"]


# ---------------------------------------------------------------------------------------- the agents
def test_reinforce_learns_in_batches() -> None:
    gains = []
    for seed in (0, 1):
        target = tuple(int(c) for c in np.random.default_rng(1000 + seed).integers(5, size=6))
        rewards = {}
        for name in ("random", "reinforce"):
            envs = NASVectorEnv(
                functools.partial(NASEnv, "nb201", MatchTarget(target)), 4, autoreset_mode="Disabled"
            )
            agent = make_agent(name, seed=seed, **({"episodes_per_update": 4} if name == "reinforce" else {}))
            history = agent.search(envs, 300).history
            rewards[name] = np.mean([r["reward"] for r in history[-50:]])
        assert agent.updates == 300 // 4  # one update per batch of the env
        gains.append(rewards["reinforce"] - rewards["random"])
    # random: ~0.22 over the last 50; reinforce with 4 architectures per update: 0.47 to 0.96
    assert min(gains) > 0.15, gains


@pytest.mark.parametrize("space", ["seed", "nb201"])
def test_evolution_batches_mutate_the_population_of_the_batch_start(space: str) -> None:
    search_space = make_space(space)
    agent = EvolutionAgent(seed=0, population_size=8, sample_size=3)
    sizes: list[int] = []
    snapshots: list[list[tuple[int, ...]]] = []

    def snapshot(record: dict[str, Any]) -> None:
        sizes.append(len(agent.population))
        snapshots.append([m.arch for m in agent.population])

    result = agent.search(vector_env(space), 40, callback=snapshot)
    archs = [search_space.parse(r["arch"]) for r in result.history]
    assert sizes == [min(i + 1, 8) for i in range(40)]
    assert [m.born for m in agent.population] == list(range(32, 40))  # the 8 youngest
    for i in range(8, 40):  # children: batches from the third on
        parents = snapshots[i - i % 4 - 1]  # the population when the batch was proposed
        assert any(is_mutation(search_space, archs[i], parent) for parent in parents), i


def save_and_load(state: dict[str, Any], path: Path) -> dict[str, Any]:
    torch.save(state, path)
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize("name", BATCH_AGENTS)
def test_a_checkpoint_inside_a_batch_resumes_exactly(name: str, tmp_path: Path) -> None:
    uninterrupted = make_agent(name, seed=7, **KWARGS[name]).search(vector_env("seed"), 15).history

    envs = vector_env("seed")
    first = make_agent(name, seed=7, **KWARGS[name])
    states: list[dict[str, Any]] = []
    head = first.search(envs, 15, callback=lambda r: states.append(first.state_dict())).history
    state = save_and_load(states[5], tmp_path / "agent.pt")  # the 2nd record of the 2nd batch
    assert state["episodes_done"] == 6 and len(state["pending"]) == 2

    resumed = make_agent(name, seed=7, **KWARGS[name])
    resumed.load_state_dict(state)
    tail = resumed.search(vector_env("seed"), 9).history
    assert resumed.episodes_done == 15 and not resumed.pending
    for record in tail:
        record["episode"] += 6
        record["cumulative_seconds"] += head[5]["cumulative_seconds"]
    # A fresh env: an architecture of the head is not in its cache ('cached' may differ).
    drop = ("wall_seconds", "cached")
    assert comparable(head[:6] + tail, drop) == comparable(uninterrupted, drop)
    if name == "reinforce":
        assert resumed.updates == first.updates == 3
        resumed_weights, first_weights = resumed.controller.state_dict(), first.controller.state_dict()
        assert all(torch.equal(resumed_weights[k], first_weights[k]) for k in first_weights)
