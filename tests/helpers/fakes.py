"""Cheap stand-ins for training that tests share: an instant evaluator and a recording executor."""

from __future__ import annotations

import hashlib

from nas_gym.parallel.executors import SerialExecutor


def hash_accuracy(arch: str) -> dict[str, float]:
    """An instant, deterministic, picklable evaluator: a pseudo-accuracy from the string's hash."""
    digest = hashlib.sha256(arch.encode()).digest()
    return {"accuracy": int.from_bytes(digest[:4], "little") / 2**32}


hash_accuracy.fingerprint = "hash-accuracy/v1"  # type: ignore[attr-defined]  # its store key


class RecordingExecutor(SerialExecutor):
    """A serial executor that remembers each batch of architectures it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def evaluate(self, evaluator, archs):
        self.batches.append(list(archs))
        return super().evaluate(evaluator, archs)
