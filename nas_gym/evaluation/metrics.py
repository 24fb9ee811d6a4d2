"""The metrics dict that every evaluator returns, checked and completed in one place."""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from typing import Any

from nas_gym.core.checks import is_finite_number

STATUSES = ("ok", "diverged", "oom", "failed")
"""``ok``: trained (or looked up) normally; ``diverged``: NaN/inf loss; ``oom``: out of memory;
``failed``: the evaluator raised."""


_CORE_KEYS = ("accuracy", "params", "flops", "train_seconds", "status")
"""Keys that :func:`normalize_metrics` converts itself."""
_JSON_TYPES = (
    "None, bool, int, float, str, a list, a tuple, a dict with str keys, a numpy scalar or a 0-d array"
)


class EvaluatorOutputError(TypeError):
    """An evaluator returned something that is not a metrics dict."""


def _json_safe(value: Any, where: str) -> Any:
    """``value`` as plain Python JSON types: numpy scalars and 0-d arrays (anything with ``ndim``
    0 and ``item()``, torch's 0-d tensors included) become their Python scalar, tuples become
    lists, subclasses of the scalar types (``numpy.float64``, ``numpy.str_``, enums) become the
    base type. ``where`` names the value in the error."""
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_json_safe(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        safe = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise EvaluatorOutputError(
                    f"expected str keys in the evaluator's value {where}, got the key {key!r} "
                    f"({type(key).__name__})"
                )
            safe[str(key)] = _json_safe(item, f"{where}[{key!r}]")
        return safe
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        scalar = value.item()
        if scalar is None or isinstance(scalar, (bool, int, float, str)):
            return _json_safe(scalar, where)
    raise EvaluatorOutputError(
        f"expected the evaluator's value {where} as {_JSON_TYPES} (it is stored as JSON; convert "
        f"arrays with .tolist()), got {type(value).__module__}.{type(value).__qualname__}: "
        f"{reprlib.repr(value)}"
    )


def normalize_metrics(raw: Any, measured_seconds: float) -> dict[str, Any]:
    """``raw`` as a complete metrics dict: ``accuracy`` (fraction), ``params``, ``flops``,
    ``train_seconds`` (the evaluator's own figure, else ``measured_seconds``), ``status``; any
    other keys of ``raw`` are kept, as plain JSON types (the store saves them as JSON):
    numpy scalars and 0-d arrays become Python scalars, tuples become lists.

    Raises:
        EvaluatorOutputError: ``raw`` is not a dict with str keys, lacks ``accuracy`` when
            ``ok``, has a bad status or accuracy (``None`` is the accuracy of a zero-cost result,
            which then needs a finite ``score`` when ``ok``), or holds a value with no JSON form (the
            message names its key and type).
    """
    if not isinstance(raw, Mapping):
        raise EvaluatorOutputError(
            f"expected the evaluator to return a dict with at least 'accuracy', got {type(raw).__name__}"
        )
    for key in raw:
        if not isinstance(key, str):
            raise EvaluatorOutputError(
                f"expected str keys in the evaluator's dict, got the key {key!r} ({type(key).__name__})"
            )
    metrics = {
        key: value if key in _CORE_KEYS else _json_safe(value, repr(key)) for key, value in raw.items()
    }
    status = metrics.get("status", "ok")
    if status not in STATUSES:
        raise EvaluatorOutputError(f"expected status in {STATUSES}, got {status!r}")
    metrics["status"] = str(status)
    if "accuracy" not in metrics:
        if status == "ok":
            raise EvaluatorOutputError(
                f"expected the evaluator's dict to have 'accuracy', got keys {sorted(metrics)}"
            )
        metrics["accuracy"] = 0.0
    if metrics["accuracy"] is None and "score" in metrics:
        # A zero-cost proxy trains nothing: no accuracy; its score is the reward (objectives.accuracy).
        _check_score(metrics["score"], status)
        return _complete_costs(metrics, measured_seconds)
    try:
        accuracy = float(metrics["accuracy"])
    except (TypeError, ValueError) as exc:
        raise EvaluatorOutputError(f"expected 'accuracy' as a number, got {metrics['accuracy']!r}") from exc
    if status == "ok" and not (math.isfinite(accuracy) and 0.0 <= accuracy <= 1.0):
        raise EvaluatorOutputError(
            f"expected 'accuracy' as a fraction in [0, 1], got {accuracy!r} (divide percentages by 100)"
        )
    metrics["accuracy"] = accuracy if math.isfinite(accuracy) else 0.0
    return _complete_costs(metrics, measured_seconds)


def _check_score(score: Any, status: str) -> None:
    if status == "ok" and not is_finite_number(score):
        raise EvaluatorOutputError(
            f"expected 'score' as a finite number when 'accuracy' is None (a zero-cost result), got {score!r}"
        )


def _complete_costs(metrics: dict[str, Any], measured_seconds: float) -> dict[str, Any]:
    """``params`` / ``flops`` as ints or None and ``train_seconds`` as a float, in place."""
    for key in ("params", "flops"):
        value = metrics.get(key)
        try:
            metrics[key] = None if value is None else int(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise EvaluatorOutputError(f"expected {key!r} as an int or None, got {value!r}") from exc
    seconds = metrics.get("train_seconds")
    try:
        metrics["train_seconds"] = float(measured_seconds if seconds is None else seconds)
    except (TypeError, ValueError) as exc:
        raise EvaluatorOutputError(f"expected 'train_seconds' as a number or None, got {seconds!r}") from exc
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
