"""The network of NAS-Bench-Macro for one architecture (8 searchable layers).

- stem: 3x3 conv with 32 filters (no bias), BatchNorm, ReLU;
- three stages of 2, 3 and 3 searchable layers. The first layer of each stage has stride 2 and
  doubles the filters (32 -> 64 -> 128 -> 256); the others keep both;
- per layer one block: ``0`` identity, ``1`` MobileNetV2 inverted residual with kernel 3 and
  expansion 3, ``2`` the same with kernel 5 and expansion 6. An identity in a stride-2 position
  becomes a strided 1x1 conv (no bias) with BatchNorm, so the shape still changes. An inverted
  residual (1x1 expansion conv, BN, ReLU, depthwise kxk conv with the stride, BN, ReLU, 1x1
  projection conv, BN; no conv has a bias) adds its input back when its input and output shapes
  are equal;
- head: 1x1 conv to 1280 filters (no bias), BatchNorm, ReLU, global average pooling and a linear
  classifier.

With these choices the parameter count of every architecture equals the ``params`` recorded in
the benchmark's table.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas_gym.core.checks import check_int, check_number
from nas_gym.spaces.base import scaled_channels
from nas_gym.spaces.macro import BLOCKS, NUM_LAYERS

STAGES = (2, 3, 3)
"""Searchable layers per stage."""
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
_BLOCK_SHAPES = {"mb_k3_e3": (3, 3), "mb_k5_e6": (5, 6)}
"""``(kernel, expansion)`` of each inverted-residual choice."""


class InvertedResidual(nn.Module):
    """The MobileNetV2 block: expand (1x1), depthwise (``kernel`` x ``kernel``, ``stride``),
    project (1x1, linear); with a residual connection when the shape is kept."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel: int, expansion: int):
        super().__init__()
        hidden = in_channels * expansion
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, kernel, stride=stride, padding=kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.residual else out


def _layer(code: int, in_channels: int, out_channels: int, stride: int) -> nn.Module:
    name = BLOCKS[code]
    if name == "identity":
        if stride == 1 and in_channels == out_channels:
            return nn.Identity()
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )
    kernel, expansion = _BLOCK_SHAPES[name]
    return InvertedResidual(in_channels, out_channels, stride, kernel, expansion)


class MacroNetwork(nn.Module):
    """The NAS-Bench-Macro network of one architecture (see the module docstring)."""

    def __init__(self, arch: Sequence[int], num_classes: int = 10, width: float = 1.0):
        super().__init__()
        self.arch = _check_arch(arch)
        check_int(num_classes, "num_classes", minimum=1)
        stem = scaled_channels(STEM_CHANNELS, check_number(width, "width", minimum=0, strict=True))
        head = scaled_channels(HEAD_CHANNELS, width)
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem, 3, padding=1, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        codes = iter(self.arch)
        channels = stem
        for depth in STAGES:
            for i in range(depth):
                out_channels = 2 * channels if i == 0 else channels
                layers.append(_layer(next(codes), channels, out_channels, stride=2 if i == 0 else 1))
                channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Conv2d(channels, head, 1, bias=False),
            nn.BatchNorm2d(head),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(head, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.features(self.stem(x))))


def _check_arch(arch: Sequence[int]) -> tuple[int, ...]:
    expected = f"{NUM_LAYERS} block codes in 0..{len(BLOCKS) - 1} ({', '.join(BLOCKS)})"
    try:
        values = tuple(int(v) for v in arch)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"expected {expected}, got {arch!r}") from exc
    if len(values) != NUM_LAYERS or any(not 0 <= v < len(BLOCKS) for v in values):
        raise ValueError(f"expected {expected}, got {arch!r}")
    return values


def build_macro_network(arch: Sequence[int], num_classes: int = 10, width: float = 1.0) -> MacroNetwork:
    """The NAS-Bench-Macro network of ``arch``: one block code per searchable layer, in network
    order (0 identity, 1 inverted residual k3 e3, 2 inverted residual k5 e6). ``width`` multiplies
    every layer's channels (1: the benchmark's)."""
    return MacroNetwork(arch, num_classes=num_classes, width=width)
