"""Throughput of nas-gym's CIFAR-10 trainer against a plain PyTorch/torchvision training loop.

Both pipelines train the same ``"seed"``-space architectures with the same recipe (SGD with
Nesterov momentum, the same warm-up/decay schedule, label smoothing, batch size, number of images
and epochs) and evaluate on the same held-out images; only the machinery differs:

- **ours**: :class:`nas_gym.backends.cifar.trainer.CifarTrainer` (uint8 data resident on the device,
  batched crop/flip on the device, no DataLoader, no host sync in the loop, the device's fast
  settings).
- **baseline**: the textbook pipeline: a ``Dataset`` of host images with per-sample torchvision
  transforms ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip()``, ``ToTensor()``,
  ``Normalize(...)``, a ``DataLoader``, fp32 eager, ``loss.item()`` every step.

Each pipeline runs in its own process (so peak memory is its own), and the runs alternate
between the two, so that a change of machine load affects both alike. Reported per
architecture: images/s (training images over the wall time of model build + training +
validation), the ratio, validation accuracy; then the peak memory of each process (RSS on the
CPU, ``torch.cuda.max_memory_allocated`` on CUDA).

Example::

    NAS_GYM_DATA=../shared/data python benchmarks/bench_trainer.py --device cpu --images 4096 --repeats 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from machine import cpu_name  # benchmarks/machine.py

DEFAULT_ARCHS = (
    "k3-relu-max|k3-relu-max|k3-relu-max",
    "k5-relu-max|k3-relu-avg",
    "k3-relu-max|k3-sigmoid-max|k3-relu-avg|k3-relu-max",
)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--images", type=int, default=4096, help="training images per epoch (default 4096)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per training (default 1)")
    parser.add_argument("--val-size", type=int, default=2000, help="validation images (default 2000)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    parser.add_argument(
        "--archs", default=",".join(DEFAULT_ARCHS), help="comma-separated seed-space architectures"
    )
    parser.add_argument("--repeats", type=int, default=1, help="trainings per architecture and pipeline")
    parser.add_argument(
        "--workers", type=int, default=0, help="DataLoader workers of the baseline (default 0)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in both processes")
    parser.add_argument("--data-dir", default=None, help="data folder (default $NAS_GYM_DATA)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the first repeat (default 0; +1 per repeat)"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"expected --repeats >= 1, got {args.repeats}")
    try:
        _budget(args)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    return args


def _budget(args: argparse.Namespace):
    from nas_gym.backends.cifar.trainer import Budget

    return Budget(
        epochs=args.epochs, train_size=args.images, val_size=args.val_size, batch_size=args.batch_size
    )


# ------------------------------------------------------------------------------------ worker state
_state: dict[str, Any] = {}


def _init_worker(kind: str, args: argparse.Namespace) -> None:
    """Per-process set-up: load the data (not timed) and build the pipeline's runner."""
    import torch

    from nas_gym.backends.cifar.data import load_cifar10
    from nas_gym.backends.cifar.trainer import CifarTrainer, resolve_device

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    budget = _budget(args)
    _state.update(kind=kind, device=device, budget=budget, args=args)
    # Untimed warm-up of one batch: loads (and caches) the data, initialises the device and its
    # libraries, so that the timed runs compare steady-state pipelines.
    warmup_arch = "k3-relu-max"
    if kind == "ours":
        tiny = {
            "epochs": 1,
            "train_size": budget.batch_size,
            "val_size": 100,
            "batch_size": budget.batch_size,
        }
        CifarTrainer("seed", budget=tiny, device=device, data_dir=args.data_dir)(warmup_arch)
    else:
        _state["data"] = load_cifar10(args.data_dir)
        _baseline(warmup_arch, seed=0, warmup=True)


def _run(arch: str, seed: int) -> dict[str, Any]:
    import torch

    from nas_gym.backends.cifar.trainer import CifarTrainer

    if _state["kind"] == "ours":
        budget, device, data_dir = _state["budget"], _state["device"], _state["args"].data_dir
        # The same thread count as the baseline (the trainer's CPU default is one thread).
        threads = torch.get_num_threads() if str(device).startswith("cpu") else None
        trainer = CifarTrainer(
            "seed", budget=budget, device=device, data_dir=data_dir, seed=seed, threads=threads
        )
        metrics = trainer(arch)
        return {
            "accuracy": metrics["accuracy"],
            "seconds": metrics["train_seconds"],
            "status": metrics["status"],
        }
    return _baseline(arch, seed)


def _peak_memory() -> dict[str, Any]:
    import torch

    device = _state["device"]
    if device.type == "cuda":
        return {"what": "torch.cuda.max_memory_allocated", "bytes": torch.cuda.max_memory_allocated(device)}
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return {"what": "peak RSS", "bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale}


# ------------------------------------------------------------------------------------ baseline
def _baseline(arch: str, seed: int, warmup: bool = False) -> dict[str, Any]:
    """The textbook loop: per-sample torchvision transforms in a DataLoader, fp32 eager."""
    import numpy as np
    import torch
    from PIL import Image
    from torch import nn
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    from nas_gym.backends.cifar.data import train_val_split
    from nas_gym.backends.cifar.trainer import CIFAR10_MEAN, CIFAR10_STD, SPLIT_SEED, VAL_HOLDOUT
    from nas_gym.spaces import SeedSpace

    budget, device, workers = _state["budget"], _state["device"], _state["args"].workers
    images, labels = _state["data"]
    train_idx, val_idx = train_val_split(len(images), VAL_HOLDOUT, SPLIT_SEED)
    train_idx, val_idx = train_idx[: budget.train_size], val_idx[: budget.val_size]
    if warmup:
        train_idx, val_idx = train_idx[: budget.batch_size], val_idx[: budget.batch_size]

    class Cifar(Dataset):
        def __init__(self, indices: np.ndarray, transform: transforms.Compose):
            self.images = np.ascontiguousarray(images[indices].transpose(0, 2, 3, 1))  # HWC for PIL
            self.labels = labels[indices]
            self.transform = transform

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])

    normalize = transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD)
    train_set = Cifar(
        train_idx,
        transforms.Compose(
            [
                transforms.RandomCrop(32, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                normalize,
            ]
        ),
    )
    val_set = Cifar(val_idx, transforms.Compose([transforms.ToTensor(), normalize]))
    torch.manual_seed(seed)  # torchvision's random transforms draw from the global RNG
    start = time.perf_counter()
    model = SeedSpace().build_model(arch).to(device)
    loader = DataLoader(
        train_set,
        batch_size=budget.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    steps = len(loader) * budget.epochs
    warmup_steps = max(1, round(budget.warmup * steps))
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=budget.lr * budget.batch_size / 256,
        momentum=budget.momentum,
        nesterov=True,
        weight_decay=budget.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            (s + 1) / warmup_steps
            if s < warmup_steps
            else max(0.0, (steps - s) / max(1, steps - warmup_steps))
        ),
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=budget.label_smoothing)
    model.train()
    running_loss = 0.0
    for _ in range(budget.epochs):
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            running_loss += loss.item()
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(val_set, batch_size=1000, num_workers=workers):
            correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
    seconds = time.perf_counter() - start
    status = "ok" if np.isfinite(running_loss) else "diverged"
    return {"accuracy": correct / len(val_set), "seconds": seconds, "status": status}


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    import torch

    from nas_gym.backends.cifar.trainer import SpeedOptions, resolve_device
    from nas_gym.spaces import SeedSpace

    args = _parse_args(argv)
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    space = SeedSpace()
    for arch in archs:
        space.parse(arch)  # fail fast with the space's message
    device = resolve_device(args.device)
    print(
        f"torch {torch.__version__}, device {device}, CPU: {cpu_name()} ({multiprocessing.cpu_count()} cores)"
    )
    print(f"ours: {SpeedOptions.fast(device)}; baseline: fp32 eager, DataLoader(num_workers={args.workers})")
    print(
        f"per training: {args.images} images x {args.epochs} epoch(s), batch {args.batch_size}, "
        f"{args.val_size} validation images; {args.repeats} repeat(s); threads: "
        f"{args.threads if args.threads is not None else torch.get_num_threads()}"
    )
    spawn = multiprocessing.get_context("spawn")
    ours = ProcessPoolExecutor(1, mp_context=spawn, initializer=_init_worker, initargs=("ours", args))
    base = ProcessPoolExecutor(1, mp_context=spawn, initializer=_init_worker, initargs=("baseline", args))
    results: dict[str, dict[str, list[dict[str, Any]]]] = {a: {"ours": [], "baseline": []} for a in archs}
    with ours, base:
        for repeat in range(args.repeats):
            # A new seed per repeat, the same for both pipelines: repeats average over seed noise.
            for arch in archs:
                results[arch]["ours"].append(ours.submit(_run, arch, args.seed + repeat).result())
                results[arch]["baseline"].append(base.submit(_run, arch, args.seed + repeat).result())
        memory = {"ours": ours.submit(_peak_memory).result(), "baseline": base.submit(_peak_memory).result()}

    trained = (
        args.images // min(args.batch_size, args.images) * min(args.batch_size, args.images) * args.epochs
    )
    header = f"{'architecture':50s} {'ours img/s':>10s} {'base img/s':>10s} {'ratio':>6s} {'ours acc':>8s} {'base acc':>8s}"
    print(header)
    print("-" * len(header))
    total = {"ours": 0.0, "baseline": 0.0}
    accuracy_gaps = []
    for arch, runs in results.items():
        seconds = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
        accuracy = {k: statistics.mean(r["accuracy"] for r in v) for k, v in runs.items()}
        for k, v in runs.items():
            total[k] += sum(r["seconds"] for r in v)
        accuracy_gaps += [o["accuracy"] - b["accuracy"] for o, b in zip(runs["ours"], runs["baseline"])]
        statuses = {r["status"] for v in runs.values() for r in v}
        note = "" if statuses == {"ok"} else f"  statuses: {sorted(statuses)}"
        print(
            f"{arch:50s} {trained / seconds['ours']:10.0f} {trained / seconds['baseline']:10.0f} "
            f"{seconds['baseline'] / seconds['ours']:6.2f} {accuracy['ours']:8.3f} {accuracy['baseline']:8.3f}{note}"
        )
    runs_count = len(archs) * args.repeats
    print("-" * len(header))
    print(
        f"overall: ours {trained * runs_count / total['ours']:.0f} img/s, baseline "
        f"{trained * runs_count / total['baseline']:.0f} img/s, speed-up {total['baseline'] / total['ours']:.2f}x"
    )
    print(
        f"accuracy, ours minus baseline over {len(accuracy_gaps)} paired runs: mean "
        f"{statistics.mean(accuracy_gaps) * 100:+.1f} points"
        + (f" (sd {statistics.stdev(accuracy_gaps) * 100:.1f})" if len(accuracy_gaps) > 1 else "")
    )
    for kind, peak in memory.items():
        print(f"peak memory {kind}: {peak['bytes'] / 2**20:.0f} MiB ({peak['what']} of its process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
