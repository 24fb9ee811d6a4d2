"""The network of NAS-Bench-201 / NATS-Bench (topology space) for one cell architecture.

The layout is the benchmark's "tiny network" for 32x32 input:

- stem: 3x3 conv (``channels`` filters, no bias) and BatchNorm;
- three stages of ``cells_per_stage`` copies of the searched cell with ``channels``,
  ``2 * channels`` and ``4 * channels`` filters; between stages a residual reduction block (a
  ResNet basic block with stride 2: ReLU-conv3x3-BN twice, shortcut 2x2 average pooling and a 1x1
  conv) halves the resolution and doubles the filters;
- head: BatchNorm, ReLU, global average pooling and a linear classifier.

The cell is a DAG of 4 nodes; node 0 is the cell input, node ``i`` the sum over ``j < i`` of
``op_{i<-j}(node j)``, and node 3 the cell output. The operations keep shape: ``none`` (the
constant zero), ``skip_connect`` (identity), ``nor_conv_1x1`` / ``nor_conv_3x3`` (ReLU, conv
without bias, BatchNorm) and ``avg_pool_3x3`` (stride 1, padding 1, padding excluded from the
average).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas_gym.core.checks import check_int
from nas_gym.spaces.nb201 import EDGES, OPERATIONS

INITIAL_CHANNELS = 16
"""Channels of the stem and the first stage of the benchmark's network."""
CELLS_PER_STAGE = 5
"""Copies of the cell in each of the three stages of the benchmark's network."""


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution without bias, BatchNorm: the benchmark's ``nor_conv`` operation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__(
            # Not in place: the input node also feeds the other edges that leave it.
            nn.ReLU(inplace=False),
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False
            ),
            nn.BatchNorm2d(out_channels),
        )


class ResidualReduction(nn.Module):
    """The block between stages: a ResNet basic block with stride 2 whose shortcut is 2x2 average
    pooling followed by a 1x1 conv (no BatchNorm on the shortcut, as in the benchmark)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv_a = ReLUConvBN(in_channels, out_channels, 3, stride=2)
        self.conv_b = ReLUConvBN(out_channels, out_channels, 3)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


def _operation(code: int, channels: int) -> nn.Module | None:
    """The module of operation ``code`` on ``channels`` feature maps; ``None`` for ``none``."""
    name = OPERATIONS[code]
    if name == "none":
        return None
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    return nn.AvgPool2d(kernel_size=3, stride=1, padding=1, count_include_pad=False)


class NB201Cell(nn.Module):
    """One searched cell with ``channels`` input and output feature maps.

    ``none`` edges hold no module and add nothing. A node without any other incoming edge is the
    zero tensor, and the operations that read it still run: the result equals the benchmark's
    network, in which ``none`` multiplies its input by zero (a BatchNorm after a zero input
    outputs its bias, which is trained).
    """

    def __init__(self, arch: Sequence[int], channels: int):
        super().__init__()
        self.ops = nn.ModuleDict()
        # Incoming (source node, module key) pairs of nodes 1, 2 and 3.
        self._inputs: list[list[tuple[int, str]]] = [[] for _ in range(4)]
        for (to, src), code in zip(EDGES, arch):
            module = _operation(code, channels)
            if module is not None:
                key = f"{to}<-{src}"
                self.ops[key] = module
                self._inputs[to].append((src, key))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for to in (1, 2, 3):
            node: torch.Tensor | None = None
            for src, key in self._inputs[to]:
                out = self.ops[key](nodes[src])
                node = out if node is None else node + out
            nodes.append(torch.zeros_like(x) if node is None else node)
        return nodes[3]


class NB201Network(nn.Module):
    """The NAS-Bench-201 network of one cell architecture (see the module docstring)."""

    def __init__(
        self,
        arch: Sequence[int],
        num_classes: int = 10,
        channels: int = INITIAL_CHANNELS,
        cells_per_stage: int = CELLS_PER_STAGE,
    ):
        super().__init__()
        self.arch = _check_arch(arch)
        for name, value in (
            ("num_classes", num_classes),
            ("channels", channels),
            ("cells_per_stage", cells_per_stage),
        ):
            check_int(value, name, minimum=1)
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        blocks: list[nn.Module] = []
        width = channels
        for stage in range(3):
            if stage > 0:
                blocks.append(ResidualReduction(width, 2 * width))
                width *= 2
            blocks += [NB201Cell(self.arch, width) for _ in range(cells_per_stage)]
        self.cells = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.cells(self.stem(x))))


def _check_arch(arch: Sequence[int]) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in arch)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"expected {len(EDGES)} operation codes in 0..{len(OPERATIONS) - 1}, got {arch!r}"
        ) from exc
    if len(values) != len(EDGES) or any(not 0 <= v < len(OPERATIONS) for v in values):
        raise ValueError(
            f"expected {len(EDGES)} operation codes in 0..{len(OPERATIONS) - 1} "
            f"(edges {', '.join(f'{t}<-{s}' for t, s in EDGES)}), got {arch!r}"
        )
    return values


def build_nb201_network(
    arch: Sequence[int],
    num_classes: int = 10,
    channels: int = INITIAL_CHANNELS,
    cells_per_stage: int = CELLS_PER_STAGE,
) -> NB201Network:
    """The NAS-Bench-201 network of ``arch`` (operation codes of the edges 1<-0, 2<-0, 2<-1,
    3<-0, 3<-1, 3<-2; 0 ``none``, 1 ``skip_connect``, 2 ``nor_conv_1x1``, 3 ``nor_conv_3x3``,
    4 ``avg_pool_3x3``). The defaults are the benchmark's: 16 initial channels and 5 cells per
    stage. A cell whose output is disconnected from its input (all ``none``, say) outputs zeros,
    so the network still runs and predicts the same logits for every input."""
    return NB201Network(arch, num_classes=num_classes, channels=channels, cells_per_stage=cells_per_stage)
