"""Vector envs: NASVectorEnv (lockstep copies, one runner, evaluations on an executor), results
that do not depend on the executor, and Gymnasium's / Stable-Baselines3's subprocess vector envs
with a shared store."""

from __future__ import annotations

import functools
import os
import re
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import nas_gym  # noqa: F401
from nas_gym.core.devices import worker_index
from nas_gym.envs import InvalidActionError, NASEnv
from nas_gym.envs.vector import NASVectorEnv, batch_infos
from nas_gym.evaluation.store import EvaluationStore
from nas_gym.parallel.executors import ProcessExecutor, SerialExecutor
from nas_gym.parallel.ray import RayExecutor
from tests.helpers.fakes import RecordingExecutor, hash_accuracy

TERMINAL_KEYS = {"arch", "accuracy", "params", "flops", "train_seconds", "cached", "status"}


def indexed_accuracy(arch: str) -> dict[str, Any]:
    """``hash_accuracy`` plus the index of the worker process that evaluated ``arch``."""
    return {**hash_accuracy(arch), "worker": worker_index()}


indexed_accuracy.fingerprint = "indexed-accuracy/v1"  # type: ignore[attr-defined]


def fails_on_skip(arch: str) -> dict[str, Any]:
    """Fails for cells whose first edge is a skip connection, else reports a parameter count."""
    if arch.startswith("|skip_connect"):
        raise RuntimeError("boom")
    return {**hash_accuracy(arch), "params": 10}


def make_vec(num_envs: int, **kwargs: Any) -> NASVectorEnv:
    kwargs.setdefault("evaluator", hash_accuracy)
    envs = gym.make_vec("NASCifar-v0", num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    assert isinstance(envs, NASVectorEnv)
    return envs


def rollout(
    envs: gym.vector.VectorEnv, steps: int, seed: int = 0
) -> list[tuple[int, str, float, float, bool]]:
    """``(copy, arch, accuracy, reward, cached)`` of every episode that ends in ``steps`` seeded
    random steps, in the order they end."""
    envs.action_space.seed(seed)
    envs.reset(seed=seed)
    finished = []
    for _ in range(steps):
        _, rewards, terminated, _, info = envs.step(envs.action_space.sample())
        for i in np.flatnonzero(terminated):
            finished.append(
                (int(i), info["arch"][i], info["accuracy"][i], float(rewards[i]), bool(info["cached"][i]))
            )
    return finished


# ---------------------------------------------------------------------------------------- basics
def test_spaces_reset_step_autoreset_and_infos() -> None:
    envs = make_vec(3, space="nb201")
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    assert envs.single_action_space == gym.spaces.Discrete(5)
    assert envs.action_space == gym.spaces.MultiDiscrete([5, 5, 5])
    assert envs.single_observation_space.shape == (6,) and envs.observation_space.shape == (3, 6)
    obs, info = envs.reset(seed=0)
    assert obs.shape == (3, 6) and not obs.any() and obs in envs.observation_space
    assert info["action_mask"].shape == (3, 5) and info["_action_mask"].all()
    np.testing.assert_array_equal(envs.action_masks(), np.ones((3, 5), dtype=bool))

    actions = np.array([[0, 1, 2, 3, 4, 0], [1, 1, 1, 1, 1, 1], [4, 3, 2, 1, 0, 4]])
    for t in range(5):
        obs, rewards, terminated, truncated, info = envs.step(actions[:, t])
        assert rewards.dtype == np.float64 and not rewards.any()
        assert not terminated.any() and not truncated.any() and "arch" not in info
    obs, rewards, terminated, truncated, info = envs.step(actions[:, 5])
    assert terminated.all() and not truncated.any()
    assert TERMINAL_KEYS <= set(info) and info["_arch"].all()
    space = envs.space
    for i in range(3):
        arch = space.format(actions[i])
        assert info["arch"][i] == arch and rewards[i] == hash_accuracy(arch)["accuracy"]
        assert info["accuracy"][i] == rewards[i] and info["status"][i] == "ok"
        np.testing.assert_array_equal(obs[i], actions[i] + 1)
    assert info["cached"].dtype == bool and info["accuracy"].dtype == np.float64
    # Every action is valid for a copy that the next step resets, and that action is ignored.
    np.testing.assert_array_equal(envs.action_masks(), np.ones((3, 5), dtype=bool))
    obs, rewards, terminated, truncated, info = envs.step(np.array([4, 4, 4]))
    assert not obs.any() and not rewards.any() and not terminated.any() and "arch" not in info
    assert info["_action_mask"].all()
    envs.close()


def test_results_equal_those_of_single_envs() -> None:
    envs = make_vec(4, space="macro")
    finished = rollout(envs, steps=40, seed=3)
    assert len(finished) == 4 * 4  # 8 decisions and a reset step an episode: 4 a copy in 40 steps
    single = NASEnv("macro", evaluator=hash_accuracy)
    for _, arch, accuracy, reward, _ in finished:
        single.reset()
        for action in single.space.parse(arch):
            *_, last_reward, terminated, _, info = single.step(action)
        assert terminated and info["arch"] == arch and (info["accuracy"], last_reward) == (accuracy, reward)


def test_variable_length_episodes_run_in_lockstep() -> None:
    envs = make_vec(2)  # the "seed" space: the depth decides the episode's length
    envs.reset(seed=0)
    # Copy 0: depth 1 (4 decisions) then a new episode; copy 1: depth 2 (7 decisions).
    plan = [(0, 1), (0, 0), (1, 1), (1, 0), (9, 1), (3, 0), (2, 1)]
    terminated_at, rewards_at = [], []
    for t, actions in enumerate(plan):
        obs, rewards, terminated, truncated, info = envs.step(np.array(actions))
        terminated_at.append(terminated.tolist())
        rewards_at.append(rewards.tolist())
        if t == 3:
            assert info["arch"][0] == "k3-sigmoid-avg" and not info["_arch"][1]
        if t == 4:  # copy 0 resets (its action 9 is ignored), copy 1 decides
            assert not obs[0].any() and obs[1][4] == 2
    assert [row[0] for row in terminated_at] == [False, False, False, True, False, False, False]
    assert [row[1] for row in terminated_at] == [False] * 6 + [True]
    assert info["arch"][1] == "k3-sigmoid-max|k5-relu-avg" and not info["_arch"][0]
    np.testing.assert_array_equal(obs[0][:3], [4, 1, 0])  # copy 0's new episode: depth 4, then k3 (2 % 2)
    assert rewards_at[3] == [hash_accuracy("k3-sigmoid-avg")["accuracy"], 0.0]
    assert rewards_at[6] == [0.0, hash_accuracy("k3-sigmoid-max|k5-relu-avg")["accuracy"]]


def test_disabled_autoreset_lets_episodes_of_different_lengths_end_together() -> None:
    executor = RecordingExecutor()
    envs = make_vec(2, executor=executor, autoreset_mode="Disabled")
    assert envs.metadata["autoreset_mode"] is gym.vector.AutoresetMode.DISABLED
    long, short = "k5-relu-max|k3-sigmoid-avg", "k3-relu-max"  # 7 and 4 decisions
    long_actions, short_actions = envs.space.parse(long), envs.space.parse(short)
    envs.reset(seed=0, options={"reset_mask": np.array([True, False])})  # copy 1 waits
    assert envs.action_masks()[1].all()
    for t in range(7):
        if t == 3:  # start the short episode so that both end on the same step
            envs.reset(options={"reset_mask": np.array([False, True])})
        actions = np.array([long_actions[t], short_actions[t - 3] if t >= 3 else 9])
        obs, rewards, terminated, truncated, info = envs.step(actions)
        if t < 3:  # copy 1 ignores its action
            assert not obs[1].any() and info["_action_mask"].tolist() == [True, False]
    assert terminated.all() and executor.batches == [[long, short]]
    assert rewards.tolist() == [hash_accuracy(long)["accuracy"], hash_accuracy(short)["accuracy"]]
    # Both ended: they wait for a reset, their actions ignored.
    waited, rewards, terminated, truncated, info = envs.step(np.array([1, 1]))
    np.testing.assert_array_equal(waited, obs)
    assert not rewards.any() and not terminated.any() and not truncated.any() and info == {}
    with pytest.raises(ValueError, match=r"expected autoreset_mode in \['NextStep', 'Disabled'\], got"):
        make_vec(2, autoreset_mode="SameStep")


def test_max_episode_steps_truncates() -> None:
    envs = make_vec(2, max_episode_steps=3)
    envs.reset(seed=0)
    for _ in range(2):
        _, _, terminated, truncated, _ = envs.step(np.array([0, 0]))
        assert not truncated.any()
    _, rewards, terminated, truncated, info = envs.step(np.array([0, 0]))
    assert truncated.all() and not terminated.any() and not rewards.any() and "arch" not in info
    obs, *_ = envs.step(np.array([0, 0]))  # the truncated copies reset
    assert not obs.any()
    assert make_vec(1).max_episode_steps == 1000  # the registered safety net


def test_copies_share_one_runner_and_evaluate_duplicates_once(tmp_path) -> None:
    path = tmp_path / "evals.sqlite"
    envs = make_vec(3, space="nb201", store=path)
    assert all(env.runner is envs.runner for env in envs.envs)
    envs.reset(seed=0)
    for _ in range(6):
        _, _, terminated, _, info = envs.step(np.array([1, 1, 2]))
    assert terminated.all() and envs.runner.calls == 2
    assert info["cached"].tolist() == [False, True, False]
    envs.close()
    assert len(EvaluationStore(path)) == 2


def test_invalid_actions_and_arguments() -> None:
    envs = make_vec(2, space="nb201")
    envs.reset(seed=0)
    with pytest.raises(InvalidActionError, match=r"expected an action in 0..4 \(Discrete\(5\)\), got 7"):
        envs.step(np.array([1, 7]))
    with pytest.raises(ValueError, match=r"expected actions of shape \(2,\), one per copy, got shape \(3,\)"):
        envs.step(np.array([1, 1, 1]))
    obs, *_ = envs.step(np.array([1, 2]))  # nothing moved on the bad batches
    assert obs[:, 0].tolist() == [2, 3] and not obs[:, 1:].any()

    with pytest.raises(ValueError, match="expected num_envs as a positive int, got 0"):
        NASVectorEnv("NASCifar-v0", 0, evaluator=hash_accuracy)
    with pytest.raises(
        ValueError, match="expected workers, ray_address and num_gpus only with an executor name"
    ):
        NASVectorEnv("NASCifar-v0", 2, executor=SerialExecutor(), workers=2, evaluator=hash_accuracy)
    with pytest.raises(
        ValueError, match=r"expected executor in \['processes', 'ray', 'serial'\], got 'paralel'"
    ):
        NASVectorEnv("NASCifar-v0", 2, executor="paralel", evaluator=hash_accuracy)
    with pytest.raises(ValueError, match="expected no env keyword arguments with an env factory"):
        NASVectorEnv(lambda: NASEnv("nb201", hash_accuracy), 2, space="nb201")
    with pytest.raises(TypeError, match="expected every copy to be a NASEnv, got TimeLimit"):
        NASVectorEnv(lambda: gym.make("NASCifar-v0", evaluator=hash_accuracy, disable_env_checker=True), 2)
    with pytest.raises(TypeError, match="expected a picklable function for executor 'processes'"):
        make_vec(2, executor="processes", evaluator=lambda arch: {"accuracy": 0.5})
    spaces = iter(["nb201", "macro"])
    with pytest.raises(ValueError, match="expected identical copies"):
        NASVectorEnv(lambda: NASEnv(next(spaces), hash_accuracy), 2)


def test_partial_reset_and_seeds() -> None:
    envs = make_vec(3, space="nb201")
    envs.reset(seed=5)
    assert [env.np_random_seed for env in envs.envs] == [5, 6, 7]
    envs.step(np.array([1, 1, 1]))
    obs, info = envs.reset(seed=[None, 9, None], options={"reset_mask": np.array([False, True, False])})
    assert obs[:, 0].tolist() == [2, 0, 2] and info["_action_mask"].tolist() == [False, True, False]
    assert envs.envs[1].np_random_seed == 9
    with pytest.raises(ValueError, match=r"expected 3 seeds, one per copy, got 2"):
        envs.reset(seed=[1, 2])
    with pytest.raises(ValueError, match=r"expected options\['reset_mask'\] as a bool array of shape \(3,\)"):
        envs.reset(options={"reset_mask": [True, False, True]})


def test_the_halves_of_step_check_their_order() -> None:
    env = NASEnv("nb201", evaluator=hash_accuracy)
    env.reset(seed=0)
    assert env.apply_decision(1) is None
    with pytest.raises(ValueError, match="expected no evaluation: the last decision did not complete"):
        env.finish_step({"arch": "x"})
    for _ in range(4):
        env.finish_step(env.apply_decision(1))
    arch = env.apply_decision(1)
    assert arch == env.space.format([1] * 6)
    with pytest.raises(RuntimeError, match="expected reset"):  # awaiting its evaluation
        env.apply_decision(1)
    with pytest.raises(ValueError, match=re.escape(f"expected the evaluation of '{arch}', got one of None")):
        env.finish_step(None)
    (evaluation,) = env.evaluate_many([arch])
    _, reward, terminated, _, info = env.finish_step(evaluation)
    assert terminated and reward == hash_accuracy(arch)["accuracy"] and info["arch"] == arch


def test_factory_copies_and_ansi_render() -> None:
    envs = NASVectorEnv(lambda: NASEnv("nb201", hash_accuracy, render_mode="ansi"), 2)
    envs.reset(seed=0)
    envs.step(np.array([1, 2]))
    frames = envs.render()
    assert len(frames) == 2 and "skip_connect" in frames[0] and "nor_conv_1x1" in frames[1]
    assert make_vec(1).render() is None


def test_failed_and_ok_evaluations_in_one_step() -> None:
    # Gymnasium's own vector envs type an info key by the first copy that has it, so params=10
    # then params=None (a failed evaluation) on the same step raises there.
    envs = make_vec(2, space="nb201", evaluator=fails_on_skip)
    envs.reset(seed=0)
    with pytest.warns(RuntimeWarning, match="failed with RuntimeError: boom"):
        for _ in range(6):
            _, rewards, terminated, _, info = envs.step(np.array([0, 1]))
    assert terminated.all() and info["status"].tolist() == ["ok", "failed"]
    assert info["params"].tolist() == [10, None] and rewards[1] == 0.0
    assert info["_error"].tolist() == [False, True] and "boom" in info["error"][1]


def test_batch_infos_layout() -> None:
    infos = batch_infos(
        [{"a": 1, "p": 3, "m": np.ones(2, bool)}, None, {"a": 2.5, "p": None, "d": {"x": "s"}}]
    )
    assert infos["a"].dtype == np.float64 and infos["a"].tolist() == [1.0, 0.0, 2.5]
    assert infos["_a"].tolist() == [True, False, True]
    assert infos["p"].dtype == object and infos["p"].tolist() == [3, None, None]  # None with ints
    assert infos["m"].shape == (3, 2) and infos["_m"].tolist() == [True, False, False]
    assert infos["d"]["x"].tolist() == [None, None, "s"] and infos["_d"].tolist() == [False, False, True]


# ---------------------------------------------------------------------------------------- executors
def test_results_do_not_depend_on_the_executor(ray_executor: RayExecutor) -> None:
    runs = {}
    executors = [("serial", "serial"), ("processes", "processes"), ("ray", "ray"), ("given", ray_executor)]
    for name, executor in executors:
        kwargs = {} if name in ("serial", "given") else {"workers": 2}
        envs = make_vec(4, space="nb201", executor=executor, **kwargs)
        runs[name] = rollout(envs, steps=24, seed=7)
        if name == "processes":
            assert isinstance(envs.executor, ProcessExecutor) and envs.executor.workers == 2
        if name == "ray":  # built from its name, on the running local instance
            assert isinstance(envs.executor, RayExecutor)
        envs.close()
    assert len(runs["serial"]) == 4 * 3
    assert runs["serial"] == runs["processes"] == runs["ray"] == runs["given"]
    # An executor passed in is not closed with the env, nor the instance that it uses.
    assert ray_executor.evaluate(hash_accuracy, ["a"])[0]["status"] == "ok"


def eight_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)


def test_an_executor_built_from_a_name_runs_on_the_threads_of_the_env(monkeypatch) -> None:
    eight_cores(monkeypatch)
    shared = make_vec(2, executor="processes", workers=2)  # no pool starts before the first batch
    assert shared.executor.threads_per_task == 4  # 8 cores // 2 workers
    shared.close()
    pinned = make_vec(2, executor="processes", workers=2, threads=1)
    assert isinstance(pinned.executor, ProcessExecutor) and pinned.executor.threads_per_task == 1
    pinned.close()
    with pytest.raises(ValueError, match="expected threads as a positive int or None, got 0"):
        make_vec(2, executor="serial", threads=0)


def test_cifar_copies_train_on_the_share_of_the_executor(monkeypatch, cifar_dir) -> None:
    eight_cores(monkeypatch)
    kwargs = {"evaluator": None, "device": "cpu", "budget": "smoke", "data_dir": cifar_dir}
    for executor, threads in ((ProcessExecutor(workers=4), 2), ("serial", 8)):
        envs = make_vec(2, executor=executor, **kwargs)
        assert envs.runner.evaluator.threads == threads  # no training: the settings only
        envs.close()
        if isinstance(executor, ProcessExecutor):
            executor.close()
    envs = make_vec(2, executor="processes", workers=4, threads=3, **kwargs)
    assert envs.runner.evaluator.threads == envs.executor.threads_per_task == 3
    envs.close()


# ---------------------------------------------------------------------------------------- subprocesses
def test_gymnasium_async_vector_env_with_spawn_and_shared_store(tmp_path) -> None:
    path = tmp_path / "evals.sqlite"
    envs = gym.make_vec(
        "NASCifar-v0",
        num_envs=2,
        vectorization_mode="async",
        vector_kwargs={"context": "spawn"},
        space="nb201",
        evaluator=indexed_accuracy,
        store=str(path),
    )
    assert isinstance(envs, gym.vector.AsyncVectorEnv)
    envs.action_space.seed(0)
    envs.reset(seed=0)
    archs, workers = [], set()
    for _ in range(60):
        _, rewards, terminated, _, info = envs.step(envs.action_space.sample())
        for i in np.flatnonzero(terminated):
            archs.append(info["arch"][i])
            workers.add(info["worker"][i])
            assert rewards[i] == hash_accuracy(info["arch"][i])["accuracy"]
    envs.close()
    assert len(archs) == 2 * 8 and workers == {0, 1}  # each worker knows its index (GPU pinning)
    store = EvaluationStore(path)
    assert store.integrity_check() == "ok" and len(store) == len(set(archs))


def test_sb3_subproc_vec_env_with_spawn_and_ppo(tmp_path) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import SubprocVecEnv

    path = tmp_path / "evals.sqlite"
    make = functools.partial(gym.make, "NASCifar-v0", space="nb201", evaluator=hash_accuracy, store=str(path))
    venv = SubprocVecEnv([make, make], start_method="spawn")
    try:
        model = PPO("MlpPolicy", venv, n_steps=16, batch_size=16, seed=0, device="cpu")
        model.learn(64)
    finally:
        venv.close()
    store = EvaluationStore(path)
    # 64 steps of 6 decisions over 2 copies: at least 10 episodes, each evaluation stored once.
    assert store.integrity_check() == "ok" and 1 <= len(store) <= 10
