"""EvaluationRunner.evaluate_many: a batch of architectures, store hits served, each miss sent to
the executor once."""

from __future__ import annotations

from typing import Any

from nas_gym.evaluation.runner import EvaluationRunner
from nas_gym.evaluation.store import EvaluationStore
from tests.helpers.fakes import RecordingExecutor, hash_accuracy


def without_seconds(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k != "train_seconds"}


def test_evaluate_many_serves_hits_and_sends_each_miss_once(tmp_path) -> None:
    calls: list[str] = []

    def counting(arch: str) -> dict[str, Any]:
        calls.append(arch)
        return hash_accuracy(arch)

    counting.fingerprint = "counting/v1"  # type: ignore[attr-defined]
    path = tmp_path / "evals.sqlite"
    EvaluationRunner(counting, "seed", path).evaluate("stored")
    runner = EvaluationRunner(counting, "seed", EvaluationStore(path))
    runner.evaluate("cached")
    calls.clear()

    executor = RecordingExecutor()
    archs = ["new", "stored", "new", "cached", "other", "stored"]
    results = runner.evaluate_many(archs, executor)

    assert executor.batches == [["new", "other"]]
    assert calls == ["new", "other"] and runner.calls == 3
    assert [cached for _, cached in results] == [False, True, True, True, False, True]
    assert [m["accuracy"] for m, _ in results] == [hash_accuracy(a)["accuracy"] for a in archs]
    assert runner.store is not None and runner.store.get("seed", "other", runner.fingerprint) is not None
    # A second batch is all hits: the executor is not called.
    assert all(cached for _, cached in runner.evaluate_many(archs, executor))
    assert len(executor.batches) == 1


def test_evaluate_many_without_executor_equals_evaluate_loop() -> None:
    archs = ["a", "b", "a", "c"]
    looped = EvaluationRunner(hash_accuracy, "seed")
    batched = EvaluationRunner(hash_accuracy, "seed")
    expected = [looped.evaluate(a) for a in archs]
    got = batched.evaluate_many(archs)
    assert [(without_seconds(m), c) for m, c in got] == [(without_seconds(m), c) for m, c in expected]
    assert batched.calls == looped.calls == 3
