"""Zero-cost proxies as extra fidelities of a table env: the table's results unchanged, the proxy's
scores computed once and then read from the cache store, in any process."""

from __future__ import annotations

import pickle

import gymnasium as gym
import pytest

import nas_gym  # noqa: F401
from nas_gym.backends.cifar.zero_cost import ZeroCostEvaluator
from nas_gym.backends.tables.nb201 import NB201Evaluator
from nas_gym.envs.zero_cost import ZeroCostFidelities
from tests.helpers.fakes import hash_accuracy

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def _wrapped(cifar_dir, cache=None) -> ZeroCostFidelities:
    return ZeroCostFidelities(
        NB201Evaluator(cifar_dir),
        "nb201",
        proxies=("synflow", "naswot"),
        cache=cache,
        batch_size=4,
        data_dir=cifar_dir,
    )


def _episode(env, options=None) -> tuple[float, dict]:
    env.reset(seed=0, options=options)
    for action in env.unwrapped.space.parse(BEST):
        _, reward, _, _, info = env.step(action)
    return reward, {k: v for k, v in info.items() if k != "action_mask"}


def test_the_table_is_unchanged_and_the_proxies_are_extra_fidelities(cifar_dir):
    plain = gym.make("NASBench201-v0", data_dir=cifar_dir)
    env = gym.make("NASBench201-v0", evaluator=_wrapped(cifar_dir))
    assert env.unwrapped.fidelities == ("synflow", "naswot", "12ep", "200ep")
    assert env.unwrapped.runner.fingerprint == plain.unwrapped.runner.fingerprint
    assert _episode(env) == _episode(plain)
    assert _episode(env, {"fidelity": "200ep"}) == _episode(plain, {"fidelity": "200ep"})
    reward, info = _episode(env, {"fidelity": "synflow"})
    direct = ZeroCostEvaluator("nb201", batch_size=4, data_dir=cifar_dir)(BEST)
    assert reward == info["score"] == direct["score"] and info["fidelity"] == "synflow"
    assert info["accuracy"] is None and "test_accuracy" not in info
    evaluator = env.unwrapped.runner.evaluator  # what compare reads off the env
    assert evaluator.optimum() == plain.unwrapped.runner.evaluator.optimum()
    assert evaluator.transfer(BEST)["cifar10"] == pytest.approx(0.9437, abs=1e-4)


def test_scores_are_computed_once_then_read_from_the_cache(cifar_dir, tmp_path, monkeypatch):
    cache = tmp_path / "scores.sqlite"
    env = gym.make("NASBench201-v0", evaluator=_wrapped(cifar_dir, cache))
    _, first = _episode(env, {"fidelity": "naswot"})
    env.close()

    def no_scoring(self, arch):
        raise AssertionError(f"scored {arch} again")

    monkeypatch.setattr(ZeroCostEvaluator, "__call__", no_scoring)
    # A copy (as a worker process gets it) opens the store itself.
    evaluator = pickle.loads(pickle.dumps(_wrapped(cifar_dir, cache)))
    _, again = _episode(gym.make("NASBench201-v0", evaluator=evaluator), {"fidelity": "naswot"})
    assert again["score"] == first["score"] and again["train_seconds"] == first["train_seconds"]


def test_fidelities_and_proxies_are_checked(cifar_dir):
    env = gym.make("NASBench201-v0", evaluator=_wrapped(cifar_dir))
    with pytest.raises(
        ValueError, match=r"expected a fidelity in \('12ep', '200ep'\) for dataset 'cifar10', got 'snip'"
    ):
        env.reset(options={"fidelity": "snip"})  # offered by ZeroCostEvaluator, not asked for here
    with pytest.raises(
        ValueError, match=r"expected a zero-cost proxy in \[.*\], got 'synflw' \(did you mean 'synflow'\?\)"
    ):
        ZeroCostFidelities(NB201Evaluator(cifar_dir), "nb201", proxies=("synflw",), data_dir=cifar_dir)
    with pytest.raises(ValueError, match=r"expected a non-empty sequence of proxy names, got 'synflow'"):
        ZeroCostFidelities(NB201Evaluator(cifar_dir), "nb201", proxies="synflow", data_dir=cifar_dir)
    without = ZeroCostFidelities(hash_accuracy, "nb201", data_dir=cifar_dir)
    assert without.fidelities[-1] == "jacob_cov" and without.fingerprint == "hash-accuracy/v1"
    with pytest.raises(
        ValueError, match=r"expected a fidelity in \[.*\] \(function has no other\), got '12ep'"
    ):
        without.with_fidelity("12ep")
