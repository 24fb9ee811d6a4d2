"""One short check of the CUDA training path of the CIFAR-10 backend, for a machine with one GPU
and no dataset: run it through ``bash benchmarks/gpu_check.sh`` (``--dry-run``: the same steps
on the CPU at tiny sizes, as CI runs them).

Steps, each recorded as ``ok``, ``failed`` or ``skipped`` with its figures:

1. ``environment``: versions, the GPU, and the trainer's fingerprint computed before CUDA
   starts (it must not start it, so forked workers can still use CUDA); after CUDA starts, the
   GPU names of NVML and of torch must agree.
2. ``smoke``: one ``smoke`` evaluation; accuracy above chance on the synthetic data.
3. ``gpu-budget``: the ``gpu`` budget on three seed-space architectures (1, 3 and 10 layers),
   timed, against the estimate of ``nas_gym.backends.cifar.budget.BUDGETS``.
4. ``determinism``: with ``deterministic=True`` the same architecture (a seed chain and a
   NAS-Bench-201 cell) trained twice gives the same weights, bit for bit; the default fast
   settings are reported for comparison.
5. ``oom``: an absurd batch under a memory cap (CUDA: ``set_per_process_memory_fraction``;
   CPU: ``RLIMIT_AS``) gives status ``oom``, the memory comes back and the next evaluation runs.
6. ``parallel``: evaluations in two worker processes (the process executor), equal to the same
   evaluations run here (deterministic settings).

The data is a synthetic CIFAR-10 (``write_synthetic_cifar10``) in a temporary folder: the check
needs neither the dataset nor a network. Results: ``gpu_check.json`` and ``gpu_check.md`` under
``--out``. Exit status 1 when a step failed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

THREE = "k3-relu-max|k3-relu-max|k3-relu-max"
ARCHS = {"1 layer": "k3-relu-max", "3 layers": THREE, "10 layers k5": "|".join(["k5-relu-max"] * 10)}
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
TINY = {
    "base": "smoke",
    "epochs": 1,
    "train_size": 640,
    "val_size": 200,
    "batch_size": 32,
    "resolution": 8,
    "width": 0.25,
}
"""The dry run's stand-in for every budget: 20 optimiser steps of a quarter-width network on 8x8
images (every decision of the architecture kept)."""
ESTIMATE = "1 to 3 s per evaluation (nas_gym.backends.cifar.budget.BUDGETS, an estimate)"


def gymnasium_or_stub() -> str:
    """``"installed"``, or ``"stub"`` after putting a stand-in that registers nothing on the path
    of this process and of the workers it starts: ``import nas_gym`` registers its envs with
    Gymnasium, and the trainer needs nothing else of it."""
    try:
        import gymnasium  # noqa: F401
    except ImportError:
        stub = Path(tempfile.mkdtemp(prefix="gymnasium-stub-"))
        (stub / "gymnasium" / "envs").mkdir(parents=True)
        (stub / "gymnasium" / "__init__.py").write_text("")
        (stub / "gymnasium" / "envs" / "__init__.py").write_text("")
        (stub / "gymnasium" / "envs" / "registration.py").write_text(
            "registry = {}\n\ndef register(id, **kwargs):\n    registry[id] = kwargs\n"
        )
        sys.path.insert(0, str(stub))
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(stub), os.environ.get("PYTHONPATH")]))
        return "stub"
    return "installed"


class Check:
    """The steps of one run and what they found."""

    def __init__(self, dry_run: bool, data_dir: Path):
        import torch

        self.dry_run = dry_run
        self.device = "cpu" if dry_run else "cuda"
        self.data_dir = data_dir
        self.steps: dict[str, dict[str, Any]] = {}
        self.hashes: list[str] = []
        if dry_run:
            torch.set_num_threads(1)

    def budget(self, name: str, **changes: Any) -> Any:
        return {**TINY, **changes} if self.dry_run else ({"base": name, **changes} if changes else name)

    def trainer(self, budget: Any, space: str = "seed", **kwargs: Any) -> Any:
        from nas_gym.backends.cifar.trainer import CifarTrainer

        threads = {"threads": 1} if self.dry_run else {}
        return CifarTrainer(
            space, budget=budget, device=self.device, data_dir=self.data_dir, **threads, **kwargs
        )

    def run(self, name: str, step: Callable[[], dict[str, Any]]) -> None:
        start = time.perf_counter()
        try:
            found = step()
        except Exception as exc:  # noqa: BLE001 - a failed step is a finding, the others still run
            found = {
                "status": "failed",
                "error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc(),
            }
        found.setdefault("status", "ok")
        found["seconds"] = round(time.perf_counter() - start, 2)
        self.steps[name] = found
        print(f"[{found['status']:7s}] {name} ({found['seconds']} s)", flush=True)

    # ------------------------------------------------------------------------------------ steps
    def environment(self, gymnasium: str) -> dict[str, Any]:
        import torch
        from machine import cpu_name  # benchmarks/machine.py

        from nas_gym.backends.cifar import trainer

        found: dict[str, Any] = {
            "cpu": f"{cpu_name()}, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "torch": torch.__version__,
            "gymnasium": gymnasium,
            "cuda_available": None,
        }
        if self.dry_run:
            found["fingerprint"] = self.trainer(self.budget("smoke")).fingerprint
            return found
        fingerprint = self.trainer("gpu").fingerprint  # before anything starts CUDA
        found.update(fingerprint=fingerprint, cuda_started_by_fingerprint=torch.cuda.is_initialized())
        nvml = trainer.gpu_names()
        found["cuda_available"] = torch.cuda.is_available()
        torch.zeros(1, device="cuda")
        trainer.gpu_names.cache_clear()
        found.update(nvml_names=list(nvml), torch_names=list(trainer.gpu_names()), cuda=torch.version.cuda)
        found["cudnn"] = torch.backends.cudnn.version()
        problems = []
        if found["cuda_started_by_fingerprint"]:
            problems.append("the fingerprint started CUDA")
        if found["nvml_names"] != found["torch_names"]:
            problems.append("NVML and torch name the GPUs differently")
        if "gpu='unknown'" in fingerprint:
            problems.append("the fingerprint does not name the GPU")
        if problems:
            found.update(status="failed", error="; ".join(problems))
        return found

    def smoke(self) -> dict[str, Any]:
        metrics = self.trainer(self.budget("smoke"))(THREE)
        found = {k: metrics.get(k) for k in ("status", "accuracy", "train_seconds", "error")}
        if metrics["status"] != "ok" or metrics["accuracy"] <= 0.2:
            found.update(status="failed", error=f"expected status ok and accuracy > 0.2, got {metrics}")
        return found

    def gpu_budget(self) -> dict[str, Any]:
        trainer = self.trainer(self.budget("gpu"))
        rows = []
        for label, arch in ARCHS.items():
            metrics = trainer(arch)
            rows.append(
                {
                    "arch": label,
                    "status": metrics["status"],
                    "accuracy": metrics["accuracy"],
                    "train_seconds": round(metrics["train_seconds"], 3),
                    "flops": metrics["flops"],
                }
            )
        found: dict[str, Any] = {"budget": trainer.budget.describe(), "estimate": ESTIMATE, "rows": rows}
        if any(row["status"] != "ok" for row in rows):
            found.update(status="failed", error="an evaluation under the gpu budget did not finish ok")
        return found

    def determinism(self) -> dict[str, Any]:
        from nas_gym.backends.cifar import training
        from nas_gym.backends.cifar.speed import SpeedOptions

        real_fit = training.fit

        def hashing_fit(model, *args, **kwargs):
            problem = real_fit(model, *args, **kwargs)
            state = b"".join(t.detach().float().cpu().numpy().tobytes() for t in model.state_dict().values())
            self.hashes.append(hashlib.sha256(state).hexdigest()[:16])
            return problem

        # The cell space pools by AdaptiveAvgPool2d: deterministic mode swaps it for a mean.
        one_cell = {"cells": 1} if self.dry_run else {}
        cases = [("seed", THREE, self.budget("smoke")), ("nb201", CELL, self.budget("smoke", **one_cell))]
        rows = []
        training.fit = hashing_fit
        try:
            for space, arch, budget in cases:
                for label, speed in [
                    ("deterministic", SpeedOptions.fast(self.device, deterministic=True)),
                    ("fast", SpeedOptions.fast(self.device)),
                ]:
                    self.hashes.clear()
                    accuracies = [
                        self.trainer(budget, space, speed=speed)(arch)["accuracy"] for _ in range(2)
                    ]
                    rows.append(
                        {
                            "space": space,
                            "speed": label,
                            "accuracies": accuracies,
                            "weights": list(self.hashes),
                            "same": len(set(self.hashes)) == 1 and len(self.hashes) == 2,
                        }
                    )
        finally:
            training.fit = real_fit
        found: dict[str, Any] = {"rows": rows}
        if not all(row["same"] for row in rows if row["speed"] == "deterministic"):
            found.update(status="failed", error="deterministic=True trained different weights twice")
        return found

    def oom(self) -> dict[str, Any]:
        import torch

        absurd = {"base": "smoke", "train_size": 45_000, "batch_size": 45_000, "epochs": 20, "val_size": 200}
        trainer = self.trainer(absurd, speed="reference") if self.dry_run else self.trainer(absurd)
        if self.dry_run:
            limits = resource.getrlimit(resource.RLIMIT_AS)
            with open("/proc/self/statm") as f:
                in_use = int(f.read().split()[0]) * resource.getpagesize()
            resource.setrlimit(resource.RLIMIT_AS, (in_use + 768 * 2**20, limits[1]))
            try:
                metrics = trainer(THREE)
            finally:
                resource.setrlimit(resource.RLIMIT_AS, limits)
            before = after = None
        else:
            before = torch.cuda.memory_allocated()
            cap = 8 * 2**30 / torch.cuda.get_device_properties(0).total_memory
            torch.cuda.set_per_process_memory_fraction(cap)
            try:
                metrics = trainer(THREE)
            finally:
                torch.cuda.set_per_process_memory_fraction(1.0)
            after = torch.cuda.memory_allocated()
        again = self.trainer(self.budget("smoke"))(THREE)
        found = {
            "status_of_absurd_batch": metrics["status"],
            "error": (metrics.get("error") or "")[:300],
            "allocated_before": before,
            "allocated_after": after,
            "next_evaluation": again["status"],
        }
        if metrics["status"] != "oom" or again["status"] != "ok":
            found["status"] = "failed"
        elif before is not None and after is not None and after > before + 2**20:
            found.update(status="failed", error=f"{after - before} bytes still allocated after the oom")
        else:
            found["status"] = "ok"
        return found

    def parallel(self) -> dict[str, Any]:
        from nas_gym.backends.cifar.speed import SpeedOptions
        from nas_gym.evaluation.runner import EvaluationRunner

        try:
            from nas_gym.parallel.executors import ProcessExecutor

            executor = ProcessExecutor(workers=2, threads=1) if self.dry_run else ProcessExecutor(per_gpu=2)
        except (ImportError, TypeError, ValueError) as exc:
            return {"status": "skipped", "reason": f"no process executor here ({type(exc).__name__}: {exc})"}
        speed = SpeedOptions.fast(self.device, deterministic=True)
        archs = [THREE, "k5-relu-avg|k3-sigmoid-max", "k3-relu-max", "k5-relu-max|k5-relu-max"]
        archs = archs[:2] if self.dry_run else archs  # the dry run: one per worker
        evaluator = self.trainer(self.budget("smoke"), speed=speed)
        try:
            start = time.perf_counter()
            remote = EvaluationRunner(evaluator, "seed").evaluate_many(archs, executor)
            seconds = time.perf_counter() - start
        finally:
            executor.close()
        here = [EvaluationRunner.run_evaluator(evaluator, arch) for arch in archs]
        found: dict[str, Any] = {
            "workers": executor.workers,
            "wall_seconds_of_the_batch": round(seconds, 2),
            "statuses": [metrics["status"] for metrics, _ in remote],
            "accuracies": [metrics["accuracy"] for metrics, _ in remote],
            "accuracies_here": [metrics["accuracy"] for metrics in here],
        }
        if any(status != "ok" for status in found["statuses"]):
            found.update(status="failed", error="an evaluation in a worker process did not finish ok")
        elif found["accuracies"] != found["accuracies_here"]:
            found.update(status="failed", error="workers and this process disagree under deterministic=True")
        return found


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# GPU check ({'dry run on the CPU' if summary['dry_run'] else 'CUDA'})",
        "",
        f"`{summary['command']}`, {summary['finished']}, {summary['seconds']} s in all.",
        "",
        "| step | status | seconds | finding |",
        "|---|---|---|---|",
    ]
    for name, found in summary["steps"].items():
        shown = {k: v for k, v in found.items() if k not in ("status", "seconds", "trace", "rows")}
        lines.append(f"| {name} | {found['status']} | {found['seconds']} | `{json.dumps(shown)[:400]}` |")
    for name, found in summary["steps"].items():
        if found.get("rows"):
            lines += ["", f"## {name}", "", "| " + " | ".join(found["rows"][0]) + " |"]
            lines.append("|" + "---|" * len(found["rows"][0]))
            lines += ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in found["rows"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, tiny sizes")
    parser.add_argument(
        "--out", default=os.environ.get("OUT") or "runs/gpu_check", help="folder of the summary"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    missing = [name for name in ("numpy", "torch") if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"expected {' and '.join(missing)} to be installed for the GPU check, got none", file=sys.stderr
        )
        return 2
    gymnasium = gymnasium_or_stub()
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("expected a CUDA device for the GPU check, got none; use --dry-run on the CPU", file=sys.stderr)
        return 2
    from nas_gym.backends.cifar.data import write_synthetic_cifar10

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nas-gym-cifar-") as data_dir:
        written = time.perf_counter()
        write_synthetic_cifar10(data_dir)
        data_seconds = round(time.perf_counter() - written, 1)
        check = Check(args.dry_run, Path(data_dir))
        check.run("environment", lambda: check.environment(gymnasium))
        for name, step in [
            ("smoke", check.smoke),
            ("gpu-budget", check.gpu_budget),
            ("determinism", check.determinism),
            ("oom", check.oom),
            ("parallel", check.parallel),
        ]:
            check.run(name, step)
    summary = {
        "dry_run": args.dry_run,
        "command": "bash benchmarks/gpu_check.sh" + (" --dry-run" if args.dry_run else ""),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "seconds": round(time.perf_counter() - start, 1),
        "synthetic_data_seconds": data_seconds,
        "steps": check.steps,
    }
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "gpu_check.md").write_text(markdown(summary))
    failed = [name for name, found in check.steps.items() if found["status"] == "failed"]
    print(f"{len(check.steps) - len(failed)} of {len(check.steps)} steps passed; summary in {out}")
    for name in failed:
        print(f"failed: {name}: {check.steps[name].get('error')}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
