"""An instant env for run-folder tests: the NAS-Bench-201 space with a hash evaluator that counts
its calls, so that a test can tell a replayed evaluation from a repeated one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import gymnasium as gym
import pytest

from tests.helpers.fakes import hash_accuracy

HASH_ENV = "NASBench201Hash-v0"


@dataclass
class CountingHash:
    """:func:`~tests.helpers.fakes.hash_accuracy` that records each architecture it evaluates."""

    calls: list[str] = field(default_factory=list)
    fingerprint: str = "counting-hash/v1"

    def __call__(self, arch: str) -> dict[str, float]:
        self.calls.append(arch)
        return hash_accuracy(arch)


@pytest.fixture
def hash_env() -> Iterator[CountingHash]:
    """Registers :data:`HASH_ENV` for the test; yields its evaluator (shared by every copy)."""
    from nas_gym.envs import NASEnv

    evaluator = CountingHash()

    def make(store=None, render_mode=None):
        return NASEnv("nb201", evaluator=evaluator, store=store, render_mode=render_mode)

    gym.register(HASH_ENV, entry_point=make)
    yield evaluator
    gym.registry.pop(HASH_ENV)
