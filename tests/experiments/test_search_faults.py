"""A search goes on through faults: a worker that dies mid-evaluation, a trainer that raises; a run
folder records each fault with its status."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import gymnasium as gym
import pytest

from agents import make_agent
from nas_gym.envs import NASEnv
from nas_gym.envs.vector import NASVectorEnv
from nas_gym.experiments.config import SearchConfig
from nas_gym.experiments.folder import HISTORY, SUMMARY
from nas_gym.experiments.runs import run_search
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


def _out_of_memory_on_none(arch: str) -> dict:
    if arch.startswith("|none~0|"):
        raise MemoryError("out of memory")
    return hash_accuracy(arch)


_out_of_memory_on_none.fingerprint = "oom-on-none/v1"  # type: ignore[attr-defined]


@pytest.fixture
def faulty_env_id():
    def make(store=None, render_mode=None):
        return NASEnv("nb201", evaluator=_out_of_memory_on_none, store=store, render_mode=render_mode)

    gym.register("NASBench201Faulty-v0", entry_point=make)
    yield "NASBench201Faulty-v0"
    gym.registry.pop("NASBench201Faulty-v0")


def test_a_run_folder_records_each_fault(tmp_path: Path, faulty_env_id: str) -> None:
    out = tmp_path / "run"
    summary = run_search(SearchConfig(faulty_env_id, "evolution", episodes=60, seed=3), out)
    history = [json.loads(line) for line in (out / HISTORY).read_text().splitlines()]
    faulty = [r for r in history if r["arch"].startswith("|none~0|")]
    assert faulty and all(r["status"] == "oom" and r["reward"] == 0.0 for r in faulty)
    assert summary["statuses"] == {"ok": 60 - len(faulty), "oom": len(faulty)}
    assert json.loads((out / SUMMARY).read_text())["statuses"] == summary["statuses"]
    assert not summary["best_arch"].startswith("|none~0|")
