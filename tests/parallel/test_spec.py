"""ExecutorSpec and make_executor: executor names, the checks of each combination, and what
build makes of the spec."""

from __future__ import annotations

import sys

import pytest

from nas_gym.parallel.executors import Executor, ProcessExecutor, SerialExecutor
from nas_gym.parallel.ray import RayExecutor
from nas_gym.parallel.spec import ExecutorSpec, make_executor


def test_make_executor_names_and_errors(monkeypatch) -> None:
    assert isinstance(make_executor("serial"), SerialExecutor)
    with make_executor("processes", workers=3) as executor:
        assert isinstance(executor, ProcessExecutor) and executor.workers == 3
    with pytest.raises(
        ValueError,
        match=r"expected executor in \['processes', 'ray', 'serial'\], got 'proceses' \(did you mean 'processes'\?\)",
    ):
        make_executor("proceses")
    with pytest.raises(ValueError, match="expected workers as a positive int or None, got 0"):
        make_executor("processes", workers=0)
    with pytest.raises(ValueError, match="expected threads as a positive int or None, got 0"):
        make_executor("processes", threads=0)
    with pytest.raises(ValueError, match="expected workers=1 .* with executor 'serial', got 4"):
        make_executor("serial", workers=4)
    with pytest.raises(ValueError, match="expected ray_address only with executor 'ray'"):
        make_executor("processes", ray_address="127.0.0.1:6379")
    with pytest.raises(ValueError, match="expected num_gpus only with executor 'ray'"):
        make_executor("processes", num_gpus=1)
    with pytest.raises(
        ValueError, match=r"expected mp_context in \[.*\], got 'spwan' \(did you mean 'spawn'\?\)"
    ):
        ProcessExecutor(mp_context="spwan")
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r'pip install "nas-gym\[ray\]"'):
        make_executor("ray")
    assert issubclass(RayExecutor, Executor)


def test_build_caps_the_workers_and_pins_the_threads() -> None:
    spec = ExecutorSpec("processes", workers=4, threads=3)
    assert spec.concurrent and not ExecutorSpec().concurrent
    capped = spec.build(workers=2)  # no more workers than tasks
    assert (capped.workers, capped.threads_per_task) == (2, 3)
    assert spec.build(workers=8).workers == 4
    assert ExecutorSpec("processes").build(workers=2).workers == 2
    assert SerialExecutor(threads=2).threads_per_task == ExecutorSpec(threads=2).build().threads_per_task == 2
    assert spec.to_dict() == {
        "name": "processes",
        "workers": 4,
        "ray_address": None,
        "num_gpus": None,
        "threads": 3,
        "per_gpu": None,
    }


def test_a_ray_task_reserves_the_pinned_threads_as_cpus(ray_executor: RayExecutor) -> None:
    executor = ExecutorSpec("ray", workers=2, threads=2).build()  # shares the running instance
    try:
        assert isinstance(executor, RayExecutor)
        assert (executor.num_cpus, executor.threads_per_task) == (2.0, 2)
    finally:
        executor.close()
    assert (ray_executor.num_cpus, ray_executor.threads_per_task) == (1.0, 1)  # the default
