"""Shared fixtures: the data folder, and cheap evaluators that stand in for training."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from nas_gym.config import resolve_data_dir
from nas_gym.evaluation.executors import SerialExecutor


def _has(path: Path) -> bool:
    return path.exists()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``$NAS_GYM_DATA`` (CI points it at ``../shared/data``); tests that need it skip without it."""
    path = resolve_data_dir()
    if not _has(path):
        pytest.skip(f"no data folder at {path}: set NAS_GYM_DATA")
    return path


@pytest.fixture(scope="session")
def cifar_dir(data_dir: Path) -> Path:
    path = data_dir / "cifar10" / "cifar-10-batches-py"
    if not _has(path / "data_batch_1"):
        pytest.skip(f"no CIFAR-10 under {path}")
    return data_dir


def hash_accuracy(arch: str) -> dict[str, float]:
    """An instant, deterministic, picklable evaluator: a pseudo-accuracy from the string's hash."""
    digest = hashlib.sha256(arch.encode()).digest()
    return {"accuracy": int.from_bytes(digest[:4], "little") / 2**32}


hash_accuracy.fingerprint = "hash-accuracy/v1"  # type: ignore[attr-defined]  # its store key


@pytest.fixture
def instant_evaluator():
    return hash_accuracy


class RecordingExecutor(SerialExecutor):
    """A serial executor that remembers each batch of architectures it was given."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def map(self, evaluator, archs):
        self.batches.append(list(archs))
        return super().map(evaluator, archs)
