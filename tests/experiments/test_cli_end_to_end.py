"""The nas-gym command line end to end, in real processes: run folders, resume, comparisons, CIFAR-10
training, TensorBoard logs, and histories and results that do not depend on the executor."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents import list_agents


def nas_gym_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nas_gym.experiments.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


def test_bad_arguments_in_a_real_process() -> None:
    proc = nas_gym_cli("search", "--env", "NASBench201-v0", "--agent", "randm", "--episodes", "2")
    # The exact line: no traceback, no warnings, the choices and the suggestion.
    expected = f"unknown agent 'randm': expected one of {', '.join(list_agents())} (did you mean 'random'?)"
    assert (proc.returncode, proc.stderr) == (2, expected + "\n")


def _search(out: Path, *args: str) -> subprocess.CompletedProcess:
    return nas_gym_cli("search", "--env", "NASBench201-v0", "--out", str(out), *args)


def _history(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]


def test_search_on_a_table_writes_the_run_folder(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "run"
    proc = _search(out, "--agent", "evolution", "--episodes", "30", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    history = _history(out)
    assert [r["episode"] for r in history] == list(range(30))
    for key in ("arch", "reward", "accuracy", "train_seconds", "cached", "status", "test_accuracy"):
        assert key in history[0]
    summary = json.loads((out / "summary.json").read_text())
    best = max(history, key=lambda r: r["reward"])
    assert summary["best_arch"] == best["arch"] and summary["best_reward"] == best["reward"]
    assert summary["episodes"] == 30
    assert (out / "evaluations.sqlite").exists()
    assert "30/30" in proc.stderr  # the progress bar
    assert f"best architecture: {best['arch']}" in proc.stdout

    again = tmp_path / "again"
    proc = _search(again, "--agent", "evolution", "--episodes", "30", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    assert [r["arch"] for r in _history(again)] == [r["arch"] for r in history]  # --seed: repeatable

    extended = _search(out, "--agent", "evolution", "--episodes", "40", "--seed", "3", "--resume")
    assert extended.returncode == 0, extended.stderr
    assert _history(out)[:30] == history and len(_history(out)) == 40


def test_resume_refuses_a_foreign_store(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "run"
    assert _search(out, "--agent", "random", "--episodes", "3").returncode == 0
    store = out / "evaluations.sqlite"
    store.write_bytes(b"garbage that is not sqlite")
    proc = _search(out, "--agent", "random", "--episodes", "5", "--resume")
    assert proc.returncode == 2
    assert "not a nas-gym evaluation store" in proc.stderr and "Traceback" not in proc.stderr
    assert store.read_bytes() == b"garbage that is not sqlite"


def test_compare_end_to_end(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "cmp"
    proc = nas_gym_cli(
        "compare",
        "--env",
        "NASBench201-v0",
        "--agents",
        "random,evolution",
        "--seeds",
        "3",
        "--budget-seconds",
        "3000",
        "--workers",
        "2",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["agent"], r["seed"]) for r in rows] == [
        (a, str(s)) for a in ("random", "evolution") for s in range(3)
    ]
    for row in rows:
        assert float(row["simulated_seconds"]) >= 3000
        assert 0.0 < float(row["test_accuracy"]) <= 0.9438  # the table's best test accuracy
        assert 0.0 < float(row["best_reward"]) <= 0.849  # its best 12-epoch validation accuracy
        assert int(row["episodes"]) > 10
    summary = (out / "summary.md").read_text()
    assert "| random | 3 |" in summary and "| evolution | 3 |" in summary
    png = (out / "best_so_far.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


@pytest.mark.slow
def test_search_with_real_cifar_training(tmp_path: Path, cifar_dir: Path) -> None:
    out = tmp_path / "run"
    budget = json.dumps({"epochs": 1, "train_size": 640, "val_size": 256})
    proc = nas_gym_cli(
        "search",
        "--env",
        "NASCifar-v0",
        "--agent",
        "random",
        "--episodes",
        "2",
        "--budget",
        budget,
        "--device",
        "cpu",
        "--out",
        str(out),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    history = _history(out)
    assert len(history) == 2
    assert all(r["status"] == "ok" and r["train_seconds"] > 0 for r in history)


def test_search_logs_to_tensorboard(tmp_path: Path, data_dir: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, logs = tmp_path / "run", tmp_path / "tb"
    proc = _search(out, "--agent", "reinforce", "--episodes", "12", "--tensorboard", str(logs))
    assert proc.returncode == 0, proc.stderr
    events = EventAccumulator(str(logs))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"search/reward", "search/best_reward", "agent/loss", "agent/entropy"} <= tags
    best = [e.value for e in events.Scalars("search/best_reward")]
    assert len(best) == 12 and best == sorted(best)


# ---------------------------------------------------------------------------------------- executors
def _skip_without(executor: str) -> None:
    if executor == "ray":
        pytest.importorskip("ray")


def _search_on(executor: str, out: Path) -> list[tuple]:
    proc = _search(
        out, "--agent", "evolution", "--episodes", "16", "--seed", "5", "--num-envs", "4",
        "--executor", executor, "--workers", "2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "summary.json").read_text())["executor"] == executor
    return [(r["episode"], r["arch"], r["accuracy"], r["reward"]) for r in _history(out)]


def _compare_on(executor: str, out: Path) -> list[tuple]:
    proc = nas_gym_cli(
        "compare", "--env", "NASBench201-v0", "--agents", "random,reinforce", "--seeds", "2",
        "--episodes", "8", "--executor", executor, "--workers", "2", "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with open(out / "results.csv") as f:
        return [
            (r["agent"], r["seed"], r["episodes"], r["best_arch"], r["test_accuracy"])
            for r in csv.DictReader(f)
        ]


@pytest.fixture(scope="module")
def serial_search(tmp_path_factory, data_dir: Path) -> list[tuple]:
    history = _search_on("serial", tmp_path_factory.mktemp("serial") / "run")
    assert len(history) == 16
    return history


@pytest.fixture(scope="module")
def serial_compare(tmp_path_factory, data_dir: Path) -> list[tuple]:
    rows = _compare_on("serial", tmp_path_factory.mktemp("serial") / "cmp")
    assert [(r[0], r[1], r[2]) for r in rows] == [(a, s, "8") for a in ("random", "reinforce") for s in "01"]
    return rows


@pytest.mark.parametrize("executor", ["processes", "ray"])
def test_search_history_does_not_depend_on_the_executor(
    tmp_path: Path, serial_search: list[tuple], executor: str
) -> None:
    _skip_without(executor)
    assert _search_on(executor, tmp_path / "run") == serial_search


@pytest.mark.parametrize("executor", ["processes", "ray"])
def test_compare_results_do_not_depend_on_the_executor(
    tmp_path: Path, serial_compare: list[tuple], executor: str
) -> None:
    _skip_without(executor)
    assert _compare_on(executor, tmp_path / "cmp") == serial_compare
