"""Devices: the GPU of each evaluation worker, how a process learns which worker it is, and the
device an executor assigns to a task."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from nas_gym.core.devices import (
    DEVICE_ENV,
    WORKER_INDEX_ENV,
    assign_device,
    assigned_device,
    auto_device,
    default_workers,
    visible_cuda_devices,
    worker_index,
)


def test_assign_device_round_robin(monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert [assign_device(i) for i in range(5)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1"]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert assign_device(4) == "cpu"
    for bad in (-1, 1.0, True):
        with pytest.raises(ValueError, match="expected worker_index as a non-negative int"):
            assign_device(bad)  # type: ignore[arg-type]


def test_auto_device_follows_the_worker_index(monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv(WORKER_INDEX_ENV, raising=False)
    process = multiprocessing.current_process()

    assert worker_index() is None and auto_device() == "cuda:0"  # the main process
    monkeypatch.setattr(process, "name", "Worker<AsyncVectorEnv>-3")  # Gymnasium's async workers
    assert worker_index() == 3 and auto_device() == "cuda:1"
    monkeypatch.setattr(process, "name", "SpawnProcess-2")  # SB3's SubprocVecEnv workers, 1-based
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: process)
    assert worker_index() == 1 and auto_device() == "cuda:1"
    monkeypatch.setattr(process, "name", "evaluator")
    assert worker_index() == os.getpid()
    monkeypatch.setenv(WORKER_INDEX_ENV, "4")  # ProcessExecutor's workers
    assert worker_index() == 4 and auto_device() == "cuda:0"
    monkeypatch.setenv(WORKER_INDEX_ENV, "first")
    with pytest.raises(ValueError, match=f"expected {WORKER_INDEX_ENV} as an integer >= 0, got 'first'"):
        auto_device()


def test_an_assigned_device_wins_over_the_worker_index(monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv(WORKER_INDEX_ENV, "1")
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    with assigned_device("cpu"):  # a Ray task that reserved no GPU on a GPU machine
        assert auto_device() == "cpu" and os.environ[DEVICE_ENV] == "cpu"
        with assigned_device("cuda:0"):
            assert auto_device() == "cuda:0"
        assert auto_device() == "cpu"
    assert DEVICE_ENV not in os.environ and auto_device() == "cuda:1"
    monkeypatch.setenv(DEVICE_ENV, "gpu0")
    with pytest.raises(ValueError, match=r"expected device 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu0'"):
        auto_device()


def test_visible_cuda_devices_and_workers_per_gpu(monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(6)), raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert visible_cuda_devices() == ["0", "1"]
    assert (default_workers(), default_workers(per_gpu=3)) == (2, 6)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-a, 3")  # torch counts what the variable names
    assert visible_cuda_devices() == ["GPU-a", "3"]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert visible_cuda_devices() == [] and default_workers(per_gpu=3) == 6  # one per core
    with pytest.raises(ValueError, match="expected per_gpu as a positive int, got 0"):
        default_workers(per_gpu=0)
