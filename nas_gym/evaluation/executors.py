"""Executors: where the evaluations of a batch of architectures run.

An :class:`Executor` takes an evaluator and a batch of canonical architecture strings and
returns one metrics dict per architecture, in the order of the batch. The evaluations run
concurrently where the executor allows it and are gathered as they complete, in any order;
each result is matched back to its architecture by position. So the results of a batch never
depend on the executor, only on the evaluator.

- :class:`SerialExecutor`: one after another, in this process.
- :class:`ProcessExecutor`: a pool of worker processes (``concurrent.futures``, ``spawn``
  start method, so CUDA is safe), each pinned to one GPU when there are several.
- :class:`RayExecutor`: Ray tasks with ``num_gpus`` per evaluation (fractions allowed), on a
  local Ray instance bound to loopback or on an existing cluster (``pip install "nas-gym[ray]"``).

Inside every executor an evaluation runs through
:meth:`~nas_gym.evaluation.runner.EvaluationRunner.run_evaluator`: an evaluator that raises gives
status ``failed`` (``oom`` when out of memory). A worker process that dies during an evaluation
(killed, segfault) is retried once, then the evaluation is recorded as ``failed`` and the batch
goes on. An evaluator that returns something that is not a metrics dict raises, as it does in
the env.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import pickle
import re
import sys
import time
import warnings
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from types import ModuleType, TracebackType
from typing import Any, ClassVar

from nas_gym.errors import did_you_mean
from nas_gym.evaluation.metrics import failure_metrics
from nas_gym.evaluation.runner import EvaluationRunner, Evaluator

EXECUTORS: dict[str, str] = {
    "serial": "one evaluation after another, in this process",
    "processes": "a pool of worker processes on this machine, one GPU each when there are several",
    "ray": 'Ray tasks on a local Ray instance or an existing cluster (pip install "nas-gym[ray]")',
}
"""The executor names :func:`make_executor` takes, with a one-line description of each."""

WORKER_INDEX_ENV = "NAS_GYM_WORKER_INDEX"
"""Environment variable holding the index of an evaluation worker process; :func:`auto_device`
reads it. :class:`ProcessExecutor` sets it in its workers; set it yourself in workers that you
start another way."""

# Gymnasium's AsyncVectorEnv names its workers "Worker<AsyncVectorEnv>-{index}".
_GYMNASIUM_WORKER_NAME = re.compile(r"^Worker<[^>]*>-(\d+)$")
# multiprocessing's default child names: "SpawnProcess-3", "ForkProcess-1:2" (1-based).
_MULTIPROCESSING_CHILD_NAME = re.compile(r"-(\d+)(?::\d+)*$")


# ---------------------------------------------------------------------------------------- devices
def _cuda_device_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.device_count())


def assign_device(worker_index: int) -> str:
    """The device of evaluation worker ``worker_index``: round robin over the visible CUDA
    devices (``"cuda:{worker_index % n}"``), ``"cpu"`` when there is none."""
    if isinstance(worker_index, bool) or not isinstance(worker_index, int) or worker_index < 0:
        raise ValueError(f"expected worker_index as an int >= 0, got {worker_index!r}")
    count = _cuda_device_count()
    return f"cuda:{worker_index % count}" if count > 0 else "cpu"


def worker_index() -> int | None:
    """The index of this process among the evaluation workers of its parent, or ``None`` in a
    process that is not one.

    In order: :data:`WORKER_INDEX_ENV` (set by :class:`ProcessExecutor`), the worker name of
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


def auto_device() -> str:
    """What ``device="auto"`` means in this process: :func:`assign_device` of
    :func:`worker_index` (``"cuda:0"`` or ``"cpu"`` outside worker processes).

    Call it where the evaluation runs (in the worker), not where the evaluator is built: a
    vector env or an executor builds the evaluator once and ships it to every worker. In a Ray
    task, Ray makes only the task's own GPUs visible, so ``"cuda:0"`` is the task's GPU.
    """
    index = worker_index()
    return assign_device(0 if index is None else index)


def cpu_count() -> int:
    """The CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_workers() -> int:
    """The default number of concurrent evaluations on this machine: one per visible CUDA
    device when there are any, else one per CPU core this process may use."""
    gpus = _cuda_device_count()
    return gpus if gpus > 0 else cpu_count()


def _check_workers(workers: int | None) -> int | None:
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"expected workers as an int >= 1 or None, got {workers!r}")
    return workers


def _check_resource(label: str, value: float, zero_ok: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"expected {label} as a number, got {value!r}")
    if value < 0 or (value == 0 and not zero_ok):
        raise ValueError(f"expected {label} {'>= 0' if zero_ok else '> 0'}, got {value!r}")


def _check_retries(max_retries: int) -> int:
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"expected max_retries as an int >= 0, got {max_retries!r}")
    return max_retries


# ---------------------------------------------------------------------------------------- base
class Executor(ABC):
    """Runs the evaluations of a batch of architectures.

    :meth:`map` returns the complete metrics dict of each architecture (as
    :meth:`~nas_gym.evaluation.runner.EvaluationRunner.run_evaluator` makes it), in the order
    of the batch. Executors hold workers between calls; :meth:`close` them (or use ``with``).
    """

    name: ClassVar[str]
    """The name :func:`make_executor` knows the executor by."""

    @property
    @abstractmethod
    def workers(self) -> int | None:
        """The most evaluations that run at the same time (``None``: as many as the cluster
        has resources for)."""

    @abstractmethod
    def map(self, evaluator: Evaluator, archs: Sequence[str]) -> list[dict[str, Any]]:
        """The metrics of ``evaluator(arch)`` for each of ``archs``, in the order of ``archs``."""

    @abstractmethod
    def close(self) -> None:
        """Release the workers; the executor is not usable afterwards."""

    def check_evaluator(self, evaluator: Evaluator) -> None:
        """Raise ``TypeError`` when this executor cannot run ``evaluator`` (before any work)."""
        if not callable(evaluator):
            raise TypeError(f"expected evaluator as a callable, got {type(evaluator).__name__}")

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.workers})"


def _died_metrics(arch: str, attempts: int, error: str, seconds: float) -> dict[str, Any]:
    warnings.warn(
        f"evaluation of {arch!r} failed: its worker died on each of {attempts} attempt(s) "
        f"({error}); recorded with status 'failed'",
        RuntimeWarning,
        stacklevel=3,
    )
    return failure_metrics(
        "failed", f"the worker process died during the evaluation ({attempts} attempts): {error}", seconds
    )


# ---------------------------------------------------------------------------------------- serial
class SerialExecutor(Executor):
    """One evaluation after another, in this process (what an env does without an executor)."""

    name = "serial"

    @property
    def workers(self) -> int:
        return 1

    def map(self, evaluator: Evaluator, archs: Sequence[str]) -> list[dict[str, Any]]:
        return [EvaluationRunner.run_evaluator(evaluator, arch) for arch in archs]

    def close(self) -> None:
        """Nothing to release: evaluations run in this process."""


# ---------------------------------------------------------------------------------------- processes
# Set in each worker process of a ProcessExecutor by _init_process_worker.
_worker_slot: int | None = None
_in_flight: Any = None


def _init_process_worker(counter: Any, in_flight: Any, threads: int) -> None:
    """Initializer of a :class:`ProcessExecutor` worker: its slot (index), its device, its
    share of the CPU threads."""
    global _worker_slot, _in_flight
    with counter.get_lock():
        slot = counter.value
        counter.value += 1
    _worker_slot, _in_flight = slot, in_flight
    os.environ[WORKER_INDEX_ENV] = str(slot)
    share_threads(threads)


def share_threads(threads: int) -> None:
    """Give this worker process ``threads`` threads of the machine's cores, unless the user set
    ``OMP_NUM_THREADS``.

    Without a share each worker starts one thread per core and the workers fight over the cores
    (Ray does the same for its tasks). Torch and BLAS read these variables when they start;
    torch may already be running when the parent's main module imported it.
    """
    if "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(threads)
    os.environ.setdefault("MKL_NUM_THREADS", str(threads))


def _evaluate_in_process_worker(evaluator: Evaluator, arch: str, task: int) -> dict[str, Any]:
    """One evaluation in a :class:`ProcessExecutor` worker. While it runs, the worker's slot
    names the task, so the parent knows which evaluations a dead worker pool was running."""
    slot = _worker_slot
    if slot is not None and slot < len(_in_flight):
        _in_flight[slot] = task
    try:
        return EvaluationRunner.run_evaluator(evaluator, arch)
    finally:
        if slot is not None and slot < len(_in_flight):
            _in_flight[slot] = -1


class ProcessExecutor(Executor):
    """Evaluations in a pool of worker processes on this machine
    (:class:`concurrent.futures.ProcessPoolExecutor`).

    Workers start with the ``spawn`` method by default: a forked child of a process that has
    used CUDA cannot use CUDA. Worker ``i`` of the pool gets :data:`WORKER_INDEX_ENV` ``= i``, so
    an evaluator whose device is ``"auto"`` (see :func:`auto_device`) runs on GPU ``i % n`` of
    the ``n`` visible ones; each worker gets an equal share of the CPU threads
    (``OMP_NUM_THREADS``, unless already set). The evaluator is pickled with each evaluation:
    it must be picklable (a function or class defined at module level, not a lambda).

    A worker that dies during an evaluation breaks the whole pool: the pool restarts, the
    evaluations that had not started go again, and those that were running get one retry
    (``max_retries``), each alone in the pool so that an evaluation that kills its worker every
    time cannot take others down with it. An evaluation whose worker died on every attempt gets
    status ``failed``.

    Args:
        workers: worker processes (default :func:`default_workers`).
        mp_context: start method name or a ``multiprocessing`` context.
        max_retries: further attempts of an evaluation whose worker died.
    """

    name = "processes"

    def __init__(
        self,
        workers: int | None = None,
        mp_context: str | BaseContext = "spawn",
        max_retries: int = 1,
    ):
        self._workers = _check_workers(workers) or default_workers()
        if isinstance(mp_context, str):
            methods = multiprocessing.get_all_start_methods()
            if mp_context not in methods:
                raise ValueError(
                    f"expected mp_context in {methods}, got {mp_context!r}"
                    + did_you_mean(mp_context, methods)
                )
            mp_context = multiprocessing.get_context(mp_context)
        self._context = mp_context
        self.max_retries = _check_retries(max_retries)
        self._threads = max(1, cpu_count() // self._workers)
        self._pool: ProcessPoolExecutor | None = None
        self._in_flight: Any = None
        self._closed = False
        self.restarts = 0
        """How many times a dead worker made the pool restart."""

    @property
    def workers(self) -> int:
        return self._workers

    def check_evaluator(self, evaluator: Evaluator) -> None:
        """Raise ``TypeError`` unless ``evaluator`` pickles: it travels to the workers."""
        super().check_evaluator(evaluator)
        try:
            pickle.dumps(evaluator)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise TypeError(
                "expected a picklable evaluator for executor 'processes' (a function or class "
                f"defined at module level, not a lambda or a local function), got {evaluator!r}: {exc}"
            ) from exc

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._closed:
            raise RuntimeError("expected an open executor, got one that was closed")
        if self._pool is None:
            counter = self._context.Value("i", 0)
            self._in_flight = self._context.Array("q", [-1] * self._workers)
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=self._context,
                initializer=_init_process_worker,
                initargs=(counter, self._in_flight, self._threads),
            )
        return self._pool

    def _discard_pool(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None

    def _run_round(
        self, evaluator: Evaluator, archs: Sequence[str], batch: list[int], results: list[Any]
    ) -> tuple[list[int], set[int], str]:
        """Run ``batch`` (indices into ``archs``) concurrently and fill ``results``.

        Returns the indices left without a result because the pool broke, those of them that
        were running at that moment, and the error; all empty when the pool held."""
        pool = self._ensure_pool()
        futures: dict[Future[dict[str, Any]], int] = {}
        error = ""
        try:
            for i in batch:
                futures[pool.submit(_evaluate_in_process_worker, evaluator, archs[i], i)] = i
        except BrokenProcessPool as exc:  # a worker died while the batch was being submitted
            error = f"{type(exc).__name__}: {exc}"
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        results[futures[future]] = future.result()
                    except BrokenProcessPool as exc:
                        error = f"{type(exc).__name__}: {exc}"
        except BaseException:
            # An evaluator that returned a wrong type, or an interrupt: nothing of the batch is
            # worth waiting for; the evaluations already running end on their own.
            self._discard_pool(wait=False)
            raise
        if not error:
            return [], set(), ""
        # Shut the broken pool down first: its workers are then all stopped, so the slots of
        # the shared array show what each was running when the pool broke.
        self._discard_pool()
        self.restarts += 1
        running = {int(task) for task in self._in_flight[:] if task >= 0}
        unfinished = [i for i in batch if results[i] is None]
        return unfinished, running.intersection(unfinished), error

    def map(self, evaluator: Evaluator, archs: Sequence[str]) -> list[dict[str, Any]]:
        if archs:
            self.check_evaluator(evaluator)
        results: list[dict[str, Any] | None] = [None] * len(archs)
        attempts = [0] * len(archs)
        fresh = list(range(len(archs)))
        retries: deque[int] = deque()
        while fresh or retries:
            if fresh:
                batch, fresh = fresh, []
            else:
                batch = [retries.popleft()]
            start = time.perf_counter()
            unfinished, running, error = self._run_round(evaluator, archs, batch, results)
            # A worker that died before it named its evaluation (while unpickling the
            # evaluator, say) leaves no trace: then every unfinished evaluation is a suspect.
            suspects = running or set(unfinished)
            for i in unfinished:
                if i not in suspects:
                    fresh.append(i)
                    continue
                attempts[i] += 1
                if attempts[i] > self.max_retries:
                    results[i] = _died_metrics(archs[i], attempts[i], error, time.perf_counter() - start)
                else:
                    retries.append(i)
        return results  # type: ignore[return-value]  # every index was filled above

    def close(self) -> None:
        self._discard_pool()
        self._closed = True

    def __repr__(self) -> str:
        return f"ProcessExecutor(workers={self.workers}, mp_context={self._context.get_start_method()!r})"


# ---------------------------------------------------------------------------------------- ray
def import_ray() -> ModuleType:
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            "expected Ray to be installed for executor 'ray', got none: "
            'install it with pip install "nas-gym[ray]"'
        ) from exc
    return ray


# Whether a RayExecutor called ray.init in this process (then the last one closed shuts Ray
# down), and how many open executors use that connection.
_ray_initialised_here = False
_ray_users = 0

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _evaluate_in_ray_task(evaluator: Evaluator, arch: str) -> dict[str, Any]:
    """One evaluation in a Ray task."""
    return EvaluationRunner.run_evaluator(evaluator, arch)


@contextlib.contextmanager
def _loopback_node_address(ray: ModuleType) -> Iterator[None]:
    """While a local Ray instance starts: make Ray take 127.0.0.1 as this node's address.

    Ray turns a requested 127.0.0.1 into the machine's outward address unless it believes it
    runs without a cluster (its default on Windows and macOS), and its servers then listen on
    every interface. Ray reads that belief at each call, so it is switched here, for the start
    only; :class:`RayExecutor` checks the outcome afterwards and refuses an exposed instance.
    """
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    if constants is None or not hasattr(constants, "ENABLE_RAY_CLUSTER"):
        yield
        return
    saved = constants.ENABLE_RAY_CLUSTER
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = saved


def _driver_python_path() -> str:
    """This process's ``sys.path`` as a ``PYTHONPATH``: the workers of a local Ray instance then
    import what this process imports (as ``spawn`` workers do), evaluators of test modules and
    scripts' sibling modules included."""
    return os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))


def ray_node_address() -> str:
    """The address of the Ray node this process is connected to."""
    ray = import_ray()
    return str(ray.util.get_node_ip_address())


class RayExecutor(Executor):
    """Evaluations as Ray tasks, each reserving ``num_cpus`` CPUs and ``num_gpus`` GPUs
    (fractions allowed: ``num_gpus=0.5`` runs two evaluations per GPU).

    Connection: when Ray is already initialised in this process it is used as it is. Otherwise,
    with an ``address`` (``"host:port"`` of a cluster's head, or ``"ray://host:port"`` through
    Ray Client), or with none but ``RAY_ADDRESS`` set, it connects to that cluster; with neither
    it starts a local Ray instance for ``workers`` concurrent evaluations. That instance listens
    on 127.0.0.1 only and has no dashboard unless ``include_dashboard=True`` (bound to
    127.0.0.1 too): whoever reaches Ray's ports or its job API can run code on the machine.
    A local instance is stopped when the last executor using it is closed.

    A task whose worker dies is retried by Ray (``max_retries``); after that the evaluation gets
    status ``failed`` (``oom`` when Ray's memory monitor killed it).

    Args:
        workers: the most evaluations at the same time (default: as many as the cluster's
            resources allow; for a local instance, :func:`default_workers`).
        address: the cluster to connect to (see above).
        num_gpus: GPUs per evaluation (``>= 0``).
        num_cpus: CPUs per evaluation (``> 0``).
        include_dashboard: start the dashboard with a local instance (on 127.0.0.1).
        max_retries: Ray's further attempts of a task whose worker died.
    """

    name = "ray"

    def __init__(
        self,
        workers: int | None = None,
        address: str | None = None,
        num_gpus: float = 0.0,
        num_cpus: float = 1.0,
        include_dashboard: bool = False,
        max_retries: int = 1,
    ):
        self._workers = _check_workers(workers)
        _check_resource("num_gpus", num_gpus, zero_ok=True)
        _check_resource("num_cpus", num_cpus, zero_ok=False)
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ValueError(f"expected address as 'host:port' or 'ray://host:port', got {address!r}")
        self.num_gpus, self.num_cpus = float(num_gpus), float(num_cpus)
        self.max_retries = _check_retries(max_retries)
        self._ray = import_ray()
        # The most tasks submitted at once: ``workers`` on a cluster whose resources would let
        # more run; none on a local instance sized for ``workers`` (Ray queues the rest, which
        # saves a round trip per evaluation).
        self._in_flight_limit = self._workers
        self._owns_connection = False
        self._closed = False
        self._connect(address, include_dashboard)
        self._task = self._ray.remote(_evaluate_in_ray_task).options(
            num_cpus=self.num_cpus,
            num_gpus=self.num_gpus,
            max_retries=self.max_retries,
            retry_exceptions=False,
        )

    # ------------------------------------------------------------------ connection
    def _connect(self, address: str | None, include_dashboard: bool) -> None:
        global _ray_users, _ray_initialised_here
        ray = self._ray
        if ray.is_initialized():
            # Ray started by the caller stays theirs; one started by another executor is shared.
            if _ray_initialised_here:
                _ray_users += 1
                self._owns_connection = True
            return
        if address is None and not os.environ.get("RAY_ADDRESS"):
            workers = self._workers or default_workers()
            with _loopback_node_address(ray):
                ray.init(
                    address=None,
                    num_cpus=max(1, math.ceil(workers * self.num_cpus)),
                    include_dashboard=bool(include_dashboard),
                    dashboard_host="127.0.0.1",
                    _node_ip_address="127.0.0.1",
                    runtime_env={"env_vars": {"PYTHONPATH": _driver_python_path()}},
                )
            node = ray_node_address()
            if node not in _LOOPBACK:
                ray.shutdown()
                raise RuntimeError(
                    f"expected the local Ray instance to listen on 127.0.0.1 only, got node address "
                    f"{node!r}; it was stopped. Start a Ray instance yourself and pass its "
                    "address (--ray-address)"
                )
            self._in_flight_limit = None
        else:
            ray.init(address=address)
        _ray_initialised_here = True
        _ray_users += 1
        self._owns_connection = True

    @property
    def workers(self) -> int | None:
        return self._workers

    # ------------------------------------------------------------------ evaluations
    def map(self, evaluator: Evaluator, archs: Sequence[str]) -> list[dict[str, Any]]:
        if self._closed:
            raise RuntimeError("expected an open executor, got one that was closed")
        ray = self._ray
        results: list[dict[str, Any] | None] = [None] * len(archs)
        if not archs:
            return []
        evaluator_ref = ray.put(evaluator)  # shipped once, not once per task
        queue = deque(range(len(archs)))
        limit = self._in_flight_limit or len(archs)
        running: dict[Any, tuple[int, float]] = {}
        try:
            while queue or running:
                while queue and len(running) < limit:
                    i = queue.popleft()
                    running[self._task.remote(evaluator_ref, archs[i])] = (i, time.perf_counter())
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    i, start = running.pop(ref)
                    results[i] = self._result(ref, archs[i], start)
        except BaseException:
            for ref in running:
                ray.cancel(ref, force=True)
            raise
        return results  # type: ignore[return-value]  # every index was filled above

    def _result(self, ref: Any, arch: str, start: float) -> dict[str, Any]:
        exceptions = self._ray.exceptions
        try:
            return self._ray.get(ref)
        except exceptions.OutOfMemoryError as exc:
            return failure_metrics("oom", f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
        except (exceptions.WorkerCrashedError, exceptions.NodeDiedError) as exc:
            return _died_metrics(
                arch, self.max_retries + 1, f"{type(exc).__name__}", time.perf_counter() - start
            )

    def close(self) -> None:
        global _ray_users, _ray_initialised_here
        if self._closed:
            return
        self._closed = True
        if self._owns_connection:
            _ray_users -= 1
            if _ray_users == 0 and self._ray.is_initialized():
                self._ray.shutdown()
            if _ray_users == 0:
                _ray_initialised_here = False

    def __repr__(self) -> str:
        return f"RayExecutor(workers={self.workers}, num_cpus={self.num_cpus}, num_gpus={self.num_gpus})"


# ---------------------------------------------------------------------------------------- factory
def make_executor(
    name: str,
    workers: int | None = None,
    ray_address: str | None = None,
    num_gpus: float = 0.0,
) -> Executor:
    """The executor called ``name`` (a key of :data:`EXECUTORS`).

    ``workers``: concurrent evaluations (``serial``: 1). ``ray_address`` and ``num_gpus`` (GPUs
    per evaluation) are for ``ray`` only; ``processes`` gives each worker one GPU of its own
    when there are several.
    """
    if name not in EXECUTORS:
        raise ValueError(
            f"expected executor in {sorted(EXECUTORS)}, got {name!r}" + did_you_mean(name, EXECUTORS)
        )
    _check_workers(workers)
    if name != "ray":
        if ray_address is not None:
            raise ValueError(f"expected ray_address only with executor 'ray', got it with {name!r}")
        if num_gpus != 0.0:
            raise ValueError(
                f"expected num_gpus only with executor 'ray' (processes take one GPU each), got "
                f"num_gpus={num_gpus!r} with {name!r}"
            )
    if name == "serial":
        if workers not in (None, 1):
            raise ValueError(f"expected workers=1 (or none) with executor 'serial', got {workers!r}")
        return SerialExecutor()
    if name == "processes":
        return ProcessExecutor(workers)
    return RayExecutor(workers, address=ray_address, num_gpus=num_gpus)
