"""The CIFAR-10 evaluator and the final training: arguments, devices, threads, fidelities, real
(tiny) trainings on the CPU, failures as statuses, and the fingerprint."""

from __future__ import annotations

import dataclasses
import math
import pickle

import pytest
import torch

from nas_gym.backends.cifar import data, training
from nas_gym.backends.cifar.budget import BUDGETS, resolve_budget
from nas_gym.backends.cifar.data import DataNotFoundError
from nas_gym.backends.cifar.speed import SpeedOptions
from nas_gym.backends.cifar.trainer import TRAINER_VERSION, CifarTrainer, final_train
from nas_gym.backends.cifar.training import count_flops
from nas_gym.core.devices import default_threads
from nas_gym.evaluation.runner import EvaluationRunner, evaluator_fingerprint
from nas_gym.spaces import SeedSpace

TINY = {"epochs": 1, "train_size": 640, "val_size": 200, "batch_size": 32}
"""The fewest optimiser steps a budget may have (20): every code path, not much learning."""
SMALL = {"epochs": 1, "train_size": 1024, "val_size": 1000, "batch_size": 32}
THREE_LAYERS = "k3-relu-max|k3-relu-max|k3-relu-max"
# Real trainings below run on one thread where the thread count is not what they test: on a busy
# two-core machine a TINY training took 5 s on two threads and 0.5 s on one.


def test_speed_options_are_checked_and_restored(cifar_dir):
    with pytest.raises(
        ValueError, match=r"expected speed in \('fast', 'reference'\) or a SpeedOptions, got 'quick'"
    ):
        CifarTrainer("seed", budget=TINY, device="cpu", data_dir=cifar_dir, speed="quick")
    with pytest.raises(ValueError, match=r"expected threads as a positive int or None, got 0"):
        SpeedOptions(threads=0)
    threads, benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    speed = SpeedOptions(channels_last=True, cudnn_benchmark=not benchmark, threads=threads + 1)
    metrics = CifarTrainer("seed", budget=TINY, device="cpu", data_dir=cifar_dir, speed=speed)("k3-relu-max")
    assert metrics["status"] == "ok"
    assert (torch.get_num_threads(), torch.backends.cudnn.benchmark) == (threads, benchmark)


def test_auto_device_is_not_resolved_at_construction(cifar_dir, monkeypatch):
    """A parent process that builds the trainer and forks workers must not initialise CUDA."""

    def no_cuda_here() -> bool:
        raise AssertionError("torch.cuda.is_available() was called at construction")

    monkeypatch.setattr(torch.cuda, "is_available", no_cuda_here)
    trainer = CifarTrainer("seed", budget=TINY, device="auto", data_dir=cifar_dir)
    assert trainer.device == "auto" and "auto" not in trainer.fingerprint
    assert f"device={'cuda' if torch.cuda.device_count() > 0 else 'cpu'} " in trainer.fingerprint


def test_auto_device_type_is_fixed_at_construction(cifar_dir, monkeypatch):
    """The fingerprint names the device type "auto" meant where the trainer was built; a call
    where it means another type refuses to train rather than store results under a wrong key."""
    cpu = CifarTrainer("seed", budget=TINY, device="cpu", data_dir=cifar_dir)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert CifarTrainer("seed", budget=TINY, device="auto", data_dir=cifar_dir).fingerprint == cpu.fingerprint
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    gpu = CifarTrainer("seed", budget=TINY, device="auto", data_dir=cifar_dir)
    assert gpu.device_type == "cuda" and gpu.speed_options == SpeedOptions.fast("cuda")
    assert "device=cuda " in gpu.fingerprint and "bf16=True" in gpu.fingerprint
    assert "threads=" not in gpu.fingerprint  # host threads do not change CUDA results
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(
        RuntimeError, match=r"expected device 'auto' to mean 'cuda' in this process.*got 'cpu'"
    ):
        gpu("k3-relu-max")


def test_auto_budget_follows_the_device_type(cifar_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    cpu = CifarTrainer("seed", device="auto", data_dir=cifar_dir)  # budget "auto" by default
    assert cpu.budget is BUDGETS["cpu-proxy"] and cpu.budget_name == cpu.fidelity == "cpu-proxy"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    gpu = CifarTrainer("seed", device="auto", data_dir=cifar_dir)
    assert gpu.budget is BUDGETS["gpu"] and gpu.budget_name == gpu.fidelity == "gpu"
    assert "budget=(epochs=10,train_size=45000,val_size=5000,batch_size=1024," in gpu.fingerprint


def test_with_fidelity_and_with_threads_change_a_copy(cifar_dir):
    trainer = CifarTrainer("seed", budget="smoke", device="cpu", data_dir=cifar_dir)
    changes = {"base": "smoke", "epochs": 2}
    longer = trainer.with_fidelity(changes)
    changes["epochs"] = 3  # the trainer keeps its own copy of the dict
    assert longer.budget == dataclasses.replace(BUDGETS["smoke"], epochs=2)
    assert (longer.budget_name, longer.fidelity) == ("custom", {"base": "smoke", "epochs": 2})
    assert (trainer.budget, trainer.fidelity) == (BUDGETS["smoke"], "smoke")
    assert longer.fingerprint != trainer.fingerprint
    assert trainer.with_fidelity("auto").fidelity == "cpu-proxy"
    assert trainer.fidelities == ("smoke", "cpu-proxy", "proxy", "gpu", "full")
    one = trainer.with_threads(1)
    assert (one.threads, trainer.threads) == (1, default_threads())
    assert "threads=1 " in one.fingerprint and one.speed_options.channels_last
    with pytest.raises(ValueError, match=r"expected threads as a positive int, got 0"):
        trainer.with_threads(0)


def test_thread_arguments_are_checked(cifar_dir):
    with pytest.raises(ValueError, match=r"expected threads as a positive int or None, got 0"):
        CifarTrainer("seed", budget=TINY, device="cpu", data_dir=cifar_dir, threads=0)
    with pytest.raises(
        ValueError, match=r"expected threads=2 to agree with speed.threads, got speed.threads=1"
    ):
        CifarTrainer(
            "seed", budget=TINY, device="cpu", data_dir=cifar_dir, speed=SpeedOptions(threads=1), threads=2
        )
    from_speed = CifarTrainer(
        "seed", budget=TINY, device="cpu", data_dir=cifar_dir, speed=SpeedOptions(threads=2)
    )
    assert from_speed.speed_options.threads == 2


def test_missing_data_fails_at_construction(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"NAS_GYM_DATA.*download=True"):
        CifarTrainer("seed", budget="smoke", device="cpu", data_dir=tmp_path)


# ------------------------------------------------------------------------------------ real training
def test_smoke_budget_learns_well_above_chance(cifar_dir):
    trainer = CifarTrainer("seed", budget="smoke", device="cpu", data_dir=cifar_dir, threads=1)
    metrics = trainer(THREE_LAYERS)
    assert metrics["status"] == "ok"
    assert metrics["accuracy"] > 0.2, metrics
    model = SeedSpace().build_model(THREE_LAYERS)
    assert metrics["params"] == sum(p.numel() for p in model.parameters())
    assert metrics["flops"] == count_flops(model)
    assert 0 < metrics["train_seconds"] < 600


@pytest.mark.parametrize(
    "arch",
    ["|".join(["k3-sigmoid-avg"] * 5 + ["k5-sigmoid-max"] * 5), "k5-relu-max"],
    ids=["deep-sigmoid", "shallow-relu"],
)
def test_extreme_architectures_train(cifar_dir, arch):
    metrics = CifarTrainer("seed", budget=TINY, device="cpu", data_dir=cifar_dir, threads=1)(arch)
    assert metrics["status"] == "ok"
    assert math.isfinite(metrics["accuracy"]) and 0.0 <= metrics["accuracy"] <= 1.0


@pytest.mark.slow
def test_cpu_accuracy_does_not_depend_on_the_process_thread_count(cifar_dir, monkeypatch):
    """The trainer trains on its own thread count (every core of the process, default_threads(),
    unless ``threads=`` says otherwise) whatever the caller's torch setting, and puts that setting
    back: the thread count changes the order of float reductions, so it must not come from the
    caller."""
    trainer = CifarTrainer("seed", budget=TINY, device="cpu", data_dir=cifar_dir)
    seen: list[int] = []
    real_fit = training.fit

    def recording_fit(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(training, "fit", recording_fit)
    before = torch.get_num_threads()
    accuracies = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            accuracies.append(trainer("k3-relu-max")["accuracy"])
            assert torch.get_num_threads() == threads
        two = CifarTrainer("seed", budget=TINY, device="cpu", data_dir=cifar_dir, threads=2)
        torch.set_num_threads(1)
        assert two("k3-relu-max")["status"] == "ok" and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert seen == [default_threads(), default_threads(), 2]
    assert accuracies[0] == accuracies[1]


def test_cpu_training_is_deterministic_and_leaves_the_global_rng_alone(cifar_dir):
    trainer = CifarTrainer("seed", budget=TINY, device="cpu", data_dir=cifar_dir, threads=1, seed=3)
    state = torch.get_rng_state()
    first = trainer(THREE_LAYERS)
    assert torch.equal(torch.get_rng_state(), state)
    clone = pickle.loads(pickle.dumps(trainer))
    second = clone(THREE_LAYERS)
    assert first["accuracy"] == second["accuracy"]
    assert (first["params"], first["flops"]) == (second["params"], second["flops"])


def test_huge_learning_rate_reports_diverged(cifar_dir):
    trainer = CifarTrainer("seed", budget={**TINY, "lr": 1e30}, device="cpu", data_dir=cifar_dir, threads=1)
    metrics = trainer("k3-relu-max|k3-relu-max")
    assert metrics["status"] == "diverged"
    assert metrics["accuracy"] == 0.0
    assert "NaN or infinite" in metrics["error"]
    runner_metrics = EvaluationRunner.run_evaluator(trainer, "k3-relu-max|k3-relu-max")
    assert runner_metrics["status"] == "diverged"


def test_out_of_memory_is_reported_and_the_trainer_stays_usable(cifar_dir, monkeypatch):
    trainer = CifarTrainer("seed", budget=TINY, device="cpu", data_dir=cifar_dir, threads=1)
    real_fit = training.fit

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(training, "fit", out_of_memory)
    metrics = trainer("k3-relu-max")
    assert metrics["status"] == "oom" and "out of memory" in metrics["error"]
    monkeypatch.setattr(training, "fit", real_fit)
    assert trainer("k3-relu-max")["status"] == "ok"


def test_a_reduced_budget_trains_a_smaller_network_and_reports_the_full_one(cifar_dir):
    arch = "k3-relu-max|k3-relu-max"
    reduced = {**TINY, "width": 0.5, "resolution": 16}
    metrics = CifarTrainer("seed", budget=reduced, device="cpu", data_dir=cifar_dir, threads=1)(arch)
    assert metrics["status"] == "ok" and metrics["budget"] == "custom"
    full = SeedSpace().build_model(arch)
    assert metrics["params"] == sum(p.numel() for p in full.parameters())
    assert metrics["flops"] == count_flops(full)
    half = SeedSpace().build_model(arch, width=0.5)
    assert metrics["trained_params"] == sum(p.numel() for p in half.parameters()) < metrics["params"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("speed", "seeds"),
    [
        (SpeedOptions.fast("cpu"), (0, 1)),
        # The CUDA settings, run on the CPU so that their code path is checked on every machine.
        (SpeedOptions(bf16=True, channels_last=True), (0,)),
    ],
    ids=["cpu-fast", "bf16-channels-last"],
)
def test_fast_path_matches_the_reference_path(cifar_dir, speed, seeds):
    """Same seeds, different numerics: paired accuracies agree far more closely than the spread
    between seeds at this budget (standard deviation about 0.03 over seeds)."""
    for seed in seeds:
        fast = CifarTrainer(
            "seed", budget=SMALL, device="cpu", data_dir=cifar_dir, threads=1, seed=seed, speed=speed
        )
        reference = CifarTrainer(
            "seed", budget=SMALL, device="cpu", data_dir=cifar_dir, threads=1, seed=seed, speed="reference"
        )
        fast_accuracy = fast(THREE_LAYERS)["accuracy"]
        reference_accuracy = reference(THREE_LAYERS)["accuracy"]
        assert abs(fast_accuracy - reference_accuracy) <= 0.04, (seed, fast_accuracy, reference_accuracy)
        assert reference_accuracy > 0.15


def test_trainer_never_reads_the_test_batch(cifar_dir, monkeypatch):
    data.clear_cache()
    reads: list[str] = []
    original = data._read_batch

    def recording(path):
        reads.append(path.name)
        return original(path)

    monkeypatch.setattr(data, "_read_batch", recording)
    trainer = CifarTrainer("seed", budget=TINY, device="cpu", data_dir=cifar_dir, threads=1)
    assert reads == []  # construction only checks that the files exist
    trainer("k3-relu-max")
    trainer("k5-relu-avg")
    assert reads == [f"data_batch_{i}" for i in range(1, 6)]  # loaded once, no test batch


def test_final_train_reports_validation_and_test_accuracy(cifar_dir):
    epochs: list[tuple[int, int]] = []
    result = final_train(
        "seed",
        "k3-relu-max|k3-relu-max",
        budget={**TINY, "epochs": 2},
        device="cpu",
        data_dir=cifar_dir,
        threads=1,
        progress=lambda epoch, total: epochs.append((epoch, total)),
    )
    assert result["status"] == "ok" and result["arch"] == "k3-relu-max|k3-relu-max"
    assert 0.0 <= result["val_accuracy"] <= 1.0 and 0.0 <= result["test_accuracy"] <= 1.0
    assert epochs == [(1, 2), (2, 2)]
    assert result["budget"]["epochs"] == 2


# ------------------------------------------------------------------------------------ identity
def test_trainer_pickles_without_data(cifar_dir):
    trainer = CifarTrainer("seed", budget="smoke", device="cpu", data_dir=cifar_dir)
    payload = pickle.dumps(trainer)
    assert len(payload) < 20_000  # settings only; the data stays in the per-process cache
    clone = pickle.loads(payload)
    assert clone.fingerprint == trainer.fingerprint
    assert clone.budget == trainer.budget and clone.device == "cpu"


def test_fingerprint_names_device_speed_and_cpu_threads(cifar_dir):
    base = CifarTrainer("seed", budget="smoke", device="cpu", data_dir=cifar_dir)
    assert f"device=cpu threads={default_threads()} " in base.fingerprint
    assert f"speed=({SpeedOptions.fast('cpu').describe()})" in base.fingerprint
    same = CifarTrainer("seed", budget="smoke", device="cpu", data_dir=cifar_dir, threads=default_threads())
    assert same.fingerprint == base.fingerprint
    others = [
        CifarTrainer("seed", budget="smoke", device="cpu", data_dir=cifar_dir, threads=default_threads() + 1),
        CifarTrainer("seed", budget="smoke", device="cpu", data_dir=cifar_dir, speed="reference"),
        CifarTrainer(
            "seed",
            budget="smoke",
            device="cpu",
            data_dir=cifar_dir,
            speed=SpeedOptions(channels_last=True, bf16=True),
        ),
    ]
    assert len({base.fingerprint, *(o.fingerprint for o in others)}) == 1 + len(others)


def test_fingerprint_names_version_space_budget_and_seed(cifar_dir):
    base = CifarTrainer("seed", budget="smoke", device="cpu", data_dir=cifar_dir)
    fingerprint = base.fingerprint
    assert f"v{TRAINER_VERSION}" in fingerprint and repr(base.space) in fingerprint
    assert evaluator_fingerprint(base) == fingerprint
    others = [
        CifarTrainer("seed", budget="proxy", device="cpu", data_dir=cifar_dir),
        CifarTrainer("seed", budget={"epochs": 3}, device="cpu", data_dir=cifar_dir),
        CifarTrainer(
            "seed", budget=dataclasses.replace(BUDGETS["smoke"], lr=0.1), device="cpu", data_dir=cifar_dir
        ),
        CifarTrainer("seed", budget="smoke", device="cpu", data_dir=cifar_dir, seed=1),
        CifarTrainer(SeedSpace(max_layers=4), budget="smoke", device="cpu", data_dir=cifar_dir),
    ]
    assert len({fingerprint, *(o.fingerprint for o in others)}) == 1 + len(others)


# ------------------------------------------------------------------------------------ final training
def test_final_train_repeats_the_training_of_an_evaluation(cifar_dir):
    """One training routine for both: equal budget, seed, speed and threads give the same
    validation accuracy on the CPU."""
    arch = "k3-relu-avg"
    evaluation = CifarTrainer("seed", budget=TINY, device="cpu", data_dir=cifar_dir, threads=1, seed=2)(arch)
    final = final_train("seed", arch, budget=TINY, device="cpu", data_dir=cifar_dir, threads=1, seed=2)
    assert final["val_accuracy"] == evaluation["accuracy"]
    for key in ("params", "flops", "trained_params", "status"):
        assert final[key] == evaluation[key], key
    assert final["seed"] == 2 and final["budget"] == dataclasses.asdict(resolve_budget(TINY))


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA error: out of memory"),
    ],
    ids=["OutOfMemoryError", "RuntimeError"],
)
def test_final_train_reports_out_of_memory_as_a_status(cifar_dir, monkeypatch, error):
    def out_of_memory(*args, **kwargs):
        raise error

    monkeypatch.setattr(training, "fit", out_of_memory)
    threads = torch.get_num_threads()
    result = final_train(
        "seed", "k3-relu-max", budget=TINY, device="cpu", data_dir=cifar_dir, threads=threads + 1
    )
    assert result["status"] == "oom" and "out of memory" in result["error"]
    assert result["val_accuracy"] == result["test_accuracy"] == 0.0
    assert result["arch"] == "k3-relu-max" and result["budget"]["train_size"] == TINY["train_size"]
    assert torch.get_num_threads() == threads  # the training's thread count was put back


def test_final_train_raises_errors_that_are_not_out_of_memory(cifar_dir, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("Expected all tensors to be on the same device")

    monkeypatch.setattr(training, "fit", broken)
    with pytest.raises(RuntimeError, match="same device"):
        final_train("seed", "k3-relu-max", budget=TINY, device="cpu", data_dir=cifar_dir, threads=1)
