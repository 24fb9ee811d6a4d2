"""CIFAR-10 on disk and in memory: a safe loader for the "python version" batches, the fixed
train/validation split, and per-process caches of the arrays on the host and on devices.

The folder is ``<data_dir>/cifar10/cifar-10-batches-py`` (``data_dir`` defaults to
``$NAS_GYM_DATA``, else ``~/.cache/nas_gym``) with ``data_batch_1`` .. ``data_batch_5`` (50,000
training images) and ``test_batch`` (10,000 test images), each a pickled dict with ``data``
(uint8, ``(10000, 3072)``: 1024 red, 1024 green, 1024 blue values per row) and ``labels``.

Files are checked by shape, dtype, count and label range rather than by checksum, so copies that
were re-encoded (and therefore differ from the official bytes) load as long as they are
well-formed. They are unpickled with :class:`RestrictedUnpickler`, which admits only what a numpy
array needs: a hostile pickle raises :class:`UnsafePickleError` instead of running code.

Machines without the dataset (a GPU check, CI without ``$NAS_GYM_DATA``) can write a synthetic
stand-in in the same format with :func:`write_synthetic_cifar10`; it goes through the same loader.

Reward code reads only the ``"train"`` split: :func:`train_val_split` carves the validation set
out of the 50,000 training images. The ``"test"`` split is for the final report of a chosen
architecture (:func:`nas_gym.backends.cifar.trainer.final_train`).
"""

from __future__ import annotations

import functools
import os
import pickle
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_gym.core.checks import check_int
from nas_gym.core.config import DATA_ENV_VAR, resolve_data_dir
from nas_gym.core.errors import did_you_mean

if TYPE_CHECKING:  # torch is imported lazily: loading arrays must not need it
    import torch

CIFAR10_SUBDIR = Path("cifar10") / "cifar-10-batches-py"
"""Where CIFAR-10 lives under the data folder (the layout of the official archive)."""

SPLIT_FILES: dict[str, tuple[str, ...]] = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
"""The batch files of each split."""

IMAGES_PER_BATCH = 10_000
NUM_TRAIN = 50_000
VAL_HOLDOUT = 5_000
"""Training images held out for validation (the reward); the other 45,000 are for training."""
SPLIT_SEED = 0
"""Seed of the train/validation partition. Fixed, so that every trainer seed and every budget
validates on the same held-out images."""
NUM_TEST = 10_000
NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)


class DataNotFoundError(FileNotFoundError):
    """CIFAR-10 is not where it was looked for (and was not, or could not be, downloaded)."""


class DataFormatError(ValueError):
    """A CIFAR-10 batch file exists but does not hold what the format requires."""


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for something other than the numpy array pieces a CIFAR-10 batch needs."""


def _allowed_globals() -> dict[tuple[str, str], Any]:
    # The batches were written by numpy 1.x, whose pickles name ``numpy.core.multiarray``; numpy 2
    # moved it to ``numpy._core`` (importing the old path warns). Both names map to the object that
    # exists here, so neither import is ever attempted by the unpickler itself.
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals needed to rebuild numpy arrays.

    Any other global (``os.system``, ``builtins.eval``, ...) raises :class:`UnsafePickleError`
    before it can be called, so loading a tampered file cannot run code. Use with
    ``encoding="bytes"``: the CIFAR-10 batches were written by Python 2 and their keys load as
    ``bytes``.
    """

    _ALLOWED = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            allowed = sorted(f"{m}.{n}" for m, n in self._ALLOWED)
            raise UnsafePickleError(
                f"expected a pickle that references only numpy array reconstruction ({', '.join(allowed)}), "
                f"got a reference to {module}.{name}; refusing to load it"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"expected no persistent ids in a CIFAR-10 batch, got {pid!r}")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(data (N, 3072) uint8, labels (N,) int64)`` of one batch file, checked."""
    try:
        with open(path, "rb") as f:
            raw = RestrictedUnpickler(f, encoding="bytes").load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DataFormatError(
            f"expected {path} to be a pickled CIFAR-10 batch, got a file that does not unpickle "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(raw, Mapping):
        raise DataFormatError(f"expected {path} to hold a dict, got {type(raw).__name__}")
    # Keys are bytes with encoding="bytes"; accept str too (a batch re-pickled under Python 3).
    entries = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in raw.items()}
    missing = {"data", "labels"} - set(entries)
    if missing:
        raise DataFormatError(
            f"expected {path} to have keys 'data' and 'labels', got {sorted(map(str, entries))}"
        )
    data = entries["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape != (IMAGES_PER_BATCH, 3072):
        got = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise DataFormatError(f"expected 'data' in {path} as a uint8 array of shape (10000, 3072), got {got}")
    try:
        labels = np.asarray(entries["labels"], dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise DataFormatError(f"expected 'labels' in {path} as a list of integers: {exc}") from exc
    if labels.shape != (IMAGES_PER_BATCH,):
        raise DataFormatError(f"expected {IMAGES_PER_BATCH} labels in {path}, got shape {labels.shape}")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataFormatError(
            f"expected labels in 0..{NUM_CLASSES - 1} in {path}, got {labels.min()}..{labels.max()}"
        )
    return data, labels


def _check_split(split: str) -> str:
    if split not in SPLIT_FILES:
        raise ValueError(
            f"expected split in {sorted(SPLIT_FILES)}, got {split!r}{did_you_mean(split, SPLIT_FILES)}"
        )
    return split


def _missing_files(folder: Path) -> list[str]:
    return [name for names in SPLIT_FILES.values() for name in names if not (folder / name).is_file()]


def _download(data_dir: Path, folder: Path) -> None:
    try:
        from torchvision.datasets import CIFAR10

        CIFAR10(root=str(data_dir / CIFAR10_SUBDIR.parent), train=True, download=True)
    except Exception as exc:  # noqa: BLE001 - offline, blocked, disk full: all end the same way
        raise DataNotFoundError(
            f"CIFAR-10 is missing from {folder} and the download attempt failed "
            f"({type(exc).__name__}: {exc}). Put the 'cifar-10-batches-py' files there, point "
            f"${DATA_ENV_VAR} (or data_dir=) at a folder that holds cifar10/cifar-10-batches-py, or "
            f"run `nas-gym download cifar10`"
        ) from exc


def check_cifar10(data_dir: str | os.PathLike[str] | None = None, download: bool = False) -> Path:
    """The CIFAR-10 batch folder, after checking that every batch file exists (no file is read).

    With ``download=True`` a missing dataset is fetched by ``torchvision`` into the expected layout
    first. Raises :class:`DataNotFoundError` naming the folder, ``$NAS_GYM_DATA`` and
    ``download=True`` when files are missing.
    """
    root = resolve_data_dir(data_dir)
    folder = root / CIFAR10_SUBDIR
    missing = _missing_files(folder)
    if missing and download:
        _download(root, folder)
        missing = _missing_files(folder)
        if missing:
            raise DataNotFoundError(
                f"CIFAR-10 is still incomplete in {folder} after the download attempt: missing {missing}"
            )
    if missing:
        raise DataNotFoundError(
            f"CIFAR-10 not found: expected {', '.join(missing)} in {folder}. Set ${DATA_ENV_VAR} (or pass "
            f"data_dir=) to a folder holding cifar10/cifar-10-batches-py, or fetch it with "
            f"`nas-gym download cifar10` (or download=True)"
        )
    return folder


@functools.lru_cache(maxsize=4)
def _load_split_cached(folder: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    names = SPLIT_FILES[split]
    # Filled batch by batch, so that at most one batch exists twice in memory (not the whole split).
    images = np.empty((len(names) * IMAGES_PER_BATCH, 3072), dtype=np.uint8)
    labels = np.empty(len(names) * IMAGES_PER_BATCH, dtype=np.int64)
    for i, name in enumerate(names):
        rows = slice(i * IMAGES_PER_BATCH, (i + 1) * IMAGES_PER_BATCH)
        images[rows], labels[rows] = _read_batch(Path(folder) / name)
    images = images.reshape(-1, *IMAGE_SHAPE)
    # The arrays are shared by every caller of this process: make accidental in-place edits fail.
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_cifar10(
    data_dir: str | os.PathLike[str] | None = None, download: bool = False, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of a CIFAR-10 split: images uint8 ``(N, 3, 32, 32)``, labels int64 ``(N,)``.

    ``split="train"`` gives the 50,000 images of ``data_batch_1..5`` in file order,
    ``split="test"`` the 10,000 of ``test_batch``. The arrays are read-only and cached per
    process (keyed by folder and split), so later calls return the same arrays without reading
    the files again; :func:`clear_cache` forgets them.

    Raises:
        DataNotFoundError: the files are missing (and ``download`` is false or failed).
        DataFormatError: a file is not a well-formed CIFAR-10 batch.
        UnsafePickleError: a file references anything but numpy array pieces.
    """
    _check_split(split)
    folder = check_cifar10(data_dir, download=download)
    return _load_split_cached(str(folder.resolve()), split)


def train_val_split(
    num_train: int = NUM_TRAIN, val_size: int = VAL_HOLDOUT, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """``(train_indices, val_indices)``: a fixed, seeded partition of ``range(num_train)``.

    Validation is ``val_size`` held-out training images, training the other ``num_train -
    val_size``. Both are in random order (a seeded permutation), so their first ``n`` entries are
    a uniform random subset: a smaller budget takes a prefix, and every budget validates on images
    that no budget trains on. The same arguments always give the same indices.
    """
    for name, value in (("num_train", num_train), ("val_size", val_size), ("seed", seed)):
        check_int(value, name)
    if not 0 < val_size < num_train:
        raise ValueError(f"expected 0 < val_size < num_train, got val_size={val_size}, num_train={num_train}")
    permutation = np.random.default_rng(seed).permutation(num_train).astype(np.int64)
    return permutation[val_size:], permutation[:val_size]


_device_cache: dict[tuple[str, str, str], tuple[torch.Tensor, torch.Tensor]] = {}
_device_lock = threading.Lock()


def cifar10_on_device(
    device: torch.device | str,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    split: str = "train",
    resolution: int = 32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)`` of a split as tensors on ``device``: uint8 ``(N, 3, R, R)`` and int64,
    ``R = resolution`` (smaller sizes are area-downsampled from 32x32, i.e. each pixel is the mean
    of the block it covers, rounded).

    Cached per process, device and resolution, so consecutive evaluations neither reload the
    files nor copy the images to the device again. On the CPU the full-resolution tensors share
    memory with the (read-only) arrays of :func:`load_cifar10`: treat them as read-only.
    """
    import torch

    _check_split(split)
    device = _indexed(torch.device(device))
    folder = check_cifar10(data_dir, download=download)
    key = (str(folder.resolve()), split, str(device), int(resolution))
    with _device_lock:
        if key not in _device_cache:
            if resolution == IMAGE_SHAPE[1]:
                images, labels = load_cifar10(data_dir, split=split)
                # uint8 on the device: a quarter of the memory of float32 and a quarter of the
                # transfer; batches are normalised on the fly.
                _device_cache[key] = (_as_tensor(images, device), _as_tensor(labels, device))
            else:
                full = _device_cache.get(key[:3] + (IMAGE_SHAPE[1],))
                if full is None:
                    images, labels = load_cifar10(data_dir, split=split)
                    full = (_as_tensor(images, device), _as_tensor(labels, device))
                    _device_cache[key[:3] + (IMAGE_SHAPE[1],)] = full
                _device_cache[key] = (_downsample(full[0], resolution), full[1])
        return _device_cache[key]


def _downsample(images: torch.Tensor, resolution: int, chunk: int = 5_000) -> torch.Tensor:
    """Area-downsampled uint8 copies of ``images`` (chunked: a float copy of all 50,000 images
    would need 600 MB)."""
    import torch
    import torch.nn.functional as F

    out = torch.empty((len(images), 3, resolution, resolution), dtype=torch.uint8, device=images.device)
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk].float()
        out[start : start + chunk] = F.adaptive_avg_pool2d(part, resolution).round_().to(torch.uint8)
    return out


_index_cache: dict[tuple[str, int, int], tuple[torch.Tensor, torch.Tensor]] = {}


def split_on_device(
    device: torch.device, train_size: int, val_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``train_size`` training-part and ``val_size`` validation indices of
    :func:`train_val_split` as int64 tensors on ``device``, cached: one upload per process and
    size, not one per evaluation."""
    import torch

    device = _indexed(torch.device(device))
    key = (str(device), int(train_size), int(val_size))
    with _device_lock:
        if key not in _index_cache:
            train, val = train_val_split()
            _index_cache[key] = (
                _as_tensor(train[:train_size], device),
                _as_tensor(val[:val_size], device),
            )
        return _index_cache[key]


def _indexed(device: torch.device) -> torch.device:
    """``cuda`` as ``cuda:<current>``, so that both names share one cached copy."""
    import torch

    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _as_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    import torch

    with warnings.catch_warnings():
        # The cached arrays are read-only on purpose; torch warns that a tensor view could write
        # to them. Nothing here writes (training reads batches through indexing, which copies).
        warnings.filterwarnings(
            "ignore", message="The given NumPy array is not writable", category=UserWarning
        )
        tensor = torch.from_numpy(array)
    # On the CPU this is the cached array itself (zero-copy); elsewhere one upload per process.
    # non_blocking: the host does not wait for the copy to land (from pageable memory the call
    # returns once the bytes are staged, so the array may go away at once); later kernels on the
    # stream see the data.
    return tensor if device.type == "cpu" else tensor.to(device, non_blocking=True)


def write_synthetic_cifar10(data_dir: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write a synthetic CIFAR-10 under ``data_dir`` in the layout and format of the real one
    (``cifar10/cifar-10-batches-py``, five training batches and a test batch of 10,000 images);
    returns the batch folder. For machines without the dataset: a GPU check, a smoke test.

    Each class has a coarse colour pattern (a random 3x4x4 grid of values 0..127, upsampled to
    32x32) and every image is its class's pattern plus uniform noise in 0..127, so a network
    learns it well above chance in one short epoch: accuracies check the training path, not an
    architecture. The same ``seed`` writes the same bytes.
    """
    check_int(seed, "seed", minimum=0)
    folder = Path(data_dir) / CIFAR10_SUBDIR
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    grids = rng.integers(0, 128, (NUM_CLASSES, 3, 4, 4), dtype=np.uint8)
    patterns = grids.repeat(8, axis=2).repeat(8, axis=3).reshape(NUM_CLASSES, 3072)
    for split, names in SPLIT_FILES.items():
        for name in names:
            labels = rng.integers(0, NUM_CLASSES, IMAGES_PER_BATCH)
            # Random bytes masked to 0..127: several times faster than integers(0, 128) for
            # 30 MB, and uint8 throughout (127 + 127 cannot overflow).
            noise = np.frombuffer(rng.bytes(IMAGES_PER_BATCH * 3072), dtype=np.uint8) & 127
            images = patterns[labels] + noise.reshape(IMAGES_PER_BATCH, 3072)
            batch = {
                b"batch_label": f"synthetic {split} batch {name} (seed {seed})".encode(),
                b"data": images,
                b"labels": labels.tolist(),
            }
            # Protocol 3 writes the bytes keys and the array data as plain bytes, which the
            # restricted unpickler admits (protocol 2 under Python 3 would reference _codecs).
            with open(folder / name, "wb") as f:
                pickle.dump(batch, f, protocol=3)
    return folder


def clear_cache() -> None:
    """Forget the cached host arrays and device tensors of this process."""
    _load_split_cached.cache_clear()
    with _device_lock:
        _device_cache.clear()
        _index_cache.clear()
