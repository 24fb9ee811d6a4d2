"""The search-space abstraction: an architecture is a sequence of decisions with finite choices.

A :class:`SearchSpace` says, given the decisions taken so far (a *prefix*), which decision comes
next, or that the architecture is complete. This one rule covers fixed spaces (NAS-Bench-201:
always six decisions) and spaces whose later decisions depend on earlier ones (the ``"seed"``
space: the depth is chosen first and fixes how many layer decisions follow).

An architecture is the tuple of choice indices, one per decision, in episode order
(:data:`Arch`). Each architecture has exactly one such tuple, so the tuple, its canonical string
(:meth:`SearchSpace.format` / :meth:`SearchSpace.parse`) and the action sequence of an episode
are interchangeable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

Arch = tuple[int, ...]
"""An architecture: one choice index per decision, in the order the decisions are taken."""


def scaled_channels(channels: int, width: float) -> int:
    """``channels`` multiplied by ``width``, rounded, at least 1 (the reduction of a budget)."""
    return max(1, round(channels * width))


class InvalidArchitectureError(ValueError):
    """A string or choice tuple that is not an architecture of the space."""


@dataclass(frozen=True)
class Decision:
    """One architecture decision."""

    name: str
    """Unique within an architecture, e.g. ``"layer3.kernel"``."""
    kind: str
    """Decisions of the same kind share meaning (and one softmax head in the REINFORCE controller),
    e.g. ``"kernel"``."""
    choices: tuple[str, ...]
    """The labels of the choices; the choice index is the position in this tuple."""

    @property
    def num_choices(self) -> int:
        return len(self.choices)


class SearchSpace(ABC):
    """A finite space of architectures built decision by decision.

    Subclasses define :meth:`next_decision`, :meth:`format`, :meth:`parse`, :attr:`size` and
    :meth:`build_model`; the rest (sampling, mutation, validation, masks) follows from those.
    """

    name: str = "abstract"
    """The preset name under which :func:`nas_gym.spaces.make_space` finds the space."""

    # ------------------------------------------------------------------ structure
    @abstractmethod
    def next_decision(self, prefix: Sequence[int]) -> Decision | None:
        """The decision that follows ``prefix`` (choice indices taken so far), or ``None`` when
        ``prefix`` is a complete architecture. ``prefix`` must itself be valid."""

    @property
    @abstractmethod
    def max_decisions(self) -> int:
        """The largest number of decisions in one architecture (the longest episode)."""

    @property
    @abstractmethod
    def slot_choices(self) -> tuple[int, ...]:
        """For each position ``i < max_decisions``, the largest number of choices a decision at
        that position can have (sizes the observation space)."""

    @property
    @abstractmethod
    def kinds(self) -> tuple[Decision, ...]:
        """One representative decision per decision kind, in a stable order."""

    @property
    @abstractmethod
    def size(self) -> int:
        """The exact number of distinct architectures."""

    @cached_property
    def num_actions(self) -> int:
        """The largest number of choices of any decision (the ``Discrete(n)`` of the env)."""
        # Cached: the env asks for it on every step, and spaces are immutable.
        return max(d.num_choices for d in self.kinds)

    # ------------------------------------------------------------------ strings
    @abstractmethod
    def format(self, arch: Sequence[int]) -> str:
        """The canonical string of a complete architecture."""

    @abstractmethod
    def parse(self, text: str) -> Arch:
        """The architecture of a canonical string; raises :class:`InvalidArchitectureError`
        with what was expected when ``text`` is not one."""

    # ------------------------------------------------------------------ model
    @abstractmethod
    def build_model(
        self,
        arch: Sequence[int] | str,
        num_classes: int = 10,
        *,
        width: float = 1.0,
        cells: int | None = None,
        resolution: int = 32,
    ):
        """A ``torch.nn.Module`` for RGB input (32x32 as defined; any size works, the heads pool
        globally) with ``num_classes`` logits.

        ``width`` multiplies every layer's channels (each keeps at least one) and ``cells`` sets
        the copies of a repeated cell per stage (spaces without repeated cells ignore it): the
        reductions of a cheap budget, which keep every decision of the architecture.
        ``resolution``: the input size the network will see (a reduced budget trains on smaller
        images), for spaces whose layout depends on it.
        """

    # ------------------------------------------------------------------ derived verbs
    def decisions(self, arch: Sequence[int]) -> list[Decision]:
        """The decision taken at each position of ``arch`` (validated)."""
        arch = self.validate(arch)
        return [self.next_decision(arch[:i]) for i in range(len(arch))]  # type: ignore[misc]

    def validate(self, arch: Sequence[int] | str) -> Arch:
        """``arch`` as a complete, valid :data:`Arch`; parses strings."""
        if isinstance(arch, str):
            return self.parse(arch)
        try:
            values = tuple(int(c) for c in arch)
        except (TypeError, ValueError) as exc:
            raise InvalidArchitectureError(
                f"expected a sequence of choice indices or a canonical string of space "
                f"{self.name!r}, got {arch!r}"
            ) from exc
        for i, value in enumerate(values):
            decision = self.next_decision(values[:i])
            if decision is None:
                raise InvalidArchitectureError(
                    f"expected at most {i} decisions for {values[:i]!r} in space {self.name!r}, "
                    f"got {len(values)}"
                )
            if not 0 <= value < decision.num_choices:
                raise InvalidArchitectureError(
                    f"expected a choice in 0..{decision.num_choices - 1} for decision "
                    f"{decision.name!r}, got {value}"
                )
        if self.next_decision(values) is not None:
            raise InvalidArchitectureError(
                f"expected a complete architecture of space {self.name!r}, got the prefix "
                f"{values!r} (next decision: {self.next_decision(values).name!r})"  # type: ignore[union-attr]
            )
        return values

    def sample(self, rng: np.random.Generator) -> Arch:
        """A random architecture: each decision uniform over its choices, in episode order.

        This is the distribution a uniform random agent produces. In spaces where later decisions
        depend on earlier ones it is not uniform over architectures (in ``"seed"`` every depth is
        equally likely, although deep networks are far more numerous).
        """
        arch: list[int] = []
        while (decision := self.next_decision(arch)) is not None:
            arch.append(int(rng.integers(decision.num_choices)))
        return tuple(arch)

    def mutate(self, arch: Sequence[int] | str, rng: np.random.Generator) -> Arch:
        """A new architecture that differs from ``arch`` in exactly one decision.

        One decision with more than one choice is picked uniformly and set to a different choice.
        Later decisions keep their values where they still exist; decisions that the change
        creates (a larger depth, say) are sampled uniformly. ``arch`` itself is not modified.
        """
        base = self.validate(arch)
        candidates = [i for i, d in enumerate(self.decisions(base)) if d.num_choices > 1]
        if not candidates:
            raise InvalidArchitectureError(f"space {self.name!r} has no decision to mutate")
        position = candidates[int(rng.integers(len(candidates)))]
        decision = self.next_decision(base[:position])
        assert decision is not None  # position < len(base), and base is complete
        offset = int(rng.integers(1, decision.num_choices))
        new = list(base[:position]) + [(base[position] + offset) % decision.num_choices]
        while (decision := self.next_decision(new)) is not None:
            i = len(new)
            old_decision = self.next_decision(base[:i]) if i < len(base) else None
            if old_decision is not None and old_decision.name == decision.name:
                new.append(base[i])
            else:
                new.append(int(rng.integers(decision.num_choices)))
        return tuple(new)

    def action_mask(self, prefix: Sequence[int]) -> np.ndarray:
        """Boolean mask over ``Discrete(num_actions)`` of the choices valid after ``prefix``
        (all false when the architecture is complete)."""
        mask = np.zeros(self.num_actions, dtype=bool)
        decision = self.next_decision(prefix)
        if decision is not None:
            mask[: decision.num_choices] = True
        return mask

    def describe(self, arch: Sequence[int] | str) -> list[tuple[str, str]]:
        """``(decision name, choice label)`` for each decision of ``arch``."""
        values = self.validate(arch)
        return [(d.name, d.choices[v]) for d, v in zip(self.decisions(values), values)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, size={self.size})"


class FixedSpace(SearchSpace):
    """A space with the same list of decisions for every architecture (NAS-Bench-201, macro)."""

    def __init__(self, decisions: Sequence[Decision]):
        if not decisions:
            raise ValueError("expected at least one decision, got none")
        self._decisions = tuple(decisions)
        kinds: dict[str, Decision] = {}
        for d in self._decisions:
            kinds.setdefault(d.kind, d)
        self._kinds = tuple(kinds.values())

    def next_decision(self, prefix: Sequence[int]) -> Decision | None:
        i = len(prefix)
        return self._decisions[i] if i < len(self._decisions) else None

    @property
    def max_decisions(self) -> int:
        return len(self._decisions)

    @property
    def slot_choices(self) -> tuple[int, ...]:
        return tuple(d.num_choices for d in self._decisions)

    @property
    def kinds(self) -> tuple[Decision, ...]:
        return self._kinds

    @property
    def size(self) -> int:
        return int(np.prod([d.num_choices for d in self._decisions], dtype=object))
