"""Budgets of the CIFAR-10 backend: the presets, dict budgets and what they derive, ``"auto"``, and
the errors of bad budgets."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from nas_gym.backends.cifar.budget import (
    BUDGETS,
    MIN_STEPS,
    MIN_STEPS_PER_EPOCH,
    Budget,
    budget_name,
    resolve_budget,
)


# ------------------------------------------------------------------------------------ presets
def test_resolve_budget_presets_dicts_and_instances() -> None:
    assert resolve_budget("smoke") is BUDGETS["smoke"]
    custom = resolve_budget({"epochs": 2, "batch_size": 128})
    assert custom == dataclasses.replace(BUDGETS["proxy"], epochs=2, batch_size=128)
    assert resolve_budget(custom) is custom
    smoke, proxy, full = BUDGETS["smoke"], BUDGETS["proxy"], BUDGETS["full"]
    assert smoke.epochs * smoke.train_size < proxy.epochs * proxy.train_size < full.epochs * full.train_size
    assert full.train_size == 45_000


def test_gpu_budget_is_airbench_shaped_and_between_proxy_and_full() -> None:
    gpu, proxy, full = BUDGETS["gpu"], BUDGETS["proxy"], BUDGETS["full"]
    assert (gpu.epochs, gpu.train_size, gpu.val_size, gpu.batch_size) == (10, 45_000, 5_000, 1024)
    assert not gpu.reduced and gpu.steps == 10 * (45_000 // 1024) == 430
    # The peak step of proxy (lr per 256 images x batch / 256), not twice it.
    assert gpu.lr * gpu.batch_size / 256 == proxy.lr * proxy.batch_size / 256 == 0.8
    images = [b.epochs * b.train_size for b in (proxy, gpu, full)]
    assert images == sorted(images) and len(set(images)) == 3


def test_only_cpu_proxy_reduces_the_network_and_the_images() -> None:
    cpu_proxy = BUDGETS["cpu-proxy"]
    assert (cpu_proxy.width, cpu_proxy.cells, cpu_proxy.resolution) == (0.5, 1, 16)
    assert [name for name, budget in BUDGETS.items() if budget.reduced] == ["cpu-proxy"]
    assert all(budget.steps >= MIN_STEPS for budget in BUDGETS.values())


def test_budget_is_a_frozen_dataclass() -> None:
    budget = Budget(epochs=1, train_size=640, val_size=10, batch_size=32)
    with pytest.raises(dataclasses.FrozenInstanceError):
        budget.epochs = 2  # type: ignore[misc]


def test_numpy_and_int_values_give_equal_budgets() -> None:
    """Values are normalised, so equal budgets compare, hash and describe equal (the description
    is part of the trainer's fingerprint, the key of stored results)."""
    plain = Budget(epochs=2, train_size=640, val_size=10, batch_size=32, lr=1, resolution=16)
    from_numpy = Budget(
        epochs=np.int64(2),
        train_size=np.int32(640),
        val_size=10,
        batch_size=32,
        lr=np.float32(1.0),
        resolution=np.int64(16),
    )
    assert from_numpy == plain and hash(from_numpy) == hash(plain)
    assert from_numpy.describe() == plain.describe()
    assert type(from_numpy.epochs) is int and type(plain.lr) is float
    assert "lr=1.0," in plain.describe() and "resolution=16" in plain.describe()


def test_steps_count_the_batch_capped_at_the_training_images() -> None:
    budget = Budget(epochs=20, train_size=100, val_size=10, batch_size=512)
    assert budget.effective_batch_size == 100 and budget.steps == 20
    assert Budget(epochs=3, train_size=650, val_size=10, batch_size=32).steps == 3 * 20


# ------------------------------------------------------------------------------------ dict budgets
def test_a_dict_budget_may_name_its_base() -> None:
    assert resolve_budget({"base": "smoke", "epochs": 2}) == dataclasses.replace(BUDGETS["smoke"], epochs=2)
    assert resolve_budget({"base": "cpu-proxy", "epochs": 2}) == dataclasses.replace(
        BUDGETS["cpu-proxy"], epochs=2
    )
    # Not "auto": a dict means the same budget on every device.
    assert resolve_budget({"base": "full"}, "cpu") == BUDGETS["full"]


def test_a_dict_budget_without_a_base_changes_proxy() -> None:
    for device_type in ("cpu", "cuda"):
        assert resolve_budget({"epochs": 3}, device_type) == dataclasses.replace(BUDGETS["proxy"], epochs=3)


@pytest.mark.parametrize(
    ("changes", "batch_size"),
    [
        # proxy's 512 halves until an epoch of 2,000 images has 25 steps: 256 (7), 128 (15), 64 (31).
        ({"epochs": 1, "train_size": 2_000, "val_size": 1_000}, 64),
        # ... but never below 32, even when an epoch then has fewer steps (640 // 32 = 20).
        ({"train_size": 640}, 32),
        # smoke's 64 already gives 5,000 images 78 steps per epoch.
        ({"base": "smoke", "train_size": 5_000}, 64),
        ({"base": "smoke", "train_size": 1_000}, 32),
        # Without a new train_size the base's batch is kept, as is a batch the dict sets.
        ({"epochs": 1}, 512),
        ({"epochs": 4, "train_size": 2_000, "batch_size": 100}, 100),
    ],
)
def test_a_dict_budget_derives_the_batch_it_does_not_set(changes: dict, batch_size: int) -> None:
    budget = resolve_budget(changes)
    assert budget.batch_size == batch_size
    untouched = {f.name for f in dataclasses.fields(Budget)} - set(changes) - {"batch_size"}
    base = BUDGETS[changes.get("base", "proxy")]
    assert {name: getattr(budget, name) for name in untouched} == {
        name: getattr(base, name) for name in untouched
    }
    if "batch_size" not in changes and batch_size > 32:
        assert budget.train_size // budget.batch_size >= MIN_STEPS_PER_EPOCH


@pytest.mark.parametrize(
    ("budget", "match"),
    [
        (
            {"epochs": 1, "train_size": 256, "batch_size": 64},
            r"expected a budget of at least 20 optimiser steps \(epochs x \(train_size // batch_size\)\), "
            r"got 4 \(1 x \(256 // 64\)\): raise 'epochs' or 'train_size', or lower 'batch_size'$",
        ),
        # The derived batch (32 for 500 images) still leaves too few steps: the error says so.
        (
            {"epochs": 1, "train_size": 500},
            r"at least 20 optimiser steps .*got 15 \(1 x \(500 // 32\)\): raise 'epochs' or 'train_size'",
        ),
    ],
)
def test_too_few_optimiser_steps_are_refused_with_what_to_change(budget: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        resolve_budget(budget)


def test_a_budget_built_directly_is_refused_below_the_minimum_steps() -> None:
    with pytest.raises(ValueError, match=r"got 19 \(19 x \(100 // 100\)\): raise 'epochs'"):
        Budget(epochs=19, train_size=100, val_size=10, batch_size=512)


# ------------------------------------------------------------------------------------ "auto"
def test_auto_budget_follows_the_device() -> None:
    assert resolve_budget("auto", "cpu") is BUDGETS["cpu-proxy"]
    assert resolve_budget("auto", "cuda") is BUDGETS["gpu"]
    assert resolve_budget("auto") is BUDGETS["cpu-proxy"]  # the device type defaults to the CPU


@pytest.mark.parametrize(
    ("budget", "device_type", "name"),
    [
        ("auto", "cuda", "gpu"),
        ("auto", "cpu", "cpu-proxy"),
        ("smoke", "cuda", "smoke"),
        ({"epochs": 2}, "cpu", None),
        (BUDGETS["smoke"], "cpu", None),
    ],
)
def test_budget_name_resolves_auto_only(budget, device_type: str, name: str | None) -> None:
    assert budget_name(budget, device_type) == name


# ------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("budget", "error", "match"),
    [
        ("smok", ValueError, r"expected a budget in .*got 'smok' \(did you mean 'smoke'\?\)"),
        ({"epoch": 2}, ValueError, r"expected budget keys among .*got 'epoch' \(did you mean 'epochs'\?\)"),
        ({"base": "smok"}, ValueError, r"expected budget 'base' in .*got 'smok' \(did you mean 'smoke'\?\)"),
        (
            {"base": "auto"},
            ValueError,
            r"expected budget 'base' in \['cpu-proxy', 'full', 'gpu', 'proxy', 'smoke'\]",
        ),
        ({"base": 3}, TypeError, r"expected budget 'base' as a name in .*, got 3$"),
        ({"train_size": 0}, ValueError, r"expected budget 'train_size' as a positive int, got 0"),
        ({"train_size": "big"}, TypeError, r"expected budget 'train_size' as a positive int, got 'big'"),
        (
            {"train_size": 50_000},
            ValueError,
            r"expected budget 'train_size' as an int in 1..45000, got 50000",
        ),
        ({"val_size": 5_001}, ValueError, r"expected budget 'val_size' as an int in 1..5000, got 5001"),
        ({"lr": 0.0}, ValueError, r"expected budget 'lr' as a positive number, got 0.0"),
        ({"lr": math.nan}, ValueError, r"expected budget 'lr' as a positive number, got nan"),
        (
            {"label_smoothing": 1.0},
            ValueError,
            r"expected budget 'label_smoothing' as a number in 0.0..0.99, got 1.0",
        ),
        ({"width": "0.5"}, TypeError, r"expected budget 'width' as a number in \(0.0, 4.0\], got '0.5'"),
        ({"epochs": 1.5}, TypeError, r"expected budget 'epochs' as a positive int, got 1.5"),
        ({"epochs": True}, TypeError, r"expected budget 'epochs' as a positive int, got True"),
        ({"augment": "yes"}, TypeError, r"expected budget 'augment' as a bool, got 'yes'"),
        ({"cells": 0}, ValueError, r"expected budget 'cells' as a positive int or None, got 0"),
        ({"resolution": 16.0}, TypeError, r"expected budget 'resolution' as an int in 8..32, got 16.0"),
        ({"resolution": 20}, ValueError, r"expected budget 'resolution' in \(8, 16, 24, 32\), got 20"),
        (3, TypeError, r"expected budget as a name in .*, a dict or a Budget, got int"),
    ],
)
def test_resolve_budget_errors(budget, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        resolve_budget(budget)
