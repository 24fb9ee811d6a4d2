"""Search spaces: presets by name, and the :class:`SearchSpace` abstraction."""

from __future__ import annotations

from collections.abc import Callable

from nas_gym.core.errors import did_you_mean
from nas_gym.spaces.base import Arch, Decision, FixedSpace, InvalidArchitectureError, SearchSpace
from nas_gym.spaces.macro import MacroSpace
from nas_gym.spaces.nb201 import NB201Space
from nas_gym.spaces.seed import SeedSpace

PRESETS: dict[str, Callable[[], SearchSpace]] = {
    "seed": SeedSpace,
    "nb201": NB201Space,
    "macro": MacroSpace,
}
"""Preset name -> factory."""


def make_space(space: str | SearchSpace) -> SearchSpace:
    """A preset by name, or ``space`` itself when it is already a :class:`SearchSpace`."""
    if isinstance(space, SearchSpace):
        return space
    if not isinstance(space, str):
        raise TypeError(
            f"expected a preset name {sorted(PRESETS)} or a SearchSpace, got {type(space).__name__}"
        )
    if space not in PRESETS:
        raise ValueError(
            f"expected a search space in {sorted(PRESETS)}, got {space!r}{did_you_mean(space, PRESETS)}"
        )
    return PRESETS[space]()


__all__ = [
    "Arch",
    "Decision",
    "FixedSpace",
    "InvalidArchitectureError",
    "MacroSpace",
    "NB201Space",
    "PRESETS",
    "SearchSpace",
    "SeedSpace",
    "make_space",
]
