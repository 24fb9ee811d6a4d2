"""The environment: Gymnasium and SB3 checks, seeding, actions, masks, info, cache, rendering."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import nas_gym  # noqa: F401
from nas_gym.envs import InvalidActionError, NASEnv
from tests.helpers.fakes import RecordingExecutor, hash_accuracy

TERMINAL_KEYS = {"arch", "accuracy", "params", "flops", "train_seconds", "cached", "status"}


def run_episode(env: gym.Env, actions) -> tuple[list[np.ndarray], list[float], dict]:
    obs, info = env.reset(seed=0)
    observations, rewards = [obs], []
    terminated = truncated = False
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        rewards.append(float(reward))
        if terminated or truncated:
            break
    assert terminated and not truncated
    return observations, rewards, info


@pytest.mark.parametrize("space", ["seed", "nb201", "macro"])
def test_gymnasium_and_sb3_checks_pass_without_warnings(space: str) -> None:
    env = gym.make("NASCifar-v0", space=space, evaluator=hash_accuracy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped, warn=True)


def test_spaces_and_metadata() -> None:
    env = gym.make("NASCifar-v0", evaluator=hash_accuracy)
    assert env.action_space == gym.spaces.Discrete(10)
    assert isinstance(env.observation_space, gym.spaces.MultiDiscrete)
    assert env.observation_space.shape == (31,)
    assert env.metadata["render_modes"] == ["ansi", "human", "rgb_array"] and env.metadata["render_fps"] > 0
    assert env.spec.nondeterministic and env.spec.max_episode_steps == 1000
    assert env.unwrapped.space.name == "seed"


def test_same_seed_rollouts_are_identical() -> None:
    def rollout(seed: int) -> list:
        env = gym.make("NASCifar-v0", evaluator=hash_accuracy)
        env.action_space.seed(seed)
        obs, info = env.reset(seed=seed)
        trace = [obs.tolist()]
        for _ in range(5):
            terminated = False
            while not terminated:
                obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
                trace.append((obs.tolist(), reward, terminated, info["action_mask"].tolist()))
            trace.append(info["arch"])
            obs, info = env.reset()
        return trace

    assert rollout(3) == rollout(3)
    assert rollout(3) != rollout(4)


def test_episode_reward_info_and_observations() -> None:
    env = gym.make("NASCifar-v0", evaluator=hash_accuracy)
    space = env.unwrapped.space
    arch = space.parse("k3-relu-max|k5-sigmoid-avg")
    observations, rewards, info = run_episode(env, arch)
    assert len(rewards) == len(arch) == 7
    assert rewards[:-1] == [0.0] * 6
    assert rewards[-1] == pytest.approx(hash_accuracy("k3-relu-max|k5-sigmoid-avg")["accuracy"])
    assert TERMINAL_KEYS <= set(info)
    assert info["arch"] == "k3-relu-max|k5-sigmoid-avg" and space.parse(info["arch"]) == arch
    assert info["status"] == "ok" and info["cached"] is False
    assert observations[-1][:7].tolist() == [a + 1 for a in arch]
    assert observations[-1][7:].sum() == 0
    assert all(o in env.observation_space for o in observations)


def test_action_mask_in_info_matches_action_masks() -> None:
    env = gym.make("NASCifar-v0", evaluator=hash_accuracy)
    obs, info = env.reset(seed=0)
    assert info["action_mask"].dtype == bool and info["action_mask"].shape == (10,)
    np.testing.assert_array_equal(info["action_mask"], env.unwrapped.action_masks())
    obs, _, _, _, info = env.step(4)
    assert info["action_mask"].tolist() == [True, True] + [False] * 8
    np.testing.assert_array_equal(info["action_mask"], env.unwrapped.action_masks())


def test_masked_action_takes_choice_modulo() -> None:
    """A masked action in range never raises: action a on a decision of k choices takes a % k."""
    env = gym.make("NASCifar-v0", evaluator=hash_accuracy)
    _, _, info = run_episode(env, [0, 9, 8, 7])  # depth 1, then kernel 9 % 2, act 8 % 2, pool 7 % 2
    assert info["arch"] == "k5-relu-avg"


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (10, r"expected an action in 0..9 \(Discrete\(10\)\), got 10"),
        (-1, r"expected an action in 0..9 \(Discrete\(10\)\), got -1"),
        (1.0, "expected an integer action in 0..9 .* got 1.0 of type float"),
        ("1", "expected an integer action in 0..9 .* got '1' of type str"),
        (True, "expected an integer action in 0..9 .* got True of type bool"),
        (None, "expected an integer action in 0..9 .* got None"),
        (np.array([1, 2]), r"expected one integer action in 0..9, got an array of shape \(2,\)"),
    ],
)
def test_invalid_actions_raise_clearly(action, match: str) -> None:
    env = NASEnv("seed", evaluator=hash_accuracy)
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match=match):
        env.step(action)
    assert env.step(np.int64(1))[1] == 0.0  # the env is still usable


def test_numpy_actions_are_accepted() -> None:
    env = NASEnv("nb201", evaluator=hash_accuracy)
    _, _, info = run_episode(env, [np.int64(1), np.array(2), np.array([3]), np.int32(4), 0, 1])
    assert env.space.parse(info["arch"]) == (1, 2, 3, 4, 0, 1)


def test_step_after_end_needs_reset() -> None:
    env = NASEnv("nb201", evaluator=hash_accuracy)
    with pytest.raises(RuntimeError, match="expected reset"):
        env.step(0)
    run_episode(env, [0] * 6)
    with pytest.raises(RuntimeError, match="expected reset"):
        env.step(0)


def test_cache_does_not_evaluate_twice() -> None:
    calls: list[str] = []

    def evaluator(arch: str) -> dict:
        calls.append(arch)
        return {"accuracy": 0.5}

    env = NASEnv("nb201", evaluator=evaluator)
    *_, first = run_episode(env, [1] * 6)
    *_, second = run_episode(env, [1] * 6)
    assert calls == [first["arch"]]
    assert first["cached"] is False and second["cached"] is True
    assert second["accuracy"] == first["accuracy"]
    assert env.runner.calls == 1


def test_reward_callable_and_failure_statuses() -> None:
    env = NASEnv(
        "macro", evaluator=lambda arch: {"accuracy": 0.8, "params": 10}, reward=lambda m: m["params"]
    )
    *_, info = run_episode(env, [0] * 8)
    assert info["params"] == 10

    def diverging(arch: str) -> dict:
        return {"accuracy": float("nan"), "status": "diverged"}

    env = NASEnv("macro", evaluator=diverging, failure_reward=-1.0)
    _, rewards, info = run_episode(env, [0] * 8)
    assert info["status"] == "diverged" and rewards[-1] == -1.0 and info["accuracy"] == 0.0

    def crashing(arch: str) -> dict:
        raise RuntimeError("boom")

    env = NASEnv("macro", evaluator=crashing)
    with pytest.warns(RuntimeWarning, match="failed with RuntimeError: boom"):
        _, rewards, info = run_episode(env, [0] * 8)
    assert info["status"] == "failed" and rewards[-1] == 0.0 and "boom" in info["error"]


def test_out_of_memory_gives_oom_and_env_stays_usable() -> None:
    torch = pytest.importorskip("torch")

    def oom(arch: str) -> dict:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    env = NASEnv("macro", evaluator=oom)
    *_, info = run_episode(env, [0] * 8)
    assert info["status"] == "oom"
    *_, info = run_episode(env, [1] * 8)
    assert info["status"] == "oom"


@pytest.mark.parametrize(
    ("output", "match"),
    [
        (0.5, "expected the evaluator to return a dict"),
        ({"acc": 0.5}, "expected the evaluator's dict to have 'accuracy'"),
        ({"accuracy": 93.1}, r"expected 'accuracy' as a fraction in \[0, 1\], got 93.1"),
    ],
)
def test_bad_evaluator_output_is_reported(output, match: str) -> None:
    env = NASEnv("macro", evaluator=lambda arch: output)
    env.reset(seed=0)
    with pytest.raises(TypeError, match=match):
        for _ in range(8):
            env.step(0)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(
        ValueError, match=r"expected reward in \['accuracy'.*got 'acuracy' \(did you mean 'accuracy'\?\)"
    ):
        NASEnv("seed", evaluator=hash_accuracy, reward="acuracy")
    with pytest.raises(
        ValueError, match=r"expected render_mode in \[None, 'ansi', 'human', 'rgb_array'\], got 'video'"
    ):
        NASEnv("seed", evaluator=hash_accuracy, render_mode="video")
    with pytest.raises(TypeError, match="expected evaluator as a callable"):
        NASEnv("seed", evaluator="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected a search space in"):
        gym.make("NASCifar-v0", space="resnet", evaluator=hash_accuracy)


def test_render_ansi_draws_layers() -> None:
    env = gym.make("NASCifar-v0", evaluator=hash_accuracy, render_mode="ansi")
    env.reset(seed=0)
    env.step(1)
    env.step(1)
    text = env.render()
    assert "depth: 2" in text and "layer1.kernel: k5" in text and "layer1.activation: ?" in text
    for action in [0, 0, 1, 1, 1]:
        env.step(action)
    text = env.render()
    assert "layer2.pool: avg" in text and "result: accuracy" in text
    plain = gym.make("NASCifar-v0", evaluator=hash_accuracy)
    plain.reset(seed=0)
    assert plain.render() is None


def test_store_is_shared_between_envs(tmp_path) -> None:
    calls: list[str] = []

    def evaluator(arch: str) -> dict:
        calls.append(arch)
        return {"accuracy": 0.25, "params": 7}

    evaluator.fingerprint = "store-test/v1"  # type: ignore[attr-defined]
    path = tmp_path / "evals.sqlite"
    *_, info = run_episode(NASEnv("nb201", evaluator=evaluator, store=path), [2] * 6)
    *_, again = run_episode(NASEnv("nb201", evaluator=evaluator, store=str(path)), [2] * 6)
    assert len(calls) == 1 and again["cached"] is True and again["params"] == 7


def test_gym_make_with_module_prefix_in_fresh_interpreter() -> None:
    code = (
        "import gymnasium as gym\n"
        "env = gym.make('nas_gym:NASCifar-v0', evaluator=lambda a: {'accuracy': 0.5})\n"
        "print(env.spec.id, env.unwrapped.space.name)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["NASCifar-v0", "seed"]


@pytest.mark.parametrize(
    ("env_id", "steps"), [("NASCifar-v0", 31), ("NASBench201-v0", 6), ("NASBenchMacro-v0", 8)]
)
def test_longest_episode_is_not_truncated(env_id: str, steps: int) -> None:
    env = gym.make(env_id, evaluator=hash_accuracy)
    env.reset(seed=0)
    action = 9 if env_id == "NASCifar-v0" else 0  # depth 10: the longest episode of the seed space
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(action)
        assert not truncated
        action = 0
    assert terminated


def test_executor_runs_single_evaluations() -> None:
    executor = RecordingExecutor()
    env = gym.make("NASBench201-v0", evaluator=hash_accuracy, executor=executor)
    *_, info = run_episode(env, [1] * 6)
    assert executor.batches == [[info["arch"]]] and info["cached"] is False
    *_, again = run_episode(env, [1] * 6)
    assert len(executor.batches) == 1 and again["cached"] is True


def test_objective_never_sees_the_test_split() -> None:
    seen: list[dict] = []

    def objective(metrics: dict) -> float:
        seen.append(dict(metrics))
        return metrics["accuracy"]

    env = NASEnv("nb201", evaluator=lambda arch: {"accuracy": 0.6, "test_accuracy": 0.9}, reward=objective)
    *_, info = run_episode(env, [0] * 6)
    assert info["test_accuracy"] == 0.9  # reported in info
    assert seen and all("test_accuracy" not in m for m in seen)
    cheat = NASEnv(
        "nb201",
        evaluator=lambda arch: {"accuracy": 0.6, "test_accuracy": 0.9},
        reward=lambda m: m["test_accuracy"],
    )
    cheat.reset(seed=0)
    with pytest.raises(KeyError, match="test_accuracy"):
        for _ in range(6):
            cheat.step(0)


def test_a_longer_custom_space_is_not_cut_short() -> None:
    from nas_gym.spaces import SeedSpace

    env = gym.make("NASCifar-v0", space=SeedSpace(max_layers=14), evaluator=hash_accuracy)
    _, rewards, info = run_episode(env, [13] + [0] * 42)
    assert len(rewards) == 43 and info["arch"].count("|") == 13


def test_evaluate_many_runs_on_the_env_executor_by_default() -> None:
    executor = RecordingExecutor()
    env = NASEnv("nb201", evaluator=hash_accuracy, executor=executor)
    archs = [[0] * 6, [1] * 6, [0] * 6]
    results = env.evaluate_many(archs)
    assert executor.batches == [[env.space.format(archs[0]), env.space.format(archs[1])]]
    assert [r["cached"] for r in results] == [False, False, True]
    other = RecordingExecutor()
    env.evaluate_many([[2] * 6], executor=other)
    assert other.batches and len(executor.batches) == 1
