"""GPU placement, checked on a CPU machine through fakes: the GPU each Ray task runs on, a worker
process pinned to its GPU, workers per GPU, and a worker that a sticky CUDA error broke retired."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from nas_gym.core import devices
from nas_gym.core.devices import DEVICE_ENV, WORKER_INDEX_ENV, auto_device
from nas_gym.parallel import workers
from nas_gym.parallel.executors import ProcessExecutor
from nas_gym.parallel.spec import ExecutorSpec
from nas_gym.parallel.workers import (
    StickyCudaGuard,
    broken_by,
    init_process_worker,
    mark_if_sticky,
    run_marked,
)
from tests.helpers.fakes import hash_accuracy
from tests.parallel.tasks import STICKY_CUDA_ERROR, gpu_settings, pid_of, poisons_cuda


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process sees two GPUs (counted the way nas-gym counts them, through torch) and 8 cores."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    monkeypatch.delenv(WORKER_INDEX_ENV, raising=False)


@pytest.fixture
def healthy_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a test marks, this process is not broken afterwards."""
    monkeypatch.setattr(workers, "_broken_by", None)


# ---------------------------------------------------------------------------------------- Ray
def _device_in_task(item: str) -> tuple[str, str | None]:
    return auto_device(), os.environ.get(DEVICE_ENV)


@pytest.mark.parametrize(
    ("gpu_ids", "visible", "device"),
    [
        ([], None, "cpu"),  # no GPU reserved: the CPU, although the machine has GPUs
        ([1], None, "cuda:1"),  # a reused worker: the GPU of this task, not of its first
        (["GPU-b"], "GPU-a,GPU-b", "cuda:1"),  # Ray names GPUs by the entries of the variable
        ([3, 2], "2,3", "cuda:0"),  # several GPUs: the first
    ],
)
def test_a_ray_task_runs_on_the_gpu_ray_gave_it(
    two_gpus, monkeypatch: pytest.MonkeyPatch, gpu_ids: list, visible: str | None, device: str
) -> None:
    ray = pytest.importorskip("ray")
    from nas_gym.parallel.ray import _run_in_ray_task

    monkeypatch.setattr(ray, "get_gpu_ids", lambda: gpu_ids)
    if visible is not None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert auto_device() == "cuda:0"  # outside a task: worker 0's GPU
    assert _run_in_ray_task(_device_in_task, "a") == (device, device)
    assert DEVICE_ENV not in os.environ  # the next task of the worker starts clean


def test_a_ray_gpu_that_the_worker_cannot_see_is_an_error() -> None:
    pytest.importorskip("ray")
    from nas_gym.parallel.ray import task_device

    with pytest.raises(
        RuntimeError, match=r"expected the GPU '7' that Ray gave this task among CUDA_VISIBLE_DEVICES='0,1'"
    ):
        task_device([7], "0,1")
    with pytest.raises(
        ValueError, match=r"expected an assigned device 'cpu', 'cuda' or 'cuda:N', got 'auto'"
    ):
        with devices.assigned_device("auto"):
            pass


def test_ray_tasks_reserve_a_gpu_where_the_cluster_has_one(
    ray_executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    from nas_gym.parallel.ray import NOSET_CUDA_VISIBLE_DEVICES, RayExecutor

    assert ray_executor.num_gpus == 0.0  # the test instance has no GPU
    assert ray_executor.task_options()["runtime_env"] == {"env_vars": {"CUDA_VISIBLE_DEVICES": ""}}
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0, "GPU": 2.0})
    shares = {}
    for kwargs in ({}, {"per_gpu": 2}, {"num_gpus": 0}, {"num_gpus": 0.25}):
        executor = RayExecutor(workers=1, **kwargs)  # shares the running instance
        shares[str(kwargs)] = executor.num_gpus, executor.task_options()["runtime_env"]["env_vars"]
        executor.close()
    noset = {NOSET_CUDA_VISIBLE_DEVICES: "1"}
    assert shares == {
        "{}": (1.0, noset),
        "{'per_gpu': 2}": (0.5, noset),
        "{'num_gpus': 0}": (0.0, {"CUDA_VISIBLE_DEVICES": ""}),
        "{'num_gpus': 0.25}": (0.25, noset),
    }
    with ExecutorSpec("ray", workers=1, per_gpu=4).build() as executor:  # shares the instance too
        assert executor.num_gpus == 0.25


def test_ray_tasks_without_a_gpu_see_none_and_refuse_a_cuda_evaluator(ray_executor) -> None:
    # A real task: Ray gave it no GPU, so it sees none and "auto" means the CPU there.
    assert ray_executor.map(gpu_settings, [0]) == [(None, "", "cpu")]

    class OnCuda:
        device_type = "cuda"

        def __call__(self, arch: str) -> dict[str, float]:
            return hash_accuracy(arch)

    with pytest.raises(
        ValueError, match=r"expected Ray tasks with GPUs for an evaluator on CUDA, got num_gpus=0"
    ):
        ray_executor.evaluate(OnCuda(), ["a"])


def test_a_ray_worker_broken_by_a_sticky_cuda_error_ends_at_its_next_task(
    healthy_process, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = pytest.importorskip("ray")
    from nas_gym.parallel.ray import _run_in_ray_task

    class Exited(Exception):
        pass

    def exit_(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [0])
    monkeypatch.setattr(os, "_exit", exit_)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        _run_in_ray_task(poisons_cuda, "sticky")
    assert broken_by() == f"RuntimeError: {STICKY_CUDA_ERROR}"
    with pytest.raises(Exited, match="1"):  # Ray then runs the task again on a fresh worker
        _run_in_ray_task(hash_accuracy, "a")


# ---------------------------------------------------------------------------------------- processes
def test_each_worker_process_sees_only_its_gpu(two_gpus, monkeypatch: pytest.MonkeyPatch) -> None:
    # Inside real (spawned) workers: the parent counted two GPUs, each worker sees one of them.
    with ProcessExecutor(workers=3) as executor:
        seen = executor.map(gpu_settings, range(6))
    assert all(visible == ["0", "1"][int(slot) % 2] for slot, visible, _ in seen), seen
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")  # the parent's own selection is kept
    with ProcessExecutor(workers=2) as executor:
        seen = executor.map(gpu_settings, range(4))
    assert all(visible == ["5", "7"][int(slot) % 2] for slot, visible, _ in seen), seen


def test_the_initializer_pins_worker_k_to_gpu_k_mod_n(monkeypatch: pytest.MonkeyPatch) -> None:
    # The third worker of a pool over two GPUs shares the first GPU; no GPUs: the variable stays.
    for name in (WORKER_INDEX_ENV, "CUDA_VISIBLE_DEVICES"):
        monkeypatch.setenv(name, "unset")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # leaves torch's thread count alone
    monkeypatch.setattr(workers, "_worker_slot", None)
    monkeypatch.setattr(workers, "_in_flight", None)
    counter = multiprocessing.Value("i", 2)
    init_process_worker(counter, [-1] * 3, 1, ["0", "1"])
    assert (os.environ[WORKER_INDEX_ENV], os.environ["CUDA_VISIBLE_DEVICES"], counter.value) == ("2", "0", 3)
    init_process_worker(counter, [-1] * 4, 1, [])
    assert (os.environ[WORKER_INDEX_ENV], os.environ["CUDA_VISIBLE_DEVICES"]) == ("3", "0")


def test_workers_per_gpu(two_gpus) -> None:
    per_gpu = ProcessExecutor(per_gpu=2)
    assert (per_gpu.workers, per_gpu.threads_per_task) == (4, 2)  # 2 GPUs x 2, 8 cores / 4
    spec = ExecutorSpec("processes", per_gpu=3)
    assert (spec.build().workers, spec.build().threads_per_task) == (6, 1)
    assert spec.build(workers=4).workers == 4  # no more workers than tasks
    # A cap never raises the count above the default: 8 runs on 2 GPUs are 2 workers, not 8.
    assert ExecutorSpec("processes").build(workers=8).workers == 2
    with pytest.raises(ValueError, match="expected per_gpu as a positive int or None, got 0"):
        ProcessExecutor(per_gpu=0)
    with pytest.raises(
        ValueError, match="expected either workers or per_gpu .*, got workers=4 and per_gpu=2"
    ):
        ProcessExecutor(workers=4, per_gpu=2)
    with pytest.raises(ValueError, match="expected either workers or per_gpu .* got workers=4 and per_gpu=2"):
        ExecutorSpec("processes", workers=4, per_gpu=2)
    with pytest.raises(
        ValueError, match="expected per_gpu only with executor 'processes' or 'ray', got per_gpu=2"
    ):
        ExecutorSpec("serial", per_gpu=2)
    with pytest.raises(
        ValueError, match=r"expected either num_gpus or per_gpu .* got num_gpus=0.5 and per_gpu=2"
    ):
        ExecutorSpec("ray", num_gpus=0.5, per_gpu=2)


def test_without_gpus_per_gpu_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "cuda_device_count", lambda: 0)
    assert ProcessExecutor(per_gpu=3).workers == ProcessExecutor().workers == devices.cpu_count()


# ---------------------------------------------------------------------------------------- sticky errors
def test_a_sticky_cuda_error_retires_its_worker() -> None:
    archs = ["a", "sticky", "b", "c"]
    with ProcessExecutor(workers=1) as executor:
        with pytest.warns(
            RuntimeWarning, match="met a CUDA error that leaves its GPU unusable .*illegal memory access"
        ):
            results = executor.evaluate(poisons_cuda, archs)
        assert [r["status"] for r in results] == ["ok", "failed", "ok", "ok"]
        assert results[1]["error"] == f"RuntimeError: {STICKY_CUDA_ERROR}"
        # The evaluations after it ran in a fresh process, where CUDA works.
        assert results[2]["pid"] == results[3]["pid"] != results[0]["pid"]
        assert [r["accuracy"] for r in results[2:]] == [hash_accuracy(a)["accuracy"] for a in archs[2:]]
        assert (executor.retired, executor.restarts) == (1, 0)
        assert executor.evaluate(poisons_cuda, ["d"])[0]["pid"] == results[2]["pid"]  # no second retirement
        # A plain map passes the error on, and the pool it broke is gone too.
        before = executor.map(pid_of, [0])
        with pytest.raises(RuntimeError, match="illegal memory access"):
            executor.map(poisons_cuda, ["sticky"])
        assert executor.map(pid_of, [0]) != before


def test_what_marks_a_process_as_broken(healthy_process) -> None:
    assert not mark_if_sticky(RuntimeError("CUDA error: out of memory")) and broken_by() is None
    with pytest.raises(ValueError):
        StickyCudaGuard(lambda arch: int(arch))("x")  # any other error passes through unmarked
    assert broken_by() is None
    # An error raised from a sticky one (the trainer's StickyCudaError) marks it, as does the
    # error prefix by which an evaluation runner reports that error.
    try:
        try:
            raise RuntimeError(STICKY_CUDA_ERROR)
        except RuntimeError as exc:
            raise RuntimeError("the GPU of this process is unusable") from exc
    except RuntimeError as exc:
        assert mark_if_sticky(exc)
    assert broken_by() == f"RuntimeError: {STICKY_CUDA_ERROR}"
    workers._broken_by = None
    assert run_marked(dict, {"status": "failed", "error": "StickyCudaError: gone"})["status"] == "failed"
    assert broken_by() == "StickyCudaError: gone"
