"""The CUDA path of the CIFAR-10 trainer, checked on the CPU through fakes: compilation that cannot
fall back to eager unnoticed, a loop that never waits for the host, one upload of the data,
out-of-memory and sticky CUDA errors, determinism, the GPU identity in the fingerprint and the
``gpu`` budget. ``benchmarks/gpu_check.sh`` runs the same path on a real GPU."""

from __future__ import annotations

import ctypes
import gc
import sys
import warnings
import weakref
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from nas_gym.backends.cifar import data, trainer, training
from nas_gym.backends.cifar.budget import BUDGETS, Budget
from nas_gym.backends.cifar.data import CIFAR10_SUBDIR, SPLIT_FILES
from nas_gym.backends.cifar.speed import SpeedOptions, check_compile
from nas_gym.backends.cifar.trainer import CifarTrainer
from nas_gym.backends.cifar.training import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    GlobalAvgPool,
    Normalize,
    build_network,
    compile_guard,
    compiled,
    count_flops,
    fit,
    train_network,
)
from nas_gym.core import devices
from nas_gym.core.errors import StickyCudaError
from nas_gym.evaluation import runner
from nas_gym.evaluation.runner import EvaluationRunner
from nas_gym.spaces import NB201Space, SeedSpace

CPU = torch.device("cpu")
REFERENCE = SpeedOptions.reference()
THREE_LAYERS = "k3-relu-max|k3-relu-max|k3-relu-max"
NB201_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
EIGHT_PIXELS = Budget(epochs=2, train_size=640, val_size=10, batch_size=32, resolution=8)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def empty_cifar(tmp_path: Path) -> Path:
    """A data folder whose CIFAR-10 files exist (empty): enough for a trainer's construction."""
    folder = tmp_path / CIFAR10_SUBDIR
    folder.mkdir(parents=True)
    for names in SPLIT_FILES.values():
        for name in names:
            (folder / name).write_bytes(b"")
    return tmp_path


@pytest.fixture
def one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine that shows one H200 to the trainer's construction, which must not start CUDA."""

    def no_cuda_start() -> bool:
        raise AssertionError("CUDA was started (torch.cuda.is_available) where only NVML may be asked")

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_available", no_cuda_start)
    monkeypatch.setattr(trainer, "gpu_names", lambda: ("NVIDIA H200",))
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    # Not torch.backends.cudnn.version(): it asks every GPU's compute capability, starting CUDA.
    monkeypatch.setattr(torch.backends.cudnn, "is_available", lambda: True)
    monkeypatch.setattr(torch._C, "_cudnn", SimpleNamespace(getVersionInt=lambda: 91002), raising=False)


def _bright_or_dark(n: int = 640) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(n) % 2
    images = torch.where(labels.view(n, 1, 1, 1) == 1, 200, 30).expand(n, 3, 8, 8).to(torch.uint8)
    return images.contiguous(), labels


# ------------------------------------------------------------------------------------ 1. compile
def test_the_recompile_limit_is_an_error_not_a_silent_fall_back_to_eager() -> None:
    model = nn.Linear(4, 4)
    step_model = compiled(model, backend="eager")
    try:
        with pytest.raises(RuntimeError, match=r"recompile limit \(1\), got the limit hit.*compile=False"):
            with torch._dynamo.config.patch(recompile_limit=1), compile_guard():
                step_model(torch.zeros(2, 4))
                model.double()  # a new dtype: a recompilation, past the limit of 1
                step_model(torch.zeros(2, 4, dtype=torch.float64))
    finally:
        torch._dynamo.reset()


def test_a_graph_break_is_an_error_not_a_partly_eager_model() -> None:
    class Breaks(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + 1
            torch._dynamo.graph_break()
            return x * 2

    try:
        with pytest.raises(torch._dynamo.exc.Unsupported, match="graph_break"):
            compiled(Breaks(), backend="eager")(torch.zeros(2))
    finally:
        torch._dynamo.reset()


def test_compile_is_refused_on_the_cpu_and_warned_about_for_short_budgets(empty_cifar, one_gpu) -> None:
    with pytest.raises(ValueError, match=r"expected compile=False on device type 'cpu'.*got compile=True"):
        CifarTrainer(
            "seed", budget="smoke", device="cpu", data_dir=empty_cifar, speed=SpeedOptions(compile=True)
        )
    compiling = SpeedOptions.fast("cuda", compile=True)
    with pytest.warns(UserWarning, match=r"compile=True for a budget of 430 optimiser steps.*10000 steps"):
        cuda = CifarTrainer("seed", budget="gpu", device="cuda", data_dir=empty_cifar, speed=compiling)
    with pytest.warns(UserWarning, match=r"a budget of 31 optimiser steps"):
        cuda.with_fidelity("smoke")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_compile(compiling, "cuda", 10_000)  # long enough: no warning
        check_compile(SpeedOptions(), "cpu", 1)  # no compile: nothing to check


# ------------------------------------------------------------------------------------ 2. the loop
def test_count_flops_runs_on_the_meta_device_whatever_the_models_device() -> None:
    """A pass on the model's own device would make cuDNN autotune a 1-image shape that training
    never uses (and allocate activations); on meta it computes nothing."""
    model = SeedSpace().build_model(THREE_LAYERS).to(memory_format=torch.channels_last)
    weight = model[0].weight
    before = weight.detach().clone()
    seen: list[str] = []
    model[0].register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].device.type))
    expected = 32 * 32 * 32 * 3 * 9 + 16 * 16 * 64 * 32 * 9 + 8 * 8 * 128 * 64 * 9 + 128 * 10
    assert count_flops(model) == expected
    assert seen == ["meta"]
    assert model[0].weight is weight and torch.equal(weight, before) and weight.device == CPU
    assert model[1].running_mean.device == CPU and model.training


def test_the_step_loop_never_waits_for_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """One host sync per epoch (the NaN check of the summed loss), none per step: on a GPU a
    ``.item()`` per step drains the queue of kernels every step."""
    syncs: list[str] = []
    for name in ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__"):
        original = getattr(torch.Tensor, name)

        def recording(self, *args, _name=name, _original=original, **kwargs):
            syncs.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, recording)
    images, labels = _bright_or_dark()
    model = SeedSpace().build_model("k3-relu-avg", width=0.25)
    problem = fit(
        model,
        images,
        labels,
        torch.arange(len(images)),
        EIGHT_PIXELS,
        REFERENCE,
        torch.Generator().manual_seed(0),
    )
    assert problem is None
    assert syncs == ["__bool__"] * EIGHT_PIXELS.epochs  # 20 steps per epoch, one sync each epoch


def test_batches_are_normalised_straight_into_the_compute_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under bf16 on CUDA the uint8 batch becomes bf16 at once: no float32 copy of the batch (twice
    the memory traffic) that the first convolution would cast again. Faked here by making bf16
    the compute dtype of the CPU."""
    assert training.compute_dtype(torch.device("cuda"), SpeedOptions(bf16=True)) == torch.bfloat16
    assert training.compute_dtype(torch.device("cuda"), REFERENCE) == torch.float32
    assert training.compute_dtype(CPU, SpeedOptions(bf16=True)) == torch.float32
    monkeypatch.setattr(training, "compute_dtype", lambda device, speed: torch.bfloat16)
    x = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = Normalize(CPU, SpeedOptions(bf16=True, channels_last=True))(x)
    assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)
    std, mean = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1), torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    scale, shift = (1.0 / (255.0 * std)).bfloat16(), (-mean / std).bfloat16()
    assert torch.equal(out, x.bfloat16().mul_(scale).add_(shift))
    via_float32 = ((x.float() / 255 - mean) / std).bfloat16()
    assert not torch.equal(out, via_float32)  # the test tells the two paths apart
    assert torch.allclose(out.float(), via_float32.float(), atol=0.05)  # a few bf16 steps at most


def _uploads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """``(device type, non_blocking)`` of every ``Tensor.to`` that leaves the CPU."""
    uploads: list[tuple[str, bool]] = []
    original = torch.Tensor.to

    def recording(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if out.device.type != self.device.type:
            uploads.append((out.device.type, bool(kwargs.get("non_blocking", False))))
        return out

    monkeypatch.setattr(torch.Tensor, "to", recording)
    return uploads


def test_normalisation_constants_are_uploaded_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tensor built on CUDA from Python floats is a blocking copy: once per process, not per
    evaluation. The meta device stands in for CUDA."""
    training._normalization.cache_clear()
    uploads = _uploads(monkeypatch)
    meta = torch.device("meta")
    first, again = Normalize(meta, REFERENCE), Normalize(meta, REFERENCE)
    assert first.scale is again.scale and first.shift is again.shift
    assert uploads == [("meta", True), ("meta", True)]
    training._normalization.cache_clear()


@pytest.fixture(scope="module")
def synthetic_cifar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    data.write_synthetic_cifar10(root)
    return root


def test_the_data_is_uploaded_once_per_process_without_blocking(synthetic_cifar, monkeypatch) -> None:
    data.clear_cache()
    uploads = _uploads(monkeypatch)
    meta = torch.device("meta")
    try:
        images, labels = data.cifar10_on_device(meta, synthetic_cifar)
        assert images.shape == (50_000, 3, 32, 32) and images.device == meta
        assert data.cifar10_on_device(meta, synthetic_cifar)[0] is images
        assert data.cifar10_on_device(meta, synthetic_cifar, resolution=16)[0].shape[-1] == 16
        assert uploads == [("meta", True), ("meta", True)]  # images and labels, once
        data.split_on_device(meta, 640, 10)
        data.split_on_device(meta, 640, 10)
        assert uploads[2:] == [("meta", True), ("meta", True)]  # the indices, once
    finally:
        data.clear_cache()


# ------------------------------------------------------------------------------------ 3. failures
def test_free_accelerator_memory_collects_then_empties_the_cuda_cache(monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(gc, "collect", lambda: calls.append("collect"))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    devices.free_accelerator_memory()
    assert calls == ["collect", "empty_cache"]
    # Where CUDA never started there is no cache, and asking for one must not start it.
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    devices.free_accelerator_memory()
    assert calls == ["collect", "empty_cache", "collect"]


def test_runner_and_trainer_share_one_free_function() -> None:
    assert (
        runner.free_accelerator_memory is training.free_accelerator_memory is devices.free_accelerator_memory
    )
    assert not hasattr(runner, "_free_accelerator_memory") and not hasattr(training, "free_memory")


def test_runner_frees_memory_once_the_failed_call_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside the ``except`` block the traceback holds the evaluator's frames and their tensors,
    so freeing there gives nothing back."""
    held: list[weakref.ref] = []
    freed: list[tuple] = []

    def evaluator(arch: str) -> dict:
        activations = torch.ones(8)
        held.append(weakref.ref(activations))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")

    monkeypatch.setattr(
        runner, "free_accelerator_memory", lambda: freed.append((sys.exc_info()[0], held[0]()))
    )
    metrics = EvaluationRunner.run_evaluator(evaluator, "k3-relu-max")
    assert metrics["status"] == "oom" and "Tried to allocate" in metrics["error"]
    assert freed == [(None, None)]


@pytest.mark.parametrize(
    "message",
    ["CUDNN_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"],
)
def test_runner_counts_cudnn_and_cublas_allocation_failures_as_oom(message: str) -> None:
    def evaluator(arch: str) -> dict:
        raise RuntimeError(f"CUDA error: {message}")

    assert EvaluationRunner.run_evaluator(evaluator, "k3-relu-max")["status"] == "oom"


def test_a_sticky_cuda_error_raises_a_marker_and_frees_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    illegal = RuntimeError("CUDA error: an illegal memory access was encountered")
    freed: list[None] = []

    def broken(*args, **kwargs):
        raise illegal

    monkeypatch.setattr(training, "_train", broken)
    monkeypatch.setattr(training, "free_accelerator_memory", lambda: freed.append(None))
    with pytest.raises(
        StickyCudaError, match=r"CUDA context of this process is unusable.*replace this process"
    ) as info:
        train_network(SeedSpace(), "k3-relu-max", EIGHT_PIXELS, CPU, 0, REFERENCE)
    assert info.value.__cause__ is illegal and freed == []

    def evaluator(arch: str) -> dict:
        return train_network(SeedSpace(), arch, EIGHT_PIXELS, CPU, 0, REFERENCE)

    # What an executor sees from a worker: a failure whose error names the marker first.
    with pytest.warns(RuntimeWarning, match="StickyCudaError"):
        metrics = EvaluationRunner.run_evaluator(evaluator, "k3-relu-max")
    assert metrics["status"] == "failed" and metrics["error"].startswith("StickyCudaError: ")


# ------------------------------------------------------------------------------------ 4. determinism
@pytest.mark.parametrize(("space", "arch"), [(SeedSpace(), THREE_LAYERS), (NB201Space(), NB201_CELL)])
def test_deterministic_networks_pool_by_a_mean_not_adaptive_pooling(space, arch) -> None:
    """``AdaptiveAvgPool2d``'s CUDA backward adds atomically, and deterministic mode refuses it;
    the mean over height and width is the same function."""
    plain = build_network(space, arch, EIGHT_PIXELS, CPU, 0, REFERENCE)
    determined = build_network(space, arch, EIGHT_PIXELS, CPU, 0, SpeedOptions(deterministic=True))
    assert any(isinstance(m, nn.AdaptiveAvgPool2d) for m in plain.modules())
    assert not any(isinstance(m, nn.AdaptiveAvgPool2d) for m in determined.modules())
    assert any(isinstance(m, GlobalAvgPool) for m in determined.modules())
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    plain.eval(), determined.eval()
    assert torch.allclose(plain(x), determined(x), atol=1e-6)
    assert plain.state_dict().keys() == determined.state_dict().keys()


def test_fingerprint_names_gpu_model_cuda_and_cudnn(empty_cifar, one_gpu, monkeypatch) -> None:
    cuda = CifarTrainer("seed", budget="smoke", device="cuda", data_dir=empty_cifar)
    assert " device=cuda gpu='NVIDIA H200' cuda=12.8 cudnn=91002 speed=(" in cuda.fingerprint
    cpu = CifarTrainer("seed", budget="smoke", device="cpu", data_dir=empty_cifar)
    assert " gpu=" not in cpu.fingerprint and " cudnn=" not in cpu.fingerprint
    deterministic = CifarTrainer(
        "seed",
        budget="smoke",
        device="cuda",
        data_dir=empty_cifar,
        speed=SpeedOptions.fast("cuda", deterministic=True),
    )
    assert "cudnn_benchmark=False,compile=False,deterministic=True)" in deterministic.fingerprint
    fingerprints = {cuda.fingerprint, deterministic.fingerprint}
    for owner, attribute, value in [
        (trainer, "gpu_names", lambda: ("NVIDIA A100-SXM4-80GB",)),
        (torch.version, "cuda", "12.4"),
        (torch._C, "_cudnn", SimpleNamespace(getVersionInt=lambda: 90100)),
    ]:
        monkeypatch.setattr(owner, attribute, value)
        fingerprints.add(
            CifarTrainer("seed", budget="smoke", device="cuda", data_dir=empty_cifar).fingerprint
        )
    assert len(fingerprints) == 5


class _FakeNvml:
    """The few NVML calls :func:`~nas_gym.backends.cifar.trainer.gpu_names` makes, on two GPUs."""

    names = {1: b"NVIDIA H200", 2: b"NVIDIA A100-SXM4-80GB"}

    def __init__(self) -> None:
        self.calls: list[str] = []

    def nvmlInit_v2(self) -> int:
        self.calls.append("init")
        return 0

    def nvmlShutdown(self) -> int:
        self.calls.append("shutdown")
        return 0

    def nvmlDeviceGetCount_v2(self, count) -> int:
        count._obj.value = 2
        return 0

    def nvmlDeviceGetHandleByIndex_v2(self, index: int, handle) -> int:
        handle._obj.value = index + 1
        return 0

    def nvmlDeviceGetHandleByUUID(self, uuid: bytes, handle) -> int:
        handle._obj.value = 2 if uuid == b"GPU-a100" else 1
        return 0

    def nvmlDeviceGetName(self, handle: ctypes.c_void_p, name, length: int) -> int:
        name.value = self.names[handle.value]
        return 0


@pytest.mark.parametrize(
    ("visible", "names"),
    [
        (None, ("NVIDIA H200", "NVIDIA A100-SXM4-80GB")),
        ("1", ("NVIDIA A100-SXM4-80GB",)),
        ("GPU-a100,0", ("NVIDIA A100-SXM4-80GB", "NVIDIA H200")),
        ("0,7,1", ("NVIDIA H200",)),  # CUDA stops at the first invalid entry
        ("", ()),
    ],
)
def test_gpu_names_come_from_nvml_without_starting_cuda(monkeypatch, visible, names) -> None:
    nvml = _FakeNvml()
    monkeypatch.setattr(trainer.ctypes, "CDLL", lambda name: nvml)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    trainer.gpu_names.cache_clear()
    try:
        assert trainer.gpu_names() == names
    finally:
        trainer.gpu_names.cache_clear()
    assert nvml.calls == ["init", "shutdown"]


def test_gpu_names_is_empty_without_nvml(monkeypatch) -> None:
    def missing(name: str):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(trainer.ctypes, "CDLL", missing)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    trainer.gpu_names.cache_clear()
    try:
        assert trainer.gpu_names() == ()
        assert trainer.cuda_stack().startswith("gpu='unknown' cuda=")
    finally:
        trainer.gpu_names.cache_clear()


# ------------------------------------------------------------------------------------ 5. the gpu budget
def test_auto_trains_the_gpu_budget_on_cuda(empty_cifar, one_gpu) -> None:
    cuda = CifarTrainer("seed", device="cuda", data_dir=empty_cifar)
    assert cuda.budget is BUDGETS["gpu"] and cuda.budget_name == cuda.fidelity == "gpu"
    assert "budget=(epochs=10,train_size=45000,val_size=5000,batch_size=1024,lr=0.2," in cuda.fingerprint
    assert cuda.fidelities == ("smoke", "cpu-proxy", "proxy", "gpu", "full")
