"""The serial and process executors: order of results, evaluations through the runner in the
workers, failures, and dead workers retried then failed."""

from __future__ import annotations

import os

import pytest

from nas_gym.parallel.executors import ProcessExecutor, SerialExecutor, WorkerDiedError
from tests.helpers.fakes import hash_accuracy
from tests.parallel.tasks import ARCHS, Killer, not_a_dict, raising, slower_first, without_seconds


@pytest.fixture(scope="module")
def processes():
    with ProcessExecutor(workers=2) as executor:
        yield executor


# ---------------------------------------------------------------------------------------- serial
def test_serial_executor_returns_metrics_in_order() -> None:
    with SerialExecutor() as executor:
        results = executor.evaluate(hash_accuracy, ARCHS)
    assert [r["accuracy"] for r in results] == [hash_accuracy(a)["accuracy"] for a in ARCHS]
    assert all(r["status"] == "ok" and r["params"] is None for r in results)


def test_serial_map_reports_each_result_as_it_arrives() -> None:
    seen: list[tuple[int, float]] = []
    results = SerialExecutor().map(len, ["a", "bcd", "ef"], on_result=lambda i, r: seen.append((i, r)))
    assert results == [1, 3, 2] and seen == [(0, 1), (1, 3), (2, 2)]
    with pytest.raises(TypeError, match="expected a callable, got int"):
        SerialExecutor().evaluate(3, ["a"])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- processes
def test_process_executor_gathers_out_of_order_results_in_input_order(processes: ProcessExecutor) -> None:
    results = processes.evaluate(slower_first, ARCHS)
    assert without_seconds(results) == without_seconds(SerialExecutor().evaluate(slower_first, ARCHS))
    assert len({r["pid"] for r in results}) == 2 and os.getpid() not in {r["pid"] for r in results}
    # Each worker knows its index, from which auto_device picks its GPU (tests/core/test_devices.py).
    assert {r["worker"] for r in results} == {"0", "1"}


def test_process_executor_failures_and_bad_output(processes: ProcessExecutor) -> None:
    results = processes.evaluate(raising, ["a", "bad", "b"])
    assert [r["status"] for r in results] == ["ok", "failed", "ok"]
    assert "ValueError: no such layer" in results[1]["error"]
    with pytest.raises(TypeError, match="expected the evaluator to return a dict"):
        processes.evaluate(not_a_dict, ["a", "b"])
    assert processes.evaluate(hash_accuracy, ["a"])[0]["status"] == "ok"  # usable afterwards


def test_process_executor_refuses_a_function_that_does_not_pickle(processes: ProcessExecutor) -> None:
    with pytest.raises(TypeError, match="expected a picklable function for executor 'processes'"):
        processes.evaluate(lambda arch: {"accuracy": 0.5}, ["a"])


def test_killed_worker_is_retried_once_then_failed(processes: ProcessExecutor, tmp_path) -> None:
    archs = ["a", "die-once-1", "b", "die-always-1", "c", "d"]
    restarts = processes.restarts
    with pytest.warns(
        RuntimeWarning, match=r"evaluation of 'die-always-1' failed: its worker died on each of 2 attempt"
    ):
        results = processes.evaluate(Killer(tmp_path), archs)
    statuses = dict(zip(archs, (r["status"] for r in results)))
    assert statuses == {**dict.fromkeys(archs, "ok"), "die-always-1": "failed"}
    assert "worker process died" in results[3]["error"] and results[3]["accuracy"] == 0.0
    for arch, result in zip(archs, results):
        if arch != "die-always-1":
            assert result["accuracy"] == hash_accuracy(arch)["accuracy"]
    assert processes.restarts - restarts >= 2  # each death broke the pool, and the search went on
    assert processes.evaluate(hash_accuracy, ["e"])[0]["status"] == "ok"


def test_process_executor_without_retries_fails_at_first_death(tmp_path) -> None:
    with ProcessExecutor(workers=1, max_retries=0) as executor:
        with pytest.warns(RuntimeWarning, match="'die-once-2' failed: its worker died on each of 1 attempt"):
            results = executor.evaluate(Killer(tmp_path), ["die-once-2", "a"])
        assert [r["status"] for r in results] == ["failed", "ok"]
        # A plain map has no failure to record a dead task as: it raises.
        with pytest.raises(WorkerDiedError, match="the worker running 'die-always-2' died on each of 1"):
            executor.map(Killer(tmp_path), ["die-always-2"])


def test_closed_process_executor_refuses_work() -> None:
    executor = ProcessExecutor(workers=1)
    executor.close()
    with pytest.raises(RuntimeError, match="expected an open executor, got one that was closed"):
        executor.evaluate(hash_accuracy, ["a"])
