"""Hyperband and the zero-cost warm starts on NAS-Bench-201, beside the agents of docs/results.md.

The protocol of ``benchmarks/nb201_compare.sh``: ``NASBench201-v0`` on CIFAR-10, 12,000 simulated
seconds per search (each evaluation charged its recorded cost), seeds 0..99, every agent with its
defaults, the selected cell's ``c10_test_acc_200ep`` reported. Two things differ, and only where
multi-fidelity searches need them:

- the env's evaluator also offers the ``synflow`` fidelity
  (:class:`~nas_gym.envs.zero_cost.ZeroCostFidelities`), its scores looked up in the cache that
  ``benchmarks/zero_cost.py cache`` fills (an evaluation at another fidelity is unchanged, so the
  cold agents' searches are those of ``nas-gym compare``);
- a run selects the best reward at the highest fidelity it evaluated
  (:func:`agents.hyperband.select_record`): a warm-started history begins with synflow scores and a
  Hyperband history mixes 12- and 200-epoch accuracies, which are not on one scale. For a search at
  one fidelity this is ``nas-gym compare``'s selection.

Each finished run is one line of ``OUT/runs.jsonl``, so a stopped run goes on where it was::

    nohup nice -n 5 python benchmarks/zero_cost_compare.py run --out runs/zero_cost/compare > runs/zero_cost/compare.log 2>&1 &
    python benchmarks/zero_cost_compare.py report --out runs/zero_cost/compare
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import nas_gym  # noqa: F401  # registers the env ids
from agents import SearchResult, make_agent
from agents.hyperband import select_record, top_fidelity_records
from nas_gym.backends.tables.nb201 import NB201Evaluator
from nas_gym.envs.zero_cost import ZeroCostFidelities
from nas_gym.experiments.compare import optimum_of, summarise_run, transfer_of
from nas_gym.experiments.config import SearchConfig, make_env

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402
from zero_cost import CACHE  # noqa: E402  # the store that `zero_cost.py cache` fills

BUDGET_SECONDS = 12_000.0
MAX_EPISODES = 10_000
"""``nas-gym compare``'s cap on the episodes of a time-limited run."""
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "random": ("random", {}),
    "evolution": ("evolution", {}),
    "evolution+zc": ("evolution", {"warm_start": True}),
    "reinforce": ("reinforce", {}),
    "reinforce+zc": ("reinforce", {"warm_start": True}),
    # The fidelities of the plain NASBench201-v0 (what `nas-gym compare --agents hyperband` uses).
    "hyperband": ("hyperband", {"fidelities": ("12ep", "200ep")}),
    "hyperband+zc": ("hyperband", {"fidelities": ("synflow", "12ep", "200ep")}),
    # eta = the cost ratio of the two fidelities (1,831 s / 113 s, about 16): one promotion per
    # bracket, the most exploratory Hyperband over them. Set from the costs, not from results.
    "hyperband-eta16": ("hyperband", {"eta": 16, "fidelities": ("12ep", "200ep")}),
}
"""Label -> (agent, its keyword arguments)."""
PAIRS = (("evolution+zc", "evolution"), ("reinforce+zc", "reinforce"), ("hyperband+zc", "hyperband"))


def evaluator(data_dir: str | None, cache: Path) -> ZeroCostFidelities:
    return ZeroCostFidelities(
        NB201Evaluator(data_dir), "nb201", proxies=("synflow",), cache=cache, data_dir=data_dir, threads=1
    )


def run_one(label: str, seed: int, data_dir: str | None, cache: Path) -> dict[str, Any]:
    """One search of ``label`` with ``seed``: its row (``nas-gym compare``'s columns, the selected
    cell by :func:`select_record`) plus the counts of real and screening evaluations."""
    agent_name, kwargs = VARIANTS[label]
    scorer = evaluator(data_dir, cache)
    config = SearchConfig(
        env="NASBench201-v0",
        agent=agent_name,
        seed=seed,
        budget_seconds=BUDGET_SECONDS,
        env_kwargs={"evaluator": scorer},
        agent_kwargs=dict(kwargs),
        max_episodes=MAX_EPISODES,
    )
    agent = make_agent(agent_name, seed=seed, **kwargs)
    env = make_env(config, agent)
    started = time.perf_counter()
    try:
        result = agent.search(
            env, budget_seconds=BUDGET_SECONDS, callback=lambda record: record["episode"] + 1 < MAX_EPISODES
        )
    finally:
        env.close()
    wall = time.perf_counter() - started
    history = result.history
    selected = top_fidelity_records(history, scorer.fidelities)
    run = summarise_run(
        config, SearchResult(selected, result.agent, seed), optimum_of(scorer), wall, transfer_of(scorer)
    )
    row = dict(run.row)
    row.update(
        variant=label,
        episodes=len(history),
        simulated_seconds=history[-1]["cumulative_seconds"],
        selected_fidelity=selected[-1].get("fidelity") if selected else None,
        evaluations={f: sum(r.get("fidelity") == f for r in history) for f in scorer.fidelities},
        best_reward_overall_test=result.best.get("test_accuracy") if result.best else None,
    )
    assert row["best_arch"] == select_record(history, scorer.fidelities)["arch"]
    return row


def run(out: Path, seeds: int, variants: list[str], data_dir: str | None, cache: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "runs.jsonl"
    done = {(r["variant"], r["seed"]) for r in _rows(path)}
    for label in variants:
        start = time.perf_counter()
        for seed in range(seeds):
            if (label, seed) in done:
                continue
            row = run_one(label, seed, data_dir, cache)
            with open(path, "a") as f:
                f.write(json.dumps(row) + "\n")
        print(f"{label}: {seeds} seeds, {time.perf_counter() - start:.0f} s", flush=True)


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _mean_se(values: list[float]) -> tuple[float, float, float]:
    x = np.asarray(values, dtype=float) * 100
    return float(x.mean()), float(x.std(ddof=1)), float(x.std(ddof=1) / math.sqrt(len(x)))


def report(out: Path) -> str:
    rows = _rows(out / "runs.jsonl")
    by_variant: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        by_variant.setdefault(row["variant"], {})[row["seed"]] = row
    lines = [
        f"Measured by `python benchmarks/zero_cost_compare.py run` on {cpu_name()} (2 cores, shared), "
        f"Python {platform.python_version()}; one process, runs one after another.",
        "",
        "| variant | runs | CIFAR-10 test (%) mean ± std | SE | best validation reward (%) | "
        "evaluations per run (12ep / 200ep / synflow) | selected at | wall s/run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label in VARIANTS:
        runs = list(by_variant.get(label, {}).values())
        if len(runs) < 2:
            continue
        mean, std, se = _mean_se([r["test_accuracy"] for r in runs])
        reward, reward_std, _ = _mean_se([r["best_reward"] for r in runs])
        counts = " / ".join(
            f"{np.mean([r['evaluations'].get(f, 0) for r in runs]):.1f}" for f in ("12ep", "200ep", "synflow")
        )
        at = sorted({str(r["selected_fidelity"]) for r in runs})
        wall = np.mean([r["wall_seconds"] for r in runs])
        lines.append(
            f"| {label} | {len(runs)} | {mean:.2f} ± {std:.2f} | {se:.3f} | {reward:.2f} ± {reward_std:.2f} | "
            f"{counts} | {', '.join(at)} | {wall:.1f} |"
        )
    lines += ["", "Paired by seed (warm minus cold, CIFAR-10 test accuracy, percentage points):", ""]
    lines += ["| difference | runs | mean ± SE | runs better / worse |", "|---|---|---|---|"]
    for warm, cold in PAIRS:
        seeds = sorted(set(by_variant.get(warm, {})) & set(by_variant.get(cold, {})))
        if len(seeds) < 2:
            continue
        diff = [by_variant[warm][s]["test_accuracy"] - by_variant[cold][s]["test_accuracy"] for s in seeds]
        mean, _, se = _mean_se(diff)
        better, worse = sum(d > 0 for d in diff), sum(d < 0 for d in diff)
        lines.append(f"| {warm} - {cold} | {len(seeds)} | {mean:+.2f} ± {se:.2f} | {better} / {worse} |")
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "report"])
    parser.add_argument("--out", type=Path, default=Path("runs/zero_cost/compare"))
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma-separated, of {list(VARIANTS)}"
    )
    parser.add_argument("--data-dir", default=None, help="default: $NAS_GYM_DATA")
    parser.add_argument(
        "--cache",
        type=Path,
        default=CACHE,
        help="the synflow scores (default ~/.cache/nas_gym/zero_cost.sqlite)",
    )
    args = parser.parse_args(argv)
    if args.command == "run":
        variants = args.variants.split(",")
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            parser.error(f"expected variants among {list(VARIANTS)}, got {unknown}")
        run(args.out, args.seeds, variants, args.data_dir, args.cache)
    print(report(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
