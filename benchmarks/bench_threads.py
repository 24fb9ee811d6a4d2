"""Does the default thread count use the machine? A smoke evaluation at the default against threads=1,
and a default-budget NASCifar-v0 episode.

Runs alternate between the two settings (so load changes hit both alike) and the median of each
is reported with the ratio::

    python benchmarks/bench_threads.py --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import nas_gym  # noqa: F401  # registers the env ids
from nas_gym.backends.cifar.trainer import CifarTrainer
from nas_gym.core.devices import cpu_count, default_threads

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402  # the benchmarks' shared helper, beside this file

ARCH = "k3-relu-max|k5-relu-avg|k3-relu-max|k3-relu-avg|k5-relu-max"


def timed(trainer: CifarTrainer, arch: str) -> float:
    start = time.perf_counter()
    metrics = trainer(arch)
    if metrics["status"] != "ok":
        raise RuntimeError(f"expected a finished evaluation, got {metrics}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--episode", action="store_true", help="also time one default episode")
    args = parser.parse_args()
    default = CifarTrainer("seed", budget="smoke", device="cpu")
    single = CifarTrainer("seed", budget="smoke", device="cpu", threads=1)
    timed(default, ARCH)  # loads the data and warms the allocator for both
    times: dict[str, list[float]] = {"default": [], "threads=1": []}
    for _ in range(args.repeats):
        times["default"].append(timed(default, ARCH))
        times["threads=1"].append(timed(single, ARCH))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{cpu_name()}, {cpu_count()} cores usable, torch {torch.__version__}; smoke evaluation of "
        f"{ARCH!r}, median of {args.repeats}: default ({default_threads()} threads) "
        f"{med['default']:.2f} s, threads=1 {med['threads=1']:.2f} s, "
        f"speed-up {med['threads=1'] / med['default']:.2f}x"
    )
    if args.episode:
        env = gym.make("NASCifar-v0")
        env.action_space.seed(0)
        obs, info = env.reset(seed=0)
        start, terminated = time.perf_counter(), False
        while not terminated:
            action = env.action_space.sample(mask=info["action_mask"].astype(np.int8))
            obs, reward, terminated, _, info = env.step(action)
        print(
            f"default NASCifar-v0 episode (budget {info.get('budget')!r}, arch {info['arch']!r}): "
            f"{time.perf_counter() - start:.1f} s, accuracy {info['accuracy']:.3f}"
        )


if __name__ == "__main__":
    main()
