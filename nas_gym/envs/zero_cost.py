"""Zero-cost proxies as extra fidelities of any evaluator: a table env (``NASBench201-v0``) can screen
architectures by a proxy score before it spends its simulated training time.

The tables record no proxy scores, so :class:`ZeroCostFidelities` computes them with
:class:`~nas_gym.backends.cifar.zero_cost.ZeroCostEvaluator` (CIFAR-10 images, the space's own
network) and keeps them in a ``cache`` store shared by every env and process that names it: a
cell is scored once, then looked up. It lives here, above both backends, because the table and
CIFAR-10 backends are independent of each other.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas_gym.backends.cifar.zero_cost import PROXIES, ZeroCostEvaluator, check_proxy
from nas_gym.evaluation.runner import EvaluationRunner, Evaluator, evaluator_fingerprint
from nas_gym.evaluation.store import EvaluationStore
from nas_gym.spaces import SearchSpace, make_space


class CachedScores:
    """A :class:`~nas_gym.backends.cifar.zero_cost.ZeroCostEvaluator` whose scores go through the
    store at ``cache`` (``None``: this process only): what the store holds is returned, with the
    ``train_seconds`` it took when it was computed, the rest is computed and stored. Picklable."""

    def __init__(self, evaluator: ZeroCostEvaluator, cache: str | os.PathLike[str] | None = None):
        self.evaluator = evaluator
        self.cache = None if cache is None else Path(cache).expanduser()
        self._runner: EvaluationRunner | None = None

    @property
    def fingerprint(self) -> str:
        return self.evaluator.fingerprint

    @property
    def fidelity(self) -> str:
        return self.evaluator.fidelity

    def __call__(self, arch: str) -> dict[str, Any]:
        if self._runner is None:
            store = None if self.cache is None else EvaluationStore(self.cache)
            self._runner = EvaluationRunner(self.evaluator, self.evaluator.space.name, store)
        metrics, _ = self._runner.evaluate(arch)
        return metrics

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_runner": None}  # each process opens the store itself

    def __repr__(self) -> str:
        return f"CachedScores({self.evaluator!r}, cache={None if self.cache is None else str(self.cache)!r})"


class ZeroCostFidelities:
    """``base`` with the zero-cost proxies as extra fidelities, cheapest first.

    Called, it is ``base`` (same metrics, same :attr:`fingerprint`, so stores and histories do not
    change); attributes it lacks (``optimum``, ``transfer``, ``table`` ...) are ``base``'s.
    :attr:`fidelities` is ``(*proxies, *base.fidelities)``; ``with_fidelity(proxy)`` gives the
    proxy's :class:`CachedScores`, any other fidelity ``base.with_fidelity`` wrapped again.

    Args:
        base: the evaluator of the env, e.g. a
            :class:`~nas_gym.backends.tables.nb201.NB201Evaluator`.
        space: the space of its architectures (preset name or :class:`~nas_gym.spaces.SearchSpace`).
        proxies: names of :data:`~nas_gym.backends.cifar.zero_cost.PROXIES` to offer (default all).
        cache: store of the scores (``None``: an in-process cache only).
        **zero_cost: arguments of the :class:`~nas_gym.backends.cifar.zero_cost.ZeroCostEvaluator`
            (``batch_size``, ``seed``, ``device``, ``data_dir``, ``threads``).

    Example (needs the table and CIFAR-10 under ``$NAS_GYM_DATA``)::

        from nas_gym.backends.tables.nb201 import NB201Evaluator
        evaluator = ZeroCostFidelities(NB201Evaluator(), "nb201", cache="~/.cache/nas_gym/zero_cost.sqlite")
        env = gym.make("NASBench201-v0", evaluator=evaluator)
        env.reset(options={"fidelity": "synflow"})  # this episode's reward: the synflow score
    """

    def __init__(
        self,
        base: Evaluator,
        space: str | SearchSpace,
        proxies: Sequence[str] = tuple(PROXIES),
        cache: str | os.PathLike[str] | None = None,
        **zero_cost: Any,
    ):
        if not callable(base):
            raise TypeError(f"expected base as an evaluator (a callable), got {type(base).__name__}")
        if isinstance(proxies, str) or not proxies:
            raise ValueError(f"expected a non-empty sequence of proxy names, got {proxies!r}")
        self.base = base
        self.space = make_space(space)
        self.proxies = tuple(check_proxy(p) for p in proxies)
        self.cache = None if cache is None else Path(cache).expanduser()
        self.zero_cost = dict(zero_cost)
        # Built here, so that bad settings or missing CIFAR-10 fail now, not in the first episode.
        self._scorers = {p: ZeroCostEvaluator(self.space, proxy=p, **self.zero_cost) for p in self.proxies}

    @property
    def fingerprint(self) -> str:
        """``base``'s store key: its results are unchanged."""
        return evaluator_fingerprint(self.base)

    @property
    def fidelities(self) -> tuple[str, ...]:
        """The proxies, then ``base``'s own fidelities."""
        return (*self.proxies, *getattr(self.base, "fidelities", ()))

    @property
    def fidelity(self) -> Any:
        return getattr(self.base, "fidelity", None)

    def with_fidelity(self, fidelity: Any) -> CachedScores | ZeroCostFidelities:
        """The cached proxy for a proxy name, else ``base`` at ``fidelity``, wrapped again."""
        if isinstance(fidelity, str) and fidelity in self.proxies:
            return CachedScores(self._scorers[fidelity], self.cache)
        with_fidelity = getattr(self.base, "with_fidelity", None)
        if with_fidelity is None:
            raise ValueError(
                f"expected a fidelity in {list(self.proxies)} ({type(self.base).__name__} has no other), "
                f"got {fidelity!r}"
            )
        clone = ZeroCostFidelities.__new__(ZeroCostFidelities)
        clone.__dict__.update(self.__dict__, base=with_fidelity(fidelity))
        return clone

    def __call__(self, arch: str) -> dict[str, Any]:
        return self.base(arch)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names this class lacks; "base" itself is missing while unpickling.
        if name == "base" or "base" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.base, name)

    def __repr__(self) -> str:
        return f"ZeroCostFidelities({self.base!r}, proxies={list(self.proxies)})"
