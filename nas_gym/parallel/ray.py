"""The Ray executor: tasks on a local Ray instance bound to loopback, or on an existing cluster.

Ray's servers and its job API have no authentication unless the cluster turns it on: whoever
reaches their ports can run code on the machine. A local instance that nas-gym starts therefore
listens on 127.0.0.1 only and has no dashboard unless asked for.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any, TypeVar

from nas_gym.core.checks import check_int, check_number
from nas_gym.core.devices import default_workers
from nas_gym.parallel.executors import Executor, OnDeath, OnResult, _raise_died

T = TypeVar("T")
R = TypeVar("R")

# Whether a RayExecutor called ray.init in this process (then the last one closed shuts Ray down),
# and how many open executors use that connection.
_ray_initialised_here = False
_ray_users = 0

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def import_ray() -> ModuleType:
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            "expected Ray to be installed for executor 'ray', got none: install it with "
            'pip install "nas-gym[ray]"'
        ) from exc
    return ray


def _run_in_ray_task(fn: Callable[[Any], Any], item: Any) -> Any:
    """One task on a Ray worker."""
    return fn(item)


@contextlib.contextmanager
def _loopback_node_address(ray: ModuleType) -> Iterator[None]:
    """While a local Ray instance starts: make Ray take 127.0.0.1 as this node's address.

    Ray turns a requested 127.0.0.1 into the machine's outward address unless it believes it runs
    without a cluster (its default on Windows and macOS), and its servers then listen on every
    interface. Ray reads that belief at each call, so it is switched here, for the start only;
    :class:`RayExecutor` checks the outcome afterwards and refuses an exposed instance.
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
    import what this process imports (as ``spawn`` workers do), functions of test modules and
    scripts' sibling modules included."""
    return os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))


def ray_node_address() -> str:
    """The address of the Ray node this process is connected to."""
    return str(import_ray().util.get_node_ip_address())


class RayExecutor(Executor):
    """Tasks as Ray tasks, each reserving ``num_cpus`` CPUs and ``num_gpus`` GPUs (fractions
    allowed: ``num_gpus=0.5`` runs two evaluations per GPU).

    Connection: when Ray is already initialised in this process it is used as it is. Otherwise,
    with an ``address`` (``"host:port"`` of a cluster's head, or ``"ray://host:port"`` through Ray
    Client), or with none but ``RAY_ADDRESS`` set, it connects to that cluster; with neither it
    starts a local Ray instance for ``workers`` concurrent tasks. That instance listens on
    127.0.0.1 only and has no dashboard unless ``include_dashboard=True`` (bound to 127.0.0.1
    too). A local instance is stopped when the last executor using it is closed.

    A task whose worker dies is retried by Ray (``max_retries``); after that it goes to
    ``on_death`` (an evaluation gets status ``failed``, or ``oom`` when Ray's memory monitor
    killed it).

    Args:
        workers: the most tasks at the same time (default: as many as the cluster's resources
            allow; for a local instance, :func:`~nas_gym.core.devices.default_workers`).
        address: the cluster to connect to (see above).
        num_gpus: GPUs per task (``>= 0``).
        num_cpus: CPUs per task (``> 0``); a CPU evaluation uses that many threads.
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
        self._workers = check_int(workers, "workers", minimum=1, none_ok=True)
        self.num_gpus = check_number(num_gpus, "num_gpus", minimum=0)
        self.num_cpus = check_number(num_cpus, "num_cpus", minimum=0, strict=True)
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ValueError(f"expected address as 'host:port' or 'ray://host:port', got {address!r}")
        self.max_retries = check_int(max_retries, "max_retries", minimum=0)
        self._ray = import_ray()
        # The most tasks submitted at once: ``workers`` on a cluster whose resources would let more
        # run; none on a local instance sized for ``workers`` (Ray queues the rest, which saves a
        # round trip per task).
        self._in_flight_limit = self._workers
        self._owns_connection = False
        self._closed = False
        self._connect(address, include_dashboard)
        self._task = self._ray.remote(_run_in_ray_task).options(
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
                    f"{node!r}; it was stopped. Start a Ray instance yourself and pass its address "
                    "(--ray-address)"
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

    @property
    def threads_per_task(self) -> int:
        return max(1, math.floor(self.num_cpus))

    # ------------------------------------------------------------------ tasks
    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        *,
        on_result: OnResult | None = None,
        on_death: OnDeath | None = None,
    ) -> list[R]:
        if self._closed:
            raise RuntimeError("expected an open executor, got one that was closed")
        if not items:
            return []
        self.check_callable(fn)
        ray = self._ray
        results: list[Any] = [None] * len(items)
        fn_ref = ray.put(fn)  # shipped once, not once per task
        queue = deque(range(len(items)))
        limit = self._in_flight_limit or len(items)
        running: dict[Any, tuple[int, float]] = {}
        try:
            while queue or running:
                while queue and len(running) < limit:
                    i = queue.popleft()
                    running[self._task.remote(fn_ref, items[i])] = (i, time.perf_counter())
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    i, start = running.pop(ref)
                    results[i] = self._result(ref, items[i], start, on_death or _raise_died)
                    if on_result is not None:
                        on_result(i, results[i])
        except BaseException:
            for ref in running:
                ray.cancel(ref, force=True)
            raise
        return results

    def _result(self, ref: Any, item: Any, start: float, on_death: OnDeath) -> Any:
        exceptions = self._ray.exceptions
        try:
            return self._ray.get(ref)
        except exceptions.OutOfMemoryError as exc:  # Ray's memory monitor killed the worker
            seconds = time.perf_counter() - start
            return on_death(item, 1, f"{type(exc).__name__}: {exc}", seconds, out_of_memory=True)
        except (exceptions.WorkerCrashedError, exceptions.NodeDiedError) as exc:
            return on_death(item, self.max_retries + 1, type(exc).__name__, time.perf_counter() - start)

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
