"""Executors: order of results, batch evaluation through the runner, dead workers, GPU pinning,
and the Ray path on a local instance that stays on loopback."""

from __future__ import annotations

import contextlib
import ipaddress
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import RecordingExecutor, hash_accuracy

from nas_gym.evaluation import executors
from nas_gym.evaluation.executors import (
    WORKER_INDEX_ENV,
    Executor,
    ProcessExecutor,
    RayExecutor,
    SerialExecutor,
    assign_device,
    auto_device,
    make_executor,
    worker_index,
)
from nas_gym.evaluation.runner import EvaluationRunner
from nas_gym.evaluation.store import EvaluationStore

ARCHS = [str(i) for i in range(6)]


# ---------------------------------------------------------------------------------------- evaluators
# Module level, so that worker processes and Ray tasks can unpickle them.
def slower_first(arch: str) -> dict[str, Any]:
    """Finishes the batch in reverse: the first architectures sleep longest."""
    time.sleep(0.03 * (len(ARCHS) - int(arch)))
    return {**hash_accuracy(arch), "pid": os.getpid(), "worker": os.environ.get(WORKER_INDEX_ENV)}


class Killer:
    """Kills its own worker process: ``die-always-*`` every time, ``die-once-*`` only on the
    first attempt (a marker file remembers it), anything else after a short evaluation."""

    def __init__(self, marker_dir: Path):
        self.marker_dir = marker_dir

    def __call__(self, arch: str) -> dict[str, Any]:
        marker = self.marker_dir / arch
        if arch.startswith("die-always") or (arch.startswith("die-once") and not marker.exists()):
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.2)  # long enough that other evaluations are running when a worker dies
        return hash_accuracy(arch)


def raising(arch: str) -> dict[str, Any]:
    if arch == "bad":
        raise ValueError("no such layer")
    return hash_accuracy(arch)


def not_a_dict(arch: str) -> float:
    return 0.5


def without_seconds(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Metrics minus what depends on where they ran."""
    return [{k: v for k, v in r.items() if k not in ("train_seconds", "pid", "worker")} for r in results]


# ---------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def processes():
    with ProcessExecutor(workers=2) as executor:
        yield executor


@pytest.fixture(scope="session")
def ray_executor():
    """A local Ray instance with 2 CPUs, started once for the session (it takes seconds): the
    vector-env tests reuse it."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process: the test needs to start its own")
    executor = RayExecutor(workers=2)
    yield executor
    executor.close()
    assert not ray.is_initialized()


# ---------------------------------------------------------------------------------------- serial, runner
def test_serial_executor_returns_metrics_in_order() -> None:
    with SerialExecutor() as executor:
        results = executor.map(hash_accuracy, ARCHS)
    assert [r["accuracy"] for r in results] == [hash_accuracy(a)["accuracy"] for a in ARCHS]
    assert all(r["status"] == "ok" and r["params"] is None for r in results)


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
    assert [(without_seconds([m]), c) for m, c in got] == [(without_seconds([m]), c) for m, c in expected]
    assert batched.calls == looped.calls == 3


# ---------------------------------------------------------------------------------------- processes
def test_process_executor_gathers_out_of_order_results_in_input_order(processes: ProcessExecutor) -> None:
    results = processes.map(slower_first, ARCHS)
    assert without_seconds(results) == without_seconds(SerialExecutor().map(slower_first, ARCHS))
    assert len({r["pid"] for r in results}) == 2 and os.getpid() not in {r["pid"] for r in results}
    # Each worker knows its index, from which auto_device picks its GPU (tested below).
    assert {r["worker"] for r in results} == {"0", "1"}


def test_cpu_training_gives_the_serial_accuracy_in_pool_workers(
    processes: ProcessExecutor, cifar_dir
) -> None:
    """Pool workers get a share of the cores as their thread count (here fewer threads than
    this process is set to), and the thread count changes CPU results: the trainer pins its own."""
    import torch

    from nas_gym.evaluation.trainer import CifarTrainer

    trainer = CifarTrainer(
        "seed",
        budget={"epochs": 1, "train_size": 1024, "val_size": 1000, "batch_size": 64},
        device="cpu",
        data_dir=cifar_dir,
    )
    archs = ["k3-relu-max|k3-relu-max|k3-relu-max", "k5-relu-avg|k3-relu-max"]
    threads = torch.get_num_threads()
    torch.set_num_threads(max(2, 2 * processes._threads))
    try:
        serial = SerialExecutor().map(trainer, archs)
    finally:
        torch.set_num_threads(threads)
    pooled = processes.map(trainer, archs)
    assert [r["status"] for r in pooled] == ["ok", "ok"]
    assert [r["accuracy"] for r in pooled] == [r["accuracy"] for r in serial]


def test_process_executor_failures_and_bad_output(processes: ProcessExecutor) -> None:
    results = processes.map(raising, ["a", "bad", "b"])
    assert [r["status"] for r in results] == ["ok", "failed", "ok"]
    assert "ValueError: no such layer" in results[1]["error"]
    with pytest.raises(TypeError, match="expected the evaluator to return a dict"):
        processes.map(not_a_dict, ["a", "b"])
    assert processes.map(hash_accuracy, ["a"])[0]["status"] == "ok"  # usable afterwards


def test_killed_worker_is_retried_once_then_failed(processes: ProcessExecutor, tmp_path) -> None:
    archs = ["a", "die-once-1", "b", "die-always-1", "c", "d"]
    restarts = processes.restarts
    with pytest.warns(RuntimeWarning, match=r"'die-always-1' failed: its worker died on each of 2 attempt"):
        results = processes.map(Killer(tmp_path), archs)
    statuses = dict(zip(archs, (r["status"] for r in results)))
    assert statuses == {**dict.fromkeys(archs, "ok"), "die-always-1": "failed"}
    assert "worker process died" in results[3]["error"] and results[3]["accuracy"] == 0.0
    for arch, result in zip(archs, results):
        if arch != "die-always-1":
            assert result["accuracy"] == hash_accuracy(arch)["accuracy"]
    assert processes.restarts - restarts >= 2  # each death broke the pool, and the search went on
    assert processes.map(hash_accuracy, ["e"])[0]["status"] == "ok"


def test_process_executor_without_retries_fails_at_first_death(tmp_path) -> None:
    with ProcessExecutor(workers=1, max_retries=0) as executor, pytest.warns(RuntimeWarning):
        results = executor.map(Killer(tmp_path), ["die-once-2", "a"])
    assert [r["status"] for r in results] == ["failed", "ok"]


def test_closed_process_executor_refuses_work() -> None:
    executor = ProcessExecutor(workers=1)
    executor.close()
    with pytest.raises(RuntimeError, match="expected an open executor"):
        executor.map(hash_accuracy, ["a"])


# ---------------------------------------------------------------------------------------- devices
def test_assign_device_round_robin(monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert [assign_device(i) for i in range(5)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1"]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert assign_device(4) == "cpu"
    for bad in (-1, 1.0, True):
        with pytest.raises(ValueError, match="expected worker_index as an int >= 0"):
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


# ---------------------------------------------------------------------------------------- factory
def test_make_executor_names_and_errors(monkeypatch) -> None:
    assert isinstance(make_executor("serial"), SerialExecutor)
    with make_executor("processes", workers=3) as executor:
        assert isinstance(executor, ProcessExecutor) and executor.workers == 3
    with pytest.raises(
        ValueError,
        match=r"expected executor in \['processes', 'ray', 'serial'\], got 'proceses' \(did you mean 'processes'\?\)",
    ):
        make_executor("proceses")
    with pytest.raises(ValueError, match="expected workers as an int >= 1 or None, got 0"):
        make_executor("processes", workers=0)
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


def test_ray_executor_argument_errors() -> None:
    pytest.importorskip("ray")
    with pytest.raises(ValueError, match="expected num_gpus >= 0, got -1"):
        RayExecutor(num_gpus=-1)
    with pytest.raises(ValueError, match="expected num_cpus > 0, got 0"):
        RayExecutor(num_cpus=0)
    with pytest.raises(ValueError, match="expected address as 'host:port'"):
        RayExecutor(address=" ")


# ---------------------------------------------------------------------------------------- ray
def _descendants(pid: int) -> set[int]:
    """``pid`` and every process below it (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo.extend(children.get(current, []))
    return found


def _listening_addresses(pids: set[int]) -> list[tuple[str, int]]:
    """``(address, port)`` of each TCP socket on which ``pids`` listen."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    addresses = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            # /proc stores each 32-bit word in host (little-endian) order.
            packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            addresses.append((socket.inet_ntop(family, packed), int(port, 16)))
    return addresses


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads listening sockets from Linux /proc")
def test_local_ray_instance_listens_on_loopback_only_without_dashboard(ray_executor: RayExecutor) -> None:
    import ray

    node = ray.nodes()[0]
    assert executors.ray_node_address() == "127.0.0.1" and node["NodeManagerAddress"] == "127.0.0.1"
    assert node["Resources"]["CPU"] == 2.0
    pids = _descendants(os.getpid())
    commands = []
    for pid in pids:
        with contextlib.suppress(OSError):
            commands.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" "))
    assert any(b"gcs_server" in c for c in commands)  # the instance runs below this process
    addresses = _listening_addresses(pids)
    assert addresses and all(_is_loopback(a) for a, _ in addresses), addresses
    # No dashboard: no web address, no server on its port; Ray's head process for it runs in
    # its minimal mode (usage statistics only, no job API).
    assert not ray._private.worker._global_node.address_info.get("webui_url")
    assert 8265 not in {port for _, port in addresses}
    assert all(b"--minimal" in c for c in commands if b"dashboard/dashboard.py" in c)
    # A second executor shares the instance; closing it leaves the first one working.
    RayExecutor(workers=2).close()
    assert ray.is_initialized()


def test_ray_results_equal_serial_and_dead_workers_are_retried(ray_executor: RayExecutor, tmp_path) -> None:
    results = ray_executor.map(slower_first, ARCHS)
    assert without_seconds(results) == without_seconds(SerialExecutor().map(slower_first, ARCHS))
    archs = ["a", "die-once-3", "die-always-3", "b"]
    with pytest.warns(RuntimeWarning, match=r"'die-always-3' failed: its worker died on each of 2 attempt"):
        results = ray_executor.map(Killer(tmp_path), archs)
    assert [r["status"] for r in results] == ["ok", "ok", "failed", "ok"]
    assert results[1]["accuracy"] == hash_accuracy("die-once-3")["accuracy"]
    with pytest.raises(TypeError, match="expected the evaluator to return a dict"):
        ray_executor.map(not_a_dict, ["a"])
