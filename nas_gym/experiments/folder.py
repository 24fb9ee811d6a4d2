"""A search run on disk: configuration, history, checkpoints, summary and evaluation store.

Layout of a run folder::

    config.json         what was asked (env, agent, episodes, seed, env and agent options)
    history.jsonl       one JSON object per finished episode, appended and flushed as it ends
    checkpoint.pt       agent state after the last finished episode, with its last records
    evaluations.sqlite  the evaluation store: nothing finished is ever trained again
    summary.json        best architecture and reward, episodes, timings (at the end)
    pareto.png          accuracy against params with the Pareto front (backends that report params)
    front.json          the records of the run's Pareto front (backends that report params)

A killed run resumes from its folder whatever state its last two files were left in
(:func:`resume_point`): the agent restarts from the checkpoint, episodes the history has beyond it
are replayed from the store, episodes the history lost are restored from the checkpoint's copy of
the last records, and a run without a usable checkpoint replays every episode from the store. A
replayed evaluation is never trained again.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agents import Agent
from nas_gym.experiments.config import SearchConfig

CONFIG = "config.json"
HISTORY = "history.jsonl"
CHECKPOINT = "checkpoint.pt"
STORE = "evaluations.sqlite"
SUMMARY = "summary.json"
PARETO = "pareto.png"
FRONT = "front.json"
CHECKPOINT_TAIL = 32
"""Records of the last episodes a checkpoint carries, so that a history that lost its last lines
can be completed from it."""


class RunFolderError(RuntimeError):
    """A run folder that cannot be started or resumed as asked."""


class RunFolder:
    """The files of one run (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    @property
    def store_path(self) -> Path:
        return self.path / STORE

    def has_run(self) -> bool:
        """Whether the folder holds a run (a history or a checkpoint)."""
        return (self.path / HISTORY).exists() or (self.path / CHECKPOINT).exists()

    # ------------------------------------------------------------------ config
    def write_config(self, config: SearchConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path / CONFIG, json.dumps(config.to_dict(), indent=2).encode())

    def read_config(self) -> SearchConfig:
        path = self.path / CONFIG
        if not path.exists():
            raise RunFolderError(f"expected a run folder with {CONFIG} to resume, got none in {self.path}")
        try:
            return SearchConfig.from_dict(json.loads(path.read_text()))
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
            f.write(json.dumps(record, default=json_default).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def rewrite_history(self, records: list[dict[str, Any]]) -> None:
        data = b"".join(json.dumps(r, default=json_default).encode() + b"\n" for r in records)
        atomic_write(self.path / HISTORY, data)

    # ------------------------------------------------------------------ checkpoint
    def save_checkpoint(self, history: list[dict[str, Any]], agent_state: Mapping[str, Any]) -> None:
        """The agent's state after ``history``, with a copy of its last records."""
        import torch

        tail = [json.loads(json.dumps(r, default=json_default)) for r in history[-CHECKPOINT_TAIL:]]
        buffer = io.BytesIO()
        torch.save({"episodes": len(history), "agent": dict(agent_state), "tail": tail}, buffer)
        atomic_write(self.path / CHECKPOINT, buffer.getvalue())

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint, loaded with ``weights_only=True`` (a foreign checkpoint cannot run
        code); ``None`` when there is none."""
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

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        atomic_write(self.path / SUMMARY, json.dumps(summary, indent=2, default=json_default).encode())


def json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"expected JSON-serialisable values, got {type(value).__name__}")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------- resume
def resume_config(out: str | os.PathLike[str], asked: Mapping[str, Any]) -> SearchConfig:
    """The configuration to resume the run in ``out`` with: the saved one, with the episodes and
    time budget of ``asked`` where it sets them (else the run's own stop). Anything else that
    ``asked`` sets (a key of :class:`SearchConfig` whose value is not ``None`` or empty) must
    agree with the saved run; a mismatch is refused, naming each setting."""
    folder = RunFolder(out)
    saved = folder.read_config()
    mismatches = []
    for name in ("env", "agent", "seed", "env_kwargs", "agent_kwargs", "num_envs"):
        value = asked.get(name)
        if value not in (None, {}) and value != getattr(saved, name):
            mismatches.append(f"{name} {getattr(saved, name)!r} (asked: {value!r})")
    if mismatches:
        raise RunFolderError(
            f"expected the settings of the run in {folder.path} to resume it, got other ones: "
            + "; ".join(mismatches)
        )
    episodes, budget = asked.get("episodes"), asked.get("budget_seconds")
    return dataclasses.replace(
        saved,
        episodes=episodes if episodes is not None else saved.episodes,
        budget_seconds=budget if budget is not None else saved.budget_seconds,
    )


def resume_point(folder: RunFolder, agent: Agent) -> tuple[list[dict[str, Any]], str | None]:
    """Restore ``agent`` for the run in ``folder`` and return the history it continues from, and
    a note on what was repaired (``None`` when nothing was).

    - history at least as long as the checkpoint: the agent is restored and the history cut back
      to it; the later episodes are replayed (their evaluations come back from the store);
    - history shorter than the checkpoint (lost lines): the missing records come back from the
      checkpoint's tail, when it reaches that far;
    - no checkpoint, or one the history cannot be matched with: the agent starts afresh and
      every episode is replayed from the store.
    """
    history = folder.read_history()
    recorded = len(history)
    checkpoint = folder.load_checkpoint()
    if checkpoint is None:
        note = (
            f"no checkpoint: replaying the {len(history)} recorded episodes from the store"
            if history
            else None
        )
        return [], note
    done = int(checkpoint["episodes"])
    note = None
    if done > len(history):
        tail = list(checkpoint.get("tail", []))
        first = done - len(tail)
        if first > len(history):
            return [], (
                f"the history has {len(history)} episodes and the checkpoint {done}, more than its "
                f"copy of the last {len(tail)} covers: replaying every episode from the store"
            )
        history = history[:first] + tail
        note = f"restored {done - recorded} episodes the history had lost from the checkpoint"
    elif done < len(history):
        note = f"replaying {len(history) - done} episodes recorded after the checkpoint from the store"
    agent.load_state_dict(checkpoint["agent"])
    return history[:done], note
