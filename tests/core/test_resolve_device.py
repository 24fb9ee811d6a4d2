"""Device names: ``resolve_device`` accepts ``"auto"``, ``"cpu"``, ``"cuda"`` and ``"cuda:N"``; an
explicit CUDA device is checked where the evaluation runs, never where the evaluator is built."""

from __future__ import annotations

import pytest
import torch

from nas_gym.core.devices import DEVICE_ENV, device_type_of, resolve_device


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


def test_a_bare_cuda_is_the_device_the_executor_assigned(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(DEVICE_ENV, "cuda:1")  # a Ray task on its second GPU
    with pytest.raises(ValueError, match=r"expected a CUDA device to be available for device='cuda:1'"):
        resolve_device("cuda")
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    with pytest.raises(ValueError, match=r"for device='cuda', got none"):
        resolve_device("cuda")  # an explicit CUDA device is not turned into the CPU


def _touches_cuda(*args: object) -> None:
    raise AssertionError("CUDA was asked while the trainer was built")


def test_an_explicit_cuda_device_is_checked_at_the_first_evaluation_not_when_built(
    cifar_dir, monkeypatch
) -> None:
    """A parent that builds the trainer and then forks workers (Gymnasium's AsyncVectorEnv) must
    not have touched CUDA: nothing of torch.cuda that may start it runs until the first call."""
    from nas_gym.backends.cifar.trainer import CifarTrainer

    for name in ("is_available", "init", "_lazy_init", "device_count", "current_device", "get_device_name"):
        monkeypatch.setattr(torch.cuda, name, _touches_cuda)
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)  # a CUDA build of torch
    for device in ("cuda", "cuda:3"):
        trainer = CifarTrainer("seed", budget="smoke", device=device, data_dir=cifar_dir)
        assert trainer.device_type == "cuda" and "device=cuda " in trainer.fingerprint
    # The first evaluation, in the process that trains, checks the device.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        ValueError, match=r"expected a CUDA device to be available for device='cuda:3', got none"
    ):
        trainer("k3-relu-max")


def test_a_torch_without_cuda_refuses_a_cuda_device_at_once(monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: False)
    with pytest.raises(
        ValueError,
        match=r"expected a CUDA device to be available for device='cuda', got a torch .* built without CUDA",
    ):
        device_type_of("cuda")
    assert device_type_of("cpu") == "cpu"
