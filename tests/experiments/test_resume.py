"""Nothing lost: real searches killed with SIGKILL at several points, then resumed; run folders
whose last files were left half-written by a crash; checkpoints that are not ours."""

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

from agents import make_agent
from nas_gym.evaluation.store import EvaluationStore
from nas_gym.experiments.config import SearchConfig
from nas_gym.experiments.folder import CHECKPOINT, HISTORY, RunFolder, RunFolderError, resume_point
from nas_gym.experiments.runs import run_search
from tests.experiments.conftest import HASH_ENV, CountingHash

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


def _config(episodes: int, agent: str = "random") -> SearchConfig:
    return SearchConfig(env=HASH_ENV, agent=agent, episodes=episodes, seed=1)


# ---------------------------------------------------------------------------------------- torn files
def test_a_torn_last_line_resumes_from_the_last_complete_record(
    tmp_path: Path, hash_env: CountingHash
) -> None:
    # A crash while appending episode 5 leaves part of its line and a checkpoint after episode 4.
    out = tmp_path / "run"
    run_search(_config(5, "evolution"), out)
    complete = RunFolder(out).read_history()
    path = out / HISTORY
    path.write_bytes(path.read_bytes() + b'{"episode": 5, "arch": "|none~0|+|no')
    with pytest.warns(RuntimeWarning, match="skipped the half-written last line 6"):
        assert RunFolder(out).read_history() == complete
    with pytest.warns(RuntimeWarning, match="half-written"):
        summary = run_search(_config(12, "evolution"), out, resume=True)
    assert summary["episodes"] == 12
    resumed = RunFolder(out).read_history()
    assert [r["episode"] for r in resumed] == list(range(12))
    assert resumed[:5] == complete  # the complete records, untouched
    assert len(hash_env.calls) == len(set(hash_env.calls)), "an architecture was evaluated twice"
    # The agent went on from its checkpoint: the same episodes as a run that was never interrupted.
    run_search(_config(12, "evolution"), tmp_path / "uninterrupted")
    uninterrupted = RunFolder(tmp_path / "uninterrupted").read_history()
    assert [r["arch"] for r in resumed] == [r["arch"] for r in uninterrupted]


def test_a_torn_line_the_checkpoint_has_is_restored_from_it(tmp_path: Path, hash_env: CountingHash) -> None:
    # The history lost the end of its last line, but the checkpoint was written after it: the
    # record comes back from the checkpoint's copy of the last records.
    out = tmp_path / "run"
    run_search(_config(6), out)
    folder = RunFolder(out)
    complete = folder.read_history()
    lines = (out / HISTORY).read_bytes().splitlines(keepends=True)
    (out / HISTORY).write_bytes(b"".join(lines[:-1]) + lines[-1][:20])
    agent = make_agent("random", seed=1)
    with pytest.warns(RuntimeWarning, match="half-written last line 6"):
        history, note = resume_point(folder, agent)
    assert note == "restored 1 episodes the history had lost from the checkpoint"
    assert history == complete


def test_broken_line_in_the_middle_is_an_error(tmp_path: Path, hash_env: CountingHash) -> None:
    out = tmp_path / "run"
    run_search(_config(3), out)
    lines = (out / HISTORY).read_bytes().split(b"\n")
    lines[1] = b"{broken"
    (out / HISTORY).write_bytes(b"\n".join(lines))
    with pytest.raises(RunFolderError, match="broken line 2 in the middle"):
        RunFolder(out).read_history()


def test_foreign_checkpoint_is_refused(tmp_path: Path, hash_env: CountingHash) -> None:
    out = tmp_path / "run"
    run_search(_config(2), out)

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    torch.save({"episodes": 1, "agent": Payload()}, out / CHECKPOINT)
    with pytest.raises(RunFolderError, match="does not load safely"):
        run_search(_config(4), out, resume=True)
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------------------------------- torn tails
def _uninterrupted(tmp_path: Path, episodes: int, agent: str) -> list[str]:
    run_search(_config(episodes, agent), tmp_path / "uninterrupted")
    return [r["arch"] for r in RunFolder(tmp_path / "uninterrupted").read_history()]


def _lose_history_lines(out: Path, keep: int) -> None:
    lines = (out / HISTORY).read_bytes().splitlines(keepends=True)
    (out / HISTORY).write_bytes(b"".join(lines[:keep]))


@pytest.mark.parametrize("agent", ["evolution", "reinforce"])
def test_a_history_that_lost_whole_lines_resumes_from_the_checkpoint(
    tmp_path: Path, hash_env: CountingHash, agent: str
) -> None:
    # The history lost its last line whole (not torn) after the checkpoint of episode 10 was
    # written: the run goes on, with episode 10 restored from the checkpoint's tail.
    out = tmp_path / "run"
    run_search(_config(10, agent), out)
    _lose_history_lines(out, keep=9)
    trained = len(hash_env.calls)
    with pytest.warns(RuntimeWarning, match="restored 1 episodes the history had lost"):
        summary = run_search(_config(14, agent), out, resume=True)
    assert summary["episodes"] == 14
    resumed = RunFolder(out).read_history()
    assert [r["episode"] for r in resumed] == list(range(14))
    assert len(hash_env.calls) == len(set(hash_env.calls)), "an architecture was evaluated twice"
    assert len(hash_env.calls) - trained <= 4  # only the four new episodes could train
    assert [r["arch"] for r in resumed] == _uninterrupted(tmp_path, 14, agent)


def test_a_history_shorter_than_the_checkpoint_tail_replays_from_the_store(
    tmp_path: Path, hash_env: CountingHash
) -> None:
    # More lines lost than the checkpoint carries: the agent starts afresh and replays every
    # episode, each evaluation coming back from the store.
    from nas_gym.experiments.folder import CHECKPOINT_TAIL

    episodes = CHECKPOINT_TAIL + 8
    out = tmp_path / "run"
    run_search(_config(episodes, "evolution"), out)
    _lose_history_lines(out, keep=3)
    trained = list(hash_env.calls)
    with pytest.warns(RuntimeWarning, match="replaying every episode from the store"):
        summary = run_search(_config(episodes + 5, "evolution"), out, resume=True)
    assert summary["episodes"] == episodes + 5
    assert hash_env.calls[: len(trained)] == trained
    assert len(hash_env.calls) == len(set(hash_env.calls)), "an architecture was evaluated twice"
    resumed = RunFolder(out).read_history()
    assert [r["arch"] for r in resumed] == _uninterrupted(tmp_path, episodes + 5, "evolution")
    assert sum(r["cached"] for r in resumed[:episodes]) == episodes


def test_a_missing_checkpoint_replays_the_history_from_the_store(
    tmp_path: Path, hash_env: CountingHash
) -> None:
    out = tmp_path / "run"
    run_search(_config(8, "reinforce"), out)
    (out / CHECKPOINT).unlink()
    trained = len(hash_env.calls)
    with pytest.warns(RuntimeWarning, match="no checkpoint: replaying the 8 recorded episodes"):
        run_search(_config(11, "reinforce"), out, resume=True)
    resumed = RunFolder(out).read_history()
    assert [r["episode"] for r in resumed] == list(range(11))
    assert len(hash_env.calls) - trained <= 3
    assert len(hash_env.calls) == len(set(hash_env.calls)), "an architecture was evaluated twice"
    assert [r["arch"] for r in resumed] == _uninterrupted(tmp_path, 11, "reinforce")


def test_a_history_ahead_of_the_checkpoint_replays_the_later_episodes(
    tmp_path: Path, hash_env: CountingHash
) -> None:
    # A crash between appending episode 9 and writing its checkpoint: the checkpoint is of
    # episode 8, and episode 9 is replayed from the store rather than trained again.
    out = tmp_path / "run"
    run_search(_config(8, "evolution"), out)
    stale = (out / CHECKPOINT).read_bytes()
    run_search(_config(9, "evolution"), out, resume=True)
    (out / CHECKPOINT).write_bytes(stale)
    trained = len(hash_env.calls)
    with pytest.warns(RuntimeWarning, match="replaying 1 episodes recorded after the checkpoint"):
        run_search(_config(12, "evolution"), out, resume=True)
    resumed = RunFolder(out).read_history()
    assert [r["episode"] for r in resumed] == list(range(12))
    assert resumed[8]["cached"]
    assert len(hash_env.calls) - trained <= 3
    assert [r["arch"] for r in resumed] == _uninterrupted(tmp_path, 12, "evolution")


def test_the_command_line_resumes_a_history_that_lost_its_last_line(
    tmp_path: Path, data_dir: Path, capsys
) -> None:
    from nas_gym.experiments.cli import main

    out = tmp_path / "run"
    base = ["search", "--env", "NASBench201-v0", "--agent", "evolution", "--seed", "0", "--out", str(out)]
    assert main([*base, "--episodes", "10"]) == 0
    _lose_history_lines(out, keep=9)
    assert main([*base, "--episodes", "12", "--resume"]) == 0
    assert len(RunFolder(out).read_history()) == 12
    assert "restored 1 episodes" in capsys.readouterr().err
