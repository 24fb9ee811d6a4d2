"""Shared helpers for error messages."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable


def did_you_mean(value: str, options: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest option, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(value), list(options), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


# Messages of allocation failures that do not arrive as torch.cuda.OutOfMemoryError: cuDNN and
# cuBLAS report them as RuntimeError, and so do some CPU allocators.
_OUT_OF_MEMORY_MESSAGES = (
    "out of memory",
    "CUDNN_STATUS_ALLOC_FAILED",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "CUDNN_STATUS_NOT_ENOUGH_WORKSPACE",
    "DefaultCPUAllocator: can't allocate memory",
)

# CUDA errors after which the process's CUDA context is unusable ("sticky"): every later call on
# that device fails too, so the process must be replaced.
_STICKY_CUDA_MESSAGES = (
    "illegal memory access",
    "unspecified launch failure",
    "misaligned address",
    "device-side assert triggered",
    "an illegal instruction was encountered",
)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure: ``MemoryError``, ``torch.cuda.OutOfMemoryError``,
    or a ``RuntimeError`` in which cuDNN, cuBLAS or an allocator says so."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in _OUT_OF_MEMORY_MESSAGES)


def is_sticky_cuda_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a CUDA error that leaves the process's CUDA context unusable."""
    text = str(exc)
    return isinstance(exc, RuntimeError) and "CUDA" in text and any(m in text for m in _STICKY_CUDA_MESSAGES)


class StickyCudaError(RuntimeError):
    """A CUDA error after which this process can no longer use its GPU (see
    :func:`is_sticky_cuda_error`): every later CUDA call fails too, so the process must be
    replaced, not retried.

    The CIFAR-10 trainer raises it (chained to the original error) instead of returning a status.
    An evaluation runner records it as status ``failed`` with an ``error`` that starts with
    ``"StickyCudaError: "``; that prefix is the marker by which an executor knows to retire the
    worker process that returned it."""
