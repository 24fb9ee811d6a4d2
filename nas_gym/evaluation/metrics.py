"""The metrics dict that every evaluator returns, checked and completed in one place."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

STATUSES = ("ok", "diverged", "oom", "failed")
"""``ok``: trained (or looked up) normally; ``diverged``: NaN/inf loss; ``oom``: out of memory;
``failed``: the evaluator raised."""


class EvaluatorOutputError(TypeError):
    """An evaluator returned something that is not a metrics dict."""


def normalize_metrics(raw: Any, measured_seconds: float) -> dict[str, Any]:
    """``raw`` as a complete metrics dict: ``accuracy`` (fraction), ``params``, ``flops``,
    ``train_seconds`` (the evaluator's own figure, else ``measured_seconds``), ``status``; any
    other keys of ``raw`` are kept."""
    if not isinstance(raw, Mapping):
        raise EvaluatorOutputError(
            f"expected the evaluator to return a dict with at least 'accuracy', got "
            f"{type(raw).__name__}"
        )
    metrics = dict(raw)
    status = metrics.get("status", "ok")
    if status not in STATUSES:
        raise EvaluatorOutputError(f"expected status in {STATUSES}, got {status!r}")
    metrics["status"] = status
    if "accuracy" not in metrics:
        if status == "ok":
            raise EvaluatorOutputError(
                f"expected the evaluator's dict to have 'accuracy', got keys {sorted(metrics)}"
            )
        metrics["accuracy"] = 0.0
    try:
        accuracy = float(metrics["accuracy"])
    except (TypeError, ValueError) as exc:
        raise EvaluatorOutputError(
            f"expected 'accuracy' as a number, got {metrics['accuracy']!r}"
        ) from exc
    if status == "ok" and not (math.isfinite(accuracy) and 0.0 <= accuracy <= 1.0):
        raise EvaluatorOutputError(
            f"expected 'accuracy' as a fraction in [0, 1], got {accuracy!r} "
            "(divide percentages by 100)"
        )
    metrics["accuracy"] = accuracy if math.isfinite(accuracy) else 0.0
    for key in ("params", "flops"):
        value = metrics.get(key)
        metrics[key] = None if value is None else int(value)
    seconds = metrics.get("train_seconds")
    metrics["train_seconds"] = float(measured_seconds if seconds is None else seconds)
    return metrics


def failure_metrics(status: str, error: str, measured_seconds: float) -> dict[str, Any]:
    """The metrics of an evaluation that did not finish normally."""
    if status not in STATUSES or status == "ok":
        raise ValueError(f"expected a failure status in {STATUSES[1:]}, got {status!r}")
    return {
        "accuracy": 0.0,
        "params": None,
        "flops": None,
        "train_seconds": float(measured_seconds),
        "status": status,
        "error": error,
    }
