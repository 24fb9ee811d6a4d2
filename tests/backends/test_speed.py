"""Speed options of CIFAR-10 training: the per-device presets, the thread rule, determinism, and
process settings that are put back after training."""

from __future__ import annotations

import os

import pytest
import torch

from nas_gym.backends.cifar.speed import (
    CUBLAS_WORKSPACE_CONFIG,
    SpeedOptions,
    autocast,
    resolve_speed,
    speed_settings,
    training_speed,
)
from nas_gym.core.devices import default_threads


def test_fast_presets_per_device() -> None:
    assert resolve_speed("fast", "cuda") == SpeedOptions(bf16=True, channels_last=True, cudnn_benchmark=True)
    assert resolve_speed("fast", "cpu") == SpeedOptions(channels_last=True)
    assert resolve_speed("reference", "cuda") == SpeedOptions() == SpeedOptions.reference()
    own = SpeedOptions(compile=True)
    assert resolve_speed(own, "cpu") is own


def test_bad_speed_options_are_refused() -> None:
    with pytest.raises(
        ValueError, match=r"expected speed in \('fast', 'reference'\) or a SpeedOptions, got 'quick'"
    ):
        resolve_speed("quick", "cpu")
    with pytest.raises(ValueError, match=r"expected threads as a positive int or None, got 0"):
        SpeedOptions(threads=0)
    with pytest.raises(TypeError, match=r"expected threads as a positive int or None, got 1.5"):
        SpeedOptions(threads=1.5)  # type: ignore[arg-type]


def test_describe_leaves_the_thread_count_out() -> None:
    assert SpeedOptions(threads=1).describe() == SpeedOptions(threads=4).describe()
    assert SpeedOptions().describe() == "bf16=False,channels_last=False,cudnn_benchmark=False,compile=False"
    assert SpeedOptions(bf16=True).describe() != SpeedOptions().describe()


def test_deterministic_is_named_only_when_set_so_older_store_keys_stay_valid() -> None:
    assert "deterministic" not in SpeedOptions.fast("cpu").describe()
    assert SpeedOptions(deterministic=True).describe().endswith(",compile=False,deterministic=True")


def test_deterministic_presets_turn_autotuning_off() -> None:
    assert SpeedOptions.fast("cuda", deterministic=True) == SpeedOptions(
        bf16=True, channels_last=True, cudnn_benchmark=False, deterministic=True
    )
    assert SpeedOptions.fast("cpu", deterministic=True) == SpeedOptions(
        channels_last=True, deterministic=True
    )
    with pytest.raises(
        ValueError, match=r"expected cudnn_benchmark=False with deterministic=True.*got cudnn_benchmark=True"
    ):
        SpeedOptions(cudnn_benchmark=True, deterministic=True)


def test_deterministic_settings_apply_for_the_block_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    cudnn = torch.backends.cudnn
    before = (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled())
    assert before[1:] == (False, False)
    with pytest.raises(RuntimeError, match="inside"), speed_settings(SpeedOptions(deterministic=True)):
        assert (cudnn.benchmark, cudnn.deterministic) == (False, True)
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()  # refused, not warned about
        raise RuntimeError("inside")
    assert (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled()) == before
    # cuBLAS reads its workspace setting once per process: it stays.
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE_CONFIG == ":4096:8"
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    with speed_settings(SpeedOptions(deterministic=True)):
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"  # the user's own is kept


def test_training_speed_decides_the_thread_count() -> None:
    assert training_speed("fast", "cpu", None).threads == default_threads()
    assert training_speed("fast", "cuda", None).threads is None  # the process setting
    assert training_speed("fast", "cpu", 3).threads == 3
    assert training_speed(SpeedOptions(threads=2), "cpu", None).threads == 2
    assert training_speed(SpeedOptions(threads=2), "cpu", 2).threads == 2
    with pytest.raises(
        ValueError, match=r"expected threads=2 to agree with speed.threads, got speed.threads=1"
    ):
        training_speed(SpeedOptions(threads=1), "cpu", 2)
    with pytest.raises(ValueError, match=r"expected threads as a positive int or None, got 0"):
        training_speed("fast", "cpu", 0)


def test_speed_settings_are_put_back_even_after_an_error() -> None:
    threads, benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    speed = SpeedOptions(cudnn_benchmark=not benchmark, threads=threads + 1)
    with pytest.raises(RuntimeError, match="inside"), speed_settings(speed):
        assert (torch.get_num_threads(), torch.backends.cudnn.benchmark) == (threads + 1, not benchmark)
        raise RuntimeError("inside")
    assert (torch.get_num_threads(), torch.backends.cudnn.benchmark) == (threads, benchmark)


def test_autocast_only_under_bf16() -> None:
    a = torch.ones(4, 4)
    cpu = torch.device("cpu")
    with autocast(cpu, SpeedOptions(bf16=True)):
        assert (a @ a).dtype == torch.bfloat16
    with autocast(cpu, SpeedOptions()):
        assert (a @ a).dtype == torch.float32
