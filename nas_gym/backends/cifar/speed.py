"""Numerics and speed settings of training: they change how fast an evaluation runs, not its
protocol. Why each one is on or off per device is said at :meth:`SpeedOptions.fast`; the
measurements behind it are in ``docs/fidelity.md`` and the README."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from nas_gym.core.checks import check_int
from nas_gym.core.devices import default_threads, torch_threads

SPEED_NAMES = ("fast", "reference")


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
    """``torch.compile`` the model."""
    threads: int | None = None
    """Intra-op threads of torch during a call (restored afterwards); ``None``: see
    :func:`training_speed`."""

    def __post_init__(self) -> None:
        check_int(self.threads, "threads", minimum=1, none_ok=True)

    def describe(self) -> str:
        """The numerics settings as ``name=value`` pairs (stable order; part of the trainer's
        fingerprint). ``threads`` is left out: it changes results on the CPU only, so the
        fingerprint names the count of CPU runs separately."""
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
        autotuning is paid back). ``torch.compile`` stays opt-in: it compiles every new
        architecture, which can cost more than the evaluation itself.

        CPU: channels_last only (oneDNN convolutions run natively in it, and NCHW max-pooling was
        several times slower); bf16 autocast was slower than fp32 on a CPU without AMX, and
        ``torch.compile`` gave no speed-up.
        """
        if torch.device(device).type == "cuda":
            return cls(bf16=True, channels_last=True, cudnn_benchmark=True, compile=compile, threads=threads)
        return cls(channels_last=True, compile=compile, threads=threads)

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


@contextlib.contextmanager
def speed_settings(speed: SpeedOptions) -> Iterator[None]:
    """Apply the process-global parts of ``speed`` (``cudnn.benchmark``, the thread count) for the
    block only: they belong to the user's process."""
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = speed.cudnn_benchmark
    try:
        with torch_threads(speed.threads):
            yield
    finally:
        torch.backends.cudnn.benchmark = benchmark


def autocast(device: torch.device, speed: SpeedOptions) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast when ``speed`` asks for it, else nothing."""
    if speed.bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
