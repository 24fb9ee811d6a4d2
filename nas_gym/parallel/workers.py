"""What runs inside the worker processes of the executors: each process executor worker's slot
(hence its GPU and its share of the cores), the record of which task it runs, and the retirement
of a worker whose CUDA context a sticky error broke.

A sticky CUDA error (an illegal memory access, a device-side assert:
:func:`~nas_gym.core.errors.is_sticky_cuda_error`) leaves the process's CUDA context unusable:
every later CUDA call in that process fails too. The evaluation that met it is recorded as
``failed`` like any other, but the process must not take another task. :class:`StickyCudaGuard`
marks the process when an evaluation raises such an error; a marked process executor worker
answers every later task with :class:`Refused`, and the executor replaces its workers once the
running tasks are done (:class:`~nas_gym.parallel.executors.ProcessExecutor`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nas_gym.core.devices import WORKER_INDEX_ENV, share_threads
from nas_gym.core.errors import is_sticky_cuda_error

STICKY_ERROR_PREFIX = "StickyCudaError: "
"""How the ``error`` of an evaluation's metrics starts when the evaluator raised
:class:`~nas_gym.core.errors.StickyCudaError`: a worker that returns such metrics is retired too."""

# The state of this process as a worker; set by init_process_worker and StickyCudaGuard.
_worker_slot: int | None = None
_in_flight: Any = None
_broken_by: str | None = None


@dataclass(frozen=True)
class Refused:
    """The answer of a worker whose CUDA context is broken to a task it did not run: the executor
    runs the task again on a fresh worker (it is not an attempt of the task)."""

    error: str
    """The sticky error that broke the worker."""


@dataclass(frozen=True)
class Retired:
    """The result of the task that broke its worker's CUDA context, with the error: the executor
    keeps the result and replaces the worker."""

    result: Any
    error: str


def broken_by() -> str | None:
    """The sticky CUDA error that made this process unusable for further tasks, or ``None``."""
    return _broken_by


def mark_if_sticky(exc: BaseException) -> bool:
    """Mark this process as broken when ``exc`` (or an exception it was raised from) is a sticky
    CUDA error; returns whether it was one."""
    global _broken_by
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if is_sticky_cuda_error(current):
            _broken_by = _broken_by or f"{type(current).__name__}: {current}"
            return True
        current = current.__cause__ or current.__context__
    return False


def run_marked(fn: Callable[[Any], Any], item: Any) -> Any:
    """``fn(item)``, marking this process as broken when it raises a sticky CUDA error or returns
    the metrics of an evaluation whose evaluator raised
    :class:`~nas_gym.core.errors.StickyCudaError` (their ``error`` starts with
    :data:`STICKY_ERROR_PREFIX`)."""
    global _broken_by
    try:
        result = fn(item)
    except BaseException as exc:
        mark_if_sticky(exc)
        raise
    error = result.get("error") if isinstance(result, dict) else None
    if isinstance(error, str) and error.startswith(STICKY_ERROR_PREFIX):
        _broken_by = _broken_by or error
    return result


class StickyCudaGuard:
    """An evaluator that calls ``evaluator`` and, when it raises a sticky CUDA error, marks this
    process as broken before passing the exception on (the evaluation runner then records the
    evaluation as ``failed``). :meth:`Executor.evaluate
    <nas_gym.parallel.executors.Executor.evaluate>` wraps every evaluator in it."""

    def __init__(self, evaluator: Callable[[str], Any]):
        self.evaluator = evaluator

    def __call__(self, arch: str) -> Any:
        try:
            return self.evaluator(arch)
        except BaseException as exc:
            mark_if_sticky(exc)
            raise

    def __repr__(self) -> str:
        return f"StickyCudaGuard({self.evaluator!r})"


# ---------------------------------------------------------------------------------------- processes
def init_process_worker(counter: Any, in_flight: Any, threads: int, gpus: Sequence[str]) -> None:
    """Initializer of a process executor worker: its slot (the next free index), its GPU and its
    share of the CPU threads.

    With GPUs, worker ``k`` sees only GPU ``gpus[k % len(gpus)]``, as ``cuda:0``: the variable is
    read when CUDA starts, which in a fresh (spawned) worker is after this, so neither an
    evaluator's ``"auto"`` or ``"cuda"`` nor any library can reach another worker's GPU."""
    global _worker_slot, _in_flight, _broken_by
    with counter.get_lock():
        slot = counter.value
        counter.value += 1
    # A forked worker starts with its parent's state; its own CUDA context is not broken yet.
    _worker_slot, _in_flight, _broken_by = slot, in_flight, None
    os.environ[WORKER_INDEX_ENV] = str(slot)
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    share_threads(threads)


def run_in_process_worker(fn: Callable[[Any], Any], item: Any, task: int) -> Any:
    """One task in a process executor worker. While it runs, the worker's slot names the task, so
    the parent knows which tasks a dead worker pool was running.

    A worker whose CUDA context is broken answers :class:`Refused` without running the task; the
    task that broke it comes back as :class:`Retired`, or raises as it did."""
    if _broken_by is not None:
        return Refused(_broken_by)
    slot = _worker_slot
    if slot is not None and slot < len(_in_flight):
        _in_flight[slot] = task
    try:
        result = run_marked(fn, item)
    finally:
        if slot is not None and slot < len(_in_flight):
            _in_flight[slot] = -1
    return result if _broken_by is None else Retired(result, _broken_by)
