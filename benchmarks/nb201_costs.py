"""Check the NAS-Bench-201 cost table against a count of every one of the 15,625 networks.

``nas_gym.backends.tables.nb201_costs`` computes the parameters and multiply-adds of all cells
from 25 networks (the costs add up over the edges). This script builds and counts each of the
15,625 networks directly (``network_cost``: one CPU thread, about 50 ms each on an idle core) and
compares. Every count goes through the evaluation store, so the run stops and goes on where it was::

    nohup nice python benchmarks/nb201_costs.py run --out runs/nb201-costs > runs/nb201-costs.log 2>&1 &
    python benchmarks/nb201_costs.py report --out runs/nb201-costs

``--limit N`` counts the first N cells in a fixed random order only (a quick check).
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from nas_gym.backends.tables.nb201_costs import COSTS_VERSION, cell_index, compute_nb201_costs, network_cost
from nas_gym.evaluation.store import EvaluationStore
from nas_gym.spaces import NB201Space

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402  # the benchmarks' shared helper, beside this file

FINGERPRINT = f"nb201-direct-cost:c10-r32:v{COSTS_VERSION}"


def cells(limit: int | None) -> list[tuple[int, ...]]:
    """Every cell, in a fixed random order (so a partial run is a uniform sample)."""
    order = list(itertools.product(range(5), repeat=6))
    np.random.default_rng(0).shuffle(order)
    return order[:limit]


def run(out: Path, limit: int | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    store = EvaluationStore(out / "direct.sqlite")
    space = NB201Space()
    started, done = time.perf_counter(), 0
    for i, arch in enumerate(cells(limit)):
        text = space.format(arch)
        if store.get(space.name, text, FINGERPRINT) is not None:
            continue
        t0 = time.perf_counter()
        params, flops = network_cost(arch)
        store.put(
            space.name,
            text,
            FINGERPRINT,
            {"params": params, "flops": flops, "seconds": time.perf_counter() - t0},
        )
        done += 1
        if done % 500 == 0:
            print(f"{i + 1} cells, {done} counted in {time.perf_counter() - started:.0f} s", flush=True)
    print(f"counted {done} cells in {time.perf_counter() - started:.0f} s", flush=True)


def report(out: Path, limit: int | None) -> dict:
    store = EvaluationStore(out / "direct.sqlite")
    space = NB201Space()
    started = time.perf_counter()
    table = compute_nb201_costs()
    table_seconds = time.perf_counter() - started
    counted, seconds, mismatches = 0, [], []
    for arch in cells(limit):
        stored = store.get(space.name, space.format(arch), FINGERPRINT)
        if stored is None:
            continue
        counted += 1
        seconds.append(stored["seconds"])
        i = cell_index(arch)
        if (stored["params"], stored["flops"]) != (int(table.params[i]), int(table.flops[i])):
            mismatches.append(space.format(arch))
    result = {
        "cells_counted": counted,
        "mismatches": len(mismatches),
        "first_mismatches": mismatches[:5],
        "seconds_per_network": round(float(np.median(seconds)), 4) if seconds else None,
        "seconds_all_networks": round(float(np.sum(seconds)), 1),
        "seconds_table_from_25_networks": round(table_seconds, 2),
        "params_range": [int(table.params.min()), int(table.params.max())],
        "flops_range": [int(table.flops.min()), int(table.flops.max())],
        "machine": f"{cpu_name()}, Python {platform.python_version()}, torch {torch.__version__}",
    }
    print(json.dumps(result, indent=2))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "report"])
    parser.add_argument("--out", type=Path, default=Path("runs/nb201-costs"))
    parser.add_argument("--limit", type=int, help="count the first N cells of the fixed order only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    (run if args.command == "run" else report)(args.out, args.limit)


if __name__ == "__main__":
    main()
