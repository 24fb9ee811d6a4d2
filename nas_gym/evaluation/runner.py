"""The evaluation path behind every env: in-process cache, persistent store, the evaluator
itself, and the mapping of exceptions to a failure status."""

from __future__ import annotations

import functools
import os
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from nas_gym.core.devices import free_accelerator_memory
from nas_gym.core.errors import is_out_of_memory
from nas_gym.evaluation.metrics import failure_metrics, normalize_metrics
from nas_gym.evaluation.store import EvaluationStore

if TYPE_CHECKING:  # the executors live in the layer above and are handed in
    from nas_gym.parallel.executors import Executor

Evaluator = Callable[[str], dict[str, Any]]
"""Anything that takes the canonical architecture string and returns a metrics dict with at
least ``"accuracy"`` (a fraction)."""


FINAL_STATUSES = ("ok", "diverged")
"""Statuses of a finished evaluation: cached and stored. ``failed`` and ``oom`` are neither (the
next try may pass)."""


def declared_fingerprint(evaluator: Evaluator) -> str | None:
    """The evaluator's own ``fingerprint`` (a str attribute or property, or a method returning
    one), or ``None`` when it declares none."""
    fingerprint = getattr(evaluator, "fingerprint", None)
    if callable(fingerprint):
        fingerprint = fingerprint()
    return fingerprint if isinstance(fingerprint, str) else None


def _qualified_name(evaluator: Any) -> str:
    if isinstance(evaluator, functools.partial):
        arguments = [repr(a) for a in evaluator.args]
        arguments += [f"{k}={v!r}" for k, v in evaluator.keywords.items()]
        return f"functools.partial({', '.join([_qualified_name(evaluator.func), *arguments])})"
    target = evaluator if hasattr(evaluator, "__qualname__") else type(evaluator)
    return f"{target.__module__}.{target.__qualname__}"


def evaluator_fingerprint(evaluator: Evaluator) -> str:
    """The identity of an evaluator in the store: its ``fingerprint`` (built-in backends name
    backend, budget, seed and code version there), else its qualified name (for a
    ``functools.partial``, that of its function and a repr of its arguments).

    The fallback names the code, not what determines the results: every lambda of a module
    shares one name, and so do two instances of one class. :class:`EvaluationRunner` warns when
    a store is keyed by it.
    """
    fingerprint = declared_fingerprint(evaluator)
    return fingerprint if fingerprint is not None else _qualified_name(evaluator)


class EvaluationRunner:
    """Evaluates canonical architecture strings of one space with one evaluator.

    Finished results (status ``ok`` or ``diverged``) are cached in-process (``cached=True`` on a
    hit) and, with a ``store``, looked up before and written after each evaluation. An
    evaluator that raises gives status ``failed`` (``oom`` for out-of-memory) instead of
    propagating, so a long search goes on; those two statuses are neither cached nor stored:
    the next evaluation of that architecture runs the evaluator again (it may pass then).

    The store key of the results is :func:`evaluator_fingerprint`; with a ``store`` and an
    evaluator that declares no ``fingerprint``, a ``UserWarning`` says so at construction.
    """

    def __init__(
        self,
        evaluator: Evaluator,
        space: str,
        store: EvaluationStore | str | os.PathLike[str] | None = None,
    ):
        if not callable(evaluator):
            raise TypeError(
                "expected evaluator as a callable taking the architecture string and returning "
                f"a dict with 'accuracy', got {type(evaluator).__name__}"
            )
        self.evaluator = evaluator
        self.space = space
        self.fingerprint = evaluator_fingerprint(evaluator)
        if store is not None and declared_fingerprint(evaluator) is None:
            warnings.warn(
                "the evaluator declares no 'fingerprint', so its store key is its name "
                f"{self.fingerprint!r}, which other evaluators may share (every lambda of a module, "
                "every instance of a class) and would then be served its results; give it a "
                "'fingerprint' attribute: a string naming what determines its results (backend, "
                "settings, seed, code version)",
                UserWarning,
                stacklevel=2,
            )
        self.store = store if store is None or isinstance(store, EvaluationStore) else EvaluationStore(store)
        self._cache: dict[str, dict[str, Any]] = {}
        self.calls = 0
        """How many times the evaluator itself ran (cache and store hits excluded)."""

    def lookup(self, arch: str) -> dict[str, Any] | None:
        """The cached or stored metrics of ``arch``, or ``None``."""
        if arch in self._cache:
            return dict(self._cache[arch])
        if self.store is not None:
            stored = self.store.get(self.space, arch, self.fingerprint)
            if stored is not None:
                self._cache[arch] = stored
                return dict(stored)
        return None

    def evaluate(self, arch: str) -> tuple[dict[str, Any], bool]:
        """``(metrics, cached)`` for the canonical string ``arch``."""
        hit = self.lookup(arch)
        if hit is not None:
            return hit, True
        metrics = self.run_evaluator(self.evaluator, arch)
        self.calls += 1
        self.record(arch, metrics)
        return dict(metrics), False

    def evaluate_many(
        self, archs: Sequence[str], executor: Executor | None = None
    ) -> list[tuple[dict[str, Any], bool]]:
        """``(metrics, cached)`` for each canonical string of ``archs``, in the order of ``archs``.

        Cache and store hits are served directly. The misses, each architecture once, go to
        ``executor.evaluate`` together (``None``: evaluated here, one after another), then are recorded
        like :meth:`evaluate` records them. For finished results this is what a loop of
        :meth:`evaluate` over ``archs`` gives: a repeat of an architecture earlier in the batch
        is ``cached``. A repeat of an architecture whose evaluation in this batch failed
        (``failed`` or ``oom``) gets a copy of that result with ``cached=False``: it was not
        served by the cache (which holds no failures), and the batch runs each architecture
        once, so it is not tried again before the next batch.
        """
        results: list[tuple[dict[str, Any], bool] | None] = [None] * len(archs)
        misses: dict[str, list[int]] = {}
        for i, arch in enumerate(archs):
            hit = self.lookup(arch)
            if hit is not None:
                results[i] = (hit, True)
            else:
                misses.setdefault(arch, []).append(i)
        if misses:
            todo = list(misses)
            if executor is None:
                computed = [self.run_evaluator(self.evaluator, arch) for arch in todo]
            else:
                computed = executor.evaluate(self.evaluator, todo)
                if len(computed) != len(todo):
                    raise RuntimeError(
                        f"expected {len(todo)} results from {type(executor).__name__}.evaluate, "
                        f"got {len(computed)}"
                    )
            for arch, metrics in zip(todo, computed):
                self.calls += 1
                self.record(arch, metrics)
                first, *repeats = misses[arch]
                results[first] = (dict(metrics), False)
                final = metrics["status"] in FINAL_STATUSES
                for i in repeats:
                    results[i] = (dict(metrics), final)
        return results  # type: ignore[return-value]  # every index was filled above

    def record(self, arch: str, metrics: dict[str, Any]) -> None:
        """Remember ``metrics`` of ``arch`` when it is final (``ok`` or ``diverged``): in-process,
        and in the store when there is one. Failures are not remembered."""
        if metrics["status"] not in FINAL_STATUSES:
            return
        self._cache[arch] = dict(metrics)
        if self.store is not None:
            self.store.put(self.space, arch, self.fingerprint, metrics)

    @staticmethod
    def run_evaluator(evaluator: Evaluator, arch: str) -> dict[str, Any]:
        """Call ``evaluator(arch)`` and complete its metrics; exceptions become a failure status."""
        start = time.perf_counter()
        try:
            raw = evaluator(arch)
        except Exception as exc:  # noqa: BLE001 - any trainer failure must not end the search
            seconds = time.perf_counter() - start
            error = f"{type(exc).__name__}: {exc}"
            if not is_out_of_memory(exc):
                warnings.warn(
                    f"evaluation of {arch!r} failed with {error}; recorded with status 'failed'",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return failure_metrics("failed", error, seconds)
        else:
            return normalize_metrics(raw, time.perf_counter() - start)
        # Outside the except block: the traceback, and the tensors its frames hold, are gone.
        free_accelerator_memory()
        return failure_metrics("oom", error, seconds)
