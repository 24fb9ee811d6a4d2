"""Compare agents over seeds on one env: ``results.csv``, ``summary.md``, ``best_so_far.png``.

Each (agent, seed) run is one search with a fresh env and agent; runs are spread over worker
processes. A run selects the architecture with the best reward it saw (the earliest on ties);
its ``test_accuracy`` (where the backend has one) is what the benchmark literature reports.
"""

from __future__ import annotations

import csv
import math
import multiprocessing as mp
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.pool import Pool
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_gym.errors import did_you_mean
from nas_gym.evaluation.executors import EXECUTORS, RayExecutor, cpu_count, import_ray, share_threads
from nas_gym.objectives import is_finite_number

if TYPE_CHECKING:
    from agents import SearchResult

RESULT_COLUMNS = (
    "agent",
    "seed",
    "episodes",
    "best_reward",
    "test_accuracy",
    "simulated_seconds",
    "wall_seconds",
    "best_arch",
    "regret_reward",
    "regret_test",
)


@dataclass(frozen=True)
class RunSpec:
    """One search of a comparison."""

    env: str
    agent: str
    seed: int
    episodes: int | None
    budget_seconds: float | None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    max_episodes: int | None = None
    """With a time budget: a cap on episodes, so an agent that repeats cached architectures ends.
    The search callback enforces it; the agent itself is told no episode count."""


@dataclass
class RunResult:
    """What one search produced: a row of ``results.csv`` and its best-so-far curve."""

    row: dict[str, Any]
    curve: list[tuple[float, float]]
    """``(cumulative simulated seconds, best-so-far value)`` after each episode; the value is
    the test accuracy of the best-reward architecture so far where the backend has one, else
    the best reward."""


def optimum_of(env: Any) -> dict[str, float]:
    """The backend's known optima (``{"reward": ..., "test_accuracy": ...}``), where it has them."""
    evaluator = env.unwrapped.runner.evaluator
    optimum = getattr(evaluator, "optimum", None)
    if callable(optimum):
        optimum = optimum()
    return dict(optimum) if isinstance(optimum, dict) else {}


def run_one(spec: RunSpec) -> RunResult:
    """Run one search (also the body of a worker process).

    With a time budget the agent is told no episode count (agents that lay schedules over the
    run, such as DQN's exploration, would otherwise spread them over ``max_episodes``); the cap
    ends the search through its callback instead.
    """
    import nas_gym  # noqa: F401 - registers the env ids in a fresh worker
    from agents import make_agent
    from nas_gym.runs import SearchConfig, make_env

    config = SearchConfig(
        env=spec.env,
        agent=spec.agent,
        episodes=spec.episodes,
        seed=spec.seed,
        budget_seconds=spec.budget_seconds,
        env_kwargs=spec.env_kwargs,
    )
    cap = None if spec.episodes is not None or spec.max_episodes is None else _stop_after(spec.max_episodes)
    env = make_env(config)
    try:
        agent = make_agent(spec.agent, seed=spec.seed)
        started = time.perf_counter()
        result = agent.search(env, episodes=spec.episodes, budget_seconds=spec.budget_seconds, callback=cap)
        wall = time.perf_counter() - started
        optimum = optimum_of(env)
    finally:
        env.close()
    return summarise_run(spec, result, optimum, wall)


def _stop_after(episodes: int) -> Callable[[dict[str, Any]], bool]:
    """A search callback that ends the search with its ``episodes``-th record."""

    def go_on(record: dict[str, Any]) -> bool:
        return record["episode"] + 1 < episodes

    return go_on


def summarise_run(
    spec: RunSpec, result: SearchResult, optimum: Mapping[str, float], wall_seconds: float
) -> RunResult:
    """The row of ``results.csv`` and the best-so-far curve of the search ``result`` of ``spec``.

    The run selects ``result.best`` (the earliest record of the highest reward); ``optimum`` is
    :func:`optimum_of` the env, for the regrets.
    """
    history = result.history
    curve: list[tuple[float, float]] = []
    leader: dict[str, Any] | None = None
    for record in history:
        # The same rule as SearchResult.best: a later record leads only with a strictly higher reward.
        if leader is None or record["reward"] > leader["reward"]:
            leader = record
        curve.append((float(record["cumulative_seconds"]), float(_reported(leader))))
    best = result.best
    test = None if best is None else best.get("test_accuracy")
    row = {
        "agent": spec.agent,
        "seed": spec.seed,
        "episodes": len(history),
        "best_reward": None if best is None else best["reward"],
        "test_accuracy": test,
        "simulated_seconds": history[-1]["cumulative_seconds"] if history else 0.0,
        "wall_seconds": round(wall_seconds, 3),
        "best_arch": None if best is None else best["arch"],
        # The table's optimum is the best accuracy, so a regret of the reward needs reward=accuracy.
        "regret_reward": None
        if best is None or "reward" not in optimum or spec.env_kwargs.get("reward", "accuracy") != "accuracy"
        else optimum["reward"] - best["reward"],
        "regret_test": None
        if test is None or "test_accuracy" not in optimum
        else optimum["test_accuracy"] - test,
    }
    return RunResult(row=row, curve=curve)


def _reported(record: Mapping[str, Any]) -> float:
    """What a best-so-far curve shows of ``record``: its test accuracy, else its reward."""
    test = record.get("test_accuracy")
    return record["reward"] if test is None else test


def run_compare(
    env: str,
    agents: Sequence[str],
    seeds: int,
    out: str | os.PathLike[str],
    episodes: int | None = None,
    budget_seconds: float | None = None,
    env_kwargs: dict[str, Any] | None = None,
    executor: str = "processes",
    workers: int | None = None,
    ray_address: str | None = None,
    max_episodes: int | None = 10_000,
    on_result: Callable[[RunResult], None] | None = None,
    num_gpus: float = 0.0,
) -> list[RunResult]:
    """Run every agent with seeds ``0..seeds-1`` and write the three outputs into ``out``.

    ``executor`` spreads the runs: ``"serial"`` (one after another), ``"processes"`` (``workers``
    processes, default one per core this process may use, each with an equal share of the cores
    for its torch and BLAS threads) or ``"ray"`` (Ray tasks of one CPU and ``num_gpus`` GPUs
    each, on a local instance or the cluster at ``ray_address``). Each run is seeded, so the
    results do not depend on it.

    ``max_episodes`` caps the episodes of a run with a time budget (an agent that keeps
    proposing cached architectures spends no time); it is ignored with ``episodes``.
    ``on_result`` sees each run as it finishes.
    """
    if episodes is None and budget_seconds is None:
        raise ValueError("expected episodes or budget_seconds, got neither")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"expected seeds as an int >= 1, got {seeds!r}")
    agents = list(agents)
    if not agents:
        raise ValueError("expected at least one agent, got none")
    for agent in agents:
        if agents.count(agent) > 1:
            times = "twice" if agents.count(agent) == 2 else f"{agents.count(agent)} times"
            raise ValueError(f"expected distinct agents, got {agent!r} {times}")
    if max_episodes is not None and (
        isinstance(max_episodes, bool) or not isinstance(max_episodes, int) or max_episodes < 1
    ):
        raise ValueError(f"expected max_episodes as an int >= 1 or None, got {max_episodes!r}")
    _check_spread(executor, workers, ray_address, num_gpus)
    specs = [
        RunSpec(env, agent, seed, episodes, budget_seconds, dict(env_kwargs or {}), max_episodes)
        for agent in agents
        for seed in range(seeds)
    ]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[RunResult] = []
    for result in _spread(specs, executor, workers, ray_address, num_gpus):
        results.append(result)
        if on_result:
            on_result(result)
    order = {(s.agent, s.seed): i for i, s in enumerate(specs)}
    results.sort(key=lambda r: order[(r.row["agent"], r.row["seed"])])
    write_results_csv(out / "results.csv", results)
    (out / "summary.md").write_text(summary_markdown(env, agents, results, episodes, budget_seconds))
    plot_best_so_far(out / "best_so_far.png", env, agents, results, budget_seconds)
    return results


def _check_spread(executor: str, workers: int | None, ray_address: str | None, num_gpus: float) -> None:
    """Refuse executor options that do not fit together, before any run starts."""
    if executor not in EXECUTORS:
        raise ValueError(
            f"expected executor in {sorted(EXECUTORS)}, got {executor!r}{did_you_mean(executor, EXECUTORS)}"
        )
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"expected workers as an int >= 1 or None, got {workers!r}")
    if ray_address is not None and executor != "ray":
        raise ValueError(f"expected --ray-address only with executor 'ray', got it with {executor!r}")
    if not is_finite_number(num_gpus) or num_gpus < 0:
        raise ValueError(f"expected num_gpus as a number >= 0, got {num_gpus!r}")
    if num_gpus > 0 and executor != "ray":
        raise ValueError(
            f"expected num_gpus only with executor 'ray' (its tasks reserve GPUs), got num_gpus={num_gpus!r} "
            f"with {executor!r}"
        )


def _process_pool(workers: int) -> Pool:
    """A pool of ``workers`` processes that share this process's cores."""
    # spawn: workers must not inherit a parent's torch threads or CUDA state.
    threads = max(1, cpu_count() // workers)
    return mp.get_context("spawn").Pool(workers, initializer=share_threads, initargs=(threads,))


def _spread(
    specs: Sequence[RunSpec], executor: str, workers: int | None, ray_address: str | None, num_gpus: float
) -> Iterator[RunResult]:
    """The results of ``run_one`` over ``specs``, in the order they finish."""
    workers = max(1, min(workers or cpu_count(), len(specs)))
    if executor == "serial" or (executor == "processes" and workers == 1):
        yield from map(run_one, specs)
    elif executor == "processes":
        with _process_pool(workers) as pool:
            yield from pool.imap_unordered(run_one, specs)
    else:
        # The executor owns the connection (a loopback-only local instance, or the cluster).
        connection = RayExecutor(workers, address=ray_address, num_gpus=num_gpus)
        try:
            ray = import_ray()
            task = ray.remote(run_one).options(num_cpus=1, num_gpus=num_gpus)
            pending = [task.remote(spec) for spec in specs]
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield from ray.get(done)
        finally:
            connection.close()


def write_results_csv(path: Path, results: Sequence[RunResult]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RESULT_COLUMNS)
        writer.writeheader()
        for result in results:
            writer.writerow({k: "" if result.row.get(k) is None else result.row[k] for k in RESULT_COLUMNS})


def _mean_std(values: Sequence[float | None], scale: float = 1.0, digits: int = 2) -> str:
    clean = [v * scale for v in values if v is not None and math.isfinite(v)]
    if not clean:
        return "n/a"
    std = float(np.std(clean, ddof=1)) if len(clean) > 1 else 0.0
    return f"{np.mean(clean):.{digits}f} ± {std:.{digits}f}"


def summary_markdown(
    env: str,
    agents: Sequence[str],
    results: Sequence[RunResult],
    episodes: int | None,
    budget_seconds: float | None,
) -> str:
    budget = f"{episodes} episodes" if episodes is not None else f"{budget_seconds:g} simulated seconds"
    lines = [
        f"# {env}: {', '.join(agents)}",
        "",
        f"Budget per run: {budget}. Mean ± std over seeds; accuracies in percent; regret = the "
        "table's optimum minus the run's value (percentage points).",
        "",
        "| agent | runs | episodes | best reward (val) | test accuracy | regret (val) | regret (test) "
        "| simulated s | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for agent in agents:
        rows = [r.row for r in results if r.row["agent"] == agent]
        lines.append(
            f"| {agent} | {len(rows)} | {_mean_std([r['episodes'] for r in rows], digits=1)} "
            f"| {_mean_std([r['best_reward'] for r in rows], 100)} "
            f"| {_mean_std([r['test_accuracy'] for r in rows], 100)} "
            f"| {_mean_std([r['regret_reward'] for r in rows], 100)} "
            f"| {_mean_std([r['regret_test'] for r in rows], 100)} "
            f"| {_mean_std([r['simulated_seconds'] for r in rows], digits=0)} "
            f"| {_mean_std([r['wall_seconds'] for r in rows])} |"
        )
    return "\n".join(lines) + "\n"


def best_so_far_band(
    curves: Sequence[list[tuple[float, float]]], grid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95% confidence band of best-so-far step curves on ``grid`` (NaN before a run's
    first evaluation)."""
    values = np.full((len(curves), len(grid)), np.nan)
    for i, curve in enumerate(curves):
        if not curve:
            continue
        times = np.array([t for t, _ in curve])
        best = np.array([v for _, v in curve])
        index = np.searchsorted(times, grid, side="right") - 1
        values[i] = np.where(index >= 0, best[np.clip(index, 0, None)], np.nan)
    count = np.sum(~np.isnan(values), axis=0)
    # All-NaN columns (before any run's first evaluation) are expected: their mean stays NaN.
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0, ddof=1) if len(curves) > 1 else np.zeros(len(grid))
    half = 1.96 * np.nan_to_num(std) / np.sqrt(np.maximum(count, 1))
    return mean, mean - half, mean + half


def plot_best_so_far(
    path: Path,
    env: str,
    agents: Sequence[str],
    results: Sequence[RunResult],
    budget_seconds: float | None,
) -> None:
    """Draw the mean best-so-far curve of each agent with its 95% band into the PNG ``path``
    (without pyplot, so the caller's matplotlib backend stays as it is)."""
    from matplotlib.figure import Figure

    horizon = budget_seconds or max((r.curve[-1][0] for r in results if r.curve), default=1.0)
    grid = np.linspace(0.0, horizon, 200)
    uses_test = any(r.row["test_accuracy"] is not None for r in results)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for agent in agents:
        curves = [r.curve for r in results if r.row["agent"] == agent]
        mean, low, high = best_so_far_band(curves, grid)
        (line,) = ax.plot(grid, 100 * mean, label=f"{agent} (n={len(curves)})")
        ax.fill_between(grid, 100 * low, 100 * high, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("simulated training time (s)")
    ax.set_ylabel("test accuracy of best-so-far architecture (%)" if uses_test else "best reward so far (%)")
    ax.set_title(f"{env}: best so far, mean and 95% band over seeds")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    finite = [v for r in results for _, v in r.curve if math.isfinite(v)]
    if finite:
        low_y = np.percentile(finite, 5) * 100
        ax.set_ylim(max(low_y - 1, 0), min(max(finite) * 100 + 0.5, 100))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
