"""The ``"seed"`` space: a plain chain of 1 to 10 conv layers (the default of ``NASCifar-v0``).

Per layer three decisions: kernel 3x3 or 5x5, activation ReLU or sigmoid, pooling max or avg.
The depth is the first decision of an episode, so each architecture has exactly one action
sequence and the space holds ``sum(8**n for n in 1..10)`` = 1,227,133,512 architectures.

What the design leaves open, decided here so that every architecture builds and trains on 32x32:

- **Filters.** Layer ``i`` (0-based) has ``min(base_channels * 2**i, max_channels)`` output
  channels (defaults 32 and 256): the channels double as each pooling halves the feature map.
- **Conv block.** ``Conv2d(kernel, padding=kernel // 2, bias=False) -> BatchNorm2d ->
  activation -> pooling``. BatchNorm keeps deep sigmoid chains trainable (without it a
  10-layer sigmoid network stays at chance for any short budget).
- **Pooling.** 2x2 with stride 2 while the feature map is larger than 1x1. From the sixth
  layer on the map is 1x1 (32 / 2**5) and the pooling choice becomes the identity; it is still a
  decision of the architecture (two strings that differ only there name different architectures
  that compute the same function).
- **Head.** Global average pooling, then one linear layer to the classes.

Canonical string: the layers joined by ``|``, each ``k<kernel>-<activation>-<pool>``, e.g.
``"k3-relu-max|k5-sigmoid-avg"``.
"""

from __future__ import annotations

from collections.abc import Sequence

from nas_gym.spaces.base import Arch, Decision, InvalidArchitectureError, SearchSpace, scaled_channels

KERNELS = (3, 5)
ACTIVATIONS = ("relu", "sigmoid")
POOLS = ("max", "avg")

_DEPTH_KIND = "depth"
_LAYER_DECISIONS = (
    ("kernel", tuple(f"k{k}" for k in KERNELS)),
    ("activation", ACTIVATIONS),
    ("pool", POOLS),
)


class SeedSpace(SearchSpace):
    """Chains of ``min_layers`` to ``max_layers`` conv layers (see the module docstring).

    Args:
        max_layers: the deepest network (default 10).
        min_layers: the shallowest network (default 1).
        base_channels: filters of the first layer (default 32).
        max_channels: the cap on filters per layer (default 256).
    """

    name = "seed"

    def __init__(
        self,
        max_layers: int = 10,
        min_layers: int = 1,
        base_channels: int = 32,
        max_channels: int = 256,
    ):
        if not (isinstance(min_layers, int) and isinstance(max_layers, int)):
            raise TypeError(f"expected integer layer bounds, got {min_layers!r}, {max_layers!r}")
        if not 1 <= min_layers <= max_layers:
            raise ValueError(f"expected 1 <= min_layers <= max_layers, got {min_layers} and {max_layers}")
        if base_channels < 1 or max_channels < base_channels:
            raise ValueError(
                f"expected 1 <= base_channels <= max_channels, got {base_channels} and {max_channels}"
            )
        self.min_layers = min_layers
        self.max_layers = max_layers
        self.base_channels = base_channels
        self.max_channels = max_channels
        self._depth = Decision("depth", _DEPTH_KIND, tuple(str(n) for n in range(min_layers, max_layers + 1)))
        self._layer = [
            [Decision(f"layer{i + 1}.{kind}", kind, choices) for kind, choices in _LAYER_DECISIONS]
            for i in range(max_layers)
        ]

    # ------------------------------------------------------------------ structure
    def depth_of(self, arch: Sequence[int]) -> int:
        """The number of conv layers of a (possibly partial) architecture; needs ``arch[0]``."""
        return self.min_layers + int(arch[0])

    def next_decision(self, prefix: Sequence[int]) -> Decision | None:
        if len(prefix) == 0:
            return self._depth
        i = len(prefix) - 1
        if i >= 3 * self.depth_of(prefix):
            return None
        return self._layer[i // 3][i % 3]

    @property
    def max_decisions(self) -> int:
        return 1 + 3 * self.max_layers

    @property
    def slot_choices(self) -> tuple[int, ...]:
        return (self._depth.num_choices,) + (2,) * (3 * self.max_layers)

    @property
    def kinds(self) -> tuple[Decision, ...]:
        return (self._depth, *self._layer[0])

    @property
    def size(self) -> int:
        return sum(8**n for n in range(self.min_layers, self.max_layers + 1))

    # ------------------------------------------------------------------ strings
    def format(self, arch: Sequence[int]) -> str:
        values = self.validate(arch)
        layers = []
        for i in range(self.depth_of(values)):
            k, a, p = values[1 + 3 * i : 4 + 3 * i]
            layers.append(f"k{KERNELS[k]}-{ACTIVATIONS[a]}-{POOLS[p]}")
        return "|".join(layers)

    def parse(self, text: str) -> Arch:
        if not isinstance(text, str):
            raise InvalidArchitectureError(f"expected a string, got {type(text).__name__}")
        example = "'k3-relu-max|k5-sigmoid-avg'"
        layers = text.split("|") if text else []
        if not self.min_layers <= len(layers) <= self.max_layers:
            raise InvalidArchitectureError(
                f"expected {self.min_layers} to {self.max_layers} layers joined by '|' "
                f"(e.g. {example}), got {len(layers)} in {text!r}"
            )
        arch = [len(layers) - self.min_layers]
        for n, layer in enumerate(layers, start=1):
            parts = layer.split("-")
            kernel_labels = self._layer[0][0].choices
            if (
                len(parts) != 3
                or parts[0] not in kernel_labels
                or parts[1] not in ACTIVATIONS
                or parts[2] not in POOLS
            ):
                raise InvalidArchitectureError(
                    f"expected layer {n} as <kernel>-<activation>-<pool> with kernel in "
                    f"{kernel_labels}, activation in {ACTIVATIONS}, pool in {POOLS} "
                    f"(e.g. {example}), got {layer!r}"
                )
            arch += [kernel_labels.index(parts[0]), ACTIVATIONS.index(parts[1]), POOLS.index(parts[2])]
        return tuple(arch)

    # ------------------------------------------------------------------ model
    def channels(self, layer: int) -> int:
        """Output channels of conv layer ``layer`` (0-based)."""
        return min(self.base_channels * 2**layer, self.max_channels)

    def build_model(
        self,
        arch: Sequence[int] | str,
        num_classes: int = 10,
        *,
        width: float = 1.0,
        cells: int | None = None,
        resolution: int = 32,
    ):
        """The chain of conv layers of ``arch`` (``cells``: no repeated cells here, ignored). Pooling
        stops once the map of a ``resolution``-pixel input is 1x1."""
        import torch.nn as nn

        values = self.validate(arch)
        layers: list[nn.Module] = []
        in_channels = 3
        for i in range(self.depth_of(values)):
            k, a, p = values[1 + 3 * i : 4 + 3 * i]
            out_channels = scaled_channels(self.channels(i), width)
            kernel = KERNELS[k]
            layers += [
                nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True) if ACTIVATIONS[a] == "relu" else nn.Sigmoid(),
            ]
            if resolution > 1:
                layers.append(nn.MaxPool2d(2) if POOLS[p] == "max" else nn.AvgPool2d(2))
                resolution //= 2
            in_channels = out_channels
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, num_classes)]
        return nn.Sequential(*layers)

    def __repr__(self) -> str:
        return (
            f"SeedSpace(min_layers={self.min_layers}, max_layers={self.max_layers}, "
            f"base_channels={self.base_channels}, max_channels={self.max_channels})"
        )
