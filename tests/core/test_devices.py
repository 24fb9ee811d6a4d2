"""Devices: the GPU of each evaluation worker, and how a process learns which worker it is."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from nas_gym.core.devices import WORKER_INDEX_ENV, assign_device, auto_device, worker_index


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
