"""A search run on disk: configuration, history, checkpoints, summary and evaluation store.

Layout of a run folder::

    config.json         what was asked (env, agent, episodes, seed, env and agent options)
    history.jsonl       one JSON object per finished episode, appended and flushed as it ends
    checkpoint.pt       agent state after the last finished episode (tensors and plain data)
    evaluations.sqlite  the evaluation store: nothing finished is ever trained again
    summary.json        best architecture and reward, episodes, timings (at the end)
    pareto.png          accuracy against params with the Pareto front (backends that report params)

A killed run resumes from its folder: the history is cut back to the checkpoint (a torn last line
is dropped with a warning), the agent state is restored, and episodes after the checkpoint are
replayed from the store without training.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from nas_gym.evaluation.store import EvaluationStore, StoreError

if TYPE_CHECKING:
    from nas_gym.evaluation.executors import Executor

CONFIG = "config.json"
HISTORY = "history.jsonl"
CHECKPOINT = "checkpoint.pt"
STORE = "evaluations.sqlite"
SUMMARY = "summary.json"
PARETO = "pareto.png"


class RunFolderError(RuntimeError):
    """A run folder that cannot be started or resumed as asked."""


@dataclass
class SearchConfig:
    """Everything that defines a search run (saved as ``config.json``)."""

    env: str
    """Registered env id, e.g. ``"NASCifar-v0"``."""
    agent: str
    """Agent name, e.g. ``"reinforce"``."""
    episodes: int | None = None
    """Finished episodes to run (``None``: until ``budget_seconds``)."""
    seed: int = 0
    """Seed of the agent and of the evaluation (training seed, table run choice)."""
    budget_seconds: float | None = None
    """Stop once the history's cumulative ``train_seconds`` reaches this."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments of ``gym.make`` (``budget``, ``device``, ``space`` ...)."""
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments of ``make_agent``."""
    batch: int | None = None
    """Architectures a batch agent (``random``, ``evolution``, ``reinforce``) proposes at once:
    the copies of the :class:`~nas_gym.vector.NASVectorEnv` it searches, evaluated together.
    ``None``: the agent's own ``batch_size``. The history depends on it, never on the executor."""

    def __post_init__(self) -> None:
        if self.episodes is None and self.budget_seconds is None:
            raise ValueError("expected episodes or budget_seconds, got neither")
        if self.episodes is not None and (not isinstance(self.episodes, int) or self.episodes < 1):
            raise ValueError(f"expected episodes as a positive integer, got {self.episodes!r}")
        if self.budget_seconds is not None and not self.budget_seconds > 0:
            raise ValueError(f"expected budget_seconds > 0, got {self.budget_seconds!r}")
        if self.batch is not None and (not isinstance(self.batch, int) or self.batch < 1):
            raise ValueError(f"expected batch as a positive integer, got {self.batch!r}")


def env_accepts(env_id: str, name: str) -> bool:
    """Whether the env registered as ``env_id`` takes the keyword argument ``name``."""
    spec = gym.spec(env_id)
    entry = spec.entry_point
    target = gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry
    return name in inspect.signature(target).parameters


def env_kwargs_of(config: SearchConfig, store: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The env keyword arguments of a run: its ``env_kwargs``, the run's seed as the evaluation
    seed where the env has one, and the store where given."""
    kwargs = dict(config.env_kwargs)
    if env_accepts(config.env, "eval_seed"):
        kwargs.setdefault("eval_seed", config.seed)
    if store is not None:
        kwargs["store"] = store
    return kwargs


def make_env(
    config: SearchConfig,
    store: str | os.PathLike[str] | None = None,
    executor: Executor | None = None,
    batch: int | None = None,
) -> gym.Env | gym.vector.VectorEnv:
    """The env a run's agent searches: ``gym.make(config.env, ...)`` for agents that run one
    episode at a time (their evaluations go to ``executor`` one by one), or, with ``batch``, a
    :class:`~nas_gym.vector.NASVectorEnv` of ``batch`` copies whose architectures are evaluated
    together on ``executor``. The caller closes ``executor``."""
    kwargs = env_kwargs_of(config, store)
    if batch is None:
        if executor is not None and env_accepts(config.env, "executor"):
            kwargs["executor"] = executor
        return gym.make(config.env, **kwargs)
    from nas_gym.vector import NASVectorEnv

    return NASVectorEnv(
        config.env, num_envs=batch, executor=executor or "serial", autoreset_mode="Disabled", **kwargs
    )


class RunFolder:
    """The files of one run (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    @property
    def store_path(self) -> Path:
        return self.path / STORE

    # ------------------------------------------------------------------ config
    def write_config(self, config: SearchConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path / CONFIG, json.dumps(asdict(config), indent=2).encode())

    def read_config(self) -> SearchConfig:
        path = self.path / CONFIG
        if not path.exists():
            raise RunFolderError(f"expected a run folder with {CONFIG} to resume, got none in {self.path}")
        try:
            return SearchConfig(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise RunFolderError(f"expected a valid {CONFIG} in {self.path}, got: {exc}") from exc

    # ------------------------------------------------------------------ history
    def read_history(self) -> list[dict[str, Any]]:
        """The finished episodes; a torn last line (a crash while writing) is dropped with a warning."""
        path = self.path / HISTORY
        if not path.exists():
            return []
        lines = path.read_bytes().split(b"\n")
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError as exc:
                if any(rest.strip() for rest in lines[number:]):
                    raise RunFolderError(
                        f"expected one JSON object per line in {path}, got a broken line {number} "
                        "in the middle of the file"
                    ) from exc
                warnings.warn(
                    f"{path}: skipped the half-written last line {number} (the run was interrupted "
                    "while writing it)",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return records

    def append_history(self, record: Mapping[str, Any]) -> None:
        """Append one episode and push it to the disk, so a killed run keeps it."""
        with open(self.path / HISTORY, "ab") as f:
            f.write(json.dumps(record, default=_json_default).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def rewrite_history(self, records: list[dict[str, Any]]) -> None:
        data = b"".join(json.dumps(r, default=_json_default).encode() + b"\n" for r in records)
        _atomic_write(self.path / HISTORY, data)

    # ------------------------------------------------------------------ checkpoint
    def save_checkpoint(self, episodes: int, agent_state: Mapping[str, Any]) -> None:
        import io

        import torch

        buffer = io.BytesIO()
        torch.save({"episodes": episodes, "agent": dict(agent_state)}, buffer)
        _atomic_write(self.path / CHECKPOINT, buffer.getvalue())

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint, loaded with ``weights_only=True`` (a foreign checkpoint cannot run code)."""
        path = self.path / CHECKPOINT
        if not path.exists():
            return None
        import torch

        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means: not ours
            raise RunFolderError(
                f"expected a checkpoint of tensors and plain data in {path}, got one that does not "
                f"load safely ({type(exc).__name__}: {str(exc).splitlines()[0]}); it was left untouched"
            ) from exc

    # ------------------------------------------------------------------ summary
    def write_summary(self, summary: Mapping[str, Any]) -> None:
        _atomic_write(self.path / SUMMARY, json.dumps(summary, indent=2, default=_json_default).encode())


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"expected JSON-serialisable values, got {type(value).__name__}")


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def best_of(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The entry with the highest reward (the first one on ties)."""
    best = None
    for record in history:
        if best is None or record["reward"] > best["reward"]:
            best = record
    return best


def run_search(
    config: SearchConfig,
    out: str | os.PathLike[str],
    resume: bool = False,
    on_episode: Callable[[dict[str, Any], dict[str, Any] | None], None] | None = None,
    on_start: Callable[[list[dict[str, Any]]], None] | None = None,
    tensorboard: str | os.PathLike[str] | None = None,
    executor: str = "serial",
    workers: int | None = None,
    ray_address: str | None = None,
    num_gpus: float = 0.0,
) -> dict[str, Any]:
    """Run (or resume) the search ``config`` in the folder ``out``; returns the summary.

    ``on_start(history)`` is called once the env and agent are ready, with the episodes a
    resumed run already has; ``on_episode(record, best)`` after each finished episode (progress
    displays).
    ``tensorboard``: a folder for TensorBoard event files: per episode the reward, best reward
    so far, accuracy and train seconds, and the agent's learning figures (losses, entropy).
    ``executor``, ``workers``, ``ray_address``, ``num_gpus``: where evaluations run
    (:func:`~nas_gym.evaluation.executors.make_executor`); they change speed, not the history.

    With ``resume``, the run's saved configuration is used; ``config`` may raise its episodes
    or time budget, and must otherwise agree with it (env, agent, seed, env options, batch).
    """
    from agents import make_agent
    from nas_gym.evaluation.executors import make_executor

    folder = RunFolder(out)
    if folder.path.exists() and not folder.path.is_dir():
        raise RunFolderError(f"expected a folder for the run, got the file {folder.path}")
    if resume:
        config = _resumed_config(folder, config)
    elif (folder.path / HISTORY).exists() or (folder.path / CHECKPOINT).exists():
        raise RunFolderError(
            f"expected an empty or new folder, got the run in {folder.path}: pass --resume to "
            "continue it, or another --out"
        )

    with contextlib.ExitStack() as cleanup:
        try:
            store = EvaluationStore(folder.store_path)
        except StoreError as exc:
            raise RunFolderError(str(exc)) from exc
        cleanup.callback(store.close)
        agent = make_agent(config.agent, seed=config.seed, **config.agent_kwargs)
        if agent.supports_batches and config.batch is None:
            config.batch = agent.batch_size
        # A serial executor serves any batch: workers count only for concurrent executors.
        pool = make_executor(
            executor,
            workers=None if executor == "serial" else workers,
            ray_address=ray_address,
            num_gpus=num_gpus,
        )
        cleanup.callback(pool.close)
        env = make_env(
            config, store=store.path, executor=pool, batch=config.batch if agent.supports_batches else None
        )
        cleanup.callback(env.close)
        # Written once the env is built: a run whose options do not make an env leaves no config.
        folder.write_config(config)

        history: list[dict[str, Any]] = []
        if resume:
            history = folder.read_history()
            checkpoint = folder.load_checkpoint()
            done = 0 if checkpoint is None else int(checkpoint["episodes"])
            if checkpoint is not None:
                if done > len(history):
                    raise RunFolderError(
                        f"expected at least {done} episodes in {folder.path / HISTORY} (the "
                        f"checkpoint's), got {len(history)}"
                    )
                agent.load_state_dict(checkpoint["agent"])
            # Episodes after the checkpoint are replayed by the restored agent; their
            # evaluations come back from the store, so nothing is trained twice.
            history = history[:done]
            folder.rewrite_history(history)

        writer = _tensorboard_writer(tensorboard)
        if writer is not None:
            cleanup.callback(writer.close)
        offset = len(history)
        prior_seconds = sum(float(r.get("train_seconds", 0.0)) for r in history)
        started = time.time()

        def callback(record: dict[str, Any]) -> bool:
            record = dict(record)
            record["episode"] = offset + int(record["episode"])
            record["cumulative_seconds"] = prior_seconds + float(record.get("cumulative_seconds", 0.0))
            history.append(record)
            folder.append_history(record)
            folder.save_checkpoint(len(history), agent.state_dict())
            best = best_of(history)
            if writer is not None:
                _log_episode(writer, record, best, agent.learning_metrics())
            if on_episode is not None:
                on_episode(record, best)
            return True

        remaining = None if config.episodes is None else config.episodes - offset
        budget_left = None if config.budget_seconds is None else config.budget_seconds - prior_seconds
        finished = (remaining is not None and remaining <= 0) or (
            budget_left is not None and budget_left <= 0
        )
        if on_start is not None:
            on_start(list(history))
        if not finished:
            agent.search(env, episodes=remaining, budget_seconds=budget_left, callback=callback)
        summary = _summary(config, history, executor, evaluations_stored=len(store))
        summary["wall_seconds_this_session"] = round(time.time() - started, 3)

    from nas_gym.pareto import has_cost, plot_pareto

    if has_cost(history, "params"):
        front = plot_pareto(
            history, str(folder.path / PARETO), cost="params", title=f"{config.env}: {config.agent}"
        )
        summary["pareto_front"] = [history[i]["arch"] for i in front]
    folder.write_summary(summary)
    return summary


def _resumed_config(folder: RunFolder, asked: SearchConfig) -> SearchConfig:
    """The saved configuration of the run in ``folder``, with the episodes and time budget of
    ``asked`` where it sets them; anything else that ``asked`` changes is refused."""
    saved = folder.read_config()
    mismatches = [
        f"{name} {getattr(saved, name)!r} (asked: {getattr(asked, name)!r})"
        for name in ("env", "agent", "seed")
        if getattr(saved, name) != getattr(asked, name)
    ]
    if asked.env_kwargs and asked.env_kwargs != saved.env_kwargs:
        mismatches.append(f"env options {saved.env_kwargs!r} (asked: {asked.env_kwargs!r})")
    if asked.batch is not None and saved.batch is not None and asked.batch != saved.batch:
        mismatches.append(f"batch {saved.batch} (asked: {asked.batch})")
    if mismatches:
        raise RunFolderError(
            f"expected the settings of the run in {folder.path} to resume it, got other ones: "
            + "; ".join(mismatches)
        )
    return SearchConfig(
        **{
            **asdict(saved),
            "episodes": asked.episodes or saved.episodes,
            "budget_seconds": asked.budget_seconds or saved.budget_seconds,
        }
    )


def _summary(
    config: SearchConfig, history: list[dict[str, Any]], executor: str, evaluations_stored: int
) -> dict[str, Any]:
    best = best_of(history)
    train_seconds = sum(float(r.get("train_seconds", 0.0)) for r in history)
    return {
        "env": config.env,
        "agent": config.agent,
        "seed": config.seed,
        "batch": config.batch,
        "executor": executor,
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
    step = record["episode"]
    writer.add_scalar("search/reward", record["reward"], step)
    if best is not None:
        writer.add_scalar("search/best_reward", best["reward"], step)
    if record.get("accuracy") is not None:
        writer.add_scalar("search/accuracy", record["accuracy"], step)
    writer.add_scalar("search/train_seconds", record.get("train_seconds", 0.0), step)
    for key, value in learning.items():
        writer.add_scalar(f"agent/{key.removeprefix('train/')}", value, step)
    writer.flush()


def _tensorboard_writer(folder: str | os.PathLike[str] | None):
    if folder is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise RunFolderError(
            'expected the tensorboard package for --tensorboard, got none: pip install "nas-gym[tensorboard]"'
        ) from exc
    return SummaryWriter(log_dir=str(folder))


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts
