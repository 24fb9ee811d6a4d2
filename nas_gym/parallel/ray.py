"""The Ray executor: tasks on a local Ray instance bound to loopback, or on an existing cluster.

Ray's servers and its job API have no authentication unless the cluster turns it on: whoever
reaches their ports can run code on the machine. A local instance that nas-gym starts therefore
listens on 127.0.0.1 only and has no dashboard unless asked for.

**GPUs.** Each task reserves ``num_gpus`` GPUs; by default one (or ``1 / per_gpu``) when the
cluster has GPUs, else none. Ray reuses its worker processes across tasks, and CUDA reads
``CUDA_VISIBLE_DEVICES`` once per process, so a reused worker would stay on the GPU of its first
task. Ray therefore leaves ``CUDA_VISIBLE_DEVICES`` alone in the tasks of this executor
(``RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES``), and each task names the GPU Ray gave it
(``ray.get_gpu_ids()``) in :data:`~nas_gym.core.devices.DEVICE_ENV`, which ``device="auto"`` and
``"cuda"`` follow. Tasks that reserve no GPU see none (``CUDA_VISIBLE_DEVICES=""``) and run on the
CPU. A worker that a sticky CUDA error broke ends itself at its next task, which Ray then runs
again on a fresh worker (one of the task's ``max_retries``).

**Token authentication.** A cluster started with ``ray start --head`` on a machine that holds a
Ray token (``~/.ray/auth_token``, which a local ``ray.init()`` writes) requires that token. Ray's
client uses it for an explicit address only with ``RAY_AUTH_MODE=token``; for an address of this
machine, unless ``RAY_AUTH_MODE`` is set, this executor turns that mode on when a token is there
(``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or the default path), as Ray does for a cluster it
finds itself. A token is never sent to another machine unasked; a cluster that refuses the client
raises :class:`RayClusterError`, whose one line says what to set.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any, TypeVar

from nas_gym.core.checks import check_int, check_number
from nas_gym.core.devices import assigned_device, default_workers
from nas_gym.parallel.executors import Executor, OnDeath, OnResult, _raise_died
from nas_gym.parallel.workers import broken_by, run_marked

T = TypeVar("T")
R = TypeVar("R")

# Whether a RayExecutor called ray.init in this process (then the last one closed shuts Ray down),
# and how many open executors use that connection.
_ray_initialised_here = False
_ray_users = 0

_LOOPBACK = ("127.0.0.1", "::1", "localhost")

NOSET_CUDA_VISIBLE_DEVICES = "RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"
"""Ray's switch that keeps it from setting ``CUDA_VISIBLE_DEVICES`` in a task."""
AUTH_MODE_ENV = "RAY_AUTH_MODE"
"""Ray's authentication mode (``token`` or ``disabled``), read from the environment only."""


class RayClusterError(ConnectionError):
    """The Ray cluster at the given address cannot be reached or refuses this client; the one line
    of its message says what to set or start (the command line prints just that line)."""


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


def task_device(gpu_ids: Sequence[int | str], visible: str | None) -> str:
    """The device of a Ray task: ``"cpu"`` when Ray gave it no GPU, else ``"cuda:K"``, the first
    of its GPUs (``gpu_ids``, from ``ray.get_gpu_ids()``) as numbered in this worker, whose
    ``CUDA_VISIBLE_DEVICES`` is ``visible`` (Ray names GPUs by those entries when it is set, by
    index when it is not)."""
    if not gpu_ids:
        return "cpu"
    names = [str(g) for g in gpu_ids]
    first = min(names, key=lambda g: (not g.isdigit(), int(g) if g.isdigit() else 0, g))
    if visible is None:
        if not first.isdigit():
            raise RuntimeError(
                f"expected Ray to name GPUs by index without CUDA_VISIBLE_DEVICES, got {first!r}"
            )
        return f"cuda:{first}"
    entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
    if first not in entries:
        raise RuntimeError(
            f"expected the GPU {first!r} that Ray gave this task among CUDA_VISIBLE_DEVICES={visible!r}, got none"
        )
    return f"cuda:{entries.index(first)}"


def _run_in_ray_task(fn: Callable[[Any], Any], item: Any) -> Any:
    """One task on a Ray worker, on the device Ray reserved for it (:func:`task_device`).

    A worker that a sticky CUDA error broke in an earlier task ends here instead of failing this
    one: Ray runs the task again on a fresh worker."""
    error = broken_by()
    if error is not None:
        print(f"nas-gym: this Ray worker's GPU is unusable ({error}); ending it", file=sys.stderr, flush=True)
        os._exit(1)
    device = task_device(import_ray().get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES"))
    with assigned_device(device):
        return run_marked(fn, item)


def _is_this_machine(host: str) -> bool:
    """Whether ``host`` (a name or an IP address) is this machine: loopback, or an address of one
    of its network interfaces. Nothing is looked up: other names are not this machine."""
    if host in _LOOPBACK:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.is_loopback:
        return True
    try:
        import psutil  # a dependency of Ray
    except ImportError:
        return False
    own = {entry.address.split("%")[0] for entries in psutil.net_if_addrs().values() for entry in entries}
    return str(address) in own


def _address_host(address: str) -> str:
    """The host of ``"host:port"``, ``"ray://host:port"`` or ``"[v6]:port"``."""
    rest = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host = rest.rsplit(":", 1)[0] if rest.count(":") == 1 or rest.startswith("[") else rest
    return host.strip("[]")


def use_local_token(address: str) -> bool:
    """Turn Ray's token authentication on for this client when the cluster at ``address`` is on
    this machine, ``RAY_AUTH_MODE`` is not set, and a token is there (Ray's own rule for a
    cluster it finds itself); returns whether it did."""
    if os.environ.get(AUTH_MODE_ENV) is not None or not _is_this_machine(_address_host(address)):
        return False
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return False
    return bool(maybe_enable_token_auth_if_token_available(warn_if_disabled=False))


def refusal_message(address: str, exc: BaseException) -> str:
    """One line on a failed connection to ``address``: what to set when the cluster wants a token,
    else what failed."""
    chain, current = [], exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    refused = any(
        type(e).__name__ == "AuthenticationError"
        or "InvalidAuthToken" in str(e)
        or "AuthenticationError" in str(e)
        for e in chain
    )
    if not refused:
        return (
            f"expected a Ray cluster at {address}, got: {str(exc).splitlines()[0]}; start one there "
            "(ray start --head) or pass the address of one (--ray-address)"
        )
    where = "in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token (ray get-auth-token on its head prints it)"
    if os.environ.get(AUTH_MODE_ENV, "").lower() == "token":
        return f"expected the Ray cluster at {address} to accept this client's token, got a refusal: put its token {where}"
    return (
        f"expected the Ray cluster at {address} to accept this client, got a refusal: it uses token "
        f"authentication; set {AUTH_MODE_ENV}=token and put its token {where}"
    )


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
    allowed: ``num_gpus=0.5`` runs two evaluations per GPU), and running on the GPU that Ray gave
    it (see the module's notes).

    Connection: when Ray is already initialised in this process it is used as it is. Otherwise,
    with an ``address`` (``"host:port"`` of a cluster's head, or ``"ray://host:port"`` through Ray
    Client), or with none but ``RAY_ADDRESS`` set, it connects to that cluster; with neither it
    starts a local Ray instance for ``workers`` concurrent tasks. That instance listens on
    127.0.0.1 only and has no dashboard unless ``include_dashboard=True`` (bound to 127.0.0.1
    too). A local instance is stopped when the last executor using it is closed. A cluster that
    cannot be reached or refuses the client raises :class:`RayClusterError`.

    A task whose worker dies is retried by Ray (``max_retries``); after that it goes to
    ``on_death`` (an evaluation gets status ``failed``, or ``oom`` when Ray's memory monitor
    killed it).

    Args:
        workers: the most tasks at the same time (default: as many as the cluster's resources
            allow; for a local instance, :func:`~nas_gym.core.devices.default_workers`).
        address: the cluster to connect to (see above).
        num_gpus: GPUs per task (``>= 0``); ``None``: ``1 / per_gpu`` when the cluster has GPUs,
            else 0. With 0 the tasks see no GPU and run on the CPU.
        num_cpus: CPUs per task (``> 0``); a CPU evaluation uses that many threads.
        include_dashboard: start the dashboard with a local instance (on 127.0.0.1).
        max_retries: Ray's further attempts of a task whose worker died.
        per_gpu: tasks per GPU when ``num_gpus`` is ``None`` (default 1).
    """

    name = "ray"

    def __init__(
        self,
        workers: int | None = None,
        address: str | None = None,
        num_gpus: float | None = None,
        num_cpus: float = 1.0,
        include_dashboard: bool = False,
        max_retries: int = 1,
        per_gpu: int | None = None,
    ):
        self._workers = check_int(workers, "workers", minimum=1, none_ok=True)
        if num_gpus is not None:
            num_gpus = check_number(num_gpus, "num_gpus", minimum=0)
        self.per_gpu = check_int(per_gpu, "per_gpu", minimum=1, none_ok=True)
        if num_gpus is not None and per_gpu is not None:
            raise ValueError(
                f"expected either num_gpus or per_gpu (num_gpus = 1 / per_gpu), got num_gpus={num_gpus} "
                f"and per_gpu={per_gpu}"
            )
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
        self.num_gpus: float = num_gpus if num_gpus is not None else self._default_num_gpus()
        """GPUs each task reserves."""
        self._task = self._ray.remote(_run_in_ray_task).options(**self.task_options())

    def _default_num_gpus(self) -> float:
        gpus = float(self._ray.cluster_resources().get("GPU", 0))
        return 1.0 / (self.per_gpu or 1) if gpus > 0 else 0.0

    def task_options(self) -> dict[str, Any]:
        """The options of this executor's Ray tasks. Their ``runtime_env`` gives them workers of
        their own: with GPUs, workers in which Ray leaves ``CUDA_VISIBLE_DEVICES`` alone (a
        reused worker would otherwise stay on the GPU of its first task); without, workers that
        see no GPU."""
        env = {NOSET_CUDA_VISIBLE_DEVICES: "1"} if self.num_gpus > 0 else {"CUDA_VISIBLE_DEVICES": ""}
        return {
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "max_retries": self.max_retries,
            "retry_exceptions": False,
            "runtime_env": {"env_vars": env},
        }

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
            workers = self._workers or default_workers(self.per_gpu or 1)
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
            target = address or os.environ["RAY_ADDRESS"]
            use_local_token(target)
            refusals: tuple[type[BaseException], ...] = (ConnectionError,)
            if hasattr(ray.exceptions, "AuthenticationError"):
                refusals += (ray.exceptions.AuthenticationError,)
            try:
                ray.init(address=address)
            except refusals as exc:
                raise RayClusterError(refusal_message(target, exc)) from exc
        _ray_initialised_here = True
        _ray_users += 1
        self._owns_connection = True

    @property
    def workers(self) -> int | None:
        return self._workers

    @property
    def threads_per_task(self) -> int:
        return max(1, math.floor(self.num_cpus))

    def check_callable(self, fn: Callable[..., Any]) -> None:
        """Raise ``TypeError`` for what is not callable, and ``ValueError`` for an evaluator that
        trains on CUDA (its ``device_type``) when the tasks reserve no GPU: they would see none."""
        super().check_callable(fn)
        if self.num_gpus == 0 and getattr(fn, "device_type", None) == "cuda":
            raise ValueError(
                "expected Ray tasks with GPUs for an evaluator on CUDA, got num_gpus=0 (tasks that "
                "reserve no GPU see none): pass num_gpus > 0 (--num-gpus), or device='cpu'"
            )

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
