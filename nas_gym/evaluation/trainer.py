"""The CIFAR-10 reward backend: train a network of a search space and return its validation accuracy.

:class:`CifarTrainer` is the evaluator of ``NASCifar-v0``. It trains on a prefix of the fixed
45,000-image training part of :func:`nas_gym.data.train_val_split` and measures accuracy on a
prefix of the 5,000 held-out training images; it never reads the CIFAR-10 test batch.
:func:`final_train` is the one place that does (for ``nas-gym train``).

How much training an evaluation gets is a :class:`Budget` (presets in :data:`BUDGETS`).

Speed (the loop follows the design of single-GPU CIFAR-10 speed-runs such as airbench):

- The uint8 images stay resident on the device for the whole process
  (:func:`nas_gym.data.cifar10_on_device`); each batch is gathered, augmented and normalised there.
  No ``DataLoader``, no per-sample Python, no host-to-device copy per step.
- Random crop (zero padding 4) and horizontal flip act on whole uint8 batches with two gathers
  (:func:`augment_batch`).
- The training loop never synchronises with the host: the loss is summed on the device and
  checked for NaN/inf once per epoch; the accuracy is read once at the end.
- On CUDA (:meth:`SpeedOptions.fast`): bf16 autocast, channels_last, ``cudnn.benchmark``;
  ``torch.compile`` on request. On the CPU only channels_last paid off in measurements (see
  :meth:`SpeedOptions.fast`), so the CPU path is fp32 in channels_last.

Reproducibility: CPU results depend on the intra-op thread count (it changes the order of
floating-point reductions), so CPU training runs on a fixed number of threads,
:data:`CPU_THREADS` unless the caller passes ``threads=``, whatever the process setting, the
executor or the worker layout; the count is part of :attr:`CifarTrainer.fingerprint`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import math
import numbers
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas_gym.data import NUM_TRAIN, check_cifar10, cifar10_on_device, train_val_split
from nas_gym.errors import did_you_mean
from nas_gym.spaces import SearchSpace, make_space

TRAINER_VERSION = 2
"""Bumped whenever a change of this module changes the accuracy an architecture gets or the
meaning of :attr:`CifarTrainer.fingerprint` (it is part of it), so stored results of older
versions are not reused. Version 2: CPU training on a fixed thread count; device type, thread
count and speed options in the fingerprint."""

CPU_THREADS = 1
"""Intra-op threads of torch for CPU training when the caller names none (``threads=None``).

A fixed count, because the thread count changes CPU results (reductions are split differently)
and must therefore not follow the executor or the worker layout: a process pool gives each
worker ``cores // workers`` threads, Ray gives a task ``num_cpus``, a serial run keeps the
process's default (one per core). One, because that is what parallel workers need anyway (no
oversubscription), so a parallel search pays nothing for it. A serial search on an idle machine
does: on a 2-core Xeon with torch 2.14, ``"smoke"`` evaluations of 2 to 4 layer ``"seed"``
networks took 1.8x to 1.9x as long on one thread as on two (1.4 to 3.8 s against 0.8 to 1.9 s);
six of them took 15.0 s serially on one thread, 8.0 s serially on two, 8.6 s on a 2-worker
process pool. On the same machine busy with other work, two threads were the slower (1.4 to
6.8 s on one thread against 5.9 to 15.7 s on two). Pass ``threads=`` to :class:`CifarTrainer`
or :func:`final_train` for another count; results are then those of that count."""

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

VAL_HOLDOUT = 5_000
"""Training images held out for validation (the reward); the other 45,000 are for training."""
SPLIT_SEED = 0
"""Seed of the train/validation partition. Fixed, so that every trainer seed and every budget
validates on the same held-out images."""
CROP_PADDING = 4

Progress = Callable[[int, int], None]
"""``progress(epoch, epochs)``, called after each finished epoch."""


# ---------------------------------------------------------------------------------------- budgets
@dataclass(frozen=True)
class Budget:
    """How much training one evaluation gets, and the optimiser settings that go with it.

    SGD with Nesterov momentum; the learning rate rises linearly from near 0 to its peak over the
    first ``warmup`` fraction of the steps, then falls linearly to 0 (a one-cycle shape: the warm-up
    keeps large batches stable, the decay to 0 gives most of the accuracy of a short run).
    """

    epochs: int
    """Passes over the training images."""
    train_size: int
    """Training images used (a fixed random subset of the 45,000 of the training part; at most 45,000)."""
    val_size: int
    """Held-out training images on which the accuracy is measured (at most 5,000)."""
    batch_size: int
    """Images per optimiser step (capped at ``train_size``); incomplete last batches are dropped."""
    lr: float = 0.4
    """Peak learning rate per 256 images in a batch: the step size is ``lr * batch_size / 256`` (the
    linear scaling rule, so that overriding ``batch_size`` alone keeps training sensible)."""
    momentum: float = 0.9
    """Nesterov momentum of SGD."""
    weight_decay: float = 5e-4
    """L2 penalty of SGD, on all parameters."""
    label_smoothing: float = 0.2
    """Label smoothing of the cross-entropy; it makes short, high-learning-rate runs less noisy."""
    warmup: float = 0.2
    """Fraction of all steps spent on the linear warm-up of the learning rate."""
    augment: bool = True
    """Random crop (zero padding 4) and horizontal flip of the training images."""

    def __post_init__(self) -> None:
        # Values are normalised to int / float (numpy scalars, 1 vs 1.0), so that equal budgets
        # compare, hash and describe (fingerprint) equal.
        for name in ("epochs", "train_size", "val_size", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"expected budget {name!r} as an int, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("lr", "momentum", "weight_decay", "label_smoothing", "warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise TypeError(f"expected budget {name!r} as a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not isinstance(self.augment, bool):
            raise TypeError(f"expected budget 'augment' as a bool, got {self.augment!r}")
        limits = {
            "epochs": (1, None),
            "train_size": (1, NUM_TRAIN - VAL_HOLDOUT),
            "val_size": (1, VAL_HOLDOUT),
            "batch_size": (1, None),
        }
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if value < low or (high is not None and value > high):
                bound = f"{low} <= {name}" + (f" <= {high}" if high is not None else "")
                raise ValueError(f"expected budget {bound}, got {value}")
        if self.lr <= 0:
            raise ValueError(f"expected budget lr > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"expected budget 0 <= momentum < 1, got {self.momentum}")
        if self.weight_decay < 0:
            raise ValueError(f"expected budget weight_decay >= 0, got {self.weight_decay}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"expected budget 0 <= label_smoothing < 1, got {self.label_smoothing}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"expected budget 0 <= warmup < 1, got {self.warmup}")

    def describe(self) -> str:
        """All values as ``name=value`` pairs (stable order; part of the trainer's fingerprint)."""
        return ",".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self))


BUDGETS: dict[str, Budget] = {
    # A sanity signal, not a ranking: on a 2-core Xeon (idle machine), 1.4-3.8 s per 2-4 layer
    # "seed" network on one thread (CPU_THREADS), 0.8-1.9 s on two, for 0.22-0.33 validation
    # accuracy (chance: 0.1).
    "smoke": Budget(epochs=1, train_size=2_000, val_size=1_000, batch_size=64),
    # A ranking signal for GPU searches (160,000 training images). On the same CPU, with torch's
    # default thread count (two there): 2-2.5 min for 3-4 layer networks, reaching 0.67-0.70
    # validation accuracy.
    "proxy": Budget(epochs=8, train_size=20_000, val_size=5_000, batch_size=512),
    # Final training on the whole training part.
    "full": Budget(epochs=40, train_size=45_000, val_size=5_000, batch_size=512),
}
"""The named budgets of ``NASCifar-v0`` (``budget=`` of the env and of :class:`CifarTrainer`)."""

BUDGET_FIELDS = tuple(f.name for f in dataclasses.fields(Budget))


def resolve_budget(budget: str | Mapping[str, Any] | Budget) -> Budget:
    """A :class:`Budget` from a preset name, a :class:`Budget`, or a dict of overrides of ``"proxy"``.

    Raises:
        ValueError: an unknown preset name or field (with a did-you-mean hint), or a bad value.
        TypeError: ``budget`` is none of the above, or a value has the wrong type.
    """
    if isinstance(budget, Budget):
        return budget
    if isinstance(budget, str):
        if budget not in BUDGETS:
            raise ValueError(
                f"expected a budget in {sorted(BUDGETS)} or a dict of overrides, got {budget!r}"
                f"{did_you_mean(budget, BUDGETS)}"
            )
        return BUDGETS[budget]
    if isinstance(budget, Mapping):
        for key in budget:
            if key not in BUDGET_FIELDS:
                raise ValueError(
                    f"expected budget keys among {list(BUDGET_FIELDS)}, got {key!r}"
                    f"{did_you_mean(str(key), BUDGET_FIELDS)}"
                )
        return dataclasses.replace(BUDGETS["proxy"], **budget)
    raise TypeError(
        f"expected budget as a name in {sorted(BUDGETS)}, a dict or a Budget, got {type(budget).__name__}"
    )


# ---------------------------------------------------------------------------------------- devices
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def _device_text(device: str | torch.device) -> str:
    """``device`` as one of the accepted strings (format check only; CUDA is not touched)."""
    text = str(device) if isinstance(device, torch.device) else device
    if not isinstance(text, str) or not _DEVICE_PATTERN.match(text):
        raise ValueError(f"expected device 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return text


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` (a CUDA device when available, round robin over worker processes, else the CPU),
    ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a checked
    ``torch.device``; raises ``ValueError`` for anything else or a CUDA device that is not there."""
    text = _device_text(device)
    if text == "auto":
        # In a worker process of a vector env or an executor, worker i takes GPU i % n, so the
        # workers of one machine spread over all its GPUs (the CPU when there is none).
        from nas_gym.evaluation.executors import auto_device

        return torch.device(auto_device())
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


@dataclass(frozen=True)
class SpeedOptions:
    """Numerics and speed settings of training; they change speed, not the training protocol."""

    bf16: bool = False
    """Autocast to bfloat16 (weights and optimiser stay float32)."""
    channels_last: bool = False
    """NHWC memory format for the model and the batches."""
    cudnn_benchmark: bool = False
    """Let cuDNN time its convolution algorithms once per shape (the shapes never change in a run)."""
    compile: bool = False
    """``torch.compile`` the model."""
    threads: int | None = None
    """Intra-op threads of torch during a call (restored afterwards). ``None``: the rule of
    :class:`CifarTrainer` and :func:`final_train`, :data:`CPU_THREADS` on the CPU and the
    process setting on CUDA (where the host threads do not change results)."""

    def __post_init__(self) -> None:
        _check_threads(self.threads)

    def describe(self) -> str:
        """The numerics settings as ``name=value`` pairs (stable order; part of the trainer's
        fingerprint). ``threads`` is left out: it changes results on the CPU only, so the
        fingerprint names the effective count of CPU runs separately."""
        return ",".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.name != "threads"
        )

    @classmethod
    def fast(
        cls, device: torch.device | str, compile: bool = False, threads: int | None = None
    ) -> SpeedOptions:
        """The best settings for ``device``.

        CUDA: bf16 autocast (tensor-core math and half the activation memory; unlike fp16 it needs
        no loss scaling), channels_last (the layout tensor-core convolutions use, so cuDNN inserts
        no transposes) and ``cudnn.benchmark`` (every batch has the same shape, so the one-off
        autotuning is paid back). ``torch.compile`` stays opt-in: it compiles for every new
        architecture, which can take longer than a proxy evaluation itself.

        CPU: channels_last only. Measured on a 2-core AVX-512/bf16 Xeon with torch 2.14 (CPU time
        per training step of 128 images, one thread, ``"seed"`` networks of 2 to 4 layers):
        channels_last took 1.2x to 1.5x less time than NCHW (oneDNN convolutions run natively in
        it, and NCHW max-pooling was several times slower); bf16 autocast was slower than fp32 in
        every case, with and without channels_last (no AMX on that processor: bf16 convolutions
        gain no throughput, the casts cost time). ``threads`` is passed through; ``None`` lets
        :class:`CifarTrainer` apply its rule (:data:`CPU_THREADS` on the CPU).
        ``torch.compile`` gave no speed-up there and took about 25 s for the first network.
        """
        if torch.device(device).type == "cuda":
            return cls(bf16=True, channels_last=True, cudnn_benchmark=True, compile=compile, threads=threads)
        return cls(channels_last=True, compile=compile, threads=threads)

    @classmethod
    def reference(cls) -> SpeedOptions:
        """Plain fp32, contiguous, no cuDNN autotuning, eager: the baseline the fast path must match."""
        return cls()


def _check_threads(threads: Any) -> None:
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"expected threads as None or an int >= 1, got {threads!r}")


def _training_speed(speed: str | SpeedOptions, device_type: str, threads: int | None) -> SpeedOptions:
    """The speed options of training on ``device_type`` with the thread rule applied: ``threads``,
    else ``speed.threads``, else :data:`CPU_THREADS` on the CPU (``None``, the process setting,
    on CUDA)."""
    options = _resolve_speed(speed, torch.device(device_type))
    _check_threads(threads)
    if threads is not None and options.threads is not None and threads != options.threads:
        raise ValueError(
            f"expected threads={threads} to agree with speed.threads, got speed.threads={options.threads}"
        )
    if threads is None:
        threads = options.threads
    if threads is None and device_type == "cpu":
        threads = CPU_THREADS
    return dataclasses.replace(options, threads=threads)


def _auto_device_type() -> str:
    """What ``device="auto"`` trains on, asked without initialising CUDA in this process:
    ``torch.cuda.device_count`` counts the GPUs through NVML (unlike ``torch.cuda.is_available``,
    it does not break CUDA in processes forked from this one; it falls back to the CUDA runtime
    only where NVML is missing). The same count decides the device of each worker
    (:func:`nas_gym.evaluation.executors.assign_device`)."""
    return "cuda" if torch.cuda.device_count() > 0 else "cpu"


# ---------------------------------------------------------------------------------------- augmentation
def crop_flip_batch(
    images: torch.Tensor, offsets: torch.Tensor, flip: torch.Tensor, padding: int = CROP_PADDING
) -> torch.Tensor:
    """Per-image crops of ``images`` (B, C, H, W) zero-padded by ``padding`` on each side, then
    mirrored left to right where ``flip`` (B,) is true.

    ``offsets`` (B, 2) holds the top-left corner ``(row, column)`` of each crop in the padded image,
    each in ``0..2*padding``; ``(padding, padding)`` with no flip gives the image back unchanged.
    Two gathers for the whole batch (rows, then columns; the flip is folded into the column
    index), so no per-image Python and no separate flip pass; about 2x faster than one 4-d
    advanced-indexing gather on the CPU.
    """
    b, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    rows = offsets[:, 0, None] + torch.arange(h, device=device)  # (B, H)
    cropped_rows = padded.gather(2, rows.view(b, 1, h, 1).expand(b, c, h, w + 2 * padding))
    columns = torch.arange(w, device=device)
    columns = offsets[:, 1, None] + torch.where(flip[:, None], w - 1 - columns, columns)  # (B, W)
    return cropped_rows.gather(3, columns.view(b, 1, 1, w).expand(b, c, h, w))


def augment_batch(
    images: torch.Tensor, generator: torch.Generator, padding: int = CROP_PADDING
) -> torch.Tensor:
    """Random crop (zero padding ``padding``) and random horizontal flip of a batch, on its device.

    The torchvision recipe ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip()`` applied to
    uint8 (B, C, H, W) batches; padding with 0 there is the black border torchvision adds.
    """
    n = images.shape[0]
    offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator, device=images.device)
    flip = torch.rand(n, generator=generator, device=images.device) < 0.5
    return crop_flip_batch(images, offsets, flip, padding)


class _Normalize:
    """uint8 batches to the model's input: ``(x / 255 - mean) / std``, folded into one multiply-add."""

    def __init__(self, device: torch.device, channels_last: bool):
        std = torch.tensor(CIFAR10_STD, device=device).view(1, 3, 1, 1)
        mean = torch.tensor(CIFAR10_MEAN, device=device).view(1, 3, 1, 1)
        self.scale = 1.0 / (255.0 * std)
        self.shift = -mean / std
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        # One conversion straight into the model's memory format, then in-place arithmetic.
        x = images.to(dtype=torch.float32, memory_format=self.memory_format)
        return x.mul_(self.scale).add_(self.shift)


# ---------------------------------------------------------------------------------------- training
def count_flops(model: nn.Module, device: torch.device) -> int:
    """Multiply-adds of one forward pass of a 1x3x32x32 image, counted by forward hooks on every
    ``Conv2d`` and ``Linear`` (the NAS convention: normalisation, activations and pooling are not
    counted). Hooks see the real output shapes, so padding, strides and pooling need no modelling."""
    total = 0

    def conv_hook(module: nn.Conv2d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        kernel = math.prod(module.kernel_size)
        total += output[0].numel() * (module.in_channels // module.groups) * kernel

    def linear_hook(module: nn.Linear, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += output[0].numel() * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        # Eval mode: batch statistics of one image are undefined, and running statistics must not move.
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, 32, 32, device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return int(total)


def _derived_seed(seed: int, arch: str, stream: str) -> int:
    """A 63-bit seed from the trainer seed, the canonical architecture and a stream name, so that
    architectures (and init vs. data order) get independent, reproducible random streams."""
    digest = hashlib.sha256(f"{seed}\x00{arch}\x00{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@contextlib.contextmanager
def _seeded_global_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Seed torch's default generator of ``device`` (used by ``nn.Module`` initialisers) for the
    block and restore the caller's state afterwards, so user code sees no change in its RNG."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        if device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
            torch.cuda.default_generators[index].manual_seed(seed)
        else:
            # Not torch.manual_seed: it would also reseed every CUDA device, outside the fork.
            torch.default_generator.manual_seed(seed)
        yield


@contextlib.contextmanager
def _speed_settings(speed: SpeedOptions) -> Iterator[None]:
    """Apply the process-global parts of ``speed`` (``cudnn.benchmark``, the thread count) for the
    block only: they belong to the user's process."""
    benchmark, threads = torch.backends.cudnn.benchmark, torch.get_num_threads()
    torch.backends.cudnn.benchmark = speed.cudnn_benchmark
    if speed.threads is not None:
        torch.set_num_threads(speed.threads)
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = benchmark
        if speed.threads is not None:
            torch.set_num_threads(threads)


def _autocast(device: torch.device, speed: SpeedOptions) -> contextlib.AbstractContextManager[Any]:
    if speed.bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _build_model(
    space: SearchSpace, arch: str, device: torch.device, seed: int, speed: SpeedOptions
) -> tuple[nn.Module, int, int]:
    """``(model, params, flops)``: the network built directly on ``device`` with seeded weights."""
    with _seeded_global_rng(device, _derived_seed(seed, arch, "init")), torch.device(device):
        model = space.build_model(arch)
    params = sum(p.numel() for p in model.parameters())
    flops = count_flops(model, device)
    if speed.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, int(params), flops


def _fit(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    indices: torch.Tensor,
    budget: Budget,
    speed: SpeedOptions,
    generator: torch.Generator,
    progress: Progress | None = None,
) -> str | None:
    """Train ``model`` in place on ``images[indices]``; ``None`` on success, else why it diverged.

    ``images`` is the resident uint8 split on the model's device and ``indices`` (on the same
    device) selects the training subset, so no subset copy is ever made.
    """
    device = images.device
    n = len(indices)
    batch_size = min(budget.batch_size, n)
    steps_per_epoch = n // batch_size
    total_steps = steps_per_epoch * budget.epochs
    warmup_steps = max(1, round(budget.warmup * total_steps))
    peak_lr = budget.lr * batch_size / 256

    def lr_factor(step: int) -> float:
        # Linear warm-up to the peak, then linear decay to 0 at the last step (one-cycle shape).
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=peak_lr,
        momentum=budget.momentum,
        nesterov=budget.momentum > 0,
        weight_decay=budget.weight_decay,
    )
    # LambdaLR works on Python floats: stepping it never touches the device.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=budget.label_smoothing)
    normalize = _Normalize(device, speed.channels_last)
    step_model = torch.compile(model) if speed.compile else model
    model.train()
    for epoch in range(budget.epochs):
        order = indices[torch.randperm(n, generator=generator, device=device)]
        # Summed on the device and read once per epoch: a per-step .item() would stall the GPU queue.
        loss_sum = torch.zeros((), device=device)
        for step in range(steps_per_epoch):
            batch = order[step * batch_size : (step + 1) * batch_size]
            x = images[batch]
            if budget.augment:
                x = augment_batch(x, generator)
            x = normalize(x)
            with _autocast(device, speed):
                loss = loss_fn(step_model(x), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach().float()
        if not torch.isfinite(loss_sum):
            return f"the training loss became NaN or infinite in epoch {epoch + 1} of {budget.epochs}"
        if progress is not None:
            progress(epoch + 1, budget.epochs)
    return None


def _accuracy(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    indices: torch.Tensor | None,
    speed: SpeedOptions,
    batch_size: int = 1_000,
) -> float:
    """Top-1 accuracy of ``model`` on ``images[indices]`` (all images when ``indices`` is None)."""
    device = images.device
    normalize = _Normalize(device, speed.channels_last)
    n = len(images) if indices is None else len(indices)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    model.eval()
    # inference_mode: no autograd bookkeeping at all (cheaper than no_grad).
    with torch.inference_mode(), _autocast(device, speed):
        for start in range(0, n, batch_size):
            chunk = slice(start, min(start + batch_size, n))
            rows = chunk if indices is None else indices[chunk]
            logits = model(normalize(images[rows]))
            correct += (logits.argmax(dim=1) == labels[rows]).sum()
    model.train()
    return correct.item() / n  # the one host sync of the evaluation


def _split_on_device(budget: Budget, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    train, val = train_val_split(NUM_TRAIN, VAL_HOLDOUT, SPLIT_SEED)
    return (
        torch.from_numpy(train[: budget.train_size]).to(device),
        torch.from_numpy(val[: budget.val_size]).to(device),
    )


def _oom_cleanup(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------- evaluator
class CifarTrainer:
    """The evaluator of ``NASCifar-v0``: ``trainer(arch)`` trains ``arch`` on CIFAR-10 and returns its
    metrics.

    Each call builds the network of ``space`` on ``device`` (seeded from ``seed`` and the
    architecture), trains it under ``budget`` on the training part of the fixed
    train/validation split of the 50,000 CIFAR-10 training images, and returns::

        {"accuracy": float,      # on budget.val_size held-out training images, a fraction
         "params": int,          # parameters of the network (BatchNorm's included)
         "flops": int,           # multiply-adds of one 32x32 forward pass (see count_flops)
         "train_seconds": float, # wall time from building the model to the accuracy
         "status": "ok" | "diverged" | "oom",
         "error": str}           # only when status is not "ok"

    ``"diverged"``: the loss became NaN/inf (accuracy 0). ``"oom"``: CUDA ran out of memory; the
    cache is emptied and the trainer stays usable. The test batch is never read.

    On the CPU the same architecture, budget, seed, speed options and thread count give the same
    accuracy on a given machine and torch build (the instruction set can change rounding). The
    thread count is ``threads``, by default :data:`CPU_THREADS` (1), set for the duration of
    each call and restored afterwards, so it does not depend on the process setting, the
    executor or the worker layout. CUDA training is not bit-reproducible. The user's global
    torch RNG is left as it was.

    What determines the results is in :attr:`fingerprint`, the key of an evaluation store.

    The instance holds only settings, so it pickles cheaply (subprocess vector envs): the data
    is loaded lazily, on the first call of each process, and cached there
    (:func:`nas_gym.data.cifar10_on_device`).

    Args:
        space: preset name or :class:`~nas_gym.spaces.SearchSpace` whose ``build_model`` gives the network.
        budget: ``"smoke"``, ``"proxy"``, ``"full"``, a dict of overrides of ``"proxy"``, or a :class:`Budget`.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. ``"auto"``: the device type
            (CUDA when ``torch.cuda.device_count() > 0``, else CPU) is fixed here, at
            construction, because the fingerprint names it; the GPU index is decided at each
            call, in the process that trains (worker ``i`` takes GPU ``i % n``). A call in a
            process where ``"auto"`` means another device type (say a Ray worker with a GPU,
            built on a head node without one) raises ``RuntimeError``: pass the device
            explicitly there.
        data_dir: folder holding ``cifar10/cifar-10-batches-py`` (default ``$NAS_GYM_DATA``, else
            ``~/.cache/nas_gym``). Checked here (no file is read) so that missing data fails early.
        download: fetch CIFAR-10 with torchvision when it is missing.
        seed: training seed (weights, data order, augmentation).
        speed: ``"fast"`` (:meth:`SpeedOptions.fast` for the device), ``"reference"`` (plain fp32) or
            a :class:`SpeedOptions`.
        threads: intra-op threads of torch during training; ``None``: ``speed.threads`` if set,
            else :data:`CPU_THREADS` on the CPU and the process setting on CUDA.

    Attributes:
        device_type: ``"cpu"`` or ``"cuda"``, fixed at construction.
        speed_options: the resolved :class:`SpeedOptions` of training, the thread rule applied
            (``speed_options.threads`` is the effective thread count; ``None`` on CUDA unless given).
    """

    def __init__(
        self,
        space: str | SearchSpace = "seed",
        budget: str | Mapping[str, Any] | Budget = "proxy",
        device: str | torch.device = "auto",
        data_dir: str | os.PathLike[str] | None = None,
        download: bool = False,
        seed: int = 0,
        speed: str | SpeedOptions = "fast",
        threads: int | None = None,
    ):
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"expected seed as an int, got {seed!r}")
        if not (isinstance(speed, SpeedOptions) or speed in _SPEED_NAMES):
            raise ValueError(f"expected speed 'fast', 'reference' or a SpeedOptions, got {speed!r}")
        self.space = make_space(space)
        self.budget = resolve_budget(budget)
        # The GPU index of "auto" is resolved at each call, in the process that trains (worker i
        # takes GPU i % n); only its device type is fixed here, without initialising CUDA in a
        # parent process that may fork the workers. An explicit CUDA device is checked now, so
        # that a typo fails early.
        self.device = _device_text(device)
        if self.device == "auto":
            self.device_type = _auto_device_type()
        else:
            self.device_type = resolve_device(self.device).type
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.download = bool(download)
        self.seed = int(seed)
        self.speed = speed
        self.speed_options = _training_speed(speed, self.device_type, threads)
        check_cifar10(self.data_dir, download=self.download)

    @property
    def fingerprint(self) -> str:
        """The identity of this evaluator's results in an evaluation store: backend and its
        version, space, every budget value, the seed, the device type, the speed options and,
        on the CPU, the thread count (for ``"auto"``, the device type decided at construction).
        Not the GPU index: GPUs of one machine give results of the same kind."""
        threads = f" threads={self.speed_options.threads}" if self.device_type == "cpu" else ""
        return (
            f"cifar10-trainer/v{TRAINER_VERSION} space={self.space!r} "
            f"budget=({self.budget.describe()}) seed={self.seed} device={self.device_type}{threads} "
            f"speed=({self.speed_options.describe()})"
        )

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
        start = time.perf_counter()
        try:
            return self._evaluate(canonical, device, self.speed_options)
        except torch.cuda.OutOfMemoryError as exc:
            error = f"{type(exc).__name__}: {exc}"
        # Outside the except block, so the traceback (and the tensors its frames hold) is gone.
        _oom_cleanup(device)
        return {
            "accuracy": 0.0,
            "params": None,
            "flops": None,
            "train_seconds": time.perf_counter() - start,
            "status": "oom",
            "error": error,
        }

    def _evaluate(self, arch: str, device: torch.device, speed: SpeedOptions) -> dict[str, Any]:
        images, labels = cifar10_on_device(device, self.data_dir, self.download, split="train")
        train_idx, val_idx = _split_on_device(self.budget, device)
        # The clock starts after the one-off data load of the process: it measures the evaluation.
        start = time.perf_counter()
        generator = torch.Generator(device=device).manual_seed(_derived_seed(self.seed, arch, "data"))
        with _speed_settings(speed):
            model, params, flops = _build_model(self.space, arch, device, self.seed, speed)
            problem = _fit(model, images, labels, train_idx, self.budget, speed, generator)
            accuracy = 0.0 if problem else _accuracy(model, images, labels, val_idx, speed)
        metrics: dict[str, Any] = {
            "accuracy": accuracy,
            "params": params,
            "flops": flops,
            "train_seconds": time.perf_counter() - start,
            "status": "diverged" if problem else "ok",
        }
        if problem:
            metrics["error"] = problem
        return metrics

    def __repr__(self) -> str:
        return (
            f"CifarTrainer(space={self.space!r}, budget={self.budget!r}, device={self.device!r}, "
            f"seed={self.seed}, speed={self.speed_options!r})"
        )


_SPEED_NAMES = ("fast", "reference")


def _resolve_speed(speed: str | SpeedOptions, device: torch.device) -> SpeedOptions:
    if isinstance(speed, SpeedOptions):
        return speed
    if speed == "fast":
        return SpeedOptions.fast(device)
    if speed == "reference":
        return SpeedOptions.reference()
    raise ValueError(f"expected speed 'fast', 'reference' or a SpeedOptions, got {speed!r}")


def final_train(
    space: str | SearchSpace,
    arch: str,
    budget: str | Mapping[str, Any] | Budget = "full",
    device: str | torch.device = "auto",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    seed: int = 0,
    progress: Progress | None = None,
    speed: str | SpeedOptions = "fast",
    threads: int | None = None,
) -> dict[str, Any]:
    """Train ``arch`` once more under ``budget`` and report validation and test accuracy.

    Training is the same as in :class:`CifarTrainer` (same split, same seeds, same thread rule,
    so ``budget``, ``seed``, ``speed`` and ``threads`` equal to an evaluation's reproduce it on
    the CPU). This is the only function that reads the CIFAR-10 test batch; its accuracy must
    not feed back into a search.

    Returns ``arch`` (canonical), ``val_accuracy``, ``test_accuracy`` (fractions; 0 unless status
    is ``"ok"``), ``params``, ``flops``, ``train_seconds``, ``status`` (``"ok"`` or ``"diverged"``),
    ``budget`` (its values) and ``seed``. ``progress(epoch, epochs)`` is called after each epoch.
    """
    space = make_space(space)
    resolved = resolve_budget(budget)
    target = resolve_device(device)
    options = _training_speed(speed, target.type, threads)
    canonical = space.format(space.validate(arch))
    check_cifar10(data_dir, download=download)
    images, labels = cifar10_on_device(target, data_dir, download, split="train")
    train_idx, val_idx = _split_on_device(resolved, target)
    start = time.perf_counter()
    generator = torch.Generator(device=target).manual_seed(_derived_seed(seed, canonical, "data"))
    with _speed_settings(options):
        model, params, flops = _build_model(space, canonical, target, seed, options)
        problem = _fit(model, images, labels, train_idx, resolved, options, generator, progress)
        val_accuracy = test_accuracy = 0.0
        if problem is None:
            val_accuracy = _accuracy(model, images, labels, val_idx, options)
            test_images, test_labels = cifar10_on_device(target, data_dir, download, split="test")
            test_accuracy = _accuracy(model, test_images, test_labels, None, options)
    result: dict[str, Any] = {
        "arch": canonical,
        "val_accuracy": val_accuracy,
        "test_accuracy": test_accuracy,
        "params": params,
        "flops": flops,
        "train_seconds": time.perf_counter() - start,
        "status": "diverged" if problem else "ok",
        "budget": dataclasses.asdict(resolved),
        "seed": seed,
    }
    if problem:
        result["error"] = problem
    return result
