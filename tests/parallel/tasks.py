"""Tasks the executor tests send to worker processes and Ray tasks: defined at module level, so
that the workers can unpickle them."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas_gym.core.devices import DEVICE_ENV, WORKER_INDEX_ENV
from tests.helpers.fakes import hash_accuracy

ARCHS = [str(i) for i in range(6)]
"""A batch that :func:`slower_first` finishes in reverse."""


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


def thread_settings(item: Any) -> tuple[int, str | None]:
    """The intra-op threads of torch in the worker, and its ``OMP_NUM_THREADS``."""
    import torch

    return torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")


def without_seconds(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Metrics minus what depends on where they ran."""
    return [{k: v for k, v in r.items() if k not in ("train_seconds", "pid", "worker")} for r in results]


STICKY_CUDA_ERROR = "CUDA error: an illegal memory access was encountered"
_cuda_broken = False


def poisons_cuda(arch: str) -> dict[str, Any]:
    """Stands in for a GPU evaluation: ``sticky`` meets an illegal memory access, after which every
    evaluation in the same process fails the same way, as it would on a real GPU."""
    global _cuda_broken
    if arch == "sticky" or _cuda_broken:
        _cuda_broken = True
        raise RuntimeError(STICKY_CUDA_ERROR)
    return {**hash_accuracy(arch), "pid": os.getpid()}


def pid_of(item: Any) -> int:
    return os.getpid()


def gpu_settings(item: Any) -> tuple[str | None, str | None, str | None]:
    """The worker's index, its ``CUDA_VISIBLE_DEVICES`` and the device an executor assigned to the
    task (``NAS_GYM_DEVICE``)."""
    time.sleep(0.05)
    return (
        os.environ.get(WORKER_INDEX_ENV),
        os.environ.get("CUDA_VISIBLE_DEVICES"),
        os.environ.get(DEVICE_ENV),
    )
