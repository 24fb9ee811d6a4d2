"""The evaluation runner: which results are cached, the store key of evaluators without a
fingerprint, and metrics values made JSON-safe for the store."""

from __future__ import annotations

import functools
import json
import warnings
from typing import Any

import numpy as np
import pytest

from nas_gym.envs import NASEnv
from nas_gym.evaluation.metrics import EvaluatorOutputError, normalize_metrics
from nas_gym.evaluation.runner import EvaluationRunner, evaluator_fingerprint
from nas_gym.evaluation.store import EvaluationStore
from tests.helpers.fakes import hash_accuracy


class FlakyEvaluator:
    """Raises ``error`` on the first ``failures`` calls for each architecture whose name starts
    with ``prefix``, then succeeds."""

    fingerprint = "flaky/v1"

    def __init__(self, error: Exception, failures: int = 1, prefix: str = ""):
        self.error = error
        self.failures = failures
        self.prefix = prefix
        self.calls: list[str] = []

    def __call__(self, arch: str) -> dict[str, Any]:
        self.calls.append(arch)
        if arch.startswith(self.prefix) and self.calls.count(arch) <= self.failures:
            raise self.error
        return hash_accuracy(arch)


# ---------------------------------------------------------------------------------------- caching
@pytest.mark.parametrize(
    ("error", "status"),
    [(ValueError("transient"), "failed"), (MemoryError("no room"), "oom")],
    ids=["failed", "oom"],
)
def test_failures_are_not_cached_so_the_next_try_runs_again(tmp_path, error, status) -> None:
    evaluator = FlakyEvaluator(error)
    runner = EvaluationRunner(evaluator, "seed", tmp_path / "s.sqlite")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the 'failed' notice
        first, first_cached = runner.evaluate("a")
    assert (first["status"], first_cached) == (status, False)
    assert runner.lookup("a") is None and runner.store is not None and len(runner.store) == 0
    second, second_cached = runner.evaluate("a")
    assert (second["status"], second_cached) == ("ok", False)
    assert runner.evaluate("a") == (second, True)
    assert evaluator.calls == ["a", "a"] and runner.calls == 2


def test_evaluate_many_runs_a_failed_arch_once_per_batch_without_marking_repeats_cached() -> None:
    evaluator = FlakyEvaluator(ValueError("transient"), failures=2, prefix="bad")
    runner = EvaluationRunner(evaluator, "seed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        batch = runner.evaluate_many(["bad", "good", "bad", "good"])
        assert [(m["status"], cached) for m, cached in batch] == [
            ("failed", False),
            ("ok", False),
            ("failed", False),
            ("ok", True),
        ]
        assert evaluator.calls == ["bad", "good"]
        # The next batch tries the failed architecture again (its second failure), not the good one.
        again = runner.evaluate_many(["bad", "good"])
    assert [(m["status"], cached) for m, cached in again] == [("failed", False), ("ok", True)]
    assert runner.evaluate_many(["bad"])[0][0]["status"] == "ok"
    assert evaluator.calls == ["bad", "good", "bad", "bad"]


# ---------------------------------------------------------------------------------------- store keys
def _scaled(arch: str, scale: float) -> dict[str, Any]:
    return {"accuracy": hash_accuracy(arch)["accuracy"] * scale}


def test_evaluator_without_fingerprint_and_a_store_warns_once_at_construction(tmp_path) -> None:
    path = tmp_path / "s.sqlite"
    with pytest.warns(UserWarning, match=r"declares no 'fingerprint'.*give it a 'fingerprint'") as record:
        runner = EvaluationRunner(lambda arch: {"accuracy": 0.5}, "seed", path)
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runner.evaluate("a")
        EvaluationRunner(lambda arch: {"accuracy": 0.5}, "seed")  # no store: nothing is keyed
        EvaluationRunner(FlakyEvaluator(ValueError()), "seed", path)  # has a fingerprint


def test_partials_with_different_arguments_get_different_store_keys(tmp_path) -> None:
    half, full = functools.partial(_scaled, scale=0.5), functools.partial(_scaled, scale=1.0)
    assert evaluator_fingerprint(half) == f"functools.partial({__name__}._scaled, scale=0.5)"
    assert (
        evaluator_fingerprint(functools.partial(_scaled, "x"))
        == f"functools.partial({__name__}._scaled, 'x')"
    )
    path = tmp_path / "s.sqlite"
    with pytest.warns(UserWarning, match="declares no 'fingerprint'"):
        EvaluationRunner(half, "seed", path).evaluate("a")
    with pytest.warns(UserWarning, match="declares no 'fingerprint'"):
        metrics, cached = EvaluationRunner(full, "seed", path).evaluate("a")
    assert not cached and metrics["accuracy"] == hash_accuracy("a")["accuracy"]


# ---------------------------------------------------------------------------------------- JSON-safe metrics
class NumpyEvaluator:
    """Returns numpy values, as evaluators that compute with numpy do."""

    fingerprint = "numpy-values/v1"

    def __call__(self, arch: str) -> dict[str, Any]:
        return {
            "accuracy": np.float32(0.5),
            "params": np.int64(1234),
            "loss": np.float32(1.25),
            "epochs": np.int64(3),
            "converged": np.bool_(True),
            "score": np.array(2.5),
            "shape": (np.int32(1), 2),
            "curve": [np.float64(0.25), {"best": np.float16(0.5)}],
            "note": np.str_("fine"),
        }


def test_numpy_extras_become_plain_json_types() -> None:
    metrics = normalize_metrics(NumpyEvaluator()("a"), 0.1)
    expected = {
        "accuracy": 0.5,
        "params": 1234,
        "loss": 1.25,
        "epochs": 3,
        "converged": True,
        "score": 2.5,
        "shape": [1, 2],
        "curve": [0.25, {"best": 0.5}],
        "note": "fine",
    }
    assert {k: metrics[k] for k in expected} == expected
    plain = (type(None), bool, int, float, str, list, dict)

    def types(value: Any) -> set[type]:
        if isinstance(value, list):
            return {list}.union(*map(types, value))
        if isinstance(value, dict):
            return {dict}.union(*map(types, value.values()))
        return {type(value)}

    assert set().union(*map(types, metrics.values())) <= set(plain)
    assert json.loads(json.dumps(metrics)) == metrics


def test_numpy_extras_go_through_an_env_step_into_the_store(tmp_path) -> None:
    path = tmp_path / "s.sqlite"
    env = NASEnv("nb201", evaluator=NumpyEvaluator(), store=path)
    env.reset(seed=0)
    for _ in range(6):
        *_, info = env.step(0)
    env.close()
    assert info["loss"] == 1.25 and type(info["loss"]) is float
    stored = EvaluationStore(path).get("nb201", info["arch"], NumpyEvaluator.fingerprint)
    assert stored is not None and stored["shape"] == [1, 2] and stored["converged"] is True


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"weights": np.zeros(3)}, r"value 'weights' as .*got numpy\.ndarray"),
        ({"model": object()}, r"value 'model' as .*got builtins\.object"),
        ({"history": [1.0, {2}]}, r"value 'history'\[1\] as .*got builtins\.set"),
        ({"per_class": {0: 0.5}}, r"str keys in the evaluator's value 'per_class', got the key 0 \(int\)"),
        ({1: 0.5}, r"str keys in the evaluator's dict, got the key 1 \(int\)"),
        ({"params": "many"}, r"expected 'params' as an int or None, got 'many'"),
    ],
)
def test_values_without_a_json_form_are_refused_by_name(extra: dict[Any, Any], match: str) -> None:
    with pytest.raises(EvaluatorOutputError, match=match):
        normalize_metrics({"accuracy": 0.5, **extra}, 0.1)
