"""What an executor is made of, as one value: the ``--executor``, ``--workers``, ``--ray-address``,
``--num-gpus``, ``--threads`` and ``--per-gpu`` options of ``nas-gym search`` and ``nas-gym compare``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from nas_gym.core.checks import check_int, check_number
from nas_gym.core.devices import default_workers
from nas_gym.core.errors import did_you_mean
from nas_gym.parallel.executors import EXECUTORS, Executor, ProcessExecutor, SerialExecutor


@dataclass(frozen=True)
class ExecutorSpec:
    """Where tasks run; :meth:`build` makes the executor. Checked on construction, so a bad
    combination fails before any work starts."""

    name: str = "serial"
    """``"serial"``, ``"processes"`` or ``"ray"`` (:data:`~nas_gym.parallel.executors.EXECUTORS`)."""
    workers: int | None = None
    """Concurrent tasks (``None``: one per GPU, or :attr:`per_gpu` per GPU, else one per core;
    ``serial``: 1)."""
    ray_address: str | None = None
    """An existing Ray cluster (``ray`` only; ``None``: a local instance on loopback)."""
    num_gpus: float | None = None
    """GPUs each Ray task reserves, fractions allowed (``ray`` only; ``None``: ``1 / per_gpu``
    when the cluster has GPUs, else 0; ``0``: the tasks run on the CPU). Worker processes take one
    GPU each, round robin."""
    threads: int | None = None
    """CPU threads per task, pinned (``None``: the cores divided among the concurrent tasks; a Ray
    task reserves this many CPUs). Results on the CPU agree across executors for equal counts."""
    per_gpu: int | None = None
    """Evaluations per GPU (``processes``: ``GPUs x per_gpu`` workers; ``ray``: tasks reserve
    ``1 / per_gpu`` GPU); ``None``: one. Not with ``workers`` (``processes``) or ``num_gpus``
    (``ray``)."""

    def __post_init__(self) -> None:
        if self.name not in EXECUTORS:
            raise ValueError(
                f"expected executor in {sorted(EXECUTORS)}, got {self.name!r}{did_you_mean(self.name, EXECUTORS)}"
            )
        check_int(self.workers, "workers", minimum=1, none_ok=True)
        check_int(self.threads, "threads", minimum=1, none_ok=True)
        check_int(self.per_gpu, "per_gpu", minimum=1, none_ok=True)
        if self.num_gpus is not None:
            check_number(self.num_gpus, "num_gpus", minimum=0)
        if self.name == "serial" and self.workers not in (None, 1):
            raise ValueError(f"expected workers=1 (or none) with executor 'serial', got {self.workers!r}")
        if self.name == "serial" and self.per_gpu is not None:
            raise ValueError(
                f"expected per_gpu only with executor 'processes' or 'ray', got per_gpu={self.per_gpu} "
                "with 'serial'"
            )
        if self.name == "processes" and self.per_gpu is not None and self.workers is not None:
            raise ValueError(
                f"expected either workers or per_gpu (workers per GPU) with executor 'processes', got "
                f"workers={self.workers} and per_gpu={self.per_gpu}"
            )
        if self.name == "ray" and self.per_gpu is not None and self.num_gpus is not None:
            raise ValueError(
                f"expected either num_gpus or per_gpu (num_gpus = 1 / per_gpu) with executor 'ray', got "
                f"num_gpus={self.num_gpus} and per_gpu={self.per_gpu}"
            )
        if self.name != "ray":
            if self.ray_address is not None:
                raise ValueError(f"expected ray_address only with executor 'ray', got it with {self.name!r}")
            if self.num_gpus not in (None, 0):
                raise ValueError(
                    f"expected num_gpus only with executor 'ray' (worker processes take one GPU each), "
                    f"got num_gpus={self.num_gpus!r} with {self.name!r}"
                )

    @property
    def concurrent(self) -> bool:
        """Whether tasks may run at the same time (not ``serial``)."""
        return self.name != "serial"

    def build(self, workers: int | None = None) -> Executor:
        """The executor; ``workers`` caps the concurrent tasks (no more workers than tasks, say),
        never raises them above the default."""
        if self.name == "serial":
            return SerialExecutor(threads=self.threads)
        if self.name == "processes":
            count = self.workers or default_workers(self.per_gpu or 1)
            return ProcessExecutor(count if workers is None else min(count, workers), threads=self.threads)
        from nas_gym.parallel.ray import RayExecutor

        count = self.workers
        if workers is not None:
            count = min(count or workers, workers)
        return RayExecutor(
            count,
            address=self.ray_address,
            num_gpus=self.num_gpus,
            num_cpus=float(self.threads or 1),
            per_gpu=self.per_gpu,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_executor(
    name: str,
    workers: int | None = None,
    ray_address: str | None = None,
    num_gpus: float | None = None,
    threads: int | None = None,
    per_gpu: int | None = None,
) -> Executor:
    """The executor called ``name`` (``ExecutorSpec(name, ...).build()``)."""
    return ExecutorSpec(name, workers, ray_address, num_gpus, threads, per_gpu).build()
