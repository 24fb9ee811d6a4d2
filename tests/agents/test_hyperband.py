"""Hyperband: Li et al.'s bracket sizes, promotions, the selection by the highest fidelity, the
cost charged per fidelity on NAS-Bench-201, checkpoints and argument checks."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import nas_gym  # noqa: F401
from agents import make_agent
from agents.hyperband import HyperbandAgent, select_record, top_fidelity_records
from nas_gym.envs import NASEnv
from nas_gym.envs.vector import NASVectorEnv
from tests.helpers.fakes import hash_accuracy
from tests.helpers.fidelities import COSTS, Fidelities


def _env() -> NASEnv:
    return NASEnv("nb201", Fidelities())


def test_bracket_sizes_are_those_of_li_et_al():
    """Their table for R = 81, eta = 3 (five resource levels): 81, 34, 15, 8 and 5 configurations."""
    agent = HyperbandAgent(seed=0)
    agent.fidelities = ("r1", "r3", "r9", "r27", "r81")
    assert [agent.bracket_size(s) for s in (4, 3, 2, 1, 0)] == [81, 34, 15, 8, 5]
    agent.fidelities = ("low", "high")
    assert [agent.bracket_size(s) for s in (1, 0)] == [3, 2]
    with pytest.raises(ValueError, match=r"expected s as an int in 0\.\.1, got 2"):
        agent.bracket_size(2)


def test_one_iteration_promotes_the_best_of_each_rung():
    env = _env()
    result = HyperbandAgent(seed=0, fidelities=("low", "high")).search(env, episodes=6)
    history = result.history
    assert [r["fidelity"] for r in history] == ["low"] * 3 + ["high"] * 3
    first = history[:3]
    assert history[3]["arch"] == max(first, key=lambda r: r["reward"])["arch"]
    assert len({r["arch"] for r in first}) == 3  # a bracket draws distinct architectures
    assert [r["train_seconds"] for r in history] == [COSTS["low"]] * 3 + [COSTS["high"]] * 3
    for record in history:  # each evaluated at its own fidelity
        assert record["reward"] == Fidelities(record["fidelity"])(record["arch"])["accuracy"]


def test_three_fidelities_run_the_brackets_in_order():
    result = HyperbandAgent(seed=1).search(_env(), episodes=9 + 3 + 1 + 5 + 1 + 3)
    fidelities = [r["fidelity"] for r in result.history]
    # Bracket s = 2: 9 screened, 3 trained, 1 at the top; s = 1: 5 trained, 1 at the top; s = 0: 3.
    expected = ["proxy"] * 9 + ["low"] * 3 + ["high"] + ["low"] * 5 + ["high"] + ["high"] * 3
    assert fidelities == expected
    scores = {r["arch"]: r["reward"] for r in result.history[:9]}
    promoted = [r["arch"] for r in result.history[9:12]]
    assert promoted == sorted(scores, key=lambda a: -scores[a])[:3]


def test_selection_takes_the_best_reward_of_the_highest_fidelity():
    records = [
        {"arch": "a", "reward": 900.0, "fidelity": "proxy"},
        {"arch": "b", "reward": 0.9, "fidelity": "low"},
        {"arch": "c", "reward": 0.5, "fidelity": "high"},
        {"arch": "d", "reward": 0.7, "fidelity": "high"},
        {"arch": "e", "reward": 0.7, "fidelity": "high"},
        {"arch": "f", "reward": 5.0, "fidelity": {"epochs": 3}},  # not a named fidelity: ranks last
    ]
    fidelities = ("proxy", "low", "high")
    assert select_record(records, fidelities)["arch"] == "d"  # the earliest of equal rewards
    assert [r["arch"] for r in top_fidelity_records(records[:2], fidelities)] == ["b"]
    assert select_record(records[-1:], fidelities)["arch"] == "f"
    assert select_record([], fidelities) is None


def test_hyperband_on_nb201_charges_each_evaluation_its_recorded_cost(data_dir):
    env = gym.make("NASBench201-v0")
    evaluator = env.unwrapped.runner.evaluator
    table = evaluator.table
    agent = make_agent("hyperband", seed=0)
    result = agent.search(env, budget_seconds=5_000)
    history = result.history
    assert {r["fidelity"] for r in history} == {"12ep", "200ep"}
    for record in history:
        row = table.row(record["arch"])
        epochs = 12 if record["fidelity"] == "12ep" else 200
        expected = (
            epochs * table.columns["c10valid_train_time_per_epoch_s"][row]
            + table.columns["c10valid_valid_eval_time_s"][row]
        )
        assert record["train_seconds"] == pytest.approx(expected, rel=1e-12)
        metric = "c10valid_valid_acc_12ep" if epochs == 12 else "c10valid_valid_acc_200ep"
        assert record["reward"] == pytest.approx(table.columns[metric][row] / 100)
    spent = np.cumsum([r["train_seconds"] for r in history])
    assert [r["cumulative_seconds"] for r in history] == pytest.approx(spent.tolist())
    assert spent[-2] < 5_000 <= spent[-1]  # the evaluation that crosses the budget ends the search
    assert agent.incumbent["arch"] == select_record(history, env.unwrapped.fidelities)["arch"]
    assert agent.incumbent["fidelity"] == "200ep"


def test_a_checkpoint_mid_bracket_continues_the_same_search():
    whole = HyperbandAgent(seed=3).search(_env(), episodes=20).history
    first = HyperbandAgent(seed=3)
    part = first.search(_env(), episodes=11).history
    restored = HyperbandAgent(seed=3)
    restored.load_state_dict(first.state_dict())
    rest = restored.search(_env(), episodes=9).history
    assert [(r["arch"], r["fidelity"]) for r in part + rest] == [(r["arch"], r["fidelity"]) for r in whole]
    with pytest.raises(ValueError, match=r"expected a 'hyperband' state with eta=2\.0"):
        HyperbandAgent(seed=3, eta=2).load_state_dict(first.state_dict())


def test_arguments_and_envs_are_checked():
    with pytest.raises(ValueError, match=r"expected an env with at least two fidelities for hyperband"):
        HyperbandAgent(seed=0).search(NASEnv("nb201", hash_accuracy), episodes=1)
    with pytest.raises(ValueError, match=r"to include \['medium'\]\), got \('proxy', 'low', 'high'\)"):
        HyperbandAgent(seed=0, fidelities=("low", "medium")).search(_env(), episodes=1)
    with pytest.raises(ValueError, match=r"expected fidelities as a sequence of at least two names"):
        HyperbandAgent(seed=0, fidelities=("low",))
    with pytest.raises(ValueError, match=r"expected eta as a number > 1"):
        HyperbandAgent(seed=0, eta=1)
    vector = NASVectorEnv("NASBench201-v0", num_envs=2, evaluator=Fidelities(), autoreset_mode="Disabled")
    with pytest.raises(TypeError, match=r"expected a single env"):
        HyperbandAgent(seed=0).search(vector, episodes=1)
    assert repr(make_agent("hyperband", seed=0, eta=2)) == "HyperbandAgent(seed=0, eta=2)"
