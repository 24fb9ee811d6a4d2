"""The training routine of the CIFAR-10 backend, on synthetic tensors: augmentation, FLOP counts,
seeding, the networks a budget builds, the loop, out-of-memory handling and ``torch.compile``."""

from __future__ import annotations

import dataclasses
import sys
import weakref

import pytest
import torch
from torch import nn

from nas_gym.backends.cifar import training
from nas_gym.backends.cifar.budget import Budget
from nas_gym.backends.cifar.speed import SpeedOptions
from nas_gym.backends.cifar.training import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    Normalize,
    accuracy,
    architecture_cost,
    augment_batch,
    build_network,
    compiled,
    count_flops,
    crop_flip_batch,
    crop_padding,
    derived_seed,
    fit,
    seeded_global_rng,
    train_network,
)
from nas_gym.spaces import NB201Space, SeedSpace

THREE_LAYERS = "k3-relu-max|k3-relu-max|k3-relu-max"
CPU = torch.device("cpu")
REFERENCE = SpeedOptions.reference()
FULL_SIZE = Budget(epochs=1, train_size=640, val_size=10, batch_size=32)
EIGHT_PIXELS = dataclasses.replace(FULL_SIZE, epochs=2, resolution=8)
"""20 steps per epoch on 8x8 images: every path of the loop in milliseconds per step."""


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: a second intra-op thread only contends (a conv of a 32x3x8x8 batch took 20 ms on
    two threads of a busy two-core machine, under 1 ms on one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _images(n: int = 6, size: int = 32) -> torch.Tensor:
    # Values 1..255 so that zero can only come from the padding.
    return torch.randint(
        1, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )


def _bright_or_dark(n: int = 640) -> tuple[torch.Tensor, torch.Tensor]:
    """8x8 images that are dark (label 0) or bright (label 1): learnable in a few steps."""
    labels = torch.arange(n) % 2
    images = torch.where(labels.view(n, 1, 1, 1) == 1, 200, 30).expand(n, 3, 8, 8).to(torch.uint8)
    return images.contiguous(), labels


# ------------------------------------------------------------------------------------ augmentation
def test_centre_crop_without_flip_is_the_identity() -> None:
    x = _images()
    offsets = torch.full((len(x), 2), 4)
    assert torch.equal(crop_flip_batch(x, offsets, torch.zeros(len(x), dtype=torch.bool)), x)


def test_flip_is_an_exact_mirror_of_the_flipped_images_only() -> None:
    x = _images()
    flip = torch.tensor([True, False, True, False, False, True])
    out = crop_flip_batch(x, torch.full((len(x), 2), 4), flip)
    assert torch.equal(out[flip], x[flip].flip(-1))
    assert torch.equal(out[~flip], x[~flip])


def test_crop_shifts_the_content_and_pads_with_zeros() -> None:
    x = _images(2)
    no_flip = torch.zeros(2, dtype=torch.bool)
    # Corner (0, 0) of the padded image: content moves 4 down and 4 right, zeros above and left.
    out = crop_flip_batch(x, torch.tensor([[0, 0], [0, 0]]), no_flip)
    assert torch.equal(out[:, :, 4:, 4:], x[:, :, :28, :28])
    assert (out[:, :, :4, :] == 0).all() and (out[:, :, :, :4] == 0).all()
    # Corner (8, 2): content moves 4 up and 2 right; zeros below and on the left.
    out = crop_flip_batch(x, torch.tensor([[8, 2], [8, 2]]), no_flip)
    assert torch.equal(out[:, :, :28, 2:], x[:, :, 4:, :30])
    assert (out[:, :, 28:, :] == 0).all() and (out[:, :, :, :2] == 0).all()
    assert (out[:, :, :28, 2:] != 0).all()


@pytest.mark.parametrize("size", [32, 16])
def test_augment_batch_gives_a_crop_or_flipped_crop_of_each_image(size: int) -> None:
    padding = crop_padding(size)
    x = _images(8, size)
    out = augment_batch(x, torch.Generator().manual_seed(1), padding)
    assert out.shape == x.shape and out.dtype == torch.uint8
    for image, augmented in zip(x, out):
        candidates = [
            crop_flip_batch(image[None], torch.tensor([[r, c]]), torch.tensor([f]), padding)[0]
            for r in range(2 * padding + 1)
            for c in range(2 * padding + 1)
            for f in (False, True)
        ]
        assert sum(torch.equal(augmented, c) for c in candidates) >= 1
    again = augment_batch(x, torch.Generator().manual_seed(1), padding)
    assert torch.equal(out, again)


def test_crop_padding_is_an_eighth_of_the_side() -> None:
    assert [crop_padding(size) for size in (32, 24, 16, 8)] == [4, 3, 2, 1]


def test_normalize_is_the_standard_cifar_normalisation() -> None:
    x = _images(2)
    expected = (x.float() / 255 - torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        CIFAR10_STD
    ).view(1, 3, 1, 1)
    out = Normalize(CPU, REFERENCE)(x)
    assert out.dtype == torch.float32 and torch.allclose(out, expected, atol=1e-5)
    assert Normalize(CPU, SpeedOptions(channels_last=True))(x).is_contiguous(
        memory_format=torch.channels_last
    )
    # bf16 inputs only on CUDA: on the CPU autocast leaves the first convolution in float32.
    assert Normalize(CPU, SpeedOptions(bf16=True))(x).dtype == torch.float32


# ------------------------------------------------------------------------------------ model facts
def test_count_flops_matches_the_closed_form() -> None:
    model = SeedSpace().build_model(THREE_LAYERS)
    expected = (
        32 * 32 * 32 * 3 * 9  # layer 1 at 32x32
        + 16 * 16 * 64 * 32 * 9  # layer 2 at 16x16
        + 8 * 8 * 128 * 64 * 9  # layer 3 at 8x8
        + 128 * 10  # head
    )
    assert count_flops(model) == expected
    assert model.training  # the count leaves the mode as it was
    # At 16x16 every convolution sees a quarter of the pixels; the head is the same.
    assert count_flops(model, resolution=16) == (expected - 128 * 10) // 4 + 128 * 10


def test_architecture_cost_is_the_full_size_network() -> None:
    model = SeedSpace().build_model(THREE_LAYERS)
    params = sum(p.numel() for p in model.parameters())
    assert architecture_cost(SeedSpace(), THREE_LAYERS) == (params, count_flops(model))


def test_derived_seeds_are_stable_and_independent() -> None:
    seed = derived_seed(0, "k3-relu-max", "init")
    assert seed == derived_seed(0, "k3-relu-max", "init")
    others = {derived_seed(1, "k3-relu-max", "init"), derived_seed(0, "k5-relu-max", "init")}
    others.add(derived_seed(0, "k3-relu-max", "data"))
    assert seed not in others and len(others) == 3
    assert 0 <= seed < 2**63


def test_seeded_global_rng_puts_the_callers_state_back() -> None:
    state = torch.get_rng_state()
    with seeded_global_rng(CPU, 5):
        first = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), state)
    with seeded_global_rng(CPU, 5):
        assert torch.equal(torch.rand(3), first)


# ------------------------------------------------------------------------------------ build_network
def _param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_build_network_is_seeded_and_in_the_speed_layout() -> None:
    first = build_network(SeedSpace(), THREE_LAYERS, FULL_SIZE, CPU, 0, SpeedOptions(channels_last=True))
    again = build_network(SeedSpace(), THREE_LAYERS, FULL_SIZE, CPU, 0, SpeedOptions(channels_last=True))
    other = build_network(SeedSpace(), THREE_LAYERS, FULL_SIZE, CPU, 1, SpeedOptions(channels_last=True))
    weights = [model[0].weight for model in (first, again, other)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])
    assert weights[0].is_contiguous(memory_format=torch.channels_last)


def test_build_network_applies_the_reductions_of_a_budget() -> None:
    full = build_network(SeedSpace(), THREE_LAYERS, FULL_SIZE, CPU, 0, REFERENCE)
    half = build_network(
        SeedSpace(), THREE_LAYERS, dataclasses.replace(FULL_SIZE, width=0.5), CPU, 0, REFERENCE
    )
    assert half[0].out_channels == full[0].out_channels // 2
    assert _param_count(half) < _param_count(full)
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    one_cell = build_network(NB201Space(), arch, dataclasses.replace(FULL_SIZE, cells=1), CPU, 0, REFERENCE)
    assert len(one_cell.cells) == 5  # one cell per stage and the two reduction blocks (17 in full)


def test_a_space_without_reductions_trains_under_full_size_budgets() -> None:
    class PlainSpace(SeedSpace):
        def build_model(self, arch, num_classes=10):  # type: ignore[override]
            return super().build_model(arch, num_classes)

    model = build_network(PlainSpace(), "k3-relu-max", FULL_SIZE, CPU, 0, REFERENCE)
    assert isinstance(model, nn.Sequential)
    with pytest.raises(TypeError, match="width"):
        build_network(
            PlainSpace(), "k3-relu-max", dataclasses.replace(FULL_SIZE, width=0.5), CPU, 0, REFERENCE
        )


# ------------------------------------------------------------------------------------ the loop
def test_fit_learns_a_trivial_task_and_reports_each_epoch() -> None:
    images, labels = _bright_or_dark()
    model = SeedSpace().build_model("k3-relu-avg", width=0.25)
    epochs: list[tuple[int, int]] = []
    problem = fit(
        model,
        images,
        labels,
        torch.arange(len(images)),
        EIGHT_PIXELS,
        REFERENCE,
        torch.Generator().manual_seed(0),
        progress=lambda epoch, total: epochs.append((epoch, total)),
    )
    assert problem is None and epochs == [(1, 2), (2, 2)]
    assert accuracy(model, images, labels, None, REFERENCE) > 0.95
    assert model.training  # accuracy() puts the model back into training mode


def test_fit_reports_a_diverged_loss() -> None:
    images, labels = _bright_or_dark()
    model = SeedSpace().build_model("k3-relu-max", width=0.25)
    problem = fit(
        model,
        images,
        labels,
        torch.arange(len(images)),
        dataclasses.replace(EIGHT_PIXELS, lr=1e30),
        REFERENCE,
        torch.Generator().manual_seed(0),
    )
    assert problem == "the training loss became NaN or infinite in epoch 1 of 2"


class _Constant(nn.Module):
    """Predicts class 1 for every image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.ones(len(x), dtype=torch.int64), 10).float()


def test_accuracy_on_all_images_or_a_subset() -> None:
    images = _images(10)
    labels = torch.tensor([1, 0] * 5)
    assert accuracy(_Constant(), images, labels, None, REFERENCE, batch_size=3) == 0.5
    assert accuracy(_Constant(), images, labels, torch.tensor([0, 2, 4, 1]), REFERENCE) == 0.75


# ------------------------------------------------------------------------------------ failures
@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"),
        RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
        RuntimeError("cuDNN error: CUDNN_STATUS_NOT_ENOUGH_WORKSPACE"),
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"),
        MemoryError(),
    ],
    ids=["cuda-oom", "cudnn", "cublas", "cudnn-workspace", "cpu-allocator", "memory-error"],
)
@pytest.mark.parametrize("test", [False, True])
def test_out_of_memory_is_a_status(monkeypatch: pytest.MonkeyPatch, error: BaseException, test: bool) -> None:
    """Memory is freed after the except block: by then the failed call's frames, and the tensors
    they held, are gone (inside it, the traceback keeps them alive)."""
    held: list[weakref.ref] = []
    freed: list[tuple] = []

    def out_of_memory(*args, **kwargs):
        activations = torch.ones(8)
        held.append(weakref.ref(activations))
        # A new instance: the parametrized one would keep its last traceback, and the frames.
        raise type(error)(*error.args)

    def free() -> None:
        freed.append((sys.exc_info()[0], held[0]()))

    monkeypatch.setattr(training, "_train", out_of_memory)
    monkeypatch.setattr(training, "free_accelerator_memory", free)
    metrics = train_network(SeedSpace(), THREE_LAYERS, FULL_SIZE, CPU, 0, REFERENCE, test=test)
    assert metrics["status"] == "oom" and metrics["error"].startswith(type(error).__name__)
    assert metrics["accuracy"] == 0.0 and metrics.get("test_accuracy") == (0.0 if test else None)
    assert (metrics["params"], metrics["flops"]) == architecture_cost(SeedSpace(), THREE_LAYERS)
    assert metrics["train_seconds"] >= 0 and freed == [(None, None)]


def test_other_errors_are_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(training, "_train", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        train_network(SeedSpace(), THREE_LAYERS, FULL_SIZE, CPU, 0, REFERENCE)


# ------------------------------------------------------------------------------------ torch.compile
def test_compiled_resets_dynamo_before_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: calls.append("reset"))
    monkeypatch.setattr(torch, "compile", lambda model, **options: calls.append(options) or model)
    model = nn.Linear(2, 2)
    assert compiled(model) is model
    assert calls == ["reset", {"fullgraph": True}]


ARCHS = [
    "k3-relu-max",
    "k5-relu-max",
    "k3-relu-avg",
    "k3-sigmoid-max",
    "k5-sigmoid-avg",
    "k3-relu-max|k3-relu-max",
    "k5-relu-max|k3-relu-avg",
    "k3-sigmoid-max|k5-relu-max",
    "k5-relu-avg|k5-relu-avg",
    "k3-relu-avg|k3-sigmoid-avg",
]


@pytest.mark.slow
def test_compile_keeps_compiling_past_the_recompile_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every architecture shares ``nn.Sequential.forward``: without the reset of :func:`compiled`,
    Dynamo hits its limit of 8 compilations of that code object and runs the 9th architecture and
    later ones eagerly, without an error."""
    assert len(ARCHS) > torch._dynamo.config.recompile_limit
    graphs: list[int] = []

    def counting_backend(graph: torch.fx.GraphModule, inputs: list[torch.Tensor]):
        graphs.append(len(graph.graph.nodes))
        return graph.forward  # runs the captured graph as it is: no code generation, milliseconds

    real_compile = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda model, **options: real_compile(model, backend=counting_backend, **options)
    )
    images, labels = _bright_or_dark()
    budget = dataclasses.replace(EIGHT_PIXELS, epochs=1)
    compiled_per_arch = []
    try:
        for arch in ARCHS:
            before = len(graphs)
            model = SeedSpace().build_model(arch, width=0.125)
            generator = torch.Generator().manual_seed(0)
            problem = fit(
                model,
                images,
                labels,
                torch.arange(len(images)),
                budget,
                SpeedOptions(compile=True),
                generator,
            )
            assert problem is None
            compiled_per_arch.append(len(graphs) - before)
    finally:
        torch._dynamo.reset()
    assert all(count >= 1 for count in compiled_per_arch), compiled_per_arch
