"""Parallel evaluation: throughput with 1 and 2 worker processes, and the cost of the Ray path.

1. Evaluations per minute of a CPU-bound, single-threaded evaluator (a pure-Python loop
   calibrated to ``--work-ms`` per evaluation) with ``ProcessExecutor(workers=1)`` and
   ``ProcessExecutor(workers=2)``, pools started and warm before the clock starts. On a machine
   with two free cores the ratio should be close to 2.
2. Overhead per evaluation of an instant evaluator: ``SerialExecutor`` (the bare cost of
   running the evaluator through the runner), ``ProcessExecutor`` and ``RayExecutor`` on a local
   instance (each warm), in milliseconds; the ratio of Ray to serial.

Usage::

    python benchmarks/bench_parallel.py [--evals 16] [--work-ms 250] [--instant 1000] [--no-ray]

Other processes on the machine distort the figures: the script prints the load average before
and after.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

from nas_gym.parallel.executors import Executor, ProcessExecutor, RayExecutor, SerialExecutor


def busy_loop(iterations: int) -> int:
    """``iterations`` rounds of integer arithmetic: CPU-bound and single-threaded."""
    value = 0
    for i in range(iterations):
        value = (value * 31 + i) % 1_000_003
    return value


class BusyEvaluator:
    """A CPU-bound evaluator: ``iterations`` rounds of :func:`busy_loop`, then an accuracy from
    the architecture's hash (picklable, so it runs in worker processes and Ray tasks)."""

    def __init__(self, iterations: int):
        self.iterations = iterations

    def __call__(self, arch: str) -> dict[str, Any]:
        start = time.process_time()
        busy_loop(self.iterations)
        # The CPU time the evaluation got: below its wall time when other processes share the cores.
        return {**instant_evaluator(arch), "cpu_seconds": time.process_time() - start}


def instant_evaluator(arch: str) -> dict[str, Any]:
    """An evaluator that costs nothing: a pseudo-accuracy from the string's hash."""
    digest = hashlib.sha256(arch.encode()).digest()
    return {"accuracy": int.from_bytes(digest[:4], "little") / 2**32}


def calibrate(work_ms: float) -> int:
    """Iterations of :func:`busy_loop` that take about ``work_ms`` milliseconds here."""
    iterations = 100_000
    while True:
        start = time.perf_counter()
        busy_loop(iterations)
        seconds = time.perf_counter() - start
        if seconds > 0.1:
            return max(1, int(iterations * work_ms / 1000 / seconds))
        iterations *= 4


def timed_map(
    executor: Executor, evaluator: Callable[[str], dict[str, Any]], archs: list[str]
) -> tuple[float, list[dict[str, Any]]]:
    """Seconds for ``executor.map(evaluator, archs)`` and its results, after a warm-up batch that
    starts the workers and ships the evaluator's code."""
    executor.map(evaluator, [f"warm-up-{i}" for i in range(2 * (executor.workers or 2))])
    start = time.perf_counter()
    results = executor.map(evaluator, archs)
    seconds = time.perf_counter() - start
    if [r["status"] for r in results] != ["ok"] * len(archs):
        raise RuntimeError(f"expected every evaluation to succeed, got {[r['status'] for r in results]}")
    return seconds, results


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evals", type=int, default=16, help="CPU-bound evaluations per measurement")
    parser.add_argument("--work-ms", type=float, default=250.0, help="cost of one CPU-bound evaluation")
    parser.add_argument("--instant", type=int, default=1000, help="instant evaluations per measurement")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray measurements")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    figures: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs",
        "load_before": load(),
    }
    print(f"machine: {figures['machine']}; load average (1, 5, 15 min) before: {figures['load_before']}")

    iterations = calibrate(args.work_ms)
    evaluator = BusyEvaluator(iterations)
    archs = [f"busy-{i}" for i in range(args.evals)]
    print(
        f"\nCPU-bound evaluator: {iterations} loop rounds (~{args.work_ms:.0f} ms), {args.evals} evaluations"
    )
    per_minute, cores = {}, {}
    for workers in (1, 2):
        with ProcessExecutor(workers=workers) as executor:
            seconds, results = timed_map(executor, evaluator, archs)
        per_minute[workers] = 60 * args.evals / seconds
        # Cores the workers got on average: `workers` on an otherwise idle machine.
        cores[workers] = sum(r["cpu_seconds"] for r in results) / seconds
        print(
            f"  processes, {workers} worker(s): {seconds:6.2f} s  {per_minute[workers]:7.1f} evaluations/min"
            f"  (cores used: {cores[workers]:.2f})"
        )
    figures["cpu_bound"] = {
        "work_ms": args.work_ms,
        "evaluations": args.evals,
        "per_minute": per_minute,
        "cores_used": cores,
        "speedup_2_vs_1": per_minute[2] / per_minute[1],
    }
    print(f"  speed-up, 2 workers vs 1: {figures['cpu_bound']['speedup_2_vs_1']:.2f}x")

    archs = [f"instant-{i}" for i in range(args.instant)]
    print(f"\ninstant evaluator: {args.instant} evaluations, overhead per evaluation")
    overhead_ms = {}
    executors: list[tuple[str, Callable[[], Executor]]] = [
        ("serial", SerialExecutor),
        ("processes (2 workers)", lambda: ProcessExecutor(workers=2)),
    ]
    if not args.no_ray:
        executors.append(("ray (local, 2 CPUs)", lambda: RayExecutor(workers=2)))
    for name, make in executors:
        start = time.perf_counter()
        with make() as executor:
            started = time.perf_counter() - start
            seconds, _ = timed_map(executor, instant_evaluator, archs)
        overhead_ms[name] = 1000 * seconds / args.instant
        print(f"  {name:24s} {overhead_ms[name]:8.3f} ms/evaluation   (start-up {started:5.2f} s)")
    figures["instant_ms_per_evaluation"] = overhead_ms
    if "ray (local, 2 CPUs)" in overhead_ms:
        ratio = overhead_ms["ray (local, 2 CPUs)"] / overhead_ms["serial"]
        figures["ray_vs_serial"] = ratio
        print(f"  ray / serial: {ratio:.0f}x")

    figures["load_after"] = load()
    print(f"\nload average after: {figures['load_after']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
