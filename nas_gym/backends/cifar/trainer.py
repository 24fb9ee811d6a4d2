"""The CIFAR-10 reward backend: :class:`CifarTrainer`, the evaluator of ``NASCifar-v0``, and
:func:`final_train`, the final training of a chosen architecture (``nas-gym train``).

Both run :func:`~nas_gym.backends.cifar.training.train_network` on the training part of the
fixed train/validation split of the 50,000 CIFAR-10 training images; only :func:`final_train`
reads the test batch.

Reproducibility: on the CPU the thread count changes the order of floating-point reductions, so
results are reproducible for a fixed architecture, budget, seed, speed options and thread count,
on a given machine and torch build; the count is part of :attr:`CifarTrainer.fingerprint`. GPU
training is not bit-reproducible.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nas_gym.backends.cifar.budget import Budget, budget_name, resolve_budget
from nas_gym.backends.cifar.data import check_cifar10
from nas_gym.backends.cifar.speed import SPEED_NAMES, SpeedOptions, training_speed
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
        budget: ``"auto"`` (``"proxy"`` on CUDA, ``"cpu-proxy"`` on the CPU), ``"smoke"``,
            ``"cpu-proxy"``, ``"proxy"``, ``"full"``, a dict of changes to one of them, or a
            :class:`~nas_gym.backends.cifar.budget.Budget`.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. The device type is fixed here
            (the fingerprint names it), counted without initialising CUDA in this process; the
            GPU of ``"auto"`` is picked at each call, in the process that trains (worker ``i``
            takes GPU ``i % n``).
        data_dir: folder holding ``cifar10/cifar-10-batches-py`` (default ``$NAS_GYM_DATA``, else
            ``~/.cache/nas_gym``); checked here, so that missing data fails early.
        download: fetch CIFAR-10 when it is missing.
        seed: training seed (weights, data order, augmentation).
        speed: ``"fast"`` (the best settings of the device), ``"reference"`` (plain fp32) or a
            :class:`~nas_gym.backends.cifar.speed.SpeedOptions`.
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
        self._set_budget(budget)
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.download = bool(download)
        self.speed_options = training_speed(speed, self.device_type, threads)
        check_cifar10(self.data_dir, download=self.download)

    def _set_budget(self, budget: BudgetLike) -> None:
        self.budget = resolve_budget(budget, self.device_type)
        self.budget_name = budget_name(budget, self.device_type) or "custom"
        self.fidelity: str | dict[str, Any] = (
            dict(budget) if isinstance(budget, Mapping) else self.budget_name
        )
        """What ``info["fidelity"]`` names: the budget's name (``"auto"`` resolved), or its dict."""

    fidelities = ("smoke", "cpu-proxy", "proxy", "full")
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
        the CPU, the thread count. Not the GPU index: GPUs of one machine give results of the
        same kind."""
        threads = f" threads={self.threads}" if self.device_type == "cpu" else ""
        return (
            f"cifar10-trainer/v{TRAINER_VERSION} space={self.space!r} "
            f"budget=({self.budget.describe()}) seed={self.seed} device={self.device_type}{threads} "
            f"speed=({self.speed_options.describe()})"
        )

    def with_fidelity(self, budget: BudgetLike) -> CifarTrainer:
        """This trainer with another budget: the fidelity of an episode."""
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
