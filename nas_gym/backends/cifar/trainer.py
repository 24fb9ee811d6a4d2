"""The CIFAR-10 reward backend: :class:`CifarTrainer`, the evaluator of ``NASCifar-v0``, and
:func:`final_train`, the final training of a chosen architecture (``nas-gym train``).

Both run :func:`~nas_gym.backends.cifar.training.train_network` on the training part of the
fixed train/validation split of the 50,000 CIFAR-10 training images; only :func:`final_train`
reads the test batch.

Reproducibility: on the CPU the thread count changes the order of floating-point reductions, so
results are reproducible for a fixed architecture, budget, seed, speed options and thread count,
on a given machine and torch build; the count is part of :attr:`CifarTrainer.fingerprint`. On
CUDA, training is bit-reproducible only with ``SpeedOptions(deterministic=True)``
(``SpeedOptions.fast("cuda", deterministic=True)``), and then for a fixed GPU model, CUDA and
cuDNN version, which the fingerprint names.
"""

from __future__ import annotations

import copy
import ctypes
import dataclasses
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from nas_gym.backends.cifar.budget import Budget, budget_name, resolve_budget
from nas_gym.backends.cifar.data import check_cifar10
from nas_gym.backends.cifar.speed import SPEED_NAMES, SpeedOptions, check_compile, training_speed
from nas_gym.backends.cifar.training import Progress, train_network
from nas_gym.core.checks import check_int
from nas_gym.core.devices import device_text, device_type_of, resolve_device
from nas_gym.spaces import SearchSpace, make_space

TRAINER_VERSION = 3
"""Bumped whenever a change of the training code changes the accuracy an architecture gets or
the meaning of :attr:`CifarTrainer.fingerprint` (it is part of it), so stored results of older
versions are not reused. Version 3: CPU threads default to the cores; budgets may reduce the
network and the images."""

BudgetLike = str | Mapping[str, Any] | Budget


if TYPE_CHECKING:
    from nas_gym.backends.cifar.zero_cost import ZeroCostEvaluator


class CifarTrainer:
    """The evaluator of ``NASCifar-v0``: ``trainer(arch)`` trains ``arch`` on CIFAR-10 and returns
    its metrics::

        {"accuracy": float,       # on budget.val_size held-out training images, a fraction
         "params": int,           # of the architecture as the space defines it
         "flops": int,            # multiply-adds of one 32x32 forward pass of that network
         "trained_params": int,   # of the network that was trained (smaller under cpu-proxy; not on "oom")
         "budget": str,           # the budget's name ("custom" for a dict or a Budget)
         "train_seconds": float,  # wall time from building the model to the accuracy
         "status": "ok" | "diverged" | "oom",
         "error": str}            # only when status is not "ok"

    ``"diverged"``: the loss became NaN/inf (accuracy 0). ``"oom"``: out of memory; the memory is
    freed and the trainer stays usable. The test batch is never read. The user's global torch RNG
    is left as it was.

    The instance holds only settings, so it pickles cheaply (worker processes): the data is loaded
    on the first call of each process and cached there.

    Args:
        space: preset name or :class:`~nas_gym.spaces.SearchSpace`.
        budget: ``"auto"`` (``"gpu"`` on CUDA, ``"cpu-proxy"`` on the CPU), ``"smoke"``,
            ``"cpu-proxy"``, ``"proxy"``, ``"gpu"``, ``"full"``, a dict of changes to one of
            them, or a :class:`~nas_gym.backends.cifar.budget.Budget`.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. The device type is fixed here
            (the fingerprint names it), counted without initialising CUDA in this process; the
            GPU of ``"auto"`` is picked at each call, in the process that trains (worker ``i``
            takes GPU ``i % n``).
        data_dir: folder holding ``cifar10/cifar-10-batches-py`` (default ``$NAS_GYM_DATA``, else
            ``~/.cache/nas_gym``); checked here, so that missing data fails early.
        download: fetch CIFAR-10 when it is missing.
        seed: training seed (weights, data order, augmentation).
        speed: ``"fast"`` (the best settings of the device), ``"reference"`` (plain fp32) or a
            :class:`~nas_gym.backends.cifar.speed.SpeedOptions` (e.g.
            ``SpeedOptions.fast("cuda", deterministic=True)`` for reproducible GPU results).
            ``compile=True`` is refused on the CPU and warned about for budgets of fewer than
            :data:`~nas_gym.backends.cifar.speed.COMPILE_MIN_STEPS` steps
            (:func:`~nas_gym.backends.cifar.speed.check_compile`).
        threads: intra-op threads of torch during training; ``None``: every core of this process
            on the CPU (an executor passes its share per task), the process setting on CUDA.
    """

    def __init__(
        self,
        space: str | SearchSpace = "seed",
        budget: BudgetLike = "auto",
        device: str | torch.device = "auto",
        data_dir: str | os.PathLike[str] | None = None,
        download: bool = False,
        seed: int = 0,
        speed: str | SpeedOptions = "fast",
        threads: int | None = None,
    ):
        self.seed = check_int(seed, "seed")
        if not (isinstance(speed, SpeedOptions) or speed in SPEED_NAMES):
            raise ValueError(f"expected speed in {SPEED_NAMES} or a SpeedOptions, got {speed!r}")
        self.space = make_space(space)
        self.device = device_text(device)
        self.device_type = device_type_of(self.device)
        self.speed_options = training_speed(speed, self.device_type, threads)
        self._set_budget(budget)
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.download = bool(download)
        check_cifar10(self.data_dir, download=self.download)

    def _set_budget(self, budget: BudgetLike) -> None:
        self.budget = resolve_budget(budget, self.device_type)
        check_compile(self.speed_options, self.device_type, self.budget.steps)
        self.budget_name = budget_name(budget, self.device_type) or "custom"
        self.fidelity: str | dict[str, Any] = (
            dict(budget) if isinstance(budget, Mapping) else self.budget_name
        )
        """What ``info["fidelity"]`` names: the budget's name (``"auto"`` resolved), or its dict."""

    fidelities = ("smoke", "cpu-proxy", "proxy", "gpu", "full")
    """The named budgets, cheapest first: the fidelities ``reset(options={"fidelity": F})``
    offers (any budget dict works too)."""

    @property
    def threads(self) -> int | None:
        """The intra-op thread count of CPU training (``None`` on CUDA: the process setting)."""
        return self.speed_options.threads

    @property
    def fingerprint(self) -> str:
        """The identity of this evaluator's results in an evaluation store: backend and its
        version, space, every budget value, the seed, the device type, the speed options and, on
        the CPU, the thread count; on CUDA the GPU model, CUDA and cuDNN versions
        (:func:`cuda_stack`), the things a deterministic GPU result depends on. Not the GPU
        index: GPUs of one model give results of the same kind."""
        where = f" threads={self.threads}" if self.device_type == "cpu" else f" {cuda_stack()}"
        return (
            f"cifar10-trainer/v{TRAINER_VERSION} space={self.space!r} "
            f"budget=({self.budget.describe()}) seed={self.seed} device={self.device_type}{where} "
            f"speed=({self.speed_options.describe()})"
        )

    def with_fidelity(self, budget: BudgetLike) -> CifarTrainer | ZeroCostEvaluator:
        """This trainer with another budget, or for a zero-cost proxy name the
        :class:`~nas_gym.backends.cifar.zero_cost.ZeroCostEvaluator` of the same space, seed, device
        and data: the fidelity of an episode."""
        from nas_gym.backends.cifar.zero_cost import PROXIES, ZeroCostEvaluator

        if isinstance(budget, str) and budget in PROXIES:
            return ZeroCostEvaluator(
                self.space,
                proxy=budget,
                device=self.device,
                data_dir=self.data_dir,
                download=self.download,
                seed=self.seed,
            )
        clone = copy.copy(self)  # settings only: a shallow copy is a new trainer
        clone._set_budget(budget)
        return clone

    def with_threads(self, threads: int) -> CifarTrainer:
        """This trainer on ``threads`` CPU threads (an executor's share per task)."""
        clone = copy.copy(self)
        clone.speed_options = dataclasses.replace(
            self.speed_options, threads=check_int(threads, "threads", minimum=1)
        )
        return clone

    def __call__(self, arch: str) -> dict[str, Any]:
        device = resolve_device(self.device)
        if device.type != self.device_type:
            # Results of this device type would be stored under the other's fingerprint.
            raise RuntimeError(
                f"expected device 'auto' to mean {self.device_type!r} in this process, as it did where "
                f"the trainer was built (its fingerprint names {self.device_type!r}), got "
                f"{device.type!r}; pass device='cpu' or device='cuda' explicitly"
            )
        canonical = self.space.format(self.space.validate(arch))
        metrics = train_network(
            self.space,
            canonical,
            self.budget,
            device,
            self.seed,
            self.speed_options,
            self.data_dir,
            self.download,
        )
        return {**metrics, "budget": self.budget_name}

    def __repr__(self) -> str:
        return (
            f"CifarTrainer(space={self.space!r}, budget={self.budget_name!r}, device={self.device!r}, "
            f"seed={self.seed}, speed={self.speed_options!r})"
        )


def final_train(
    space: str | SearchSpace,
    arch: str,
    budget: BudgetLike = "full",
    device: str | torch.device = "auto",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    seed: int = 0,
    progress: Progress | None = None,
    speed: str | SpeedOptions = "fast",
    threads: int | None = None,
) -> dict[str, Any]:
    """Train ``arch`` once more under ``budget`` and report validation and test accuracy.

    Training is the evaluation's (same routine, split, seeds and thread rule, so ``budget``,
    ``seed``, ``speed`` and ``threads`` equal to an evaluation's reproduce it on the CPU). This is
    the only function that reads the CIFAR-10 test batch; its accuracy must not feed back into a
    search.

    Returns ``arch`` (canonical), ``val_accuracy``, ``test_accuracy`` (fractions; 0 unless status
    is ``"ok"``), ``params``, ``flops``, ``trained_params``, ``train_seconds``, ``status``
    (``"ok"``, ``"diverged"`` or ``"oom"``), ``error`` when not ok, ``budget`` (its values) and
    ``seed``. ``progress(epoch, epochs)`` is called after each epoch.
    """
    space = make_space(space)
    target = resolve_device(device)
    resolved = resolve_budget(budget, target.type)
    options = training_speed(speed, target.type, threads)
    check_compile(options, target.type, resolved.steps)
    canonical = space.format(space.validate(arch))
    check_cifar10(data_dir, download=download)
    metrics = train_network(
        space,
        canonical,
        resolved,
        target,
        check_int(seed, "seed"),
        options,
        data_dir,
        download,
        True,
        progress,
    )
    metrics["val_accuracy"] = metrics.pop("accuracy")
    return {"arch": canonical, **metrics, "budget": dataclasses.asdict(resolved), "seed": seed}


# ---------------------------------------------------------------------------------------- GPU identity
def cuda_stack() -> str:
    """``gpu='<model>' cuda=<version> cudnn=<version>``: what a CUDA result depends on besides the
    code. The GPU model is that of the visible devices (distinct names joined by ``+``;
    ``unknown`` when none can be read), the versions those torch was built with and loaded.

    Asked without initialising CUDA in this process (the names come from NVML unless CUDA has
    started here anyway), so a parent that computes a fingerprint can still fork CUDA workers.
    """
    import torch

    names = gpu_names()
    gpu = "+".join(sorted(set(names))) if names else "unknown"
    # cudnn.version() would check the GPUs' compute capability, which starts CUDA; same number.
    cudnn = torch._C._cudnn.getVersionInt() if torch.backends.cudnn.is_available() else None
    return f"gpu={gpu!r} cuda={torch.version.cuda} cudnn={cudnn}"


@functools.lru_cache(maxsize=1)
def gpu_names() -> tuple[str, ...]:
    """The model names of the visible CUDA devices, in CUDA's order (``()`` when none can be
    read): from torch when CUDA has started in this process, else from NVML, which does not start
    it. Cached per process."""
    import torch

    if torch.cuda.is_initialized():
        return tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return ()
    if nvml.nvmlInit_v2() != 0:
        return ()
    try:
        count = ctypes.c_uint()
        if nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
            return ()
        names = []
        for device in _visible_devices(count.value):
            handle = ctypes.c_void_p()
            if isinstance(device, int):
                found = nvml.nvmlDeviceGetHandleByIndex_v2(device, ctypes.byref(handle))
            else:
                found = nvml.nvmlDeviceGetHandleByUUID(device.encode(), ctypes.byref(handle))
            name = ctypes.create_string_buffer(96)
            if found == 0 and nvml.nvmlDeviceGetName(handle, name, len(name)) == 0:
                names.append(name.value.decode(errors="replace"))
        return tuple(names)
    finally:
        nvml.nvmlShutdown()


def _visible_devices(count: int) -> list[int | str]:
    """The NVML indices (or ``GPU-...`` UUIDs) that ``CUDA_VISIBLE_DEVICES`` lets CUDA see, in
    CUDA's order; every device when it is unset. Like CUDA, the list ends at the first entry
    that is neither."""
    text = os.environ.get("CUDA_VISIBLE_DEVICES")
    if text is None:
        return list(range(count))
    devices: list[int | str] = []
    for entry in (part.strip() for part in text.split(",")):
        if entry.isdigit() and int(entry) < count:
            devices.append(int(entry))
        elif entry.startswith("GPU-"):
            devices.append(entry)
        else:
            break
    return devices
