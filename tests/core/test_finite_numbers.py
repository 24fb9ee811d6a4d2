"""``is_finite_number``: real, finite numbers of Python and numpy; never a bool."""

from __future__ import annotations

import numpy as np

from nas_gym.core.checks import is_finite_number


def test_is_finite_number() -> None:
    for value in (0, -3, 2.5, np.float32(1.5), np.int64(7)):
        assert is_finite_number(value)
    for value in (True, False, np.bool_(True), float("nan"), float("inf"), -np.inf, "1", None, 1 + 0j):
        assert not is_finite_number(value)
