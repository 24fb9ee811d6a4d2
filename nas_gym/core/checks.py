"""The checks of numbers given by users: one place for "an int >= 1, not a bool" and its message.

Python counts ``True`` as the int 1, so every count, index and seed taken from a user is checked with
:func:`check_int`, which refuses bools; real-valued settings go through :func:`check_number`, which
refuses bools, NaN and infinities. numpy scalars pass as the numbers they are.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal, overload


class ArgumentTypeError(TypeError, ValueError):
    """A value of the wrong type for a setting. A ``TypeError``, and a ``ValueError`` too, so that a
    caller that treats every bad input as a ``ValueError`` catches it as well."""


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or numpy) and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, _numpy_bool()))


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number (``int``, ``float``, numpy scalar), not a bool,
    NaN or an infinity."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, _numpy_bool()))
        and math.isfinite(value)
    )


def _numpy_bool() -> type:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return bool
    return np.bool_


def _bounds(minimum: float | None, maximum: float | None, strict: bool = False) -> str:
    if minimum is not None and maximum is not None:
        # A strict lower bound reads as a half-open range: "in (0.0, 4.0]".
        return f" in ({minimum}, {maximum}]" if strict else f" in {minimum}..{maximum}"
    if minimum is not None:
        return f" {'>' if strict else '>='} {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def _int_kind(minimum: int | None, maximum: int | None) -> str:
    if maximum is None and minimum == 0:
        return "a non-negative int"
    if maximum is None and minimum == 1:
        return "a positive int"
    return f"an int{_bounds(minimum, maximum)}"


@overload
def check_int(
    value: Any,
    name: str,
    *,
    minimum: int | None = ...,
    maximum: int | None = ...,
    none_ok: Literal[False] = ...,
) -> int: ...
@overload
def check_int(
    value: Any, name: str, *, minimum: int | None = ..., maximum: int | None = ..., none_ok: Literal[True]
) -> int | None: ...
def check_int(
    value: Any,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    none_ok: bool = False,
) -> int | None:
    """``value`` as a Python int within ``minimum..maximum`` (either may be open), or ``None`` when
    ``none_ok`` allows it.

    Raises:
        ArgumentTypeError: not an integer (a bool, a float, a string, ...).
        ValueError: out of range.

    Example:
        >>> check_int(3, "workers", minimum=1)
        3
        >>> check_int(True, "workers", minimum=1)
        Traceback (most recent call last):
        ...
        nas_gym.core.checks.ArgumentTypeError: expected workers as a positive int, got True
    """
    if value is None and none_ok:
        return None
    expected = f"expected {name} as {_int_kind(minimum, maximum)}{' or None' if none_ok else ''}"
    if not is_int(value):
        raise ArgumentTypeError(f"{expected}, got {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{expected}, got {value}")
    return value


def check_number(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    strict: bool = False,
    maximum: float | None = None,
    none_ok: bool = False,
) -> float | None:
    """``value`` as a finite Python float ``>= minimum`` (``> minimum`` when ``strict``) and
    ``<= maximum``, or ``None`` when ``none_ok`` allows it.

    Raises:
        ArgumentTypeError: not a real number (a bool, a string, ...).
        ValueError: NaN, an infinity, or out of range.
    """
    if value is None and none_ok:
        return None
    if maximum is None and minimum == 0:
        kind = "a positive number" if strict else "a non-negative number"
    else:
        kind = "a number" + _bounds(minimum, maximum, strict)
    expected = f"expected {name} as {kind}{' or None' if none_ok else ''}"
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, _numpy_bool())):
        raise ArgumentTypeError(f"{expected}, got {value!r}")
    value = float(value)
    too_low = minimum is not None and (value < minimum or (strict and value == minimum))
    if not math.isfinite(value) or too_low or (maximum is not None and value > maximum):
        raise ValueError(f"{expected}, got {value!r}")
    return value
