"""CIFAR-10 loading: shapes, smaller resolutions, the fixed split, the restricted unpickler, clear
errors, the caches."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from nas_gym.backends.cifar import data
from nas_gym.backends.cifar.data import (
    CIFAR10_SUBDIR,
    SPLIT_FILES,
    DataFormatError,
    DataNotFoundError,
    RestrictedUnpickler,
    UnsafePickleError,
    check_cifar10,
    cifar10_on_device,
    clear_cache,
    load_cifar10,
    split_on_device,
    train_val_split,
    write_synthetic_cifar10,
)


def _layout(root: Path) -> Path:
    """An empty CIFAR-10 folder under ``root`` with every batch file present (and empty)."""
    folder = root / CIFAR10_SUBDIR
    folder.mkdir(parents=True)
    for names in SPLIT_FILES.values():
        for name in names:
            (folder / name).write_bytes(b"")
    return folder


def _write_batch(path: Path, batch: dict) -> None:
    # bytes keys as in the original release; protocol 3 writes them (and the array data) as plain
    # bytes, where protocol 2 under Python 3 would reference _codecs.encode.
    path.write_bytes(pickle.dumps(batch, protocol=3))


def _valid_batch() -> dict:
    rng = np.random.default_rng(0)
    return {
        b"data": rng.integers(0, 256, (10_000, 3072), dtype=np.uint8),
        b"labels": [int(v) for v in rng.integers(0, 10, 10_000)],
        b"batch_label": b"training batch 1 of 5",
    }


# ------------------------------------------------------------------------------------ real data
def test_train_split_shapes_counts_dtypes(cifar_dir):
    images, labels = load_cifar10(cifar_dir, split="train")
    assert images.shape == (50_000, 3, 32, 32) and images.dtype == np.uint8
    assert labels.shape == (50_000,) and labels.dtype == np.int64
    assert np.bincount(labels, minlength=10).tolist() == [5_000] * 10
    # Channel order: the shared copy's train means are 0.4913 / 0.4821 / 0.4465 (R, G, B).
    means = images[:5_000].mean(axis=(0, 2, 3)) / 255
    assert means[0] > means[2] and means[1] > means[2]
    assert not images.flags.writeable and not labels.flags.writeable


def test_test_split_shapes(cifar_dir):
    images, labels = load_cifar10(cifar_dir, split="test")
    assert images.shape == (10_000, 3, 32, 32) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [1_000] * 10


def test_unknown_split_is_refused(cifar_dir):
    with pytest.raises(ValueError, match=r"expected split in .*got 'tset'.*did you mean 'test'"):
        load_cifar10(cifar_dir, split="tset")


def test_cache_is_not_rebuilt_between_calls(cifar_dir, monkeypatch):
    clear_cache()
    reads: list[str] = []
    original = data._read_batch

    def counting(path: Path):
        reads.append(path.name)
        return original(path)

    monkeypatch.setattr(data, "_read_batch", counting)
    first = load_cifar10(cifar_dir)
    second = load_cifar10(cifar_dir)
    assert reads == list(SPLIT_FILES["train"])
    assert first[0] is second[0] and first[1] is second[1]

    on_cpu = cifar10_on_device("cpu", cifar_dir)
    assert cifar10_on_device("cpu", cifar_dir) is on_cpu
    assert reads == list(SPLIT_FILES["train"])  # the device cache reuses the host arrays
    assert np.shares_memory(on_cpu[0].numpy(), first[0])  # and the CPU "upload" is zero-copy

    clear_cache()
    load_cifar10(cifar_dir)
    assert reads == list(SPLIT_FILES["train"]) * 2


def test_smaller_resolutions_are_block_means_of_the_images(cifar_dir):
    full, full_labels = cifar10_on_device("cpu", cifar_dir)
    small, labels = cifar10_on_device("cpu", cifar_dir, resolution=16)
    assert small.shape == (50_000, 3, 16, 16) and small.dtype == torch.uint8
    assert labels is full_labels  # one label tensor for every resolution
    blocks = full[:20].float().view(20, 3, 16, 2, 16, 2).mean(dim=(3, 5))
    assert torch.equal(small[:20], blocks.round().to(torch.uint8))
    assert cifar10_on_device("cpu", cifar_dir, resolution=16)[0] is small  # cached per resolution


# ------------------------------------------------------------------------------------ split
def test_train_val_split_is_fixed_seeded_and_disjoint():
    train, val = train_val_split()
    assert len(train) == 45_000 and len(val) == 5_000
    assert train.dtype == np.int64 and val.dtype == np.int64
    assert np.intersect1d(train, val).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(50_000))
    again_train, again_val = train_val_split(seed=0)
    assert np.array_equal(train, again_train) and np.array_equal(val, again_val)
    other_train, other_val = train_val_split(seed=1)
    assert not np.array_equal(np.sort(val), np.sort(other_val))
    # Random order: a prefix (smaller budget) is a random subset, not the lowest indices.
    assert val[:100].max() > 10_000


def test_split_on_device_is_a_cached_prefix_of_the_fixed_split():
    cpu = torch.device("cpu")
    train, val = split_on_device(cpu, 100, 50)
    fixed_train, fixed_val = train_val_split()
    assert train.dtype == torch.int64 and train.tolist() == fixed_train[:100].tolist()
    assert val.tolist() == fixed_val[:50].tolist()
    assert split_on_device(cpu, 100, 50)[0] is train
    assert split_on_device(cpu, 200, 50)[0][:100].tolist() == train.tolist()  # a bigger budget extends it


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"val_size": 0}, ValueError, "0 < val_size < num_train"),
        ({"val_size": 50_000}, ValueError, "0 < val_size < num_train"),
        ({"seed": 1.5}, TypeError, "expected seed as an int"),
    ],
)
def test_train_val_split_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        train_val_split(**kwargs)


# ------------------------------------------------------------------------------------ safety
class _Hostile:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_restricted_unpickler_refuses_a_hostile_pickle(tmp_path):
    marker = tmp_path / "code-ran"
    folder = _layout(tmp_path)
    payload = {b"data": _Hostile(marker), b"labels": [0] * 10_000}
    (folder / "data_batch_1").write_bytes(pickle.dumps(payload, protocol=3))
    # Sanity check of the test itself: the plain unpickler would run the command.
    assert b"system" in (folder / "data_batch_1").read_bytes()

    with pytest.raises(UnsafePickleError, match=r"data_batch_1.*system.*refusing to load it"):
        load_cifar10(tmp_path)
    assert not marker.exists()


def test_restricted_unpickler_admits_only_numpy_array_pieces(tmp_path):
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    loaded = RestrictedUnpickler(_as_file(pickle.dumps(array, protocol=3)), encoding="bytes").load()
    assert np.array_equal(loaded, array)
    with pytest.raises(UnsafePickleError, match=r"builtins\.eval"):
        RestrictedUnpickler(_as_file(pickle.dumps(eval, protocol=3))).load()


def _as_file(payload: bytes):
    import io

    return io.BytesIO(payload)


# ------------------------------------------------------------------------------------ malformed files
def test_malformed_batch_names_the_file_and_the_expected_shape(tmp_path):
    folder = _layout(tmp_path)
    batch = _valid_batch()
    batch[b"data"] = batch[b"data"][:, :1024]
    _write_batch(folder / "data_batch_1", batch)
    with pytest.raises(
        DataFormatError, match=r"data_batch_1.*\(10000, 3072\).*got uint8 array of shape \(10000, 1024\)"
    ):
        load_cifar10(tmp_path)


def test_labels_out_of_range_are_refused(tmp_path):
    folder = _layout(tmp_path)
    batch = _valid_batch()
    batch[b"labels"][5] = 10
    _write_batch(folder / "test_batch", batch)
    with pytest.raises(DataFormatError, match=r"labels in 0\.\.9 in .*test_batch, got 0\.\.10"):
        load_cifar10(tmp_path, split="test")


def test_truncated_file_is_a_format_error(tmp_path):
    folder = _layout(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps(_valid_batch(), protocol=3)[:1000])
    with pytest.raises(DataFormatError, match=r"test_batch.*does not unpickle"):
        load_cifar10(tmp_path, split="test")


def test_valid_synthetic_batches_load(tmp_path):
    folder = _layout(tmp_path)
    batch = _valid_batch()
    _write_batch(folder / "test_batch", batch)
    images, labels = load_cifar10(tmp_path, split="test")
    assert images.shape == (10_000, 3, 32, 32)
    # Row layout: 1024 red values, then green, then blue, each a row-major 32x32 plane.
    assert np.array_equal(images[7, 1].ravel(), batch[b"data"][7, 1024:2048])
    assert labels.tolist() == batch[b"labels"]


def test_synthetic_cifar10_loads_like_the_real_one_and_is_learnable(tmp_path):
    """The stand-in of machines without the dataset: the real loader reads it, and its classes are
    told apart by their mean image (a nearest-mean classifier), so training on it must learn."""
    assert write_synthetic_cifar10(tmp_path) == tmp_path / CIFAR10_SUBDIR
    images, labels = load_cifar10(tmp_path, split="train")
    test_images, test_labels = load_cifar10(tmp_path, split="test")
    assert images.shape == (50_000, 3, 32, 32) and test_images.shape == (10_000, 3, 32, 32)
    assert images.dtype == np.uint8 and set(np.unique(labels)) == set(range(10))
    means = np.stack([images[labels == c][:500].reshape(500, -1).mean(0) for c in range(10)])
    probe = test_images[:1000].reshape(1000, 1, -1).astype(np.float32)
    nearest = ((probe - means[None]) ** 2).sum(-1).argmin(1)
    assert (nearest == test_labels[:1000]).mean() > 0.9
    with pytest.raises(ValueError, match=r"expected seed as a non-negative int, got -1"):
        write_synthetic_cifar10(tmp_path, seed=-1)


# ------------------------------------------------------------------------------------ missing data
def test_missing_data_error_names_folder_env_var_and_download(tmp_path):
    folder = tmp_path / CIFAR10_SUBDIR
    for call in (lambda: load_cifar10(tmp_path), lambda: check_cifar10(tmp_path)):
        with pytest.raises(DataNotFoundError, match=re.escape(str(folder))) as info:
            call()
        message = str(info.value)
        assert "NAS_GYM_DATA" in message and "download=True" in message
        assert isinstance(info.value, FileNotFoundError)


def test_data_dir_defaults_to_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_GYM_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError, match=re.escape(str(tmp_path / CIFAR10_SUBDIR))):
        check_cifar10()


def test_failed_download_says_so(tmp_path, monkeypatch):
    import torchvision.datasets

    roots: list[str] = []

    class Offline:
        def __init__(self, root: str, train: bool = True, download: bool = False):
            roots.append(root)
            raise RuntimeError("Error downloading cifar-10-python.tar.gz: no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", Offline)
    with pytest.raises(DataNotFoundError, match=r"download attempt failed.*no network"):
        check_cifar10(tmp_path, download=True)
    assert roots == [str(tmp_path / "cifar10")]


def test_download_is_skipped_when_the_data_is_there(cifar_dir, monkeypatch):
    import torchvision.datasets

    def must_not_download(*args, **kwargs):
        raise AssertionError("torchvision was asked to download data that is already present")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", must_not_download)
    assert check_cifar10(cifar_dir, download=True) == cifar_dir / CIFAR10_SUBDIR
