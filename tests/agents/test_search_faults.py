"""A search goes on through faults: a worker that dies mid-evaluation, a trainer that raises."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from agents import make_agent
from nas_gym.envs import NASEnv
from nas_gym.envs.vector import NASVectorEnv
from tests.helpers.fakes import hash_accuracy


class DiesOnAvgPool:
    """Kills its own worker process on every cell that uses avg_pool_3x3 on edge 1<-0."""

    fingerprint = "dies-on-avg-pool/v1"

    def __call__(self, arch: str) -> dict:
        if arch.startswith("|avg_pool_3x3~0|"):
            os.kill(os.getpid(), signal.SIGKILL)
        return hash_accuracy(arch)


def test_batch_search_finishes_when_workers_die(tmp_path: Path) -> None:
    envs = NASVectorEnv(
        lambda: NASEnv("nb201", evaluator=DiesOnAvgPool(), store=tmp_path / "store.sqlite"),
        num_envs=4,
        executor="processes",
        workers=2,
        autoreset_mode="Disabled",
    )
    with pytest.warns(RuntimeWarning, match="worker died"):
        result = make_agent("random", seed=0).search(envs, episodes=24)
    envs.close()
    assert len(result.history) == 24
    dead = [r for r in result.history if r["arch"].startswith("|avg_pool_3x3~0|")]
    assert dead and all(r["status"] == "failed" and r["reward"] == 0.0 for r in dead)
    assert all(r["status"] == "ok" for r in result.history if r not in dead)


@pytest.mark.parametrize("status", ["diverged", "oom", "failed"])
def test_each_fault_status_gives_the_penalty_and_the_search_goes_on(status: str) -> None:
    def evaluator(arch: str) -> dict:
        if arch.startswith("|none~0|"):
            if status == "failed":
                raise RuntimeError("trainer bug")
            if status == "oom":
                raise MemoryError("out of memory")
            return {"accuracy": float("nan"), "status": "diverged"}
        return hash_accuracy(arch)

    env = NASEnv("nb201", evaluator=evaluator, failure_reward=-0.5)
    with pytest.warns(RuntimeWarning) if status == "failed" else contextlib.nullcontext():
        result = make_agent("evolution", seed=3).search(env, episodes=60)
    faulty = [r for r in result.history if r["arch"].startswith("|none~0|")]
    assert faulty, "the search should meet the faulty cells"
    assert all(r["status"] == status and r["reward"] == -0.5 for r in faulty)
    assert len(result.history) == 60
