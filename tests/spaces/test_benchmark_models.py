"""The networks of the NAS-Bench-201 and NAS-Bench-Macro spaces: they build, run on 32x32 input,
and have the benchmarks' recorded sizes (the NAS-Bench-Macro table's sizes are checked against
them in tests/backends/test_macro.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nas_gym.spaces import make_space
from nas_gym.spaces.macro_model import build_macro_network
from nas_gym.spaces.nb201_model import build_nb201_network

ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ALL_CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
BEST_6111 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
# Node 1 is cut off from the input, yet feeds a conv and a pooling edge.
DEAD_NODE = "|none~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(autouse=True)
def one_thread():
    """Batches of two images: extra intra-op threads only contend (seconds per pass on a busy
    two-core machine instead of milliseconds)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_forward(model: nn.Module, num_classes: int = 10) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    model.train()
    logits = model(torch.randn(2, 3, 32, 32, generator=generator))
    assert logits.shape == (2, num_classes)
    assert torch.isfinite(logits).all()
    return logits


# ---------------------------------------------------------------------------- NAS-Bench-201
@pytest.mark.parametrize("arch", [ALL_NONE, ALL_CONV3, ALL_SKIP, BEST_6111, DEAD_NODE])
def test_nb201_networks_build_and_run(arch: str) -> None:
    check_forward(make_space("nb201").build_model(arch))


def test_nb201_random_networks_build_and_run() -> None:
    space = make_space("nb201")
    rng = np.random.default_rng(0)
    for _ in range(3):
        check_forward(space.build_model(space.sample(rng)))


def test_nb201_disconnected_cell_gives_constant_logits() -> None:
    model = make_space("nb201").build_model(ALL_NONE)
    logits = check_forward(model)
    assert torch.equal(logits[0], logits[1])
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    assert torch.equal(logits[0], logits[1]) and torch.equal(logits[1], logits[2])


def test_nb201_parameter_counts() -> None:
    # The smallest and largest CIFAR-10 networks of the benchmark: 0.073306 M and 1.531546 M
    # parameters in the NAS-Bench-201 API's records (all-none and all-nor_conv_3x3 cells).
    space = make_space("nb201")
    assert count_parameters(space.build_model(ALL_NONE)) == 73_306
    assert count_parameters(space.build_model(ALL_CONV3)) == 1_531_546
    # skip_connect, avg_pool_3x3 and none carry no parameters.
    assert count_parameters(space.build_model(ALL_SKIP)) == 73_306
    # One nor_conv_1x1 edge per cell: 15 cells of C x C weights plus a BatchNorm (2C).
    one_conv1 = count_parameters(space.build_model((2, 0, 0, 0, 0, 0)))
    assert one_conv1 - 73_306 == 5 * sum(c * c + 2 * c for c in (16, 32, 64))


def test_nb201_gradients_flow() -> None:
    model = make_space("nb201").build_model(BEST_6111)
    loss = check_forward(model).logsumexp(dim=1).mean()
    loss.backward()
    stem = model.stem[0].weight.grad
    assert stem is not None and torch.isfinite(stem).all() and stem.abs().sum() > 0


def test_nb201_network_options() -> None:
    small = build_nb201_network((3, 1, 2, 4, 0, 3), num_classes=100, channels=8, cells_per_stage=1)
    check_forward(small, num_classes=100)
    assert len(small.cells) == 5  # 3 cells and 2 reduction blocks
    with pytest.raises(ValueError, match=r"expected 6 operation codes in 0..4 .* got \(1, 2, 3\)"):
        build_nb201_network((1, 2, 3))
    with pytest.raises(ValueError, match=r"expected 6 operation codes in 0..4 .* got \(0, 0, 0, 0, 0, 5\)"):
        build_nb201_network((0, 0, 0, 0, 0, 5))
    with pytest.raises(ValueError, match="expected cells_per_stage as a positive int, got 0"):
        build_nb201_network((0,) * 6, cells_per_stage=0)


# ---------------------------------------------------------------------------- NAS-Bench-Macro
@pytest.mark.parametrize("arch", ["00000000", "22222222", "11111111", "22212220", "01201201"])
def test_macro_networks_build_and_run(arch: str) -> None:
    check_forward(make_space("macro").build_model(arch))


def test_macro_identity_layers_at_stride_two_still_reduce() -> None:
    model = build_macro_network((0,) * 8)
    strided = [m for m in model.features if isinstance(m, nn.Sequential)]
    assert len(strided) == 3
    assert [m[0].stride for m in strided] == [(2, 2)] * 3
    assert [m[0].out_channels for m in strided] == [64, 128, 256]
    assert sum(isinstance(m, nn.Identity) for m in model.features) == 5


def test_macro_network_options() -> None:
    check_forward(build_macro_network("12000000", num_classes=100), num_classes=100)
    with pytest.raises(ValueError, match=r"expected 8 block codes in 0..2 .* got '2221222'"):
        build_macro_network("2221222")
    with pytest.raises(ValueError, match="expected num_classes as a positive int"):
        build_macro_network("00000000", num_classes=0)
