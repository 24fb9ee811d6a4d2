"""Zero-cost warm start: screen random architectures by a cheap fidelity (a zero-cost proxy) before
a search spends real evaluations, then start the search from the best of them.

Abdelfattah et al. (ICLR 2021, "Zero-Cost Proxies for Lightweight NAS", Section 5) warm up aging
evolution by proxy-ranking random architectures and seeding the population with the top ones.
:class:`Screening` is that phase for any agent with proposals (:class:`WarmStartable` wires it
in): ``candidates`` random architectures (distinct where the space allows), each one episode at
``fidelity`` (``reset(options={"fidelity": ...})``, so the env evaluates and charges it like any
other episode), then the ``top`` best-scored ones (the best last), each one episode at the env's
default fidelity, before the agent proposes anything itself. ``evolution`` takes their results as its
first generation; ``reinforce`` learns from their real rewards as from its own samples, so its
first updates already see good architectures (a demonstration, not an on-policy sample; the
controller is not fitted to the proxy's ranking, whose errors it would then learn too).

A screened search's history holds the screening episodes, whose rewards are proxy scores: select
its architecture with :func:`agents.hyperband.select_record` (the best reward of the highest
fidelity), not by the highest reward overall.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from agents.results import EpisodeRecord
from agents.tools import as_int_list
from nas_gym.core.checks import ArgumentTypeError, check_int
from nas_gym.spaces import Arch, SearchSpace

MAX_REDRAWS = 100
"""Draws per candidate to find one not drawn yet (a small space may have fewer than asked)."""


@dataclass(frozen=True)
class WarmStart:
    """How a search is warm-started.

    ``candidates`` = 1000 costs, with ``synflow``, about a twentieth of a second each on one CPU
    thread: under one percent of a 12,000-second NAS-Bench-201 search, the time of one
    ``cpu-proxy`` training on ``NASCifar-v0``. ``top`` = 20 is ``evolution``'s population.
    """

    fidelity: str = "synflow"
    """The env's fidelity that screens (``reset(options={"fidelity": ...})``)."""
    candidates: int = 1000
    """Random architectures screened."""
    top: int = 20
    """The best-scored ones that the search then starts from."""

    def __post_init__(self) -> None:
        if not isinstance(self.fidelity, str) or not self.fidelity:
            raise ArgumentTypeError(f"expected fidelity as the name of a fidelity, got {self.fidelity!r}")
        check_int(self.candidates, "candidates", minimum=1)
        check_int(self.top, "top", minimum=1, maximum=self.candidates)


WarmStartLike = WarmStart | Mapping[str, Any] | bool | None
"""What ``warm_start=`` of an agent takes."""


def as_warm_start(value: WarmStartLike) -> WarmStart | None:
    """``warm_start=`` of an agent: ``None`` / ``False`` (none), ``True`` (the defaults), a dict of
    :class:`WarmStart` fields or a :class:`WarmStart`."""
    if value is None or value is False:
        return None
    if value is True:
        return WarmStart()
    if isinstance(value, WarmStart):
        return value
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(asdict(WarmStart())))
        if unknown:
            raise ValueError(f"expected warm_start keys among {sorted(asdict(WarmStart()))}, got {unknown}")
        return WarmStart(**value)
    raise ArgumentTypeError(
        f"expected warm_start as None, a bool, a dict of WarmStart fields or a WarmStart, got {value!r}"
    )


class Screening:
    """The screening phase of one search: the candidates, their scores, the top list.

    Plain data throughout, so that :meth:`state_dict` is part of an agent's checkpoint.
    """

    def __init__(self, config: WarmStart):
        self.config = config
        self.candidates: list[Arch] = []
        """The architectures to screen, drawn by :meth:`start`."""
        self.scores: list[tuple[Arch, float]] = []
        """``(architecture, score)`` of the screened ones, in the order they finished."""
        self.queued_top = False
        """Whether the top architectures were handed to the search."""

    def start(self, space: SearchSpace, rng: np.random.Generator) -> list[Arch]:
        """The candidates to play first: random architectures, distinct where the space allows,
        drawn on the first call; ``[]`` on later ones (they are queued already)."""
        if self.candidates:
            return []
        seen: set[Arch] = set()
        for _ in range(self.config.candidates):
            arch = space.sample(rng)
            for _ in range(MAX_REDRAWS):
                if arch not in seen:
                    break
                arch = space.sample(rng)
            seen.add(arch)
            self.candidates.append(arch)
        return list(self.candidates)

    def _unscored(self) -> set[Arch]:
        return set(self.candidates) - {arch for arch, _ in self.scores}

    def options(self, pending: Sequence[Arch]) -> dict[str, Any] | None:
        """The ``reset`` options of the next episode, which plays ``pending[0]`` when there is one:
        the screening fidelity for a candidate not scored yet, else none (the env's default)."""
        if pending and tuple(pending[0]) in self._unscored():
            return {"fidelity": self.config.fidelity}
        return None

    def take(
        self, archs: Sequence[Arch], records: Sequence[EpisodeRecord], pending: list[Arch]
    ) -> tuple[list[Arch], list[EpisodeRecord]]:
        """Keep the screening results among ``(archs, records)`` and return the others, for the
        agent to learn from. Once no unscored candidate is left in ``pending`` (the agent's queue),
        the ``top`` best-scored architectures join it, to be evaluated next, best last."""
        unscored = self._unscored()
        rest_archs, rest_records = [], []
        for arch, record in zip(archs, records):
            arch = tuple(int(c) for c in arch)
            if arch in unscored and record.get("fidelity") == self.config.fidelity:
                self.scores.append((arch, float(record["reward"])))
                unscored.discard(arch)
            else:
                rest_archs.append(arch)
                rest_records.append(record)
        if not self.queued_top and not any(tuple(a) in unscored for a in pending):
            # Worst of the top first: the best-scored one is the youngest of evolution's first
            # generation (the last to age out), and in reinforce each is measured against the
            # baseline of those before it, so good ones are not pushed down for trailing a better one.
            pending.extend(reversed(self.ranked()[: self.config.top]))
            self.queued_top = True
        return rest_archs, rest_records

    def ranked(self) -> list[Arch]:
        """The screened architectures by score, best first (the earliest screened on ties)."""
        return [arch for arch, _ in sorted(self.scores, key=lambda item: -item[1])]

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "candidates": [as_int_list(a) for a in self.candidates],
            "scores": [{"arch": as_int_list(a), "score": s} for a, s in self.scores],
            "queued_top": self.queued_top,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.candidates = [tuple(int(c) for c in a) for a in state["candidates"]]
        self.scores = [(tuple(int(c) for c in s["arch"]), float(s["score"])) for s in state["scores"]]
        self.queued_top = bool(state["queued_top"])


class WarmStartable:
    """The warm start of an agent with proposals (``evolution``, ``reinforce``), mixed in before
    :class:`~agents.Agent`.

    The screening candidates and then the top ones go through the agent's ``pending`` queue,
    which every search loop plays before asking the agent for proposals (one at a time on a
    single env, in batches on a vector env) and reports through ``tell``. So the agent only calls
    :meth:`init_warm_start` in its constructor, :meth:`queue_screening` in ``prepare`` (once its
    ``space`` is set), :meth:`screened` at the start of ``tell``, and adds
    :meth:`warm_start_state` / :meth:`load_warm_start` to its checkpoint; :meth:`episode_options`
    asks for the screening fidelity while a candidate is played.
    """

    screening: Screening | None = None
    pending: list[Arch]
    rng: np.random.Generator

    def init_warm_start(self, warm_start: WarmStartLike) -> None:
        """Set up the warm start given as ``warm_start=`` (see :func:`as_warm_start`)."""
        config = as_warm_start(warm_start)
        self.screening = None if config is None else Screening(config)

    @property
    def warm_start(self) -> WarmStart | None:
        """The warm start's settings (``None``: a cold start)."""
        return None if self.screening is None else self.screening.config

    def queue_screening(self) -> None:
        """Queue the screening candidates (once per agent), drawn from its generator."""
        if self.screening is not None:
            self.pending += self.screening.start(self.space, self.rng)  # type: ignore[attr-defined]

    def episode_options(self) -> dict[str, Any] | None:
        return None if self.screening is None else self.screening.options(self.pending)

    def screened(
        self, archs: Sequence[Arch], records: Sequence[EpisodeRecord]
    ) -> tuple[Sequence[Arch], Sequence[EpisodeRecord]]:
        """``(archs, records)`` without the screening results, which the warm start keeps."""
        if self.screening is None:
            return archs, records
        return self.screening.take(archs, records, self.pending)

    def warm_start_state(self) -> dict[str, Any]:
        """The warm start's part of the agent's :meth:`~agents.Agent.state_dict`."""
        return {"warm_start": None if self.screening is None else self.screening.state_dict()}

    def load_warm_start(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`warm_start_state` (of an agent with the same warm start)."""
        saved = state.get("warm_start")
        found = None if saved is None else dict(saved["config"])
        expected = None if self.screening is None else asdict(self.screening.config)
        if found != expected:
            raise ValueError(f"expected a state with warm start {expected} (this agent's), got {found}")
        if self.screening is not None and saved is not None:
            self.screening.load_state_dict(saved)
