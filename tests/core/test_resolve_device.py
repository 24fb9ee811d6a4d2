"""Device names: ``resolve_device`` accepts ``"auto"``, ``"cpu"``, ``"cuda"`` and ``"cuda:N"``."""

from __future__ import annotations

import pytest
import torch

from nas_gym.core.devices import resolve_device


def test_resolve_device() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    for bad in ("gpu", "cuda:x", "CPU", "", 0):
        with pytest.raises(ValueError, match=r"expected device 'auto', 'cpu', 'cuda' or 'cuda:N'"):
            resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"expected a CUDA device to be available for device='cuda:0'"):
            resolve_device("cuda:0")
