"""The machine as evaluations see it: CPU cores, CUDA devices, which worker a process is, and the
intra-op thread count of torch.

One module for every layer that decides a device or a thread count: the trainer, the executors and
the agents (whose tiny networks run on one thread). torch is imported lazily, so importing this
module is cheap and never initialises CUDA.

**Threads.** An evaluation on the CPU uses :func:`default_threads` threads unless the caller pins
a count: the cores this process may use (``os.sched_getaffinity``), divided among the evaluations
that run at the same time (a pool of ``w`` workers: ``cores // w`` each). The count changes the
order of floating-point reductions, and so the last digits of a result; it is therefore part of the
trainer's fingerprint, and results agree across executors only for the same count.

**GPUs.** Evaluation worker ``i`` takes GPU ``i % n`` of the ``n`` visible ones
(:func:`assign_device`); :func:`worker_index` tells a process which worker it is. An executor that
knows the device of a task better (a Ray task's GPU) names it in :data:`DEVICE_ENV` while the task
runs (:func:`assigned_device`), and ``"auto"`` follows it. The device type of ``"auto"`` is asked
through NVML, and an explicit ``"cuda"`` is checked only where the evaluation runs
(:func:`resolve_device`): a parent process that builds an evaluator never initialises CUDA, so the
workers it forks afterwards (Gymnasium's ``AsyncVectorEnv``) can still use it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from nas_gym.core.checks import check_int

if TYPE_CHECKING:
    import torch

WORKER_INDEX_ENV = "NAS_GYM_WORKER_INDEX"
"""Environment variable holding the index of an evaluation worker process; :func:`worker_index`
reads it. The process executor sets it in its workers; set it yourself in workers that you start
another way."""

DEVICE_ENV = "NAS_GYM_DEVICE"
"""Environment variable naming the device (``"cpu"``, ``"cuda:N"``) that an executor assigned to
the task running in this process; ``device="auto"`` (and a bare ``"cuda"``) follow it. The Ray
executor sets it for each task from the GPUs Ray gave the task (:func:`assigned_device`)."""

# Gymnasium's AsyncVectorEnv names its workers "Worker<AsyncVectorEnv>-{index}".
_GYMNASIUM_WORKER_NAME = re.compile(r"^Worker<[^>]*>-(\d+)$")
# multiprocessing's default child names: "SpawnProcess-3", "ForkProcess-1:2" (1-based).
_MULTIPROCESSING_CHILD_NAME = re.compile(r"-(\d+)(?::\d+)*$")
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


# ---------------------------------------------------------------------------------------- cores
def cpu_count() -> int:
    """The CPU cores this process may use (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_threads(concurrency: int = 1) -> int:
    """The intra-op threads of one CPU evaluation when ``concurrency`` evaluations run at once on
    this machine: ``cpu_count() // concurrency``, at least 1."""
    return max(1, cpu_count() // check_int(concurrency, "concurrency", minimum=1))


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run torch's CPU ops on ``threads`` intra-op threads inside the block, then restore the
    process setting (``None``: leave it as it is). The thread count belongs to the user's
    process; nas-gym only borrows it."""
    if threads is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(check_int(threads, "threads", minimum=1))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def share_threads(threads: int) -> None:
    """Give this worker process ``threads`` threads of the machine's cores, unless the user set
    ``OMP_NUM_THREADS``.

    Without a share each worker starts one thread per core and the workers fight over the cores.
    Torch and BLAS read these variables when they start; torch may already be running when the
    parent's main module imported it, so its setting is changed too.
    """
    if "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        # Inside the branch: torch reads MKL_NUM_THREADS before OMP_NUM_THREADS, so setting it
        # next to a user's OMP_NUM_THREADS would override their count.
        os.environ.setdefault("MKL_NUM_THREADS", str(threads))
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------- workers
def worker_index() -> int | None:
    """The index of this process among the evaluation workers of its parent, or ``None`` in a
    process that is not one.

    In order: :data:`WORKER_INDEX_ENV` (set by the process executor), the worker name of
    Gymnasium's ``AsyncVectorEnv`` (``Worker<AsyncVectorEnv>-{index}``), then the number
    ``multiprocessing`` gives each child it starts (Stable-Baselines3's ``SubprocVecEnv``
    workers, counted from 0), and for a child of another kind its process id.
    """
    value = os.environ.get(WORKER_INDEX_ENV)
    if value is not None:
        if not value.isdigit():
            raise ValueError(f"expected {WORKER_INDEX_ENV} as an integer >= 0, got {value!r}")
        return int(value)
    process = multiprocessing.current_process()
    match = _GYMNASIUM_WORKER_NAME.match(process.name)
    if match:
        return int(match[1])
    if multiprocessing.parent_process() is None:
        return None
    match = _MULTIPROCESSING_CHILD_NAME.search(process.name)
    return int(match[1]) - 1 if match else os.getpid()


# ---------------------------------------------------------------------------------------- GPUs
def cuda_device_count() -> int:
    """The visible CUDA devices, counted without initialising CUDA in this process
    (``torch.cuda.device_count`` asks NVML, so processes forked from this one can still use CUDA);
    0 without torch."""
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.device_count())


def assign_device(worker_index: int) -> str:
    """The device of evaluation worker ``worker_index``: round robin over the visible CUDA
    devices (``"cuda:{worker_index % n}"``), ``"cpu"`` when there is none."""
    check_int(worker_index, "worker_index", minimum=0)
    count = cuda_device_count()
    return f"cuda:{worker_index % count}" if count > 0 else "cpu"


def auto_device() -> str:
    """What ``device="auto"`` means in this process: the device an executor assigned to the
    running task (:data:`DEVICE_ENV`: a Ray task's GPU, or ``"cpu"`` for a task that reserved
    none), else :func:`assign_device` of :func:`worker_index` (``"cuda:0"`` or ``"cpu"`` outside
    worker processes).

    Call it where the evaluation runs (in the worker), not where the evaluator is built: a
    vector env or an executor builds the evaluator once and ships it to every worker.
    """
    assigned = os.environ.get(DEVICE_ENV)
    if assigned:
        text = device_text(assigned)
        if text != "auto":
            return text
    index = worker_index()
    return assign_device(0 if index is None else index)


@contextlib.contextmanager
def assigned_device(device: str) -> Iterator[None]:
    """Inside the block, ``device="auto"`` means ``device`` (``"cpu"`` or ``"cuda:N"``) in this
    process: an executor wraps each task in it with the device it reserved for the task. Restores
    :data:`DEVICE_ENV` afterwards (a worker process runs many tasks)."""
    text = device_text(device)
    if text == "auto":
        raise ValueError(f"expected an assigned device 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    previous = os.environ.get(DEVICE_ENV)
    os.environ[DEVICE_ENV] = text
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(DEVICE_ENV, None)
        else:
            os.environ[DEVICE_ENV] = previous


def visible_cuda_devices() -> list[str]:
    """The CUDA devices this process may use, as the names ``CUDA_VISIBLE_DEVICES`` takes: its own
    entries when it is set (indices, ``GPU-<uuid>`` or MIG names), else ``"0"``..``"n-1"``;
    counted without initialising CUDA (:func:`cuda_device_count`). A worker process whose
    ``CUDA_VISIBLE_DEVICES`` is one of them sees only that GPU, as ``cuda:0``."""
    count = cuda_device_count()
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return [str(i) for i in range(count)]
    return [name.strip() for name in listed.split(",") if name.strip()][:count]


def default_workers(per_gpu: int = 1) -> int:
    """The default number of concurrent evaluations on this machine: ``per_gpu`` per visible CUDA
    device when there are any, else one per CPU core this process may use (``per_gpu`` then
    changes nothing)."""
    check_int(per_gpu, "per_gpu", minimum=1)
    gpus = cuda_device_count()
    return gpus * per_gpu if gpus > 0 else cpu_count()


def device_text(device: object) -> str:
    """``device`` (a string or a ``torch.device``) as one of ``"auto"``, ``"cpu"``, ``"cuda"``,
    ``"cuda:N"``; a format check only, CUDA is not touched."""
    text = str(device) if type(device).__name__ == "device" else device
    if not isinstance(text, str) or not _DEVICE_PATTERN.match(text):
        raise ValueError(f"expected device 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return text


def auto_device_type() -> str:
    """The device type ``device="auto"`` trains on here, asked without initialising CUDA:
    ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    return "cuda" if cuda_device_count() > 0 else "cpu"


def device_type_of(device: object) -> str:
    """The device type (``"cpu"`` or ``"cuda"``) that ``device`` trains on, without initialising
    CUDA in this process: a parent process that builds a trainer for ``device="cuda"`` can still
    fork workers that use CUDA.

    ``"auto"`` counts the GPUs through NVML (:func:`auto_device_type`). An explicit ``"cuda"`` or
    ``"cuda:N"`` is taken at its word: whether the device exists is checked where the evaluation
    runs (:func:`resolve_device`), which is also the only place that knows (a Ray driver on a
    head node without GPUs sends its evaluations to GPU workers). Raises ``ValueError`` for a bad
    name, and for a CUDA device with a torch built without CUDA (that cannot change anywhere)."""
    text = device_text(device)
    if text == "auto":
        return auto_device_type()
    if text == "cpu":
        return "cpu"
    import torch

    if not torch.backends.cuda.is_built():
        raise ValueError(
            f"expected a CUDA device to be available for device={text!r}, got a torch "
            f"{torch.__version__} built without CUDA"
        )
    return "cuda"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` (:func:`auto_device`), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a checked
    ``torch.device``; raises ``ValueError`` for anything else or a CUDA device that is not there.
    A bare ``"cuda"`` is the CUDA device an executor assigned to this task (:data:`DEVICE_ENV`),
    else the current one. Call it where the evaluation runs: for CUDA it initialises the runtime.
    Inside a process executor's worker, only the worker's own GPU is visible, as ``cuda:0``."""
    import torch

    text = device_text(device)
    if text == "auto":
        return torch.device(auto_device())
    assigned = os.environ.get(DEVICE_ENV, "")
    if text == "cuda" and assigned.startswith("cuda"):
        text = device_text(assigned)
    resolved = torch.device(text)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"expected a CUDA device to be available for device={text!r}, got none")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(
                f"expected a CUDA device index in 0..{count - 1} for device={text!r}, got {resolved.index}"
            )
    return resolved


# ---------------------------------------------------------------------------------------- memory
def free_accelerator_memory() -> None:
    """Give back what a failed evaluation held: Python's reference cycles first (tensors that only
    a cycle keeps alive), then the blocks that torch's CUDA caching allocator keeps for reuse.

    Call it after the ``except`` block that caught the failure, not inside it: until the block
    ends, the traceback keeps every frame of the failed call alive, and with them its tensors.
    CUDA is left alone in a process where it never started (nothing to free, and starting it
    here would break processes forked later)."""
    import gc

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
