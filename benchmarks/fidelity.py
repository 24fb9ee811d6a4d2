"""How well do NASCifar-v0's budgets rank architectures? NAS-Bench-201 cells trained for real.

A fixed, seeded sample of non-degenerate NAS-Bench-201 cells, stratified over the table's
200-epoch validation accuracy, is trained by the project's trainer (``CifarTrainer`` with
``space="nb201"``) at each budget below. The report gives Spearman's rho and Kendall's tau of
the trained accuracy against the table's ``c10valid_valid_acc_200ep`` and ``c10_test_acc_200ep``
with 95% bootstrap intervals, seconds per cell, the same statistics for the table's own 12-epoch
accuracy (``c10valid_valid_acc_12ep``) on the same cells, and the noise of each budget: three
training seeds on some cells and the ratio of between- to within-architecture spread.

Every evaluation goes through the evaluation store, so the run stops and goes on where it was::

    nohup python benchmarks/fidelity.py run --out runs/fidelity > runs/fidelity.log 2>&1 &
    python benchmarks/fidelity.py report --out runs/fidelity --doc docs/fidelity.md

``--quick`` trains a handful of cells at a tiny budget (what the test suite runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_gym.backends.cifar.trainer import CifarTrainer
from nas_gym.backends.tables.nb201 import NB201Table, load_nb201_table
from nas_gym.core.devices import cpu_count
from nas_gym.evaluation.runner import EvaluationRunner
from nas_gym.evaluation.store import EvaluationStore
from nas_gym.experiments.ranking import rank_agreement, spread_ratio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402  # the benchmarks' shared helper, beside this file

VALID_200 = "c10valid_valid_acc_200ep"
TEST_200 = "c10_test_acc_200ep"
VALID_12 = "c10valid_valid_acc_12ep"
CHANCE = 10.0
"""Degenerate cells (no path from input to output) score CIFAR-10's chance level in the table."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one run of the benchmark trains."""

    cells: int
    """Size of the stratified sample of cells."""
    budgets: dict[str, Any]
    """Label -> budget of ``CifarTrainer`` (a name or a dict), in the order they train."""
    noise_cells: int
    """How many of the sampled cells (spread over the range) are also trained with more seeds."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds of the noise cells; the first one is the seed of every cell."""
    sample_seed: int = 0


FULL = Plan(
    cells=50,
    budgets={
        "cpu-proxy": "cpu-proxy",
        "cpu-proxy/2ep": {"base": "cpu-proxy", "epochs": 2, "train_size": 10_000},
        "cpu-proxy/4ep": {"base": "cpu-proxy", "epochs": 4, "train_size": 10_000},
        "smoke": "smoke",
    },
    noise_cells=10,
)
QUICK = Plan(
    cells=5,
    budgets={"tiny": {"base": "cpu-proxy", "epochs": 1, "train_size": 1_280, "val_size": 500}},
    noise_cells=3,
    seeds=(0, 1),
)


def sample_cells(table: NB201Table, n: int, seed: int) -> list[int]:
    """``n`` row indices of non-degenerate cells: the cells sorted by 200-epoch validation accuracy,
    cut into ``n`` equal strata, one cell drawn from each (seeded)."""
    valid, test = table.columns[VALID_200], table.columns[TEST_200]
    usable = np.flatnonzero(test > CHANCE + 0.5)
    if n > len(usable):
        raise ValueError(f"expected at most {len(usable)} cells, got {n}")
    ordered = usable[np.argsort(valid[usable], kind="stable")]
    rng = np.random.default_rng(seed)
    return [int(rng.choice(stratum)) for stratum in np.array_split(ordered, n)]


def noise_subset(cells: list[int], k: int) -> list[int]:
    """``k`` of ``cells`` spread evenly over the sample (which is sorted by accuracy stratum)."""
    return [cells[int(i)] for i in np.linspace(0, len(cells) - 1, k).round()] if k else []


def jobs(plan: Plan, cells: list[int]) -> list[tuple[str, int, int]]:
    """``(budget label, cell, seed)`` in the order they train: budget after budget (so a stopped
    run has whole budgets), each one's cells at the first seed, then its noise cells' other seeds."""
    first, *extra = plan.seeds
    noisy = noise_subset(cells, plan.noise_cells)
    todo = []
    for label in plan.budgets:
        todo += [(label, cell, first) for cell in cells]
        todo += [(label, cell, seed) for seed in extra for cell in noisy]
    return todo


def trainer(budget: Any, seed: int, data_dir: str | None) -> CifarTrainer:
    return CifarTrainer(space="nb201", budget=budget, device="cpu", seed=seed, data_dir=data_dir)


def run(plan: Plan, out: Path, data_dir: str | None) -> None:
    """Train what ``plan`` asks for, skipping what the store in ``out`` already holds."""
    out.mkdir(parents=True, exist_ok=True)
    table = load_nb201_table(data_dir)
    cells = sample_cells(table, plan.cells, plan.sample_seed)
    store = EvaluationStore(out / "evals.sqlite")
    runners: dict[tuple[str, int], EvaluationRunner] = {}
    todo = jobs(plan, cells)
    spent, trained = 0.0, 0
    for done, (label, cell, seed) in enumerate(todo, 1):
        key = (label, seed)
        if key not in runners:
            runners[key] = EvaluationRunner(trainer(plan.budgets[label], seed, data_dir), "nb201", store)
        metrics, cached = runners[key].evaluate(table.arch_strs[cell])
        if not cached:
            spent, trained = spent + metrics.get("train_seconds", 0.0), trained + 1
        left = (len(todo) - done) * (spent / trained if trained else 0.0)
        took = "(stored)" if cached else f"{metrics.get('train_seconds', 0.0):.1f}s"
        print(
            f"[{done}/{len(todo)}] {label} seed={seed} cell={cell} acc={metrics['accuracy']:.4f} "
            f"status={metrics['status']} {took} ~{left / 60:.0f} min left",
            flush=True,
        )


def collect(plan: Plan, out: Path, data_dir: str | None) -> dict[str, Any]:
    """The stored results of ``plan`` per budget (missing ones left out) and the table's columns."""
    table = load_nb201_table(data_dir)
    cells = sample_cells(table, plan.cells, plan.sample_seed)
    store = EvaluationStore(out / "evals.sqlite")
    results: dict[str, dict[int, dict[int, dict[str, Any]]]] = {}
    for label, cell, seed in jobs(plan, cells):
        fingerprint = trainer(plan.budgets[label], seed, data_dir).fingerprint
        metrics = store.get("nb201", table.arch_strs[cell], fingerprint)
        if metrics is not None:
            results.setdefault(label, {}).setdefault(cell, {})[seed] = metrics
    return {"table": table, "cells": cells, "results": results}


def summarise(plan: Plan, found: dict[str, Any]) -> list[dict[str, Any]]:
    """One row of statistics per budget with results, plus the table's 12-epoch reference."""
    table, cells, results = found["table"], found["cells"], found["results"]
    first = plan.seeds[0]
    rows = []
    for label in plan.budgets:
        per_cell = results.get(label, {})
        scored = [c for c in cells if first in per_cell.get(c, {})]
        if len(scored) < 3:
            continue
        acc = [per_cell[c][first]["accuracy"] for c in scored]
        repeats = [
            [per_cell[c][s]["accuracy"] for s in plan.seeds]
            for c in noise_subset(cells, plan.noise_cells)
            if all(s in per_cell.get(c, {}) for s in plan.seeds)
        ]
        rows.append(
            {
                "budget": label,
                "spec": plan.budgets[label],
                "n": len(scored),
                "valid": rank_agreement(acc, table.columns[VALID_200][scored]),
                "test": rank_agreement(acc, table.columns[TEST_200][scored]),
                # The median: on a shared machine a few cells wait for the CPU many times longer
                # than they compute, and the mean would report the waits.
                "seconds": float(np.median([per_cell[c][first]["train_seconds"] for c in scored])),
                "max_seconds": float(np.max([per_cell[c][first]["train_seconds"] for c in scored])),
                "spread": spread_ratio(repeats) if len(repeats) >= 2 else None,
                "noise_n": len(repeats),
                "scores": acc,
                "truth": table.columns[VALID_200][scored].tolist(),
            }
        )
    reference = table.columns[VALID_12][cells]
    rows.append(
        {
            "budget": "table: 12 epochs",
            "spec": VALID_12,
            "n": len(cells),
            "valid": rank_agreement(reference, table.columns[VALID_200][cells]),
            "test": rank_agreement(reference, table.columns[TEST_200][cells]),
            "seconds": None,
            "max_seconds": None,
            "spread": None,
            "noise_n": 0,
            "scores": (reference / 100).tolist(),
            "truth": table.columns[VALID_200][cells].tolist(),
        }
    )
    return rows


def scatter(row: dict[str, Any], path: Path) -> None:
    """Trained accuracy against the table's 200-epoch validation accuracy, one dot per cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.scatter(row["truth"], np.asarray(row["scores"]) * 100, s=14)
    ax.set_xlabel(f"{VALID_200} (%)")
    ax.set_ylabel(f"accuracy at {row['budget']} (%)")
    ax.set_title(f"{row['budget']}: Spearman {row['valid'].spearman.value:.2f} (n={row['n']})", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(plan: Plan, rows: list[dict[str, Any]], figures: Path, doc: Path) -> str:
    """The report: settings, machine, the table of statistics and the scatter plots."""
    lines = [
        "# How well the budgets of NASCifar-v0 rank architectures",
        "",
        f"Measured by `python benchmarks/fidelity.py run` then `report` on {cpu_name()} "
        f"({cpu_count()} cores usable, default threads), Python {platform.python_version()}, "
        f"torch {torch.__version__}. Sample: {plan.cells} non-degenerate NAS-Bench-201 cells, one "
        f"drawn from each of {plan.cells} strata of `{VALID_200}` (seed {plan.sample_seed}); noise: "
        f"seeds {list(plan.seeds)} on {plan.noise_cells} of them. Intervals: 95% percentile bootstrap "
        "over cells (2000 resamples). Seconds: training wall time per cell, median and max, on a machine "
        "shared with other work (read them as rough).",
        "",
        f"| budget | what it trains | cells | Spearman vs `{VALID_200}` | Kendall tau | "
        f"Spearman vs `{TEST_200}` | median s/cell (max) | between/within spread (cells) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        spec = row["spec"] if isinstance(row["spec"], str) else json.dumps(row["spec"])
        seconds = "" if row["seconds"] is None else f"{row['seconds']:.1f} ({row['max_seconds']:.1f})"
        spread = "" if row["spread"] is None else f"{row['spread']:.1f} ({row['noise_n']})"
        lines.append(
            f"| {row['budget']} | `{spec}` | {row['n']} | {row['valid'].spearman.text()} | "
            f"{row['valid'].kendall.text()} | {row['test'].spearman.text()} | {seconds} | {spread} |"
        )
    missing = [label for label in plan.budgets if label not in {row["budget"] for row in rows}]
    if missing:
        lines += ["", f"Not measured yet (the run was stopped before them): {', '.join(missing)}."]
    partial = [row["budget"] for row in rows if row["spec"] != VALID_12 and row["n"] < plan.cells]
    if partial:
        lines += ["", f"Partly measured (fewer cells than the sample): {', '.join(partial)}."]
    lines += ["", "## Scatter plots", ""]
    for row in rows:
        path = figures / f"{row['budget'].replace('/', '-').replace(':', '').replace(' ', '-')}.png"
        scatter(row, path)
        lines.append(f"![{row['budget']}]({path.relative_to(doc.parent).as_posix()})")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "report"])
    parser.add_argument("--out", type=Path, default=Path("runs/fidelity"), help="store folder")
    parser.add_argument("--doc", type=Path, default=None, help="write the markdown report here")
    parser.add_argument("--data-dir", default=None, help="default: $NAS_GYM_DATA")
    parser.add_argument("--quick", action="store_true", help="a few cells at a tiny budget")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.command == "run":
        start = time.perf_counter()
        run(plan, args.out, args.data_dir)
        print(f"done in {time.perf_counter() - start:.0f} s", flush=True)
        return 0
    rows = summarise(plan, collect(plan, args.out, args.data_dir))
    doc = args.doc or args.out / "fidelity.md"
    text = markdown(plan, rows, doc.parent / doc.stem, doc)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
