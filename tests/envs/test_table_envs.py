"""The table envs ``NASBench201-v0`` and ``NASBenchMacro-v0`` end to end: episodes, options that
reach the evaluators, errors, the store, cost-aware rewards and the API checkers."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import nas_gym  # noqa: F401  (registers the envs)
from nas_gym.backends.tables import reader
from nas_gym.backends.tables.macro import MACRO_FILE
from nas_gym.backends.tables.nb201 import NB201_FILE, NB201Evaluator
from nas_gym.backends.tables.reader import TableError, TableNotFoundError
from nas_gym.envs import NASBench201Env, NASBenchMacroEnv


@pytest.fixture(scope="module")
def nb201_rows(data_dir: Path) -> dict[int, dict[str, str]]:
    """The raw CSV rows by arch_index, read independently of the code under test."""
    with open(data_dir / NB201_FILE, newline="") as f:
        return {int(row["arch_index"]): row for row in csv.DictReader(f)}


def run_episode(env: gym.Env, actions) -> tuple[float, dict]:
    env.reset(seed=0)
    for n, action in enumerate(actions, start=1):
        _, reward, terminated, _, info = env.step(int(action))
        assert terminated == (n == len(actions))
    return float(reward), info


@pytest.mark.parametrize("arch_index", [6111, 13714])
def test_known_optima_through_an_episode(data_dir: Path, nb201_rows, arch_index: int) -> None:
    row = nb201_rows[arch_index]
    env = gym.make("NASBench201-v0", data_dir=data_dir)
    reward, info = run_episode(env, env.unwrapped.space.parse(row["arch_str"]))
    assert info["arch"] == row["arch_str"]
    assert info["test_accuracy"] == pytest.approx(0.9437, abs=5e-5)
    assert reward == info["accuracy"] == pytest.approx(float(row["c10valid_valid_acc_12ep"]) / 100)
    assert info["arch_index"] == arch_index
    assert info["status"] == "ok" and info["params"] > 0 and info["flops"] > 0
    assert info["cached"] is False


@pytest.mark.parametrize(("dataset", "metric"), [("cifar100", "12ep"), ("cifar10", "200ep")])
def test_dataset_and_metric_reach_the_evaluator(
    data_dir: Path, nb201_rows, dataset: str, metric: str
) -> None:
    env = gym.make("NASBench201-v0", data_dir=data_dir, dataset=dataset, metric=metric)
    evaluator = env.unwrapped.runner.evaluator
    assert (evaluator.dataset, evaluator.metric) == (dataset, metric)
    arch = nb201_rows[857]["arch_str"]
    reward, info = run_episode(env, env.unwrapped.space.parse(arch))
    expected = NB201Evaluator(data_dir, dataset=dataset, metric=metric)(arch)
    assert reward == expected["accuracy"] and info["test_accuracy"] == expected["test_accuracy"]


def test_a_misspelt_dataset_is_refused(data_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"expected dataset in .*got 'cifar-10' \(did you mean 'cifar10'"):
        gym.make("NASBench201-v0", data_dir=data_dir, dataset="cifar-10")


def test_table_env_refuses_a_space_the_table_does_not_hold(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="expected the 'nb201' space .* got MacroSpace"):
        NASBench201Env(space="macro", data_dir=data_dir)
    with pytest.raises(ValueError, match="expected the 'macro' space .* got NB201Space"):
        NASBenchMacroEnv(space="nb201", data_dir=data_dir)
    # With its own evaluator, any space goes.
    env = NASBench201Env(space="macro", evaluator=lambda arch: {"accuracy": 0.5})
    assert run_episode(env, [0] * 8)[0] == 0.5


def test_macro_best_network_through_an_episode(data_dir: Path) -> None:
    env = gym.make("NASBenchMacro-v0", data_dir=data_dir)
    reward, info = run_episode(env, env.unwrapped.space.parse("22212220"))
    assert info["arch"] == "22212220"
    assert info["params"] == 1_985_514 and info["flops"] == 85_164_544
    assert round(100 * (reward + 2 * info["test_accuracy"]) / 3, 2) == 93.13
    assert info["train_seconds"] == 0.0


def test_eval_seed_reaches_the_macro_evaluator(data_dir: Path) -> None:
    env = gym.make("NASBenchMacro-v0", data_dir=data_dir, eval_seed=5)
    assert env.unwrapped.runner.evaluator.seed == 5
    assert "seed=5" in env.unwrapped.runner.fingerprint


@pytest.mark.parametrize("env_id", ["NASBench201-v0", "NASBenchMacro-v0"])
def test_missing_table(tmp_path: Path, env_id: str) -> None:
    relative, column = (
        (NB201_FILE, "c10valid_valid_acc_12ep") if "201" in env_id else (MACRO_FILE, "test_acc")
    )
    with pytest.raises(TableNotFoundError, match=r"(?s)not found.*" + relative.name) as caught:
        gym.make(env_id, data_dir=tmp_path)
    message = str(caught.value)
    assert column in message and "NAS_GYM_DATA" in message and str(tmp_path) in message
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, TableError)


def test_env_copies_share_one_table(data_dir: Path) -> None:
    reader.clear_table_cache()
    first = gym.make("NASBench201-v0", data_dir=data_dir)
    second = gym.make("NASBench201-v0", data_dir=data_dir, dataset="cifar100")
    assert first.unwrapped.runner.evaluator.table is second.unwrapped.runner.evaluator.table


def test_store_records_table_lookups(data_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "evaluations.sqlite"
    env = gym.make("NASBenchMacro-v0", data_dir=data_dir, store=store)
    first = run_episode(env, [2, 2, 2, 1, 2, 2, 2, 0])[1]
    env.close()
    env = gym.make("NASBenchMacro-v0", data_dir=data_dir, store=store)
    again = run_episode(env, [2, 2, 2, 1, 2, 2, 2, 0])[1]
    env.close()
    assert again["cached"] is True and not first["cached"]
    assert again["test_accuracy"] == first["test_accuracy"] and again["run"] == first["run"]


def test_mnas_objectives_in_the_table_envs(data_dir: Path) -> None:
    env = gym.make("NASBenchMacro-v0", data_dir=data_dir, reward="mnas-params")
    reward, info = run_episode(env, env.unwrapped.space.parse("22212220"))
    assert reward == pytest.approx(info["accuracy"] * (1_985_514 / 1e6) ** -0.07)
    env = gym.make("NASBench201-v0", data_dir=data_dir, reward="mnas-flops")
    reward, info = run_episode(env, [3] * 6)
    assert info["flops"] == 220_119_680 and reward == pytest.approx(info["accuracy"] * 4.4023936**-0.07)


@pytest.mark.parametrize("env_id", ["NASBench201-v0", "NASBenchMacro-v0"])
def test_env_checkers_pass_without_warnings(data_dir: Path, env_id: str) -> None:
    env = gym.make(env_id, data_dir=data_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []


# ---------------------------------------------------------------------------------------- vector rewards
@pytest.mark.parametrize("env_id", ["NASBench201-v0", "NASBenchMacro-v0"])
def test_vector_rewards_in_mo_gymnasium_s_convention(data_dir: Path, env_id: str) -> None:
    import mo_gymnasium

    env = mo_gymnasium.make(env_id, data_dir=data_dir, objectives=("accuracy", "params"))
    space = env.unwrapped.reward_space
    assert isinstance(space, gym.spaces.Box) and space.shape == (2,) and space.high.tolist() == [1.0, 0.0]
    env.reset(seed=0)
    rewards = []
    for action in env.unwrapped.space.sample(np.random.default_rng(0)):
        _, reward, terminated, _, info = env.step(int(action))
        assert isinstance(reward, np.ndarray) and reward.shape == (2,)
        rewards.append(reward)
    assert terminated and all(not r.any() for r in rewards[:-1])  # zeros until the last decision
    assert rewards[-1].tolist() == pytest.approx([info["accuracy"], -info["params"] / 1e6])
    assert all(space.contains(r.astype(np.float32)) for r in rewards)


def test_reward_space_bounds_hold_every_cell(data_dir: Path) -> None:
    env = NASBench201Env(data_dir=data_dir, objectives=("accuracy", "params", "flops"))
    low = env.reward_space.low
    # The largest network's costs, the bounds of the Box: NAS-Bench-201's 1.53 M params, 220 M FLOPs.
    assert low[1:].tolist() == pytest.approx([-1.531546, -220.11968], abs=1e-5)
    biggest = env.reward_of(env.evaluate((3,) * 6))
    assert env.reward_space.contains(biggest.astype(np.float32))
    assert NASBenchMacroEnv(data_dir=data_dir, objectives=("flops",)).reward_space.low[0] == -np.inf


def test_linear_reward_wrapper_scalarises(data_dir: Path) -> None:
    from mo_gymnasium.wrappers import LinearReward

    weight = np.array([1.0, 0.1])
    env = LinearReward(
        gym.make(
            "NASBench201-v0", data_dir=data_dir, objectives=("accuracy", "flops"), disable_env_checker=True
        ),
        weight=weight,
    )
    reward, info = run_episode(env, [3] * 6)
    assert info["vector_reward"].tolist() == pytest.approx([info["accuracy"], -220.11968])
    assert reward == pytest.approx(info["accuracy"] - 22.011968)
    with pytest.raises(AssertionError, match="different shape"):
        env.set_weight(np.ones(3))


def test_single_objective_rewards_are_unchanged(data_dir: Path) -> None:
    scalar = gym.make("NASBench201-v0", data_dir=data_dir)
    assert not hasattr(scalar.unwrapped, "reward_space")
    scalar.reset(seed=0)
    for action in [3] * 6:
        _, reward, _, _, info = scalar.step(action)
    assert type(reward) is float and reward == info["accuracy"]
    with pytest.raises(ValueError, match="expected either reward= or objectives=, got both"):
        gym.make("NASBench201-v0", data_dir=data_dir, reward="mnas-params", objectives=("accuracy",))
