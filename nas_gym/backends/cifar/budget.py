"""How much training one evaluation of ``NASCifar-v0`` gets: :class:`Budget` and the named presets.

A budget fixes the data (images, resolution), the network's size (width, cells per stage) and the
optimisation (epochs, batch, schedule). Measured seconds and rank correlations of the presets are in
``docs/fidelity.md``; this module holds only what they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas_gym.backends.cifar.data import NUM_TRAIN, VAL_HOLDOUT
from nas_gym.core.checks import ArgumentTypeError, check_int, check_number
from nas_gym.core.errors import did_you_mean

TRAIN_PART = NUM_TRAIN - VAL_HOLDOUT
"""Training images that budgets train on; the other :data:`VAL_HOLDOUT` validate."""

MIN_STEPS = 20
"""The fewest optimiser steps a budget may train for: below that a network stays near chance
(3 steps gave 0.10 to 0.16 validation accuracy, chance being 0.10), so such a budget would rank
nothing and is refused."""
MIN_STEPS_PER_EPOCH = 25
"""A dict budget that does not set ``batch_size`` halves its base's batch until an epoch has at
least this many steps (or the batch is :data:`MIN_DERIVED_BATCH`)."""
MIN_DERIVED_BATCH = 32
RESOLUTIONS = (8, 16, 24, 32)
"""Image sizes a budget may train at (CIFAR-10 is 32x32; smaller sizes are area-downsampled)."""


@dataclass(frozen=True)
class Budget:
    """One training protocol.

    SGD with Nesterov momentum; the learning rate rises linearly from near 0 to its peak over the
    first ``warmup`` fraction of the steps, then falls linearly to 0 (a one-cycle shape: the
    warm-up keeps large batches stable, the decay to 0 gives most of the accuracy of a short run).
    ``width``, ``cells`` and ``resolution`` shrink the network and the images the way EcoNAS does
    (Zhou et al., CVPR 2020): every decision of the architecture is kept, each layer is thinner,
    each stage repeats the cell fewer times, and the images are smaller.
    """

    epochs: int
    """Passes over the training images."""
    train_size: int
    """Training images used (a fixed random subset of the 45,000 of the training part)."""
    val_size: int
    """Held-out training images on which the accuracy is measured (at most 5,000)."""
    batch_size: int
    """Images per optimiser step (capped at ``train_size``); incomplete last batches are dropped."""
    lr: float = 0.4
    """Peak learning rate per 256 images in a batch: the step size is ``lr * batch_size / 256`` (the
    linear scaling rule, so that changing ``batch_size`` alone keeps training sensible)."""
    momentum: float = 0.9
    """Nesterov momentum of SGD."""
    weight_decay: float = 5e-4
    """L2 penalty of SGD, on all parameters."""
    label_smoothing: float = 0.2
    """Label smoothing of the cross-entropy; it makes short, high-learning-rate runs less noisy."""
    warmup: float = 0.2
    """Fraction of all steps spent on the linear warm-up of the learning rate."""
    augment: bool = True
    """Random crop (zero padding of an eighth of the image size) and horizontal flip."""
    width: float = 1.0
    """Multiplier of every layer's channels (each layer keeps at least one)."""
    cells: int | None = None
    """Copies of the searched cell per stage, for spaces built of repeated cells (NAS-Bench-201:
    5); ``None`` keeps the space's own; spaces without repeated cells ignore it."""
    resolution: int = 32
    """Side of the training and validation images, one of :data:`RESOLUTIONS`."""

    def __post_init__(self) -> None:
        # Values are normalised to int / float (numpy scalars, 1 vs 1.0), so that equal budgets
        # compare, hash and describe (fingerprint) equal.
        counts = {
            "epochs": (1, None),
            "train_size": (1, TRAIN_PART),
            "val_size": (1, VAL_HOLDOUT),
            "batch_size": (1, None),
        }
        for name, (low, high) in counts.items():
            object.__setattr__(
                self, name, check_int(getattr(self, name), f"budget {name!r}", minimum=low, maximum=high)
            )
        reals = {
            "lr": (0.0, True, None),
            "momentum": (0.0, False, 0.999),
            "weight_decay": (0.0, False, None),
            "label_smoothing": (0.0, False, 0.99),
            "warmup": (0.0, False, 0.99),
            "width": (0.0, True, 4.0),
        }
        for name, (low, strict, high) in reals.items():
            value = check_number(
                getattr(self, name), f"budget {name!r}", minimum=low, strict=strict, maximum=high
            )
            object.__setattr__(self, name, value)
        if not isinstance(self.augment, bool):
            raise ArgumentTypeError(f"expected budget 'augment' as a bool, got {self.augment!r}")
        object.__setattr__(self, "cells", check_int(self.cells, "budget 'cells'", minimum=1, none_ok=True))
        # Checked as an int first, so that 16.0 or "16" is a type error like every other field's.
        resolution = check_int(
            self.resolution, "budget 'resolution'", minimum=RESOLUTIONS[0], maximum=RESOLUTIONS[-1]
        )
        if resolution not in RESOLUTIONS:
            raise ValueError(f"expected budget 'resolution' in {RESOLUTIONS}, got {resolution}")
        object.__setattr__(self, "resolution", resolution)
        if self.steps < MIN_STEPS:
            raise ValueError(
                f"expected a budget of at least {MIN_STEPS} optimiser steps (epochs x (train_size // "
                f"batch_size)), got {self.steps} ({self.epochs} x ({self.train_size} // "
                f"{self.effective_batch_size})): raise 'epochs' or 'train_size', or lower 'batch_size'"
            )

    @property
    def effective_batch_size(self) -> int:
        """``batch_size``, capped at ``train_size``."""
        return min(self.batch_size, self.train_size)

    @property
    def steps(self) -> int:
        """Optimiser steps of the whole training."""
        return self.epochs * (self.train_size // self.effective_batch_size)

    @property
    def reduced(self) -> bool:
        """Whether the network or the images are smaller than the space defines them."""
        return self.width != 1.0 or self.cells is not None or self.resolution != 32

    def describe(self) -> str:
        """All values as ``name=value`` pairs (stable order; part of the trainer's fingerprint)."""
        return ",".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self))


BUDGETS: dict[str, Budget] = {
    # A sanity signal for tests and demos, not a ranking.
    "smoke": Budget(epochs=1, train_size=2_000, val_size=1_000, batch_size=64),
    # A ranking signal on a GPU (160,000 training images of the full network).
    "proxy": Budget(epochs=8, train_size=20_000, val_size=5_000, batch_size=512),
    # A ranking signal on a CPU: a reduced network on smaller images (docs/fidelity.md).
    "cpu-proxy": Budget(
        epochs=8, train_size=20_000, val_size=2_000, batch_size=128, width=0.5, cells=1, resolution=16
    ),
    # The ranking signal of one GPU, shaped like the airbench speed-runs (see below).
    "gpu": Budget(epochs=10, train_size=45_000, val_size=5_000, batch_size=1024, lr=0.2),
    # Final training on the whole training part.
    "full": Budget(epochs=40, train_size=45_000, val_size=5_000, batch_size=512),
}
"""The named budgets of ``NASCifar-v0`` (``budget=`` of the env and of the trainer).

``"gpu"``, the default of ``budget="auto"`` on CUDA, and why each of its values:

- All 45,000 images of the training part and all 5,000 held-out ones: on a GPU the data is
  resident and a pass is cheap, so a subset would only add sampling noise to the ranking; the
  whole validation set makes the accuracy's standard error about 0.65 points, against 1 point at
  2,000 images.
- 10 epochs: airbench (Jordan, 2024) reaches 94% on CIFAR-10 in about 10 epochs with a tuned
  network; a searched network is not tuned, so this ranks rather than converges (``full`` does
  that, with 40).
- Batch 1,024: airbench's. The kernel launches of a step are shared by 1,024 images, so a small
  network spends its time computing rather than launching; 43 steps per epoch, 430 in all, far
  above the floor of :data:`MIN_STEPS`.
- ``lr=0.2`` per 256 images, i.e. a peak step of 0.8, that of ``proxy`` at its batch of 512:
  the linear scaling rule would double it to 1.6, but it was shown for long schedules with
  epochs of warm-up (Goyal et al., 2017), and a diverged run scores 0, which would rank an
  architecture last for the wrong reason. Not yet tuned on a GPU.
- Label smoothing 0.2 (the default of every budget; airbench uses 0.2 too) and the shared
  warm-up/decay schedule; no lookahead, no test-time flips, no whitening layer: those change the
  network or the evaluation protocol, and every budget must measure the searched network alone.

Expected time on one H200, **an estimate from first principles, not a measurement**
(``benchmarks/gpu_check.sh`` measures it): the largest seed network (10 layers of 5x5, 56.5 M
multiply-adds per image) costs about 6 x 56.5 M = 340 MFLOP per training image (forward and a
backward of twice its cost), 150 TFLOP over 440,320 images: about 1 s at 150 TFLOP/s, a sixth
of the chip's dense bf16 peak, which small convolutions rarely exceed. Small networks are
launch-bound instead: about 200 kernels per step at some 5 to 10 us each give 1 to 2 ms per step,
0.5 to 1 s for the 430 steps. With cuDNN's autotuning of each new shape and the validation pass,
about 1 to 3 s per evaluation, plus a few seconds once per process (CUDA start, data upload).
"""

AUTO = "auto"
"""``budget="auto"``: ``"gpu"`` on CUDA, ``"cpu-proxy"`` on the CPU (the default of the env)."""
AUTO_BUDGETS = {"cuda": "gpu", "cpu": "cpu-proxy"}

BUDGET_FIELDS = tuple(f.name for f in dataclasses.fields(Budget))
DICT_KEYS = ("base", *BUDGET_FIELDS)


def _derived_batch_size(base: Budget, train_size: int) -> int:
    """The base's batch, halved until an epoch of ``train_size`` images has enough steps."""
    batch = base.batch_size
    while batch > MIN_DERIVED_BATCH and train_size // batch < MIN_STEPS_PER_EPOCH:
        batch //= 2
    return batch


def budget_name(budget: str | Mapping[str, Any] | Budget, device_type: str) -> str | None:
    """The preset name that ``budget`` stands for on ``device_type`` (``"auto"`` resolved), or
    ``None`` for a dict or a :class:`Budget`."""
    if budget == AUTO:
        return AUTO_BUDGETS[device_type]
    return budget if isinstance(budget, str) else None


def resolve_budget(budget: str | Mapping[str, Any] | Budget, device_type: str = "cpu") -> Budget:
    """A :class:`Budget` from a preset name (``"auto"``: by ``device_type``), a :class:`Budget`,
    or a dict of changes to a preset: ``{"base": "smoke", "epochs": 2}`` (without ``base``:
    ``"proxy"``).

    A dict that changes ``train_size`` but not ``batch_size`` gets a batch that gives an epoch at
    least :data:`MIN_STEPS_PER_EPOCH` steps (the base's, halved as needed), so that a small
    budget still trains; every budget must train at least :data:`MIN_STEPS` steps.

    Raises:
        ValueError: an unknown name or key (with a did-you-mean hint), or a bad value.
        TypeError: ``budget`` is none of the above, or a value has the wrong type.
    """
    names = sorted([*BUDGETS, AUTO])
    if isinstance(budget, Budget):
        return budget
    if isinstance(budget, str):
        if budget not in names:
            raise ValueError(
                f"expected a budget in {names} or a dict of changes, got {budget!r}{did_you_mean(budget, names)}"
            )
        return BUDGETS[budget_name(budget, device_type) or budget]
    if isinstance(budget, Mapping):
        for key in budget:
            if key not in DICT_KEYS:
                raise ValueError(
                    f"expected budget keys among {list(DICT_KEYS)}, got {key!r}{did_you_mean(str(key), DICT_KEYS)}"
                )
        changes = dict(budget)
        base_name = changes.pop("base", "proxy")
        if not isinstance(base_name, str):
            raise ArgumentTypeError(
                f"expected budget 'base' as a name in {sorted(BUDGETS)}, got {base_name!r}"
            )
        if base_name not in BUDGETS:
            raise ValueError(
                f"expected budget 'base' in {sorted(BUDGETS)}, got {base_name!r}{did_you_mean(base_name, BUDGETS)}"
            )
        base = BUDGETS[base_name]
        if "batch_size" not in changes and "train_size" in changes:
            train_size = check_int(changes["train_size"], "budget 'train_size'", minimum=1)
            changes["batch_size"] = _derived_batch_size(base, train_size)
        return dataclasses.replace(base, **changes)
    raise TypeError(f"expected budget as a name in {names}, a dict or a Budget, got {type(budget).__name__}")
