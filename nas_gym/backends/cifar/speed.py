"""Numerics and speed settings of training: they change how fast an evaluation runs, not its
protocol. Why each one is on or off per device is said at :meth:`SpeedOptions.fast`; the
measurements behind it are in ``docs/fidelity.md`` and the README."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from nas_gym.core.checks import check_int
from nas_gym.core.devices import default_threads, torch_threads

SPEED_NAMES = ("fast", "reference")

COMPILE_MIN_STEPS = 10_000
"""The fewest optimiser steps for which ``compile=True`` is not warned about on CUDA. An estimate,
not a measurement (no GPU timing exists yet): compiling a new architecture costs tens of seconds
(inductor, from scratch: :func:`~nas_gym.backends.cifar.training.compiled` empties Dynamo's
caches for every architecture), while fusing the element-wise work of a small convnet saves at
most a few milliseconds per step, so a run needs thousands of steps to pay it back. Every named
budget is below it (``full``: 3,480 steps)."""

CUBLAS_WORKSPACE_CONFIG = ":4096:8"
"""The cuBLAS workspace setting under which cuBLAS is deterministic (NVIDIA's cuBLAS docs,
"Results reproducibility"); torch refuses deterministic matmuls on CUDA without it."""


@dataclass(frozen=True)
class SpeedOptions:
    """How training runs on its device."""

    bf16: bool = False
    """Autocast to bfloat16 (weights and optimiser stay float32)."""
    channels_last: bool = False
    """NHWC memory format for the model and the batches."""
    cudnn_benchmark: bool = False
    """Let cuDNN time its convolution algorithms once per shape (the shapes never change in a run)."""
    compile: bool = False
    """``torch.compile`` the model (``fullgraph``: a graph break or Dynamo's recompile limit is an
    error, never a silent fall-back to eager). CUDA only; see :func:`check_compile`."""
    deterministic: bool = False
    """Bit-reproducible training on CUDA for a fixed GPU model, CUDA and cuDNN version (the
    trainer's fingerprint names them): cuDNN picks deterministic algorithms, ``cudnn_benchmark``
    must be off (autotuning may pick different algorithms in two runs), and
    ``torch.use_deterministic_algorithms(True)`` makes an operation without a deterministic CUDA
    implementation raise instead of running (the store would otherwise record results as
    reproducible that are not). ``AdaptiveAvgPool2d(1)`` is such an operation (its backward adds
    atomically), so the trainer swaps it for the same mean over height and width, whose backward
    is deterministic. Sets ``CUBLAS_WORKSPACE_CONFIG`` (:data:`CUBLAS_WORKSPACE_CONFIG`) when it is
    unset. On the CPU, training is already reproducible for a fixed thread count."""
    threads: int | None = None
    """Intra-op threads of torch during a call (restored afterwards); ``None``: see
    :func:`training_speed`."""

    def __post_init__(self) -> None:
        check_int(self.threads, "threads", minimum=1, none_ok=True)
        if self.deterministic and self.cudnn_benchmark:
            raise ValueError(
                "expected cudnn_benchmark=False with deterministic=True (cuDNN's autotuning may pick "
                "a different algorithm in each run), got cudnn_benchmark=True"
            )

    def describe(self) -> str:
        """The numerics settings as ``name=value`` pairs (stable order; part of the trainer's
        fingerprint). ``threads`` is left out: it changes results on the CPU only, so the
        fingerprint names the count of CPU runs separately. ``deterministic`` appears only when
        set: it came after results were stored, whose keys stay valid that way."""
        return ",".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.name != "threads" and (f.name != "deterministic" or self.deterministic)
        )

    @classmethod
    def fast(
        cls,
        device: torch.device | str,
        compile: bool = False,
        threads: int | None = None,
        deterministic: bool = False,
    ) -> SpeedOptions:
        """The best settings for ``device``.

        CUDA: bf16 autocast (tensor-core math and half the activation memory; unlike fp16 it needs
        no loss scaling), channels_last (the layout tensor-core convolutions use, so cuDNN inserts
        no transposes) and ``cudnn.benchmark`` (every batch has the same shape, so the one-off
        autotuning is paid back; off with ``deterministic=True``). ``torch.compile`` stays
        opt-in: it compiles every new architecture, which can cost more than the evaluation
        itself (:data:`COMPILE_MIN_STEPS`).

        CPU: channels_last only (oneDNN convolutions run natively in it, and NCHW max-pooling was
        several times slower); bf16 autocast was slower than fp32 on a CPU without AMX, and
        ``torch.compile`` gave no speed-up.
        """
        if torch.device(device).type == "cuda":
            return cls(
                bf16=True,
                channels_last=True,
                cudnn_benchmark=not deterministic,
                compile=compile,
                deterministic=deterministic,
                threads=threads,
            )
        return cls(channels_last=True, compile=compile, deterministic=deterministic, threads=threads)

    @classmethod
    def reference(cls) -> SpeedOptions:
        """Plain fp32, contiguous, no cuDNN autotuning, eager: the baseline the fast path must match."""
        return cls()


def resolve_speed(speed: str | SpeedOptions, device_type: str) -> SpeedOptions:
    """``"fast"`` (:meth:`SpeedOptions.fast`), ``"reference"`` or a :class:`SpeedOptions`."""
    if isinstance(speed, SpeedOptions):
        return speed
    if speed == "fast":
        return SpeedOptions.fast(device_type)
    if speed == "reference":
        return SpeedOptions.reference()
    raise ValueError(f"expected speed in {SPEED_NAMES} or a SpeedOptions, got {speed!r}")


def training_speed(speed: str | SpeedOptions, device_type: str, threads: int | None) -> SpeedOptions:
    """The speed options of training on ``device_type``, with the thread count decided:
    ``threads``, else ``speed.threads``, else on the CPU every core of this process
    (:func:`~nas_gym.core.devices.default_threads`; an executor passes its share per task), and
    on CUDA ``None`` (the process setting: host threads do not change GPU results)."""
    options = resolve_speed(speed, device_type)
    check_int(threads, "threads", minimum=1, none_ok=True)
    if threads is not None and options.threads is not None and threads != options.threads:
        raise ValueError(
            f"expected threads={threads} to agree with speed.threads, got speed.threads={options.threads}"
        )
    threads = threads if threads is not None else options.threads
    if threads is None and device_type == "cpu":
        threads = default_threads()
    return dataclasses.replace(options, threads=threads)


def check_compile(speed: SpeedOptions, device_type: str, steps: int) -> None:
    """Refuse ``compile=True`` where it cannot pay off, and warn where it likely does not.

    The CPU is refused: ``torch.compile`` gave no speed-up there (README, "Fast training") and it
    compiles every architecture anew, so it only adds its compile time. On CUDA a budget of fewer
    than :data:`COMPILE_MIN_STEPS` optimiser steps gets a ``UserWarning``: the estimate says the
    compile costs more than it saves there, but no GPU measurement backs a refusal.

    Raises:
        ValueError: ``compile=True`` on the CPU.
    """
    if not speed.compile:
        return
    if device_type != "cuda":
        raise ValueError(
            f"expected compile=False on device type {device_type!r}: torch.compile gave no speed-up "
            "on the CPU and compiles every architecture anew; got compile=True"
        )
    if steps < COMPILE_MIN_STEPS:
        warnings.warn(
            f"compile=True for a budget of {steps} optimiser steps: compiling each architecture "
            f"takes tens of seconds and is estimated to pay off only past {COMPILE_MIN_STEPS} steps; "
            "the evaluations will likely be slower than without it",
            UserWarning,
            stacklevel=3,
        )


@contextlib.contextmanager
def speed_settings(speed: SpeedOptions) -> Iterator[None]:
    """Apply the process-global parts of ``speed`` (``cudnn.benchmark``, determinism, the thread
    count) for the block only: they belong to the user's process. ``CUBLAS_WORKSPACE_CONFIG``,
    once set for ``deterministic``, stays: cuBLAS reads it once per process."""
    cudnn = torch.backends.cudnn
    saved = (
        cudnn.benchmark,
        cudnn.deterministic,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    cudnn.benchmark = speed.cudnn_benchmark
    if speed.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
        cudnn.deterministic = True
        torch.use_deterministic_algorithms(True)
    try:
        with torch_threads(speed.threads):
            yield
    finally:
        cudnn.benchmark, cudnn.deterministic = saved[0], saved[1]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


def autocast(device: torch.device, speed: SpeedOptions) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast when ``speed`` asks for it, else nothing."""
    if speed.bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
