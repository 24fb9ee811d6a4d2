"""Pictures of an episode: the architecture decision by decision, as text (``"ansi"``, ``"human"``)
and as an RGB image (``"rgb_array"``, which Gymnasium's ``RecordVideo`` records)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nas_gym.spaces import SearchSpace

IMAGE_WIDTH = 480
LINE_HEIGHT = 16
_BACKGROUND = (250, 250, 250)
_TAKEN = (31, 119, 180)
_OPEN = (190, 190, 190)
_RESULT = (214, 39, 40)


def lines(
    space: SearchSpace, prefix: Sequence[int], result: Mapping[str, Any] | None
) -> list[tuple[str, bool]]:
    """``(text, taken)`` per decision so far plus the open one (``"?"``), then the result."""
    rows: list[tuple[str, bool]] = []
    for i in range(len(prefix) + 1):
        decision = space.next_decision(prefix[:i])
        if decision is None:
            break
        taken = i < len(prefix)
        label = decision.choices[prefix[i]] if taken else "?"
        rows.append((f"{decision.name:>20}: {label}", taken))
    if result is not None:
        rows.append((f"{'result':>20}: {describe_result(result)}", True))
    return rows


def describe_result(info: Mapping[str, Any]) -> str:
    """One line on an evaluation: accuracy (or zero-cost score), status, cache."""
    if info.get("accuracy") is None and "score" in info:
        text = f"score {info['score']:.4g}"
    else:
        text = f"accuracy {info['accuracy']:.4f}"
    return text + f", status {info['status']}" + (" (cached)" if info.get("cached") else "")


def ansi(space: SearchSpace, prefix: Sequence[int], result: Mapping[str, Any] | None) -> str:
    """The decisions so far, one a line, and the result once there is one."""
    return "\n".join(text for text, _ in lines(space, prefix, result)) + "\n"


def rgb_array(space: SearchSpace, prefix: Sequence[int], result: Mapping[str, Any] | None) -> np.ndarray:
    """The same lines drawn on a ``(H, 480, 3)`` uint8 image whose height fits the longest
    episode of the space (so every frame of a video has one size): taken decisions in blue, the
    open one in grey, the result in red."""
    from PIL import Image, ImageDraw

    height = LINE_HEIGHT * (space.max_decisions + 2)
    image = Image.new("RGB", (IMAGE_WIDTH, height), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    rows = lines(space, prefix, result)
    for row, (text, taken) in enumerate(rows):
        is_result = result is not None and row == len(rows) - 1
        colour = _RESULT if is_result else (_TAKEN if taken else _OPEN)
        y = 2 + LINE_HEIGHT * row
        draw.rectangle((4, y + 3, 10, y + 9), fill=colour)
        draw.text((16, y), text.strip(), fill=colour)
    return np.asarray(image, dtype=np.uint8)
