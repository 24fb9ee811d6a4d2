"""Parameters and multiply-adds of every NAS-Bench-201 cell, computed from the project's own network.

The NAS-Bench-201 table under the data folder records accuracies and times only, so the costs come
from :mod:`nas_gym.spaces.nb201_model` (``NB201Space.build_model``): the benchmark's network with 16
initial channels and 5 cells per stage, with the classifier of the dataset (10, 100 or 120
classes) and its input size (32x32, or 16x16 for ImageNet16-120, :data:`COST_SETTINGS`).

- ``params``: the exact number of parameters (BatchNorm's affine weights included).
- ``flops``: the **multiply-adds** of one forward pass of one image, counted by
  ``torch.utils.flop_counter.FlopCounterMode``. That counter gives 2 FLOPs per multiply-add of the
  convolutions and of the classifier's matrix product (BatchNorm, ReLU, pooling and additions are
  not counted); ``flops`` is its total divided by 2. Multiply-adds are what the NAS literature
  calls FLOPs and what the other backends report (the NAS-Bench-Macro table, the ``"seed"``
  space's trainer). NAS-Bench-201's own counter also adds the classifier's bias, ``num_classes``
  more: 7,783,040 and 220,119,680 here against its 7.78305 M and 220.11969 M for CIFAR-10.

**How all 15,625 cells are computed.** Every edge of the cell is its own module, repeated in the
15 cells at the width of their stage, and the counter counts no additions, so a cell's costs are
exactly the costs of the network without any operation plus, for each edge, what its operation
adds: 1 + 6 x 4 = 25 networks (about 1.5 s) give the whole table.
``benchmarks/nb201_costs.py`` checks that against a count of each of the 15,625 networks
(:func:`network_cost`).

The table is cached in ``$NAS_GYM_CACHE`` (default ``$XDG_CACHE_HOME/nas_gym``, else
``~/.cache/nas_gym``), under ``costs/``: written atomically, checked on every read (format,
settings, length, checksum), recomputed when it does not pass, and kept in memory for the process.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from nas_gym.core.config import CACHE_ENV_VAR, resolve_cache_dir
from nas_gym.core.devices import torch_threads
from nas_gym.core.errors import did_you_mean
from nas_gym.spaces.nb201 import EDGES, OPERATIONS, NB201Space

COSTS_FORMAT = "nas-gym-nb201-costs"
COSTS_VERSION = 1
"""Bumped whenever the network or the counting changes, so that an old cache is recomputed."""

COST_SETTINGS: dict[str, tuple[int, int]] = {
    "cifar10": (10, 32),
    "cifar100": (100, 32),
    "ImageNet16-120": (120, 16),
}
"""``(num_classes, input resolution)`` of the network of each NAS-Bench-201 dataset."""

NB201_CELLS = len(OPERATIONS) ** len(EDGES)
"""15,625 cells."""


def cell_index(arch: tuple[int, ...] | list[int] | np.ndarray) -> int | np.ndarray:
    """The position of a cell in :class:`NB201Costs`: its operation codes read as a base-5 number,
    the first edge (1<-0) the most significant digit. Takes one code tuple or an ``(n, 6)`` array."""
    codes = np.asarray(arch, dtype=np.int64)
    weights = len(OPERATIONS) ** np.arange(len(EDGES) - 1, -1, -1, dtype=np.int64)
    index = codes @ weights
    return int(index) if codes.ndim == 1 else index


def network_cost(arch: Any, num_classes: int = 10, resolution: int = 32) -> tuple[int, int]:
    """``(parameters, multiply-adds)`` of the project's NAS-Bench-201 network of ``arch`` (a code
    tuple or ``arch_str``): parameters counted exactly, multiply-adds as ``FlopCounterMode``'s
    FLOPs / 2 for one ``3 x resolution x resolution`` image. Builds and runs the network on the
    CPU with one thread (about 50 ms)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    space = NB201Space()
    with torch_threads(1):
        model = space.build_model(arch, num_classes=num_classes).eval()
        params = sum(p.numel() for p in model.parameters())
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(torch.zeros(1, 3, resolution, resolution))
    flops = int(counter.get_total_flops())
    if flops % 2:
        raise RuntimeError(f"expected FlopCounterMode to count 2 FLOPs per multiply-add, got {flops} FLOPs")
    return int(params), flops // 2


class NB201Costs:
    """``params`` and ``flops`` (multiply-adds) of all 15,625 cells for one network setting: two
    read-only int64 arrays in :func:`cell_index` order."""

    def __init__(self, params: np.ndarray, flops: np.ndarray, num_classes: int, resolution: int):
        self.params = np.asarray(params, dtype=np.int64)
        self.flops = np.asarray(flops, dtype=np.int64)
        for array in (self.params, self.flops):
            if array.shape != (NB201_CELLS,):
                raise ValueError(f"expected {NB201_CELLS} costs, got an array of shape {array.shape}")
            array.flags.writeable = False
        self.num_classes = int(num_classes)
        self.resolution = int(resolution)

    def of(self, arch: Any) -> tuple[int, int]:
        """``(params, flops)`` of one cell (code tuple or ``arch_str``)."""
        i = cell_index(NB201Space().validate(arch))
        return int(self.params[i]), int(self.flops[i])

    def checksum(self) -> str:
        """sha256 of the two arrays (what the cache file records)."""
        return hashlib.sha256(self.params.tobytes() + self.flops.tobytes()).hexdigest()

    def __repr__(self) -> str:
        return (
            f"NB201Costs(num_classes={self.num_classes}, resolution={self.resolution}, params "
            f"{self.params.min():,}..{self.params.max():,}, flops {self.flops.min():,}..{self.flops.max():,})"
        )


def compute_nb201_costs(num_classes: int = 10, resolution: int = 32) -> NB201Costs:
    """The costs of all 15,625 cells from 25 networks (see the module docstring): the network
    without operations, and for each edge and operation the network with that one operation."""
    empty = (0,) * len(EDGES)
    base = np.array(network_cost(empty, num_classes, resolution), dtype=np.int64)
    # added[e, op] = what operation op on edge e adds to (params, flops); "none" adds nothing.
    added = np.zeros((len(EDGES), len(OPERATIONS), 2), dtype=np.int64)
    for edge, op in itertools.product(range(len(EDGES)), range(1, len(OPERATIONS))):
        arch = list(empty)
        arch[edge] = op
        added[edge, op] = np.array(network_cost(arch, num_classes, resolution)) - base
    codes = np.array(list(itertools.product(range(len(OPERATIONS)), repeat=len(EDGES))), dtype=np.int64)
    # itertools.product varies the last edge fastest: row i is the cell of cell_index i.
    total = base + added[np.arange(len(EDGES)), codes].sum(axis=1)
    return NB201Costs(total[:, 0], total[:, 1], num_classes, resolution)


# ---------------------------------------------------------------------------------------- cache
_MEMO: dict[tuple[str, Path], NB201Costs] = {}
_LOCK = threading.Lock()


def cost_cache_path(dataset: str = "cifar10", cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache file of ``dataset``'s costs."""
    num_classes, resolution = _settings(dataset)
    name = f"nb201-v{COSTS_VERSION}-c{num_classes}-r{resolution}.json"
    return resolve_cache_dir(cache_dir) / "costs" / name


def load_nb201_costs(dataset: str = "cifar10", cache_dir: str | os.PathLike[str] | None = None) -> NB201Costs:
    """The costs of every cell for ``dataset``'s network: from memory, else from the cache file,
    else computed (about 1.5 s) and written to the cache. A cache file that does not pass its
    checks is recomputed and replaced (with a warning); a cache folder that cannot be written
    only costs the recomputation in the next process (with a warning)."""
    num_classes, resolution = _settings(dataset)
    path = cost_cache_path(dataset, cache_dir)
    key = (dataset, path)
    with _LOCK:
        if key in _MEMO:
            return _MEMO[key]
        costs = None
        if path.exists():
            try:
                costs = _read(path, num_classes, resolution)
            except (OSError, ValueError, TypeError, KeyError) as exc:
                warnings.warn(
                    f"recomputing the NAS-Bench-201 costs: the cache file {path} is unusable ({exc})",
                    RuntimeWarning,
                    stacklevel=2,
                )
        if costs is None:
            costs = compute_nb201_costs(num_classes, resolution)
            try:
                _write(path, costs)
            except OSError as exc:
                warnings.warn(
                    f"could not cache the NAS-Bench-201 costs in {path} ({exc}); set {CACHE_ENV_VAR} to a "
                    "writable folder",
                    RuntimeWarning,
                    stacklevel=2,
                )
        _MEMO[key] = costs
        return costs


def _settings(dataset: str) -> tuple[int, int]:
    if dataset not in COST_SETTINGS:
        raise ValueError(
            f"expected dataset in {tuple(COST_SETTINGS)}, got {dataset!r}{did_you_mean(str(dataset), COST_SETTINGS)}"
        )
    return COST_SETTINGS[dataset]


def _read(path: Path, num_classes: int, resolution: int) -> NB201Costs:
    data = json.loads(path.read_text())
    expected = {"format": COSTS_FORMAT, "version": COSTS_VERSION, "num_classes": num_classes}
    expected["resolution"] = resolution
    for name, value in expected.items():
        if data.get(name) != value:
            raise ValueError(f"expected {name} {value!r}, got {data.get(name)!r}")
    for name in ("params", "flops"):
        values = data[name]
        if not isinstance(values, list) or not all(type(v) is int and v > 0 for v in values):
            raise ValueError(f"expected {name} as a list of positive ints")
    costs = NB201Costs(np.array(data["params"]), np.array(data["flops"]), num_classes, resolution)
    if costs.checksum() != data.get("sha256"):
        raise ValueError("expected the recorded checksum, got another one")
    return costs


def _write(path: Path, costs: NB201Costs) -> None:
    import torch

    data = {
        "format": COSTS_FORMAT,
        "version": COSTS_VERSION,
        "num_classes": costs.num_classes,
        "resolution": costs.resolution,
        "flops_unit": "multiply-adds (FlopCounterMode FLOPs / 2)",
        "order": "cell_index: operation codes of edges 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2 as a base-5 number",
        "torch": torch.__version__,
        "sha256": costs.checksum(),
        "params": costs.params.tolist(),
        "flops": costs.flops.tolist(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own per process: two processes filling an empty cache never share a temporary file.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
