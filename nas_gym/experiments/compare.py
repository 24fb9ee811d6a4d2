"""``nas-gym compare``: agents over seeds on one env, written as ``results.csv``, ``summary.md`` and
``best_so_far.png``; with ``objectives`` also ``fronts.csv`` (each run's non-dominated
architectures), hypervolume and IGD (in ``results.csv`` and ``summary.md``, see
:mod:`nas_gym.experiments.fronts`) and ``hypervolume.png``.

Each (agent, seed) run is one search with a fresh env and agent (:func:`run_one`); the runs are
spread over an executor (worker processes by default), like the evaluations of a search. A run
selects the architecture with the best reward it saw (the earliest on ties); its ``test_accuracy``
(where the backend has one) is what the benchmark literature reports. On NAS-Bench-201 a run also
reports the selected cell's test accuracy on each of the three datasets (transfer).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents import SearchResult, best_record, leaders, make_agent
from agents.results import reward_key
from nas_gym.core.checks import check_int
from nas_gym.experiments.config import SearchConfig, make_env
from nas_gym.experiments.plots import plot_best_so_far
from nas_gym.experiments.statistics import summary_markdown
from nas_gym.parallel.spec import ExecutorSpec
from nas_gym.registration import env_accepts

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
    "found_optimum",
    "error",
)
TRANSFER_PREFIX = "test_accuracy_"
"""Columns ``test_accuracy_<dataset>``: the selected cell's test accuracy on each dataset."""


@dataclass
class RunResult:
    """What one search produced: a row of ``results.csv`` and its best-so-far curve."""

    row: dict[str, Any]
    curve: list[tuple[float, float]]
    """``(cumulative simulated seconds, best-so-far value)`` after each episode; the value is the
    test accuracy of the best-reward architecture so far where the backend has one, else the best
    reward."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """The run's records (kept for multi-objective summaries; empty otherwise)."""


def optimum_of(evaluator: Any) -> dict[str, Any]:
    """The backend's known optima (``{"reward": ..., "test_accuracy": ..., "arch": ...}``), where
    it has them."""
    optimum = getattr(evaluator, "optimum", None)
    if callable(optimum):
        optimum = optimum()
    return dict(optimum) if isinstance(optimum, Mapping) else {}


def run_one(config: SearchConfig) -> RunResult:
    """Run one search (also the body of a worker). With a time budget the agent is told no
    episode count (agents that lay schedules over the run, such as DQN's exploration, would spread
    them over ``max_episodes``); the cap ends the search through its callback instead."""
    import nas_gym  # noqa: F401 - registers the env ids in a fresh worker

    agent = make_agent(config.agent, seed=config.seed, **config.agent_kwargs)
    env = make_env(config, agent)
    cap = config.max_episodes if config.episodes is None else None
    started = time.perf_counter()
    try:
        result = agent.search(
            env,
            episodes=config.episodes,
            budget_seconds=config.budget_seconds,
            callback=None if cap is None else (lambda record: record["episode"] + 1 < cap),
        )
        wall = time.perf_counter() - started
        evaluator = env.unwrapped.runner.evaluator
        return summarise_run(config, result, optimum_of(evaluator), wall, transfer_of(evaluator))
    finally:
        env.close()


def transfer_of(evaluator: Any) -> Callable[[str], dict[str, float]] | None:
    """The evaluator's ``transfer(arch)`` (test accuracy per dataset), where it has one."""
    transfer = getattr(evaluator, "transfer", None)
    return transfer if callable(transfer) else None


def summarise_run(
    config: SearchConfig,
    result: SearchResult,
    optimum: Mapping[str, Any],
    wall_seconds: float,
    transfer: Callable[[str], Mapping[str, float]] | None = None,
) -> RunResult:
    """The row of ``results.csv`` and the best-so-far curve of the search ``result``.

    The run selects ``result.best`` (the earliest record of the highest reward); ``optimum`` is
    :func:`optimum_of` the backend, for the regrets and ``found_optimum``.
    """
    history = result.history
    objectives = config.env_kwargs.get("objectives")
    curve = [
        (float(record["cumulative_seconds"]), float(_reported(leader)))
        for record, leader in zip(history, leaders(history))
    ]
    best = best_record(history)
    test = None if best is None else best.get("test_accuracy")
    # The table's optimum is the best accuracy, so a regret of the reward needs reward=accuracy
    # (for a vector reward: accuracy as its first component, what reward_key compares).
    plain_reward = config.env_kwargs.get("reward", "accuracy") == "accuracy" and (
        not objectives or objectives[0] == "accuracy"
    )
    row: dict[str, Any] = {
        "agent": config.agent,
        "seed": config.seed,
        "episodes": len(history),
        "best_reward": None if best is None else reward_key(best),
        "test_accuracy": test,
        "simulated_seconds": history[-1]["cumulative_seconds"] if history else 0.0,
        "wall_seconds": round(wall_seconds, 3),
        "best_arch": None if best is None else best["arch"],
        "regret_reward": None
        if best is None or "reward" not in optimum or not plain_reward
        else optimum["reward"] - reward_key(best),
        "regret_test": None
        if test is None or "test_accuracy" not in optimum
        else optimum["test_accuracy"] - test,
        "found_optimum": None if best is None or "arch" not in optimum else best["arch"] == optimum["arch"],
    }
    if transfer is not None and best is not None:
        for dataset, value in transfer(best["arch"]).items():
            row[TRANSFER_PREFIX + dataset] = value
    # The fronts of a multi-objective comparison are measured once every run is in.
    return RunResult(row=row, curve=curve, history=list(history) if objectives else [])


def _reported(record: Mapping[str, Any]) -> float:
    """What a best-so-far curve shows of ``record``: its test accuracy, else its reward (the
    first component of a vector reward)."""
    test = record.get("test_accuracy")
    return reward_key(record) if test is None else test


def _failed_run(config: SearchConfig, attempts: int, error: str, seconds: float, **_: Any) -> RunResult:
    row = {k: None for k in RESULT_COLUMNS} | {"agent": config.agent, "seed": config.seed, "episodes": 0}
    row["error"] = f"the worker died on each of {attempts} attempt(s): {error}"
    return RunResult(row=row, curve=[])


def run_compare(
    env: str,
    agents: Sequence[str],
    seeds: int,
    out: str | Path,
    episodes: int | None = None,
    budget_seconds: float | None = None,
    env_kwargs: dict[str, Any] | None = None,
    executor: ExecutorSpec | str | None = None,
    max_episodes: int | None = 10_000,
    on_result: Callable[[RunResult], None] | None = None,
    agent_kwargs: Mapping[str, dict[str, Any]] | None = None,
    on_start: Callable[[], None] | None = None,
) -> list[RunResult]:
    """Run every agent with seeds ``0..seeds-1`` and write the outputs into ``out``.

    ``executor`` spreads the runs (an :class:`~nas_gym.parallel.spec.ExecutorSpec` or its name;
    default: worker processes, one per core, each with an equal share of the cores); each run is seeded, so the results do not depend on it. ``max_episodes``
    caps the episodes of a run with a time budget (an agent that keeps proposing cached
    architectures spends no time). ``on_result`` sees each run as it finishes; ``agent_kwargs``
    maps an agent name to keyword arguments of ``make_agent``. ``on_start()`` is called once the
    arguments are checked and the executor is up, before the first run: what fails before it is
    set-up (bad input), what fails after it happened in a run.
    """
    if episodes is None and budget_seconds is None:
        raise ValueError("expected episodes or budget_seconds, got neither")
    check_int(seeds, "seeds", minimum=1)
    agents = list(agents)
    if not agents:
        raise ValueError("expected at least one agent, got none")
    for agent in agents:
        if agents.count(agent) > 1:
            times = "twice" if agents.count(agent) == 2 else f"{agents.count(agent)} times"
            raise ValueError(f"expected distinct agents, got {agent!r} {times}")
    executor = ExecutorSpec(executor) if isinstance(executor, str) else executor or ExecutorSpec("processes")
    configs = [
        SearchConfig(
            env=env,
            agent=agent,
            seed=seed,
            episodes=episodes,
            budget_seconds=budget_seconds,
            env_kwargs=dict(env_kwargs or {}),
            agent_kwargs=dict((agent_kwargs or {}).get(agent, {})),
            max_episodes=None if episodes is not None else max_episodes,
        )
        for agent in agents
        for seed in range(seeds)
    ]
    out = Path(out)
    with executor.build(workers=len(configs)) as pool:
        # CPU training in the runs gets the pool's share of the cores, unless pinned.
        if env_accepts(env, "threads") and "threads" not in (env_kwargs or {}):
            configs = [
                dataclasses.replace(c, env_kwargs={**c.env_kwargs, "threads": pool.threads_per_task})
                for c in configs
            ]
        if on_start is not None:
            on_start()
        results = pool.map(
            run_one,
            configs,
            on_result=None if on_result is None else (lambda i, result: on_result(result)),
            on_death=_failed_run,
        )
    out.mkdir(parents=True, exist_ok=True)
    objectives = (env_kwargs or {}).get("objectives")
    fronts = _measure_fronts(env, dict(env_kwargs or {}), agents, results, out) if objectives else []
    write_results_csv(out / "results.csv", results)
    summary = summary_markdown(env, agents, results, episodes, budget_seconds)
    (out / "summary.md").write_text(summary + "".join(line + "\n" for line in fronts))
    plot_best_so_far(out / "best_so_far.png", env, agents, results, budget_seconds)
    return results


def _measure_fronts(
    env: str, env_kwargs: dict[str, Any], agents: Sequence[str], results: Sequence[RunResult], out: Path
) -> list[str]:
    """Hypervolume and IGD of each run (added to its row), ``fronts.csv`` and ``hypervolume.png``;
    returns the ``summary.md`` section (:mod:`nas_gym.experiments.fronts`)."""
    import gymnasium as gym

    from nas_gym.experiments.fronts import (
        front_of,
        fronts_markdown,
        hypervolume_curve,
        make_scale,
        run_figures,
        write_fronts_csv,
    )
    from nas_gym.experiments.plots import plot_hypervolume

    objectives = list(env_kwargs["objectives"])
    # A table whose reward depends on the evaluation seed (NAS-Bench-Macro picks one of three
    # training runs per architecture by it) has an exact front per seed: each run is measured
    # against the front of the rewards it saw.
    per_seed = env_accepts(env, "eval_seed")

    def scale_for(seed: int, histories: list[list[dict[str, Any]]]) -> Any:
        table = gym.make(
            env, disable_env_checker=True, **{**env_kwargs, **({"eval_seed": seed} if per_seed else {})}
        )
        try:
            return make_scale(histories, table)
        finally:
            table.close()

    first = scale_for(0, [r.history for r in results])
    seeds = sorted({int(r.row["seed"]) for r in results})
    scales = {s: scale_for(s, []) if first.exact and per_seed and s else first for s in seeds}
    curves: list[list[tuple[float, float]]] = []
    rows: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for result in results:
        scale = scales[int(result.row["seed"])]
        result.row.update(run_figures(result.history, scale))
        curves.append(hypervolume_curve(result.history, scale))
        lead = {"agent": result.row["agent"], "seed": result.row["seed"]}
        rows += [(lead, result.history[i]) for i in front_of(result.history)]
    write_fronts_csv(out / "fronts.csv", objectives, rows)
    labels = [r.row["agent"] for r in results]
    plot_hypervolume(out / "hypervolume.png", env, agents, labels, curves, exact=first.exact)
    return fronts_markdown(
        agents, [r.row for r in results], first, objectives, per_seed=first.exact and per_seed
    )


def write_results_csv(path: Path, results: Sequence[RunResult]) -> None:
    """One row per run; the transfer columns and the fronts' columns when the runs have them."""
    from nas_gym.experiments.fronts import FRONT_COLUMNS

    extra = sorted({k for r in results for k in r.row if k.startswith(TRANSFER_PREFIX)})
    extra += [k for k in FRONT_COLUMNS if any(k in r.row for r in results)]
    columns = list(RESULT_COLUMNS) + extra
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for result in results:
            writer.writerow({k: "" if result.row.get(k) is None else result.row[k] for k in columns})


def finite(values: Sequence[Any]) -> list[float]:
    """The finite numbers of ``values`` (``None`` and NaN dropped)."""
    return [float(v) for v in values if v is not None and v != "" and math.isfinite(float(v))]
