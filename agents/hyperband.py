"""Hyperband (Li et al., JMLR 2018, "Hyperband: A Novel Bandit-Based Approach to Hyperparameter
Optimization") over the fidelities of a nas-gym env, and the rule that selects a multi-fidelity
search's architecture."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym

from agents.base import Agent
from agents.results import best_record
from agents.tools import as_int_list, check_config_matches, space_of, valid_actions
from nas_gym.core.checks import check_int, check_number
from nas_gym.spaces import Arch, SearchSpace

MAX_REDRAWS = 100
"""Draws per configuration of a bracket to find one the bracket does not hold yet (a small space
can have fewer architectures than a bracket wants: then a repeat is kept)."""


def top_fidelity_records(records: Iterable[Mapping[str, Any]], fidelities: Sequence[Any]) -> list[Any]:
    """The records of the highest fidelity among ``records`` (``fidelities`` cheapest first, as
    ``env.unwrapped.fidelities`` lists them; a record's ``fidelity`` that the list lacks, or no
    ``fidelity`` at all, ranks below every listed one)."""
    records = list(records)
    order = {f: i for i, f in enumerate(fidelities) if isinstance(f, str)}

    def rank(record: Mapping[str, Any]) -> int:
        fidelity = record.get("fidelity")
        return order.get(fidelity, -1) if isinstance(fidelity, str) else -1

    top = max((rank(r) for r in records), default=-1)
    return [r for r in records if rank(r) == top]


def select_record(records: Iterable[Mapping[str, Any]], fidelities: Sequence[Any]) -> Any:
    """The architecture a multi-fidelity search selects: the highest reward among the records of
    its highest fidelity (the earliest on ties), ``None`` for no records. Rewards of different
    fidelities are not on one scale (a zero-cost score is no accuracy, a 12-epoch accuracy is not a
    200-epoch one), so only the most faithful ones compete. For a search at one fidelity this is
    :attr:`SearchResult.best <agents.results.SearchResult.best>`."""
    return best_record(top_fidelity_records(records, fidelities))


class HyperbandAgent(Agent):
    """Hyperband: successive-halving brackets over the fidelities the env offers.

    With ``m`` fidelities ``F_0 < ... < F_{m-1}`` (``env.unwrapped.fidelities``, cheapest first, or
    ``fidelities=``) and ``s_max = m - 1``, one Hyperband iteration runs the brackets ``s = s_max,
    ..., 0``. Bracket ``s`` draws ``n = ceil((s_max + 1) / (s + 1) * eta**s)`` random architectures
    (distinct where the space allows) and evaluates them at ``F_{s_max - s}``; after each rung the
    best ``floor(k / eta)`` (at least one) of its ``k`` by reward go on to the next fidelity, until
    ``F_{m-1}``. This is Li et al.'s Algorithm 1 with the fidelities as its resource levels (``R =
    eta**s_max``, rung ``i`` at ``eta**i``): the exploratory bracket spends its budget on many cheap
    evaluations, the last one on a few at the top fidelity, as a hedge against a misleading low
    fidelity. Iterations repeat until the search ends.

    Each evaluation is one episode: :meth:`episode_options` asks ``reset`` for its fidelity and the
    agent plays the architecture's choices, so the env and its wrappers evaluate it and charge its
    cost. On ``NASBench201-v0`` (``"12ep"``, ``"200ep"``) a rung at ``"200ep"`` costs 200 recorded
    epochs plus the validation pass.

    The architecture the search selects is :func:`select_record` of its history: the best reward at
    the highest fidelity reached (:attr:`incumbent` is that record as the agent saw it).

    Args:
        seed: seeds the draws.
        eta: the halving rate (default 3, Li et al.'s).
        fidelities: the fidelities to use, cheapest first (default: all the env offers; at least
            two).
    """

    name: ClassVar[str] = "hyperband"

    def __init__(self, seed: int | None = None, eta: float = 3, fidelities: Sequence[str] | None = None):
        super().__init__(seed)
        self.eta = float(check_number(eta, "eta", minimum=1, strict=True))
        if fidelities is not None and (isinstance(fidelities, str) or len(fidelities) < 2):
            raise ValueError(
                f"expected fidelities as a sequence of at least two names, cheapest first, got {fidelities!r}"
            )
        self.requested = None if fidelities is None else tuple(fidelities)
        self.fidelities: tuple[str, ...] = ()
        """The fidelities in use (known after :meth:`prepare`)."""
        self.space: SearchSpace | None = None
        self.bracket: int | None = None
        """``s`` of the bracket in progress (``None`` before the first)."""
        self.rung = 0
        """Index of the fidelity of the rung in progress."""
        self.queue: list[Arch] = []
        """Architectures of the rung still to evaluate, in order."""
        self.results: list[tuple[Arch, float]] = []
        """``(architecture, reward)`` of the rung so far."""
        self.incumbent: dict[str, Any] | None = None
        """``{"arch", "reward", "fidelity"}`` of the best evaluation at the highest fidelity so far."""
        self._step = 0
        self._return = 0.0

    # ------------------------------------------------------------------ schedule
    @property
    def s_max(self) -> int:
        return len(self.fidelities) - 1

    def bracket_size(self, s: int) -> int:
        """``n`` of bracket ``s``: the architectures of its first rung."""
        check_int(s, "s", minimum=0, maximum=self.s_max)
        # round(): eta**s of a float eta must not turn 9.000000000000002 into 10.
        return math.ceil(round((self.s_max + 1) / (s + 1) * self.eta**s, 9))

    def _start_bracket(self) -> None:
        assert self.space is not None  # prepare() ran
        s = self.s_max if self.bracket is None or self.bracket == 0 else self.bracket - 1
        drawn: list[Arch] = []
        for _ in range(self.bracket_size(s)):
            arch = self.space.sample(self.rng)
            for _ in range(MAX_REDRAWS):
                if arch not in drawn:
                    break
                arch = self.space.sample(self.rng)
            drawn.append(arch)
        self.bracket, self.rung, self.queue, self.results = s, self.s_max - s, drawn, []

    def _finish_rung(self) -> None:
        """Promote the best of the rung, or start the next bracket after its top rung."""
        if self.rung == self.s_max or not self.results:  # none finished: nothing to promote
            self._start_bracket()
            return
        keep = max(1, math.floor(round(len(self.results) / self.eta, 9)))
        # sorted() is stable: among equal rewards the first evaluated goes on.
        ranked = sorted(self.results, key=lambda result: -result[1])
        self.rung, self.queue, self.results = self.rung + 1, [a for a, _ in ranked[:keep]], []

    def _current(self) -> Arch:
        """The architecture of the next evaluation (planning the next rung or bracket if needed)."""
        if not self.queue:
            if self.bracket is None:
                self._start_bracket()
            else:
                self._finish_rung()
        return self.queue[0]

    # ------------------------------------------------------------------ agent protocol
    def prepare(self, env: gym.Env) -> None:
        self.space = space_of(env)
        offered = tuple(getattr(env.unwrapped, "fidelities", ()))
        fidelities = self.requested if self.requested is not None else offered
        missing = [f for f in fidelities if f not in offered]
        if len(fidelities) < 2 or missing:
            raise ValueError(
                f"expected an env with at least two fidelities for hyperband (env.unwrapped.fidelities"
                f"{' to include ' + str(missing) if missing else ''}), got {offered}"
            )
        if self.fidelities and fidelities != self.fidelities:
            raise ValueError(
                f"expected the fidelities {self.fidelities} of the search so far, got {fidelities}"
            )
        self.fidelities = tuple(fidelities)

    def episode_options(self) -> dict[str, Any]:
        self._current()
        return {"fidelity": self.fidelities[self.rung]}

    def on_episode_start(self, obs: Any, info: dict[str, Any]) -> None:
        self._current()
        self._step, self._return = 0, 0.0

    def act(self, obs: Any, info: dict[str, Any]) -> int:
        arch = self._current()
        if self._step < len(arch):
            action = arch[self._step]
        else:  # a wrapper changed the actions: finish with valid random choices
            actions = valid_actions(info)
            action = int(actions[self.rng.integers(actions.size)])
        self._step += 1
        return int(action)

    def observe(
        self, obs: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]
    ) -> None:
        self._return += float(reward)
        if not (terminated or truncated):
            return
        arch = self.queue.pop(0)
        if "arch" not in info:
            return  # cut short: not an evaluation, the rung goes on without it
        self.results.append((arch, self._return))
        fidelity = self.fidelities[self.rung]
        rank = self.fidelities.index(self.incumbent["fidelity"]) if self.incumbent else -1
        if self.rung > rank or (self.rung == rank and self._return > self.incumbent["reward"]):  # type: ignore[index]
            self.incumbent = {"arch": str(info["arch"]), "reward": self._return, "fidelity": fidelity}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "config": {
                "eta": self.eta,
                "fidelities": None if self.requested is None else list(self.requested),
            },
            "fidelities": list(self.fidelities),
            "bracket": self.bracket,
            "rung": self.rung,
            "queue": [as_int_list(a) for a in self.queue],
            "results": [{"arch": as_int_list(a), "reward": float(r)} for a, r in self.results],
            "incumbent": None if self.incumbent is None else dict(self.incumbent),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if isinstance(state, Mapping):
            requested = None if self.requested is None else list(self.requested)
            check_config_matches(state, {"eta": self.eta, "fidelities": requested}, self.display_name)
        super().load_state_dict(state)
        self.fidelities = tuple(state["fidelities"])
        self.bracket = None if state["bracket"] is None else int(state["bracket"])
        self.rung = int(state["rung"])
        self.queue = [tuple(int(c) for c in a) for a in state["queue"]]
        self.results = [(tuple(int(c) for c in r["arch"]), float(r["reward"])) for r in state["results"]]
        self.incumbent = None if state["incumbent"] is None else dict(state["incumbent"])

    def __repr__(self) -> str:
        fidelities = "" if self.requested is None else f", fidelities={list(self.requested)}"
        return f"HyperbandAgent(seed={self.seed}, eta={self.eta:g}{fidelities})"
