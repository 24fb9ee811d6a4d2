"""Nothing lost: real searches killed with SIGKILL at several points, then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nas_gym.evaluation.store import EvaluationStore
from nas_gym.experiments.config import SearchConfig
from nas_gym.experiments.folder import CHECKPOINT, HISTORY, RunFolder, RunFolderError
from nas_gym.experiments.runs import run_search

SCRIPT = Path(__file__).resolve().parents[1] / "helpers" / "counting_search.py"


def _launch(out: Path, log: Path, agent: str, episodes: int, resume: bool) -> subprocess.Popen:
    args = [sys.executable, str(SCRIPT), str(out), str(log), agent, str(episodes)]
    if resume:
        args.append("--resume")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _episodes_done(out: Path) -> int:
    path = out / HISTORY
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.parametrize("agent", ["evolution", "reinforce"])
def test_sigkill_and_resume_loses_nothing(tmp_path: Path, agent: str) -> None:
    out, log = tmp_path / "run", tmp_path / "calls.log"
    episodes = 60
    kill_after = [3, 17, 35]  # episodes finished before each kill
    resume = False
    for target in kill_after:
        proc = _launch(out, log, agent, episodes, resume)
        deadline = time.time() + 120
        while _episodes_done(out) < target and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        resume = True
    proc = _launch(out, log, agent, episodes, resume=True)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr.decode()

    history = RunFolder(out).read_history()
    assert [r["episode"] for r in history] == list(range(episodes))
    calls = log.read_text().splitlines()
    assert len(calls) == len(set(calls)), "an architecture was trained twice"
    assert set(calls) == {r["arch"] for r in history}
    store = EvaluationStore(out / "evaluations.sqlite")
    assert store.integrity_check() == "ok"
    assert len(store) == len(set(calls))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == episodes
    best = max(history, key=lambda r: r["reward"])
    assert summary["best_arch"] == best["arch"]
    torch.load(out / CHECKPOINT, weights_only=True)


def _hash_env_config(episodes: int) -> SearchConfig:
    return SearchConfig(env="NASBench201Hash-v0", agent="random", episodes=episodes, seed=1)


@pytest.fixture
def hash_env_id():
    import gymnasium as gym

    from nas_gym.envs import NASEnv
    from tests.helpers.fakes import hash_accuracy

    def make(store=None, render_mode=None):
        return NASEnv("nb201", evaluator=hash_accuracy, store=store, render_mode=render_mode)

    gym.register("NASBench201Hash-v0", entry_point=make)
    yield "NASBench201Hash-v0"
    gym.registry.pop("NASBench201Hash-v0")


def test_torn_last_line_is_skipped_with_a_warning(tmp_path: Path, hash_env_id: str) -> None:
    out = tmp_path / "run"
    run_search(_hash_env_config(5), out)
    path = out / HISTORY
    complete = path.read_bytes()
    path.write_bytes(complete + b'{"episode": 5, "arch": "|none~0|+|no')
    with pytest.warns(RuntimeWarning, match="skipped the half-written last line 6"):
        history = RunFolder(out).read_history()
    assert len(history) == 5
    with pytest.warns(RuntimeWarning, match="half-written"):
        summary = run_search(_hash_env_config(8), out, resume=True)
    assert summary["episodes"] == 8
    assert [r["episode"] for r in RunFolder(out).read_history()] == list(range(8))


def test_broken_line_in_the_middle_is_an_error(tmp_path: Path, hash_env_id: str) -> None:
    out = tmp_path / "run"
    run_search(_hash_env_config(3), out)
    lines = (out / HISTORY).read_bytes().split(b"\n")
    lines[1] = b"{broken"
    (out / HISTORY).write_bytes(b"\n".join(lines))
    with pytest.raises(RunFolderError, match="broken line 2 in the middle"):
        RunFolder(out).read_history()


def test_foreign_checkpoint_is_refused(tmp_path: Path, hash_env_id: str) -> None:
    out = tmp_path / "run"
    run_search(_hash_env_config(2), out)

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    torch.save({"episodes": 1, "agent": Payload()}, out / CHECKPOINT)
    with pytest.raises(RunFolderError, match="does not load safely"):
        run_search(_hash_env_config(4), out, resume=True)
    assert not (tmp_path / "pwned").exists()


def test_existing_run_needs_resume_and_foreign_store_is_untouched(tmp_path: Path, hash_env_id: str) -> None:
    out = tmp_path / "run"
    run_search(_hash_env_config(2), out)
    with pytest.raises(RunFolderError, match="pass --resume"):
        run_search(_hash_env_config(2), out)
    other = tmp_path / "other"
    other.mkdir()
    (other / "evaluations.sqlite").write_bytes(b"not a database at all")
    with pytest.raises(RunFolderError, match="not a nas-gym evaluation store"):
        run_search(_hash_env_config(2), other)
    assert (other / "evaluations.sqlite").read_bytes() == b"not a database at all"
