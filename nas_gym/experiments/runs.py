"""``nas-gym search``: one search run in its folder (:mod:`nas_gym.experiments.folder`), started
or resumed, with progress callbacks and optional TensorBoard logs."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents import Agent, best_record, make_agent
from nas_gym.evaluation.store import EvaluationStore, StoreError
from nas_gym.experiments.config import SearchConfig, make_env
from nas_gym.experiments.folder import (
    CONFIG,
    FRONT,
    PARETO,
    RunFolder,
    RunFolderError,
    atomic_write,
    json_default,
    resume_point,
)
from nas_gym.parallel.spec import ExecutorSpec

FRONT_CSV = "front.csv"
"""With ``objectives``: the run's non-dominated architectures, ``arch`` and the raw metric of each
objective (accuracy as a fraction, params as a count, flops as multiply-adds)."""


def run_search(
    config: SearchConfig,
    out: str | os.PathLike[str],
    resume: bool = False,
    on_episode: Callable[[dict[str, Any], dict[str, Any] | None], None] | None = None,
    on_start: Callable[[list[dict[str, Any]]], None] | None = None,
    tensorboard: str | os.PathLike[str] | None = None,
    executor: ExecutorSpec | None = None,
) -> dict[str, Any]:
    """Run (or resume) the search ``config`` in the folder ``out``; returns the summary.

    ``on_start(history)`` is called once the env and agent are ready, with the episodes a resumed
    run already has: everything before it is set-up, and a set-up that fails leaves nothing behind
    that it created (no folder, no store). ``on_episode(record, best)`` is called after each
    finished episode (progress displays). ``tensorboard``: a folder for TensorBoard event files.
    ``executor``: where evaluations run (default serial); it changes speed, not the history.

    With ``resume``, ``config`` is what :func:`resume_config` made of the saved run.
    """
    executor = executor or ExecutorSpec()
    folder = RunFolder(out)
    if folder.path.exists() and not folder.path.is_dir():
        raise RunFolderError(f"expected a folder for the run, got the file {folder.path}")
    if not resume and folder.has_run():
        raise RunFolderError(
            f"expected an empty or new folder, got the run in {folder.path}: pass --resume to "
            "continue it, or another --out"
        )
    if resume and not (folder.path / CONFIG).exists():
        raise RunFolderError(f"expected a run folder with {CONFIG} to resume, got none in {folder.path}")

    with contextlib.ExitStack() as cleanup, _SetUpGuard(folder) as undo:
        agent = make_agent(config.agent, seed=config.seed, **config.agent_kwargs)
        try:
            store = EvaluationStore(folder.store_path)
        except StoreError as exc:
            raise RunFolderError(str(exc)) from exc
        cleanup.callback(store.close)
        pool = executor.build()
        cleanup.callback(pool.close)
        env = make_env(config, agent, store=store.path, executor=pool)
        cleanup.callback(env.close)
        history: list[dict[str, Any]] = []
        if resume:
            history, note = resume_point(folder, agent)
            if note:
                warnings.warn(f"{folder.path}: {note}", RuntimeWarning, stacklevel=2)
            folder.rewrite_history(history)
        writer = _tensorboard_writer(tensorboard)
        if writer is not None:
            cleanup.callback(writer.close)
        folder.write_config(config)
        undo.disarm()
        summary = _search(config, folder, agent, env, history, writer, on_start, on_episode, store)
        summary["executor"] = executor.name

    _write_fronts(folder, history, config, summary)
    folder.write_summary(summary)
    return summary


def _search(
    config: SearchConfig,
    folder: RunFolder,
    agent: Agent,
    env: Any,
    history: list[dict[str, Any]],
    writer: Any,
    on_start: Callable[[list[dict[str, Any]]], None] | None,
    on_episode: Callable[[dict[str, Any], dict[str, Any] | None], None] | None,
    store: EvaluationStore,
) -> dict[str, Any]:
    offset = len(history)
    prior_seconds = sum(float(r.get("train_seconds", 0.0)) for r in history)
    started = time.time()

    def callback(record: dict[str, Any]) -> bool:
        record = dict(record)
        record["episode"] = offset + int(record["episode"])
        record["cumulative_seconds"] = prior_seconds + float(record.get("cumulative_seconds", 0.0))
        history.append(record)
        folder.append_history(record)
        folder.save_checkpoint(history, agent.state_dict())
        best = best_record(history)
        if writer is not None:
            _log_episode(writer, record, best, agent.learning_metrics())
        if on_episode is not None:
            on_episode(record, best)
        return (
            config.max_episodes is None or config.episodes is not None or len(history) < config.max_episodes
        )

    remaining = None if config.episodes is None else config.episodes - offset
    budget_left = None if config.budget_seconds is None else config.budget_seconds - prior_seconds
    finished = (remaining is not None and remaining <= 0) or (budget_left is not None and budget_left <= 0)
    if on_start is not None:
        on_start(list(history))
    if not finished:
        agent.search(env, episodes=remaining, budget_seconds=budget_left, callback=callback)
    summary = _summary(config, history, evaluations_stored=len(store))
    summary["wall_seconds_this_session"] = round(time.time() - started, 3)
    return summary


class _SetUpGuard(contextlib.AbstractContextManager["_SetUpGuard"]):
    """Removes what a failed set-up created in ``folder`` (the folder itself if it was new, else
    the store if it was new), so that refused commands leave no debris; :meth:`disarm` once the
    set-up is done."""

    def __init__(self, folder: RunFolder):
        self.folder = folder
        self.new_folder = not folder.path.exists()
        self.new_store = not folder.store_path.exists()
        # The parents that do not exist yet either (``runs/`` of a default --out): made by the
        # set-up too, so removed with it when they are still empty.
        absolute = folder.path.absolute()
        self.new_parents = [p for p in absolute.parents if not p.exists()]
        self.armed = True

    def disarm(self) -> None:
        self.armed = False

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None or not self.armed:
            return
        if self.new_folder:
            shutil.rmtree(self.folder.path, ignore_errors=True)
            for parent in self.new_parents:  # innermost first; one that is not empty stays
                with contextlib.suppress(OSError):
                    parent.rmdir()
        elif self.new_store:
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.folder.store_path) + suffix).unlink(missing_ok=True)


def _write_fronts(
    folder: RunFolder, history: list[dict[str, Any]], config: SearchConfig, summary: dict[str, Any]
) -> None:
    from nas_gym.experiments.plots import has_cost, plot_front, plot_pareto

    objectives = config.env_kwargs.get("objectives")
    if objectives and len(objectives) > 1 and history:
        # A vector reward: the front of all its objectives, as front.csv (raw metrics) and pareto.png.
        from nas_gym.experiments.fronts import write_fronts_csv

        front = plot_front(
            history, str(folder.path / PARETO), objectives, title=f"{config.env}: {config.agent}"
        )
        summary["pareto_front"] = [history[i]["arch"] for i in front]
        write_fronts_csv(folder.path / FRONT_CSV, objectives, [({}, history[i]) for i in front])
        atomic_write(
            folder.path / FRONT, json.dumps([history[i] for i in front], default=json_default).encode()
        )
    elif has_cost(history, "params"):
        front = plot_pareto(
            history, str(folder.path / PARETO), cost="params", title=f"{config.env}: {config.agent}"
        )
        summary["pareto_front"] = [history[i]["arch"] for i in front]
        atomic_write(
            folder.path / FRONT, json.dumps([history[i] for i in front], default=json_default).encode()
        )


def _summary(config: SearchConfig, history: list[dict[str, Any]], evaluations_stored: int) -> dict[str, Any]:
    best = best_record(history)
    train_seconds = sum(float(r.get("train_seconds", 0.0)) for r in history)
    return {
        "env": config.env,
        "agent": config.agent,
        "seed": config.seed,
        "num_envs": config.num_envs,
        "episodes": len(history),
        "best_arch": None if best is None else best["arch"],
        "best_reward": None if best is None else best["reward"],
        "best_accuracy": None if best is None else best.get("accuracy"),
        "best_test_accuracy": None if best is None else best.get("test_accuracy"),
        "best_episode": None if best is None else best["episode"],
        "evaluations_stored": evaluations_stored,
        "train_seconds": train_seconds if math.isfinite(train_seconds) else None,
        "statuses": _count(r.get("status", "ok") for r in history),
    }


def _log_episode(
    writer: Any, record: dict[str, Any], best: dict[str, Any] | None, learning: dict[str, float]
) -> None:
    from agents.results import reward_key

    step = record["episode"]
    writer.add_scalar("search/reward", reward_key(record), step)
    if best is not None:
        writer.add_scalar("search/best_reward", reward_key(best), step)
    if record.get("accuracy") is not None:
        writer.add_scalar("search/accuracy", record["accuracy"], step)
    writer.add_scalar("search/train_seconds", record.get("train_seconds", 0.0), step)
    for key, value in learning.items():
        writer.add_scalar(f"agent/{key.removeprefix('train/')}", value, step)
    writer.flush()


def _tensorboard_writer(folder: str | os.PathLike[str] | None) -> Any:
    if folder is None:
        return None
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"expected --tensorboard to name a folder, got the file {path}: pass a folder")
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise RunFolderError(
            'expected the tensorboard package for --tensorboard, got none: pip install "nas-gym[tensorboard]"'
        ) from exc
    return SummaryWriter(log_dir=str(path))


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts
