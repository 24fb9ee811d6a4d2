"""How well do the zero-cost proxies rank NAS-Bench-201 cells? Spearman against the table.

A seeded uniform sample of NAS-Bench-201 cells (all cells, degenerate ones included, as in
Abdelfattah et al., ICLR 2021) is scored by every proxy of
:data:`~nas_gym.backends.cifar.zero_cost.PROXIES` (``ZeroCostEvaluator`` with ``space="nb201"``, one
CIFAR-10 minibatch of the training part, one thread). The report gives Spearman's rho against the
table's 200-epoch test accuracies on CIFAR-10, CIFAR-100 and ImageNet16-120 with 95% bootstrap
intervals, seconds per cell, the published figures beside them, and the proxies against the
``cpu-proxy`` accuracies that ``benchmarks/fidelity.py`` trained on its cells (its store is only
read).

Every score goes through the evaluation store, so the run stops and goes on where it was::

    nohup nice -n 5 python benchmarks/zero_cost.py run --out runs/zero_cost > runs/zero_cost.log 2>&1 &
    python benchmarks/zero_cost.py report --out runs/zero_cost --doc docs/zero_cost.md

``cache`` scores every cell with one proxy into the store that table envs read their proxy
fidelity from (:class:`~nas_gym.envs.zero_cost.ZeroCostFidelities`, default
``~/.cache/nas_gym/zero_cost.sqlite``), so that searches warm-started by it only look scores up::

    nohup nice -n 5 python benchmarks/zero_cost.py cache --proxy synflow > runs/zero_cost/cache.log 2>&1 &

``--quick`` scores a handful of cells on a small batch (what the test suite runs).
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

from nas_gym.backends.cifar.zero_cost import PROXIES, ZERO_COST_VERSION, ZeroCostEvaluator
from nas_gym.backends.tables.nb201 import NB201Table, load_nb201_table
from nas_gym.core.config import DEFAULT_DATA_DIR
from nas_gym.evaluation.runner import EvaluationRunner
from nas_gym.evaluation.store import EvaluationStore
from nas_gym.experiments.ranking import rank_agreement

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fidelity  # noqa: E402  # the fidelity benchmark beside this file: its cells and trainer
from machine import cpu_name  # noqa: E402

COLUMNS = {
    "CIFAR-10": "c10_test_acc_200ep",
    "CIFAR-100": "c100_test_acc_200ep",
    "ImageNet16-120": "in16_test_acc_200ep",
    # The CIFAR-10 column of Abdelfattah et al.: trained on the 25k half ("cifar10-valid"), tested on
    # the test set.
    "CIFAR-10 (25k)": "c10valid_test_acc_200ep",
}
PUBLISHED = {
    # Abdelfattah et al., ICLR 2021, Table 1 (the output of notebooks/nasbench201_correlations.ipynb
    # of SamsungLabs/zero-cost-nas): |Spearman| over all 15,625 cells, each proxy computed on a
    # minibatch of 64 images of the dataset of the column, against the cifar10-valid test accuracy on
    # CIFAR-10. They have no NASWOT; the comparison is with jacob_cov, NASWOT's first version.
    "synflow": {"CIFAR-10": 0.737, "CIFAR-100": 0.763, "ImageNet16-120": 0.751},
    "jacob_cov": {"CIFAR-10": 0.731, "CIFAR-100": 0.704, "ImageNet16-120": 0.701},
    "naswot": {"CIFAR-10": 0.731},
    "snip": {"CIFAR-10": 0.596, "CIFAR-100": 0.637, "ImageNet16-120": 0.578},
    "grad_norm": {"CIFAR-10": 0.594, "CIFAR-100": 0.637, "ImageNet16-120": 0.578},
}
TIMED_CELLS = 30
"""Cells of the sample that ``time`` scores again with each proxy."""
TOLERANCE = 0.05
"""The gap to a published figure that counts as reproduced."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one run of the benchmark scores."""

    cells: int
    """Size of the uniform sample of cells."""
    batch_size: int
    sample_seed: int = 0
    fidelity_cells: bool = True
    """Also score the cells of ``benchmarks/fidelity.py`` (against its cpu-proxy accuracies)."""
    resamples: int = 2000
    """Bootstrap resamples of each interval."""


CACHE = DEFAULT_DATA_DIR.expanduser() / "zero_cost.sqlite"
"""The default store of proxy scores for table envs (the user's cache folder, never the data)."""

FULL = Plan(cells=1_000, batch_size=64)
QUICK = Plan(cells=6, batch_size=8, fidelity_cells=False, resamples=100)


def sample_cells(table: NB201Table, n: int, seed: int) -> list[int]:
    """``n`` distinct row indices drawn uniformly from all cells (seeded)."""
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(len(table.arch_strs), size=n, replace=False))


def evaluator(proxy: str, plan: Plan, data_dir: str | None) -> ZeroCostEvaluator:
    return ZeroCostEvaluator("nb201", proxy=proxy, batch_size=plan.batch_size, data_dir=data_dir, threads=1)


def fidelity_cells(table: NB201Table) -> list[int]:
    """The cells that ``benchmarks/fidelity.py`` trains (its full plan)."""
    return fidelity.sample_cells(table, fidelity.FULL.cells, fidelity.FULL.sample_seed)


RUN_ORDER = ("synflow", "naswot", "jacob_cov", "snip", "grad_norm")
"""The proxies with published figures to reproduce first, then the others."""


def run(plan: Plan, out: Path, data_dir: str | None) -> None:
    """Score what ``plan`` asks for, skipping what the store in ``out`` already holds: proxy by
    proxy (:data:`RUN_ORDER`), so that a stopped run has whole proxies."""
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    table = load_nb201_table(data_dir)
    cells = sample_cells(table, plan.cells, plan.sample_seed)
    if plan.fidelity_cells:
        cells += [c for c in fidelity_cells(table) if c not in set(cells)]
    store = EvaluationStore(out / "scores.sqlite")
    for proxy in RUN_ORDER:
        runner = EvaluationRunner(evaluator(proxy, plan, data_dir), "nb201", store)
        spent, scored = 0.0, 0
        for done, cell in enumerate(cells, 1):
            metrics, cached = runner.evaluate(table.arch_strs[cell])
            if not cached:
                spent, scored = spent + metrics["train_seconds"], scored + 1
            if cached and done < len(cells):
                continue
            if done % 50 == 0 or done == len(cells) or plan is QUICK:
                mean = spent / scored if scored else 0.0
                print(
                    f"[{proxy} {done}/{len(cells)}] cell={cell} score={metrics.get('score')} "
                    f"status={metrics['status']} {'(stored)' if cached else f'{mean:.2f} s/cell'}",
                    flush=True,
                )


def fill_cache(proxy: str, store_path: Path, data_dir: str | None) -> None:
    """Score every NAS-Bench-201 cell with ``proxy`` into the store at ``store_path`` (what it
    holds already is skipped), with the evaluator that table envs use by default."""
    torch.set_num_threads(1)
    table = load_nb201_table(data_dir)
    runner = EvaluationRunner(evaluator(proxy, FULL, data_dir), "nb201", EvaluationStore(store_path))
    start, computed = time.perf_counter(), 0
    for done, arch in enumerate(table.arch_strs, 1):
        computed += not runner.evaluate(arch)[1]
        if done % 500 == 0 or done == len(table.arch_strs):
            print(
                f"[{proxy} {done}/{len(table.arch_strs)}] {computed} computed, {time.perf_counter() - start:.0f} s",
                flush=True,
            )


def measure_times(plan: Plan, cells: int, data_dir: str | None) -> dict[str, dict[str, float]]:
    """Wall and CPU seconds per cell of each proxy on the first ``cells`` cells of the sample,
    scored afresh (no store) after one warm-up: on a shared machine the CPU time of the process is
    the steadier figure of what a proxy costs."""
    torch.set_num_threads(1)
    table = load_nb201_table(data_dir)
    archs = [table.arch_strs[c] for c in sample_cells(table, plan.cells, plan.sample_seed)[:cells]]
    times = {}
    for proxy in RUN_ORDER:
        scorer = evaluator(proxy, plan, data_dir)
        scorer(archs[0])
        wall, cpu = time.perf_counter(), time.process_time()
        for arch in archs:
            scorer(arch)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        times[proxy] = {"wall": wall / len(archs), "cpu": cpu / len(archs), "cells": len(archs)}
        print(
            f"{proxy}: {times[proxy]['wall']:.3f} s wall, {times[proxy]['cpu']:.3f} s CPU per cell",
            flush=True,
        )
    return times


def _ranked(scores: list[float | None]) -> np.ndarray:
    """Scores for ranking: a score that is not finite (``naswot``'s singular kernel of a cell
    whose output ignores its input) ranks below every finite one, tied with the others."""
    finite = [s for s in scores if s is not None]
    floor = min(finite) - 1.0 if finite else 0.0
    return np.array([floor if s is None else s for s in scores], dtype=float)


def collect(plan: Plan, out: Path, data_dir: str | None) -> dict[str, Any]:
    """The stored scores per proxy (missing ones left out), the sample and the table."""
    table = load_nb201_table(data_dir)
    cells = sample_cells(table, plan.cells, plan.sample_seed)
    extra = fidelity_cells(table) if plan.fidelity_cells else []
    store = EvaluationStore(out / "scores.sqlite")
    scores: dict[str, dict[int, dict[str, Any]]] = {}
    for proxy in PROXIES:
        fingerprint = evaluator(proxy, plan, data_dir).fingerprint
        for cell in sorted(set(cells) | set(extra)):
            metrics = store.get("nb201", table.arch_strs[cell], fingerprint)
            if metrics is not None:
                scores.setdefault(proxy, {})[cell] = metrics
    return {"table": table, "cells": cells, "extra": extra, "scores": scores}


def trained_accuracies(table: NB201Table, cells: list[int], store_path: Path) -> dict[int, float]:
    """The ``cpu-proxy`` accuracies (seed 0) of ``benchmarks/fidelity.py`` that its store holds,
    read through the store API (nothing is written)."""
    if not store_path.exists():
        return {}
    fingerprint = fidelity.trainer("cpu-proxy", 0, None).fingerprint
    store = EvaluationStore(store_path)
    found = {}
    for cell in cells:
        metrics = store.get("nb201", table.arch_strs[cell], fingerprint)
        if metrics is not None and metrics["status"] == "ok":
            found[cell] = float(metrics["accuracy"])
    store.close()
    return found


def summarise(plan: Plan, found: dict[str, Any], fidelity_store: Path | None) -> dict[str, Any]:
    """Per proxy: n, seconds per cell and the rank agreement with each column (and with the
    fidelity benchmark's cpu-proxy accuracies)."""
    table, cells, scores = found["table"], found["cells"], found["scores"]
    trained = trained_accuracies(table, found["extra"], fidelity_store) if fidelity_store else {}
    rows = []
    for proxy in PROXIES:
        per_cell = scores.get(proxy, {})
        scored = [c for c in cells if c in per_cell]
        if len(scored) < 3:
            continue
        values = _ranked([per_cell[c].get("score") for c in scored])
        seconds = [per_cell[c]["train_seconds"] for c in scored]
        row: dict[str, Any] = {
            "proxy": proxy,
            "n": len(scored),
            "seconds": float(np.mean(seconds)),
            "max_seconds": float(np.max(seconds)),
            "undefined": sum(per_cell[c].get("score") is None for c in scored),
            "columns": {
                name: rank_agreement(values, table.columns[column][scored], resamples=plan.resamples)
                for name, column in COLUMNS.items()
            },
        }
        on_trained = [c for c in trained if c in per_cell]
        if len(on_trained) >= 3:
            row["trained"] = rank_agreement(
                _ranked([per_cell[c].get("score") for c in on_trained]),
                [trained[c] for c in on_trained],
                resamples=plan.resamples,
            )
        rows.append(row)
    reference = None
    if len(trained) >= 3:
        tabled = list(trained)
        reference = rank_agreement(
            table.columns["c10valid_valid_acc_12ep"][tabled],
            [trained[c] for c in tabled],
            resamples=plan.resamples,
        )
    return {"rows": rows, "trained_n": len(trained), "reference": reference}


def _published(proxy: str, column: str, value: float) -> str:
    """`` / 0.74 (+0.01, within)`` for a column with a published figure (both CIFAR-10 columns
    are held against the published CIFAR-10 one)."""
    target = PUBLISHED.get(proxy, {}).get(column.replace(" (25k)", ""))
    if target is None:
        return ""
    verdict = "within" if abs(value - target) <= TOLERANCE else "**miss**"
    return f" / {target:.2f} ({value - target:+.2f}, {verdict})"


def markdown(plan: Plan, summary: dict[str, Any], command: str) -> str:
    """The report: settings, machine, the tables and what they say."""
    rows = summary["rows"]
    header = " | ".join(f"{name} (`{column}`) / published" for name, column in COLUMNS.items())
    lines = [
        "# Zero-cost proxies on NAS-Bench-201",
        "",
        f"Measured by `{command}` then `report`, on {cpu_name()} (2 cores, shared with other work; one "
        f"torch thread per proxy), Python {platform.python_version()}, torch {torch.__version__}, numpy "
        f"{np.__version__}, nas-gym `ZeroCostEvaluator` v{ZERO_COST_VERSION}. Sample: {plan.cells} cells "
        f"drawn uniformly (seed {plan.sample_seed}) from all 15,625, degenerate ones included. Each proxy "
        f"scores the untrained NAS-Bench-201 network (16 channels, 5 cells per stage, the trainer's "
        f"initialisation of seed 0) on one minibatch of {plan.batch_size} CIFAR-10 images from the "
        "training part of the split (seed 0). Intervals: 95% percentile bootstrap over cells "
        f"({plan.resamples} resamples). Seconds: wall time per cell on one thread while the benchmark "
        "ran (mean and max; the machine was shared, so read them as upper bounds), and the CPU time "
        "per cell of the process when `benchmarks/zero_cost.py time` scored "
        f"{next(iter(summary.get('times', {}).values()), {}).get('cells', 0)} of the cells again.",
        "",
        "**Datasets.** Abdelfattah et al. compute each proxy on a minibatch of the dataset of the "
        "column (CIFAR-100 images for the CIFAR-100 column, ImageNet16-120 for its column). nas-gym has "
        "only CIFAR-10 images, so every column here is scored with CIFAR-10 minibatches (and 10 "
        "output classes): the CIFAR-100 and ImageNet16-120 columns measure how the CIFAR-10 scores "
        "rank the cells there, not a reproduction of those columns. Their CIFAR-10 figure is against "
        "the test accuracy after training on the 25k half (`c10valid_test_acc_200ep`); both CIFAR-10 "
        "columns are held against it.",
        "",
        "Spearman's rho of the proxy against the table's 200-epoch test accuracy, with the published "
        f"figure, the difference and the verdict (reproduced when within {TOLERANCE}):",
        "",
        f"| proxy | cells | {header} | s/cell wall (max) | s/cell CPU |",
        "|---|---|" + "---|" * len(COLUMNS) + "---|---|",
    ]
    times = summary.get("times", {})
    for row in rows:
        cells = []
        for name in COLUMNS:
            agreement = row["columns"][name].spearman
            cells.append(agreement.text() + _published(row["proxy"], name, agreement.value))
        lines.append(
            f"| `{row['proxy']}` | {row['n']} | {' | '.join(cells)} | "
            f"{row['seconds']:.2f} ({row['max_seconds']:.2f}) | "
            + (f"{times[row['proxy']]['cpu']:.2f} |" if row["proxy"] in times else " |")
        )
    missing = [p for p in PROXIES if p not in {r["proxy"] for r in rows}]
    if missing:
        lines += ["", f"Not measured yet (the run was stopped before them): {', '.join(missing)}."]
    partial = [r["proxy"] for r in rows if r["n"] < plan.cells]
    if partial:
        lines += ["", f"Partly measured (fewer cells than the sample): {', '.join(partial)}."]
    undefined = [f"`{r['proxy']}` {r['undefined']}" for r in rows if r["undefined"]]
    if undefined:
        lines += [
            "",
            "Cells whose score is not finite (status `diverged`: a cell whose output ignores its input "
            f"gives `naswot` a singular kernel), ranked below all others: {', '.join(undefined)}.",
        ]
    trained = [r for r in rows if "trained" in r]
    if trained:
        lines += [
            "",
            "## Against trained accuracy",
            "",
            f"Spearman's rho of each proxy against the `cpu-proxy` validation accuracy (seed 0) that "
            f"`benchmarks/fidelity.py` trained on its {summary['trained_n']} NAS-Bench-201 cells (read "
            "from its store), beside the table's 12-epoch accuracy on the same cells. The fidelity "
            "benchmark trains NAS-Bench-201 cells only, so there is no such figure for the `seed` space.",
            "",
            "| score | cells | Spearman vs `cpu-proxy` accuracy | Kendall tau |",
            "|---|---|---|---|",
        ]
        for row in trained:
            agreement = row["trained"]
            lines.append(
                f"| `{row['proxy']}` | {agreement.n} | {agreement.spearman.text()} | {agreement.kendall.text()} |"
            )
        if summary["reference"] is not None:
            ref = summary["reference"]
            lines.append(
                f"| table `c10valid_valid_acc_12ep` | {ref.n} | {ref.spearman.text()} | {ref.kendall.text()} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "report", "cache", "time"])
    parser.add_argument("--out", type=Path, default=Path("runs/zero_cost"), help="store folder")
    parser.add_argument("--doc", type=Path, default=None, help="write the markdown report here")
    parser.add_argument("--data-dir", default=None, help="default: $NAS_GYM_DATA")
    parser.add_argument(
        "--fidelity-store",
        type=Path,
        default=Path("runs/fidelity/evals.sqlite"),
        help="store of benchmarks/fidelity.py, read only",
    )
    parser.add_argument("--quick", action="store_true", help="a few cells on a small batch")
    parser.add_argument("--proxy", default="synflow", choices=list(PROXIES), help="cache: the proxy")
    parser.add_argument(
        "--store",
        type=Path,
        default=CACHE,
        help="cache: the store (default ~/.cache/nas_gym/zero_cost.sqlite)",
    )
    args = parser.parse_args(argv)
    if args.command == "cache":
        fill_cache(args.proxy, args.store, args.data_dir)
        return 0
    plan = QUICK if args.quick else FULL
    if args.command == "time":
        times = measure_times(plan, 3 if args.quick else TIMED_CELLS, args.data_dir)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "times.json").write_text(json.dumps(times, indent=1))
        return 0
    if args.command == "run":
        start = time.perf_counter()
        run(plan, args.out, args.data_dir)
        print(f"done in {time.perf_counter() - start:.0f} s", flush=True)
        return 0
    summary = summarise(plan, collect(plan, args.out, args.data_dir), args.fidelity_store)
    times_path = args.out / "times.json"
    summary["times"] = json.loads(times_path.read_text()) if times_path.exists() else {}
    command = "python benchmarks/zero_cost.py run" + (" --quick" if args.quick else "")
    text = markdown(plan, summary, command)
    doc = args.doc or args.out / "zero_cost.md"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
