"""Executors: where a batch of independent tasks runs, one ``map`` for all of them.

An :class:`Executor` applies a picklable function to each item of a batch and returns the results
in the order of the batch, whatever order the tasks finished in. The same executors serve the
evaluations of an env (:meth:`Executor.evaluate`, which maps the evaluator over architectures) and
the search runs of ``nas-gym compare``.

- :class:`SerialExecutor`: one after another, in this process.
- :class:`ProcessExecutor`: a pool of worker processes (``spawn``, so CUDA is safe), each pinned
  to one GPU when there are any (``per_gpu`` workers per GPU), each with its share of the CPU
  cores.
- :class:`~nas_gym.parallel.ray.RayExecutor`: Ray tasks, on a local instance bound to loopback or
  on an existing cluster (``pip install "nas-gym[ray]"``).

A worker process that dies during a task (killed, segfault) is retried once; a task whose worker
died on every attempt is handed to ``on_death`` (an evaluation becomes status ``failed``), or
raises :class:`WorkerDiedError` when there is none. A worker whose CUDA context a sticky CUDA
error broke is retired (:mod:`nas_gym.parallel.workers`): the evaluation that met the error is
``failed``, and later tasks run on fresh workers.
"""

from __future__ import annotations

import functools
import multiprocessing
import pickle
import time
import warnings
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from nas_gym.core.checks import check_int
from nas_gym.core.devices import default_threads, default_workers, visible_cuda_devices
from nas_gym.core.errors import did_you_mean
from nas_gym.evaluation.metrics import failure_metrics
from nas_gym.evaluation.runner import EvaluationRunner, Evaluator
from nas_gym.parallel.workers import (
    Refused,
    Retired,
    StickyCudaGuard,
    init_process_worker,
    run_in_process_worker,
)

T = TypeVar("T")
R = TypeVar("R")

OnResult = Callable[[int, Any], None]
"""``on_result(index, result)``: called in the caller's process as each task finishes."""
OnDeath = Callable[..., Any]
"""``on_death(item, attempts, error, seconds, out_of_memory=False)``: the result of a task whose
worker died on every attempt (``out_of_memory``: killed by a memory monitor)."""

EXECUTORS: dict[str, str] = {
    "serial": "one task after another, in this process",
    "processes": "a pool of worker processes on this machine, each pinned to one GPU when there are any",
    "ray": 'Ray tasks on a local Ray instance or an existing cluster (pip install "nas-gym[ray]")',
}
"""The executor names, with a one-line description of each."""


class WorkerDiedError(RuntimeError):
    """A task whose worker process died on every attempt, for a ``map`` without ``on_death``."""


def died_metrics(
    arch: str, attempts: int, error: str, seconds: float, out_of_memory: bool = False
) -> dict[str, Any]:
    """The metrics of an evaluation whose worker died on each of ``attempts`` attempts: status
    ``failed`` with a warning, or ``oom`` when a memory monitor killed it (the ``on_death`` of
    :meth:`Executor.evaluate`)."""
    if out_of_memory:
        return failure_metrics("oom", error, seconds)
    warnings.warn(
        f"evaluation of {arch!r} failed: its worker died on each of {attempts} attempt(s) "
        f"({error}); recorded with status 'failed'",
        RuntimeWarning,
        stacklevel=3,
    )
    return failure_metrics(
        "failed", f"the worker process died during the evaluation ({attempts} attempts): {error}", seconds
    )


def _raise_died(item: Any, attempts: int, error: str, seconds: float, out_of_memory: bool = False) -> Any:
    raise WorkerDiedError(f"the worker running {item!r} died on each of {attempts} attempt(s): {error}")


def check_picklable(fn: Callable[..., Any], executor: str) -> None:
    """Raise ``TypeError`` unless ``fn`` pickles (it travels to worker processes)."""
    try:
        pickle.dumps(fn)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise TypeError(
            f"expected a picklable function for executor {executor!r} (a function or class defined "
            f"at module level, not a lambda or a local function), got {fn!r}: {exc}"
        ) from exc


# ---------------------------------------------------------------------------------------- base
class Executor(ABC):
    """Runs a batch of independent tasks. Executors hold workers between calls; :meth:`close`
    them (or use ``with``)."""

    name: ClassVar[str]
    """The name :class:`~nas_gym.parallel.spec.ExecutorSpec` knows the executor by."""

    @property
    @abstractmethod
    def workers(self) -> int | None:
        """The most tasks that run at the same time (``None``: as many as a cluster allows)."""

    @property
    @abstractmethod
    def threads_per_task(self) -> int:
        """The CPU threads each task may use: what a CPU evaluation running here should set."""

    @abstractmethod
    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        on_result: OnResult | None = None,
        on_death: OnDeath | None = None,
    ) -> list[R]:
        """``[fn(item) for item in items]``, run concurrently where the executor allows it.

        ``on_result(i, result)`` sees each result as it arrives (progress displays);
        ``on_death`` gives the result of a task whose worker died on every attempt (default:
        raise :class:`WorkerDiedError`). An exception raised by ``fn`` propagates.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the workers; the executor is not usable afterwards."""

    def check_callable(self, fn: Callable[..., Any]) -> None:
        """Raise ``TypeError`` when this executor cannot run ``fn`` (before any work)."""
        if not callable(fn):
            raise TypeError(f"expected a callable, got {type(fn).__name__}")

    def evaluate(self, evaluator: Evaluator, archs: Sequence[str]) -> list[dict[str, Any]]:
        """The complete metrics of ``evaluator(arch)`` for each of ``archs``, in order: each
        evaluation runs through :meth:`EvaluationRunner.run_evaluator
        <nas_gym.evaluation.runner.EvaluationRunner.run_evaluator>` in its worker, so a raising
        evaluator gives status ``failed`` (``oom`` when out of memory), and a dead worker too.
        A sticky CUDA error retires the worker it broke (:class:`StickyCudaGuard`)."""
        if archs:
            self.check_callable(evaluator)
        task = functools.partial(EvaluationRunner.run_evaluator, StickyCudaGuard(evaluator))
        return self.map(task, archs, on_death=died_metrics)

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.workers})"


# ---------------------------------------------------------------------------------------- serial
class SerialExecutor(Executor):
    """One task after another, in this process (what an env does without an executor).

    Args:
        threads: the threads each task may use (default: every core of this process).
    """

    name = "serial"

    def __init__(self, threads: int | None = None):
        self._threads = check_int(threads, "threads", minimum=1, none_ok=True) or default_threads(1)

    @property
    def workers(self) -> int:
        return 1

    @property
    def threads_per_task(self) -> int:
        return self._threads

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        on_result: OnResult | None = None,
        on_death: OnDeath | None = None,
    ) -> list[R]:
        results = []
        for i, item in enumerate(items):
            results.append(fn(item))
            if on_result is not None:
                on_result(i, results[-1])
        return results

    def close(self) -> None:
        """Nothing to release: tasks run in this process."""


# ---------------------------------------------------------------------------------------- processes
class ProcessExecutor(Executor):
    """Tasks in a pool of worker processes on this machine
    (:class:`concurrent.futures.ProcessPoolExecutor`).

    Workers start with the ``spawn`` method by default: a forked child of a process that has used
    CUDA cannot use CUDA. Worker ``i`` gets :data:`~nas_gym.core.devices.WORKER_INDEX_ENV` ``= i``
    and, when this process sees ``n`` GPUs, ``CUDA_VISIBLE_DEVICES`` set to the ``i % n``-th of
    them before CUDA starts there: it sees that GPU only, as ``cuda:0`` (what ``device="auto"``
    and ``"cuda"`` then mean), so no evaluation lands on another worker's GPU. Each worker gets
    ``threads`` CPU threads (``OMP_NUM_THREADS``, unless already set). ``fn`` and the items are
    pickled: ``fn`` must be defined at module level (not a lambda).

    A worker that dies during a task breaks the whole pool: the pool restarts, the tasks that had
    not started go again, and those that were running get ``max_retries`` retries, each alone in
    the pool so that a task that kills its worker every time cannot take others down with it. A
    worker that a sticky CUDA error broke refuses further tasks; once the running tasks are done,
    the pool restarts and the refused tasks run on fresh workers (:attr:`retired`).

    Args:
        workers: worker processes (default :func:`~nas_gym.core.devices.default_workers`: one per
            GPU, else one per CPU core).
        threads: CPU threads per worker (default: the cores of this process divided among the
            workers, at least 1).
        mp_context: start method name or a ``multiprocessing`` context.
        max_retries: further attempts of a task whose worker died.
        per_gpu: workers per GPU instead of one, for evaluations that leave a GPU half idle
            (small networks): ``GPUs x per_gpu`` workers, each with its share of the cores.
            Without GPUs it changes nothing (one worker per core). Not with ``workers``.
    """

    name = "processes"

    def __init__(
        self,
        workers: int | None = None,
        threads: int | None = None,
        mp_context: str | BaseContext = "spawn",
        max_retries: int = 1,
        per_gpu: int | None = None,
    ):
        check_int(workers, "workers", minimum=1, none_ok=True)
        self.per_gpu = check_int(per_gpu, "per_gpu", minimum=1, none_ok=True)
        if workers is not None and per_gpu is not None:
            raise ValueError(
                f"expected either workers or per_gpu (workers per GPU), got workers={workers} and "
                f"per_gpu={per_gpu}"
            )
        self._workers = workers or default_workers(per_gpu or 1)
        self._threads = check_int(threads, "threads", minimum=1, none_ok=True) or default_threads(
            self._workers
        )
        if isinstance(mp_context, str):
            methods = multiprocessing.get_all_start_methods()
            if mp_context not in methods:
                raise ValueError(
                    f"expected mp_context in {methods}, got {mp_context!r}"
                    + did_you_mean(mp_context, methods)
                )
            mp_context = multiprocessing.get_context(mp_context)
        self._context = mp_context
        self.max_retries = check_int(max_retries, "max_retries", minimum=0)
        self._pool: ProcessPoolExecutor | None = None
        self._in_flight: Any = None
        self._closed = False
        self.restarts = 0
        """How many times a dead worker made the pool restart."""
        self.retired = 0
        """How many times a worker broken by a sticky CUDA error made the pool restart."""

    @property
    def workers(self) -> int:
        return self._workers

    @property
    def threads_per_task(self) -> int:
        return self._threads

    def check_callable(self, fn: Callable[..., Any]) -> None:
        """Raise ``TypeError`` unless ``fn`` pickles: it travels to the workers."""
        super().check_callable(fn)
        check_picklable(fn, self.name)

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._closed:
            raise RuntimeError("expected an open executor, got one that was closed")
        if self._pool is None:
            counter = self._context.Value("i", 0)
            self._in_flight = self._context.Array("q", [-1] * self._workers)
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=self._context,
                initializer=init_process_worker,
                # The GPUs are counted here through NVML, so this process can still fork.
                initargs=(counter, self._in_flight, self._threads, visible_cuda_devices()),
            )
        return self._pool

    def _discard_pool(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None

    def _run_round(
        self,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        batch: list[int],
        results: list[Any],
        done: list[bool],
        on_result: OnResult | None,
    ) -> tuple[list[int], set[int], str, list[int]]:
        """Run ``batch`` (indices into ``items``) concurrently and fill ``results``.

        Returns the indices left without a result because the pool broke, those of them that were
        running at that moment, and the error (all empty when the pool held), then the indices
        that a worker broken by a sticky CUDA error refused (they did not run)."""
        pool = self._ensure_pool()
        futures: dict[Future[Any], int] = {}
        error = ""
        refused: list[int] = []
        retire = ""
        try:
            for i in batch:
                futures[pool.submit(run_in_process_worker, fn, items[i], i)] = i
        except BrokenProcessPool as exc:  # a worker died while the batch was being submitted
            error = f"{type(exc).__name__}: {exc}"
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    i = futures[future]
                    try:
                        result = future.result()
                    except BrokenProcessPool as exc:
                        error = f"{type(exc).__name__}: {exc}"
                        continue
                    if isinstance(result, Refused):
                        refused.append(i)
                        retire = retire or result.error
                        continue
                    if isinstance(result, Retired):
                        result, retire = result.result, result.error
                    results[i], done[i] = result, True
                    if on_result is not None:
                        on_result(i, results[i])
        except BaseException:
            # A task that raised, or an interrupt: nothing of the batch is worth waiting for; the
            # tasks already running end on their own. A worker that the error broke goes too.
            self._discard_pool(wait=False)
            raise
        if retire:
            self._retire_pool(retire)
        if not error:
            return [], set(), "", refused
        # Shut the broken pool down first: its workers are then all stopped, so the slots of the
        # shared array show what each was running when the pool broke.
        self._discard_pool()
        self.restarts += 1
        running = {int(task) for task in self._in_flight[:] if task >= 0}
        unfinished = [i for i in batch if not done[i] and i not in refused]
        return unfinished, running.intersection(unfinished), error, refused

    def _retire_pool(self, error: str) -> None:
        """Replace the workers after a sticky CUDA error broke one: the healthy ones are idle by
        now, and ProcessPoolExecutor cannot replace a single worker."""
        warnings.warn(
            f"a worker process met a CUDA error that leaves its GPU unusable ({error}); its "
            "evaluation was recorded as failed and the next ones run on fresh worker processes",
            RuntimeWarning,
            stacklevel=4,
        )
        self._discard_pool()
        self.retired += 1

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        on_result: OnResult | None = None,
        on_death: OnDeath | None = None,
    ) -> list[R]:
        if items:
            self.check_callable(fn)
        on_death = on_death or _raise_died
        results: list[Any] = [None] * len(items)
        done = [False] * len(items)
        attempts = [0] * len(items)
        fresh = list(range(len(items)))
        retries: deque[int] = deque()
        while fresh or retries:
            if fresh:
                batch, fresh = fresh, []
            else:
                batch = [retries.popleft()]
            start = time.perf_counter()
            unfinished, running, error, refused = self._run_round(fn, items, batch, results, done, on_result)
            fresh.extend(refused)  # they never ran: no attempt of theirs is used up
            # A worker that died before it named its task (while unpickling it, say) leaves no
            # trace: then every unfinished task is a suspect.
            suspects = running or set(unfinished)
            for i in unfinished:
                if i not in suspects:
                    fresh.append(i)
                    continue
                attempts[i] += 1
                if attempts[i] > self.max_retries:
                    results[i] = on_death(items[i], attempts[i], error, time.perf_counter() - start)
                    done[i] = True
                    if on_result is not None:
                        on_result(i, results[i])
                else:
                    retries.append(i)
        return results

    def close(self) -> None:
        self._discard_pool()
        self._closed = True

    def __repr__(self) -> str:
        return (
            f"ProcessExecutor(workers={self.workers}, threads={self._threads}, "
            f"mp_context={self._context.get_start_method()!r})"
        )
