"""The ``"macro"`` space of NAS-Bench-Macro: 8 searchable layers x 3 blocks.

Choices per layer (the benchmark's digit codes): ``0`` identity, ``1`` MobileNetV2
inverted-residual block with kernel 3 and expansion 3, ``2`` the same with kernel 5 and expansion
6. 3**8 = 6,561 architectures; the canonical string is the benchmark's 8 digits, e.g.
``"22212220"``.
"""

from __future__ import annotations

from collections.abc import Sequence

from nas_gym.spaces.base import Arch, Decision, FixedSpace, InvalidArchitectureError

BLOCKS = ("identity", "mb_k3_e3", "mb_k5_e6")
NUM_LAYERS = 8


class MacroSpace(FixedSpace):
    """The NAS-Bench-Macro chain. ``build_model`` builds the benchmark's network: a 3x3 stem with
    32 channels, stages of 2, 3 and 3 searchable layers (the first of each has stride 2 and doubles
    the channels, an identity there becomes a strided 1x1 conv + BatchNorm), then a 1x1 conv to
    1280 channels, global pooling and a linear classifier."""

    name = "macro"

    def __init__(self) -> None:
        super().__init__([Decision(f"layer{i + 1}", "block", BLOCKS) for i in range(NUM_LAYERS)])

    def format(self, arch: Sequence[int]) -> str:
        return "".join(str(v) for v in self.validate(arch))

    def parse(self, text: str) -> Arch:
        if not isinstance(text, str) or len(text) != NUM_LAYERS or any(c not in "012" for c in text):
            raise InvalidArchitectureError(
                f"expected {NUM_LAYERS} digits in 0..2 (0 identity, 1 MB k3 e3, 2 MB k5 e6), "
                f"e.g. '22212220', got {text!r}"
            )
        return tuple(int(c) for c in text)

    def build_model(
        self,
        arch: Sequence[int] | str,
        num_classes: int = 10,
        *,
        width: float = 1.0,
        cells: int | None = None,
        resolution: int = 32,
    ):
        """The benchmark's network; ``width`` scales every layer's channels (``cells``: no
        repeated cells here, ignored)."""
        from nas_gym.spaces.macro_model import build_macro_network

        return build_macro_network(self.validate(arch), num_classes=num_classes, width=width)
