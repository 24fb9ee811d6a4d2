"""Shared fixtures: the data folder, and cheap evaluators that stand in for training."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nas_gym.core.config import resolve_data_dir
from tests.helpers.fakes import hash_accuracy


def _has(path: Path) -> bool:
    return path.exists()


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory) -> Iterator[Path]:
    """``$NAS_GYM_CACHE`` in a temporary folder for the whole run: the suite never writes into the
    user's cache (computed NB-201 costs, zero-cost scores), and starts from an empty one."""
    path = tmp_path_factory.mktemp("user_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NAS_GYM_CACHE", str(path))
        yield path


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


@pytest.fixture
def instant_evaluator():
    return hash_accuracy


@pytest.fixture(scope="session")
def ray_executor():
    """One local Ray instance with 2 CPUs for the whole session (it takes seconds to start),
    shut down at the end; skipped without Ray or when Ray was started outside the tests."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process: the tests need to start their own")
    from nas_gym.parallel.ray import RayExecutor

    executor = RayExecutor(workers=2)
    yield executor
    executor.close()
    if ray.is_initialized():
        raise RuntimeError("expected the Ray instance of the tests to shut down on close, got it running")
