"""The ``"nb201"`` space: the NAS-Bench-201 / NATS-Bench topology cell (6 edges x 5 operations).

A cell is a DAG of 4 nodes; every edge ``j -> i`` (``j < i``) carries one operation. The six
decisions are the edges in the benchmark's order (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2) and the
choice indices are the benchmark's operation codes (0 ``none`` ... 4 ``avg_pool_3x3``), so
``15625`` = 5**6 architectures and the canonical string is the benchmark's ``arch_str``:
``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nas_gym.spaces.base import Arch, Decision, FixedSpace, InvalidArchitectureError, scaled_channels

OPERATIONS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""``(to_node, from_node)`` of each decision, in the order of ``arch_str``."""

_NODE_RE = re.compile(r"\|([a-z_0-9]+)~(\d)")


class NB201Space(FixedSpace):
    """The NAS-Bench-201 cell space. ``build_model`` builds the benchmark's network: a 3x3 stem
    with 16 channels, three stages of 5 cells with 16, 32 and 64 channels joined by residual
    reduction blocks, then BatchNorm, ReLU, global pooling and a linear classifier."""

    name = "nb201"

    def __init__(self) -> None:
        super().__init__([Decision(f"edge{to}<-{src}", "operation", OPERATIONS) for to, src in EDGES])

    def format(self, arch: Sequence[int]) -> str:
        values = self.validate(arch)
        nodes, k = [], 0
        for to in (1, 2, 3):
            nodes.append("|" + "|".join(f"{OPERATIONS[values[k + j]]}~{j}" for j in range(to)) + "|")
            k += to
        return "+".join(nodes)

    def parse(self, text: str) -> Arch:
        example = "'|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|'"
        if not isinstance(text, str):
            raise InvalidArchitectureError(f"expected a NAS-Bench-201 arch_str, got {type(text).__name__}")
        nodes = text.split("+")
        if len(nodes) != 3:
            raise InvalidArchitectureError(
                f"expected 3 nodes joined by '+' (e.g. {example}), got {len(nodes)} in {text!r}"
            )
        arch: list[int] = []
        for to, node in enumerate(nodes, start=1):
            edges = _NODE_RE.findall(node)
            rebuilt = "".join(f"|{op}~{src}" for op, src in edges) + "|"
            if rebuilt != node or [int(src) for _, src in edges] != list(range(to)):
                raise InvalidArchitectureError(
                    f"expected node {to} as |op~0|...|op~{to - 1}| (e.g. {example}), got {node!r}"
                )
            for op, _ in edges:
                if op not in OPERATIONS:
                    raise InvalidArchitectureError(
                        f"expected an operation in {OPERATIONS}, got {op!r} in {text!r}"
                    )
                arch.append(OPERATIONS.index(op))
        return tuple(arch)

    def build_model(
        self,
        arch: Sequence[int] | str,
        num_classes: int = 10,
        *,
        width: float = 1.0,
        cells: int | None = None,
        resolution: int = 32,
    ):
        """The benchmark's network; ``width`` scales its 16 initial channels, ``cells`` replaces
        its 5 cells per stage."""
        from nas_gym.spaces.nb201_model import CELLS_PER_STAGE, INITIAL_CHANNELS, build_nb201_network

        return build_nb201_network(
            self.validate(arch),
            num_classes=num_classes,
            channels=scaled_channels(INITIAL_CHANNELS, width),
            cells_per_stage=CELLS_PER_STAGE if cells is None else cells,
        )
