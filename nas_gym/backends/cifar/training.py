"""The one training routine of the CIFAR-10 backend: build a network, train it under a budget,
measure it; the env's trainer and the final training both run it.

Speed tricks, each for a reason (the loop follows single-GPU CIFAR-10 speed-runs such as airbench):

- the uint8 images stay resident on the device for the process (:mod:`.data`); each batch is
  gathered, augmented and normalised there: no ``DataLoader``, no per-sample Python, no
  host-to-device copy per step;
- random crop and flip act on whole uint8 batches with two gathers (:func:`crop_flip_batch`);
- the loop never waits for the host: the loss is summed on the device and checked once per epoch,
  the accuracy is read once at the end;
- batches are normalised straight into the compute dtype (bf16 under autocast on CUDA) with
  constants uploaded once per process, so an evaluation copies nothing from the host once the
  data is resident;
- FLOPs are counted on the meta device (:func:`count_flops`): no arithmetic, and no cuDNN
  autotuning of a shape that training never uses.

Failures are results, not exceptions: a NaN loss gives status ``diverged``, running out of memory
(of any kind, see :func:`~nas_gym.core.errors.is_out_of_memory`) gives ``oom`` with the memory
freed, so a search goes on. The exception is a CUDA error that leaves the process's GPU unusable
(:func:`~nas_gym.core.errors.is_sticky_cuda_error`): it raises
:class:`~nas_gym.core.errors.StickyCudaError`, so that the caller replaces the process.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas_gym.backends.cifar.budget import Budget
from nas_gym.backends.cifar.data import cifar10_on_device, split_on_device
from nas_gym.backends.cifar.speed import SpeedOptions, autocast, speed_settings
from nas_gym.core.devices import free_accelerator_memory
from nas_gym.core.errors import StickyCudaError, is_out_of_memory, is_sticky_cuda_error
from nas_gym.spaces import SearchSpace

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

Progress = Callable[[int, int], None]
"""``progress(epoch, epochs)``, called after each finished epoch."""


# ---------------------------------------------------------------------------------------- augmentation
def crop_padding(resolution: int) -> int:
    """Zero padding of the random crop: 4 pixels at 32x32 (the standard recipe), an eighth of the
    side at other sizes."""
    return max(1, resolution // 8)


def crop_flip_batch(
    images: torch.Tensor, offsets: torch.Tensor, flip: torch.Tensor, padding: int = 4
) -> torch.Tensor:
    """Per-image crops of ``images`` (B, C, H, W) zero-padded by ``padding`` on each side, then
    mirrored left to right where ``flip`` (B,) is true.

    ``offsets`` (B, 2) holds the top-left corner ``(row, column)`` of each crop in the padded image,
    each in ``0..2*padding``; ``(padding, padding)`` with no flip gives the image back unchanged.
    Two gathers for the whole batch (rows, then columns; the flip is folded into the column
    index): no per-image Python and no separate flip pass.
    """
    b, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    rows = offsets[:, 0, None] + torch.arange(h, device=device)  # (B, H)
    cropped_rows = padded.gather(2, rows.view(b, 1, h, 1).expand(b, c, h, w + 2 * padding))
    columns = torch.arange(w, device=device)
    columns = offsets[:, 1, None] + torch.where(flip[:, None], w - 1 - columns, columns)  # (B, W)
    return cropped_rows.gather(3, columns.view(b, 1, 1, w).expand(b, c, h, w))


def augment_batch(images: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crop (zero padding ``padding``) and random horizontal flip of a uint8 batch, on its
    device: torchvision's ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip()`` for batches."""
    n = images.shape[0]
    offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator, device=images.device)
    flip = torch.rand(n, generator=generator, device=images.device) < 0.5
    return crop_flip_batch(images, offsets, flip, padding)


def compute_dtype(device: torch.device, speed: SpeedOptions) -> torch.dtype:
    """The dtype of the model's input: bfloat16 under bf16 autocast on CUDA (the first convolution
    would cast a float32 input to it anyway), else float32 (on the CPU, autocast leaves the first
    convolution in float32)."""
    return torch.bfloat16 if speed.bf16 and device.type == "cuda" else torch.float32


@functools.lru_cache(maxsize=16)
def _normalization(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    # Computed in float32 on the host (the values every device and dtype share), then uploaded
    # once per process: a tensor built on CUDA from Python floats is a blocking copy each time.
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    scale, shift = 1.0 / (255.0 * std), -mean / std
    return scale.to(device, dtype, non_blocking=True), shift.to(device, dtype, non_blocking=True)


class Normalize:
    """uint8 batches to the model's input: ``(x / 255 - mean) / std`` as one multiply and one add,
    straight into the model's memory format and compute dtype (:func:`compute_dtype`): under bf16
    the uint8 values (exact in bf16) are converted once, with no float32 copy of the batch."""

    def __init__(self, device: torch.device, speed: SpeedOptions):
        self.memory_format = torch.channels_last if speed.channels_last else torch.contiguous_format
        self.dtype = compute_dtype(device, speed)
        self.scale, self.shift = _normalization(device, self.dtype)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(dtype=self.dtype, memory_format=self.memory_format)
        return x.mul_(self.scale).add_(self.shift)


# ---------------------------------------------------------------------------------------- the network
def count_flops(model: nn.Module, resolution: int = 32) -> int:
    """Multiply-adds of one forward pass of a ``1x3xRxR`` image, counted by forward hooks on every
    ``Conv2d`` and ``Linear`` (the NAS convention: normalisation, activations and pooling are not
    counted). The pass runs on the meta device whatever device ``model`` is on: its parameters and
    buffers are swapped for meta tensors for the pass (so do not run ``model`` elsewhere
    meanwhile). Shapes only: no arithmetic, no memory, and no cuDNN autotuning of a 1-image shape
    that training never uses; hooks see the real output shapes, so padding, strides and pooling
    need no modelling."""
    total = 0

    def conv_hook(module: nn.Conv2d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += output[0].numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)

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
        # Eval mode: the running statistics of BatchNorm must not move.
        model.eval()
        with torch.no_grad(), _on_meta(model):
            model(torch.zeros(1, 3, resolution, resolution, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return int(total)


@contextlib.contextmanager
def _on_meta(model: nn.Module) -> Iterator[None]:
    """Meta stand-ins for the parameters and buffers of ``model`` inside the block, the real ones
    put back afterwards (a copy of the model would allocate memory on its device)."""
    swapped: list[tuple[dict[str, Any], str, torch.Tensor]] = []
    try:
        for module in model.modules():
            for tensors in (module._parameters, module._buffers):
                for name, tensor in tensors.items():
                    if tensor is not None and tensor.device.type != "meta":
                        swapped.append((tensors, name, tensor))
                        tensors[name] = torch.empty_like(tensor, device="meta")
        yield
    finally:
        for tensors, name, tensor in swapped:
            tensors[name] = tensor


def architecture_cost(space: SearchSpace, arch: str) -> tuple[int, int]:
    """``(params, flops)`` of ``arch`` as the space defines it (full width, 32x32 input), whatever
    network a budget trains: the cost of the architecture, comparable across budgets. Built on
    the meta device, so it allocates no memory."""
    with torch.device("meta"):
        model = space.build_model(arch)
    return sum(p.numel() for p in model.parameters()), count_flops(model)


def derived_seed(seed: int, arch: str, stream: str) -> int:
    """A 63-bit seed from the trainer seed, the canonical architecture and a stream name, so that
    architectures (and init vs. data order) get independent, reproducible random streams."""
    digest = hashlib.sha256(f"{seed}\x00{arch}\x00{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@contextlib.contextmanager
def seeded_global_rng(device: torch.device, seed: int) -> Iterator[None]:
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


def build_network(
    space: SearchSpace, arch: str, budget: Budget, device: torch.device, seed: int, speed: SpeedOptions
) -> nn.Module:
    """The network that ``budget`` trains (reduced by its ``width`` and ``cells``), built directly
    on ``device`` with seeded weights."""
    # Only a reduced budget passes its reductions: a custom space with the plain
    # build_model(arch, num_classes) signature still trains under every full-size budget.
    reduced = budget.width != 1.0 or budget.cells or budget.resolution != 32
    reduction = (
        {"width": budget.width, "cells": budget.cells, "resolution": budget.resolution} if reduced else {}
    )
    with seeded_global_rng(device, derived_seed(seed, arch, "init")), torch.device(device):
        model = space.build_model(arch, **reduction)
    if speed.deterministic:
        deterministic_pooling(model)
    if speed.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


class GlobalAvgPool(nn.Module):
    """``AdaptiveAvgPool2d(1)`` as a mean over height and width: the same function (output
    ``(N, C, 1, 1)``), whose CUDA backward is deterministic (that of the adaptive pooling adds
    atomically, so ``torch.use_deterministic_algorithms`` refuses it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1), keepdim=True)


def deterministic_pooling(model: nn.Module) -> int:
    """Swap every ``AdaptiveAvgPool2d`` to 1x1 in ``model`` for :class:`GlobalAvgPool`, in place;
    returns how many were swapped. Other adaptive poolings are left (and refused on CUDA by
    deterministic mode, with torch's message naming them)."""
    swapped = 0
    for module in model.modules():
        for name, child in module.named_children():
            if isinstance(child, nn.AdaptiveAvgPool2d) and child.output_size in (1, (1, 1)):
                setattr(module, name, GlobalAvgPool())
                swapped += 1
    return swapped


# ---------------------------------------------------------------------------------------- training
def fit(
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
    batch_size = budget.effective_batch_size
    steps_per_epoch = n // batch_size
    total_steps = steps_per_epoch * budget.epochs
    warmup_steps = max(1, round(budget.warmup * total_steps))
    peak_lr = budget.lr * batch_size / 256
    padding = crop_padding(images.shape[-1])

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
    normalize = Normalize(device, speed)
    step_model = compiled(model) if speed.compile else model
    model.train()
    with compile_guard(speed.compile):
        for epoch in range(budget.epochs):
            order = indices[torch.randperm(n, generator=generator, device=device)]
            # Summed on the device, read once per epoch: a per-step .item() would stall the GPU queue.
            loss_sum = torch.zeros((), device=device)
            for step in range(steps_per_epoch):
                batch = order[step * batch_size : (step + 1) * batch_size]
                x = images[batch]
                if budget.augment:
                    x = augment_batch(x, generator, padding)
                with autocast(device, speed):
                    loss = loss_fn(step_model(normalize(x)), labels[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.detach().float()
            if not torch.isfinite(loss_sum):  # the one host sync of an epoch
                return f"the training loss became NaN or infinite in epoch {epoch + 1} of {budget.epochs}"
            if progress is not None:
                progress(epoch + 1, budget.epochs)
    return None


def compiled(model: nn.Module, **options: Any) -> nn.Module:
    """``torch.compile(model, fullgraph=True, **options)`` with Dynamo's caches emptied first;
    run it under :func:`compile_guard`.

    Every architecture is a new module whose ``forward`` is shared with earlier ones (one code
    object for all ``nn.Sequential``s, say), so without the reset the guards pile up on that code
    object until Dynamo's recompile limit is hit. ``fullgraph=True``: a graph break would run the
    rest of the model eagerly, without an error, while the store records ``compile=True``.
    """
    torch._dynamo.reset()
    return torch.compile(model, fullgraph=True, **options)


_FAIL_ON_LIMIT = ("fail_on_recompile_limit_hit", "fail_on_cache_limit_hit")
"""Dynamo's switch that turns its recompile limit into an error (the second name is the older)."""
_LIMIT_HIT = ("FailOnRecompileLimitHit", "FailOnCacheLimitHit")
"""The exception it raises then, under the same two names."""


@contextlib.contextmanager
def compile_guard(enabled: bool = True) -> Iterator[None]:
    """Run a :func:`compiled` model inside the block: hitting Dynamo's recompile limit raises
    ``RuntimeError`` saying so, instead of Dynamo's silent fall-back to eager execution for the
    rest of the run (results stored under ``compile=True`` would then come from eager code).
    Does nothing when ``enabled`` is false."""
    if not enabled:
        yield
        return
    config = torch._dynamo.config
    switch = next((name for name in _FAIL_ON_LIMIT if hasattr(config, name)), None)
    limit_hit = tuple(
        getattr(torch._dynamo.exc, name) for name in _LIMIT_HIT if hasattr(torch._dynamo.exc, name)
    )
    patch = config.patch(**{switch: True}) if switch else contextlib.nullcontext()
    try:
        with patch:
            yield
    except limit_hit as exc:
        raise RuntimeError(
            "expected torch.compile to compile the model within Dynamo's recompile limit "
            f"({getattr(config, 'recompile_limit', config.cache_size_limit)}), got the limit hit: the "
            "model would have run eagerly while its results are recorded as compiled; train with "
            "compile=False"
        ) from exc


def accuracy(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    indices: torch.Tensor | None,
    speed: SpeedOptions,
    batch_size: int = 1_000,
) -> float:
    """Top-1 accuracy of ``model`` on ``images[indices]`` (all images when ``indices`` is None)."""
    device = images.device
    normalize = Normalize(device, speed)
    n = len(images) if indices is None else len(indices)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    model.eval()
    # inference_mode: no autograd bookkeeping at all (cheaper than no_grad).
    with torch.inference_mode(), autocast(device, speed):
        for start in range(0, n, batch_size):
            chunk = slice(start, min(start + batch_size, n))
            rows = chunk if indices is None else indices[chunk]
            correct += (model(normalize(images[rows])).argmax(dim=1) == labels[rows]).sum()
    model.train()
    return correct.item() / n  # the one host sync of the evaluation


def train_network(
    space: SearchSpace,
    arch: str,
    budget: Budget,
    device: torch.device,
    seed: int,
    speed: SpeedOptions,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    test: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Build ``arch`` (canonical), train it under ``budget`` on the training part of the fixed
    split and measure it; never raises for a failed training.

    Returns ``accuracy`` (validation, a fraction; 0 unless ``status`` is ``"ok"``), ``params`` and
    ``flops`` of the architecture as the space defines it, ``trained_params`` (of the network that
    ran, smaller under a reduced budget), ``train_seconds`` (from building the model to the
    accuracy; the process's one-off data load excluded), ``status`` (``"ok"``, ``"diverged"`` or
    ``"oom"``) and ``error`` when it is not ``"ok"``. With ``test=True`` also ``test_accuracy`` on
    the CIFAR-10 test batch, which nothing but the final training may ask for.

    Raises:
        StickyCudaError: a CUDA error left this process's GPU unusable (an illegal memory access,
            a device-side assert, ...): every later evaluation here would fail too, so the
            process must be replaced (see :class:`~nas_gym.core.errors.StickyCudaError`).
    """
    params, flops = architecture_cost(space, arch)
    start = time.perf_counter()
    try:
        metrics = _train(space, arch, budget, device, seed, speed, data_dir, download, test, progress)
    except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled, the rest re-raised
        if is_sticky_cuda_error(exc):
            # Checked first: freeing memory on a broken context would only raise again.
            raise StickyCudaError(
                f"the CUDA context of this process is unusable after training {arch!r} on {device} "
                f"({type(exc).__name__}: {exc}); replace this process, later CUDA calls here fail too"
            ) from exc
        if not is_out_of_memory(exc):
            raise
        error = f"{type(exc).__name__}: {exc}"
    else:
        return {"params": params, "flops": flops, **metrics}
    # Outside the except block: the traceback, and the tensors its frames hold, are gone.
    free_accelerator_memory()
    failed: dict[str, Any] = {"accuracy": 0.0, "params": params, "flops": flops}
    if test:
        failed["test_accuracy"] = 0.0
    failed.update(train_seconds=time.perf_counter() - start, status="oom", error=error)
    return failed


def _train(
    space: SearchSpace,
    arch: str,
    budget: Budget,
    device: torch.device,
    seed: int,
    speed: SpeedOptions,
    data_dir: str | os.PathLike[str] | None,
    download: bool,
    test: bool,
    progress: Progress | None,
) -> dict[str, Any]:
    images, labels = cifar10_on_device(
        device, data_dir, download, split="train", resolution=budget.resolution
    )
    train_idx, val_idx = split_on_device(device, budget.train_size, budget.val_size)
    # The clock starts after the one-off data load of the process: it measures the evaluation.
    start = time.perf_counter()
    generator = torch.Generator(device=device).manual_seed(derived_seed(seed, arch, "data"))
    with speed_settings(speed):
        model = build_network(space, arch, budget, device, seed, speed)
        problem = fit(model, images, labels, train_idx, budget, speed, generator, progress)
        metrics: dict[str, Any] = {
            "accuracy": 0.0 if problem else accuracy(model, images, labels, val_idx, speed),
            "trained_params": sum(p.numel() for p in model.parameters()),
        }
        if test:
            test_images, test_labels = cifar10_on_device(
                device, data_dir, download, split="test", resolution=budget.resolution
            )
            metrics["test_accuracy"] = (
                0.0 if problem else accuracy(model, test_images, test_labels, None, speed)
            )
    metrics.update(train_seconds=time.perf_counter() - start, status="diverged" if problem else "ok")
    if problem:
        metrics["error"] = problem
    return metrics
