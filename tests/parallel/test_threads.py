"""CPU threads per evaluation: the default share of the cores (``cores // workers``), the share
that reaches the worker processes, and equal CIFAR-10 metrics on every executor for a pinned
count (the count changes the order of floating-point reductions, so only a fixed count can
promise the same bits)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from nas_gym.core import devices
from nas_gym.core.devices import cpu_count, default_threads
from nas_gym.parallel.executors import Executor, ProcessExecutor, SerialExecutor
from tests.parallel.tasks import thread_settings

# Two cheap architectures of the "seed" space (seconds each on the "smoke" budget) that reach
# different accuracies, so that equal metrics are not equal by accident.
CIFAR_ARCHS = ["k3-relu-max", "k5-relu-avg|k3-relu-max"]


def fake_cores(monkeypatch: pytest.MonkeyPatch, cores: int, gpus: int = 0) -> None:
    """Make this process see ``cores`` cores in its affinity mask (and many more on the machine,
    which must not count) and ``gpus`` GPUs."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(devices, "cuda_device_count", lambda: gpus)


# ---------------------------------------------------------------------------------------- defaults
def test_default_threads_divide_the_cores_of_the_affinity_mask_among_the_workers(monkeypatch) -> None:
    fake_cores(monkeypatch, 8)
    assert cpu_count() == 8 and default_threads() == 8 and default_threads(3) == 2
    assert SerialExecutor().threads_per_task == 8  # one task at a time: every core
    shares = {workers: ProcessExecutor(workers=workers).threads_per_task for workers in (1, 2, 3, 8, 16)}
    assert shares == {1: 8, 2: 4, 3: 2, 8: 1, 16: 1}  # cores // workers, at least 1
    default = ProcessExecutor()  # one worker per core without a GPU
    assert (default.workers, default.threads_per_task) == (8, 1)
    assert repr(ProcessExecutor(workers=2)) == "ProcessExecutor(workers=2, threads=4, mp_context='spawn')"
    pinned = ProcessExecutor(workers=2, threads=3)
    assert pinned.threads_per_task == 3 and SerialExecutor(threads=3).threads_per_task == 3
    fake_cores(monkeypatch, 8, gpus=2)
    default = ProcessExecutor()  # one worker per GPU, the cores shared among them
    assert (default.workers, default.threads_per_task) == (2, 4)
    with pytest.raises(ValueError, match="expected concurrency as a positive int, got 0"):
        default_threads(0)
    with pytest.raises(ValueError, match="expected threads as a positive int or None, got 0"):
        ProcessExecutor(workers=2, threads=0)


def test_process_workers_run_torch_on_their_share_of_the_cores(monkeypatch) -> None:
    # Two cores in the mask, two workers: one thread each, where torch alone would start one per
    # core of the machine. (Torch caps its threads at the machine's cores, so a share above them
    # would not show in the workers.)
    fake_cores(monkeypatch, 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with ProcessExecutor(workers=2) as executor:
        assert executor.map(thread_settings, [0, 1]) == [(1, "1"), (1, "1")]


def test_process_workers_keep_the_thread_count_the_user_set(monkeypatch) -> None:
    fake_cores(monkeypatch, 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with ProcessExecutor(workers=1) as executor:
        assert executor.threads_per_task == 2  # the share that the user's count overrides
        assert executor.map(thread_settings, [0]) == [(1, "1")]


# ---------------------------------------------------------------------------------------- CIFAR-10
def without_seconds(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "train_seconds"} for r in results]


@pytest.fixture(scope="module")
def smoke_trainer(cifar_dir):
    from nas_gym.backends.cifar.trainer import CifarTrainer

    return CifarTrainer("seed", budget="smoke", device="cpu", data_dir=cifar_dir)


@pytest.fixture(scope="module")
def one_thread_processes():
    with ProcessExecutor(workers=2, threads=1) as executor:
        yield executor


def evaluate_on(executor: Executor, trainer: Any) -> list[dict[str, Any]]:
    """The metrics of :data:`CIFAR_ARCHS` with the trainer on the executor's threads per task."""
    return executor.evaluate(trainer.with_threads(executor.threads_per_task), CIFAR_ARCHS)


@pytest.fixture(scope="module")
def serial_one_thread(smoke_trainer) -> list[dict[str, Any]]:
    """The reference: one thread per evaluation, in this process, whatever torch is set to here."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(previous + 2)  # the trainer's count must win over the process setting
    try:
        results = evaluate_on(SerialExecutor(threads=1), smoke_trainer)
    finally:
        torch.set_num_threads(previous)
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert results[0]["accuracy"] != results[1]["accuracy"]
    return results


@pytest.mark.slow
@pytest.mark.parametrize("name", ["processes", "ray"])
def test_pinned_threads_give_bit_identical_cifar_metrics_on_every_executor(
    name: str, request: pytest.FixtureRequest, smoke_trainer, serial_one_thread, one_thread_processes
) -> None:
    # The Ray fixture skips without Ray; the process pool is shared with the test below.
    executor = one_thread_processes if name == "processes" else request.getfixturevalue("ray_executor")
    assert executor.threads_per_task == 1
    assert "threads=1" in smoke_trainer.with_threads(1).fingerprint  # a store keeps counts apart
    assert without_seconds(evaluate_on(executor, smoke_trainer)) == without_seconds(serial_one_thread)


@pytest.mark.slow
def test_a_trainer_without_a_count_pins_the_cores_where_it_was_built(
    smoke_trainer, one_thread_processes
) -> None:
    """Pool workers run on their share of the cores (one thread here), fewer than the trainer was
    built with; the trainer carries its own count into them, so they agree with this process."""
    assert smoke_trainer.threads == cpu_count()
    archs = CIFAR_ARCHS[:1]  # one is enough: the comparison above covers a pair
    serial = SerialExecutor().evaluate(smoke_trainer, archs)
    pooled = one_thread_processes.evaluate(smoke_trainer, archs)
    assert pooled[0]["status"] == "ok" and pooled[0]["accuracy"] > 0
    assert without_seconds(pooled) == without_seconds(serial)
