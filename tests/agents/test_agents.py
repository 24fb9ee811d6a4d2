"""The agent zoo: registry, the search loop and its records, seeds, callbacks, budgets, masks,
evolution's mutations, checkpoints, and the custom-agent example. Instant evaluators only."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import nas_gym  # noqa: F401
from agents import Agent, EvolutionAgent, SearchResult, list_agents, make_agent
from nas_gym.envs import NASEnv
from nas_gym.spaces import make_space
from tests.helpers.fakes import hash_accuracy

ALL_AGENTS = [
    "random",
    "evolution",
    "reinforce",
    "ppo",
    "maskable-ppo",
    "a2c",
    "dqn",
    "hyperband",
    "mo-evolution",
    "mo-reinforce",
]
SB3_AGENTS = ["ppo", "maskable-ppo", "a2c", "dqn"]
SEARCH_AGENTS = [name for name in ALL_AGENTS if name != "hyperband"]
"""The agents that search any env: hyperband needs an env with fidelities, which these instant envs
lack (it refuses them; tests/agents/test_hyperband.py runs it on NAS-Bench-201)."""
RECORD_KEYS = set(
    "episode arch reward accuracy status cached train_seconds cumulative_seconds wall_seconds "
    "params flops steps".split()
)
REPO = Path(__file__).resolve().parents[2]


class TenSeconds:
    """An instant evaluator that reports 10 simulated seconds of training per architecture
    (a fixed figure, unlike the measured one of ``hash_accuracy``, so histories compare equal)."""

    def __call__(self, arch: str) -> dict[str, float]:
        return {**hash_accuracy(arch), "train_seconds": 10.0}


def without_wall_time(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in record.items() if k != "wall_seconds"} for record in history]


def make_env(space: str, how: str = "NASEnv", evaluator=None) -> gym.Env:
    evaluator = TenSeconds() if evaluator is None else evaluator
    if how == "gym.make":
        return gym.make("NASCifar-v0", space=space, evaluator=evaluator)
    return NASEnv(space, evaluator=evaluator)


# ---------------------------------------------------------------------- registry
def test_list_agents_names_every_agent_with_a_description() -> None:
    agents = list_agents()
    assert list(agents) == ALL_AGENTS
    assert all(isinstance(text, str) and text for text in agents.values())


def test_unknown_agent_is_refused_with_a_suggestion() -> None:
    expected = r"expected an agent in \[.*'evolution'.*\], got 'evolutoin' \(did you mean 'evolution'\?\)"
    with pytest.raises(ValueError, match=expected):
        make_agent("evolutoin")
    with pytest.raises(ValueError, match=r"got 'zzz'$"):
        make_agent("zzz")


def test_agent_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="expected seed as a non-negative int or None, got -1"):
        make_agent("random", seed=-1)
    with pytest.raises(ValueError, match="expected sample_size <= population_size"):
        make_agent("evolution", population_size=3, sample_size=4)
    with pytest.raises(TypeError, match=r"ReinforceConfig fields .*got \['lr'\]"):
        make_agent("reinforce", lr=0.1)
    with pytest.raises(ValueError, match="expected learning_rate as a positive number, got -1"):
        make_agent("reinforce", learning_rate=-1)
    with pytest.raises(TypeError, match=r"keyword arguments of PPO among .*got \['not_a_ppo_argument'\]"):
        make_agent("ppo", not_a_ppo_argument=1)


def test_search_needs_a_stop_condition() -> None:
    env = make_env("nb201")
    agent = make_agent("random", seed=0)
    with pytest.raises(ValueError, match="expected episodes or budget_seconds"):
        agent.search(env)
    with pytest.raises(ValueError, match="expected episodes as a positive int or None, got 0"):
        agent.search(env, 0)
    with pytest.raises(ValueError, match="expected budget_seconds as a positive number or None, got -5"):
        agent.search(env, budget_seconds=-5)


def test_agents_refuse_an_env_without_a_search_space() -> None:
    with pytest.raises(TypeError, match="expected a nas-gym env"):
        make_agent("evolution", seed=0).search(gym.make("CartPole-v1"), 1)


# ---------------------------------------------------------------------- the search and its records
@pytest.mark.parametrize("name", SEARCH_AGENTS)
@pytest.mark.parametrize(("space", "how"), [("seed", "gym.make"), ("nb201", "NASEnv")])
def test_every_agent_completes_a_search_with_complete_records(name: str, space: str, how: str) -> None:
    env = make_env(space, how)
    result = make_agent(name, seed=1).search(env, 12)
    search_space = make_space(space)

    assert isinstance(result, SearchResult) and len(result) == 12 and result.agent == name
    assert [r["episode"] for r in result.history] == list(range(12))
    running = 0.0
    for record in result.history:
        assert RECORD_KEYS <= set(record)
        arch = search_space.parse(record["arch"])
        assert record["steps"] == len(arch)
        assert record["reward"] == record["accuracy"] == hash_accuracy(record["arch"])["accuracy"]
        assert record["status"] == "ok"
        running += record["train_seconds"]
        assert record["cumulative_seconds"] == pytest.approx(running)
    assert result.best == max(result.history, key=lambda r: r["reward"])
    walls = [r["wall_seconds"] for r in result.history]
    assert walls == sorted(walls)


def test_search_result_round_trips_through_json() -> None:
    result = make_agent("evolution", seed=0).search(make_env("nb201"), 8)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["best"] == result.best
    again = SearchResult.from_dict(data)
    assert again.history == result.history and again.best == result.best
    assert (again.agent, again.seed) == ("evolution", 0)
    assert SearchResult().best is None
    with pytest.raises(ValueError, match="expected a dict with a 'history' list"):
        SearchResult.from_dict({"best": None})


def test_records_carry_test_accuracy_and_failures_from_the_env() -> None:
    def evaluator(arch: str) -> dict[str, Any]:
        if "none~0|+" in arch:
            raise RuntimeError("out of luck")
        return {**hash_accuracy(arch), "test_accuracy": 0.5, "params": np.int64(7)}

    with pytest.warns(RuntimeWarning, match="out of luck"):
        history = make_agent("random", seed=0).search(NASEnv("nb201", evaluator=evaluator), 40).history
    json.dumps(history)  # numpy scalars from the evaluator are converted
    failed = [r for r in history if r["status"] == "failed"]
    ok = [r for r in history if r["status"] == "ok"]
    assert failed and ok
    assert all(r["reward"] == 0.0 and "out of luck" in r["error"] for r in failed)
    assert all(r["test_accuracy"] == 0.5 and r["params"] == 7 for r in ok)


@pytest.mark.parametrize("name", SEARCH_AGENTS)
def test_same_seed_same_history_other_seed_other_history(name: str) -> None:
    def history(seed: int) -> list[dict[str, Any]]:
        return without_wall_time(make_agent(name, seed=seed).search(make_env("nb201"), 15).history)

    first = history(3)
    assert history(3) == first
    assert history(4) != first


@pytest.mark.parametrize("name", ["random", "evolution", "reinforce", "ppo", "dqn"])
def test_wrappers_around_the_env_apply_to_every_agent(name: str) -> None:
    env = gym.wrappers.TransformReward(make_env("nb201", "gym.make"), lambda r: 2.0 * r)
    history = make_agent(name, seed=0).search(env, 10).history
    assert all(r["reward"] == pytest.approx(2.0 * r["accuracy"]) for r in history)


# ---------------------------------------------------------------------- custom agents
class FirstChoice(Agent):
    def act(self, obs, info):
        return int(np.flatnonzero(info["action_mask"])[0])


class CountingFirstChoice(FirstChoice):
    def __init__(self, seed=None):
        super().__init__(seed)
        self.transitions = 0
        self.episode_ends = 0

    def observe(self, obs, reward, terminated, truncated, info):
        self.transitions += 1
        self.episode_ends += terminated or truncated


def test_a_custom_agent_needs_only_act() -> None:
    result = FirstChoice().search(make_env("nb201", "gym.make"), 3)
    assert result.agent == "FirstChoice"
    assert [r["arch"] for r in result.history] == [make_space("nb201").format((0,) * 6)] * 3
    assert [r["cached"] for r in result.history] == [False, True, True]


def test_a_custom_agent_observes_every_transition() -> None:
    agent = CountingFirstChoice()
    agent.search(make_env("seed"), 4)
    # depth choice 0 = one layer: 1 + 3 decisions per episode
    assert (agent.transitions, agent.episode_ends, agent.episodes_done) == (16, 4, 4)


def test_custom_agent_example_runs_and_is_short() -> None:
    path = REPO / "examples" / "custom_agent.py"
    assert len(path.read_text().splitlines()) <= 40
    namespace = runpy.run_path(str(path), run_name="__main__")
    assert isinstance(namespace["result"], SearchResult) and len(namespace["result"]) > 0


@pytest.mark.parametrize("example", ["reinforce_cifar", "sb3_ppo"])
def test_cifar_examples_run_with_an_instant_evaluator(example: str, capsys) -> None:
    main = runpy.run_path(str(REPO / "examples" / f"{example}.py"))["main"]
    main(["--episodes", "4"], evaluator=hash_accuracy)
    output = capsys.readouterr().out
    assert output.count("episode ") == 4 and "best of 4:" in output


# ---------------------------------------------------------------------- callbacks and budgets
@pytest.mark.parametrize("name", ["random", "reinforce", "ppo", "dqn"])
def test_callback_sees_every_record_and_can_stop_the_search(name: str) -> None:
    seen: list[dict[str, Any]] = []

    def callback(record: dict[str, Any]) -> bool | None:
        seen.append(record)
        return False if len(seen) == 5 else None

    result = make_agent(name, seed=0).search(make_env("nb201"), 50, callback=callback)
    assert len(result.history) == 5
    assert seen == result.history


@pytest.mark.parametrize("name", ["random", "evolution", "ppo"])
def test_budget_stops_after_the_episode_that_reaches_it(name: str) -> None:
    env = make_env("nb201")
    result = make_agent(name, seed=0).search(env, budget_seconds=35)
    assert [r["cumulative_seconds"] for r in result.history] == [10.0, 20.0, 30.0, 40.0]
    assert result.simulated_seconds == 40.0
    # with both, the first limit reached stops the search
    assert len(make_agent(name, seed=0).search(env, 2, budget_seconds=35)) == 2
    assert len(make_agent(name, seed=0).search(env, 9, budget_seconds=15)) == 2


def test_episodes_without_an_architecture_are_not_recorded() -> None:
    env = gym.make("NASCifar-v0", space="nb201", evaluator=hash_accuracy, max_episode_steps=3)
    with pytest.raises(RuntimeError, match="expected episodes to end with an evaluated architecture"):
        make_agent("random", seed=0).search(env, 1)


# ---------------------------------------------------------------------- masks
class RecordActions(gym.Wrapper):
    """Records, for every step, the action taken and the mask that was valid before it."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.steps: list[tuple[int, np.ndarray]] = []

    def step(self, action):
        self.steps.append((int(action), self.get_wrapper_attr("action_masks")()))
        return self.env.step(action)


def test_maskable_ppo_never_takes_a_masked_action() -> None:
    # In the seed space most decisions have 2 valid actions out of 10.
    env = RecordActions(make_env("seed", "gym.make"))
    make_agent("maskable-ppo", seed=0).search(env, 40)
    assert len(env.steps) > 400
    assert all(mask[action] for action, mask in env.steps)

    unmasked = RecordActions(make_env("seed", "gym.make"))
    make_agent("ppo", seed=0).search(unmasked, 40)
    assert not all(mask[action] for action, mask in unmasked.steps)  # the check can fail


@pytest.mark.parametrize("name", ["random", "reinforce"])
def test_masking_agents_pick_only_valid_actions(name: str) -> None:
    env = RecordActions(make_env("seed"))
    make_agent(name, seed=0).search(env, 20)
    assert all(mask[action] for action, mask in env.steps)


# ---------------------------------------------------------------------- evolution
def one_mutation_apart(space, child: tuple[int, ...], parent: tuple[int, ...]) -> bool:
    """Whether ``child`` is a mutation of ``parent``: one decision changed, the decisions that
    still exist kept, new ones (a larger depth) free."""
    parent_decisions = [d.name for d in space.decisions(parent)]
    differing = [
        i
        for i, decision in enumerate(space.decisions(child))
        if i < len(parent) and decision.name == parent_decisions[i] and child[i] != parent[i]
    ]
    changed_shape = [d.name for d in space.decisions(child)] != parent_decisions
    return child != parent and (len(differing) == 1 or (changed_shape and differing == [0]))


@pytest.mark.parametrize("space", ["seed", "nb201"])
def test_evolution_mutates_one_decision_of_a_living_member(space: str) -> None:
    search_space = make_space(space)
    agent = EvolutionAgent(seed=0, population_size=6, sample_size=3)
    snapshots: list[list[tuple[int, ...]]] = []
    result = agent.search(
        make_env(space), 60, callback=lambda r: snapshots.append([m.arch for m in agent.population])
    )
    archs = [search_space.parse(r["arch"]) for r in result.history]
    for i in range(6, 60):
        assert any(one_mutation_apart(search_space, archs[i], parent) for parent in snapshots[i - 1]), i
    # aging: the population holds the six youngest, whatever their fitness
    assert [m.born for m in agent.population] == list(range(54, 60))


def test_space_mutate_changes_exactly_one_decision_and_stays_valid() -> None:
    rng = np.random.default_rng(0)
    for name in ("seed", "nb201"):
        space = make_space(name)
        for _ in range(200):
            parent = space.sample(rng)
            child = space.mutate(parent, rng)
            assert space.validate(child) == child and child != parent
            if child[0] == parent[0] or name == "nb201":
                assert sum(a != b for a, b in zip(child, parent)) == 1 and len(child) == len(parent)


# ---------------------------------------------------------------------- checkpoints
def save_and_load(state: dict[str, Any], path: Path) -> dict[str, Any]:
    torch.save(state, path)
    return torch.load(path, weights_only=True)


RESUMABLE = [("random", {}), ("evolution", {"population_size": 5}), ("reinforce", {"episodes_per_update": 3})]


@pytest.mark.parametrize(("name", "kwargs"), RESUMABLE)
@pytest.mark.parametrize("space", ["seed", "nb201"])
def test_resumed_search_continues_exactly(
    name: str, kwargs: dict[str, Any], space: str, tmp_path: Path
) -> None:
    uninterrupted = make_agent(name, seed=7, **kwargs).search(make_env(space), 17).history

    env = make_env(space)  # one env, so that its cache (the 'cached' flags) carries over too
    first = make_agent(name, seed=7, **kwargs)
    states: list[dict[str, Any]] = []

    def checkpoint(record: dict[str, Any]) -> None:
        states.append(first.state_dict())

    head = first.search(env, 10, callback=checkpoint).history
    # reinforce: 3 updates of 3 episodes and 1 episode pending
    state = save_and_load(states[-1], tmp_path / "agent.pt")
    resumed = make_agent(name, seed=7, **kwargs)
    resumed.load_state_dict(state)
    tail = resumed.search(env, 7).history
    assert resumed.episodes_done == 17
    # a new search call counts its episodes and seconds from 0
    assert [r["episode"] for r in tail] == list(range(7))
    assert [r["cumulative_seconds"] for r in tail] == [10.0 * (i + 1) for i in range(7)]
    for record in tail:
        record["episode"] += 10
        record["cumulative_seconds"] += head[-1]["cumulative_seconds"]
    assert without_wall_time(head + tail) == without_wall_time(uninterrupted)


def test_reinforce_state_holds_weights_optimizer_baseline_and_pending_batch(tmp_path: Path) -> None:
    agent = make_agent("reinforce", seed=0, episodes_per_update=4)
    agent.search(make_env("seed"), 6)
    state = save_and_load(agent.state_dict(), tmp_path / "reinforce.pt")
    assert state["updates"] == 1 and len(state["batch"]) == 2 and isinstance(state["baseline"], float)
    assert state["optimizer"]["state"]  # Adam moments
    restored = make_agent("reinforce", seed=0, episodes_per_update=4)
    restored.load_state_dict(state)
    restored.prepare(make_env("seed"))
    assert restored.probabilities([3]) == pytest.approx(agent.probabilities([3]))
    with pytest.raises(ValueError, match="expected a 'reinforce' state with episodes_per_update=5"):
        make_agent("reinforce", seed=0, episodes_per_update=5).load_state_dict(state)
    with pytest.raises(ValueError, match="expected a state of agent 'evolution', got one of 'reinforce'"):
        make_agent("evolution").load_state_dict(state)


@pytest.mark.parametrize("name", SB3_AGENTS)
def test_sb3_state_loads_with_weights_only_and_the_search_continues(name: str, tmp_path: Path) -> None:
    agent = make_agent(name, seed=0)
    agent.search(make_env("nb201"), 12)
    state = save_and_load(agent.state_dict(), tmp_path / "sb3.pt")
    assert state["num_timesteps"] == agent.model.num_timesteps

    resumed = make_agent(name, seed=0)
    resumed.load_state_dict(state)
    assert resumed.state_dict()["policy"].keys() == state["policy"].keys()  # kept until the model exists
    tail = resumed.search(make_env("nb201"), 5)
    assert [r["episode"] for r in tail.history] == list(range(5)) and resumed.episodes_done == 17
    assert resumed.model.num_timesteps == state["num_timesteps"] + 5 * 6

    # a resumed run is reproducible
    again = make_agent(name, seed=0)
    again.load_state_dict(state)
    assert without_wall_time(again.search(make_env("nb201"), 5).history) == without_wall_time(tail.history)


def test_sb3_keyword_arguments_reach_the_algorithm() -> None:
    agent = make_agent("ppo", seed=0, learning_rate=5e-4, n_steps=12, batch_size=6)
    agent.search(make_env("nb201"), 3)
    assert (agent.model.n_steps, agent.model.batch_size, agent.model.learning_rate) == (12, 6, 5e-4)
    assert agent.model.gamma == 1.0 and agent.model.device.type == "cpu"


def test_time_budget_on_a_backend_without_training_time_is_refused() -> None:
    env = NASEnv("nb201", evaluator=lambda arch: {"accuracy": 0.5, "train_seconds": 0.0})
    with pytest.raises(
        ValueError, match=r"expected the env to record training time .* limit the search by episodes"
    ):
        make_agent("random", seed=0).search(env, budget_seconds=100)
    assert len(make_agent("random", seed=0).search(env, episodes=3).history) == 3
