"""Comparisons of agents over seeds: one run, its row and curve, the worker pool, the outputs."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

import matplotlib
import pytest

import agents
from agents import SearchResult, best_record
from nas_gym.core.devices import cpu_count, share_threads
from nas_gym.experiments import compare
from nas_gym.experiments.compare import run_compare, run_one, summarise_run
from nas_gym.experiments.config import SearchConfig
from nas_gym.experiments.plots import plot_best_so_far, plot_pareto
from nas_gym.parallel.executors import ProcessExecutor
from nas_gym.parallel.spec import ExecutorSpec


def _record(episode: int, reward: float, test: float | None, seconds: float = 100.0, **extra: Any) -> dict:
    record = {
        "episode": episode,
        "arch": f"arch-{episode}",
        "reward": reward,
        "accuracy": reward,
        "status": "ok",
        "train_seconds": seconds,
        "cumulative_seconds": seconds * (episode + 1),
        "params": None,
    }
    if test is not None:
        record["test_accuracy"] = test
    record.update(extra)
    return record


def _spec(agent: str = "random", seed: int = 0, **env_kwargs: Any) -> SearchConfig:
    return SearchConfig(
        "NASBench201-v0", agent, seed=seed, budget_seconds=1e9, env_kwargs=env_kwargs, max_episodes=10
    )


# ---------------------------------------------------------------------------- one run
def test_a_time_budget_gives_the_agent_no_episode_count(monkeypatch, data_dir: Path) -> None:
    # An agent told episodes=max_episodes would lay its schedules (DQN's exploration) over them.
    calls: list[dict[str, Any]] = []
    make_agent = agents.make_agent

    def spying_make_agent(name: str, **kwargs: Any):
        agent = make_agent(name, **kwargs)
        search = agent.search

        def recording_search(env, **search_kwargs):
            calls.append(search_kwargs)
            return search(env, **search_kwargs)

        agent.search = recording_search
        return agent

    monkeypatch.setattr(compare, "make_agent", spying_make_agent)
    result = run_one(SearchConfig("NASBench201-v0", "random", budget_seconds=1e9, max_episodes=7))
    assert calls[0]["episodes"] is None and calls[0]["budget_seconds"] == 1e9
    # The cap still ends the search, through the callback.
    assert result.row["episodes"] == 7 and len(result.curve) == 7
    assert result.row["simulated_seconds"] < 1e9

    calls.clear()
    result = run_one(SearchConfig("NASBench201-v0", "random", episodes=4, max_episodes=2))
    assert calls[0]["episodes"] == 4 and calls[0]["callback"] is None
    assert result.row["episodes"] == 4  # the cap is for time budgets only


def test_run_one_closes_its_env_when_the_search_fails(monkeypatch) -> None:
    closed: list[bool] = []

    class Env:
        def close(self) -> None:
            closed.append(True)

    class FailingAgent:
        def search(self, env, **kwargs):
            raise RuntimeError("search failed")

    monkeypatch.setattr(compare, "make_env", lambda config, agent: Env())
    monkeypatch.setattr(compare, "make_agent", lambda name, seed: FailingAgent())
    with pytest.raises(RuntimeError, match="search failed"):
        run_one(_spec())
    assert closed == [True]


def test_a_run_selects_the_earliest_best_record() -> None:
    history = [_record(0, 0.5, 0.80), _record(1, 0.7, 0.90), _record(2, 0.7, 0.95), _record(3, 0.6, 0.99)]
    result = summarise_run(
        _spec(), SearchResult(history=history), {"reward": 0.8, "test_accuracy": 0.95}, 1.23
    )
    row = result.row
    assert (
        row["best_arch"]
        == "arch-1"
        == SearchResult(history=history).best["arch"]
        == best_record(history)["arch"]
    )
    assert (row["best_reward"], row["test_accuracy"], row["episodes"]) == (0.7, 0.90, 4)
    assert math.isclose(row["regret_reward"], 0.1) and math.isclose(row["regret_test"], 0.05)
    assert row["simulated_seconds"] == 400.0 and row["wall_seconds"] == 1.23
    # The curve follows the same selection: the tie at episode 2 does not move it.
    assert result.curve == [(100.0, 0.80), (200.0, 0.90), (300.0, 0.90), (400.0, 0.90)]


def test_a_run_without_test_accuracy_reports_rewards() -> None:
    history = [_record(0, 0.4, None), _record(1, 0.6, None), _record(2, 0.5, None)]
    result = summarise_run(_spec(reward="mnas-params"), SearchResult(history=history), {"reward": 0.9}, 0.0)
    assert [value for _, value in result.curve] == [0.4, 0.6, 0.6]
    # A regret against the best accuracy means nothing for another objective.
    assert result.row["test_accuracy"] is None and result.row["regret_reward"] is None
    empty = summarise_run(_spec(), SearchResult(), {"reward": 0.9}, 0.0)
    assert empty.curve == [] and empty.row["best_arch"] is None and empty.row["episodes"] == 0


# ---------------------------------------------------------------------------- run_compare
def test_run_compare_refuses_bad_options_before_it_runs(tmp_path: Path) -> None:
    out = tmp_path / "cmp"

    def on_start() -> None:
        raise AssertionError("a refused comparison must not start")

    with pytest.raises(ValueError, match="expected distinct agents, got 'random' twice"):
        run_compare(
            "NASBench201-v0", ["random", "evolution", "random"], 1, out, episodes=2, on_start=on_start
        )
    with pytest.raises(ValueError, match="expected distinct agents, got 'evolution' 3 times"):
        run_compare("NASBench201-v0", ["evolution"] * 3, 1, out, episodes=2)
    with pytest.raises(
        ValueError, match=r"expected num_gpus only with executor 'ray'.*got num_gpus=0\.5 with 'processes'"
    ):
        ExecutorSpec("processes", num_gpus=0.5)
    for bad in (-1.0, float("nan"), True):
        with pytest.raises(ValueError, match=r"expected num_gpus as a non-negative number, got"):
            ExecutorSpec("ray", num_gpus=bad)
    with pytest.raises(ValueError, match=r"expected workers as a positive int or None, got 0"):
        ExecutorSpec("processes", workers=0)
    with pytest.raises(ValueError, match=r"expected max_episodes as a positive int or None, got 0"):
        run_compare(
            "NASBench201-v0", ["random"], 1, out, budget_seconds=10.0, max_episodes=0, on_start=on_start
        )
    with pytest.raises(ValueError, match=r"expected executor in .*got 'dask'"):
        run_compare("NASBench201-v0", ["random"], 1, out, episodes=2, executor="dask", on_start=on_start)
    with pytest.raises(ValueError, match=r"expected seeds as a positive int, got 0"):
        run_compare("NASBench201-v0", ["random"], 0, out, episodes=2, on_start=on_start)
    assert not out.exists()


def test_run_compare_caps_time_budget_runs(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "cmp"
    seen: list[tuple[str, int]] = []
    results = run_compare(
        "NASBench201-v0",
        ["random", "evolution"],
        2,
        out,
        budget_seconds=1e9,
        executor="serial",
        max_episodes=6,
        on_start=lambda: seen.append(("started", -1)),
        on_result=lambda result: seen.append((result.row["agent"], result.row["seed"])),
    )
    assert seen[0] == ("started", -1)  # once, before the first run
    seen.pop(0)
    assert [(r.row["agent"], r.row["seed"]) for r in results] == [
        ("random", 0),
        ("random", 1),
        ("evolution", 0),
        ("evolution", 1),
    ]
    assert sorted(seen) == sorted((r.row["agent"], r.row["seed"]) for r in results)
    assert all(r.row["episodes"] == 6 for r in results)
    with open(out / "results.csv") as f:
        assert [int(row["episodes"]) for row in csv.DictReader(f)] == [6, 6, 6, 6]
    assert "| random | 2 |" in (out / "summary.md").read_text()
    assert (out / "best_so_far.png").read_bytes().startswith(b"\x89PNG")


# ---------------------------------------------------------------------------- worker processes
def test_pool_workers_get_a_share_of_the_cores(monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with ProcessExecutor(workers=2) as pool:
        seen = pool.map(os.getenv, ["OMP_NUM_THREADS", "MKL_NUM_THREADS"] * 4)
        assert pool.threads_per_task == max(1, cpu_count() // 2)
    assert set(seen) == {str(max(1, cpu_count() // 2))}


def test_the_worker_initializer_keeps_a_users_thread_setting(monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    # setenv first, so that the variables the initializer sets are removed again afterwards.
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    monkeypatch.setenv("MKL_NUM_THREADS", "")
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("MKL_NUM_THREADS", "5")
    threads = torch.get_num_threads()
    try:
        share_threads(1)
        # torch was imported before the initializer ran: its running pool is resized too.
        assert (os.environ["OMP_NUM_THREADS"], os.environ["MKL_NUM_THREADS"]) == ("1", "5")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    share_threads(1)
    assert os.environ["OMP_NUM_THREADS"] == "3" and torch.get_num_threads() == threads


def test_cpu_count_follows_the_affinity_mask() -> None:
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert cpu_count() == expected >= 1


# ---------------------------------------------------------------------------- figures
def test_plots_leave_the_callers_backend_alone(tmp_path: Path) -> None:
    history = [_record(i, 0.5 + i / 100, 0.6 + i / 100, params=1000 * (i + 1)) for i in range(5)]
    results = [summarise_run(_spec(seed=s), SearchResult(history=history), {}, 0.0) for s in range(2)]
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        plot_best_so_far(tmp_path / "best.png", "NASBench201-v0", ["random"], results, None)
        plot_pareto(history, str(tmp_path / "pareto.png"))
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    for name in ("best.png", "pareto.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
