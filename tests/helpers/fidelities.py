"""An instant evaluator with three fidelities, for the tests of the multi-fidelity agents."""

from __future__ import annotations

import hashlib
from typing import Any

COSTS = {"proxy": 0.01, "low": 10.0, "high": 100.0}
"""Simulated seconds of one evaluation at each fidelity."""


def quality(arch: str) -> float:
    """The architecture's true quality, a pseudo-random fraction of its string's hash."""
    return int.from_bytes(hashlib.sha256(arch.encode()).digest()[:4], "little") / 2**32


def noise(arch: str) -> float:
    """A second, independent pseudo-random fraction of the string."""
    return int.from_bytes(hashlib.sha256(arch.encode()).digest()[4:8], "little") / 2**32


class Fidelities:
    """``"high"``: the quality as accuracy; ``"low"``: quality plus up to 0.3 of noise, scaled into
    [0, 1]; ``"proxy"``: a zero-cost result, score ``1000 * quality`` (a perfect ranking, on another
    scale). Each charges :data:`COSTS`. Picklable."""

    fidelities = tuple(COSTS)

    def __init__(self, fidelity: str = "low"):
        if fidelity not in COSTS:
            raise ValueError(f"expected a fidelity in {self.fidelities}, got {fidelity!r}")
        self.fidelity = fidelity
        self.fingerprint = f"fake-fidelities/v1/{fidelity}"

    def with_fidelity(self, fidelity: str) -> Fidelities:
        return Fidelities(fidelity)

    def __call__(self, arch: str) -> dict[str, Any]:
        q = quality(arch)
        if self.fidelity == "proxy":
            return {"accuracy": None, "score": 1000 * q, "train_seconds": COSTS["proxy"]}
        value = q if self.fidelity == "high" else (q + 0.3 * noise(arch)) / 1.3
        return {"accuracy": value, "train_seconds": COSTS[self.fidelity]}
