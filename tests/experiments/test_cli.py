"""The nas-gym command line, end to end in real processes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas_gym.experiments.cli import main


def nas_gym_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nas_gym.experiments.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


def test_envs_and_agents_are_listed(capsys) -> None:
    assert main(["envs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["NASCifar-v0", "NASBench201-v0", "NASBenchMacro-v0"]
    assert all(len(line.split()) > 2 for line in lines)
    assert main(["agents"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {"random", "evolution", "reinforce", "ppo", "maskable-ppo", "a2c", "dqn"} <= set(names)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["search", "--env", "NASCifar-v1", "--agent", "random", "--episodes", "2"],
            "unknown env 'NASCifar-v1': expected one of NASCifar-v0, NASBench201-v0, NASBenchMacro-v0 "
            "(did you mean 'NASCifar-v0'?)",
        ),
        (
            ["search", "--env", "NASBench201-v0", "--agent", "reinforc", "--episodes", "2"],
            "(did you mean 'reinforce'?)",
        ),
        (
            ["search", "--env", "NASBench201-v0", "--agent", "random", "--episodes", "0"],
            "expected a positive integer, got 0",
        ),
        (
            ["search", "--env", "NASBench201-v0", "--agent", "random"],
            "expected --episodes N or --budget-seconds T",
        ),
        (
            [
                "search",
                "--env",
                "NASBench201-v0",
                "--agent",
                "random",
                "--episodes",
                "2",
                "--budget",
                "smoke",
            ],
            "--budget is not an option of NASBench201-v0",
        ),
        (
            ["train", "--space", "seed", "--arch", "k7-relu-max"],
            "expected layer 1 as <kernel>-<activation>-<pool>",
        ),
        (
            [
                "compare",
                "--env",
                "NASBench201-v0",
                "--agents",
                "random,evo",
                "--seeds",
                "2",
                "--episodes",
                "3",
            ],
            "unknown agent 'evo'",
        ),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, args: list[str], message: str) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err and "Traceback" not in err


def test_bad_arguments_in_a_real_process() -> None:
    proc = nas_gym_cli("search", "--env", "NASBench201-v0", "--agent", "randm", "--episodes", "2")
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == (
            "unknown agent 'randm': expected one of random, evolution, reinforce, ppo, maskable-ppo, a2c, dqn "
            "(did you mean 'random'?)"
        )
        or "did you mean 'random'" in proc.stderr
    )
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_search_on_a_table_writes_the_run_folder(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "run"
    proc = nas_gym_cli(
        "search",
        "--env",
        "NASBench201-v0",
        "--agent",
        "evolution",
        "--episodes",
        "30",
        "--seed",
        "3",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [r["episode"] for r in history] == list(range(30))
    for key in ("arch", "reward", "accuracy", "train_seconds", "cached", "status", "test_accuracy"):
        assert key in history[0]
    summary = json.loads((out / "summary.json").read_text())
    best = max(history, key=lambda r: r["reward"])
    assert summary["best_arch"] == best["arch"] and summary["best_reward"] == best["reward"]
    assert summary["episodes"] == 30
    assert (out / "evaluations.sqlite").exists()
    assert "ep" in proc.stderr  # the progress bar

    again = tmp_path / "again"
    proc = nas_gym_cli(
        "search",
        "--env",
        "NASBench201-v0",
        "--agent",
        "evolution",
        "--episodes",
        "30",
        "--seed",
        "3",
        "--out",
        str(again),
    )
    assert (again / "history.jsonl").read_text().replace(" ", "").count("arch") == 30
    archs = [json.loads(line)["arch"] for line in (again / "history.jsonl").read_text().splitlines()]
    assert archs == [r["arch"] for r in history]  # --seed makes a run repeatable

    extended = nas_gym_cli(
        "search",
        "--env",
        "NASBench201-v0",
        "--agent",
        "evolution",
        "--episodes",
        "40",
        "--seed",
        "3",
        "--out",
        str(out),
        "--resume",
    )
    assert extended.returncode == 0, extended.stderr
    assert len((out / "history.jsonl").read_text().splitlines()) == 40


def test_resume_refuses_a_foreign_store(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "run"
    assert (
        nas_gym_cli(
            "search", "--env", "NASBench201-v0", "--agent", "random", "--episodes", "3", "--out", str(out)
        ).returncode
        == 0
    )
    store = out / "evaluations.sqlite"
    store.write_bytes(b"garbage that is not sqlite")
    proc = nas_gym_cli(
        "search",
        "--env",
        "NASBench201-v0",
        "--agent",
        "random",
        "--episodes",
        "5",
        "--out",
        str(out),
        "--resume",
    )
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
    assert len(rows) == 6
    assert {r["agent"] for r in rows} == {"random", "evolution"}
    for row in rows:
        assert float(row["simulated_seconds"]) >= 3000
        assert 0.0 < float(row["test_accuracy"]) <= 0.9438
        assert 0.0 < float(row["best_reward"]) <= 0.849
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
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert len(history) == 2
    assert all(r["status"] == "ok" and r["train_seconds"] > 0 for r in history)


def test_search_logs_to_tensorboard(tmp_path: Path, data_dir: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, logs = tmp_path / "run", tmp_path / "tb"
    proc = nas_gym_cli(
        "search",
        "--env",
        "NASBench201-v0",
        "--agent",
        "reinforce",
        "--episodes",
        "12",
        "--out",
        str(out),
        "--tensorboard",
        str(logs),
    )
    assert proc.returncode == 0, proc.stderr
    events = EventAccumulator(str(logs))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"search/reward", "search/best_reward", "agent/loss", "agent/entropy"} <= tags
    best = [e.value for e in events.Scalars("search/best_reward")]
    assert len(best) == 12 and best == sorted(best)


def _history(out: Path) -> list[tuple]:
    records = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    return [(r["episode"], r["arch"], r["accuracy"], r["reward"]) for r in records]


def test_search_history_does_not_depend_on_the_executor(tmp_path: Path, data_dir: Path) -> None:
    pytest.importorskip("ray")
    runs = {}
    for executor in ("serial", "processes", "ray"):
        out = tmp_path / executor
        proc = nas_gym_cli(
            "search",
            "--env",
            "NASBench201-v0",
            "--agent",
            "evolution",
            "--episodes",
            "24",
            "--seed",
            "5",
            "--num-envs",
            "4",
            "--executor",
            executor,
            "--workers",
            "2",
            "--out",
            str(out),
        )
        assert proc.returncode == 0, proc.stderr
        runs[executor] = _history(out)
        assert json.loads((out / "summary.json").read_text())["executor"] == executor
    assert len(runs["serial"]) == 24
    assert runs["serial"] == runs["processes"] == runs["ray"]


def test_compare_results_do_not_depend_on_the_executor(tmp_path: Path, data_dir: Path) -> None:
    pytest.importorskip("ray")
    rows = {}
    for executor in ("serial", "ray"):
        out = tmp_path / executor
        proc = nas_gym_cli(
            "compare",
            "--env",
            "NASBench201-v0",
            "--agents",
            "random,reinforce",
            "--seeds",
            "2",
            "--episodes",
            "20",
            "--executor",
            executor,
            "--workers",
            "2",
            "--out",
            str(out),
        )
        assert proc.returncode == 0, proc.stderr
        with open(out / "results.csv") as f:
            rows[executor] = [
                (r["agent"], r["seed"], r["best_arch"], r["test_accuracy"]) for r in csv.DictReader(f)
            ]
    assert len(rows["serial"]) == 4 and rows["serial"] == rows["ray"]


def test_unknown_executor_exits_2(capsys) -> None:
    assert (
        main(
            [
                "search",
                "--env",
                "NASBench201-v0",
                "--agent",
                "random",
                "--episodes",
                "2",
                "--executor",
                "dask",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "invalid choice: 'dask'" in err and len(err.strip().splitlines()) == 1


def test_resume_keeps_the_run_settings(tmp_path: Path, data_dir: Path, capsys) -> None:
    out = tmp_path / "run"
    assert (
        main(
            [
                "search",
                "--env",
                "NASBench201-v0",
                "--agent",
                "random",
                "--budget-seconds",
                "500",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    first = len((out / "history.jsonl").read_text().splitlines())
    assert (
        main(["search", "--env", "NASBench201-v0", "--agent", "random", "--out", str(out), "--resume"]) == 0
    )
    assert len((out / "history.jsonl").read_text().splitlines()) == first  # its own stop: nothing to add
    assert (
        main(
            [
                "search",
                "--env",
                "NASBench201-v0",
                "--agent",
                "random",
                "--budget-seconds",
                "2000",
                "--out",
                str(out),
                "--resume",
            ]
        )
        == 0
    )
    assert json.loads((out / "summary.json").read_text())["train_seconds"] >= 2000
    capsys.readouterr()
    assert (
        main(
            [
                "search",
                "--env",
                "NASBench201-v0",
                "--agent",
                "random",
                "--reward",
                "mnas-flops",
                "--out",
                str(out),
                "--resume",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "expected the settings of the run" in err and "mnas-flops" in err


def test_out_that_is_a_file_exits_2(tmp_path: Path, capsys) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    for args in (
        ["search", "--env", "NASBench201-v0", "--agent", "random", "--episodes", "2"],
        ["compare", "--env", "NASBench201-v0", "--agents", "random", "--seeds", "1", "--episodes", "2"],
        ["train", "--arch", "k3-relu-max"],
    ):
        assert main([*args, "--out", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.strip().endswith(f"expected --out to name a folder, got the file {path}")


def test_train_writes_its_result(tmp_path: Path, cifar_dir: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    budget = json.dumps({"epochs": 1, "train_size": 640, "val_size": 128, "batch_size": 32})
    assert main(["train", "--arch", "k3-relu-max", "--budget", budget, "--device", "cpu"]) == 0
    (written,) = (tmp_path / "runs").glob("train-*/train.json")
    result = json.loads(written.read_text())
    assert result["arch"] == "k3-relu-max" and 0 <= result["test_accuracy"] <= 1
