"""The records of a search: :class:`SearchResult`, and the one running-best rule.

Every "best so far" of the project (``SearchResult.best``, run summaries, best-so-far curves)
comes from :func:`leaders`.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EpisodeRecord = dict[str, Any]
"""One finished episode of a search; see :class:`SearchResult` for its keys."""

SearchCallback = Callable[[EpisodeRecord], "bool | None"]
"""Called with each new record; returning ``False`` (not merely a falsy value) stops the search."""


def reward_key(record: Mapping[str, Any]) -> float:
    """What "the highest reward" compares: the reward, or for a vector reward (a list, one
    component per objective) its first component."""
    reward = record["reward"]
    return float(reward[0]) if isinstance(reward, (list, tuple, np.ndarray)) else float(reward)


def leaders(records: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """After each record, the record with the highest reward so far (the earliest on ties): the
    one rule behind :attr:`SearchResult.best`, run summaries and best-so-far curves."""
    leader: Mapping[str, Any] | None = None
    for record in records:
        if leader is None or reward_key(record) > reward_key(leader):
            leader = record
        yield leader


def best_record(records: Iterable[Mapping[str, Any]]) -> Any:
    """The record with the highest reward (the earliest on ties), ``None`` for no records."""
    # The last leader: a deque of length 1 consumes the generator without a Python loop body.
    last = collections.deque(leaders(records), maxlen=1)
    return last[0] if last else None


@dataclass
class SearchResult:
    """What :meth:`Agent.search` returns.

    ``history`` holds one record (a plain dict) per finished episode, in order, with the keys

    - ``episode``: 0-based index of the episode in this ``search`` call;
    - ``arch``: canonical architecture string; ``reward``: the episode return as the agent saw
      it (through any wrapper; a list of floats for a vector reward); ``accuracy``: validation
      accuracy (``None`` under a zero-cost budget, whose ``score`` is then recorded);
    - ``status``, ``cached``, ``train_seconds``, ``params``, ``flops``, and ``test_accuracy`` /
      ``error`` / ``score`` / ``fidelity`` when the env reports them;
    - ``cumulative_seconds``: running sum of ``train_seconds`` in this call (the simulated clock
      of tabular benchmarks; a cached evaluation counts its recorded cost again, as a re-query
      does in the NAS-Bench-201 protocol);
    - ``wall_seconds``: wall-clock time since the start of this call;
    - ``steps``: the number of env steps of the episode.

    A search resumed from a checkpoint (:meth:`Agent.load_state_dict`) is a new call: its records
    count from 0 again; whoever joins the histories adds the offsets.
    """

    history: list[EpisodeRecord] = field(default_factory=list)
    agent: str | None = None
    """The name of the agent that produced the history."""
    seed: int | None = None
    """The agent's seed."""

    @property
    def best(self) -> EpisodeRecord | None:
        """The record with the highest reward (the earliest one on ties; for vector rewards, by
        the first objective), ``None`` when empty."""
        return best_record(self.history)

    @property
    def simulated_seconds(self) -> float:
        """The sum of ``train_seconds`` over this history."""
        return float(sum(record["train_seconds"] for record in self.history))

    def __len__(self) -> int:
        return len(self.history)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``history``, ``best``, ``agent``, ``seed``)."""
        best = self.best
        return {
            "agent": self.agent,
            "seed": self.seed,
            "history": [dict(record) for record in self.history],
            "best": None if best is None else dict(best),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchResult:
        """The inverse of :meth:`to_dict` (``best`` is recomputed from the history)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("history"), list):
            raise ValueError(
                f"expected a dict with a 'history' list (SearchResult.to_dict()), got {type(data).__name__}"
                + (f" with keys {sorted(data)}" if isinstance(data, Mapping) else "")
            )
        return cls(history=[dict(r) for r in data["history"]], agent=data.get("agent"), seed=data.get("seed"))
