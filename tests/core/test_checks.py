"""The one int / number check for user input, and its messages."""

from __future__ import annotations

import numpy as np
import pytest

from nas_gym.core.checks import ArgumentTypeError, check_int, check_number, is_finite_number, is_int


@pytest.mark.parametrize("value", [0, 7, np.int64(3), np.uint8(2)])
def test_integers_pass_as_python_ints(value) -> None:
    assert is_int(value) and type(check_int(value, "n")) is int


@pytest.mark.parametrize("value", [True, np.bool_(False), 1.0, "3", None, [1]])
def test_non_integers_are_refused_as_type_errors(value) -> None:
    assert not is_int(value)
    with pytest.raises(ArgumentTypeError, match=r"expected n as an int, got "):
        check_int(value, "n")
    # A TypeError and a ValueError both, so either kind of handler catches it.
    with pytest.raises(ValueError):
        check_int(value, "n")


def test_int_bounds_are_named_in_the_message() -> None:
    with pytest.raises(ValueError, match="expected seed as a non-negative int, got -1"):
        check_int(-1, "seed", minimum=0)
    with pytest.raises(ValueError, match="expected workers as a positive int or None, got 0"):
        check_int(0, "workers", minimum=1, none_ok=True)
    with pytest.raises(ValueError, match=r"expected depth as an int in 1..12, got 13"):
        check_int(13, "depth", minimum=1, maximum=12)
    assert check_int(None, "workers", minimum=1, none_ok=True) is None
    with pytest.raises(ArgumentTypeError, match="got None"):
        check_int(None, "workers", minimum=1)


def test_numbers() -> None:
    assert check_number(np.float32(0.5), "lr", minimum=0, strict=True) == 0.5
    assert check_number(3, "lr") == 3.0 and is_finite_number(2.5) and not is_finite_number(float("inf"))
    with pytest.raises(ValueError, match="expected lr as a positive number, got 0.0"):
        check_number(0, "lr", minimum=0, strict=True)
    with pytest.raises(ValueError, match="expected decay as a non-negative number, got -0.1"):
        check_number(-0.1, "decay", minimum=0)
    with pytest.raises(ValueError, match=r"expected p as a number in 0..1, got 1.5"):
        check_number(1.5, "p", minimum=0, maximum=1)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="expected x as a number"):
            check_number(bad, "x")
    with pytest.raises(ArgumentTypeError, match="expected x as a number, got True"):
        check_number(True, "x")


def test_no_copy_of_the_check_is_left_in_the_code() -> None:
    """The bool-excluding int test exists once, in nas_gym.core.checks."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"isinstance\(\w+, bool\) or not isinstance\(\w+, int\)")
    offenders = [
        str(path.relative_to(root))
        for folder in ("nas_gym", "agents")
        for path in (root / folder).rglob("*.py")
        if pattern.search(path.read_text())
    ]
    assert offenders == []


def test_a_strict_bound_with_a_maximum_reads_as_a_half_open_range() -> None:
    with pytest.raises(ValueError, match=r"expected width as a number in \(0.0, 4.0\], got 0.0"):
        check_number(0.0, "width", minimum=0.0, strict=True, maximum=4.0)
    assert check_number(4.0, "width", minimum=0.0, strict=True, maximum=4.0) == 4.0
